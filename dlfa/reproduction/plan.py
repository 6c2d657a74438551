"""Reproduce DLFA (Chen et al., arXiv 2205.08497) with the product's own engine, and report on it.

The reproduction is a plan of ordinary jobs, each a JobSpec run by `dlfa.engine.job.run_job` into its own folder
under one output root, so every number the report prints comes from a results.json that records its spec.
A "setting" is a task, and for the sentence-level tasks (XNLI, PAWS-X) a pooling: `xnli-cls`, `xnli-mean`,
`udpos`. Fine-tuning trains to convergence: English dev is evaluated twice per epoch, training stops after
PATIENCE evaluations without improvement (at most the task's `max_epochs`) and the best-dev state is evaluated.

    layers/analysis.json         retrieval and CKA against English per layer on Parallel UD
    probe/<setting>              frozen encoder: last, dlfa at every fusion layer, scalar-mix; seed 1
    select/<setting>             seed 1, the learning-rate grid LEARNING_RATES: last, scalar-mix and dlfa at the
                                 probe's best layer; each aggregation's rate is chosen on English dev. Only the
                                 settings that make choices (`choices_setting`): a task's first pooling ([CLS]);
                                 mean pooling is fine-tuned at the [CLS] setting's choices
    select/<setting>-layers      seed 1, dlfa at two other layers (a lower and an upper one) at dlfa's rate;
                                 the fusion layer is chosen on English dev among the three
    finetune/<setting>-<agg>     SEEDS (5) of last, dlfa at the chosen layer, scalar-mix, each at its rate; seed 1
                                 is the selection run of the same settings, taken over rather than trained twice
                                 (`runner.take_selection_run`), where the setting made its own choices
    layers/tuned.json            the layer analysis of every plain fine-tuned encoder (0 intermediate tasks, every
                                 aggregation) of finetune/udpos-* and finetune/xnli-cls-*
    study/...                    (optional part, its own estimate `study_hours`) the intermediate-task study
                                 (dlfa.reproduction.study_design): arms of 0, 1, 3 and 9 English intermediate tasks
                                 and a control, ONE intermediate budget for all, then UD-POS and XNLI (last and DLFA
                                 at the chosen layer and rate) from each arm's encoder, and each arm's Tatoeba
                                 retrieval; 3 seeds; its design in study/design.json (`study_preset` "hub":
                                 the hub-scale study instead, study_design.hub_design)
    data/sizes.json              each task's English train / dev / test sizes in the data root
    data/dev_majority.json       each task's English dev majority-class score (the best constant prediction's)

Choices are made on seed 1 and on English dev only (never on test languages); ties go to the smaller learning
rate, then the lower layer. A run whose English dev score stays less than 1 point above the majority class's
learned nothing: the report names it and leaves it out of every comparison (test languages decide no exclusion).
Mean pooling takes the [CLS] setting's choices rather than making its own: the two settings of a task then differ
in the pooling only, and each mean-pooled setting trains 15 runs instead of 23.

Compute (`estimated_hours`): the seconds per training step and per test item measured in the record's precision
(fp32) on a 2-core CPU without native bf16 (AMD EPYC; STEP_SECONDS, TEST_ITEM_SECONDS, PROBE_SECONDS), times the
steps of each run if it trains to its max_epochs cap (an upper bound: early stopping ends most runs sooner), per
setting that makes its choices 3 × 3 grid runs + 2 layer runs + 3 aggregations × 4 seeds besides seed 1 = 23 runs
trained, per mean-pooled setting 3 aggregations × 5 seeds = 15: 32.3 hours at most for the six settings, probes and
the 30 fine-tuned encoders' layer analyses included (udpos 5.4 h, panx 2.4 h, xnli-cls 10.1 h, xnli-mean 7.1 h,
pawsx-cls 3.9 h, pawsx-mean 2.7 h), to run in many sittings. XNLI dominates: a run trains up to 564 steps
of about 2 s and evaluates 14 × 900 pairs. Where bf16 is native (and `--precision bf16` chosen) the previous record
ran 2-3.5 times faster per step.

Running the plan again skips finished units and resumes interrupted ones from their checkpoints, so a plan
too long for one sitting is run in several; `timings.json` adds up the time each job took over all sittings.

The record: the output root holds checkpoints and models (hundreds of MB, git-ignored); after each sitting the
small files (every job's results.json, the layer analyses, the sizes, timings.json) are copied into
`reproduction/` beside the report, in the repository. The report is written from the record, so it regenerates
on a fresh clone, and a sitting on a fresh clone starts by restoring the record's finished runs, so it continues
where the last one stopped instead of starting over. The report refuses a record whose runs come from different
code versions (`code_version` of each run): an older record is removed before the plan is rerun.

The plan is data (spec fields per job folder), turned into JobSpecs only when a job runs.
Here: the plan's settings, its jobs in order and the compute estimate; the choices it takes from finished jobs
are in `choices`, the running in `runner`, the record in `record`, the report in `report`.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dlfa.data.registry import DataSource, english_sizes
from dlfa.engine.spec import JobSpec
from dlfa.errors import ConfigError
from dlfa.io import write_json
from dlfa.model.encoders import encoder_info
from dlfa.reproduction.choices import best_dev_layer, choose, finetune_layers
from dlfa.reproduction.study_design import (DEFAULT_INTERMEDIATE_STEPS, DEFAULT_RETRIEVAL_LANGUAGES, DESIGN_FILE,
                                            StudyDesign, StudyTarget, available_intermediate_tasks, named_subsets,
                                            resumed_hub_design)
from dlfa.results import COMPLETED, RESULTS_FILE, JobResult, RunResult, read_job_results

PARTS = ("layers", "probe", "select", "finetune", "tuned-layers", "study")  # in running order
DEFAULT_PARTS = PARTS[:-1]  # the study is run on request only (it has its own estimate, study_hours)
RECORD = "reproduction"  # the record's folder, beside the report
DEFAULT_DOC = "docs/REPRODUCTION.md"
LAYER_ANALYSIS_FILE = "layers/analysis.json"
TUNED_LAYERS_FILE = "layers/tuned.json"
SIZES_FILE = "data/sizes.json"
DEV_MAJORITY_FILE = "data/dev_majority.json"
TIMINGS_FILE = "timings.json"
# beside the jobs' results.json
SMALL_FILES = (TIMINGS_FILE, LAYER_ANALYSIS_FILE, TUNED_LAYERS_FILE, SIZES_FILE, DEV_MAJORITY_FILE, DESIGN_FILE)
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
STUDY_COUNTS = (0, 1, 3, 9)
STUDY_SEEDS = 3
STUDY_EPOCHS = 2.0  # each target stage of the study: fixed, the same in every arm
# The study's caps per target (training examples, test items per language), sized in dlfa.reproduction.study_design
STUDY_CAPS = {"udpos": (2000, 500), "xnli": (3000, 300)}
STUDY_PRESETS = ("plan", "hub")
SEEDS = (1, 2, 3, 4, 5)
PRECISION = "fp32"  # one for the whole record ("auto" would follow each sitting's hardware), and the same speed on
# every CPU: bf16 is faster only where the CPU computes it natively (--precision bf16 there, or on a GPU)
SELECTION_SEED = 1


def setting_name(task: str, pooling: str | None) -> str:
    return task if pooling is None else f"{task}-{pooling}"


def choices_setting(task: str) -> str:
    """The setting whose seed-1 selection gives a task's fine-tuning its learning rates and fusion layer: the
    task's first pooling ([CLS], as the paper). Its other pooling (mean) is fine-tuned at those choices."""
    return setting_name(task, TASK_PLANS[task].poolings[0])


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
    precision: str | None = None  # None: PRECISION (the hub-scale study: its saved one, or the native one)
    layer_pairs: int = 200
    study_counts: tuple[int, ...] = STUDY_COUNTS
    study_steps: int = DEFAULT_INTERMEDIATE_STEPS  # the study's one intermediate budget (study_design's sizing)
    study_retrieval: tuple[str, ...] = DEFAULT_RETRIEVAL_LANGUAGES  # Tatoeba, those the data root has; (): none
    study_preset: str = "plan"  # "plan": at this plan's choices; "hub": study_design.hub_design
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
                  "precision": self.precision or PRECISION, "patience": PATIENCE, "max_epochs": plan.max_epochs,
                  "eval_every": self.eval_every(task)}
        if pooling is not None:
            fields["pooling"] = pooling
        return {**fields, **self.spec_overrides}

    def eval_every(self, task: str) -> int:
        """Steps between English dev evaluations: EVALS_PER_EPOCH per epoch of the (capped) training set."""
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

    def study_design(self, out_root: Path) -> StudyDesign:
        """The intermediate-task study on the STUDY_TASKS at the chosen settings (DLFA's fusion layer, each target's
        dlfa learning rate and pooling: the choices fine-tuning uses, so the study can run once they are made), arms
        of study_counts named tasks in order of preference, 3 seeds, study_steps, the Tatoeba languages of the data
        root among study_retrieval. `spec_overrides` apply to every job, but the target languages (and early
        stopping, which the study does not use) only to targets. With study_preset "hub", the hub-scale study instead
        (study_design.resumed_hub_design: no choices from this plan)."""
        from dlfa.data.tatoeba import available_tatoeba_languages

        if self.study_preset not in STUDY_PRESETS:
            raise ConfigError(f"unknown study preset {self.study_preset!r}: choose from {', '.join(STUDY_PRESETS)}")
        if self.study_preset == "hub":
            return resumed_hub_design(out_root, self.encoder, self.device, self.precision)
        source = DataSource.resolve(self.data_root)
        targets = []
        for task in (t for t in STUDY_TASKS if t in self.tasks):
            dlfa = choose(selection_runs(out_root, choices_setting(task), "the intermediate-task study"), "dlfa").spec
            plan = TASK_PLANS[task]
            targets.append(StudyTarget(task, tuple(self.spec_overrides.get("eval_languages", plan.eval_languages)),
                                       dlfa["fusion_layers"][0], dlfa.get("pooling") if plan.poolings[0] else None,
                                       *STUDY_CAPS[task], STUDY_EPOCHS, dlfa["learning_rate"]))
        per_target = ("eval_languages", "patience", "max_epochs", "eval_every")
        tatoeba = set(available_tatoeba_languages(source))
        return StudyDesign(tuple(targets), named_subsets(self.study_counts, available_intermediate_tasks(source)),
                           intermediate_steps=self.study_steps, seeds=self.seeds[:STUDY_SEEDS],
                           encoder=self.encoder, data_root=self.data_root,
                           device=self.device, precision=self.precision or PRECISION, name="reproduction: study",
                           retrieval_languages=tuple(lang for lang in self.study_retrieval if lang in tatoeba),
                           spec_overrides={k: v for k, v in self.spec_overrides.items() if k not in per_target})


# ----------------------------------------------------------------------------------------------------
# The jobs, in running order


def read_results(path: Path) -> JobResult | None:
    """A job's results.json (validated by dlfa.results), None when the job has not written one yet."""
    return read_job_results(path) if path.is_file() else None


def read_json(path: Path) -> dict | None:
    """One of the plan's other files (the layer analyses, the sizes, the timings), None when absent."""
    return json.loads(path.read_text()) if path.is_file() else None


def record_root(doc_path: str | Path) -> Path:
    """Where the record of a report's results lives: `reproduction/` beside the report."""
    return Path(doc_path).parent / RECORD


def plan_jobs(config: Reproduction, out_root: Path, parts: tuple[str, ...]) -> Iterator[tuple[str, dict | None]]:
    """(job folder relative to out_root, spec fields) in running order; fields None for the layer analyses. Each
    step takes its choices from the finished results of the one before (probe → select → finetune), so a part
    is planned once the parts it depends on have run."""
    num_layers = encoder_info(config.encoder).num_layers
    if "layers" in parts:
        yield "layers", None
    if "probe" in parts:
        for task, pooling in config.settings():
            yield f"probe/{setting_name(task, pooling)}", config.probe_fields(task, pooling, num_layers)
    if "select" in parts:
        for task in config.tasks:
            pooling = TASK_PLANS[task].poolings[0]  # the setting that makes the task's choices (choices_setting)
            setting = setting_name(task, pooling)
            best = best_dev_layer(finished(out_root, f"probe/{setting}", "the learning-rate grid"))
            yield f"select/{setting}", config.select_fields(task, pooling, best)
            rate = choose(finished(out_root, f"select/{setting}", "the fusion-layer choice").runs, "dlfa")
            others = finetune_layers(best, num_layers)[1:]
            yield f"select/{setting}-layers", config.layer_fields(task, pooling, others, rate.spec["learning_rate"])
    if "finetune" in parts:
        for task, pooling in config.settings():
            for aggregation, chosen in chosen_settings(out_root, choices_setting(task)).items():
                yield (f"finetune/{setting_name(task, pooling)}-{aggregation}",
                       config.finetune_fields(task, pooling, aggregation, chosen.spec["learning_rate"],
                                              chosen.fusion_layer))
    if "tuned-layers" in parts:
        yield "tuned-layers", None
    if "study" in parts:
        design = config.study_design(out_root).check()
        if read_json(out_root / DESIGN_FILE) != design.to_dict():
            write_json(out_root / DESIGN_FILE, design.to_dict())  # saved with the jobs, so the study is found again
        yield from design.job_fields(out_root)


def selection_runs(out_root: Path, setting: str, needed_by: str) -> list[RunResult]:
    """The seed-1 runs a setting's choices are made among: select/<setting> and select/<setting>-layers."""
    return [*finished(out_root, f"select/{setting}", needed_by).runs,
            *finished(out_root, f"select/{setting}-layers", needed_by).runs]


def chosen_settings(out_root: Path, setting: str) -> dict[str, RunResult]:
    """aggregation -> the seed-1 run whose learning rate (and, for dlfa, fusion layer) fine-tuning uses."""
    runs = selection_runs(out_root, setting, "fine-tuning")
    return {aggregation: choose(runs, aggregation) for aggregation in AGGREGATIONS}


def finished(out_root: Path, job: str, needed_by: str) -> JobResult:
    """The results of a finished job of the plan, which a later step takes its choices from."""
    results = read_results(out_root / job / RESULTS_FILE)
    if results is None or results.status != COMPLETED:
        raise ConfigError(f"{needed_by} takes its choices from {job}, which has not finished yet "
                          f"({out_root}/{job}): run the parts before it first")
    return results


# ----------------------------------------------------------------------------------------------------
# The compute estimate

# Measured in fp32 on a 2-core CPU without native bf16 (AMD EPYC, 2026-12-02: the record's select runs for UD-POS
# and PAN-X, 24-step runs of last and DLFA for XNLI and PAWS-X, one-step runs for the evaluations): seconds per
# training step of 32, English dev evaluations included, and seconds per test item (the plan's evaluation of every
# target language: UD-POS 65 s for 8 × 500 sentences, PAN-X 30 s for 8 × 500, XNLI 196 s for 14 × 900 pairs,
# PAWS-X 93 s for 6 × 666). PROBE_SECONDS: one probe sweep, its features included (the record's timings).
# XQuAD (a study target only; README "Question answering": a 30-step smoke run at 256 tokens, batch 16, took 6.5 min
# of training and 2.2 min to evaluate 828 questions): 26 s per step of 32 windows, 0.16 s per question.
STEP_SECONDS = {"udpos": 1.55, "panx": 0.69, "xnli": 2.05, "pawsx": 2.9, "xquad": 26.0}
TEST_ITEM_SECONDS = {"udpos": 0.016, "panx": 0.0075, "xnli": 0.0156, "pawsx": 0.023, "xquad": 0.16}
TEST_ITEMS = {"udpos": 500, "panx": 500, "xnli": 900, "pawsx": 666, "xquad": 354}  # per language: the plan's cap,
# else the test set's size in ../shared/data
PROBE_SECONDS = {"udpos": 4630, "panx": 2170, "xnli": 5200, "pawsx": 1810}
LAYER_ANALYSIS_SECONDS = 80  # one encoder, 16 languages × 200 pairs


def evaluation_seconds(task: str, languages: int, max_eval_examples: int | None) -> float:
    """Seconds to evaluate `languages` target languages of `task` once, at most max_eval_examples items each."""
    return languages * min(max_eval_examples or TEST_ITEMS[task], TEST_ITEMS[task]) * TEST_ITEM_SECONDS[task]


def model_run_seconds(task: str, train_size: int) -> float:
    """Seconds one fine-tuning run of the plan takes in the timing model if it trains to its max_epochs cap and
    is evaluated on every target language. train_size: the English training examples available."""
    plan = TASK_PLANS[task]
    steps = math.ceil(min(train_size, plan.max_train_examples or train_size) / JobSpec.batch_size) * plan.max_epochs
    return steps * STEP_SECONDS[task] + evaluation_seconds(task, len(plan.eval_languages), plan.max_eval_examples)


def estimated_hours(config: Reproduction, train_sizes: dict[str, int]) -> dict[str, float]:
    """Hours each setting takes at most, and "total" (the layer analyses included), if every run trains to its
    max_epochs cap. train_sizes: task -> English training examples available (english_sizes)."""
    hours = {}
    trained_seeds = [seed for seed in config.seeds if seed != SELECTION_SEED]  # seed 1 is the selection run
    choosing = (len(AGGREGATIONS) * len(config.learning_rates) + 2  # the grid, two more layers
                + len(AGGREGATIONS) * len(trained_seeds))
    for task, pooling in config.settings():
        setting = setting_name(task, pooling)
        runs = choosing if setting == choices_setting(task) else len(AGGREGATIONS) * len(config.seeds)
        hours[setting] = (runs * model_run_seconds(task, train_sizes[task]) + PROBE_SECONDS[task]) / 3600
    tuned = sum(len(AGGREGATIONS) * len(config.seeds) for task in STUDY_TASKS if task in config.tasks)
    hours["total"] = sum(hours.values()) + (tuned + 1) * LAYER_ANALYSIS_SECONDS / 3600
    return hours


# The study's (docs in dlfa.reproduction.study_design), in fp32 on the same CPU: the record's study/arm-1 trained
# 3 × 600 QNLI steps in 2.34 h at one thread, its English dev evaluations and a resume included (a 40-step run of
# a 9-task mixture had given 1.2 s a step, a fourth of that); a 9-task arm evaluated its 9 tasks' English dev sets
# in about 120 s; Tatoeba, 5 languages × 100 pairs, 16 s in all, the encoder's loading included.
INTERMEDIATE_STEP_SECONDS = 4.7
INTERMEDIATE_DEV_SECONDS = 15  # one intermediate task's English dev evaluation at the end of an arm job
RETRIEVAL_SECONDS_PER_SENTENCE = 0.016


def study_hours(design: StudyDesign, train_sizes: dict[str, int]) -> dict[str, float]:
    """Hours the study's jobs take on this CPU: "arms" (the intermediate-only jobs), per target its control and
    target jobs, "tatoeba" and "total". train_sizes: task -> English training examples available."""
    seeds, runs_per_arm = len(design.seeds), len(design.aggregations) * len(design.seeds)
    arms = [subset for subset in design.subsets if subset]
    arm_seconds = sum(design.intermediate_steps * INTERMEDIATE_STEP_SECONDS + len(arm) * INTERMEDIATE_DEV_SECONDS
                      for arm in arms)
    hours = {"arms": seeds * arm_seconds / 3600}
    for target in design.targets:
        train = min(train_sizes[target.task], target.max_train_examples or train_sizes[target.task])
        steps = math.ceil(train / design.batch_size) * (target.max_epochs or target.epochs)
        run_seconds = (steps * STEP_SECONDS[target.task]
                       + evaluation_seconds(target.task, len(target.eval_languages), target.max_eval_examples))
        control = design.control * runs_per_arm * design.intermediate_steps * STEP_SECONDS[target.task]
        hours[target.task] = ((len(design.subsets) + design.control) * runs_per_arm * run_seconds + control) / 3600
    encoders = sum(seeds if subset else 1 for subset in design.subsets)
    sentences = 2 * (design.retrieval_sentences or 1000) * len(design.retrieval_languages)
    hours["tatoeba"] = encoders * sentences * RETRIEVAL_SECONDS_PER_SENTENCE / 3600
    hours["total"] = sum(hours.values())
    return hours
