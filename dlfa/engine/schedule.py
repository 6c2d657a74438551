"""What a unit trains for how long: its stages (intermediate tasks, then the target task), the optimizer,
and the learning-rate schedule."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from dlfa.engine.spec import JobSpec


@dataclass
class Stage:
    """A training stage: one task, or a mixture of tasks (each batch from one task, drawn with `weights`).
    `tasks` holds head names (dlfa.engine.spec.JobSpec.head_tasks): a task's name, or the control arm's
    `<target>:intermediate`."""

    name: str
    tasks: tuple[str, ...]
    steps: int
    steps_per_epoch: int
    weights: tuple[float, ...] = (1.0,)


def split_budget(total: int, parts: int) -> list[int]:
    """`total` steps split into `parts` nearly equal shares, the remainder to the first ones: (10, 3) -> [4, 3, 3]."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def plan_stages(spec: JobSpec, sizes: dict[str, int]) -> list[Stage]:
    """Intermediate stages (sequential: one per task; mixture: one over all) then the target task (none in an
    intermediate-only job). `sizes`: head name (spec.head_tasks()) -> training examples.

    Each stage trains max_steps, or epochs over its examples (a mixture: over all of its tasks' examples); with
    early stopping (spec.max_epochs) the target stage's cap is max_epochs instead. With spec.intermediate_steps
    the intermediate stages share that one budget instead: a mixture trains it in its one stage, sequential
    stages split it equally (the remainder to the first ones), so every number of tasks spends as many updates."""
    per_step = spec.batch_size * spec.gradient_accumulation

    def stage(name: str, tasks: tuple[str, ...], weights: tuple[float, ...] = (1.0,), epochs: float | None = None,
              steps: int | None = None) -> Stage:
        n = sum(sizes[t] for t in tasks)
        per_epoch = max(1, math.ceil(n / per_step))
        if steps is None:
            steps = max(1, math.ceil(epochs * n / per_step)) if epochs else \
                spec.max_steps or max(1, math.ceil(spec.epochs * n / per_step))
        return Stage(name, tasks, steps, per_epoch, weights)

    heads = tuple(spec.intermediate_head(t) for t in spec.intermediate_tasks)
    budget = spec.intermediate_steps if heads else None
    if spec.intermediate_mode == "mixture" and len(heads) > 1:
        counts = np.array([sizes[t] for t in heads], dtype=np.float64)
        if spec.mixture_sampling == "temperature":
            counts = counts ** (1.0 / spec.mixture_temperature)
        intermediate = [stage("mixture:" + "+".join(heads), heads, tuple(counts / counts.sum()), steps=budget)]
    else:
        shares = split_budget(budget, len(heads)) if budget is not None else [None] * len(heads)
        intermediate = [stage(t, (t,), steps=share) for t, share in zip(heads, shares)]
    if spec.intermediate_only:
        return intermediate
    return intermediate + [stage(spec.task, (spec.task,), epochs=spec.max_epochs)]


def build_optimizer(model: nn.Module, spec: JobSpec, learning_rate: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; no weight decay on biases and norm weights (1-D tensors)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": spec.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=learning_rate, fused=device.type in ("cpu", "cuda"))


def learning_rate_at(step: int, total: int, warmup: int, peak: float) -> float:
    """Linear warm-up over `warmup` steps, then linear decay to 0 at `total` (step counts from 0)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * max(0.0, (total - step) / max(1, total - warmup))

