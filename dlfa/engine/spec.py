"""JobSpec: the one description of a job that travels from the UI (or the CLI) to the store, the worker
and the results. JSON-serialisable, validated before anything starts.

A spec with several aggregations × fusion layers × seeds is a sweep: `units()` expands it into the
single runs the worker trains one after another.

The intermediate-task study's fields: `intermediate_steps` (one budget shared by all intermediate tasks),
`init_from` (start the encoder from a finished run's) and intermediate-only jobs (`task=INTERMEDIATE_ONLY`:
the intermediate stages alone, saved for `init_from`; any task with English training data may be one of them).
The target task may be its own intermediate task (the study's control arm): that stage trains a head of its
own (`intermediate_head`).

Longer than 400 lines because the rules of every field (FIELD_RULES, one line per field, which a test holds
to the dataclass) and of their combinations live beside the fields they check.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Callable

from dlfa.errors import ConfigError, DlfaError
from dlfa.model.fusion import AGGREGATIONS, NEEDS_FUSION_LAYER

BACKENDS = ("local", "torchrun", "slurm")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
INTERMEDIATE_MODES = ("sequential", "mixture")
MIXTURE_SAMPLING = ("proportional", "temperature")
POOLINGS = ("cls", "mean")  # as dlfa.model.modeling.POOLINGS (not imported: the spec does not load torch)
INTERMEDIATE_ONLY = "intermediate"  # the task of a job that trains only its intermediate stages
CONTROL_HEAD_SUFFIX = ":intermediate"  # the head of the target task trained as its own intermediate task
RETRIEVAL_TASKS = ("tatoeba",)  # nothing trained: dlfa.jobs.runner runs them with dlfa.analysis.tatoeba_job
BOOKKEEPING_FIELDS = ("name", "device", "backend", "checkpoint_every", "data_root", "tensorboard")


def _plain(value):
    """A spec value as it reads back from JSON (tuples become lists)."""
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class JobSpec:
    """What to train and evaluate. Budgets: `epochs` or `max_steps` per stage (max_steps wins when set), or,
    with `intermediate_steps`, one budget of optimizer steps that all intermediate tasks share (a mixture
    spends it in one stage; sequential stages split it equally), so 1, 3 and 9 tasks get equal budgets.
    `init_from`: a finished unit folder, or a job folder whose unit with the same seed is taken, whose trained
    encoder this job's encoder starts from (heads and aggregation start fresh)."""

    task: str
    eval_languages: tuple[str, ...]
    encoder: str = "embedded:e5-small"
    aggregations: tuple[str, ...] = ("dlfa",)
    fusion_layers: tuple[int, ...] = (6,)
    seeds: tuple[int, ...] = (1,)
    train_language: str = "en"
    intermediate_tasks: tuple[str, ...] = ()
    intermediate_mode: str = "sequential"
    mixture_sampling: str = "proportional"
    mixture_temperature: float = 2.0
    intermediate_steps: int | None = None  # one budget shared by all intermediate tasks; None: each stage's own
    init_from: str | None = None  # a finished unit (or job) folder whose trained encoder this job starts from
    data_root: str | None = None
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    epochs: float = 1.0
    max_steps: int | None = None
    batch_size: int = 32
    gradient_accumulation: int = 1
    learning_rate: float = 1e-4  # short CPU budgets on e5-small; the XTREME recipe for mBERT uses 2e-5
    probe_learning_rate: float = 1e-3  # probes train only aggregation + head, which need a larger step
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    max_length: int = 128
    reduction: int = 4
    probe: bool = False
    eval_every: int | None = None  # steps between English dev evaluations; None: at each epoch's end
    patience: int | None = None  # early stopping: dev evaluations without improvement before the target stage stops
    max_epochs: float | None = None  # with patience: the target stage's cap (replaces epochs / max_steps there)
    learning_rates: tuple[float, ...] = ()  # a grid: one unit per rate, the best per config chosen on English dev
    pooling: str = "cls"  # sentence / pair tasks: "cls" (fused first token, as the paper) or "mean" (real tokens)
    freeze_word_embeddings: bool | None = None  # None: frozen on the CPU, trained on a GPU
    # On the CPU a micro-batch's encoder runs in row slices of at most this many padded tokens (0: never sliced):
    # its activations for backward take about 0.7 MB per token on e5-small, so a batch of 32 long sentences would
    # hold 2 GB. Loss and gradients are the whole batch's either way (dlfa.engine.batching.backward_batch); 512
    # keeps a 1,000-sentence fine-tune of the embedded encoder under 1.5 GB, 0 is about 20% faster for DLFA
    # (no second encoder pass) and peaks at about 3.6 GB (bench/memory.py --cpu-slice-tokens 512 0).
    cpu_tokens_per_slice: int = 512
    device: str = "auto"
    precision: str = "auto"  # auto: bf16 autocast where the hardware computes bf16 natively, else fp32
    # torch.compile the encoder: on a GPU a step launches a few thousand small kernels and the GPU waits for the CPU
    # (bench/gpu_profile.py); compiled, they fuse into fewer. The first steps (and the first evaluation) compile.
    compile_model: bool = False
    backend: str = "local"
    num_processes: int = 1
    checkpoint_every: int = 200
    bootstrap_samples: int = 1000
    retrieval_layer: int | None = None  # tatoeba: the layer of the per-language metrics; None = XTREME's choice
    tensorboard: bool = False  # also write losses, dev scores and results as TensorBoard events (<out>/tensorboard/)
    name: str = ""

    # ------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "JobSpec":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown job spec field(s): {', '.join(unknown)}")
        if "task" not in data or "eval_languages" not in data:
            raise ConfigError("a job spec needs at least 'task' and 'eval_languages'")
        tuples = {f.name for f in fields(cls) if str(f.type).startswith("tuple")}
        return cls(**{k: tuple(v) if k in tuples and isinstance(v, (list, tuple)) else v for k, v in data.items()})

    @classmethod
    def from_json(cls, text: str) -> "JobSpec":
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"job spec is not valid JSON: {exc}") from exc

    def units(self) -> list["JobSpec"]:
        """The single runs of a sweep: one spec per (aggregation, fusion layer, learning rate, seed).
        Aggregations that use no fusion layer (last, scalar-mix) run once per seed. A unit of a learning-rate
        grid keeps its rate in both `learning_rate` and `learning_rates` (which names it)."""
        out = []
        rates = [(rate, (rate,)) for rate in self.learning_rates] or [(self.learning_rate, ())]
        for aggregation in self.aggregations:
            layers = self.fusion_layers if aggregation in NEEDS_FUSION_LAYER else (None,)
            for layer in layers:
                for rate, grid in rates:
                    for seed in self.seeds:
                        layers_of_unit = (layer,) if layer is not None else ()
                        out.append(replace(self, aggregations=(aggregation,), fusion_layers=layers_of_unit,
                                           seeds=(seed,), learning_rate=rate, learning_rates=grid))
        return out

    def changed_settings(self, recorded: dict) -> list[str]:
        """The fields in which a recorded spec (a dict) differs from this one, leaving out those that do not
        change what a run computes (its name, where it runs, how often it checkpoints, where the data lies) and
        those the record predates (they were added later with a default that keeps the old behaviour)."""
        mine = self.to_dict()
        return sorted(name for name in set(mine) & set(recorded)
                      if name not in BOOKKEEPING_FIELDS and _plain(mine[name]) != _plain(recorded[name]))

    def unit_name(self) -> str:
        """A folder-safe name of a single-run spec, e.g. `dlfa-L6-s1`, `last-s1`, or `last-lr5e-05-s1` in a
        learning-rate grid."""
        layer = f"-L{self.fusion_layers[0]}" if self.fusion_layers else ""
        rate = f"-lr{self.learning_rates[0]:g}" if self.learning_rates else ""
        return f"{self.aggregations[0]}{layer}{rate}-s{self.seeds[0]}"

    @property
    def intermediate_only(self) -> bool:
        """Whether the job trains only its intermediate stages (no target task, no zero-shot evaluation)."""
        return self.task == INTERMEDIATE_ONLY

    def intermediate_head(self, task: str) -> str:
        """The head (and batch-stream) name of intermediate task `task`: the task's name, or for the target task
        trained as its own intermediate task (the control arm), `<task>:intermediate`: a head of its own,
        initialised and its batches drawn by its own name, so the target stage starts as in every other arm."""
        return task + CONTROL_HEAD_SUFFIX if task == self.task else task

    def head_tasks(self) -> dict[str, str]:
        """Head name -> task, in stage order: the intermediate tasks', then the target task's (none for an
        intermediate-only job)."""
        heads = {self.intermediate_head(task): task for task in self.intermediate_tasks}
        return heads if self.intermediate_only else {**heads, self.task: self.task}

    # ------------------------------------------------------------------------------------------------
    def problems(self, check_data: bool = True, check_encoder: bool = True) -> dict[str, str]:
        """Field name -> what is wrong with it (empty when the spec is valid). The UI shows each message
        next to its field; `validate()` raises them all at once. Every field's type and range is checked
        first (FIELD_RULES); the encoder and data checks run only over fields that passed."""
        problems: dict[str, str] = {}
        for name, rule in FIELD_RULES.items():
            message = rule(getattr(self, name))
            if message:
                problems[name] = message
        problems.update({name: message for name, message in self._combination_problems().items()
                         if name not in problems})
        if check_encoder and not problems.keys() & {"encoder", "aggregations", "fusion_layers"}:
            problems.update(self._encoder_problems())
        if check_data and not problems.keys() & {"task", "data_root", "train_language", "eval_languages",
                                                  "intermediate_tasks"}:
            problems.update(self._data_problems())
        return problems

    def _combination_problems(self) -> dict[str, str]:
        """Rules between fields (each field's own type and range are FIELD_RULES')."""
        problems = {}
        if (isinstance(self.aggregations, tuple) and any(a in NEEDS_FUSION_LAYER for a in self.aggregations)
                and not self.fusion_layers):
            problems["fusion_layers"] = "dlfa, mean and concat need at least one fusion layer"
        if self.max_steps is None and _is_number(self.epochs) and not self.epochs > 0:
            problems["epochs"] = f"must be > 0, got {self.epochs}"
        if self.max_epochs is not None and self.patience is None:
            problems["max_epochs"] = "caps early stopping: set patience too"
        if self.init_from and self.probe is True:
            problems["init_from"] = ("a probe reads its hidden states from a cache keyed by the base encoder: start "
                                     "a probe from the base encoder, or fine-tune (no probe) from init_from")
        if isinstance(self.intermediate_tasks, tuple):
            repeated = sorted({t for t in self.intermediate_tasks if self.intermediate_tasks.count(t) > 1})
            if repeated:
                problems["intermediate_tasks"] = f"each intermediate task once: {', '.join(repeated)} repeats"
            elif (self.intermediate_mode == "sequential" and _is_whole(self.intermediate_steps)
                  and self.intermediate_steps < len(self.intermediate_tasks)):
                problems["intermediate_steps"] = (
                    f"{self.intermediate_steps} steps cannot be split over {len(self.intermediate_tasks)} sequential "
                    f"intermediate tasks: give at least {len(self.intermediate_tasks)}")
        if self.intermediate_only:
            problems.update(self._intermediate_only_problems())
        problems.update(self._retrieval_problems())
        return problems

    def _intermediate_only_problems(self) -> dict[str, str]:
        """An intermediate-only job trains its intermediate stages and saves the model; nothing it would select or
        evaluate on a target task applies."""
        problems = {}
        if not self.intermediate_tasks:
            problems["intermediate_tasks"] = (f"task '{INTERMEDIATE_ONLY}' trains only intermediate tasks: choose at "
                                              "least one")
        if self.patience is not None:
            problems["patience"] = "an intermediate-only job has no target task to stop early on"
        if self.learning_rates:
            problems["learning_rates"] = ("a learning-rate grid chooses on the target task's English dev set: an "
                                          "intermediate-only job has none")
        if self.probe is True:
            problems["probe"] = "an intermediate-only job trains the encoder for init_from: it cannot be a probe"
        return problems

    def _retrieval_problems(self) -> dict[str, str]:
        """A retrieval task trains nothing (no intermediate tasks; the aggregation fields do not apply: a DLFA run's
        fusion comes from the run, init_from); the other tasks do not read its fields."""
        if self.task not in RETRIEVAL_TASKS:
            if self.retrieval_layer is None:
                return {}
            return {"retrieval_layer": f"only a retrieval task ({', '.join(RETRIEVAL_TASKS)}) reads it"}
        problems = {"intermediate_tasks": f"{self.task} trains nothing: leave the intermediate tasks empty"}
        problems = {} if not self.intermediate_tasks else problems
        return problems

    def _encoder_problems(self) -> dict[str, str]:
        from dlfa.model.encoders import encoder_info

        try:
            num_layers = encoder_info(self.encoder).num_layers
        except DlfaError as exc:
            return {"encoder": str(exc)}
        if self.task in RETRIEVAL_TASKS:  # the layer exists (0 = embeddings … num_layers)
            return {} if (self.retrieval_layer or 0) <= num_layers else {"retrieval_layer": (
                f"layer {self.retrieval_layer} does not exist: this encoder has layers 0…{num_layers} (0 = embeddings)")}
        if not any(a in NEEDS_FUSION_LAYER for a in self.aggregations):
            return {}
        bad = [k for k in self.fusion_layers if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < num_layers]
        if bad:
            return {"fusion_layers": f"fusion layer(s) {', '.join(map(str, bad))} out of range: this encoder has "
                                     f"{num_layers} layers, so fusion layers must be in 0…{num_layers - 1} (0 = embeddings)"}
        return {}

    def _data_problems(self) -> dict[str, str]:
        from dlfa.data.registry import DataSource, available_languages, get_task, scan_languages

        problems: dict[str, str] = {}
        try:
            source = DataSource.resolve(self.data_root)
            if not self.intermediate_only:
                get_task(self.task)
                scan = scan_languages(self.task, source)
        except DlfaError as exc:
            return {"task": str(exc)}
        if not self.intermediate_only:
            problems.update(self._target_data_problems(source, scan))
        intermediate_problems = []
        for intermediate in self.intermediate_tasks:
            try:
                # any task may come before itself (the control arm), or alone in an intermediate-only job
                if intermediate != self.task and not self.intermediate_only and not get_task(intermediate).intermediate:
                    intermediate_problems.append(f"{intermediate} is not an English intermediate task")
                elif "en" not in available_languages(intermediate, source):
                    intermediate_problems.append(f"intermediate task {intermediate} has no English data in {source}")
            except DlfaError as exc:
                intermediate_problems.append(str(exc))
        if intermediate_problems:
            problems["intermediate_tasks"] = "; ".join(intermediate_problems)
        return problems

    def _target_data_problems(self, source, scan) -> dict[str, str]:
        """The target task's training and evaluation languages against those `source` has (`scan`: its
        available languages, and why a broken one is disabled)."""
        problems = {}
        languages = scan.available
        if self.train_language not in languages and self.task not in RETRIEVAL_TASKS:  # retrieval trains nothing
            problems["train_language"] = (f"task {self.task} has no '{self.train_language}' data in {source}; "
                                          f"it has {', '.join(sorted(languages))}")
        missing = [lang for lang in self.eval_languages if lang not in languages]
        if missing:
            problems["eval_languages"] = (f"task {self.task} has no data for {', '.join(missing)} in {source}; "
                                          f"available: {', '.join(sorted(languages))}")
            problems["eval_languages"] += "".join(f"; {lang} is disabled: {scan.broken[lang]}"
                                                  for lang in missing if lang in scan.broken)
        return problems

    def validate(self, **kwargs) -> "JobSpec":
        """Raise ConfigError listing every problem; return self when valid."""
        problems = self.problems(**kwargs)
        if problems:
            raise ConfigError("invalid job spec: " + "; ".join(f"{k}: {v}" for k, v in problems.items()))
        return self


# ----------------------------------------------------------------------------------------------------
# Field rules: one line per JobSpec field. A rule maps a value to the problem with it (None when it is fine);
# a test checks that every field has one.

SEED_LIMIT = 2**32  # numpy and torch take seeds in 0 … 2**32 - 1


def _is_whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Rule:
    """What one field accepts; calling it on a value gives the problem (None when the value is fine)."""

    accepts: Callable[[object], bool]
    says: str  # e.g. "a whole number ≥ 1"

    def __call__(self, value) -> str | None:
        return None if self.accepts(value) else f"must be {self.says}, got {value!r}"


def whole(low: int, high: int | None = None, optional: bool = False) -> Rule:
    """A whole number in low … high (or None when optional)."""
    says = f"a whole number {f'in {low}…{high}' if high is not None else f'≥ {low}'}"
    says += " or empty" if optional else ""
    return Rule(lambda v: (v is None and optional)
                or (_is_whole(v) and v >= low and (high is None or v <= high)), says)


def number(accepts: Callable[[float], bool], says: str, optional: bool = False) -> Rule:
    """A finite int or float for which `accepts` holds (or None when optional); `says` names the range ('> 0')."""
    return Rule(lambda v: (v is None and optional) or (_is_number(v) and accepts(v)),
                says + (" or empty" if optional else ""))


def choice(options: tuple[str, ...]) -> Rule:
    return Rule(lambda v: v in options, f"one of {', '.join(options)}")


def flag(optional: bool = False) -> Rule:
    """True or False (or None, 'decide for me', when optional)."""
    return Rule(lambda v: isinstance(v, bool) or (v is None and optional),
                "true or false" + (" or empty" if optional else ""))


def text(required: bool = False, optional: bool = False) -> Rule:
    return Rule(lambda v: (v is None and optional) or (isinstance(v, str) and (not required or bool(v.strip()))),
                ("a non-empty text" if required else "a text") + (" or empty" if optional else ""))


def many(item: Rule, what: str, at_least: int = 0, known: tuple[str, ...] = ()) -> Callable[[object], str | None]:
    """A list of values that each pass `item` (a bare string is refused: "de" is not ["d", "e"]); with `known`,
    only those values."""
    def problem(value) -> str | None:
        if not isinstance(value, (tuple, list)):
            return f"must be a list of {what}, got {value!r}"
        if len(value) < at_least:
            return f"choose at least {'one' if at_least == 1 else at_least} of the {what}"
        bad = [v for v in value if item(v)]
        if bad:
            return f"each must be {item.says}, got {bad}"
        unknown = [v for v in value if known and v not in known]
        if unknown:
            return f"unknown {what} {', '.join(map(str, unknown))}: choose from {', '.join(known)}"
        return None
    return problem


FIELD_RULES: dict[str, Callable[[object], str | None]] = {
    "task": text(required=True),
    "eval_languages": many(text(required=True), "target languages", at_least=1),
    "encoder": text(required=True),
    "aggregations": many(text(required=True), "aggregations", at_least=1, known=AGGREGATIONS),
    "fusion_layers": many(whole(0), "fusion layers (0 = embeddings)"),
    "seeds": many(whole(0, SEED_LIMIT - 1), "seeds", at_least=1),
    "train_language": text(required=True),
    "intermediate_tasks": many(text(required=True), "intermediate tasks"),
    "intermediate_mode": choice(INTERMEDIATE_MODES),
    "mixture_sampling": choice(MIXTURE_SAMPLING),
    "mixture_temperature": number(lambda v: v > 0, "a number > 0"),
    "intermediate_steps": whole(1, optional=True),
    "init_from": Rule(lambda v: v is None or (isinstance(v, str) and bool(v.strip())),
                      "the folder of a finished job or unit, or empty"),
    "data_root": text(optional=True),
    "max_train_examples": whole(1, optional=True),
    "max_eval_examples": whole(1, optional=True),
    "epochs": number(lambda v: v >= 0, "a number > 0"),  # > 0 unless max_steps is set: _combination_problems
    "max_steps": whole(1, optional=True),
    "batch_size": whole(1),
    "gradient_accumulation": whole(1),
    "learning_rate": number(lambda v: 0 < v < 1, "a number between 0 and 1"),
    "probe_learning_rate": number(lambda v: 0 < v < 1, "a number between 0 and 1"),
    "warmup_ratio": number(lambda v: 0 <= v < 1, "a number at least 0 and below 1"),
    "weight_decay": number(lambda v: 0 <= v < 1, "a number at least 0 and below 1"),
    "max_grad_norm": number(lambda v: v >= 0, "a number ≥ 0 (0: no clipping)"),
    "max_length": whole(8),
    "reduction": whole(1),
    "probe": flag(),
    "eval_every": whole(1, optional=True),
    "patience": whole(1, optional=True),
    "max_epochs": number(lambda v: v > 0, "a number > 0", optional=True),
    "learning_rates": many(number(lambda v: 0 < v < 1, "a number between 0 and 1"), "learning rates"),
    "pooling": choice(POOLINGS),
    "freeze_word_embeddings": flag(optional=True),
    "cpu_tokens_per_slice": whole(0),
    "device": choice(DEVICES),
    "precision": choice(PRECISIONS),
    "compile_model": flag(),
    "backend": choice(BACKENDS),
    "num_processes": whole(1),
    "checkpoint_every": whole(1),
    "bootstrap_samples": whole(0),
    "retrieval_layer": whole(0, optional=True),
    "tensorboard": flag(),
    "name": text(),
}


def split_list(text: str | None) -> tuple[str, ...]:
    """'a, b,,c' -> ('a', 'b', 'c')."""
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


def parse_int_list(text: str, what: str) -> tuple[int, ...]:
    """'0-3,6,11' -> (0, 1, 2, 3, 6, 11); raises ConfigError naming `what`."""
    values: list[int] = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            if "-" in part[1:]:
                start, end = (int(x) for x in part.split("-", 1))
                if end < start:
                    raise ConfigError(f"{what}: the range '{part}' runs backwards; write {end}-{start}")
                values.extend(range(start, end + 1))
            else:
                values.append(int(part))
    except ValueError as exc:
        raise ConfigError(f"{what}: '{text}' is not a list of whole numbers such as 0-3,6,11") from exc
    return tuple(dict.fromkeys(values))




def parse_float_list(text: str, what: str) -> tuple[float, ...]:
    """'2e-5, 5e-5,1e-4' -> (2e-05, 5e-05, 0.0001); raises ConfigError naming `what`."""
    try:
        values = [float(part) for part in filter(None, (p.strip() for p in text.split(",")))]
    except ValueError as exc:
        raise ConfigError(f"{what}: '{text}' is not a list of numbers such as 2e-5,5e-5,1e-4") from exc
    return tuple(dict.fromkeys(values))
