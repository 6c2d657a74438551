"""Session step for the pinned code (cwd /work/repro): `python reuse_seed1.py OUT DATA DOC -- SETTING...` restores
the record into OUT, then for each fine-tuning job of the SETTINGs (xnli-cls, pawsx-mean, ...) takes its seed 1
over from the selection run of the same settings: main's `runner.take_selection_run` written against the pinned
code's imports (the same conditions: the same spec but for the grid's name, the same code version, for UD-POS and
XNLI the saved model). Run under pinned_rules, so the jobs are planned as fp32.py plans them."""
import dataclasses
import shutil
import sys
from pathlib import Path

sys.path.insert(0, "")
sys.path.insert(1, "/work/scratch")
import pinned_rules  # noqa: E402

pinned_rules.apply()

from dlfa.code_version import code_version  # noqa: E402
from dlfa.engine.job import UNIT_SPEC_FILE  # noqa: E402
from dlfa.engine.spec import JobSpec  # noqa: E402
from dlfa.errors import DlfaError  # noqa: E402
from dlfa.io import atomic_folder, write_json  # noqa: E402
from dlfa.model.modeling import CONFIG_FILE  # noqa: E402
from dlfa.reproduction import plan  # noqa: E402
from dlfa.reproduction.record import restore_record  # noqa: E402
from dlfa.results import RESULTS_FILE, read_run_results, write_results  # noqa: E402

out_root, data_root, doc = (Path(a) for a in sys.argv[1:4])
settings = sys.argv[sys.argv.index("--") + 1:]
restore_record(plan.record_root(doc), out_root)
config = plan.Reproduction(data_root=str(data_root.resolve()), tasks=sorted({s.split("-")[0] for s in settings}))
sources = code_version()["sources_sha256"]
for setting in settings:
    task, _, pooling = setting.partition("-")
    for aggregation, chosen in plan.chosen_settings(out_root, setting).items():
        job = f"finetune/{setting}-{aggregation}"
        spec = JobSpec.from_dict(config.finetune_fields(task, pooling or None, aggregation,
                                                        chosen.spec["learning_rate"], chosen.fusion_layer))
        unit = spec.units()[0]
        unit_dir = out_root / job / unit.unit_name()
        if unit.seeds != (plan.SELECTION_SEED,) or unit_dir.exists():
            continue
        for path in sorted(p for select in (f"select/{setting}", f"select/{setting}-layers")
                           for p in (out_root / select).glob(f"*-s{plan.SELECTION_SEED}/{RESULTS_FILE}")):
            try:
                run = read_run_results(path)
            except DlfaError:
                continue
            taken = dataclasses.replace(run, spec={**run.spec, "learning_rates": []})
            same = (run.completed and unit.changed_settings(taken.spec) == []
                    and (run.code_version or {}).get("sources_sha256") == sources)
            has_model = (path.parent / (run.model_dir or "model") / CONFIG_FILE).is_file()
            if same and (task not in plan.STUDY_TASKS or has_model):
                with atomic_folder(unit_dir) as staging:
                    shutil.copytree(path.parent, staging, dirs_exist_ok=True,
                                    ignore=shutil.ignore_patterns("checkpoints"))
                    write_json(staging / UNIT_SPEC_FILE, taken.spec)
                    write_results(staging, taken)
                print(f"{job}/{unit.unit_name()}: the selection run {path.parent} taken over", flush=True)
                break
