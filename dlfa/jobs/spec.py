"""JobSpec: the one description of a job that travels from the UI (or the CLI) to the store, the worker
and the results. JSON-serialisable, validated before anything starts.

A spec with several aggregations × fusion layers × seeds is a sweep: `units()` expands it into the
single runs the worker trains one after another.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Literal

from dlfa.errors import ConfigError, DlfaError
from dlfa.fusion import AGGREGATIONS, NEEDS_FUSION_LAYER

Backend = Literal["local", "torchrun", "slurm"]
BACKENDS = ("local", "torchrun", "slurm")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
INTERMEDIATE_MODES = ("sequential", "mixture")
MIXTURE_SAMPLING = ("proportional", "temperature")
POOLINGS = ("cls", "mean")  # as dlfa.model.POOLINGS (not imported: the spec does not load torch)
BOOKKEEPING_FIELDS = ("name", "device", "backend", "checkpoint_every", "data_root")


def _plain(value):
    """A spec value as it reads back from JSON (tuples become lists)."""
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class JobSpec:
    """What to train and evaluate. Budgets: `epochs` or `max_steps` per stage (max_steps wins when set),
    so intermediate stages and the target stage get equal, explicit budgets."""

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
    device: str = "auto"
    precision: str = "auto"  # auto: bf16 autocast where the hardware computes bf16 natively, else fp32
    backend: str = "local"
    num_processes: int = 1
    checkpoint_every: int = 200
    bootstrap_samples: int = 1000
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

    def fingerprint(self) -> str:
        """A short hash of the spec (name excluded): equal specs give equal fingerprints."""
        payload = json.dumps({**self.to_dict(), "name": ""}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

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

    # ------------------------------------------------------------------------------------------------
    def problems(self, check_data: bool = True, check_encoder: bool = True) -> dict[str, str]:
        """Field name -> what is wrong with it (empty when the spec is valid). The UI shows each message
        next to its field; `validate()` raises them all at once."""
        problems: dict[str, str] = {}
        if not self.eval_languages:
            problems["eval_languages"] = "choose at least one target language"
        if not self.aggregations:
            problems["aggregations"] = "choose at least one aggregation"
        bad = [a for a in self.aggregations if a not in AGGREGATIONS]
        if bad:
            problems["aggregations"] = f"unknown aggregation(s) {', '.join(bad)}: choose from {', '.join(AGGREGATIONS)}"
        if any(a in NEEDS_FUSION_LAYER for a in self.aggregations) and not self.fusion_layers:
            problems["fusion_layers"] = "dlfa, mean and concat need at least one fusion layer"
        if not self.seeds:
            problems["seeds"] = "give at least one seed"
        for name, value, low in (("batch_size", self.batch_size, 1), ("gradient_accumulation", self.gradient_accumulation, 1),
                                 ("max_length", self.max_length, 8), ("num_processes", self.num_processes, 1),
                                 ("checkpoint_every", self.checkpoint_every, 1)):
            if not isinstance(value, int) or value < low:
                problems[name] = f"must be a whole number ≥ {low}, got {value!r}"
        for name, value in (("max_train_examples", self.max_train_examples),
                            ("max_eval_examples", self.max_eval_examples)):
            if value is not None and (not isinstance(value, int) or value < 1):
                problems[name] = f"must be a whole number ≥ 1 or empty, got {value!r}"
        for name, value, low in (("reduction", self.reduction, 1), ("bootstrap_samples", self.bootstrap_samples, 0)):
            if not isinstance(value, int) or value < low:
                problems[name] = f"must be a whole number ≥ {low}, got {value!r}"
        if not 0 <= self.warmup_ratio < 1:
            problems["warmup_ratio"] = f"must be at least 0 and below 1, got {self.warmup_ratio}"
        if not self.mixture_temperature > 0:
            problems["mixture_temperature"] = f"must be > 0, got {self.mixture_temperature}"
        negative = [k for k in self.fusion_layers if not isinstance(k, int) or k < 0]
        if negative:
            problems["fusion_layers"] = f"fusion layers are whole numbers ≥ 0 (0 = embeddings), got {negative}"
        if self.eval_every is not None and (not isinstance(self.eval_every, int) or self.eval_every < 1):
            problems["eval_every"] = f"must be a whole number ≥ 1 or empty, got {self.eval_every!r}"
        if self.patience is not None and (isinstance(self.patience, bool) or not isinstance(self.patience, int)
                                          or self.patience < 1):
            problems["patience"] = f"must be a whole number ≥ 1 or empty, got {self.patience!r}"
        if self.max_epochs is not None and (self.patience is None or not self.max_epochs > 0):
            problems["max_epochs"] = f"caps early stopping: set patience too, and a value > 0 (got {self.max_epochs})"
        bad_rates = [rate for rate in self.learning_rates if not 0 < rate < 1]
        if bad_rates:
            problems["learning_rates"] = f"every learning rate must be between 0 and 1, got {bad_rates}"
        if self.pooling not in POOLINGS:
            problems["pooling"] = f"'{self.pooling}' is not one of {', '.join(POOLINGS)}"
        if self.max_steps is not None and self.max_steps < 1:
            problems["max_steps"] = f"must be ≥ 1, got {self.max_steps}"
        if self.max_steps is None and not self.epochs > 0:
            problems["epochs"] = f"must be > 0, got {self.epochs}"
        if not 0 < self.learning_rate < 1:
            problems["learning_rate"] = f"must be between 0 and 1, got {self.learning_rate}"
        if not 0 < self.probe_learning_rate < 1:
            problems["probe_learning_rate"] = f"must be between 0 and 1, got {self.probe_learning_rate}"
        for name, value, allowed in (("device", self.device, DEVICES), ("precision", self.precision, PRECISIONS),
                                     ("backend", self.backend, BACKENDS),
                                     ("intermediate_mode", self.intermediate_mode, INTERMEDIATE_MODES),
                                     ("mixture_sampling", self.mixture_sampling, MIXTURE_SAMPLING)):
            if value not in allowed:
                problems[name] = f"'{value}' is not one of {', '.join(allowed)}"
        if check_encoder and "fusion_layers" not in problems:
            problems.update(self._encoder_problems())
        if check_data:
            problems.update(self._data_problems())
        return problems

    def _encoder_problems(self) -> dict[str, str]:
        from dlfa.encoders import encoder_info

        try:
            num_layers = encoder_info(self.encoder).num_layers
        except DlfaError as exc:
            return {"encoder": str(exc)}
        if not any(a in NEEDS_FUSION_LAYER for a in self.aggregations):
            return {}
        bad = [k for k in self.fusion_layers if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < num_layers]
        if bad:
            return {"fusion_layers": f"fusion layer(s) {', '.join(map(str, bad))} out of range: this encoder has "
                                     f"{num_layers} layers, so fusion layers must be in 0…{num_layers - 1} (0 = embeddings)"}
        return {}

    def _data_problems(self) -> dict[str, str]:
        from dlfa.tasks.registry import DataSource, available_languages, get_task

        problems: dict[str, str] = {}
        try:
            source = DataSource.resolve(self.data_root)
            get_task(self.task)
            languages = available_languages(self.task, source)
        except DlfaError as exc:
            return {"task": str(exc)}
        if self.train_language not in languages:
            problems["train_language"] = (f"task {self.task} has no '{self.train_language}' data in {source}; "
                                          f"it has {', '.join(sorted(languages))}")
        missing = [lang for lang in self.eval_languages if lang not in languages]
        if missing:
            problems["eval_languages"] = (f"task {self.task} has no data for {', '.join(missing)} in {source}; "
                                          f"available: {', '.join(sorted(languages))}")
        intermediate_problems = []
        for intermediate in self.intermediate_tasks:
            try:
                if not get_task(intermediate).intermediate:
                    intermediate_problems.append(f"{intermediate} is not an English intermediate task")
                elif "en" not in available_languages(intermediate, source):
                    intermediate_problems.append(f"intermediate task {intermediate} has no English data in {source}")
            except DlfaError as exc:
                intermediate_problems.append(str(exc))
        if intermediate_problems:
            problems["intermediate_tasks"] = "; ".join(intermediate_problems)
        return problems

    def validate(self, **kwargs) -> "JobSpec":
        """Raise ConfigError listing every problem; return self when valid."""
        problems = self.problems(**kwargs)
        if problems:
            raise ConfigError("invalid job spec: " + "; ".join(f"{k}: {v}" for k, v in problems.items()))
        return self


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
