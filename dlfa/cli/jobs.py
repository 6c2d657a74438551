"""Command-line training and job control: `python -m dlfa train | sweep | jobs ...`.

`train` and `sweep` run in the foreground with a progress bar; `jobs submit` records a job in the store
and starts it in the background (local process, torchrun or SLURM). All three build their JobSpec with
`spec_from_args` and validate it before anything starts.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from dlfa.engine.callbacks import TqdmCallback
from dlfa.errors import ConfigError
from dlfa.model.fusion import AGGREGATIONS
from dlfa.jobs.launch import CANCEL_GRACE_S
from dlfa.engine.spec import (BACKENDS, DEVICES, POOLINGS, PRECISIONS, JobSpec, parse_float_list, parse_int_list,
                              split_list)

FOLLOW_POLL_S = 0.5
DEFAULTS = JobSpec(task="", eval_languages=())  # the field defaults, shown in --help


# ----------------------------------------------------------------------------------------------------
# Arguments → JobSpec


def add_spec_arguments(parser: argparse.ArgumentParser, sweep: bool, out_required: bool) -> None:
    """The flags of one job; `sweep` adds the plural forms (--aggregations, --fusion-layers, --seeds)."""
    parser.set_defaults(single_run=not sweep)
    parser.add_argument("--spec", metavar="FILE",
                        help="start from a recorded job spec: a JSON spec or a results.json (e.g. one under "
                             "docs/reproduction/); the flags given replace its fields")
    parser.add_argument("--task", help="target task, e.g. pawsx, xnli, panx, udpos (required without --spec)")
    parser.add_argument("--encoder", help=f"embedded:e5-small | hub id | local folder (default {DEFAULTS.encoder})")
    choice = parser.add_mutually_exclusive_group() if sweep else parser
    choice.add_argument("--aggregation", choices=AGGREGATIONS,
                        help=f"how layers are combined (default {DEFAULTS.aggregations[0]})")
    if sweep:
        choice.add_argument("--aggregations", help="several aggregations, e.g. last,dlfa")
    choice = parser.add_mutually_exclusive_group() if sweep else parser
    choice.add_argument("--fusion-layer", type=int, metavar="K",
                        help=f"lower layer fused with the last, 0 = embeddings (default {DEFAULTS.fusion_layers[0]})")
    if sweep:
        choice.add_argument("--fusion-layers", metavar="LIST", help="several fusion layers, e.g. 0-11 or 2,6,10")
    parser.add_argument("--train-lang", metavar="LANG", help=f"training language (default {DEFAULTS.train_language})")
    parser.add_argument("--eval-langs", metavar="L1,L2,...",
                        help="zero-shot evaluation languages (required without --spec)")
    parser.add_argument("--intermediate", metavar="T1,T2,...", help="English intermediate tasks trained first")
    parser.add_argument("--data-root", metavar="DIR",
                        help="folder of local data files (default $DLFA_DATA_DIR, the classroom pack, else the hub)")
    parser.add_argument("--max-train-examples", type=int, metavar="N", help="cap on training examples per task")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=float, metavar="E", help=f"epochs per stage (default {DEFAULTS.epochs:g})")
    budget.add_argument("--max-steps", type=int, metavar="S", help="optimizer steps per stage (instead of epochs)")
    choice = parser.add_mutually_exclusive_group() if sweep else parser
    choice.add_argument("--seed", type=int, metavar="S", help=f"random seed (default {DEFAULTS.seeds[0]})")
    if sweep:
        choice.add_argument("--seeds", metavar="LIST", help="several seeds, e.g. 1,2,3")
    parser.add_argument("--probe", action="store_true", help="freeze the encoder (train fusion and head only)")
    parser.add_argument("--tensorboard", action="store_true",
                        help="also write losses, dev scores and results as TensorBoard events under <out>/tensorboard/")
    parser.add_argument("--batch-size", type=int, metavar="B",
                        help=f"examples per step (default {DEFAULTS.batch_size})")
    choice = parser.add_mutually_exclusive_group() if sweep else parser
    choice.add_argument("--lr", type=float, help=f"learning rate (default {DEFAULTS.learning_rate:g})")
    if sweep:
        choice.add_argument("--learning-rates", metavar="LIST",
                            help="a learning-rate grid, e.g. 2e-5,5e-5,1e-4: one run per rate; results.json records "
                                 "each configuration's best rate on English dev and every candidate's dev score")
    parser.add_argument("--patience", type=int, metavar="N",
                        help="early stopping: stop the target task once N English dev evaluations (each epoch, or "
                             "every eval_every steps) bring no improvement; the best dev state is evaluated")
    parser.add_argument("--eval-every", type=int, metavar="S",
                        help="steps between English dev evaluations of the target task (default: each epoch's end)")
    parser.add_argument("--max-epochs", type=float, metavar="E",
                        help="with --patience: the cap on the target task's epochs (replaces --epochs/--max-steps "
                             "there)")
    parser.add_argument("--pooling", choices=POOLINGS,
                        help="sentence and pair tasks: cls = the fused first token (as the paper; with fusion layer "
                             "0 it fuses a constant), mean = the mean over the real tokens (default "
                             f"{DEFAULTS.pooling})")
    parser.add_argument("--device", choices=DEVICES, help="default auto: a GPU when there is one")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="default auto: bf16 autocast where the GPU or CPU computes bf16 natively, else fp32")
    parser.add_argument("--max-length", type=int, metavar="T",
                        help=f"tokens per example (default {DEFAULTS.max_length})")
    parser.add_argument("--name", help="a label for the run")
    parser.add_argument("--out", required=out_required, metavar="DIR",
                        help="output folder" + ("" if out_required else " (default cache/runs/<job id>/)"))


def _absolute_if_path(value: str | None) -> str | None:
    """Relative paths in a spec are made absolute, so a job runs the same from any folder."""
    if value is None or not (value.startswith((".", "~")) or Path(value).exists()):
        return value
    return str(Path(value).expanduser().resolve())


def read_spec_file(path: str) -> JobSpec:
    """The JobSpec in a JSON file: a spec itself, or a job's or run's results.json (which records its "spec")."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read the job spec {path}: {exc.strerror or exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"the job spec {path} is not valid JSON: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("spec"), dict):
        data = data["spec"]
    if not isinstance(data, dict):
        raise ConfigError(f"{path} holds no job spec (a JSON object with 'task' and 'eval_languages')")
    try:
        return JobSpec.from_dict(data)
    except (ConfigError, TypeError) as exc:
        raise ConfigError(f"the job spec in {path}: {exc}") from exc


def spec_from_args(args: argparse.Namespace) -> JobSpec:
    """The one place that turns train / sweep / submit flags into a validated JobSpec: the flags given, over the
    fields of --spec when there is one, else over JobSpec's defaults."""
    values = {
        "task": args.task,
        "eval_languages": split_list(args.eval_langs) if args.eval_langs is not None else None,
        "encoder": _absolute_if_path(args.encoder),
        "train_language": args.train_lang,
        "intermediate_tasks": split_list(args.intermediate) if args.intermediate is not None else None,
        "data_root": _absolute_if_path(args.data_root),
        "max_train_examples": args.max_train_examples,
        "epochs": args.epochs,
        "max_steps": args.max_steps,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "patience": args.patience,
        "eval_every": args.eval_every,
        "max_epochs": args.max_epochs,
        "pooling": args.pooling,
        "device": args.device,
        "precision": args.precision,
        "max_length": args.max_length,
        "probe": args.probe or None,
        "tensorboard": args.tensorboard or None,
        "name": args.name,
        "backend": getattr(args, "backend", None),
        "num_processes": getattr(args, "nproc", None),
    }
    if getattr(args, "aggregations", None):
        values["aggregations"] = split_list(args.aggregations)
    elif args.aggregation:
        values["aggregations"] = (args.aggregation,)
    if getattr(args, "fusion_layers", None):
        values["fusion_layers"] = parse_int_list(args.fusion_layers, "--fusion-layers")
    elif args.fusion_layer is not None:
        values["fusion_layers"] = (args.fusion_layer,)
    if getattr(args, "learning_rates", None):
        values["learning_rates"] = parse_float_list(args.learning_rates, "--learning-rates")
    if getattr(args, "seeds", None):
        values["seeds"] = parse_int_list(args.seeds, "--seeds")
    elif args.seed is not None:
        values["seeds"] = (args.seed,)
    given = {key: value for key, value in values.items() if value is not None}
    if args.spec:
        if "epochs" in given:
            given.setdefault("max_steps", None)  # --epochs replaces a step budget the spec may have
        return replace(read_spec_file(args.spec), **given).validate()
    missing = [flag for flag, key in (("--task", "task"), ("--eval-langs", "eval_languages")) if not given.get(key)]
    if missing:
        raise ConfigError(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required "
                          "(or start from a recorded job with --spec FILE)")
    return JobSpec(**given).validate()


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

    from dlfa.engine.job import run_job

    spec = spec_from_args(args)
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
    if results["status"] == "stopped":
        print(f"stopped: run the same command again to resume from the checkpoint in {args.out}", file=sys.stderr)
        return 130
    print(f"results in {out / 'results.json'}")
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
    if job.status == "failed":
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
    return 0 if job.status == "completed" else 1


def _stall_note(job) -> str:
    stalled = job.stalled_for()
    if stalled is None:
        return ""
    return (f": no step has finished for {stalled / 60:.0f} min although the worker is alive (its loop may hang); "
            f"cancel it with python -m dlfa jobs cancel {job.id}")


def describe_job(store, job) -> str:
    spec = job.to_dict()["spec"]
    lines = [
        f"job       {job.id}" + (f"  ({job.name})" if job.name else ""),
        f"status    {job.state}" + (f": {job.error}" if job.error else "") + _stall_note(job)
        + ("  (resumable)" if job.resumable else ""),
        f"progress  {100 * job.progress:.0f}%" + (f"  {job.progress_text}" if job.progress_text else ""),
        f"task      {spec.get('task')} → {', '.join(spec.get('eval_languages', []))}  encoder {spec.get('encoder')}",
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
        spec = job.to_dict()["spec"]
        rows.append([job.id, job.state, f"{100 * job.progress:.0f}%", job.backend, spec.get("task", "?"),
                     job.name or "-", _time(job.created_at)])
    print(format_table(["id", "status", "progress", "backend", "task", "name", "created"], rows))
    return 0


def run_show(args: argparse.Namespace) -> int:
    store = _refreshed_store(args)
    job = store.get(args.job_id)
    if args.json:
        print(json.dumps({"job": job.to_dict(), "metrics": store.metrics(job.id), "results": store.results(job.id)},
                         indent=2))
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
    path = store.log_path(args.job_id)
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
