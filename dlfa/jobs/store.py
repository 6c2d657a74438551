"""The job store shared by the app, the CLI and the workers: the jobs table (dlfa.jobs.table) with what each of
them does to a job: submit and import it, launchers claim it, the worker reports on it, users cancel and resume
it, the app's refresh fails it when its worker died. The store keeps job state; results live in the job folder's
results.json (read with `results`). The life of a job and its statuses: dlfa.jobs.records.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from dlfa.engine.spec import JobSpec
from dlfa.errors import ConfigError, DataError
from dlfa.jobs.recorded import RecordedJob, job_folders, read_recorded_job
from dlfa.jobs.records import (ACTIVE, CANCELLED, FAILED, IMPORTED, QUEUED, RESUMABLE_FROM, RUNNING, STOPPED,
                               Job, check_job_id, pid_alive)
from dlfa.jobs.table import JobTable
from dlfa.results import COMPLETED, RESULTS_FILE, JobResult, read_job_results

STALE_AFTER_S = 60.0
STALE_MESSAGE = "worker stopped unexpectedly (killed?) — resumable"
STALE_MESSAGE_NO_CHECKPOINT = "worker stopped unexpectedly (killed?) — no checkpoint yet: resuming starts over"


def unit_metric_rows(results: JobResult) -> list[dict]:
    """One row per finished run and language: {unit, language, metric, value, ci_low, ci_high, n}; a job without
    runs (a retrieval task's measurement) gives its own metrics, the unit named after its task."""
    units = [(JobSpec.from_dict(run.spec).unit_name(), run.metrics) for run in results.completed_runs]
    if not results.runs and results.status == COMPLETED:
        units = [(results.task, results.metrics)]
    return [{"unit": unit, "language": language, "metric": m.metric, "value": m.value, "ci_low": m.ci_low,
             "ci_high": m.ci_high, "n": m.n} for unit, metrics in units for language, m in metrics.items()]


class JobStore(JobTable):
    """The jobs table plus the job folders' artifacts (results, checkpoints)."""

    def submit(self, spec: JobSpec, out_dir: str | Path | None = None, options: dict | None = None) -> Job:
        """Record a queued job. `out_dir` defaults to `runs/<id>/`; a given folder must not overlap another
        job's folder or hold the store. `options` are launcher settings (e.g. SLURM partition)."""
        spec.validate(check_data=False, check_encoder=False)
        return self._insert(spec, out_dir, options=options)

    def add_finished_under(self, root: str | Path) -> tuple[list[Job], list[Job]]:
        """Record the jobs that ran outside this store (the reproduction record in docs/reproduction/, run folders
        copied from a cluster) in every job folder under `root` (see `job_folders`) not in the store yet:
        `completed` when every run finished, else `stopped`. Returns (the jobs added, the jobs that were already
        there). Every folder is read first, so one unreadable results.json adds nothing. The folders stay where
        they are and are read in place; they are never resumed from here (a record holds no checkpoints:
        rerunning would start over and replace its results)."""
        folders = job_folders(Path(root).expanduser().resolve())
        if not folders:
            raise DataError(f"no job folder here (a folder holding a job's {RESULTS_FILE})", path=str(root))
        present = [job for job in map(self.job_in, folders) if job]
        known = {job.out_dir for job in present}
        recorded = [read_recorded_job(folder) for folder in folders if folder not in known]
        return [self._insert_recorded(job) for job in recorded], present

    def _insert_recorded(self, recorded: RecordedJob) -> Job:
        stamp = recorded.stamp
        return self._insert(recorded.spec, recorded.folder, COMPLETED if recorded.complete else STOPPED,
                            options={IMPORTED: True}, at=stamp, finished_at=stamp,
                            progress=recorded.finished / max(recorded.total, 1),
                            progress_text=f"recorded with {recorded.finished} of {recorded.total} runs finished")

    # Launching
    def claim(self, max_running: int) -> list[Job]:
        """Atomically take the oldest queued jobs that may start now: local and torchrun jobs while fewer than
        `max_running` of them are active, SLURM jobs always (the cluster queues them). Marks them launched."""
        with self._connect() as conn:  # the common case, nothing waiting, takes no write lock
            if not conn.execute("SELECT 1 FROM jobs WHERE status = ? AND launched_at IS NULL", (QUEUED,)).fetchone():
                return []
        with self._transaction() as conn:
            busy = conn.execute("SELECT COUNT(*) FROM jobs WHERE backend != 'slurm' AND (status = ? OR "
                                "(status = ? AND launched_at IS NOT NULL))", (RUNNING, QUEUED)).fetchone()[0]
            waiting = conn.execute("SELECT id, backend FROM jobs WHERE status = ? AND launched_at IS NULL "
                                   "ORDER BY queued_at, rowid", (QUEUED,)).fetchall()
            claimed = []
            for job_id, backend in waiting:
                if backend != "slurm":
                    if busy >= max_running:
                        continue
                    busy += 1
                now = time.time()
                conn.execute("UPDATE jobs SET launched_at = ?, heartbeat_at = ?, attempts = attempts + 1 "
                             "WHERE id = ?", (now, now, job_id))
                claimed.append(job_id)
        return [self.get(job_id) for job_id in claimed]

    def claim_job(self, job_id: str) -> bool:
        """Mark one queued job launched (regardless of the concurrency limit); False if it was not waiting."""
        now = time.time()
        with self._connect() as conn:
            cursor = conn.execute("UPDATE jobs SET launched_at = ?, heartbeat_at = ?, attempts = attempts + 1 "
                                  "WHERE id = ? AND status = ? AND launched_at IS NULL",
                                  (now, now, check_job_id(job_id), QUEUED))
            return cursor.rowcount > 0

    def set_process(self, job_id: str, pid: int | None = None, pgid: int | None = None,
                    external_id: str | None = None, **options) -> None:
        """Record how the launcher started the job (process, process group, SLURM id, launcher options)."""
        values = {"pid": pid, "pgid": pgid, "external_id": external_id, "host": socket.gethostname()}
        if options:
            values["options"] = json.dumps({**self.get(job_id).options, **options})
        self._update(job_id, **values)

    # Called by the worker
    def mark_running(self, job_id: str, pid: int | None = None, host: str | None = None) -> bool:
        """queued → running, unless the job was cancelled meanwhile (then False: the worker must not start)."""
        now = time.time()
        return self._update(job_id, "status = ? AND cancel_requested_at IS NULL", (QUEUED,), status=RUNNING,
                            started_at=now, heartbeat_at=now, progress_at=now, pid=pid or os.getpid(),
                            host=host or socket.gethostname(), error=None)

    def heartbeat(self, job_id: str) -> None:
        self._update(job_id, "status = ?", (RUNNING,), heartbeat_at=time.time())

    def update_progress(self, job_id: str, fraction: float, text: str = "") -> None:
        """A step finished: record where the job stands and when (the heartbeat alone does not show progress)."""
        now = time.time()
        self._update(job_id, "status = ?", (RUNNING,), progress=min(max(float(fraction), 0.0), 1.0),
                     progress_text=text, heartbeat_at=now, progress_at=now)

    def mark_completed(self, job_id: str) -> bool:
        job = self.get(job_id)
        if job.results_path.is_file():
            self.add_artifact(job_id, "results", job.results_path)
        return self._update(job_id, "status = ?", (RUNNING,), status=COMPLETED, finished_at=time.time(),
                            progress=1.0, error=None, resumable=False)

    def mark_failed(self, job_id: str, error: str) -> bool:
        return self._finish(job_id, FAILED, error)

    def mark_cancelled(self, job_id: str) -> bool:
        return self._finish(job_id, CANCELLED)

    def mark_stopped(self, job_id: str) -> bool:
        return self._finish(job_id, STOPPED)

    def _finish(self, job_id: str, status: str, error: str | None = None, where: str = "1",
                params: tuple = ()) -> bool:
        return self._update(job_id, f"status IN (?, ?) AND ({where})", (*ACTIVE, *params), status=status,
                            finished_at=time.time(), error=error, resumable=self.has_saved_work(job_id))

    # Cancel and resume
    def request_cancel(self, job_id: str) -> Job:
        """Ask the job to stop. A job no launcher took yet is cancelled at once; a launched one is flagged
        (the worker stops at its next step, checkpointing). Finished jobs are left as they are."""
        if not self._finish(job_id, CANCELLED, where="status = ? AND launched_at IS NULL", params=(QUEUED,)):
            self._update(job_id, "status IN (?, ?) AND cancel_requested_at IS NULL", ACTIVE,
                         cancel_requested_at=time.time())
        return self.get(job_id)

    def cancel_requested(self, job_id: str) -> bool:
        return self.get(job_id).cancel_requested_at is not None

    def requeue(self, job_id: str) -> Job:
        """failed / cancelled / stopped → queued, in the same folder (the engine resumes from its checkpoints)."""
        job = self.get(job_id)
        if job.imported:
            raise ConfigError(f"job {job_id} was imported from {job.out_dir}, where it ran elsewhere: resume it there "
                              "(the reproduction: python -m dlfa reproduce run --data-root DIR)")
        if job.status not in RESUMABLE_FROM:
            raise ConfigError(f"job {job_id} is {job.status}: only {', '.join(RESUMABLE_FROM)} jobs can be resumed")
        self._update(job_id, "status = ?", (job.status,), status=QUEUED, queued_at=time.time(), launched_at=None,
                     started_at=None, finished_at=None, heartbeat_at=None, progress_at=None, cancel_requested_at=None,
                     pid=None, pgid=None, external_id=None, error=None)
        return self.get(job_id)

    # Results and saved work
    def results(self, job_id: str) -> JobResult | None:
        """The job's results.json (None until it exists); DataError naming the file and field when it is not
        readable results."""
        path = self.get(job_id).results_path
        return read_job_results(path) if path.is_file() else None

    def metrics(self, job_id: str) -> list[dict]:
        """[{unit, language, metric, value, ci_low, ci_high, n}] of the job's finished runs, in sweep order, read
        from its results.json ([] until it exists)."""
        results = self.results(job_id)
        return [] if results is None else unit_metric_rows(results)

    def has_saved_work(self, job_id: str) -> bool:
        """Whether resuming would not start over: a checkpoint is still on disk or a unit has finished."""
        if any(Path(a["path"]).exists() for a in self.artifacts(job_id, "checkpoint")):
            return True
        try:
            results = self.results(job_id)
        except DataError:  # a torn or foreign file: nothing to resume from
            return False
        return results is not None and bool(results.completed_runs)

    def refresh_stale(self, timeout_s: float = STALE_AFTER_S) -> list[Job]:
        """Mark launched jobs whose worker is gone (its process ended on this host, or no heartbeat for
        `timeout_s`) as failed, or cancelled when a cancel was pending. SLURM jobs that have not started
        are left alone: the cluster may hold them in its queue. Returns the jobs it changed."""
        now, host, changed = time.time(), socket.gethostname(), []
        for job in self.list(ACTIVE):
            if job.launched_at is None or (job.backend == "slurm" and job.started_at is None):
                continue
            if job.started_at is None and job.pid is None:
                dead = now - job.launched_at > timeout_s  # the launcher never recorded a process
            else:
                process_gone = job.host == host and job.pid is not None and not pid_alive(job.pid)
                dead = process_gone or now - (job.heartbeat_at or job.launched_at) > timeout_s
            if not dead:
                continue
            # Only if nothing moved meanwhile (a heartbeat or the worker's own final status wins).
            guard, params = "status = ? AND heartbeat_at IS ?", (job.status, job.heartbeat_at)
            if job.cancel_requested_at is not None:
                updated = self._finish(job.id, CANCELLED, where=guard, params=params)
            else:
                message = STALE_MESSAGE if self.has_saved_work(job.id) else STALE_MESSAGE_NO_CHECKPOINT
                updated = self._finish(job.id, FAILED, message, where=guard, params=params)
            if updated:
                changed.append(self.get(job.id))
        return changed
