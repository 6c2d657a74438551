"""`python -m dlfa reproduce run|report|status|hub-study`: run (or resume) the DLFA reproduction plan in the
foreground, keep its record beside the report, write the report (dlfa.reproduction), say how far it is and how
long the rest will take; or run the intermediate-task study at hub scale (dlfa.reproduction.study_design.
hub_design) into its own folder, with its own report."""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from dlfa import hub
from dlfa.data.sources import HUB_ROOT
from dlfa.engine.callbacks import TqdmCallback
from dlfa.engine.spec import split_list
from dlfa.errors import ConfigError
from dlfa.reproduction.plan import (DEFAULT_DOC, DEFAULT_PARTS, PARTS, PRECISION, STUDY_TASKS, TASK_PLANS,
                                    Reproduction, record_root)
from dlfa.reproduction.record import refuse_mixed_runs, restore_record, save_record
from dlfa.reproduction.report import write_report
from dlfa.reproduction.report_study import design_in_words, write_study_report
from dlfa.reproduction.runner import run_plan
from dlfa.reproduction.study_design import HUB_ENCODER
from dlfa.results import COMPLETED

DEFAULT_OUT = "cache/reproduction"
HUB_STUDY_OUT = "cache/hub-study"
HUB_STUDY_REPORT = "STUDY.md"  # in the hub study's folder
# How the report says it is regenerated (its first code block)
REPORT_COMMAND = "python -m dlfa reproduce run --data-root ../shared/data   # resumes; then writes this report"


def register(subparsers) -> None:
    reproduce = subparsers.add_parser("reproduce", help="run (or resume) the DLFA reproduction and write its report")
    commands = reproduce.add_subparsers(dest="reproduce_command", required=True)
    run = commands.add_parser("run", help="run or resume the plan's jobs in the foreground, then write the report")
    run.add_argument("--data-root", required=True, metavar="DIR", help="a data root laid out like ../shared/data")
    run.add_argument("--encoder", default="embedded:e5-small")
    run.add_argument("--parts", default=",".join(DEFAULT_PARTS),
                     help=f"which parts, in order: {','.join(PARTS)} (default: all but the study)")
    run.add_argument("--tasks", default=",".join(TASK_PLANS), help="which of the four tasks")
    run.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    run.add_argument("--precision", default=PRECISION, choices=("fp32", "bf16"),
                     help=f"one for the whole record (default {PRECISION}: the same pace on any CPU; bf16 is "
                          "faster only on a GPU or a CPU that computes it natively)")
    run.set_defaults(func=run_cli)
    report = commands.add_parser("report", help="write the report from the record (after recording --out's results)")
    report.set_defaults(func=report_cli)
    status = commands.add_parser("status", help="the runs finished and left per setting, and the hours left at the "
                                                "pace measured so far")
    status.add_argument("--data-root", required=True, metavar="DIR", help="the data root the plan runs on")
    status.add_argument("--encoder", default="embedded:e5-small")
    status.set_defaults(func=status_cli)
    for command in (run, report, status):
        command.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"results root (default {DEFAULT_OUT})")
        command.add_argument("--doc", default=DEFAULT_DOC, metavar="FILE", help=f"the report (default {DEFAULT_DOC})")
    hub = commands.add_parser("hub-study", help="run or resume the intermediate-task study at hub scale (a GPU and "
                                                "a network), then write its report in its folder")
    hub.add_argument("--encoder", default=HUB_ENCODER)
    hub.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    hub.add_argument("--precision", choices=("fp32", "bf16"),
                     help="a new study's precision (default: bf16 where the GPU or CPU computes it natively, else "
                          "fp32); a resumed study keeps its own")
    hub.add_argument("--out", default=HUB_STUDY_OUT, metavar="DIR",
                     help=f"the study's jobs, design and report {HUB_STUDY_REPORT} (default {HUB_STUDY_OUT})")
    hub.add_argument("--dry-run", action="store_true", help="print the design and its jobs; run nothing")
    hub.set_defaults(func=hub_study_cli)


def run_cli(args) -> int:
    tasks = split_list(args.tasks)
    unknown = [t for t in tasks if t not in TASK_PLANS]
    if unknown:
        raise ConfigError(f"unknown task(s) {', '.join(unknown)}: the reproduction covers {', '.join(TASK_PLANS)}")
    config = Reproduction(data_root=str(Path(args.data_root).resolve()), encoder=args.encoder, tasks=tasks,
                          device=args.device, precision=args.precision)
    restore_record(record_root(args.doc), Path(args.out))
    refuse_mixed_runs(Path(args.out))
    try:
        status = run_interruptibly(config, Path(args.out), split_list(args.parts))
    finally:
        save_record(Path(args.out), record_root(args.doc))
    report_cli(args)
    return stopped_or_done(status)


def run_interruptibly(config: Reproduction, out: Path, parts: tuple[str, ...]) -> str:
    """run_plan with a progress bar; the first Ctrl-C checkpoints and stops, a second one aborts."""
    callback = TqdmCallback()

    def on_interrupt(*_):
        if callback.stop.is_set():
            raise KeyboardInterrupt
        callback.stop.set()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        return run_plan(config, out, parts, (callback,))
    finally:
        signal.signal(signal.SIGINT, previous)
        callback.close()


def stopped_or_done(status: str) -> int:
    if status != COMPLETED:
        print("stopped: run the same command again to resume", file=sys.stderr)
        return 130
    return 0


def report_cli(args) -> int:
    if Path(args.out).is_dir():
        save_record(Path(args.out), record_root(args.doc))
    print(f"report written to {write_report(record_root(args.doc), args.doc, REPORT_COMMAND)}")
    return 0


def status_cli(args) -> int:
    """The plan's progress in --out (or, without it, in the record beside the report), and the study's there."""
    from dlfa.data.registry import DataSource, english_sizes
    from dlfa.model.encoders import encoder_info
    from dlfa.reproduction.status import plan_status, status_text, study_status_text

    out = Path(args.out) if Path(args.out).is_dir() else record_root(args.doc)
    config = Reproduction(data_root=str(Path(args.data_root).resolve()), encoder=args.encoder)
    source = DataSource.resolve(config.data_root)
    sizes = {task: english_sizes(task, source)["train"] for task in config.tasks}
    print(status_text(plan_status(config, out, sizes, encoder_info(args.encoder).num_layers), out))
    study = study_status_text(out, sizes)
    if study:
        print("\n" + study)
    return 0


def hub_study_cli(args) -> int:
    """The hub-scale study: its jobs read the hub (data root HUB_ROOT), whatever data root or classroom pack
    this machine has; resumable like the plan; its report is written beside its jobs."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("1", "true", "yes") and not hub.hub_reachable():
        raise ConfigError("the hub-scale study reads the Hugging Face hub, which this machine cannot reach: run it "
                          "where there is a network, or with HF_HUB_OFFLINE=1 once its datasets and encoder are in "
                          "the Hugging Face cache")
    config = Reproduction(data_root=HUB_ROOT, encoder=args.encoder, tasks=STUDY_TASKS, device=args.device,
                          precision=args.precision, study_preset="hub")
    out = Path(args.out)
    if args.dry_run:
        design = config.study_design(out)
        print(design_in_words(design))
        for key, fields in design.job_fields(out):
            print(f"{key}: {fields['task']}, {len(fields['seeds'])} seed(s)"
                  + (f", intermediate {', '.join(fields['intermediate_tasks'])}" if fields.get("intermediate_tasks")
                     else "")
                  + (f", from {fields['init_from']}" if fields.get("init_from") else ""))
        return 0
    refuse_mixed_runs(out)
    status = run_interruptibly(config, out, ("study",))
    print(f"report written to {write_study_report(out, out / HUB_STUDY_REPORT)}")
    return stopped_or_done(status)
