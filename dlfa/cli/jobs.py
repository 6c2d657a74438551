"""Command-line training and job control: `python -m dlfa train | sweep | jobs ...`.

`train` and `sweep` run in the foreground with a progress bar; `jobs submit` records a job in the store
and starts it in the background (local process, torchrun or SLURM). All three build their JobSpec with
`spec_from_args` (dlfa.cli.spec_args) and validate it before anything starts.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

from dlfa.cli.spec_args import add_spec_arguments, spec_from_args
from dlfa.engine.callbacks import TqdmCallback
from dlfa.engine.spec import BACKENDS
from dlfa.errors import ConfigError
from dlfa.jobs.launch import CANCEL_GRACE_S
from dlfa.results import COMPLETED, FAILED, RESULTS_FILE, STOPPED

__all__ = ["add_spec_arguments", "register", "spec_from_args"]

FOLLOW_POLL_S = 0.5


# ----------------------------------------------------------------------------------------------------
# Output


def _time(seconds: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)) if seconds else "-"


def format_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = [header, *rows]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines)


def metrics_table(rows: list[dict]) -> str:
    """unit × language metrics with their 95% confidence intervals."""
    def number(value) -> str:
        return "-" if value is None else f"{value:.2f}"

    return format_table(["unit", "language", "metric", "value", "95% CI", "n"],
                        [[r["unit"], r["language"], r.get("metric") or "-", number(r.get("value")),
                          f"[{number(r.get('ci_low'))}, {number(r.get('ci_high'))}]", str(r.get("n") or "-")]
                         for r in rows])


# ----------------------------------------------------------------------------------------------------
# train / sweep


def writable_folder(path: str, flag: str = "--out") -> Path:
    """The output folder, created if missing; ConfigError (one line) when it cannot be created or written."""
    folder = Path(path).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename and Path(exc.filename) != folder else ""
        raise ConfigError(f"{flag} {folder}: cannot create or write this folder: {exc.strerror or exc}{where}") from exc
    return folder


def run_foreground(args: argparse.Namespace) -> int:
    """Train in this process: the first Ctrl-C checkpoints and stops, a second one aborts."""
    from tqdm import tqdm

    from dlfa.jobs.runner import spec_runner

    spec = spec_from_args(args)
    run_job = spec_runner(spec)  # the engine, or a retrieval task's measurement
    if args.single_run and len(spec.units()) > 1:
        raise ConfigError(f"the spec holds {len(spec.units())} runs: run them all with `python -m dlfa sweep`, or "
                          "pick one with --aggregation, --fusion-layer and --seed")
    out = writable_folder(args.out)
    callback = TqdmCallback()

    def on_interrupt(*_):
        if callback.stop.is_set():
            raise KeyboardInterrupt
        callback.stop.set()
        tqdm.write("stopping after this step (writing a checkpoint); press Ctrl-C again to abort")

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        results = run_job(spec, out, callbacks=(callback,), resume=True)
    finally:
        signal.signal(signal.SIGINT, previous)
        callback.close()
    if callback.metrics:
        print(metrics_table(callback.metrics))
    if results["status"] == STOPPED:
        print(f"stopped: run the same command again to resume from the checkpoint in {args.out}", file=sys.stderr)
        return 130
    print(f"results in {out / RESULTS_FILE}")
    return 0


# ----------------------------------------------------------------------------------------------------
# jobs


def _store(args: argparse.Namespace):
    from dlfa.jobs.store import JobStore

    return JobStore(args.store)


def _refreshed_store(args: argparse.Namespace):
    from dlfa.jobs.launch import refresh

    store = _store(args)
    refresh(store)
    return store


def run_submit(args: argparse.Namespace) -> int:
    from dlfa.jobs.launch import submit

    spec = spec_from_args(args)
    options = {"partition": args.slurm_partition, "gpus_per_node": args.slurm_gpus_per_node,
               "timeout_min": args.slurm_time_min}
    store = _store(args)
    if args.out:
        writable_folder(args.out)
    job = submit(spec, store, out_dir=args.out, options={k: v for k, v in options.items() if v is not None})
    print(job.id, flush=True)
    if job.status == FAILED:
        print(f"error: {job.error}", file=sys.stderr)
        return 1
    if not args.wait:
        print(f"{job.status}; follow it with: python -m dlfa jobs show {job.id}", file=sys.stderr)
        return 0
    return follow_job(store, job.id)


def follow_job(store, job_id: str) -> int:
    """A progress bar until the job ends, then its summary; 0 when it completed."""
    from tqdm import tqdm

    from dlfa.jobs.launch import refresh

    with tqdm(total=100, unit="%", dynamic_ncols=True, bar_format="{desc} {percentage:3.0f}%|{bar}| {postfix}") as bar:
        while True:
            refresh(store)
            job = store.get(job_id)
            bar.n = round(100 * job.progress)
            bar.set_description_str(job.state)
            bar.set_postfix_str(job.progress_text, refresh=False)
            bar.refresh()
            if not job.active:
                break
            time.sleep(FOLLOW_POLL_S)
    print(describe_job(store, job))
    return 0 if job.status == COMPLETED else 1


def _stall_note(job) -> str:
    stalled = job.stalled_for()
    if stalled is None:
        return ""
    return (f": no step has finished for {stalled / 60:.0f} min although the worker is alive (its loop may hang); "
            f"cancel it with python -m dlfa jobs cancel {job.id}")


def describe_job(store, job) -> str:
    spec = job.spec
    lines = [
        f"job       {job.id}" + (f"  ({job.name})" if job.name else ""),
        f"status    {job.state}" + (f": {job.error}" if job.error else "") + _stall_note(job)
        + ("  (resumable)" if job.resumable else ""),
        f"progress  {100 * job.progress:.0f}%" + (f"  {job.progress_text}" if job.progress_text else ""),
        f"task      {spec.task} → {', '.join(spec.eval_languages)}  encoder {spec.encoder}",
        f"backend   {job.backend}  attempts {job.attempts}" + (f"  pid {job.pid}" if job.active and job.pid else ""),
        f"created   {_time(job.created_at)}  started {_time(job.started_at)}  finished {_time(job.finished_at)}",
        f"folder    {job.out_dir}",
        f"log       {job.log_path}",
    ]
    rows = store.metrics(job.id)
    if rows:
        lines += ["", metrics_table(rows)]
    return "\n".join(lines)


def run_list(args: argparse.Namespace) -> int:
    store = _refreshed_store(args)
    jobs = store.list(args.status)
    if args.json:
        print(json.dumps([job.to_dict() for job in jobs], indent=2))
        return 0
    if not jobs:
        print("no jobs")
        return 0
    rows = []
    for job in jobs:
        rows.append([job.id, job.state, f"{100 * job.progress:.0f}%", job.backend, job.spec.task,
                     job.name or "-", _time(job.created_at)])
    print(format_table(["id", "status", "progress", "backend", "task", "name", "created"], rows))
    return 0


def run_show(args: argparse.Namespace) -> int:
    store = _refreshed_store(args)
    job = store.get(args.job_id)
    if args.json:
        results = store.results(job.id)
        print(json.dumps({"job": job.to_dict(), "metrics": store.metrics(job.id),
                          "results": results.to_dict() if results else None}, indent=2))
    else:
        print(describe_job(store, job))
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    from dlfa.jobs.launch import cancel

    job = cancel(args.job_id, _store(args), grace_s=args.grace)
    hint = f"  (resumable: python -m dlfa jobs resume {job.id})" if job.resumable else ""
    print(f"{job.id} {job.status}{hint}")
    return 0


def run_resume(args: argparse.Namespace) -> int:
    from dlfa.jobs.launch import resume

    job = resume(args.job_id, _store(args))
    print(f"{job.id} {job.status}")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    store = _store(args)
    job = store.get(args.job_id)
    store.delete(job.id)
    kept = "" if job.out_dir == store.runs_root / job.id else f" (its folder {job.out_dir} was kept)"
    print(f"deleted {job.id}{kept}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    store = _store(args)
    added, present = store.add_finished_under(args.folder)
    for job in added:
        print(f"{job.id} {job.status}, {job.progress_text}  {job.name or job.spec.task}  ({job.out_dir})")
    for job in present:
        print(f"{job.id} already in the store  ({job.out_dir})")
    print(f"imported {len(added)} job(s); see them with: python -m dlfa jobs list", file=sys.stderr)
    return 0


def run_logs(args: argparse.Namespace) -> int:
    store = _store(args)
    path = store.get(args.job_id).log_path
    position = 0
    while True:
        if path.is_file():
            with open(path, encoding="utf-8", errors="replace") as log:
                log.seek(position)
                sys.stdout.write(log.read())
                position = log.tell()
            sys.stdout.flush()
        if not args.follow:
            return 0
        if not store.get(args.job_id).active:
            if path.is_file() and path.stat().st_size > position:
                continue  # print what the worker wrote last
            return 0
        time.sleep(FOLLOW_POLL_S)


# ----------------------------------------------------------------------------------------------------


def register(subparsers) -> None:
    train = subparsers.add_parser("train", help="train and evaluate one run in the foreground")
    add_spec_arguments(train, sweep=False, out_required=True)
    train.set_defaults(func=run_foreground)

    sweep = subparsers.add_parser("sweep", help="run aggregations × fusion layers × seeds in the foreground")
    add_spec_arguments(sweep, sweep=True, out_required=True)
    sweep.set_defaults(func=run_foreground)

    jobs = subparsers.add_parser("jobs", help="background jobs: submit, list, show, cancel, resume, delete, logs, import")
    jobs.add_argument("--store", metavar="PATH", help="the job store (default cache/jobs.sqlite)")
    commands = jobs.add_subparsers(dest="jobs_command", required=True)

    submit = commands.add_parser("submit", help="queue a job and start it in the background; prints its id")
    add_spec_arguments(submit, sweep=True, out_required=False)
    submit.add_argument("--backend", choices=BACKENDS, help="local (default) | torchrun | slurm")
    submit.add_argument("--nproc", type=int, metavar="N", help="processes (torchrun) or tasks (slurm)")
    submit.add_argument("--slurm-partition", metavar="NAME", help="or $DLFA_SLURM_PARTITION")
    submit.add_argument("--slurm-gpus-per-node", type=int, metavar="G", help="or $DLFA_SLURM_GPUS_PER_NODE")
    submit.add_argument("--slurm-time-min", type=int, metavar="MIN",
                        help="SLURM time limit in minutes (or $DLFA_SLURM_TIME_MIN, default 240)")
    submit.add_argument("--wait", action="store_true", help="follow the job until it ends")
    submit.set_defaults(func=run_submit)

    listing = commands.add_parser("list", help="all jobs, newest first")
    listing.add_argument("--status", action="append", help="only jobs with this status (repeatable)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=run_list)

    importing = commands.add_parser("import", help="record finished jobs from their folders (e.g. docs/reproduction), "
                                    "so the app shows them; the folders are read in place")
    importing.add_argument("folder", metavar="FOLDER", help="a job folder, or a folder of job folders")
    importing.set_defaults(func=run_import)

    for name, func, text in (("show", run_show, "status, progress and metrics of a job"),
                             ("cancel", run_cancel, "stop a job (it checkpoints first)"),
                             ("resume", run_resume, "re-queue a failed, stopped or cancelled job in its folder"),
                             ("delete", run_delete, "forget a job and remove its folder under cache/runs/"),
                             ("logs", run_logs, "print a job's log")):
        command = commands.add_parser(name, help=text)
        command.add_argument("job_id", metavar="ID")
        command.set_defaults(func=func)
        if name == "show":
            command.add_argument("--json", action="store_true")
        elif name == "cancel":
            command.add_argument("--grace", type=float, default=CANCEL_GRACE_S, metavar="S",
                                 help=f"seconds to wait for a clean stop, then terminate (default {CANCEL_GRACE_S:g})")
        elif name == "logs":
            command.add_argument("--follow", "-f", action="store_true", help="keep printing until the job ends")
