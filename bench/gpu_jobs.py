"""The job path on a GPU, as the Launch and Jobs pages (and `python -m dlfa jobs submit`) take it: one spec (DLFA
at the middle layer) run
    reference    in this process (run_job, what `python -m dlfa train` does);
    killed       through the job store and a worker process, SIGKILLed after its step-200 checkpoint (a crash, a
                 lost machine), found stale and resumed, as the Jobs page's Resume does;
    cancelled    the same, cancelled mid-epoch (SIGTERM: the worker checkpoints the step it is at) and resumed;
then whether the interrupted jobs end with the reference's metrics and dev curve exactly (deterministic GPU
kernels, the CUDA random state in the checkpoint), and what each took. A part of bench/gpu_check.sh (`jobs`).

    python bench/gpu_jobs.py --encoder cache/mbert-shaped --device cuda --out /tmp/gpu-jobs
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import time
from pathlib import Path

from dlfa.engine.job import run_job
from dlfa.engine.spec import JobSpec
from dlfa.jobs import launch
from dlfa.jobs.store import JobStore
from dlfa.model.encoders import encoder_info
from dlfa.results import COMPLETED, RESULTS_FILE

def wait_for(store: JobStore, job_id: str, condition, what: str, timeout_s: float = 600.0):
    """The job once `condition(job)` holds (the store refreshed as the Jobs page does); an error naming `what`
    and the job's log tail when it does not within timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        launch.refresh(store)
        job = store.get(job_id)
        if condition(job):
            return job
        time.sleep(0.1)
    job = store.get(job_id)
    log = job.log_path.read_text()[-3000:] if job.log_path.is_file() else "(no log)"
    raise SystemExit(f"{what}: job {job_id} still {job.status} ({job.progress_text}) after {timeout_s:.0f} s\n{log}")


def step_of(progress_text: str) -> int:
    """The step in a job's progress line (`unit 1/1 dlfa-L6-s1 · pos-classroom step 40/400 · loss 0.512`), else 0."""
    found = re.search(r"step (\d+)/", progress_text)
    return int(found.group(1)) if found else 0


def interrupted_run(spec: JobSpec, store: JobStore, out_dir: Path, how: str) -> dict:
    """Submit `spec` as the app does, interrupt its worker `how` ("killed" or "cancelled"), resume it; its results."""
    started = time.monotonic()
    job = launch.submit(spec, store, out_dir=out_dir)
    unit_dir = out_dir / spec.units()[0].unit_name()
    if how == "killed":
        wait_for(store, job.id, lambda j: (unit_dir / "checkpoints" / "latest.json").is_file() or not j.active,
                 f"a checkpoint at step {spec.checkpoint_every}")
        os.killpg(store.get(job.id).pgid, signal.SIGKILL)
        stopped = wait_for(store, job.id, lambda j: not j.active, "the killed worker found stale")
    else:
        wait_for(store, job.id, lambda j: step_of(j.progress_text) >= 90 or not j.active, "step 90")
        stopped = launch.cancel(job.id, store)
    print(f"{how}: {stopped.status} ({stopped.error or 'no error'}), resumable: {stopped.resumable}", flush=True)
    launch.resume(job.id, store)
    done = wait_for(store, job.id, lambda j: not j.active, "the resumed job's end")
    log = done.log_path.read_text()
    resumed = [line.strip() for line in log.splitlines() if "resumed from" in line]
    print(f"{how}: {done.status} in {time.monotonic() - started:.0f} s in all; "
          + (resumed[-1] if resumed else "no resume"))
    return json.loads((out_dir / RESULTS_FILE).read_text())


def same_run(reference: dict, other: dict) -> str:
    """'identical' when the metrics and the dev curve are the same numbers, else what differs."""
    first, second = reference["runs"][0], other["runs"][0]
    if (reference["metrics"] == other["metrics"] and first["history"] == second["history"]
            and first["dev_score"] == second["dev_score"]):
        return "identical metrics, dev score and loss/dev history"
    return "they differ: " + ", ".join(
        f"{language} {metric['value']:.4f} vs {other['metrics'][language]['value']:.4f}"
        for language, metric in reference["metrics"].items()) + f"; dev {first['dev_score']} vs {second['dev_score']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="cache/mbert-shaped")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=400,
                        help=f"more than the first checkpoint's step ({JobSpec.checkpoint_every})")
    parser.add_argument("--out", type=Path, default=Path("/tmp/gpu-jobs"))
    args = parser.parse_args()
    spec = JobSpec(task="pos-classroom", eval_languages=("de", "es", "it", "nl", "tr"), aggregations=("dlfa",),
                   fusion_layers=(encoder_info(args.encoder).num_layers // 2,), encoder=args.encoder,
                   device=args.device, max_train_examples=8000,
                   max_steps=args.steps, eval_every=50, max_eval_examples=1000, name="gpu job path")
    started = time.monotonic()
    reference = run_job(spec.validate(), args.out / "reference")
    run = reference["runs"][0]
    print(f"reference: {reference['status']} in {time.monotonic() - started:.0f} s in all; device {run['device']}, "
          f"precision {run['precision']}, {run['steps']} steps, train {run['train_seconds']:.1f} s")
    store = JobStore(args.out / "jobs.sqlite")
    for how in ("killed", "cancelled"):
        results = interrupted_run(spec, store, args.out / how, how)
        print(f"{how} and resumed against the reference: "
              + (same_run(reference, results) if results["status"] == COMPLETED else results["status"]), flush=True)


if __name__ == "__main__":
    main()
