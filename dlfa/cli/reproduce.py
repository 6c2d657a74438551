"""`python -m dlfa reproduce run|report`: run (or resume) the DLFA reproduction plan in the foreground, keep its
record beside the report, and write the report (dlfa.reproduction)."""
from __future__ import annotations

import signal
import sys
from pathlib import Path

from dlfa.engine.callbacks import TqdmCallback
from dlfa.engine.spec import split_list
from dlfa.errors import ConfigError
from dlfa.reproduction.plan import DEFAULT_DOC, DEFAULT_PARTS, PARTS, TASK_PLANS, Reproduction, record_root
from dlfa.reproduction.record import refuse_mixed_code_versions, restore_record, save_record
from dlfa.reproduction.report import write_report
from dlfa.reproduction.runner import run_plan
from dlfa.results import COMPLETED

DEFAULT_OUT = "cache/reproduction"
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
    run.set_defaults(func=run_cli)
    report = commands.add_parser("report", help="write the report from the record (after recording --out's results)")
    report.set_defaults(func=report_cli)
    for command in (run, report):
        command.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"results root (default {DEFAULT_OUT})")
        command.add_argument("--doc", default=DEFAULT_DOC, metavar="FILE", help=f"the report (default {DEFAULT_DOC})")


def run_cli(args) -> int:
    tasks = split_list(args.tasks)
    unknown = [t for t in tasks if t not in TASK_PLANS]
    if unknown:
        raise ConfigError(f"unknown task(s) {', '.join(unknown)}: the reproduction covers {', '.join(TASK_PLANS)}")
    config = Reproduction(data_root=str(Path(args.data_root).resolve()), encoder=args.encoder, tasks=tasks,
                          device=args.device)
    callback = TqdmCallback()

    def on_interrupt(*_):  # the first Ctrl-C checkpoints and stops, a second one aborts
        if callback.stop.is_set():
            raise KeyboardInterrupt
        callback.stop.set()

    restore_record(record_root(args.doc), Path(args.out))
    refuse_mixed_code_versions(Path(args.out))
    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        status = run_plan(config, args.out, split_list(args.parts), (callback,))
    finally:
        signal.signal(signal.SIGINT, previous)
        callback.close()
        save_record(Path(args.out), record_root(args.doc))
    report_cli(args)
    if status != COMPLETED:
        print("stopped: run the same command again to resume", file=sys.stderr)
        return 130
    return 0


def report_cli(args) -> int:
    if Path(args.out).is_dir():
        save_record(Path(args.out), record_root(args.doc))
    print(f"report written to {write_report(record_root(args.doc), args.doc, REPORT_COMMAND)}")
    return 0
