"""The training loop of one unit (one aggregation × fusion layer × learning rate × seed of a JobSpec), read top
to bottom in `UnitTrainer.train`:

    restore the latest checkpoint (model, optimizer, best state, TrainState, RNG states)
    for each stage: intermediate tasks (English; one after another, or one mixture), then the target task,
                    each with the same budget (max_steps, or epochs over max_train_examples), or the
                    intermediate stages sharing one budget (intermediate_steps; dlfa.engine.schedule)
        for each step: gradient_accumulation micro-batches (one task each) → clip → AdamW, linear warm-up/decay
            target stage: English dev at each epoch end (or every eval_every steps), best state kept; with
                          patience, stops once dev has not improved for that many evaluations
            checkpoint every checkpoint_every steps and when a callback asks to stop
        after an intermediate stage: each of its tasks' English dev score beside the majority class's
        the target stage reseeds (dropout), its batches and head are seeded by (seed, task): the same target
        stage whatever intermediate tasks or init_from came before
    → zero-shot test metrics per language (bootstrap CI) of the best dev state, fusion-weight statistics,
      the convergence point, the code version: <unit>/results.json and <unit>/model
      (an intermediate-only job: no target stage, no test; its model is saved for other jobs' init_from)
      (question answering: span F1 is each language's metric, exact match with its interval is in the
      results' extra["exact_match"], language -> metric; dev selects on span F1)

Fine-tuning feeds token ids through the encoder; probing (spec.probe, dlfa.engine.probe) feeds cached hidden
states to the aggregation + head. Both run through the same loop: a dataset gives batches, `net(**batch)` gives a
DlfaOutput. Under torchrun (WORLD_SIZE > 1) each global batch is split across ranks, DistributedDataParallel
averages the gradients, and rank 0 evaluates and writes every file. The job level is dlfa.engine.job.
"""
from __future__ import annotations

import math
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dlfa.code_version import code_version
from dlfa.engine.batching import BatchStream, backward_batch
from dlfa.engine.callbacks import CallbackList, Progress
from dlfa.engine.checkpoint import (check_loss_finite, latest_checkpoint, load_checkpoint, load_optimizer, rng_state,
                                    save_checkpoint, set_rng_state, trainable_state)
from dlfa.engine.datasets import UnitData
from dlfa.engine.evaluate import evaluate_dataset, predict_dataset, predictions_path, to_device
from dlfa.engine.metrics import at_majority, constant_score, score
from dlfa.engine.qa_evaluate import evaluate_qa
from dlfa.engine.runtime import Runtime, broadcast_flag, hardware_name, name_seed, release_memory, set_seed
from dlfa.engine.schedule import Stage, build_optimizer, learning_rate_at, plan_stages
from dlfa.engine.spec import JobSpec
from dlfa.errors import ConfigError
from dlfa.model.modeling import DlfaModel
from dlfa.results import COMPLETED, MODEL_DIR, STOPPED, LanguageMetric, RunResult, write_results

LOG_EVERY = 10  # steps between log lines and loss-history points


@dataclass
class TrainState:
    """Where a unit's training stands: a checkpoint's state.json holds these fields (plus the RNG states and
    the optimizer's param groups), so a run resumes at the step it stopped."""

    stage: int = 0  # the stage in progress (len(stages) once trained)
    step: int = 0  # optimizer steps done in that stage
    streams: dict[str, dict] = field(default_factory=dict)  # task -> BatchStream.state() within the stage
    best_score: float | None = None  # the best English dev score so far
    best_step: int | None = None
    evals_since_best: int = 0  # dev evaluations without improvement
    target_steps: int | None = None  # steps the target stage trained (fewer than planned when it stopped early)
    train_seconds: float = 0.0
    window: list[float] = field(default_factory=list)  # losses since the last log line
    # loss: [stage name, step, mean loss] every LOG_EVERY steps; dev: [step, English dev score]
    history: dict[str, list] = field(default_factory=lambda: {"loss": [], "dev": []})
    examples: dict[str, int] = field(default_factory=dict)  # head -> training examples drawn (all stages)
    intermediate_dev: dict[str, dict] = field(default_factory=dict)  # task -> English dev after its stage
    dev_majority: float | None = None  # the best constant prediction's English dev score (metrics.constant_score)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, saved: dict) -> "TrainState":
        """From a state.json; a field it lacks (written before the field existed) keeps its default."""
        return cls(**{f.name: saved[f.name] for f in fields(cls) if f.name in saved})


class UnitTrainer:
    """Trains, selects and evaluates one unit. `net(**batch)` runs the model on a batch of the unit's data
    (the model itself, or the probe's cached-feature front end); `train_net` is `net`, DDP-wrapped when
    distributed."""

    def __init__(self, spec: JobSpec, unit_dir: Path, model: DlfaModel, net: nn.Module, data: UnitData,
                 runtime: Runtime, callbacks: CallbackList, position: tuple[int, int], init_from: Path | None = None):
        self.spec, self.unit_dir, self.model, self.net, self.data = spec, unit_dir, model, net, data
        self.runtime, self.callbacks, self.init_from = runtime, callbacks, init_from
        self.unit_index, self.units = position
        self.name = spec.unit_name()
        self.stages = plan_stages(spec, {t: len(d) for t, d in data.train.items()})
        self.learning_rate = spec.probe_learning_rate if spec.probe else spec.learning_rate
        self.train_net = net
        if runtime.world > 1:
            device_ids = [runtime.device.index] if runtime.device.type == "cuda" else None
            self.train_net = nn.parallel.DistributedDataParallel(
                net, device_ids=device_ids, find_unused_parameters=len(model.heads) > 1)
        if spec.patience and data.dev is None:
            raise ConfigError(f"early stopping (patience) needs an English dev set: task {spec.task} has no "
                              f"'{spec.train_language}' dev split")
        self.best: dict[str, torch.Tensor] | None = None  # the trainable state of the best dev score
        self.state = TrainState()

    # -- the loop ------------------------------------------------------------------------------------
    def train(self) -> bool:
        """Run (or finish) every stage: restore → stages → steps (train_step: micro-batches → clip → AdamW) →
        English dev → checkpoint. Returns False when stopped by a callback."""
        optimizer = self.restore()
        state, spec = self.state, self.spec
        if state.stage == len(self.stages):
            return True  # trained already; interrupted while evaluating
        params = [p for p in self.model.parameters() if p.requires_grad]
        total_steps = sum(s.steps for s in self.stages)
        for stage_index in range(state.stage, len(self.stages)):
            stage = self.stages[stage_index]
            optimizer = optimizer or build_optimizer(self.model, spec, self.learning_rate, self.runtime.device)
            streams = {task: BatchStream(self.data.train[task].lengths, spec.batch_size,
                                         [name_seed(spec.seeds[0], task)], self.runtime.world,
                                         **state.streams.get(task, {}))
                       for task in stage.tasks}
            is_target = stage_index == len(self.stages) - 1 and not spec.intermediate_only
            if is_target and state.step == 0:
                set_seed(spec.seeds[0])  # the target stage's dropout masks: the same after any intermediate stages
            eval_every = spec.eval_every or stage.steps_per_epoch
            done_before = sum(s.steps for s in self.stages[:stage_index])
            for step in range(state.step, stage.steps):
                started = time.perf_counter()
                loss = self.train_step(stage_index, stage, streams, step, optimizer, params)
                check_loss_finite(loss, stage.name, step + 1, self.unit_dir)
                state.train_seconds += time.perf_counter() - started
                state.step = step + 1
                state.streams = {task: s.state() for task, s in streams.items()}
                state.window.append(loss)
                if (step + 1) % LOG_EVERY == 0 or step + 1 == stage.steps:
                    mean = sum(state.window) / len(state.window)
                    self.add_history("loss", [stage.name, step + 1, mean])
                    self.log(f"{stage.name} step {step + 1}/{stage.steps} loss {mean:.4f} "
                             f"lr {optimizer.param_groups[0]['lr']:.2e}")
                    state.window = []
                if is_target and ((step + 1) % eval_every == 0 or step + 1 == stage.steps):
                    self.select(step + 1)
                    state.target_steps = step + 1
                    if self.converged():
                        self.log(f"English dev did not improve for {spec.patience} evaluations: stopped at step "
                                 f"{step + 1} of {stage.steps}, best at step {state.best_step}")
                        break
                self.progress(stage.name, step + 1, stage.steps, loss, 0.9 * (done_before + step + 1) / total_steps)
                stop = self.should_stop()
                if stop or (step + 1) % spec.checkpoint_every == 0:
                    self.checkpoint(optimizer)
                if stop:
                    self.log(f"stopped at {stage.name} step {step + 1}; resume to continue")
                    return False
            if not is_target:
                self.score_intermediate(stage)
            state.stage, state.step, state.streams = stage_index + 1, 0, {}
            optimizer = None
        self.checkpoint(None)
        return True

    def train_step(self, stage_index: int, stage: Stage, streams: dict[str, BatchStream], step: int,
                   optimizer: torch.optim.Optimizer, params: list[nn.Parameter]) -> float:
        """One optimizer step: gradient_accumulation micro-batches → clip → AdamW at the scheduled learning
        rate; returns the mean loss."""
        self.net.train()
        accumulation = self.spec.gradient_accumulation
        total = 0.0
        sliced = self.runtime.device.type == "cpu" and not self.spec.probe  # a probe has no encoder activations
        max_tokens = (self.spec.cpu_tokens_per_slice or None) if sliced else None  # 0: never sliced
        for micro in range(accumulation):
            batch = self._micro_batch(stage_index, stage, streams, step, micro)
            total += backward_batch(self.train_net, self.model, batch, max_tokens, 1 / accumulation, self.runtime,
                                    sync=micro == accumulation - 1)
        if self.spec.max_grad_norm > 0:
            nn.utils.clip_grad_norm_(params, self.spec.max_grad_norm)
        warmup = math.ceil(self.spec.warmup_ratio * stage.steps)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate_at(step, stage.steps, warmup, self.learning_rate)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        self.release_cpu_memory(after_step=True)
        return total / accumulation

    def _micro_batch(self, stage_index: int, stage: Stage, streams: dict[str, BatchStream], step: int, micro: int):
        """This rank's share of the stage's next batch (a mixture draws its task), collated, on the device."""
        task = stage.tasks[0]
        if len(stage.tasks) > 1:  # the mixture's draw is a pure function of (seed, stage, step, micro-batch)
            rng = np.random.default_rng([self.spec.seeds[0], stage_index, step, micro])
            task = stage.tasks[rng.choice(len(stage.tasks), p=stage.weights)]
        batch = streams[task].next()
        self.state.examples[task] = self.state.examples.get(task, 0) + len(batch)
        indices = batch[self.runtime.rank :: self.runtime.world]
        return to_device(self.data.train[task].collate(indices), self.runtime.device)

    # -- checkpoints ---------------------------------------------------------------------------------
    def restore(self) -> torch.optim.Optimizer | None:
        """Load the latest checkpoint, if any; returns the optimizer of an interrupted stage."""
        path = latest_checkpoint(self.unit_dir)
        if path is None:
            return None
        saved, self.best = load_checkpoint(path, self.model, self.runtime.device)
        optimizer = None
        if (path / "optimizer.safetensors").is_file():
            optimizer = build_optimizer(self.model, self.spec, self.learning_rate, self.runtime.device)
            load_optimizer(optimizer, path, saved.pop("optimizer_groups"), self.runtime.device)
        set_rng_state(saved.pop("rng"), self.runtime)
        self.state = TrainState.from_json(saved)
        self.log(f"resumed from {path.name}")
        return optimizer

    def checkpoint(self, optimizer: torch.optim.Optimizer | None) -> None:
        rng = rng_state(self.runtime)  # a collective under DDP: every rank calls it
        if self.runtime.is_main:
            name = f"stage{self.state.stage}-step{self.state.step:07d}"
            path = save_checkpoint(self.unit_dir, name, self.model, {**self.state.to_json(), "rng": rng},
                                   optimizer, self.best)
            self.callbacks.on_checkpoint(self.name, str(path))

    # -- English dev: model selection and early stopping ---------------------------------------------
    def dev_score(self, head: str, dataset, prior: bool = True) -> tuple[float, float | None]:
        """Head `head`'s score on an English dev set by its task's metric (question answering: span F1) and, with
        `prior`, the best score of a constant prediction there (metrics.constant_score; None for question answering)."""
        info = self.data.tasks[head]
        if info.kind == "qa":
            return self.qa_scores(dataset, bootstrap_samples=0, head=head)["span_f1"]["value"], None
        gold, pred = predict_dataset(self.net, dataset, self.runtime.device, self.runtime.amp_dtype)
        return (score(info.metric, gold, pred, list(info.labels)),
                constant_score(info.metric, gold, list(info.labels))[0] if prior else None)

    def score_intermediate(self, stage: Stage) -> None:
        """After an intermediate stage (rank 0): each of its tasks' English dev score, the best constant prediction's
        (the majority class's for accuracy) and whether it learned (dlfa.engine.metrics.at_majority)."""
        if not self.runtime.is_main:
            return
        for head in stage.tasks:
            task, dataset = self.spec.head_tasks()[head], self.data.intermediate_dev.get(head)
            if dataset is None:
                self.log(f"{task} has no English dev set: whether it learned is not measured")
                continue
            value, prior = self.dev_score(head, dataset)
            learned = not at_majority(value, prior or 0.0)
            self.state.intermediate_dev[task] = {"metric": self.data.tasks[head].metric, "value": value,
                                                 "majority": prior or 0.0, "learned": learned, "n": len(dataset)}
            self.log(f"intermediate {task}: dev {value:.2f}, majority class (best constant) {prior or 0.0:.2f}"
                     + ("" if learned else ": LEARNED NOTHING (less than 1 point above it)"))
        self.release_cpu_memory()

    def select(self, step: int) -> None:
        """Evaluate on the English dev set (rank 0) and keep the state if it is the best so far."""
        if not self.runtime.is_main or self.data.dev is None:
            return
        state = self.state
        value, prior = self.dev_score(self.spec.task, self.data.dev, prior=state.dev_majority is None)
        state.dev_majority = state.dev_majority if prior is None else prior
        self.release_cpu_memory()
        self.add_history("dev", [step, value])
        if state.best_score is None or value > state.best_score:
            state.best_score, self.best = value, trainable_state(self.model)
            state.best_step, state.evals_since_best = step, 0
        else:
            state.evals_since_best += 1
        self.log(f"dev {self.data.tasks[self.spec.task].metric} {value:.2f} at step {step}"
                 + (" (best)" if state.best_score == value else f" (best {state.best_score:.2f})"))

    def converged(self) -> bool:
        """Whether the English dev score has not improved for `patience` evaluations (rank 0 decides; under
        DDP every rank gets its answer)."""
        done = bool(self.spec.patience) and self.runtime.is_main and self.state.evals_since_best >= self.spec.patience
        return broadcast_flag(done, self.runtime)

    # -- bookkeeping ---------------------------------------------------------------------------------
    def log(self, message: str) -> None:
        if self.runtime.is_main:
            self.callbacks.on_log(f"[{self.name}] {message}")

    def add_history(self, kind: str, point: list) -> None:
        """Keep a loss or dev point in the state (results.json's "history") and report it (the live curves)."""
        self.state.history[kind].append(point)
        if self.runtime.is_main:
            self.callbacks.on_history(self.name, kind, point)

    def progress(self, stage: str, step: int, total: int, loss: float | None, fraction_of_unit: float) -> None:
        if self.runtime.is_main:
            self.callbacks.on_progress(Progress(self.unit_index + 1, self.units, self.name, stage, step, total, loss,
                                                (self.unit_index + fraction_of_unit) / self.units))

    def should_stop(self) -> bool:
        """Rank 0 asks the callbacks; under DDP every rank gets its answer."""
        return broadcast_flag(self.runtime.is_main and self.callbacks.should_stop(), self.runtime)

    def release_cpu_memory(self, after_step: bool = False) -> None:
        if self.runtime.device.type == "cpu":
            release_memory(after_step)

    # -- evaluation ----------------------------------------------------------------------------------
    def qa_scores(self, dataset, bootstrap_samples: int, head: str | None = None,
                  predictions_file: Path | None = None) -> dict[str, dict]:
        """{"exact_match", "span_f1"} of a question answering split (dlfa.engine.qa_evaluate) by `head` (default:
        the target task's); its per-question predictions go to `predictions_file` when given."""
        return evaluate_qa(self.net, dataset.examples, dataset.windows, dataset.pad_token_id, self.runtime.device,
                           dataset.normalization, self.runtime.amp_dtype, bootstrap_samples, self.spec.seeds[0],
                           task=head or self.spec.task, predictions_file=predictions_file)[0]

    def evaluate(self) -> tuple[dict, dict, dict]:
        """Zero-shot metrics per language, fusion statistics and (question answering) exact match per
        language, with the best dev state loaded (nothing for an intermediate-only job)."""
        if self.spec.intermediate_only:
            return {}, {}, {}
        if self.best is not None:
            self.model.load_state_dict({k: v.to(self.runtime.device) for k, v in self.best.items()}, strict=False)
        target = self.data.tasks[self.spec.task]
        aggregation = self.model.config.aggregation
        metrics, per_language, exact_match = {}, {}, {}
        for i, (language, dataset) in enumerate(self.data.test.items()):
            if target.kind == "qa":
                scores = self.qa_scores(dataset, self.spec.bootstrap_samples,
                                        predictions_file=predictions_path(self.unit_dir, language))
                metrics[language], exact_match[language], fusion = scores["span_f1"], scores["exact_match"], None
            else:
                metrics[language], fusion = evaluate_dataset(
                    self.net, dataset, target, self.runtime.device, self.runtime.amp_dtype,
                    self.spec.bootstrap_samples, self.spec.seeds[0], self.data.majority,
                    with_fusion=aggregation == "dlfa", predictions_file=predictions_path(self.unit_dir, language))
            if fusion is not None:
                per_language[language] = fusion
            self.release_cpu_memory()
            m = metrics[language]
            interval = f" [{m['ci_low']:.2f}, {m['ci_high']:.2f}]" if m["ci_low"] is not None else ""
            beside = (f"exact_match {exact_match[language]['value']:.2f}" if language in exact_match
                      else f"majority {m['majority']:.2f}")
            self.log(f"test {language}: {m['metric']} {m['value']:.2f}{interval} (n={m['n']}, {beside})")
            self.progress("eval", i + 1, len(self.data.test), None, 0.9 + 0.1 * (i + 1) / len(self.data.test))
        fusion_stats = {"aggregation": aggregation}
        if aggregation == "dlfa":
            fusion_stats.update(fusion_layer=self.model.config.fusion_layer, languages=per_language)
        elif aggregation == "scalar-mix":
            fusion_stats["layer_weights"] = torch.softmax(self.model.aggregation.scalars.detach().float(), 0).tolist()
        return metrics, fusion_stats, exact_match

    def steps_trained(self) -> int:
        """Optimizer steps over all stages (the target stage's fewer when it stopped early)."""
        target = self.state.target_steps or self.stages[-1].steps
        return sum(s.steps for s in self.stages[:-1]) + target

    def convergence(self) -> dict:
        """Where the target stage's English dev score peaked (the state evaluated) and how long it trained."""
        target = self.stages[-1]
        trained = self.state.target_steps or target.steps
        best = self.state.best_step
        return {"best_step": best, "best_epoch": best / target.steps_per_epoch if best is not None else None,
                "steps_trained": trained, "epochs_trained": trained / target.steps_per_epoch,
                "step_cap": target.steps, "stopped_early": trained < target.steps, "patience": self.spec.patience,
                "dev_curve": self.state.history["dev"]}

    def intermediate_budget(self) -> dict | None:
        """What the intermediate stages spent: {"steps": optimizer steps, "examples": {task: examples drawn}}
        (None without intermediate tasks)."""
        if not self.spec.intermediate_tasks:
            return None
        stages = self.stages if self.spec.intermediate_only else self.stages[:-1]
        return {"steps": sum(s.steps for s in stages),
                "examples": {task: self.state.examples.get(self.spec.intermediate_head(task), 0)
                             for task in self.spec.intermediate_tasks}}

    def run(self) -> RunResult:
        """Train (or resume), evaluate, save the model; returns the unit's results (status stopped/completed)."""
        spec, version = self.spec.to_dict(), code_version()
        base = {"device": str(self.runtime.device), "precision": self.runtime.precision,
                "world_size": self.runtime.world, "hardware": hardware_name(self.runtime.device),
                "threads": torch.get_num_threads(),
                "stages": [{"name": s.name, "tasks": list(s.tasks), "steps": s.steps} for s in self.stages]}
        if not self.train():
            return RunResult(spec, STOPPED, code_version=version,
                             extra={**base, "stage": self.state.stage, "steps_done": self.state.step,
                                    "train_seconds": self.state.train_seconds})
        started = time.perf_counter()
        metrics, fusion_stats, exact_match = self.evaluate() if self.runtime.is_main else ({}, {}, {})
        target = None if self.spec.intermediate_only else self.data.tasks[self.spec.task]
        results = RunResult(
            spec, COMPLETED, {language: LanguageMetric(**m) for language, m in metrics.items()},
            dev_score=self.state.best_score, dev_metric=target.metric if target else None, model_dir=MODEL_DIR,
            code_version=version, dev_majority=self.state.dev_majority, intermediate_dev=self.state.intermediate_dev,
            intermediate_budget=self.intermediate_budget(), init_from=str(self.init_from) if self.init_from else None,
            extra={**base, "fusion_stats": fusion_stats, "train_seconds": self.state.train_seconds,
                   "eval_seconds": time.perf_counter() - started, "truncated": self.data.truncated,
                   "steps": self.steps_trained(), **({"convergence": self.convergence()} if target else {}),
                   "history": self.state.history,
                   **({"exact_match": {language: LanguageMetric(**m).to_dict() for language, m in exact_match.items()}}
                      if exact_match else {})})
        if self.runtime.is_main:
            self.model.save_pretrained(self.unit_dir / MODEL_DIR)
            write_results(self.unit_dir, results)
            shutil.rmtree(self.unit_dir / "checkpoints", ignore_errors=True)
        return results
