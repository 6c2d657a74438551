"""same_metrics.py RECORD_RESULTS RERUN_JOB_DIR TARGET_JOB_DIR: exit 1 unless every seed the rerun planned (its
spec's seeds: all of the record's, or some of them) finished with exactly the record's metrics and dev score; then
copy those seeds' saved models into TARGET_JOB_DIR."""
import json
import shutil
import sys
from pathlib import Path

record, rerun, target = json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]), Path(sys.argv[3])
rerun_job = json.loads((rerun / "results.json").read_text())
by_seed = {run["spec"]["seeds"][0]: run for run in rerun_job["runs"] if run["status"] == "completed"}
same = True
for run in (run for run in record["runs"] if run["spec"]["seeds"][0] in rerun_job["spec"]["seeds"]):
    seed = run["spec"]["seeds"][0]
    other = by_seed.get(seed)
    equal = other is not None and other["metrics"] == run["metrics"] and other["dev_score"] == run["dev_score"]
    print(f"seed {seed}: {'identical' if equal else 'DIFFERENT'} (dev {run['dev_score']} vs "
          f"{other and other['dev_score']})")
    same &= equal
if not same:
    sys.exit(1)
compared = set(rerun_job["spec"]["seeds"])
for unit in sorted(p for p in rerun.iterdir() if (p / "model").is_dir()
                   and json.loads((p / "results.json").read_text())["spec"]["seeds"][0] in compared):
    shutil.copytree(unit / "model", target / unit.name / "model", dirs_exist_ok=True)
    print(f"model of {unit.name} copied")
