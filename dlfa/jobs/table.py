"""The SQLite file of the job store (`cache/jobs.sqlite`, WAL mode): the jobs table and the artifacts table,
connections, transactions, and the job folders the rows point to.

Each thread keeps its own connection, so one table object is safe to share between threads, and any number
of processes on one machine may use the same file. WAL mode needs every process on one host: SLURM workers
on other nodes must not share the file over a network file system. The table keeps job state only: a job's
results live in its folder's results.json (dlfa.results).
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from dlfa.engine.spec import JobSpec
from dlfa.errors import ConfigError
from dlfa.jobs.records import ACTIVE, QUEUED, RUNNING, STATUSES, Job, check_job_id, inside, new_job_id
from dlfa.paths import cache_dir

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
DROP TABLE IF EXISTS metrics;
"""  # metrics: a copy of results.json's that stores before the results contract kept


class JobTable:
    """The rows of the jobs table and their folders. Run folders of jobs without an explicit output folder are
    `<store folder>/runs/<id>/` (by default `cache/runs/<id>/`)."""

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
        return f"{type(self).__name__}({str(self.path)!r})"

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

    def _insert(self, spec: JobSpec, out_dir: str | Path | None, status: str = QUEUED, options: dict | None = None,
                at: float | None = None, **values) -> Job:
        """A new row for `spec` in its own folder (see `_run_folder`); `values` set further columns."""
        now = time.time() if at is None else at
        row = {"name": spec.name, "spec": spec.to_json(), "status": status, "backend": spec.backend,
               "cwd": os.getcwd(), "options": json.dumps(options or {}), "created_at": now, "queued_at": now,
               **values}
        with self._transaction() as conn:
            job_id = new_job_id()
            while conn.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone():
                job_id = new_job_id()
            row.update(id=job_id, out_dir=str(self._run_folder(conn, job_id, out_dir)))
            conn.execute(f"INSERT INTO jobs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                         tuple(row.values()))
        return self.get(job_id)

    def _run_folder(self, conn: sqlite3.Connection, job_id: str, out_dir: str | Path | None) -> Path:
        """`runs/<id>/` when no folder is given; a given folder must not overlap another job's or hold the store."""
        if out_dir is None:
            folder = self.runs_root / job_id
            folder.mkdir(parents=True, exist_ok=False)
            return folder
        folder = Path(out_dir).expanduser().resolve()
        if inside(self.path, folder) or inside(self.runs_root, folder):
            raise ConfigError(f"output folder {folder} holds the job store: choose a folder of its own")
        if inside(folder, self.runs_root):
            raise ConfigError(f"output folder {folder} is inside {self.runs_root}, which holds the job folders: "
                              "leave the output folder empty or choose one elsewhere")
        for other_id, other_dir in conn.execute("SELECT id, out_dir FROM jobs"):
            other = Path(other_dir)
            if inside(folder, other) or inside(other, folder):
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

    def job_in(self, folder: str | Path) -> Job | None:
        """The job whose folder is `folder`, if any."""
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE out_dir = ?",
                               (str(Path(folder).expanduser().resolve()),)).fetchone()
        return Job.from_row(row) if row else None

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

    def delete(self, job_id: str) -> None:
        """Forget a job that is not active. Its folder is removed only when it is the store's own
        `runs/<id>/`; a folder the user chose is left in place."""
        job = self.get(job_id)
        if job.status in ACTIVE and (job.status == RUNNING or job.launched_at is not None):
            raise ConfigError(f"job {job_id} is {job.status}: cancel it first (python -m dlfa jobs cancel {job_id})")
        with self._connect() as conn:
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        own_folder = self.runs_root / job_id
        if job.out_dir == own_folder and own_folder.is_dir() and not own_folder.is_symlink():
            shutil.rmtree(own_folder)

    # Artifacts: the latest checkpoint (and the results file) of each unit, inside the job's folder.
    def add_artifact(self, job_id: str, kind: str, path: str | Path, unit: str = "") -> None:
        """Record the latest `kind` artifact ('results', 'checkpoint') of a unit; it must lie in the run folder."""
        job = self.get(job_id)
        resolved = Path(path).resolve()
        if not inside(resolved, job.out_dir.resolve()):
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
