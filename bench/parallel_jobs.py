"""Several CPU jobs at once, the cores shared out, against one job with every core: training steps per second
of `last` on the same English UD-POS batches (the engine's own train_step), in fresh processes.

The job queue runs DLFA_MAX_CONCURRENT_JOBS jobs at once and gives each CPU job its share of the cores
(dlfa.jobs.launch.cpu_threads_per_job); this measures what that buys a queue of independent runs (a study's
arms, the reproduction's sittings), and what it avoids. Each repetition runs one worker with every core, then
--jobs workers together with cores // jobs threads each, then --jobs workers together with every core each (what
the workers did before they were given their share); every worker trains --steps steps after two warm-up steps
and reports its median step time. Throughput: 1 / median for the lone worker, the sum over the workers run
together.

    python bench/parallel_jobs.py [--jobs 2] [--steps 12] [--repetitions 3] [--precision fp32]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from common import parser, train_split, udpos_side

from dlfa.jobs.launch import available_cores


def worker(args) -> None:
    """Train --steps steps (after two warm-up steps) and print the median step time as JSON."""
    import torch

    from dlfa.model.encoders import load_encoder

    loaded = load_encoder(args.encoder)
    data = train_split(args, loaded.tokenizer)
    trainer, streams, optimizer, params = udpos_side(args, loaded.model, data, "last", args.precision,
                                                     args.cpu_slice_tokens, args.steps + 2)
    times = []
    for step in range(args.steps + 2):
        started = time.perf_counter()
        trainer.train_step(0, trainer.stages[0], streams, step, optimizer, params)
        if step >= 2:
            times.append(time.perf_counter() - started)
    print(json.dumps({"median_s": statistics.median(times), "threads": torch.get_num_threads(),
                      "precision": trainer.runtime.precision}))


def run_workers(count: int, threads: int) -> list[dict]:
    """Start `count` workers at once with `threads` threads each; their reports."""
    command = [sys.executable, __file__, "--worker", *sys.argv[1:]]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    workers = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) for _ in range(count)]
    outputs = [w.communicate()[0] for w in workers]
    if any(w.returncode for w in workers):
        raise SystemExit(f"a worker failed (exit codes {[w.returncode for w in workers]})")
    return [json.loads(out.strip().splitlines()[-1]) for out in outputs]


def milliseconds(reports: list[dict]) -> str:
    return ", ".join(f"{report['median_s'] * 1000:.0f}" for report in reports)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--jobs", type=int, default=2, help="workers run together")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--repetitions", type=int, default=3)
    p.add_argument("--precision", default="fp32")
    p.add_argument("--cpu-slice-tokens", type=int, default=512)
    p.add_argument("--fusion-layer", type=int, default=6)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    cores = available_cores()
    if cores < args.jobs:
        raise SystemExit(f"{args.jobs} jobs need at least {args.jobs} cores; this machine gives {cores}")
    share = cores // args.jobs
    shared_ratios, crowded_ratios = [], []
    for repetition in range(args.repetitions):
        alone = run_workers(1, cores)[0]
        shared = run_workers(args.jobs, share)
        crowded = run_workers(args.jobs, cores)
        rate_alone = 1 / alone["median_s"]
        shared_ratios.append(sum(1 / w["median_s"] for w in shared) / rate_alone)
        crowded_ratios.append(sum(1 / w["median_s"] for w in crowded) / rate_alone)
        print(f"repetition {repetition + 1} ({alone['precision']}, UD-POS batches of {args.batch_size}), ms per step: "
              f"1 job x {cores} threads {milliseconds([alone])}; {args.jobs} jobs x {share} thread(s) "
              f"{milliseconds(shared)}; {args.jobs} jobs x {cores} threads {milliseconds(crowded)}", flush=True)
    for ratios, what in ((shared_ratios, f"{share} thread(s)"), (crowded_ratios, f"{cores} threads")):
        print(f"RATIO steps per second, {args.jobs} jobs x {what} / 1 job x {cores} threads = "
              f"{statistics.median(ratios):.2f}  (min {min(ratios):.2f}, max {max(ratios):.2f}; "
              f"{args.repetitions} repetitions)")


if __name__ == "__main__":
    main()
