"""`python -m dlfa ...` (or `dlfa ...`): the command line. Each command group is a module of dlfa/cli that
registers itself through a `register(subparsers)` function (listed in COMMAND_MODULES) and calls the library;
errors a user can fix print one line, no traceback: DlfaError, and an OSError (a folder that cannot be written, a
disk that is full), naming its file. When the reader
of the output goes away (`python -m dlfa jobs list | head -1`), the command ends quietly, as Unix tools do."""
from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys

from dlfa.errors import DlfaError

# Modules that add sub-commands (each defines `register(subparsers)`).
COMMAND_MODULES = [
    "dlfa.cli.main",
    "dlfa.cli.data",
    "dlfa.cli.jobs",
    "dlfa.cli.reproduce",
    "dlfa.cli.analysis",
]


def register(subparsers) -> None:
    info = subparsers.add_parser("info", help="print facts about an encoder as JSON")
    info.add_argument("--encoder", default="embedded:e5-small", help="embedded:e5-small | hub id | local folder")
    info.set_defaults(func=run_info)


def run_info(args) -> int:
    from dlfa.model.encoders import encoder_info

    print(json.dumps(encoder_info(args.encoder).to_dict(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dlfa", description="DLFA Explorer command line")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DlfaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout's reader is gone: send what is still buffered nowhere, so that the exit does not fail on it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except OSError as exc:  # the machine's side: permissions, a missing folder, a full disk
        where = "".join(f"{name}: " for name in (exc.filename, exc.filename2) if name is not None)
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
