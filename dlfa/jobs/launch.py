"""Launchers: start a stored job's worker by its spec's backend, outside the calling process.

- local: `python -m dlfa.jobs.worker <id>` in its own process group, output appended to the job's log;
  it outlives the app or CLI that started it.
- torchrun: `python -m torch.distributed.run --standalone --nproc_per_node=N -m dlfa.jobs.worker <id>`
  (a rendezvous on a free local port), same process-group handling.
- slurm: submitit's AutoExecutor; the submitted function (dlfa.jobs.runner.run_submitted) runs the job
  in-process. Parameters come from the job's options or DLFA_SLURM_PARTITION, DLFA_SLURM_GPUS_PER_NODE,
  DLFA_SLURM_TIME_MIN, DLFA_SLURM_CPUS_PER_TASK; DLFA_SLURM_CLUSTER=local runs it through submitit's local
  executor (tests).

Local and torchrun jobs share a concurrency limit (DLFA_MAX_CONCURRENT_JOBS, default 1 on a CPU, the
number of GPUs otherwise); `dispatch_queued` starts queued jobs while slots are free. The app's refresh,
the CLI and every worker that finishes call it, so the queue drains without the app. With several slots, each
local CPU job gets its share of the cores (cpu_threads_per_job).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

from dlfa.errors import ConfigError
from dlfa.engine.runtime import uses_cuda
from dlfa.engine.spec import JobSpec
from dlfa.jobs.records import ACTIVE, Job, pid_alive
from dlfa.jobs.store import STALE_AFTER_S, JobStore
from dlfa.paths import REPO_ROOT

CANCEL_GRACE_S = 30.0
KILL_WAIT_S = 5.0
WORKER_MODULE = "dlfa.jobs.worker"
SLURM_ENV = {"partition": "DLFA_SLURM_PARTITION", "gpus_per_node": "DLFA_SLURM_GPUS_PER_NODE",
             "timeout_min": "DLFA_SLURM_TIME_MIN", "cpus_per_task": "DLFA_SLURM_CPUS_PER_TASK",
             "cluster": "DLFA_SLURM_CLUSTER"}
SLURM_DEFAULTS = {"timeout_min": 240, "gpus_per_node": 0, "cpus_per_task": 4}


def max_concurrent_jobs() -> int:
    """How many local / torchrun jobs may run at once on this machine."""
    value = os.environ.get("DLFA_MAX_CONCURRENT_JOBS")
    if value:
        try:
            return max(1, int(value))
        except ValueError as exc:
            raise ConfigError(f"DLFA_MAX_CONCURRENT_JOBS must be a whole number, got '{value}'") from exc
    import torch

    return max(1, torch.cuda.device_count())


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS tells it, else the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_threads_per_job() -> int | None:
    """Threads for each local CPU job's torch when several may run at once: the cores shared out evenly (None
    with one slot: torch takes every core). Without it each job would start a thread per core and they would
    fight over them; shared out, two one-thread jobs on two cores train more steps per second together than one
    two-thread job (README "Benchmarks", bench/parallel_jobs.py)."""
    slots = max_concurrent_jobs()
    if slots == 1:
        return None
    return max(1, available_cores() // slots)


def concurrency_summary() -> str:
    """One line for the Jobs page: how many jobs run at once and, on a CPU with several slots, each one's threads."""
    slots = max_concurrent_jobs()
    if slots == 1:
        return ("One job runs at a time; the others wait queued and start by themselves "
                "(DLFA_MAX_CONCURRENT_JOBS raises the limit).")
    line = f"{slots} jobs run at once (DLFA_MAX_CONCURRENT_JOBS); the others wait queued and start by themselves"
    if "OMP_NUM_THREADS" in os.environ:  # as worker_env: the user's setting is passed on unchanged
        return f"{line}; each uses OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} threads on a CPU."
    return f"{line}; a CPU job uses {cpu_threads_per_job()} of this machine's {available_cores()} cores."


def submit(spec: JobSpec, store: JobStore | None = None, out_dir=None, options: dict | None = None) -> Job:
    """Record a job and start it if a slot is free (otherwise it waits in the queue)."""
    store = store or JobStore()
    job = store.submit(spec, out_dir=out_dir, options=options)
    dispatch_queued(store)
    return store.get(job.id)


def dispatch_queued(store: JobStore | None = None) -> list[Job]:
    """Start queued jobs while slots are free, oldest first; returns the jobs started."""
    store = store or JobStore()
    claimed = store.claim(max_concurrent_jobs())
    for job in claimed:
        _start(job, store)
    return claimed


def launch(job: Job, store: JobStore) -> Job:
    """Start one queued job now, ignoring the concurrency limit (a job already taken is left alone)."""
    if store.claim_job(job.id):
        _start(store.get(job.id), store)
    return store.get(job.id)


def _start(job: Job, store: JobStore) -> None:
    """Start a claimed job's worker; a launcher error fails the job with its message."""
    try:
        if job.backend == "slurm":
            _start_slurm(job, store)
        else:
            _start_process(job, store)
    except ConfigError as exc:
        store.mark_failed(job.id, str(exc))
    except Exception as exc:  # noqa: BLE001  (whatever went wrong must reach the store, not the app)
        store.mark_failed(job.id, f"could not start the worker: {type(exc).__name__}: {exc}")


def worker_command(job: Job, store: JobStore) -> list[str]:
    worker = ["-m", WORKER_MODULE, job.id, "--store", str(store.path)]
    if job.backend == "torchrun":
        nproc = job.spec.num_processes
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1",
                f"--nproc_per_node={nproc}", *worker]
    return [sys.executable, *worker]


def worker_env(job: Job) -> dict:
    """The worker's environment: this one (the package is installed in the venv, so no import path is added),
    and for a local job on the CPU its share of the cores (cpu_threads_per_job) unless OMP_NUM_THREADS is set."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    threads = cpu_threads_per_job()
    if threads and job.backend == "local" and not uses_cuda(job.spec.device) and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def _start_process(job: Job, store: JobStore) -> None:
    cwd = job.cwd if os.path.isdir(job.cwd) else str(REPO_ROOT)
    with open(job.log_path, "ab") as log:
        process = subprocess.Popen(worker_command(job, store), stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, cwd=cwd, env=worker_env(job), start_new_session=True)
    store.set_process(job.id, pid=process.pid, pgid=process.pid)


def slurm_options(job: Job) -> dict:
    """The job's SLURM settings: its options, else the DLFA_SLURM_* variables, else the defaults."""
    options = dict(SLURM_DEFAULTS)
    options.update({key: os.environ[var] for key, var in SLURM_ENV.items() if os.environ.get(var)})
    options.update({key: value for key, value in job.options.items() if key in SLURM_ENV and value is not None})
    return options


def _start_slurm(job: Job, store: JobStore) -> None:
    import submitit

    from dlfa.jobs.runner import run_submitted

    options = slurm_options(job)
    cluster = options.get("cluster") or ("slurm" if submitit.AutoExecutor.which() == "slurm" else None)
    if cluster not in ("slurm", "local"):
        raise ConfigError("SLURM is not available on this machine (no sbatch found): submit with the local or "
                          "torchrun backend, or run this on the cluster's login node")
    executor = submitit.AutoExecutor(folder=job.out_dir / "slurm", cluster=cluster)
    parameters = dict(name=f"dlfa-{job.id}", timeout_min=int(options["timeout_min"]), nodes=1,
                      tasks_per_node=job.spec.num_processes, gpus_per_node=int(options["gpus_per_node"]),
                      cpus_per_task=int(options["cpus_per_task"]))
    if options.get("partition"):
        parameters["slurm_partition"] = options["partition"]
    executor.update_parameters(**parameters)
    submitted = executor.submit(run_submitted, job.id, str(store.path))
    store.set_process(job.id, external_id=str(submitted.job_id), cluster=cluster)


# ----------------------------------------------------------------------------------------------------
def hard_stop(job: Job) -> None:
    """Terminate a job's processes: SIGTERM to its process group, SIGKILL after KILL_WAIT_S; scancel on SLURM."""
    if job.backend == "slurm":
        if job.options.get("cluster") == "slurm" and job.external_id and shutil.which("scancel"):
            subprocess.run(["scancel", job.external_id], check=False, capture_output=True)
        elif job.external_id and job.external_id.isdigit() and pid_alive(int(job.external_id)):
            os.kill(int(job.external_id), signal.SIGTERM)  # submitit's local controller stops its tasks
        return
    if not job.pgid or job.pgid == os.getpgrp():
        return
    try:
        os.killpg(job.pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + KILL_WAIT_S
    while time.monotonic() < deadline and pid_alive(job.pgid):
        time.sleep(0.1)
    try:
        os.killpg(job.pgid, signal.SIGKILL)  # whatever is left of the group
    except ProcessLookupError:
        pass


def cancel(job_id: str, store: JobStore | None = None, grace_s: float = CANCEL_GRACE_S, wait: bool = True) -> Job:
    """Ask a job to stop (it checkpoints at its next step). With `wait`, wait up to `grace_s` for it, then
    terminate its processes; without, `refresh` does that later."""
    store = store or JobStore()
    job = store.request_cancel(job_id)
    if not wait or not job.active:
        return job
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        store.refresh_stale()
        job = store.get(job_id)
        if not job.active:
            return job
        time.sleep(0.2)
    hard_stop(job)
    store.mark_cancelled(job_id)
    dispatch_queued(store)
    return store.get(job_id)


def resume(job_id: str, store: JobStore | None = None) -> Job:
    """Re-queue a failed, stopped or cancelled job in its folder and dispatch it."""
    store = store or JobStore()
    store.requeue(job_id)
    dispatch_queued(store)
    return store.get(job_id)


def refresh(store: JobStore | None = None, stale_after_s: float = STALE_AFTER_S,
            grace_s: float = CANCEL_GRACE_S) -> None:
    """What the app runs on each refresh: fail jobs whose worker died, terminate cancelled jobs that
    outlived their grace period, and start queued jobs."""
    store = store or JobStore()
    store.refresh_stale(stale_after_s)
    now = time.time()
    for job in store.list(ACTIVE):
        if job.cancel_requested_at is not None and now - job.cancel_requested_at > grace_s:
            hard_stop(job)
            store.mark_cancelled(job.id)
    dispatch_queued(store)
