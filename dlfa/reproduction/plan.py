"""Reproduce DLFA (Chen et al., arXiv 2205.08497) with the product's own engine, and report on it.

The reproduction is a plan of ordinary jobs, each a JobSpec run by `dlfa.engine.job.run_job` into its own folder
under one output root, so every number the report prints comes from a results.json that records its spec.
A "setting" is a task, and for the sentence-level tasks (XNLI, PAWS-X) a pooling: `xnli-cls`, `xnli-mean`,
`udpos`. Fine-tuning trains to convergence: English dev is evaluated twice per epoch, training stops after
PATIENCE evaluations without improvement (at most the task's `max_epochs`) and the best-dev state is evaluated.

    layers/analysis.json         retrieval and CKA against English per layer on Parallel UD
    probe/<setting>              frozen encoder: last, dlfa at every fusion layer, scalar-mix; seed 1
    select/<setting>             seed 1, the learning-rate grid LEARNING_RATES: last, scalar-mix and dlfa at the
                                 probe's best layer; each aggregation's rate is chosen on English dev
    select/<setting>-layers      seed 1, dlfa at two other layers (a lower and an upper one) at dlfa's rate;
                                 the fusion layer is chosen on English dev among the three
    finetune/<setting>-<agg>     SEEDS (5) of last, dlfa at the chosen layer, scalar-mix, each at its rate
    layers/tuned.json            the layer analysis of every plain fine-tuned encoder (0 intermediate tasks, every
                                 aggregation) of finetune/udpos-* and finetune/xnli-cls-*
    study/<task>-<count>         (optional part, not in the estimate) dlfa at the chosen settings after 0, 3 and 9
                                 English intermediate tasks, equal fixed budgets per stage, 3 seeds
    data/sizes.json              each task's English train / dev / test sizes in the data root

Choices are made on seed 1 and on English dev only (never on test languages); ties go to the smaller learning
rate, then the lower layer; runs whose target mean stays at the majority class are not chosen while another is.

Compute (`estimated_hours`): the seconds per training step and per evaluation of every target language that
the previous record measured on this 2-core CPU (STEP_SECONDS, TEST_SECONDS, PROBE_SECONDS), times the steps of
each run if it trains to its max_epochs cap (an upper bound: early stopping ends most runs sooner), per setting
3 × 3 grid runs + 2 layer runs + 3 aggregations × 5 seeds = 26 runs: 15.3 hours at most for the six settings,
probes and the 30 fine-tuned encoders' layer analyses included (udpos 1.3 h, panx 1.5 h, xnli 2 × 3.9 h, pawsx
2 × 2.1 h), to run in several sittings. The BatchNorm fix and the larger XNLI dev set add a little per run.

Running the plan again skips finished units and resumes interrupted ones from their checkpoints, so a plan
too long for one sitting is run in several; `timings.json` adds up the time each job took over all sittings.

The record: the output root holds checkpoints and models (hundreds of MB, git-ignored); after each sitting the
small files (every job's results.json, the layer analyses, the sizes, timings.json) are copied into
`reproduction/` beside the report, in the repository. The report is written from the record, so it regenerates
on a fresh clone, and a sitting on a fresh clone starts by restoring the record's finished runs, so it continues
where the last one stopped instead of starting over. The report refuses a record whose runs come from different
code versions (`code_version` of each run): an older record is removed before the plan is rerun.

The plan is data (spec fields per job folder), turned into JobSpecs only when a job runs.
"""
from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dlfa.engine.callbacks import Callback
from dlfa.errors import ConfigError
from dlfa.engine.spec import JobSpec

PARTS = ("layers", "probe", "select", "finetune", "tuned-layers", "study")  # in running order
DEFAULT_PARTS = PARTS[:-1]  # the study is run on request only (it is not in the compute estimate)
RESULTS_FILE = "results.json"
RECORD = "reproduction"
LAYER_ANALYSIS_FILE = "layers/analysis.json"
TUNED_LAYERS_FILE = "layers/tuned.json"
SIZES_FILE = "data/sizes.json"
TIMINGS_FILE = "timings.json"
SMALL_FILES = (TIMINGS_FILE, LAYER_ANALYSIS_FILE, TUNED_LAYERS_FILE, SIZES_FILE)  # beside the jobs' results.json
AGGREGATIONS = ("last", "dlfa", "scalar-mix")
LEARNING_RATES = (2e-5, 5e-5, 1e-4)  # 2e-5 as XTREME's mBERT recipe
PATIENCE = 3  # English dev evaluations (two per epoch) without improvement before training stops
EVALS_PER_EPOCH = 2


@dataclass(frozen=True)
class TaskPlan:
    """How one of the paper's four tasks is run: its targets, caps, poolings and budgets."""

    task: str
    eval_languages: tuple[str, ...]
    max_train_examples: int | None  # today's caps on token-task training sentences
    max_eval_examples: int | None
    probe_epochs: float
    max_epochs: float  # the fine-tuning cap under early stopping
    poolings: tuple[str | None, ...] = (None,)  # None: a token task, where pooling does not apply


TASK_PLANS = {
    plan.task: plan
    for plan in (
        TaskPlan("udpos", ("de", "fr", "es", "ru", "zh", "ar", "tr", "fi"), 4000, 500, 2, 3),
        TaskPlan("panx", ("de", "fr", "es", "ru", "zh", "ar", "tr", "fi"), 4000, 500, 2, 3),
        TaskPlan("xnli", ("ar", "bg", "de", "el", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh"),
                 None, None, 3, 3, ("cls", "mean")),
        TaskPlan("pawsx", ("de", "es", "fr", "ja", "ko", "zh"), None, None, 3, 4, ("cls", "mean")),
    )
}
STUDY_TASKS = ("udpos", "xnli")  # the intermediate-task study, and the fine-tuned encoders' layer analysis
STUDY_COUNTS = (0, 3, 9)
STUDY_SEEDS = 3
SEEDS = (1, 2, 3, 4, 5)
SELECTION_SEED = 1


def setting_name(task: str, pooling: str | None) -> str:
    return task if pooling is None else f"{task}-{pooling}"


@dataclass(frozen=True)
class Reproduction:
    """The settings every job of the plan shares. `spec_overrides` replaces spec fields of every job (a quick
    pass with `max_steps`, say, or the tests' tiny budgets); `layer_pairs` is the layer analysis' pairs per language."""

    data_root: str
    encoder: str = "embedded:e5-small"
    tasks: tuple[str, ...] = tuple(TASK_PLANS)
    seeds: tuple[int, ...] = SEEDS
    learning_rates: tuple[float, ...] = LEARNING_RATES
    device: str = "auto"
    layer_pairs: int = 200
    study_counts: tuple[int, ...] = STUDY_COUNTS
    spec_overrides: dict = field(default_factory=dict)

    def settings(self) -> Iterator[tuple[str, str | None]]:
        """(task, pooling) of every setting, in plan order."""
        for task in self.tasks:
            for pooling in TASK_PLANS[task].poolings:
                yield task, pooling

    def base_fields(self, task: str, pooling: str | None) -> dict:
        """Spec fields shared by every job of a setting: fine-tuning to convergence on English dev."""
        plan = TASK_PLANS[task]
        fields = {"task": task, "eval_languages": list(plan.eval_languages), "encoder": self.encoder,
                  "data_root": self.data_root, "max_train_examples": plan.max_train_examples,
                  "max_eval_examples": plan.max_eval_examples, "device": self.device,
                  "patience": PATIENCE, "max_epochs": plan.max_epochs, "eval_every": self.eval_every(task)}
        if pooling is not None:
            fields["pooling"] = pooling
        return {**fields, **self.spec_overrides}

    def eval_every(self, task: str) -> int:
        """Steps between English dev evaluations: EVALS_PER_EPOCH per epoch of the (capped) training set."""
        from dlfa.data.registry import DataSource, english_sizes

        train = english_sizes(task, DataSource.resolve(self.data_root))["train"]
        cap = self.spec_overrides.get("max_train_examples", TASK_PLANS[task].max_train_examples)
        if cap:
            train = min(train, cap)
        batch = self.spec_overrides.get("batch_size", JobSpec.batch_size)
        return max(1, math.ceil(train / batch) // EVALS_PER_EPOCH)

    def probe_fields(self, task: str, pooling: str | None, num_layers: int) -> dict:
        """Every fusion layer on a frozen encoder, seed 1, a fixed budget (no early stopping)."""
        return {**self.base_fields(task, pooling), "patience": None, "max_epochs": None, "eval_every": None,
                "epochs": TASK_PLANS[task].probe_epochs, "aggregations": list(AGGREGATIONS),
                "fusion_layers": list(range(num_layers)), "seeds": [SELECTION_SEED], "probe": True,
                "name": f"reproduction: probe sweep {setting_name(task, pooling)}"}

    def select_fields(self, task: str, pooling: str | None, probe_layer: int) -> dict:
        """The learning-rate grid on seed 1: last, scalar-mix and dlfa at the probe's best layer."""
        return {**self.base_fields(task, pooling), "aggregations": list(AGGREGATIONS),
                "fusion_layers": [probe_layer], "seeds": [SELECTION_SEED], "learning_rates": list(self.learning_rates),
                "name": f"reproduction: learning rates {setting_name(task, pooling)}"}

    def layer_fields(self, task: str, pooling: str | None, layers: tuple[int, ...], rate: float) -> dict:
        """dlfa at other candidate layers, seed 1, at dlfa's chosen learning rate."""
        return {**self.base_fields(task, pooling), "aggregations": ["dlfa"], "fusion_layers": list(layers),
                "seeds": [SELECTION_SEED], "learning_rate": rate,
                "name": f"reproduction: fusion layers {setting_name(task, pooling)}"}

    def finetune_fields(self, task: str, pooling: str | None, aggregation: str, rate: float,
                        layer: int | None) -> dict:
        return {**self.base_fields(task, pooling), "aggregations": [aggregation],
                "fusion_layers": [layer] if layer is not None else [], "seeds": list(self.seeds),
                "learning_rate": rate, "name": f"reproduction: fine-tuning {setting_name(task, pooling)} {aggregation}"}

    def study_specs(self, dlfa_fields: dict) -> dict[int, JobSpec]:
        """DLFA with the chosen settings after 0, 3 and 9 (study_counts) intermediate tasks, 3 seeds, every stage
        with the same fixed budget (the target task's max_epochs: equal budgets need no early stopping)."""
        from dlfa.reproduction.study import study_specs

        fields = {**dlfa_fields, "patience": None, "max_epochs": None, "eval_every": None,
                  "epochs": TASK_PLANS[dlfa_fields["task"]].max_epochs, "seeds": list(self.seeds[:STUDY_SEEDS])}
        return {count: JobSpec.from_dict({**spec.to_dict(), "name": f"reproduction: {spec.name}"})
                for count, spec in study_specs(JobSpec.from_dict(fields), self.study_counts).items()}


# ----------------------------------------------------------------------------------------------------
# Choosing the learning rates and the fusion layer (seed 1, English dev)


def dlfa_dev_scores(probe_results: dict) -> dict[int, float]:
    """fusion layer -> English dev score of each finished dlfa run of a probe sweep, in sweep order."""
    return {r["fusion_layer"]: r["dev"] for r in probe_results.get("grid", {}).get("rows", [])
            if r["aggregation"] == "dlfa" and r.get("dev") is not None}


def best_dev_layer(probe_results: dict) -> int:
    """The dlfa fusion layer with the best English dev score in a sweep (never chosen on test languages); of
    tied layers, by rule, the lowest."""
    scores = dlfa_dev_scores(probe_results)
    if not scores:
        raise ConfigError("the probe sweep has no finished dlfa run with a dev score yet: run the probe part first")
    return max(sorted(scores), key=scores.get)


def finetune_layers(best: int, num_layers: int) -> tuple[int, ...]:
    """The best probe layer and two others from the lower and upper part of the encoder, e.g. 6 → (6, 3, 9)."""
    candidates = [num_layers // 4, num_layers // 2, (3 * num_layers) // 4]
    others = [k for k in candidates if k != best][:2]
    return (best, *others)


def run_at_majority(run: dict) -> bool:
    """Whether a run's target mean stays within MIN_ABOVE_MAJORITY of the majority class's mean (over the same
    languages): it learned nothing that transfers. False when the majority score was not recorded."""
    from dlfa.engine.metrics import at_majority

    metrics = list(run.get("metrics", {}).values())
    if not metrics or any(m.get("majority") is None for m in metrics):
        return False
    mean = sum(m["value"] for m in metrics) / len(metrics)
    return at_majority(mean, sum(m["majority"] for m in metrics) / len(metrics))


def choose(runs: list[dict], aggregation: str) -> dict:
    """The complete run of `aggregation` with the best English dev score: runs at the majority class only when
    no other ran; ties go to the smaller learning rate, then the lower fusion layer."""
    candidates = [r for r in runs if r["status"] == "complete" and r["spec"]["aggregations"][0] == aggregation
                  and r.get("dev_score") is not None]
    if not candidates:
        raise ConfigError(f"no finished {aggregation} run with an English dev score to choose from")
    learned = [r for r in candidates if not run_at_majority(r)] or candidates
    return min(learned, key=lambda r: (-r["dev_score"], r["spec"]["learning_rate"], r["spec"]["fusion_layers"]))


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
    from dlfa.io import write_json

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
    from dlfa.io import write_json

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


def code_version_key(run: dict) -> str:
    """A run's code version as a short string: its sources' hash (with the git commit when known), or
    "not recorded" for runs of code that did not record it."""
    version = run.get("code_version")
    if not version:
        return "not recorded"
    if not isinstance(version, dict):
        return str(version)
    commit = version.get("git_commit")
    dirty = "+changes" if version.get("git_dirty") else ""
    return f"{str(version.get('sources_sha256'))[:12]}" + (f" (git {commit[:10]}{dirty})" if commit else "")


def code_versions(root: Path) -> dict[str, list[str]]:
    """code version -> the jobs (`<part>/<job>`) under root that hold complete runs of it."""
    versions: dict[str, list[str]] = {}
    for path in sorted(root.glob(f"*/*/{RESULTS_FILE}")):
        job = path.parent.relative_to(root).as_posix()
        for key in sorted({code_version_key(r) for r in read_results(path)["runs"] if r["status"] == "complete"}):
            versions.setdefault(key, []).append(job)
    return versions


def refuse_mixed_code_versions(root: Path) -> None:
    """ConfigError when the runs under root come from more than one code version: their numbers must not be
    compared (an older record is removed before the plan is rerun with new code)."""
    versions = code_versions(root)
    if len(versions) > 1:
        listed = "; ".join(f"{key}: {', '.join(jobs)}" for key, jobs in versions.items())
        raise ConfigError(f"{root} mixes runs of {len(versions)} code versions ({listed}): keep the runs of one "
                          "version only (move the older record away, e.g. `git rm -r` it, and rerun its jobs)")


class Timings:
    """Seconds each job of the plan took, added up over sittings, in out_root/timings.json."""

    def __init__(self, out_root: Path):
        self.path = out_root / TIMINGS_FILE
        self.data: dict[str, dict] = read_results(self.path) or {}

    def add(self, job: str, seconds: float, complete: bool) -> None:
        from dlfa.io import write_json

        entry = self.data.setdefault(job, {"seconds": 0.0, "sittings": 0})
        entry["seconds"] += seconds
        entry["sittings"] += 1
        entry["complete"] = complete
        write_json(self.path, self.data)


def plan_jobs(config: Reproduction, out_root: Path, parts: tuple[str, ...]) -> Iterator[tuple[str, dict | None]]:
    """(job folder relative to out_root, spec fields) in running order; fields None for the layer analyses. Each
    step takes its choices from the finished results of the one before (probe → select → finetune), so a part
    is planned once the parts it depends on have run."""
    from dlfa.model.encoders import encoder_info

    num_layers = encoder_info(config.encoder).num_layers
    if "layers" in parts:
        yield "layers", None
    if "probe" in parts:
        for task, pooling in config.settings():
            yield f"probe/{setting_name(task, pooling)}", config.probe_fields(task, pooling, num_layers)
    if "select" in parts:
        for task, pooling in config.settings():
            setting = setting_name(task, pooling)
            best = best_dev_layer(finished(out_root, f"probe/{setting}", "the learning-rate grid"))
            yield f"select/{setting}", config.select_fields(task, pooling, best)
            rate = choose(finished(out_root, f"select/{setting}", "the fusion-layer choice")["runs"], "dlfa")
            others = finetune_layers(best, num_layers)[1:]
            yield f"select/{setting}-layers", config.layer_fields(task, pooling, others, rate["spec"]["learning_rate"])
    if "finetune" in parts:
        for task, pooling in config.settings():
            for aggregation, chosen in chosen_settings(out_root, setting_name(task, pooling)).items():
                layer = chosen["spec"]["fusion_layers"][0] if chosen["spec"]["fusion_layers"] else None
                yield (f"finetune/{setting_name(task, pooling)}-{aggregation}",
                       config.finetune_fields(task, pooling, aggregation, chosen["spec"]["learning_rate"], layer))
    if "tuned-layers" in parts:
        yield "tuned-layers", None
    if "study" in parts:
        for task in (t for t in STUDY_TASKS if t in config.tasks):
            setting = setting_name(task, TASK_PLANS[task].poolings[0])
            dlfa = finished(out_root, f"finetune/{setting}-dlfa", "the intermediate-task study")["spec"]
            for count, spec in config.study_specs(dlfa).items():
                yield f"study/{task}-{count}", spec.to_dict()


def chosen_settings(out_root: Path, setting: str) -> dict[str, dict]:
    """aggregation -> the seed-1 run whose learning rate (and, for dlfa, fusion layer) fine-tuning uses."""
    runs = finished(out_root, f"select/{setting}", "fine-tuning")["runs"]
    runs = runs + finished(out_root, f"select/{setting}-layers", "fine-tuning")["runs"]
    return {aggregation: choose(runs, aggregation) for aggregation in AGGREGATIONS}


def finished(out_root: Path, job: str, needed_by: str) -> dict:
    """The results of a finished job of the plan, which a later step takes its choices from."""
    results = read_results(out_root / job / RESULTS_FILE)
    if results is None or results.get("status") != "complete":
        raise ConfigError(f"{needed_by} takes its choices from {job}, which has not finished yet "
                          f"({out_root}/{job}): run the parts before it first")
    return results


# ----------------------------------------------------------------------------------------------------
# The compute estimate

# Measured by the previous record on this 2-core CPU (bf16, batch 32; docs/reproduction before issue 13): seconds
# per training step, English dev evaluations included, and seconds to evaluate every target language once.
STEP_SECONDS = {"udpos": 0.43, "panx": 0.47, "xnli": 0.81, "pawsx": 1.65}
TEST_SECONDS = {"udpos": 15, "panx": 28, "xnli": 77, "pawsx": 35}  # xnli: 71 s for 830 items, now 900
PROBE_SECONDS = {"udpos": 130, "panx": 228, "xnli": 140, "pawsx": 109}  # one probe sweep
LAYER_ANALYSIS_SECONDS = 56  # one encoder (450 s for 8)


def estimated_hours(config: Reproduction, train_sizes: dict[str, int]) -> dict[str, float]:
    """Hours each setting takes at most, and "total" (the layer analyses included), if every run trains to its
    max_epochs cap. train_sizes: task -> English training examples available (english_sizes)."""
    hours = {}
    runs_per_setting = (len(AGGREGATIONS) * len(config.learning_rates) + 2  # the grid, two more layers
                        + len(AGGREGATIONS) * len(config.seeds))
    for task, pooling in config.settings():
        plan = TASK_PLANS[task]
        train = min(train_sizes[task], plan.max_train_examples or train_sizes[task])
        steps = math.ceil(train / JobSpec.batch_size) * plan.max_epochs
        run_seconds = steps * STEP_SECONDS[task] + TEST_SECONDS[task]
        hours[setting_name(task, pooling)] = (runs_per_setting * run_seconds + PROBE_SECONDS[task]) / 3600
    tuned = sum(len(AGGREGATIONS) * len(config.seeds) for task in STUDY_TASKS if task in config.tasks)
    hours["total"] = sum(hours.values()) + (tuned + 1) * LAYER_ANALYSIS_SECONDS / 3600
    return hours


def layer_pairs(config: Reproduction) -> dict:
    """The layer analyses' sentences: up to `layer_pairs` pairs of every Parallel UD language of the data root."""
    from dlfa.analysis.layers import available_parallel_languages, parallel_pairs

    return parallel_pairs(config.data_root, available_parallel_languages(config.data_root), config.layer_pairs)


def layer_settings(config: Reproduction) -> dict:
    return {"encoder": config.encoder, "data_root": config.data_root, "max_pairs": config.layer_pairs}


def run_layer_analysis(config: Reproduction, out_root: Path, log: Callable[[str], None]) -> bool:
    """Retrieval and CKA per layer for every Parallel UD language of the data root, written with its settings;
    False when it was there already."""
    from dlfa.analysis.layers import layer_analysis
    from dlfa.io import write_json

    if (out_root / LAYER_ANALYSIS_FILE).is_file():
        return False
    log("layer analysis on the Parallel UD sentences")
    analysis = layer_analysis(config.encoder, layer_pairs(config), config.layer_pairs)
    (out_root / "layers").mkdir(parents=True, exist_ok=True)
    write_json(out_root / LAYER_ANALYSIS_FILE, {"settings": layer_settings(config), "status": "complete",
                                                **analysis.to_dict()})
    return True


def run_tuned_layer_analysis(config: Reproduction, out_root: Path, log: Callable[[str], None]) -> bool:
    """The layer analysis of every plain fine-tuned encoder (finetune/<setting>-<aggregation>, 0 intermediate
    tasks, every aggregation) of the STUDY_TASKS, and of the study's runs when they ran, whose saved model is on
    this machine and that the file does not hold yet, keyed `<part>/<job>/<unit>`; written after each run, so a
    stop keeps the rest. False when there was none to do."""
    from dlfa.analysis.layers import fine_tuned_encoder, layer_analysis
    from dlfa.model.encoders import load_encoder
    from dlfa.model.modeling import CONFIG_FILE
    from dlfa.io import write_json

    path = out_root / TUNED_LAYERS_FILE
    recorded = read_results(path) or {"settings": layer_settings(config), "runs": {}}
    base = pairs = None
    done = False
    job_dirs = [job_dir for task in STUDY_TASKS if task in config.tasks
                for pattern in (f"finetune/{setting_name(task, TASK_PLANS[task].poolings[0])}-*", f"study/{task}-*")
                for job_dir in sorted(out_root.glob(pattern))]
    for job_dir in job_dirs:
        for run in (read_results(job_dir / RESULTS_FILE) or {}).get("runs", []):
            unit = JobSpec.from_dict(run["spec"]).unit_name()
            key = f"{job_dir.relative_to(out_root).as_posix()}/{unit}"
            model_dir = job_dir / unit / run.get("model_dir", "model")
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


def record_sizes(config: Reproduction, out_root: Path) -> None:
    """Each task's English train / dev / test sizes in the data root, with what they mean (SIZES_FILE)."""
    from dlfa.data.registry import DataSource, english_sizes
    from dlfa.io import write_json

    source = DataSource.resolve(config.data_root)
    write_json(out_root / SIZES_FILE, {task: english_sizes(task, source) for task in config.tasks})


ANALYSES = {"layers": run_layer_analysis, "tuned-layers": run_tuned_layer_analysis}


def run_plan(config: Reproduction, out_root: str | Path, parts: tuple[str, ...] = DEFAULT_PARTS,
             callbacks: tuple[Callback, ...] = (), log: Callable[[str], None] = print) -> str:
    """Run (or resume) the chosen parts of the plan; "complete", or "stopped" when a callback asked to stop."""
    from dlfa.engine.job import run_job

    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise ConfigError(f"unknown part(s) {', '.join(unknown)}: choose from {', '.join(PARTS)}")
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    record_sizes(config, out_root)
    timings = Timings(out_root)
    for job, fields in plan_jobs(config, out_root, parts):
        started = time.perf_counter()
        if fields is None:
            if ANALYSES[job](config, out_root, log):
                timings.add(job, time.perf_counter() - started, True)
            continue
        spec = JobSpec.from_dict(fields)
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
    import signal

    from dlfa.engine.callbacks import TqdmCallback
    from dlfa.engine.spec import split_list

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
    if status != "complete":
        print("stopped: run the same command again to resume", file=sys.stderr)
        return 130
    return 0


def report_cli(args) -> int:
    from dlfa.reproduction.report import write_report

    command = "python -m dlfa reproduce run --data-root ../shared/data   # resumes; then writes this report"
    if Path(args.out).is_dir():
        save_record(Path(args.out), record_root(args.doc))
    print(f"report written to {write_report(record_root(args.doc), args.doc, command)}")
    return 0
