"""A fast stand-in for dlfa.engine.job.run_job with the same contract, for the job store and launcher tests
(the worker runs it when DLFA_JOB_RUNNER=jobs_fake_engine:run_job).

Each unit counts `max_steps` steps of DLFA_FAKE_STEP_S seconds, checkpoints (JSON) every
`checkpoint_every` steps and when stopped, resumes from its checkpoint, appends the step it started from
to `<unit>/starts.txt`, and writes results.json files like the engine (each run also records the
OMP_NUM_THREADS it ran with). Under torchrun it joins a gloo process group and all-reduces the ranks, recording
the world size. Tasks named `fail` and `crash` raise a DlfaError and a RuntimeError; a task named `hang` hangs
after its second step (until killed) while the worker's heartbeat thread lives on.
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from dlfa.engine.callbacks import CallbackList, Progress
from dlfa.errors import ConfigError
from dlfa.results import (COMPLETED, RESULTS_FILE, STOPPED, JobResult, LanguageMetric, RunResult, read_run_results,
                          write_results)


def _world() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    total = torch.tensor([dist.get_rank() + 1])
    dist.all_reduce(total)
    assert int(total) == world * (world + 1) // 2
    return dist.get_rank(), world


def run_job(spec, out_dir, callbacks=(), resume=True) -> dict:
    if spec.task == "fail":
        raise ConfigError("the fake engine was asked to fail")
    if spec.task == "crash":
        raise RuntimeError("the fake engine crashed")
    rank, world = _world()
    out_dir = Path(out_dir)
    callbacks = CallbackList(list(callbacks))
    step_s = float(os.environ.get("DLFA_FAKE_STEP_S", "0.01"))
    steps = spec.max_steps or 10
    units = spec.units()
    status, runs = COMPLETED, []
    for index, unit in enumerate(units):
        name = unit.unit_name()
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        if (folder / RESULTS_FILE).is_file():
            runs.append(read_run_results(folder))
            continue
        checkpoint = folder / "checkpoint.json"
        start = json.loads(checkpoint.read_text())["step"] if resume and checkpoint.is_file() else 0
        if rank == 0:
            with open(folder / "starts.txt", "a") as starts:
                starts.write(f"{start}\n")
            callbacks.on_log(f"{name}: starting at step {start}")
        for step in range(start + 1, steps + 1):
            if spec.task == "hang" and step > 2:
                threading.Event().wait()
            time.sleep(step_s)
            if rank == 0:
                callbacks.on_progress(Progress(index + 1, len(units), name, spec.task, step, steps, 1.0 / step,
                                               (index + step / steps) / len(units)))
            stop = rank == 0 and callbacks.should_stop()
            if rank == 0 and (stop or step % spec.checkpoint_every == 0):
                checkpoint.write_text(json.dumps({"step": step}))
                callbacks.on_checkpoint(name, str(checkpoint))
            if stop:
                status = STOPPED
                break
        if status == STOPPED:
            break
        metrics = {lang: LanguageMetric("accuracy", 50.0 + index, 40.0, 60.0, 100) for lang in spec.eval_languages}
        extra = {"world_size": world, "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
        results = RunResult(unit.to_dict(), COMPLETED, metrics, extra=extra)
        runs.append(results)
        if rank == 0:
            write_results(folder, results)
            callbacks.on_unit_end(name, results.to_dict())
    job = JobResult(spec.to_dict(), status, tuple(runs), extra={"world_size": world})
    if rank == 0:
        write_results(out_dir, job)
    return json.loads(json.dumps(job.to_dict()))
