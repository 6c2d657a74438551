"""The design of the intermediate-task study (issue 14; Phang et al. 2020, arXiv 2005.13013): does the NUMBER
of English intermediate tasks (0, 1, 3, 9) change zero-shot cross-lingual transfer when every arm spends the
SAME intermediate budget?

An arm is an ordered subset of English intermediate tasks. Each arm (but the 0-task one) is one
intermediate-only job (`task="intermediate"`) that trains the subset for `intermediate_steps` optimizer steps in
all (mixture: one stage sampling the tasks proportionally or with temperature T; sequential: the steps split
equally), once per seed, and saves its encoder; every target job of the arm starts from that encoder
(`init_from`, the unit with the same seed), and so does the arm's Tatoeba retrieval job. The 0-task arm starts
from the base encoder. The control arm spends the same budget on the target task itself (one job per target:
`intermediate_tasks=(target,)`), so "more tasks" is never "more steps". The target stage is the same in every
arm (same budget, same seeds, same batch order and head initialisation: the engine keys them by seed and task).

Keys (job folders under an output root, and the names of launched jobs):

    study/arm-<n>              intermediate-only: the arm's n tasks, `intermediate_steps`, every seed
    study/<target>-control     the control arm: the target itself for `intermediate_steps`, then the target stage
    study/<target>-arm-<n>     the target stage (last and DLFA) from arm n's encoder (arm 0: the base encoder)
    study/tatoeba-arm-<n>-s<s> zero-shot Tatoeba retrieval of arm n's encoder of seed s (no training)

Sizing (the reproduction plan's study, `plan.study_hours`, from the plan's timing model: fp32 on a 2-core CPU
without native bf16, the record's precision): STEP_SECONDS per target step (UD-POS 1.55 s, XNLI 2.05 s) and
TEST_ITEM_SECONDS per test item; INTERMEDIATE_STEP_SECONDS = 4.7 s per step of an arm's mixture and 15 s per
task for its English dev evaluations; 0.016 s per Tatoeba sentence. With arms 0/1/3/9 + control, 3 seeds, last and
DLFA, 2 epochs of UD-POS (2,000 sentences; 8 languages × 500 test sentences) and of XNLI (3,000 pairs; 14 × 300
test pairs) (plan.STUDY_CAPS): 30 target runs per target (UD-POS 30 × 260 s, XNLI 30 × 451 s), the controls' 6 runs
× 600 extra steps per target (UD-POS 3.7 h, XNLI 5.8 h in all); 3 arms × 3 seeds × 600 steps, 7.2 h; 10 Tatoeba
runs (5 languages × 500 pairs), 0.2 h: 17.0 h in all. The budget of 600 steps was sized at 1.2 s per arm step
(11.7 h, within the 12 h asked for); the record's first arm took 4.7 s, and the study kept its design rather than
rerun it. So DEFAULT_INTERMEDIATE_STEPS = 600
(19,200 examples at batch 32: 67 steps a task on average in the 9-task arm; temperature 2 gives the large tasks
more than that and the small ones less, less unevenly than proportional sampling). The previous sizing (1,000
steps, 4,000 sentences and 6,000 pairs, every test item) took 10.8 h in the bf16 timing model of a CPU that
computes bf16 natively, and 21.2 h in this one.

A target may be a question answering task (`target_for`: 256-token windows, no pooling; scored by F1 with exact
match beside it in dlfa.reproduction.study). The hub-scale study (`hub_design`, `python -m dlfa reproduce
hub-study`, sized in README "The intermediate-task study") is at the end of this module.
"""
from __future__ import annotations

import json
import random
from collections.abc import Callable
import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dlfa.engine.spec import INTERMEDIATE_ONLY, JobSpec
from dlfa.errors import ConfigError, DlfaError

PREFIX = "study/"
DESIGN_FILE = "study/design.json"  # beside the jobs, under the output root
RETRIEVAL_TASK = "tatoeba"  # a retrieval job measures one encoder: one per arm and seed
ARM_UNIT = "last-s{seed}"  # the unit folder of an arm job's seed (JobSpec.unit_name of its units)
MODES = ("mixture", "sequential")
SAMPLINGS = ("proportional", "temperature")
MIN_SEEDS = 3  # paired intervals over seeds need at least 3
DEFAULT_INTERMEDIATE_STEPS = 600
DEFAULT_COUNTS = (0, 1, 3, 9)
DEFAULT_RETRIEVAL_LANGUAGES = ("de", "fr", "ru", "zh", "sw")
QA_MAX_LENGTH = 256  # a question answering target's windows: the Launch form's default for QA (KIND_DEFAULTS)

# Ordered by preference. Phang et al.'s most helpful tasks come first whenever a source has them: MNLI, SQuAD and
# HellaSwag (the best overall in their abstract), then QQP, their other task from GLUE; these four are on the hub
# only, so a data root like ../shared/data keeps LOCAL_PREFERENCE's order and subsets. LOCAL_PREFERENCE: Phang et
# al.'s kinds first (NLI, QA, paraphrase, sentiment), then analogues of their other tasks (CommonsenseQA, Cosmos QA,
# HellaSwag -> COPA, ANLI -> RTE, CCG tagging -> CoNLL NER), CoLA.
HUB_FIRST = ("mnli", "squad", "hellaswag", "qqp")
LOCAL_PREFERENCE = (
    "qnli", "boolq", "mrpc", "sst2", "commonsenseqa", "xcopa", "rte", "conll-ner", "cola",
    "cosmosqa", "wic", "cb", "sentiment-classroom", "pos-classroom",
)  # fmt: skip
PREFERENCE = HUB_FIRST + LOCAL_PREFERENCE


def _source(source):
    from dlfa.data.registry import DataSource

    return source if isinstance(source, DataSource) else DataSource.resolve(source)


def available_intermediate_tasks(source=None, exclude: tuple[str, ...] = ()) -> list[str]:
    """The registry's intermediate tasks with English training data in `source`, in order of preference."""
    from dlfa.data.registry import available_languages, list_tasks

    source = _source(source)
    names = [info.name for info in list_tasks() if info.intermediate and info.name not in exclude]
    ordered = [n for n in PREFERENCE if n in names] + [n for n in names if n not in PREFERENCE]
    found = []
    for name in ordered:
        try:
            if "train" in available_languages(name, source).get("en", {}):
                found.append(name)
        except DlfaError:
            continue  # a task whose files are broken counts as missing here; training it would raise
    return found


# The Launch form's presets with the project's data root (preset_for gives any source's)
INTERMEDIATE_PRESETS: dict[int, tuple[str, ...]] = {0: (), 3: LOCAL_PREFERENCE[:3], 9: LOCAL_PREFERENCE[:9]}


def preset_for(count: int, source=None, exclude: tuple[str, ...] = ()) -> tuple[str, ...]:
    """`count` intermediate tasks available in `source`: the first available in order of preference, so the
    presets nest (the 3 are the first 3 of the 9) and equal INTERMEDIATE_PRESETS with the full data root."""
    if count < 0:
        raise DlfaError(f"the number of intermediate tasks must be ≥ 0, got {count}")
    available = available_intermediate_tasks(source, exclude) if count else []
    if len(available) < count:
        raise DlfaError(
            f"{count} intermediate tasks asked for, but {_source(source)} has only {len(available)} with English "
            f"training data: {', '.join(available) or 'none'}"
        )
    return tuple(available[:count])


def named_subsets(counts: tuple[int, ...], pool: list[str]) -> tuple[tuple[str, ...], ...]:
    """One subset per count: the first `count` tasks of `pool` (in order of preference), so the subsets nest."""
    _check_counts(counts, pool)
    return tuple(tuple(pool[:count]) for count in counts)


def drawn_subsets(counts: tuple[int, ...], pool: list[str], seed: int) -> tuple[tuple[str, ...], ...]:
    """One subset per count, drawn with `seed`: a random order of `pool`, whose first `count` tasks are each
    subset (so they nest, and the order each arm trains them in is the drawn one)."""
    _check_counts(counts, pool)
    order = random.Random(seed).sample(list(pool), max(counts, default=0))
    return tuple(tuple(order[:count]) for count in counts)


def _check_counts(counts: tuple[int, ...], pool: list[str]) -> None:
    if len(set(counts)) != len(counts) or any(c < 0 for c in counts):
        raise ConfigError(f"arm counts must be distinct whole numbers ≥ 0, got {', '.join(map(str, counts))}")
    if max(counts, default=0) > len(pool):
        raise ConfigError(f"{max(counts)} intermediate tasks asked for, but only {len(pool)} have English training "
                          f"data: {', '.join(pool) or 'none'}")


@dataclass(frozen=True)
class StudyTarget:
    """One target task of the study and its target-stage budget (the same in every arm)."""

    task: str
    eval_languages: tuple[str, ...]
    fusion_layer: int = 6  # DLFA's lower layer (the plan takes the one its selection step chose)
    pooling: str | None = None  # sentence / pair tasks: cls or mean; None for token tasks
    max_train_examples: int | None = 4000
    max_eval_examples: int | None = 500
    epochs: float = 2.0  # fixed, so that every arm's target stage trains the same number of steps
    learning_rate: float = 1e-4
    patience: int | None = None  # early stopping instead (then steps may differ between arms)
    max_epochs: float | None = None
    max_length: int = 128  # tokens per input (question answering: per window of question + context)


def target_for(task: str, eval_languages: tuple[str, ...], **fields) -> StudyTarget:
    """A StudyTarget with its task kind's input settings: a question answering target (xquad, mlqa) reads
    windows of QA_MAX_LENGTH tokens and has no pooling (its span head reads every position)."""
    from dlfa.data.registry import get_task

    if get_task(task).kind == "qa":
        fields = {**fields, "pooling": None, "max_length": QA_MAX_LENGTH}
    return StudyTarget(task, tuple(eval_languages), **fields)


@dataclass(frozen=True)
class StudyDesign:
    """A study: targets, arms (ordered task subsets), one intermediate budget, mode, control, seeds,
    aggregations and the Tatoeba retrieval evaluation. `subset_rule` records how the subsets were made
    ("named": in order of preference; "drawn": seeded, with `draw_seed`)."""

    targets: tuple[StudyTarget, ...]
    subsets: tuple[tuple[str, ...], ...]
    subset_rule: str = "named"
    draw_seed: int | None = None
    intermediate_steps: int = DEFAULT_INTERMEDIATE_STEPS
    mode: str = "mixture"
    mixture_sampling: str = "temperature"
    mixture_temperature: float = 2.0
    control: bool = True
    seeds: tuple[int, ...] = (1, 2, 3)
    aggregations: tuple[str, ...] = ("last", "dlfa")
    encoder: str = "embedded:e5-small"
    data_root: str | None = None
    batch_size: int = 32
    intermediate_learning_rate: float = 1e-4
    arm_max_length: int | None = None  # tokens per input of the arms' jobs (None: JobSpec's default); see hub_design
    retrieval_languages: tuple[str, ...] = DEFAULT_RETRIEVAL_LANGUAGES  # () : no Tatoeba jobs
    retrieval_sentences: int | None = 500
    device: str = "auto"
    precision: str = "auto"  # the plan and the hub-scale study pin one: no sitting on other hardware mixes two
    name: str = "study"  # the launched jobs' names start with it
    spec_overrides: dict = field(default_factory=dict)  # replaces spec fields of every job (the tests' tiny budgets)

    # ------------------------------------------------------------------------------------------------
    @property
    def counts(self) -> tuple[int, ...]:
        return tuple(len(subset) for subset in self.subsets)

    def problems(self) -> list[str]:
        """What is wrong with the design, one line each (empty when it can run)."""
        found = []
        if not self.targets:
            found.append("choose at least one target task")
        if len(set(self.counts)) != len(self.counts):
            found.append(f"arms must differ in their number of tasks, got {', '.join(map(str, self.counts))}")
        if len(self.seeds) < MIN_SEEDS or len(set(self.seeds)) != len(self.seeds):
            found.append(f"seeds: at least {MIN_SEEDS} distinct seeds (intervals are paired over seeds), got "
                         f"{', '.join(map(str, self.seeds)) or 'none'}")
        if not isinstance(self.intermediate_steps, int) or self.intermediate_steps < 1:
            found.append(f"intermediate budget: a whole number of steps ≥ 1, got {self.intermediate_steps}")
        if self.mode not in MODES:
            found.append(f"mode: one of {', '.join(MODES)}, got {self.mode}")
        if self.mixture_sampling not in SAMPLINGS:
            found.append(f"mixture sampling: one of {', '.join(SAMPLINGS)}, got {self.mixture_sampling}")
        for target in self.targets:
            if any(target.task in subset for subset in self.subsets):
                found.append(f"{target.task} is a target task: it cannot also be an intermediate task of an arm")
            if not target.eval_languages:
                found.append(f"{target.task}: choose at least one target language")
        if not self.targets or not (any(self.counts) or self.control):
            found.append("the study needs at least one arm with intermediate tasks, or the control arm")
        return found

    def check(self) -> "StudyDesign":
        problems = self.problems()
        if problems:
            raise ConfigError("invalid study design: " + "; ".join(problems))
        return self

    # ------------------------------------------------------------------------------------------------
    # The jobs, as spec fields (dlfa.engine.spec.JobSpec.from_dict turns them into specs)

    def _common(self) -> dict:
        return {"encoder": self.encoder, "data_root": self.data_root, "seeds": list(self.seeds),
                "batch_size": self.batch_size, "device": self.device, "precision": self.precision}

    def _intermediate(self) -> dict:
        """The budget fields every job with intermediate stages shares."""
        return {"intermediate_steps": self.intermediate_steps, "intermediate_mode": self.mode,
                "mixture_sampling": self.mixture_sampling, "mixture_temperature": self.mixture_temperature}

    def arm_fields(self) -> list[tuple[str, dict]]:
        """(key, spec fields) of each arm's intermediate-only job, arms with tasks only, in arm order."""
        return [(arm_key(len(subset)),
                 {**self._common(), "task": INTERMEDIATE_ONLY, "eval_languages": ["en"], "aggregations": ["last"],
                  "fusion_layers": [], "intermediate_tasks": list(subset), **self._intermediate(),
                  "learning_rate": self.intermediate_learning_rate,
                  **({"max_length": self.arm_max_length} if self.arm_max_length else {}),
                  "name": f"{self.name}: {arm_key(len(subset))}", **self.spec_overrides})
                for subset in self.subsets if subset]

    def _target(self, target: StudyTarget) -> dict:
        fields = {**self._common(), "task": target.task, "eval_languages": list(target.eval_languages),
                  "aggregations": list(self.aggregations),
                  "fusion_layers": [target.fusion_layer] if "dlfa" in self.aggregations else [],
                  "max_train_examples": target.max_train_examples, "max_eval_examples": target.max_eval_examples,
                  "epochs": target.epochs, "learning_rate": target.learning_rate, "patience": target.patience,
                  "max_epochs": target.max_epochs, "max_length": target.max_length}
        if target.pooling:
            fields["pooling"] = target.pooling
        return fields

    def target_fields(self, arm_folders: dict[str, str]) -> list[tuple[str, dict]]:
        """(key, spec fields) of the control and target jobs and the Tatoeba jobs, in running order; arm_folders:
        arm key -> the folder of its intermediate-only job (what `init_from` points at: the job folder for a
        target job, which takes its unit of the same seed; that unit's folder for a Tatoeba job)."""
        missing = [arm_key(len(s)) for s in self.subsets if s and arm_key(len(s)) not in arm_folders]
        if missing:
            raise ConfigError("the study's target jobs start from the arms' encoders: no folder for "
                              + ", ".join(missing))
        jobs = []
        for target in self.targets:
            if self.control:
                key = f"{PREFIX}{target.task}-control"
                jobs.append((key, {**self._target(target), "intermediate_tasks": [target.task], **self._intermediate(),
                                   "name": f"{self.name}: {key}", **self.spec_overrides}))
            for subset in self.subsets:
                key = f"{PREFIX}{target.task}-arm-{len(subset)}"
                jobs.append((key, {**self._target(target), "init_from": arm_folders.get(arm_key(len(subset))),
                                   "name": f"{self.name}: {key}", **self.spec_overrides}))
        for subset in self.subsets if self.retrieval_languages else ():
            folder = arm_folders.get(arm_key(len(subset)))
            for seed in self.seeds if subset else self.seeds[:1]:  # the base encoder is one encoder
                key = f"{PREFIX}tatoeba-arm-{len(subset)}-s{seed}"
                jobs.append((key, {**self._common(), "task": RETRIEVAL_TASK, "seeds": [seed],
                                   "eval_languages": list(self.retrieval_languages), "aggregations": ["last"],
                                   "fusion_layers": [], "max_eval_examples": self.retrieval_sentences,
                                   "init_from": str(Path(folder) / ARM_UNIT.format(seed=seed)) if folder else None,
                                   "name": f"{self.name}: {key}", **self.spec_overrides}))
        return jobs

    def job_fields(self, root: str | Path) -> list[tuple[str, dict]]:
        """Every job's (key, spec fields) in running order (the arms before the jobs that start from them), with
        the job folders `root/<key>`."""
        arms = self.arm_fields()
        return arms + self.target_fields({key: str(Path(root) / key) for key, _ in arms})

    def launch(self, submit: Callable[[str, dict], str]) -> dict[str, str]:
        """Submit every job in running order through `submit(key, spec fields) -> the job's folder`: the arms
        first, then the jobs that start from the folders their arms were given. Returns key -> folder."""
        folders = {key: submit(key, fields) for key, fields in self.arm_fields()}
        for key, fields in self.target_fields(dict(folders)):
            folders[key] = submit(key, fields)
        return folders

    def jobs(self, root: str | Path) -> list[tuple[str, JobSpec]]:
        """(key, JobSpec) of every job, in running order (see job_fields)."""
        return [(key, JobSpec.from_dict(fields)) for key, fields in self.job_fields(root)]

    # ------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))  # tuples as lists, as JSON holds them

    @classmethod
    def from_dict(cls, data: dict) -> "StudyDesign":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown study design field(s): {', '.join(unknown)}")
        targets = tuple(StudyTarget(**{**t, "eval_languages": tuple(t["eval_languages"])}) for t in data["targets"])
        return cls(**{**data, "targets": targets, "subsets": tuple(tuple(s) for s in data["subsets"]),
                      "seeds": tuple(data.get("seeds", (1, 2, 3))),
                      "aggregations": tuple(data.get("aggregations", ("last", "dlfa"))),
                      "retrieval_languages": tuple(data.get("retrieval_languages", DEFAULT_RETRIEVAL_LANGUAGES))})


def arm_key(count: int) -> str:
    return f"{PREFIX}arm-{count}"


# ----------------------------------------------------------------------------------------------------
# The hub-scale study (`python -m dlfa reproduce hub-study`): Phang et al.'s set-up as far as the hub serves it

HUB_NAME = "hub-scale study"
HUB_ENCODER = "xlm-roberta-base"  # Phang et al.'s XLM-R, in its base size (they used large: --encoder)
HUB_TARGETS = ("udpos", "xnli", "xquad")
HUB_INTERMEDIATE_STEPS = 5000  # 160,000 examples at batch 32: about 40% of MNLI's training set
HUB_LEARNING_RATE = 2e-5  # XTREME's fine-tuning recipe


def hub_design(source=None, encoder: str = HUB_ENCODER, device: str = "auto",
               precision: str | None = None) -> StudyDesign:
    """The study at hub scale: arms of 0, 1, 3 and 9 of the hub's intermediate tasks (Phang et al.'s most
    helpful first, PREFERENCE), HUB_INTERMEDIATE_STEPS each and the control; UD-POS, XNLI and XQuAD on every
    target language the hub has, all their English training data for 2 epochs (XQuAD: SQuAD, 256-token
    windows), every test example, DLFA at the middle layer; Tatoeba on all of XTREME's languages; 3 seeds. When
    an arm trains a QA task (squad), every arm reads QA_MAX_LENGTH tokens per input: at the default 128, more than
    half of SQuAD's windows would hold no answer (README "The intermediate-task study"), and one length for all
    arms keeps the other tasks' truncation the same in each.
    `source` (default: the hub, dlfa.data.sources.HUB_ROOT) is scanned for the intermediate tasks; the jobs read
    the hub whatever data root or classroom pack the machine has. `precision` (default: what "auto" computes in on
    `device` here) is pinned in the design, so a later sitting on other hardware computes in it too."""
    from dlfa.data.hub_layouts import HUB_UDPOS_CONFIGS, HUB_XNLI_LANGUAGES, HUB_XQUAD_LANGUAGES
    from dlfa.data.registry import get_task
    from dlfa.data.sources import HUB_ROOT
    from dlfa.data.tatoeba import available_tatoeba_languages
    from dlfa.engine.runtime import native_precision
    from dlfa.model.encoders import encoder_info

    source = _source(source or HUB_ROOT)
    languages = {"udpos": tuple(HUB_UDPOS_CONFIGS), "xnli": HUB_XNLI_LANGUAGES, "xquad": HUB_XQUAD_LANGUAGES}
    layer = encoder_info(encoder).num_layers // 2
    targets = tuple(target_for(task, tuple(lang for lang in languages[task] if lang != "en"), fusion_layer=layer,
                               pooling="cls" if task == "xnli" else None, max_train_examples=None,
                               max_eval_examples=None, learning_rate=HUB_LEARNING_RATE)
                    for task in HUB_TARGETS)
    pool = available_intermediate_tasks(source, exclude=HUB_TARGETS)
    subsets = named_subsets(DEFAULT_COUNTS, pool)
    with_qa = any(get_task(task).kind == "qa" for subset in subsets for task in subset)
    return StudyDesign(targets, subsets, intermediate_steps=HUB_INTERMEDIATE_STEPS,
                       intermediate_learning_rate=HUB_LEARNING_RATE, arm_max_length=QA_MAX_LENGTH if with_qa else None,
                       encoder=encoder, data_root=HUB_ROOT,
                       retrieval_languages=tuple(available_tatoeba_languages(source)), retrieval_sentences=None,
                       device=device, precision=precision or native_precision(device), name=HUB_NAME).check()


def resumed_hub_design(out_root: str | Path, encoder: str = HUB_ENCODER, device: str = "auto",
                       precision: str | None = None) -> StudyDesign:
    """The hub-scale study under `out_root`: the design its first sitting saved there (DESIGN_FILE), so a later
    sitting neither reads the hub again to plan nor changes its arms when a dataset is briefly unreachable; a new
    hub_design when there is none. Another study's design, another encoder's, or another precision than the saved
    one is refused."""
    path = Path(out_root) / DESIGN_FILE
    if not path.is_file():
        return hub_design(encoder=encoder, device=device, precision=precision)
    saved = StudyDesign.from_dict(json.loads(path.read_text()))
    if saved.name != HUB_NAME or saved.encoder != encoder:
        raise ConfigError(f"{out_root} holds another study ({saved.name}, encoder {saved.encoder}): give the "
                          f"hub-scale study of {encoder} a folder of its own (--out)")
    if precision not in (None, saved.precision):
        raise ConfigError(f"{out_root} holds a study computed in {saved.precision}: resume it in {saved.precision} "
                          f"(leave out --precision), or give a study in {precision} a folder of its own (--out)")
    return dataclasses.replace(saved, device=device)
