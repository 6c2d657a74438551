"""The job store: one SQLite file (`cache/jobs.sqlite`, WAL mode) shared by the app, the CLI and the workers.

Each thread keeps its own connection, so one `JobStore` is safe to share between threads, and any number
of processes on one machine may use the same file. WAL mode needs every process on one host: SLURM workers
on other nodes must not share the file over a network file system.

A job's life: `queued` (waiting for a slot; `launched_at` is set once a launcher took it) → `running`
(the worker marked it; shown as `stalled` while no step has finished for DLFA_STALL_AFTER_S seconds although the
worker's heartbeat lives, e.g. a hung loop) → `completed` | `failed` | `cancelled` (asked by the user) | `stopped` (the worker
got SIGTERM, e.g. a SLURM time limit, and checkpointed). `failed`, `cancelled` and `stopped` jobs can be
re-queued in the same folder, where the engine resumes from the last checkpoint.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dlfa.errors import ConfigError, DataError
from dlfa.engine.spec import JobSpec
from dlfa.paths import cache_dir

STATUSES = ("queued", "running", "completed", "failed", "cancelled", "stopped")
ACTIVE = ("queued", "running")
RESUMABLE_FROM = ("failed", "cancelled", "stopped")
STALE_AFTER_S = 60.0
STALL_ENV = "DLFA_STALL_AFTER_S"
STALL_AFTER_S = 3600.0  # longer than any evaluation or data loading between two finished steps
STALE_MESSAGE = "worker stopped unexpectedly (killed?) — resumable"
STALE_MESSAGE_NO_CHECKPOINT = "worker stopped unexpectedly (killed?) — no checkpoint yet: resuming starts over"
LOG_NAME = "worker.log"
RESULTS_NAME = "results.json"
JOB_ID_RE = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")
IMPORTED = "imported"  # the option that marks a job recorded elsewhere (add_finished)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    backend TEXT NOT NULL,
    out_dir TEXT NOT NULL UNIQUE,
    cwd TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    queued_at REAL NOT NULL,
    launched_at REAL,
    started_at REAL,
    finished_at REAL,
    heartbeat_at REAL,
    progress_at REAL,
    cancel_requested_at REAL,
    pid INTEGER,
    pgid INTEGER,
    host TEXT,
    external_id TEXT,
    progress REAL NOT NULL DEFAULT 0,
    progress_text TEXT NOT NULL DEFAULT '',
    error TEXT,
    resumable INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, queued_at);
CREATE TABLE IF NOT EXISTS artifacts (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    unit TEXT NOT NULL DEFAULT '',
    path TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (job_id, kind, unit)
);
CREATE TABLE IF NOT EXISTS metrics (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    unit TEXT NOT NULL,
    language TEXT NOT NULL,
    metric TEXT,
    value REAL,
    ci_low REAL,
    ci_high REAL,
    n INTEGER,
    PRIMARY KEY (job_id, unit, language)
);
"""


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
        if self.status != "running":
            return None
        since = (now or time.time()) - (self.progress_at or self.started_at or self.queued_at)
        return since if since > stall_after_s() else None

    @property
    def state(self) -> str:
        """The status to show: `stalled` for a running job whose steps stopped finishing, else `status`."""
        return "stalled" if self.stalled_for() is not None else self.status

    @property
    def imported(self) -> bool:
        """Recorded elsewhere and added with `JobStore.add_finished`: read in place, never resumed from here."""
        return bool(self.options.get(IMPORTED))

    @property
    def log_path(self) -> Path:
        return self.out_dir / LOG_NAME

    @property
    def results_path(self) -> Path:
        return self.out_dir / RESULTS_NAME

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


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def job_folders(root: Path) -> list[Path]:
    """The job folders under `root`, itself included: folders holding a results.json that lie inside no other
    such folder (a job's unit folders, each with its own results.json, are part of the job)."""
    found: list[Path] = []
    for path in sorted(root.rglob(RESULTS_NAME), key=lambda p: len(p.parts)):
        if not any(_inside(path.parent, outer) for outer in found):
            found.append(path.parent)
    return sorted(found)


def read_job_results(folder: Path) -> tuple[JobSpec, int, int]:
    """(spec, finished runs, the spec's runs) of the job whose results.json is in `folder`; DataError naming
    the file when it is missing or is not a job's results."""
    path = folder / RESULTS_NAME
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
        spec = JobSpec.from_dict(results["spec"])
        return spec, sum(run["status"] == "complete" for run in results["runs"]), len(spec.units())
    except FileNotFoundError:
        raise DataError("no results.json: not a job folder", path=str(folder)) from None
    except (OSError, ValueError, TypeError, KeyError, ConfigError) as exc:
        reason = f"no '{exc.args[0]}'" if isinstance(exc, KeyError) else str(exc)
        raise DataError(f"not a job's results (a JSON object with 'spec' and 'runs'): {reason}; "
                        "nothing was imported", path=str(path)) from exc


class JobStore:
    """The jobs table plus per-job artifacts (results, checkpoints) and metrics. Run folders of jobs
    without an explicit output folder are `<store folder>/runs/<id>/` (by default `cache/runs/<id>/`)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path).expanduser().resolve() if path else cache_dir().resolve() / "jobs.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.runs_root = self.path.parent / "runs"
        self._local = threading.local()
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
            self._add_missing_columns(conn)

    def __repr__(self) -> str:
        return f"JobStore({str(self.path)!r})"

    @staticmethod
    def _add_missing_columns(conn: sqlite3.Connection) -> None:
        """Bring a store written by an older version up to SCHEMA (columns added since: progress_at)."""
        columns = {row["name"] for row in conn.execute("PRAGMA table_info(jobs)")}
        if "progress_at" not in columns:
            try:
                conn.execute("ALTER TABLE jobs ADD COLUMN progress_at REAL")
            except sqlite3.OperationalError as exc:  # another process added it meanwhile
                if "duplicate column" not in str(exc):
                    raise

    # ------------------------------------------------------------------------------------------------
    @contextmanager
    def _connect(self):
        """This thread's connection (one per thread and process; closing the last connection to a WAL
        database checkpoints it, which would make every call cost an fsync)."""
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn, self._local.pid = conn, os.getpid()
        yield conn

    @contextmanager
    def _transaction(self):
        """A write transaction that holds the write lock from its first statement (no lost updates)."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _update(self, job_id: str, where: str = "1", params: tuple = (), **values) -> bool:
        """Set `values` on the job when `where` holds; True when a row changed."""
        check_job_id(job_id)
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._connect() as conn:
            cursor = conn.execute(f"UPDATE jobs SET {assignments} WHERE id = ? AND ({where})",
                                  (*values.values(), job_id, *params))
            return cursor.rowcount > 0

    # ------------------------------------------------------------------------------------------------
    def submit(self, spec: JobSpec, out_dir: str | Path | None = None, options: dict | None = None) -> Job:
        """Record a queued job. `out_dir` defaults to `runs/<id>/`; a given folder must not overlap another
        job's folder or hold the store. `options` are launcher settings (e.g. SLURM partition)."""
        spec.validate(check_data=False, check_encoder=False)
        now = time.time()
        with self._transaction() as conn:
            job_id = new_job_id()
            while conn.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone():
                job_id = new_job_id()
            folder = self._run_folder(conn, job_id, out_dir)
            conn.execute(
                "INSERT INTO jobs (id, name, spec, status, backend, out_dir, cwd, options, created_at, queued_at) "
                "VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
                (job_id, spec.name, spec.to_json(), spec.backend, str(folder), os.getcwd(),
                 json.dumps(options or {}), now, now))
        return self.get(job_id)

    def add_finished(self, folder: str | Path) -> Job:
        """Record a job that ran outside this store (the reproduction record in docs/reproduction/, a run folder
        copied from a cluster) from the results.json in its folder: `completed` when every run finished, else
        `stopped`. The folder stays where it is and is read in place, like the folder of any job; it is never
        resumed from here (a record holds no checkpoints: rerunning would start over and replace its results)."""
        folder = Path(folder).expanduser().resolve()
        return self._insert_finished(folder, *read_job_results(folder))

    def add_finished_under(self, root: str | Path) -> tuple[list[Job], list[Job]]:
        """`add_finished` for every job folder under `root` (see `job_folders`) that is not in the store yet:
        returns (the jobs added, the jobs that were already there). Every folder is read first, so one
        unreadable results.json adds nothing."""
        folders = job_folders(Path(root).expanduser().resolve())
        if not folders:
            raise DataError("no job folder here (a folder holding a job's results.json)", path=str(root))
        present = [job for job in map(self.job_in, folders) if job]
        known = {job.out_dir for job in present}
        read = [(folder, read_job_results(folder)) for folder in folders if folder not in known]
        return [self._insert_finished(folder, *found) for folder, found in read], present

    def _insert_finished(self, folder: Path, spec: JobSpec, finished: int, total: int) -> Job:
        complete = finished == total > 0
        stamp = (folder / RESULTS_NAME).stat().st_mtime
        with self._transaction() as conn:
            job_id = new_job_id()
            self._run_folder(conn, job_id, folder)
            conn.execute(
                "INSERT INTO jobs (id, name, spec, status, backend, out_dir, cwd, options, created_at, queued_at, "
                "finished_at, progress, progress_text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, spec.name, spec.to_json(), "completed" if complete else "stopped", spec.backend,
                 str(folder), os.getcwd(), json.dumps({IMPORTED: True}), stamp, stamp, stamp, finished / max(total, 1),
                 f"recorded with {finished} of {total} runs finished"))
        return self.get(job_id)

    def job_in(self, folder: str | Path) -> Job | None:
        """The job whose folder is `folder`, if any."""
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE out_dir = ?",
                               (str(Path(folder).expanduser().resolve()),)).fetchone()
        return Job.from_row(row) if row else None

    def _run_folder(self, conn: sqlite3.Connection, job_id: str, out_dir: str | Path | None) -> Path:
        if out_dir is None:
            folder = self.runs_root / job_id
            folder.mkdir(parents=True, exist_ok=False)
            return folder
        folder = Path(out_dir).expanduser().resolve()
        if _inside(self.path, folder) or _inside(self.runs_root, folder):
            raise ConfigError(f"output folder {folder} holds the job store: choose a folder of its own")
        if _inside(folder, self.runs_root):
            raise ConfigError(f"output folder {folder} is inside {self.runs_root}, which holds the job folders: "
                              "leave the output folder empty or choose one elsewhere")
        for other_id, other_dir in conn.execute("SELECT id, out_dir FROM jobs"):
            other = Path(other_dir)
            if _inside(folder, other) or _inside(other, folder):
                raise ConfigError(f"output folder {folder} overlaps the folder of job {other_id} ({other}): "
                                  "two jobs never share a folder")
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def get(self, job_id: str) -> Job:
        check_job_id(job_id)
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise ConfigError(f"no job {job_id} in {self.path}")
        return Job.from_row(row)

    def list(self, status: str | tuple[str, ...] | list[str] | None = None) -> list[Job]:
        """Jobs, newest first, optionally only those with the given status(es)."""
        statuses = (status,) if isinstance(status, str) else tuple(status or ())
        unknown = [s for s in statuses if s not in STATUSES]
        if unknown:
            raise ConfigError(f"unknown job status {', '.join(unknown)}: choose from {', '.join(STATUSES)}")
        query = "SELECT * FROM jobs"
        if statuses:
            query += f" WHERE status IN ({', '.join('?' * len(statuses))})"
        with self._connect() as conn:
            rows = conn.execute(query + " ORDER BY created_at DESC, rowid DESC", statuses).fetchall()
        return [Job.from_row(row) for row in rows]

    # ------------------------------------------------------------------------------------------------
    # Launching
    def claim(self, max_running: int) -> list[Job]:
        """Atomically take the oldest queued jobs that may start now: local and torchrun jobs while fewer than
        `max_running` of them are active, SLURM jobs always (the cluster queues them). Marks them launched."""
        with self._connect() as conn:  # the common case, nothing waiting, takes no write lock
            if not conn.execute("SELECT 1 FROM jobs WHERE status = 'queued' AND launched_at IS NULL").fetchone():
                return []
        with self._transaction() as conn:
            busy = conn.execute("SELECT COUNT(*) FROM jobs WHERE backend != 'slurm' AND (status = 'running' OR "
                                "(status = 'queued' AND launched_at IS NOT NULL))").fetchone()[0]
            waiting = conn.execute("SELECT id, backend FROM jobs WHERE status = 'queued' AND launched_at IS NULL "
                                   "ORDER BY queued_at, rowid").fetchall()
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
                                  "WHERE id = ? AND status = 'queued' AND launched_at IS NULL",
                                  (now, now, check_job_id(job_id)))
            return cursor.rowcount > 0

    def set_process(self, job_id: str, pid: int | None = None, pgid: int | None = None,
                    external_id: str | None = None, **options) -> None:
        """Record how the launcher started the job (process, process group, SLURM id, launcher options)."""
        values = {"pid": pid, "pgid": pgid, "external_id": external_id, "host": socket.gethostname()}
        if options:
            values["options"] = json.dumps({**self.get(job_id).options, **options})
        self._update(job_id, **values)

    # ------------------------------------------------------------------------------------------------
    # Called by the worker
    def mark_running(self, job_id: str, pid: int | None = None, host: str | None = None) -> bool:
        """queued → running, unless the job was cancelled meanwhile (then False: the worker must not start)."""
        now = time.time()
        return self._update(job_id, "status = 'queued' AND cancel_requested_at IS NULL", status="running",
                            started_at=now, heartbeat_at=now, progress_at=now, pid=pid or os.getpid(),
                            host=host or socket.gethostname(), error=None)

    def heartbeat(self, job_id: str) -> None:
        self._update(job_id, "status = 'running'", heartbeat_at=time.time())

    def update_progress(self, job_id: str, fraction: float, text: str = "") -> None:
        """A step finished: record where the job stands and when (the heartbeat alone does not show progress)."""
        now = time.time()
        self._update(job_id, "status = 'running'", progress=min(max(float(fraction), 0.0), 1.0),
                     progress_text=text, heartbeat_at=now, progress_at=now)

    def mark_completed(self, job_id: str) -> bool:
        job = self.get(job_id)
        if job.results_path.is_file():
            self.add_artifact(job_id, "results", job.results_path)
        return self._update(job_id, "status = 'running'", status="completed", finished_at=time.time(),
                            progress=1.0, error=None, resumable=False)

    def mark_failed(self, job_id: str, error: str) -> bool:
        return self._finish(job_id, "failed", error)

    def mark_cancelled(self, job_id: str) -> bool:
        return self._finish(job_id, "cancelled")

    def mark_stopped(self, job_id: str) -> bool:
        return self._finish(job_id, "stopped")

    def _finish(self, job_id: str, status: str, error: str | None = None, where: str = "1",
                params: tuple = ()) -> bool:
        return self._update(job_id, f"status IN ('queued', 'running') AND ({where})", params, status=status,
                            finished_at=time.time(), error=error, resumable=self.has_saved_work(job_id))

    # ------------------------------------------------------------------------------------------------
    # Cancel and resume
    def request_cancel(self, job_id: str) -> Job:
        """Ask the job to stop. A job no launcher took yet is cancelled at once; a launched one is flagged
        (the worker stops at its next step, checkpointing). Finished jobs are left as they are."""
        now = time.time()
        if not self._finish(job_id, "cancelled", where="status = 'queued' AND launched_at IS NULL"):
            self._update(job_id, "status IN ('queued', 'running') AND cancel_requested_at IS NULL",
                         cancel_requested_at=now)
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
        self._update(job_id, "status = ?", (job.status,), status="queued", queued_at=time.time(), launched_at=None,
                     started_at=None, finished_at=None, heartbeat_at=None, progress_at=None, cancel_requested_at=None,
                     pid=None, pgid=None, external_id=None, error=None)
        return self.get(job_id)

    # ------------------------------------------------------------------------------------------------
    # Artifacts, metrics, results, logs
    def add_artifact(self, job_id: str, kind: str, path: str | Path, unit: str = "") -> None:
        """Record the latest `kind` artifact ('results', 'checkpoint') of a unit; it must lie in the run folder."""
        job = self.get(job_id)
        resolved = Path(path).resolve()
        if not _inside(resolved, job.out_dir.resolve()):
            raise ConfigError(f"artifact {path} is outside the folder of job {job_id} ({job.out_dir})")
        with self._connect() as conn:
            conn.execute("INSERT OR REPLACE INTO artifacts (job_id, kind, unit, path, created_at) "
                         "VALUES (?, ?, ?, ?, ?)",
                         (job_id, kind, unit, str(resolved), time.time()))

    def artifacts(self, job_id: str, kind: str | None = None) -> list[dict]:
        check_job_id(job_id)
        with self._connect() as conn:
            rows = conn.execute("SELECT kind, unit, path, created_at FROM artifacts WHERE job_id = ? "
                                "AND (? IS NULL OR kind = ?) ORDER BY created_at", (job_id, kind, kind)).fetchall()
        return [dict(row) for row in rows]

    def has_saved_work(self, job_id: str) -> bool:
        """Whether resuming would not start over: a checkpoint is still on disk or a unit has finished."""
        return bool(self.metrics(job_id)) or any(Path(a["path"]).exists() for a in self.artifacts(job_id, "checkpoint"))

    def record_metrics(self, job_id: str, unit: str, metrics: dict) -> None:
        """Store a unit's per-language metrics: {language: {metric, value, ci_low, ci_high, n}}."""
        check_job_id(job_id)
        rows = [(job_id, unit, lang, m.get("metric"), m.get("value"), m.get("ci_low"), m.get("ci_high"), m.get("n"))
                for lang, m in metrics.items()]
        with self._connect() as conn:
            conn.executemany("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def metrics(self, job_id: str) -> list[dict]:
        """[{unit, language, metric, value, ci_low, ci_high, n}] in the order the units finished."""
        check_job_id(job_id)
        with self._connect() as conn:
            rows = conn.execute("SELECT unit, language, metric, value, ci_low, ci_high, n FROM metrics "
                                "WHERE job_id = ? ORDER BY rowid", (job_id,)).fetchall()
        return [dict(row) for row in rows]

    def results(self, job_id: str) -> dict | None:
        """The job's results.json (None until it exists)."""
        path = self.get(job_id).results_path
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read the results: {exc}", path=str(path)) from exc

    def log_path(self, job_id: str) -> Path:
        return self.get(job_id).log_path

    # ------------------------------------------------------------------------------------------------
    def delete(self, job_id: str) -> None:
        """Forget a job that is not active. Its folder is removed only when it is the store's own
        `runs/<id>/`; a folder the user chose is left in place."""
        job = self.get(job_id)
        if job.active and (job.status == "running" or job.launched_at is not None):
            raise ConfigError(f"job {job_id} is {job.status}: cancel it first (python -m dlfa jobs cancel {job_id})")
        with self._connect() as conn:
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        own_folder = self.runs_root / job_id
        if job.out_dir == own_folder and own_folder.is_dir() and not own_folder.is_symlink():
            shutil.rmtree(own_folder)

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
                updated = self._finish(job.id, "cancelled", where=guard, params=params)
            else:
                message = STALE_MESSAGE if self.has_saved_work(job.id) else STALE_MESSAGE_NO_CHECKPOINT
                updated = self._finish(job.id, "failed", message, where=guard, params=params)
            if updated:
                changed.append(self.get(job.id))
        return changed
