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
    """A training stage: one task, or a mixture of tasks (each batch from one task, drawn with `weights`)."""

    name: str
    tasks: tuple[str, ...]
    steps: int
    steps_per_epoch: int
    weights: tuple[float, ...] = (1.0,)


def plan_stages(spec: JobSpec, sizes: dict[str, int]) -> list[Stage]:
    """Intermediate stages (sequential: one per task; mixture: one over all) then the target task. Each stage
    trains max_steps, or epochs over its examples (a mixture: over all of its tasks' examples); with early
    stopping (spec.max_epochs) the target stage's cap is max_epochs instead."""
    per_step = spec.batch_size * spec.gradient_accumulation

    def stage(name: str, tasks: tuple[str, ...], weights: tuple[float, ...] = (1.0,), epochs: float | None = None) -> Stage:
        n = sum(sizes[t] for t in tasks)
        per_epoch = max(1, math.ceil(n / per_step))
        steps = max(1, math.ceil(epochs * n / per_step)) if epochs else \
            spec.max_steps or max(1, math.ceil(spec.epochs * n / per_step))
        return Stage(name, tasks, steps, per_epoch, weights)

    tasks = spec.intermediate_tasks
    if spec.intermediate_mode == "mixture" and len(tasks) > 1:
        counts = np.array([sizes[t] for t in tasks], dtype=np.float64)
        if spec.mixture_sampling == "temperature":
            counts = counts ** (1.0 / spec.mixture_temperature)
        intermediate = [stage("mixture:" + "+".join(tasks), tasks, tuple(counts / counts.sum()))]
    else:
        intermediate = [stage(t, (t,)) for t in tasks]
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

