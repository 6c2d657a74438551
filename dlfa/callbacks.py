"""Trainer callbacks (minGPT style): the trainer reports what happens, callbacks decide where it goes
(a progress bar in the CLI, the job store for the app, a test's list)."""
from __future__ import annotations

from dataclasses import dataclass


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

    def on_unit_end(self, unit_name: str, results: dict) -> None:
        for callback in self.callbacks:
            callback.on_unit_end(unit_name, results)

    def on_checkpoint(self, unit_name: str, path: str) -> None:
        for callback in self.callbacks:
            callback.on_checkpoint(unit_name, path)

    def should_stop(self) -> bool:
        return any(callback.should_stop() for callback in self.callbacks)
