"""Running one stored job in this process: `run_stored_job` loads the job's spec from the store, marks it running,
heartbeats from a background thread, reports progress, log lines and checkpoints through a `StoreCallback`, and runs
`dlfa.engine.job.run_job` in the job's folder (resuming from its checkpoints). A cancel request in the store or a
SIGTERM / SIGINT makes the engine checkpoint and stop at its next step. Under torchrun every rank runs the engine
and only rank 0 writes to the store. The worker process (dlfa.jobs.worker) and SLURM (`run_submitted`, started by
dlfa.jobs.launch) call it.

A retrieval task (Tatoeba) trains nothing: `spec_runner` runs it with dlfa.analysis.tatoeba_job instead of the
engine. The environment variable DLFA_JOB_RUNNER (`module:function`, same signature as run_job) replaces the
engine; the tests use it to run a fast stand-in.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

from dlfa.engine.callbacks import Callback, Progress
from dlfa.errors import DlfaError
from dlfa.jobs.store import JobStore
from dlfa.results import CANCELLED, COMPLETED, FAILED, QUEUED, STOPPED

HEARTBEAT_S = 5.0
CANCEL_POLL_S = 1.0
PROGRESS_EVERY_S = 0.5
RUNNER_ENV = "DLFA_JOB_RUNNER"
DEFAULT_RUNNER = "dlfa.engine.job:run_job"


def load_runner(job=None):
    """The function that runs a job: an upload evaluation's (dlfa.engine.uploads), else spec_runner's."""
    from dlfa.engine.uploads import EVALUATION_OPTION, evaluation_runner

    if job is not None and EVALUATION_OPTION in job.options:
        return evaluation_runner(job.options[EVALUATION_OPTION])
    return spec_runner(job.spec if job is not None else None)


def spec_runner(spec=None):
    """The function that runs a spec (run_job's signature): a retrieval task's measurement (nothing trained,
    dlfa.analysis.tatoeba_job), else dlfa.engine.job.run_job or the one named by $DLFA_JOB_RUNNER."""
    from dlfa.engine.spec import RETRIEVAL_TASKS

    if spec is not None and spec.task in RETRIEVAL_TASKS:
        from dlfa.analysis.tatoeba_job import run_tatoeba_job

        return run_tatoeba_job
    module, _, name = os.environ.get(RUNNER_ENV, DEFAULT_RUNNER).partition(":")
    return getattr(importlib.import_module(module), name)


def progress_text(progress: Progress) -> str:
    """One line for the UI, e.g. `unit 2/6 dlfa-L6-s1 · pos step 40/200 · loss 0.512`."""
    text = f"unit {progress.unit}/{progress.units} {progress.unit_name} · {progress.stage}"
    if progress.total_steps:
        text += f" step {progress.step}/{progress.total_steps}"
    if progress.loss is not None:
        text += f" · loss {progress.loss:.3f}"
    return text


class StoreCallback(Callback):
    """Writes what the engine reports to the store (progress, checkpoints) and the job's log file;
    `should_stop` is True once the store holds a cancel request or `stop_event` is set (a signal)."""

    def __init__(self, store: JobStore, job_id: str, log_path: Path, stop_event: threading.Event | None = None):
        self.store, self.job_id = store, job_id
        self.log_path = Path(log_path)
        self.stop_event = stop_event or threading.Event()
        self._last_progress = 0.0
        self._last_poll = 0.0
        self._last_stage = None
        self._cancel = False

    def log(self, message: str) -> None:
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"{time.strftime('%H:%M:%S')} {message}\n")

    def on_progress(self, progress: Progress) -> None:
        now = time.monotonic()
        stage = (progress.unit, progress.stage)
        finished_stage = progress.total_steps and progress.step >= progress.total_steps
        if now - self._last_progress >= PROGRESS_EVERY_S or stage != self._last_stage or finished_stage:
            self._last_progress, self._last_stage = now, stage
            self.store.update_progress(self.job_id, progress.fraction, progress_text(progress))

    def on_log(self, message: str) -> None:
        self.log(message)

    def on_checkpoint(self, unit_name: str, path: str) -> None:
        self.store.add_artifact(self.job_id, "checkpoint", path, unit=unit_name)

    def should_stop(self) -> bool:
        now = time.monotonic()
        if not self._cancel and now - self._last_poll >= CANCEL_POLL_S:
            self._last_poll = now
            self._cancel = self.store.cancel_requested(self.job_id)
        return self._cancel or self.stop_event.is_set()


class Heartbeat:
    """A daemon thread that marks the job alive every `interval` seconds while the worker runs."""

    def __init__(self, store: JobStore, job_id: str, interval: float = HEARTBEAT_S):
        self.store, self.job_id, self.interval = store, job_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.store.heartbeat(self.job_id)
            except Exception as exc:  # noqa: BLE001  (a busy store must not kill the job)
                print(f"heartbeat failed: {exc}", file=sys.stderr)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


class StopOnSignals:
    """While active, SIGTERM and SIGINT set `event` instead of killing the process (main thread only)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, event: threading.Event):
        self.event, self.previous = event, {}

    def __enter__(self) -> "StopOnSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self.previous[sig] = signal.signal(sig, lambda *_: self.event.set())
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def _leave_process_group() -> None:
    """Close the torch.distributed process group the engine opened under torchrun."""
    import torch.distributed

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def run_stored_job(job_id: str, store: JobStore) -> int:
    """Run one job to its end; the exit code is 0 unless the job failed."""
    job = store.get(job_id)
    if int(os.environ.get("RANK", "0")) != 0:
        with StopOnSignals(threading.Event()):
            try:
                spec_runner(job.spec)(job.spec, job.out_dir, callbacks=(), resume=True)
            finally:
                _leave_process_group()
        return 0

    if not store.mark_running(job_id):
        if store.get(job_id).status == QUEUED:  # cancelled before it started
            store.mark_cancelled(job_id)
        return 1 if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 0  # non-zero: torchrun ends the other ranks
    stop = threading.Event()
    callback = StoreCallback(store, job_id, job.log_path, stop)
    callback.log(f"worker {os.getpid()} started job {job_id} (attempt {job.attempts}) in {job.out_dir}")
    error = None
    with Heartbeat(store, job_id), StopOnSignals(stop):
        try:
            results = load_runner(job)(job.spec, job.out_dir, callbacks=(callback,), resume=True)
        except DlfaError as exc:
            callback.log(f"failed: {exc}")
            outcome, error = FAILED, str(exc)
        except Exception as exc:  # noqa: BLE001  (any crash must reach the store)
            callback.log("failed with a traceback:\n" + traceback.format_exc())
            outcome, error = FAILED, f"{type(exc).__name__}: {exc}"
        else:  # run_job's results.json status
            outcome = (COMPLETED if results.get("status") != STOPPED
                       else CANCELLED if store.cancel_requested(job_id) else STOPPED)
        finally:
            _leave_process_group()
        # the log's last line comes before the store's mark: whoever sees the job end can read its whole log
        with contextlib.suppress(OSError):  # but a full disk must not keep the job from being marked
            callback.log(f"worker finished: {outcome}")
        if outcome == FAILED:
            store.mark_failed(job_id, error)
        elif outcome == COMPLETED:
            store.mark_completed(job_id)
        elif outcome == CANCELLED:
            store.mark_cancelled(job_id)
        else:
            store.mark_stopped(job_id)
    return 1 if outcome == FAILED else 0


def run_submitted(job_id: str, store_path: str) -> int:
    """The function SLURM (through submitit) runs: the job, in-process, with torch.distributed's
    environment variables exported when the job has several tasks."""
    import submitit

    if submitit.JobEnvironment().num_tasks > 1:
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    return run_stored_job(job_id, JobStore(store_path))
