"""One job as the store records it (`Job`), its ids, and what its status means now (active, resumable, stalled).

A job's life: `queued` (waiting for a slot; `launched_at` is set once a launcher took it) → `running`
(the worker marked it; shown as `stalled` while no step has finished for DLFA_STALL_AFTER_S seconds although the
worker's heartbeat lives, e.g. a hung loop) → `completed` | `failed` | `cancelled` (asked by the user) | `stopped`
(the worker got SIGTERM, e.g. a SLURM time limit, and checkpointed). `failed`, `cancelled` and `stopped` jobs can
be re-queued in the same folder, where the engine resumes from the last checkpoint. The words are
dlfa.results' (one vocabulary for the store and results.json).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dlfa.engine.spec import JobSpec
from dlfa.errors import ConfigError
from dlfa.results import (CANCELLED, FAILED, JOB_STATUSES, QUEUED, RESULTS_FILE, RUNNING, STOPPED)

STATUSES = JOB_STATUSES
ACTIVE = (QUEUED, RUNNING)
RESUMABLE_FROM = (FAILED, CANCELLED, STOPPED)
STALLED = "stalled"  # shown, never stored
STALL_ENV = "DLFA_STALL_AFTER_S"
STALL_AFTER_S = 3600.0  # longer than any evaluation or data loading between two finished steps
LOG_NAME = "worker.log"
JOB_ID_RE = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")
IMPORTED = "imported"  # the option that marks a job recorded elsewhere (JobStore.add_finished_under)


@dataclass
class Job:
    """One row of the store. Times are Unix seconds; `out_dir` holds the run's artifacts and `worker.log`."""

    id: str
    name: str
    spec_json: str
    status: str
    backend: str
    out_dir: Path
    cwd: str
    options: dict = field(default_factory=dict)
    created_at: float = 0.0
    queued_at: float = 0.0
    launched_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    heartbeat_at: float | None = None
    progress_at: float | None = None  # when the worker started or last finished a step
    cancel_requested_at: float | None = None
    pid: int | None = None
    pgid: int | None = None
    host: str | None = None
    external_id: str | None = None
    progress: float = 0.0
    progress_text: str = ""
    error: str | None = None
    resumable: bool = False
    attempts: int = 0

    @property
    def spec(self) -> JobSpec:
        return JobSpec.from_json(self.spec_json)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def stalled_for(self, now: float | None = None) -> float | None:
        """Seconds since the last finished step of a running job that has made no progress for longer than
        `stall_after_s()`; None when it is not stalled."""
        if self.status != RUNNING:
            return None
        since = (now or time.time()) - (self.progress_at or self.started_at or self.queued_at)
        return since if since > stall_after_s() else None

    @property
    def state(self) -> str:
        """The status to show: `stalled` for a running job whose steps stopped finishing, else `status`."""
        return STALLED if self.stalled_for() is not None else self.status

    @property
    def imported(self) -> bool:
        """Recorded elsewhere and added with `JobStore.add_finished_under`: read in place, never resumed here."""
        return bool(self.options.get(IMPORTED))

    @property
    def log_path(self) -> Path:
        return self.out_dir / LOG_NAME

    @property
    def results_path(self) -> Path:
        return self.out_dir / RESULTS_FILE

    def to_dict(self) -> dict:
        data = asdict(self)
        del data["spec_json"]
        return {**data, "spec": json.loads(self.spec_json), "out_dir": str(self.out_dir),
                "log_path": str(self.log_path), "state": self.state}

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Job":
        data = dict(row)
        return cls(id=data.pop("id"), spec_json=data.pop("spec"), out_dir=Path(data.pop("out_dir")),
                   options=json.loads(data.pop("options")), resumable=bool(data.pop("resumable")), **data)


def stall_after_s() -> float:
    """$DLFA_STALL_AFTER_S, seconds without a finished step after which a running job is shown stalled."""
    value = os.environ.get(STALL_ENV)
    if not value:
        return STALL_AFTER_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise ConfigError(f"{STALL_ENV} must be a positive number of seconds, got '{value}'")
    return seconds


def new_job_id() -> str:
    """`YYYYmmdd-HHMMSS-xxxxxx`: sortable by time, random enough that two submits never collide."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def check_job_id(job_id: str) -> str:
    """Refuse anything but a generated id: ids end up in paths, so they must never carry `/` or `..`."""
    if not isinstance(job_id, str) or not JOB_ID_RE.fullmatch(job_id):
        raise ConfigError(f"'{job_id}' is not a job id (job ids look like 20261124-221503-ab12cd)")
    return job_id


def pid_alive(pid: int) -> bool:
    """Whether a process exists on this machine and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def inside(path: Path, folder: Path) -> bool:
    """Whether `path` is `folder` or lies in it."""
    return path == folder or folder in path.parents
