"""Work that runs outside the app's process: submitting jobs (within a shared server's limits), evaluating an
upload in a job, who may control a job, a job's log tail and duration, and the background
`python -m dlfa prepare` that builds the embedded encoder and the classroom pack."""
from __future__ import annotations

import os
import time
from pathlib import Path

import streamlit as st

from dlfa.app import serving
from dlfa.app.runs import Unit, store
from dlfa.app.session import OPERATOR_KEY, embedded_built, gpu_info, session_id, shared
from dlfa.paths import cache_dir


def may_control(job) -> bool:
    """Whether this session may cancel, resume or delete a job (always, unless the server is shared)."""
    return not shared() or serving.may_control(job, session_id(), bool(st.session_state.get(OPERATOR_KEY)))


def check_capacity(adding: int = 1) -> None:
    """On a shared server: DlfaError when `adding` more jobs would pass this session's limit."""
    if shared():
        serving.check_session_capacity(store().list(), session_id(), adding)


def submit(spec, out_dir=None):
    """Submit a JobSpec through dlfa.jobs.launch.submit on this app's store (into `out_dir`, by default the
    store's runs/<id>/), recording this session with it; returns the Job. On a shared server only allowed data
    roots and encoders, within the session's job limit."""
    from dlfa.jobs.launch import submit as launch_submit

    if shared():
        serving.check_allowed(spec)
    check_capacity()
    return launch_submit(spec, store(), out_dir=out_dir, options={serving.SESSION_OPTION: session_id()})


def evaluate_upload_in_job(unit: Unit, upload, bootstrap_samples: int = 500):
    """Start a job that evaluates a unit on an uploaded set (inference outside the app's process; it starts at
    once, beside a training job, as uploads are capped in size); returns the Job."""
    from dlfa.engine.uploads import evaluation_options, evaluation_spec
    from dlfa.jobs.launch import launch

    check_capacity()
    options = {**evaluation_options(unit.folder, upload, bootstrap_samples), serving.SESSION_OPTION: session_id()}
    job = store().submit(evaluation_spec(unit.folder, upload), options=options)
    return launch(job, store())


def log_tail(job, lines: int = 30) -> str:
    """The last `lines` lines of a job's worker.log ('' when there is none yet)."""
    try:
        with open(job.log_path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def duration(job) -> str:
    start = job.started_at or job.launched_at
    if not start:
        return ""
    return elapsed((job.finished_at or time.time()) - start)


def elapsed(seconds: float) -> str:
    """'4 min 2 s' or '35 s'."""
    return f"{int(seconds // 60)} min {int(seconds % 60)} s" if seconds >= 60 else f"{seconds:.0f} s"


# ----------------------------------------------------------------------------------------------------
# Readiness and the background `python -m dlfa prepare`


def readiness(data_root: str | None) -> dict:
    """What the Home page shows: encoder built, data root / classroom pack found, GPU."""
    from dlfa.data.registry import pack_built, pack_dir

    root = Path(data_root).expanduser() if data_root else None
    return {"encoder": embedded_built(), "encoder_dir": str(cache_dir() / "models" / "e5-small"),
            "data_root": bool(root and root.is_dir()), "data_root_path": str(root) if root else "",
            "pack": pack_built(), "pack_dir": str(pack_dir()), "gpu": gpu_info()}


def _prepare_files() -> tuple[Path, Path]:
    return cache_dir() / "prepare.pid", cache_dir() / "prepare.log"


def prepare_status() -> dict:
    """{"running": bool, "pid", "log": last lines} of the background `python -m dlfa prepare`."""
    from dlfa.jobs.records import pid_alive

    pid_file, log_file = _prepare_files()
    pid = None
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        pass
    running = bool(pid) and pid_alive(pid)
    try:
        lines = log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-12:]
    except OSError:
        lines = []
    return {"running": running, "pid": pid, "log": "\n".join(lines), "started": log_file.exists()}


def start_prepare() -> int:
    """Start `python -m dlfa prepare` in its own process group (it outlives the app); returns its pid."""
    import subprocess
    import sys

    from dlfa.io import write_text
    from dlfa.paths import REPO_ROOT

    status = prepare_status()
    if status["running"]:
        return status["pid"]
    pid_file, log_file = _prepare_files()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log_file, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "dlfa", "prepare"], stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, cwd=str(REPO_ROOT), env=env, start_new_session=True)
    write_text(pid_file, str(process.pid))
    return process.pid
