"""The job worker process: `python -m dlfa.jobs.worker <job_id> [--store PATH]` (also under torchrun).

Runs one stored job to its end (dlfa.jobs.runner), then, since a slot on this machine is free, starts the next
queued job (dlfa.jobs.launch.dispatch_queued): the queue drains without the app. The entry point sits above both
modules, so the launchers (which start this process) and the runner never import each other in a circle.
"""
from __future__ import annotations

import argparse
import os
import sys

from dlfa.jobs.launch import dispatch_queued
from dlfa.jobs.runner import run_stored_job
from dlfa.jobs.store import JobStore


def run_worker(job_id: str, store: JobStore) -> int:
    """Run one job to its end, then start queued jobs on this machine; the exit code is 0 unless the job failed."""
    exit_code = run_stored_job(job_id, store)
    if store.get(job_id).backend != "slurm" and int(os.environ.get("RANK", "0")) == 0:
        dispatch_queued(store)
    return exit_code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dlfa.jobs.worker", description="run one stored job")
    parser.add_argument("job_id")
    parser.add_argument("--store", help="the job store file (default: cache/jobs.sqlite)")
    args = parser.parse_args(argv)
    return run_worker(args.job_id, JobStore(args.store))


if __name__ == "__main__":
    sys.exit(main())
