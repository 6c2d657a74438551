"""Session script (main's code): merge the records the streams saved into main's docs/reproduction.
A job's results.json is taken from a record that holds at least as many finished runs of it as main's (the later
source wins a tie: a rerun);
timings.json per job from the record with the most seconds, "complete" as the merged results.json says (a stream
that trains a record's run again has it unfinished); layers/tuned.json is the union of the analysed runs;
the other small files are taken where main lacks them. Usage: python merge_record.py MAIN_RECORD SOURCE_RECORD..."""
import sys
from pathlib import Path

from dlfa.io import write_json
from dlfa.reproduction.plan import SMALL_FILES, TIMINGS_FILE, TUNED_LAYERS_FILE, read_json, read_results
from dlfa.reproduction.record import complete_runs
from dlfa.results import COMPLETED, RESULTS_FILE


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


main, sources = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
for source in sources:
    for path in sorted(source.glob(f"*/*/{RESULTS_FILE}")):
        target = main / path.relative_to(source)
        new, old = read_results(path), read_results(target)
        if complete_runs(new) >= complete_runs(old) and (old is None or path.read_bytes() != target.read_bytes()):
            write(target, path.read_bytes())
            print(f"{path.relative_to(source).parent}: {complete_runs(old)} -> {complete_runs(new)} finished runs"
                  f" ({new.status}) from {source}")
    timings = read_json(source / TIMINGS_FILE) or {}
    merged = read_json(main / TIMINGS_FILE) or {}
    for job, entry in timings.items():
        if entry["seconds"] > merged.get(job, {}).get("seconds", -1):
            merged[job] = entry
    write_json(main / TIMINGS_FILE, merged)
    tuned = read_json(source / TUNED_LAYERS_FILE)
    if tuned:
        have = read_json(main / TUNED_LAYERS_FILE) or {"settings": tuned["settings"], "runs": {}}
        assert have["settings"] == tuned["settings"], "layer analyses of different settings"
        added = sorted(set(tuned["runs"]) - set(have["runs"]))
        have["runs"].update({key: tuned["runs"][key] for key in added})
        write_json(main / TUNED_LAYERS_FILE, have)
        print(f"{TUNED_LAYERS_FILE}: {len(added)} analyses added from {source}")
    for name in SMALL_FILES:
        if name not in (TIMINGS_FILE, TUNED_LAYERS_FILE) and (source / name).is_file() and not (main / name).is_file():
            write(main / name, (source / name).read_bytes())
timings = read_json(main / TIMINGS_FILE) or {}
for job, entry in timings.items():
    results = read_results(main / job / RESULTS_FILE)
    if results is not None:
        entry["complete"] = results.status == COMPLETED
write_json(main / TIMINGS_FILE, timings)
running = [str(p.parent.relative_to(main)) for p in main.glob(f"*/*/{RESULTS_FILE}") if read_results(p).status == "running"]
if running:
    sys.exit(f"jobs still marked running (stop the streams first): {', '.join(running)}")
