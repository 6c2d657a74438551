"""Trainer callbacks (minGPT style): the trainer reports what happens, callbacks decide where it goes
(a progress bar in the CLI, the job store for the app, a test's list)."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

from dlfa.curves import CURVES_FILE


@dataclass
class Progress:
    """Where a job stands. `unit` counts the single runs of a sweep (1-based); `stage` is the task being
    trained ("sst2" for an intermediate stage, the target task, or "eval"); steps count within the stage."""

    unit: int
    units: int
    unit_name: str
    stage: str
    step: int
    total_steps: int
    loss: float | None = None
    fraction: float = 0.0  # of the whole job, 0…1


class Callback:
    """Override what you need; every hook is optional."""

    def on_progress(self, progress: Progress) -> None:
        pass

    def on_log(self, message: str) -> None:
        pass

    def on_history(self, unit_name: str, kind: str, point: list) -> None:
        """A point added to the unit's training history: kind "loss" with [stage, step, mean loss since the
        previous point], or "dev" with [step, English dev score] (dlfa.curves)."""

    def on_unit_end(self, unit_name: str, results: dict) -> None:
        """`results` is the unit's results.json content."""

    def on_checkpoint(self, unit_name: str, path: str) -> None:
        pass

    def should_stop(self) -> bool:
        """Polled between steps: True asks the trainer to checkpoint and stop (a cancelled job)."""
        return False


class CallbackList(Callback):
    """Fans each hook out to several callbacks."""

    def __init__(self, callbacks: list[Callback] | tuple[Callback, ...] = ()):
        self.callbacks = list(callbacks)

    def on_progress(self, progress: Progress) -> None:
        for callback in self.callbacks:
            callback.on_progress(progress)

    def on_log(self, message: str) -> None:
        for callback in self.callbacks:
            callback.on_log(message)

    def on_history(self, unit_name: str, kind: str, point: list) -> None:
        for callback in self.callbacks:
            callback.on_history(unit_name, kind, point)

    def on_unit_end(self, unit_name: str, results: dict) -> None:
        for callback in self.callbacks:
            callback.on_unit_end(unit_name, results)

    def on_checkpoint(self, unit_name: str, path: str) -> None:
        for callback in self.callbacks:
            callback.on_checkpoint(unit_name, path)

    def should_stop(self) -> bool:
        return any(callback.should_stop() for callback in self.callbacks)


class CurvesCallback(Callback):
    """Appends every history point to `<job folder>/curves.jsonl` as it is logged (dlfa.curves reads it), so the
    app draws a running job's loss and English dev curves live."""

    def __init__(self, job_dir):
        self.path = Path(job_dir) / CURVES_FILE

    def on_history(self, unit_name: str, kind: str, point: list) -> None:
        with open(self.path, "a", encoding="utf-8") as curves:
            curves.write(json.dumps({"unit": unit_name, "kind": kind, "point": point}) + "\n")


TENSORBOARD_DIR = "tensorboard"


class TensorBoardCallback(Callback):
    """Experiment tracking: each unit's training losses (live), English dev scores and per-language test
    results as TensorBoard events under `<job folder>/tensorboard/<unit>/`, so `tensorboard --logdir cache/runs`
    shows every job's runs side by side; the same values go to MLflow when it is installed and a run is active
    or MLFLOW_TRACKING_URI is set. Tags: `loss/<stage>` (per step), `dev/<metric>` (per step), `test/<language>`
    and `test/mean` (at the target stage's last step)."""

    def __init__(self, job_dir):
        self.root = Path(job_dir) / TENSORBOARD_DIR
        self.writers: dict = {}

    def writer(self, unit_name: str):
        from torch.utils.tensorboard import SummaryWriter  # needs the `tensorboard` package

        if unit_name not in self.writers:
            self.writers[unit_name] = SummaryWriter(str(self.root / unit_name))
        return self.writers[unit_name]

    def on_progress(self, progress: Progress) -> None:
        if progress.loss is not None and progress.stage != "eval":
            self.writer(progress.unit_name).add_scalar(f"loss/{progress.stage}", progress.loss, progress.step)

    def on_unit_end(self, unit_name: str, results: dict) -> None:
        writer = self.writer(unit_name)
        scalars = []
        for step, value in results.get("history", {}).get("dev", []):
            scalars.append((f"dev/{results.get('dev_metric', 'score')}", value, step))
        final_step = results.get("steps", 0)
        values = {language: m["value"] for language, m in results.get("metrics", {}).items()
                  if m.get("value") is not None}
        scalars += [(f"test/{language}", value, final_step) for language, value in values.items()]
        if values:
            scalars.append(("test/mean", sum(values.values()) / len(values), final_step))
        for tag, value, step in scalars:
            writer.add_scalar(tag, value, step)
        writer.flush()
        _log_to_mlflow(unit_name, scalars)
        writer.close()
        del self.writers[unit_name]


def _log_to_mlflow(unit_name: str, scalars: list[tuple[str, float, int]]) -> None:
    """The unit's dev and test values as an MLflow run, when MLflow is installed and configured."""
    import os

    try:
        import mlflow
    except ImportError:
        return
    if not (os.environ.get("MLFLOW_TRACKING_URI") or mlflow.active_run()):
        return
    with mlflow.start_run(run_name=unit_name, nested=mlflow.active_run() is not None):
        for tag, value, step in scalars:
            mlflow.log_metric(tag.replace("/", "_"), value, step=step)


class TqdmCallback(Callback):
    """A progress bar per (unit, stage); collects each unit's metrics. `stop` set → the engine stops."""

    def __init__(self):
        self.bar = None
        self.key = None
        self.metrics: list[dict] = []
        self.stop = threading.Event()

    def on_progress(self, progress: Progress) -> None:
        from tqdm import tqdm

        key = (progress.unit, progress.stage)
        if key != self.key:
            self.close()
            self.key = key
            self.bar = tqdm(total=progress.total_steps or None, unit="step", dynamic_ncols=True,
                            desc=f"[{progress.unit}/{progress.units}] {progress.unit_name} {progress.stage}")
        self.bar.n = progress.step
        if progress.loss is not None:
            self.bar.set_postfix(loss=f"{progress.loss:.3f}", refresh=False)
        self.bar.refresh()

    def on_log(self, message: str) -> None:
        from tqdm import tqdm

        tqdm.write(message)

    def on_unit_end(self, unit_name: str, results: dict) -> None:
        self.metrics.extend({"unit": unit_name, "language": lang, **values}
                            for lang, values in results.get("metrics", {}).items())

    def should_stop(self) -> bool:
        return self.stop.is_set()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
