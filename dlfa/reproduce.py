"""Reproduce DLFA (Chen et al., arXiv 2205.08497) with the product's own engine, and report on it.

The reproduction is a plan of ordinary jobs, each a JobSpec run by `dlfa.train.run_job` into its own folder
under one output root, so every number the report prints comes from a results.json that records its spec:

    layers/analysis.json   retrieval accuracy and CKA against English per layer on Parallel UD
    probe/<task>           last, dlfa with every fusion layer, scalar-mix; frozen encoder (probe mode), 1 seed
    finetune/<task>        last, dlfa at the best probe layer (English dev) and two others, scalar-mix; 3 seeds
    study/<task>-<count>   dlfa at the best probe layer after 0, 3 and 9 English intermediate tasks, equal
                           budgets per stage, 3 seeds
    layers/tuned.json      the layer analysis again, of each study run's fine-tuned encoder (its saved model):
                           what 0, 3 or 9 intermediate tasks did to each layer's cross-linguality

Running the plan again skips finished units and resumes interrupted ones from their checkpoints, so a plan
too long for one sitting is run in several; `timings.json` adds up the time each job took over all sittings.

The record: the output root holds checkpoints and models (hundreds of MB, git-ignored); after each sitting the
small files (every job's results.json, the layer analysis, timings.json) are copied into `reproduction/` beside
the report, in the repository. The report is written from the record, so it regenerates on a fresh clone, and
a sitting on a fresh clone starts by restoring the record's finished runs, so it continues where the last one
stopped instead of starting over.
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from dlfa.callbacks import Callback
from dlfa.errors import ConfigError
from dlfa.jobs.spec import JobSpec

PARTS = ("layers", "probe", "finetune", "study", "tuned-layers")  # in running order: the cheapest first
RESULTS_FILE = "results.json"
RECORD = "reproduction"
LAYER_ANALYSIS_FILE = "layers/analysis.json"
TUNED_LAYERS_FILE = "layers/tuned.json"
TIMINGS_FILE = "timings.json"
SMALL_FILES = (TIMINGS_FILE, LAYER_ANALYSIS_FILE, TUNED_LAYERS_FILE)  # recorded beside the jobs' results.json


@dataclass(frozen=True)
class TaskPlan:
    """How one of the paper's four tasks is run: its target languages and budgets."""

    task: str
    eval_languages: tuple[str, ...]
    max_train_examples: int | None
    max_eval_examples: int | None
    probe_epochs: float
    finetune_epochs: float


TASK_PLANS = {
    plan.task: plan
    for plan in (
        TaskPlan("udpos", ("de", "fr", "es", "ru", "zh", "ar", "tr", "fi"), 4000, 500, 2, 1),
        TaskPlan("panx", ("de", "fr", "es", "ru", "zh", "ar", "tr", "fi"), 4000, 500, 2, 1),
        TaskPlan("xnli", ("ar", "bg", "de", "el", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh"),
                 None, None, 3, 3),
        TaskPlan("pawsx", ("de", "es", "fr", "ja", "ko", "zh"), None, None, 3, 3),
    )
}
STUDY_TASKS = ("udpos", "xnli")
STUDY_COUNTS = (0, 3, 9)
SEEDS = (1, 2, 3)


@dataclass(frozen=True)
class Reproduction:
    """The settings every job of the plan shares. `spec_overrides` replaces JobSpec fields of every job (a quick
    pass with `max_steps`, say, or the tests' tiny budgets); `layer_pairs` is the layer analysis' pairs per language."""

    data_root: str
    encoder: str = "embedded:e5-small"
    tasks: tuple[str, ...] = tuple(TASK_PLANS)
    seeds: tuple[int, ...] = SEEDS
    device: str = "auto"
    layer_pairs: int = 200
    study_counts: tuple[int, ...] = STUDY_COUNTS
    spec_overrides: dict = field(default_factory=dict)

    def base_spec(self, task: str, epochs: float) -> JobSpec:
        plan = TASK_PLANS[task]
        spec = JobSpec(task=task, eval_languages=plan.eval_languages, encoder=self.encoder, data_root=self.data_root,
                       max_train_examples=plan.max_train_examples, max_eval_examples=plan.max_eval_examples,
                       epochs=epochs, device=self.device)
        return replace(spec, **self.spec_overrides)

    def probe_spec(self, task: str, num_layers: int) -> JobSpec:
        base = self.base_spec(task, TASK_PLANS[task].probe_epochs)
        return replace(base, aggregations=("last", "dlfa", "scalar-mix"), fusion_layers=tuple(range(num_layers)),
                       seeds=self.seeds[:1], probe=True, name=f"reproduction: probe sweep {task}")

    def finetune_spec(self, task: str, fusion_layers: tuple[int, ...]) -> JobSpec:
        base = self.base_spec(task, TASK_PLANS[task].finetune_epochs)
        return replace(base, aggregations=("last", "dlfa", "scalar-mix"), fusion_layers=fusion_layers, seeds=self.seeds,
                       name=f"reproduction: fine-tuning {task}")

    def study_specs(self, task: str, fusion_layer: int) -> dict[int, JobSpec]:
        """DLFA at `fusion_layer` after 0, 3 and 9 (study_counts) intermediate tasks, every stage with the target
        stage's budget."""
        from dlfa.study import study_specs

        base = replace(self.base_spec(task, TASK_PLANS[task].finetune_epochs), aggregations=("dlfa",),
                       fusion_layers=(fusion_layer,), seeds=self.seeds)
        return {count: replace(spec, name=f"reproduction: {spec.name}")
                for count, spec in study_specs(base, self.study_counts).items()}


# ----------------------------------------------------------------------------------------------------
# Choosing the fine-tuning layers from the probe sweep


def dlfa_dev_scores(probe_results: dict) -> dict[int, float]:
    """fusion layer -> English dev score of each finished dlfa run of a probe sweep, in sweep order."""
    return {r["fusion_layer"]: r["dev"] for r in probe_results.get("grid", {}).get("rows", [])
            if r["aggregation"] == "dlfa" and r.get("dev") is not None}


def best_dev_layer(probe_results: dict) -> int:
    """The dlfa fusion layer with the best English dev score in a probe sweep (never chosen on test languages);
    of tied layers, the first."""
    scores = dlfa_dev_scores(probe_results)
    if not scores:
        raise ConfigError("the probe sweep has no finished dlfa run with a dev score yet: run the probe part first")
    return max(scores, key=scores.get)


def finetune_layers(best: int, num_layers: int) -> tuple[int, ...]:
    """The best probe layer and two others from the lower and upper part of the encoder, e.g. 6 → (6, 3, 9)."""
    candidates = [num_layers // 4, num_layers // 2, (3 * num_layers) // 4]
    others = [k for k in candidates if k != best][:2]
    return (best, *others)


# ----------------------------------------------------------------------------------------------------
# Running the plan


def read_results(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def record_root(doc_path: str | Path) -> Path:
    """Where the record of a report's results lives: `reproduction/` beside the report."""
    return Path(doc_path).parent / RECORD


def complete_runs(results: dict | None) -> int:
    return sum(run["status"] == "complete" for run in (results or {}).get("runs", []))


def save_record(out_root: Path, record: Path) -> None:
    """Copy the small result files of out_root into the record; a job's file only when it holds at least as
    many finished runs as the recorded one (an older output root never overwrites newer results)."""
    from dlfa.train import write_json

    for name in SMALL_FILES:
        if (out_root / name).is_file():
            write_json(record / name, read_results(out_root / name))
    for path in out_root.glob(f"*/*/{RESULTS_FILE}"):  # <part>/<job>/results.json
        results, target = read_results(path), record / path.relative_to(out_root)
        if complete_runs(results) >= complete_runs(read_results(target)) and complete_runs(results) > 0:
            write_json(target, results)


def restore_record(record: Path, out_root: Path) -> None:
    """Put the record's files, and each finished run's results.json in its unit folder, into an output root
    that lacks them, so that running the plan skips what the record already holds."""
    from dlfa.train import write_json

    for name in SMALL_FILES:
        if (record / name).is_file() and not (out_root / name).is_file():
            write_json(out_root / name, read_results(record / name))
    for path in record.glob(f"*/*/{RESULTS_FILE}"):
        job_dir = out_root / path.parent.relative_to(record)
        results = read_results(path)
        if complete_runs(read_results(job_dir / RESULTS_FILE)) >= complete_runs(results):
            continue
        write_json(job_dir / RESULTS_FILE, results)
        for run in results["runs"]:
            unit_file = job_dir / JobSpec.from_dict(run["spec"]).unit_name() / RESULTS_FILE
            if run["status"] == "complete" and not unit_file.is_file():
                write_json(unit_file, run)


class Timings:
    """Seconds each job of the plan took, added up over sittings, in out_root/timings.json."""

    def __init__(self, out_root: Path):
        self.path = out_root / TIMINGS_FILE
        self.data: dict[str, dict] = read_results(self.path) or {}

    def add(self, job: str, seconds: float, complete: bool) -> None:
        from dlfa.train import write_json

        entry = self.data.setdefault(job, {"seconds": 0.0, "sittings": 0})
        entry["seconds"] += seconds
        entry["sittings"] += 1
        entry["complete"] = complete
        write_json(self.path, self.data)


def plan_jobs(config: Reproduction, out_root: Path, parts: tuple[str, ...]) -> Iterator[tuple[str, JobSpec | None]]:
    """(job folder relative to out_root, spec) in running order; spec None for the layer analyses. Fine-tuning
    and study jobs take their fusion layer from the probe sweep (best English dev score), so they are planned
    once the probe part has run."""
    from dlfa.encoders import encoder_info

    num_layers = encoder_info(config.encoder).num_layers
    if "layers" in parts:
        yield "layers", None
    if "probe" in parts:
        for task in config.tasks:
            yield f"probe/{task}", config.probe_spec(task, num_layers)
    if "finetune" in parts:
        for task in config.tasks:
            best = best_dev_layer(probe_results(out_root, task, "fine-tuning"))
            yield f"finetune/{task}", config.finetune_spec(task, finetune_layers(best, num_layers))
    if "study" in parts:
        for task in (t for t in STUDY_TASKS if t in config.tasks):
            best = best_dev_layer(probe_results(out_root, task, "the intermediate-task study"))
            for count, spec in config.study_specs(task, best).items():
                yield f"study/{task}-{count}", spec
    if "tuned-layers" in parts:
        yield "tuned-layers", None


def probe_results(out_root: Path, task: str, needed_by: str) -> dict:
    """The finished probe sweep of `task`, which fine-tuning and the study take their fusion layer from."""
    results = read_results(out_root / "probe" / task / RESULTS_FILE)
    if results is None or results.get("status") != "complete":
        raise ConfigError(f"{needed_by} of {task} picks its fusion layer from the probe sweep, which has not "
                          f"finished yet ({out_root}/probe/{task}): run the probe part first")
    return results


def layer_pairs(config: Reproduction) -> dict:
    """The layer analyses' sentences: up to `layer_pairs` pairs of every Parallel UD language of the data root."""
    from dlfa.analysis import available_parallel_languages, parallel_pairs

    return parallel_pairs(config.data_root, available_parallel_languages(config.data_root), config.layer_pairs)


def layer_settings(config: Reproduction) -> dict:
    return {"encoder": config.encoder, "data_root": config.data_root, "max_pairs": config.layer_pairs}


def run_layer_analysis(config: Reproduction, out_root: Path, log: Callable[[str], None]) -> bool:
    """Retrieval and CKA per layer for every Parallel UD language of the data root, written with its settings;
    False when it was there already."""
    from dlfa.analysis import layer_analysis
    from dlfa.train import write_json

    if (out_root / LAYER_ANALYSIS_FILE).is_file():
        return False
    log("layer analysis on the Parallel UD sentences")
    analysis = layer_analysis(config.encoder, layer_pairs(config), config.layer_pairs)
    (out_root / "layers").mkdir(parents=True, exist_ok=True)
    write_json(out_root / LAYER_ANALYSIS_FILE, {"settings": layer_settings(config), "status": "complete",
                                                **analysis.to_dict()})
    return True


def run_tuned_layer_analysis(config: Reproduction, out_root: Path, log: Callable[[str], None]) -> bool:
    """The layer analysis of every finished study run whose saved model is on this machine and that the file
    does not hold yet, keyed `study/<task>-<count>/<unit>`; written after each run, so a stop keeps the rest.
    False when there was none to do."""
    from dlfa.analysis import fine_tuned_encoder, layer_analysis
    from dlfa.encoders import load_encoder
    from dlfa.model import CONFIG_FILE
    from dlfa.train import write_json

    path = out_root / TUNED_LAYERS_FILE
    recorded = read_results(path) or {"settings": layer_settings(config), "runs": {}}
    base = pairs = None
    done = False
    for task in (t for t in STUDY_TASKS if t in config.tasks):
        for job_dir in sorted(out_root.glob(f"study/{task}-*")):
            for run in (read_results(job_dir / RESULTS_FILE) or {}).get("runs", []):
                unit = JobSpec.from_dict(run["spec"]).unit_name()
                key, model_dir = f"study/{job_dir.name}/{unit}", job_dir / unit / run.get("model_dir", "model")
                if run["status"] != "complete" or key in recorded["runs"] or not (model_dir / CONFIG_FILE).is_file():
                    continue
                log(f"layer analysis of the fine-tuned {key}")
                base, pairs = base or load_encoder(config.encoder), pairs or layer_pairs(config)
                analysis = layer_analysis(key, pairs, config.layer_pairs, loaded=fine_tuned_encoder(model_dir, base))
                recorded["runs"][key] = analysis.to_dict()
                path.parent.mkdir(parents=True, exist_ok=True)
                write_json(path, recorded)
                done = True
    return done


ANALYSES = {"layers": run_layer_analysis, "tuned-layers": run_tuned_layer_analysis}


def run_plan(config: Reproduction, out_root: str | Path, parts: tuple[str, ...] = PARTS,
             callbacks: tuple[Callback, ...] = (), log: Callable[[str], None] = print) -> str:
    """Run (or resume) the chosen parts of the plan; "complete", or "stopped" when a callback asked to stop."""
    from dlfa.train import run_job

    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise ConfigError(f"unknown part(s) {', '.join(unknown)}: choose from {', '.join(PARTS)}")
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    timings = Timings(out_root)
    for job, spec in plan_jobs(config, out_root, parts):
        started = time.perf_counter()
        if spec is None:
            if ANALYSES[job](config, out_root, log):
                timings.add(job, time.perf_counter() - started, True)
            continue
        done = read_results(out_root / job / RESULTS_FILE)
        if done is not None and done.get("status") == "complete" and not spec.changed_settings(done["spec"]):
            continue
        log(f"{job}: {len(spec.units())} runs")
        results = run_job(spec.validate(), out_root / job, callbacks)
        timings.add(job, time.perf_counter() - started, results["status"] == "complete")
        if results["status"] != "complete":
            return "stopped"
    return "complete"


# ----------------------------------------------------------------------------------------------------
# CLI: python -m dlfa reproduce run|report

DEFAULT_OUT = "cache/reproduction"
DEFAULT_DOC = "docs/REPRODUCTION.md"


def register(subparsers) -> None:
    reproduce = subparsers.add_parser("reproduce", help="run (or resume) the DLFA reproduction and write its report")
    commands = reproduce.add_subparsers(dest="reproduce_command", required=True)
    run = commands.add_parser("run", help="run or resume the plan's jobs in the foreground, then write the report")
    run.add_argument("--data-root", required=True, metavar="DIR", help="a data root laid out like ../shared/data")
    run.add_argument("--encoder", default="embedded:e5-small")
    run.add_argument("--parts", default=",".join(PARTS), help=f"which parts, in order (default {','.join(PARTS)})")
    run.add_argument("--tasks", default=",".join(TASK_PLANS), help="which of the four tasks")
    run.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    run.set_defaults(func=run_cli)
    report = commands.add_parser("report", help="write the report from the record (after recording --out's results)")
    report.set_defaults(func=report_cli)
    for command in (run, report):
        command.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"results root (default {DEFAULT_OUT})")
        command.add_argument("--doc", default=DEFAULT_DOC, metavar="FILE", help=f"the report (default {DEFAULT_DOC})")


def run_cli(args) -> int:
    import signal

    from dlfa.jobs.cli import TqdmCallback, split_list

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
    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        status = run_plan(config, args.out, split_list(args.parts), (callback,))
    finally:
        signal.signal(signal.SIGINT, previous)
        callback.close()
        save_record(Path(args.out), record_root(args.doc))
    report_cli(args)
    if status != "complete":
        print("stopped: run the same command again to resume", file=sys.stderr)
        return 130
    return 0


def report_cli(args) -> int:
    from dlfa.report import write_report

    command = "python -m dlfa reproduce run --data-root ../shared/data   # resumes; then writes this report"
    if Path(args.out).is_dir():
        save_record(Path(args.out), record_root(args.doc))
    print(f"report written to {write_report(record_root(args.doc), args.doc, command)}")
    return 0
