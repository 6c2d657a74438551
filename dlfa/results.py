"""The results contract: what a run's and a job's results.json hold, one writer and one reader.

    out_dir/results.json              a JobResult: the job's spec, status, job-level metrics, every run
    out_dir/<unit_name>/results.json  a RunResult: one unit's spec, status and per-language metrics
    out_dir/<unit_name>/model/        the unit's saved model, when it is on this machine (`saved_model`)

`read_results` validates a file and raises DataError naming the file and the field; it reads every results.json
written so far (files without `schema_version` are version 0 and call a finished run "complete"). Keys this
module does not type (a run's convergence, history, fusion statistics, probe results ...) are kept in `extra` and
written back unchanged. The spec stays the JSON object it was written as (`dlfa.engine.spec.JobSpec.from_dict`
turns it into a JobSpec): this module sits below the engine and imports none of it.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from dlfa.errors import DataError
from dlfa.io import write_json

RESULTS_FILE = "results.json"
MODEL_DIR = "model"  # a run's saved model, in its unit folder (written by dlfa.model.modeling)
CONFIG_FILE = "dlfa_config.json"  # a saved model's config: the file that marks a folder as holding one
SCHEMA_VERSION = 1

# One status vocabulary for jobs (the job store) and for results.json (jobs and runs).
QUEUED, RUNNING, COMPLETED = "queued", "running", "completed"
FAILED, CANCELLED, STOPPED = "failed", "cancelled", "stopped"
JOB_STATUSES = (QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED, STOPPED)
RUN_STATUSES = (COMPLETED, STOPPED)  # a run's results.json: trained and evaluated, or checkpointed and stopped
RESULT_STATUSES = (RUNNING, COMPLETED, STOPPED)  # a job's results.json: written after each run
_OLD_STATUSES = {"complete": COMPLETED}  # schema 0


class _Fields:
    """Reads typed fields of one JSON object, naming the field (`where`) in every error."""

    def __init__(self, data: Any, where: str, path: str | None):
        if not isinstance(data, dict):
            raise DataError(f"{where or 'the file'}: expected a JSON object, got {_kind(data)}", path=path)
        self.data, self.where, self.path = data, where, path

    def name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, message: str):
        raise DataError(f"field '{self.name(key)}': {message}", path=self.path)

    def get(self, key: str, kinds: tuple[type, ...], required: bool = True, allow_none: bool = False):
        if key not in self.data:
            if required:
                self.fail(key, "missing")
            return None
        value = self.data[key]
        if value is None and (allow_none or not required):
            return None
        numeric = float in kinds
        if isinstance(value, bool) or not isinstance(value, kinds) or (numeric and not math.isfinite(value)):
            expected = " or ".join("a number" if k is float else _KIND_NAMES.get(k, k.__name__) for k in kinds
                                   if not (numeric and k is int))
            self.fail(key, f"expected {expected}{' or null' if allow_none else ''}, got {_kind(value)}")
        return value

    def number(self, key: str, required: bool = True, allow_none: bool = False) -> float | None:
        return self.get(key, (int, float), required, allow_none)

    def flag(self, key: str) -> bool:
        """A required true/false."""
        if key not in self.data:
            self.fail(key, "missing")
        if not isinstance(self.data[key], bool):
            self.fail(key, f"expected true/false, got {_kind(self.data[key])}")
        return self.data[key]

    def rest(self, known: tuple[str, ...]) -> dict:
        return {key: value for key, value in self.data.items() if key not in known}


_KIND_NAMES = {str: "a string", int: "a whole number", dict: "an object", list: "a list"}


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(value), f"{type(value).__name__} {value!r}")


def _status(fields: _Fields, allowed: tuple[str, ...]) -> str:
    status = fields.get("status", (str,))
    status = _OLD_STATUSES.get(status, status)
    if status not in allowed:
        fields.fail("status", f"'{fields.data['status']}' is not one of {', '.join(allowed)}")
    return status


def _without_none(data: dict) -> dict:
    return {key: value for key, value in data.items() if value is not None}


@dataclass(frozen=True)
class LanguageMetric:
    """One language's score in points with its 95% interval (None: no interval), over `n` examples (or seeds,
    when `ci_over` is "seeds"), and the majority-class score of the same examples when known."""

    metric: str
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    majority: float | None = None
    ci_over: str | None = None

    def to_dict(self) -> dict:
        return {"metric": self.metric, "value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "n": self.n, **_without_none({"majority": self.majority, "ci_over": self.ci_over})}

    @classmethod
    def from_dict(cls, data: Any, where: str = "", path: str | None = None) -> "LanguageMetric":
        fields = _Fields(data, where, path)
        return cls(metric=fields.get("metric", (str,)), value=fields.number("value"),
                   ci_low=fields.number("ci_low", False, True), ci_high=fields.number("ci_high", False, True),
                   n=fields.get("n", (int,), False, True), majority=fields.number("majority", False, True),
                   ci_over=fields.get("ci_over", (str,), False, True))


def metrics_to_dict(metrics: Mapping[str, LanguageMetric]) -> dict:
    """{language: metric dict}, the form results.json holds."""
    return {language: metric.to_dict() for language, metric in metrics.items()}


def _metrics(fields: _Fields, key: str) -> dict[str, LanguageMetric]:
    raw = fields.get(key, (dict,), required=False)
    return {language: LanguageMetric.from_dict(value, fields.name(f"{key}.{language}"), fields.path)
            for language, value in (raw or {}).items()}


def _spec(fields: _Fields) -> dict:
    spec = fields.get("spec", (dict,))
    _Fields(spec, fields.name("spec"), fields.path).get("task", (str,))
    return spec


def _first(values: Any):
    return values[0] if isinstance(values, list) and values else None


class _SpecFields:
    """The spec settings that readers ask of a result most often (the spec itself stays a JSON object)."""

    spec: dict

    @property
    def task(self) -> str:
        return self.spec["task"]

    @property
    def encoder(self) -> str | None:
        return self.spec.get("encoder")

    @property
    def aggregation(self) -> str | None:
        """The first (a run's only) aggregation of the spec."""
        return _first(self.spec.get("aggregations"))

    @property
    def fusion_layer(self) -> int | None:
        """The first (a run's only) fusion layer; None for aggregations without one."""
        return _first(self.spec.get("fusion_layers"))

    @property
    def seed(self) -> int | None:
        """The first (a run's only) seed."""
        return _first(self.spec.get("seeds"))

    @property
    def eval_languages(self) -> list[str]:
        return list(self.spec.get("eval_languages") or [])

    @property
    def intermediate_tasks(self) -> list[str]:
        return list(self.spec.get("intermediate_tasks") or [])


_RUN_FIELDS = ("schema_version", "spec", "status", "metrics", "dev_score", "dev_metric", "model_dir", "code_version",
               "dev_majority", "intermediate_dev", "intermediate_budget", "init_from")


def _intermediate_dev(fields: _Fields) -> dict[str, dict]:
    """{task: {"metric", "value", "majority", "learned", ...}}, those four checked (other keys, such as "n", kept)."""
    raw = fields.get("intermediate_dev", (dict,), False, True) or {}
    table = {}
    for task, entry in raw.items():
        entry_fields = _Fields(entry, fields.name(f"intermediate_dev.{task}"), fields.path)
        table[task] = {**entry, "metric": entry_fields.get("metric", (str,)), "value": entry_fields.number("value"),
                       "majority": entry_fields.number("majority"), "learned": entry_fields.flag("learned")}
    return table


def _intermediate_budget(fields: _Fields) -> dict | None:
    """{"steps": total intermediate steps, "examples": {task: examples drawn}}, checked."""
    raw = fields.get("intermediate_budget", (dict,), False, True)
    if raw is None:
        return None
    budget = _Fields(raw, fields.name("intermediate_budget"), fields.path)
    steps = budget.get("steps", (int,))
    examples = budget.get("examples", (dict,))
    counts = _Fields(examples, budget.name("examples"), fields.path)
    return {"steps": steps, "examples": {task: counts.get(task, (int,)) for task in examples}}


@dataclass(frozen=True)
class RunResult(_SpecFields):
    """One unit (aggregation × fusion layer × seed × learning rate) of a job: `completed` with its metrics, or
    `stopped` (checkpointed; resuming continues it). `extra`: every other key of the file, kept as read
    (device, stages, fusion_stats, convergence, history, ...).

    The intermediate-task study's fields (absent from older files, read as these defaults):
    dev_majority: the majority-class score of the target task's English dev set (points; precisely the best
    score of one label predicted everywhere, dlfa.engine.metrics.constant_score; None for QA or without a dev
    set), to flag a run whose dev score stays at it (dlfa.engine.metrics.at_majority);
    intermediate_dev: task -> {"metric", "value", "majority", "learned", "n"}: each intermediate task's English
    dev score after its intermediate stage, the majority-class (prior) score on the same examples (as
    dev_majority: 0 for MCC; for F1 the always-positive score when higher), whether it is at least 1 point
    above it, and the number of dev examples; intermediate_budget: {"steps": intermediate optimizer steps,
    "examples": {task: training examples drawn}}, the budget spent; init_from: the unit folder whose trained
    encoder the run started from."""

    spec: dict
    status: str
    metrics: dict[str, LanguageMetric] = field(default_factory=dict)
    dev_score: float | None = None
    dev_metric: str | None = None
    model_dir: str | None = None
    code_version: dict | None = None  # {"sources_sha256", "git_commit", "git_dirty"}
    extra: dict = field(default_factory=dict)
    dev_majority: float | None = None
    intermediate_dev: dict[str, dict] = field(default_factory=dict)
    intermediate_budget: dict | None = None
    init_from: str | None = None

    @property
    def completed(self) -> bool:
        return self.status == COMPLETED

    def to_dict(self) -> dict:
        data = {"schema_version": SCHEMA_VERSION, "spec": self.spec, "status": self.status}
        if self.metrics or self.completed:
            data["metrics"] = metrics_to_dict(self.metrics)
        optional = {"dev_score": self.dev_score, "dev_metric": self.dev_metric, "model_dir": self.model_dir,
                    "code_version": self.code_version}
        data.update({key: value for key, value in optional.items() if value is not None or self.completed})
        data.update(_without_none({"dev_majority": self.dev_majority, "intermediate_dev": self.intermediate_dev or None,
                                   "intermediate_budget": self.intermediate_budget, "init_from": self.init_from}))
        return {**data, **self.extra}

    @classmethod
    def from_dict(cls, data: Any, where: str = "", path: str | None = None) -> "RunResult":
        fields = _Fields(data, where, path)
        _check_version(fields)
        status = _status(fields, RUN_STATUSES)
        if status == COMPLETED:
            fields.get("metrics", (dict,))
        return cls(spec=_spec(fields), status=status, metrics=_metrics(fields, "metrics"),
                   dev_score=fields.number("dev_score", False, True),
                   dev_metric=fields.get("dev_metric", (str,), False, True),
                   model_dir=fields.get("model_dir", (str,), False, True),
                   code_version=fields.get("code_version", (dict,), False, True), extra=fields.rest(_RUN_FIELDS),
                   dev_majority=fields.number("dev_majority", False, True), intermediate_dev=_intermediate_dev(fields),
                   intermediate_budget=_intermediate_budget(fields),
                   init_from=fields.get("init_from", (str,), False, True))


_JOB_FIELDS = ("schema_version", "spec", "status", "metrics", "runs", "grid", "code_version", "seconds")


@dataclass(frozen=True)
class JobResult(_SpecFields):
    """A job: its spec, its runs in sweep order, the job-level metrics of a single configuration (its run, or
    the mean over seeds with a t-interval, `ci_over` "seeds") or the grid of a sweep over configurations
    ({"languages", "rows"}), and every other key (learning_rate_choice, ...) in `extra`."""

    spec: dict
    status: str
    runs: tuple[RunResult, ...] = ()
    metrics: dict[str, LanguageMetric] = field(default_factory=dict)
    grid: dict | None = None
    code_version: dict | None = None  # {"sources_sha256", "git_commit", "git_dirty"}
    seconds: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def completed_runs(self) -> list[RunResult]:
        return [run for run in self.runs if run.completed]

    @property
    def finished_count(self) -> int:
        """How many runs the job has finished; a completed job that measures without runs (a Tatoeba retrieval job:
        job-level metrics only) counts as one."""
        return len(self.completed_runs) or int(self.status == COMPLETED and bool(self.metrics))

    def to_dict(self) -> dict:
        data = {"schema_version": SCHEMA_VERSION, "spec": self.spec, "status": self.status,
                "code_version": self.code_version}
        if self.metrics:
            data["metrics"] = metrics_to_dict(self.metrics)
        if self.grid is not None:
            data["grid"] = self.grid
        return {**data, **self.extra, "runs": [run.to_dict() for run in self.runs], "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: Any, where: str = "", path: str | None = None) -> "JobResult":
        fields = _Fields(data, where, path)
        _check_version(fields)
        runs = fields.get("runs", (list,))
        return cls(spec=_spec(fields), status=_status(fields, RESULT_STATUSES),
                   runs=tuple(RunResult.from_dict(run, fields.name(f"runs[{i}]"), path) for i, run in enumerate(runs)),
                   metrics=_metrics(fields, "metrics"), grid=fields.get("grid", (dict,), False, True),
                   code_version=fields.get("code_version", (dict,), False, True),
                   seconds=fields.number("seconds", False, True), extra=fields.rest(_JOB_FIELDS))


def model_folder(unit_dir: Path, run: RunResult) -> Path:
    """Where a run's model is saved: the folder its results name (`model/` for runs that name none), in its unit
    folder."""
    return Path(unit_dir) / (run.model_dir or MODEL_DIR)


def saved_model(unit_dir: Path, run: RunResult) -> Path | None:
    """The folder of a run's saved model; None when it is not on this machine (a run restored from a record, or
    copied without its model, has only its results)."""
    folder = model_folder(unit_dir, run)
    return folder if (folder / CONFIG_FILE).is_file() else None


def _check_version(fields: _Fields) -> None:
    version = fields.get("schema_version", (int,), required=False)
    if version is not None and not 0 <= version <= SCHEMA_VERSION:
        fields.fail("schema_version", f"{version} is newer than this version of DLFA Explorer reads "
                                      f"({SCHEMA_VERSION}): update it")


def results_file(path: str | Path) -> Path:
    """`path` itself when it names a file, else the results.json in the folder `path`."""
    path = Path(path)
    return path if path.name == RESULTS_FILE or path.suffix == ".json" else path / RESULTS_FILE


def parse_results(data: Any, path: str | Path | None = None) -> JobResult | RunResult:
    """A JobResult when `data` has "runs", else a RunResult; DataError naming `path` and the field."""
    where = str(path) if path is not None else None
    if isinstance(data, dict) and "runs" in data:
        return JobResult.from_dict(data, path=where)
    return RunResult.from_dict(data, path=where)


def _load(path: str | Path) -> tuple[Any, Path]:
    path = results_file(path)
    try:
        return json.loads(path.read_text(encoding="utf-8")), path
    except FileNotFoundError:
        raise DataError(f"no {RESULTS_FILE} here", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the results: {exc}", path=str(path)) from exc
    except ValueError as exc:
        raise DataError(f"not JSON: {exc}", path=str(path)) from exc


def read_results(path: str | Path) -> JobResult | RunResult:
    """The results.json at `path` (a file, or a folder holding one): a JobResult or a RunResult. DataError
    naming the file (and the field) when it is missing, is not JSON or does not hold results."""
    data, path = _load(path)
    return parse_results(data, path)


def read_job_results(path: str | Path) -> JobResult:
    """`read_results` for a job's results.json (one run's is an error: it has no 'runs')."""
    data, path = _load(path)
    return JobResult.from_dict(data, path=str(path))


def read_run_results(path: str | Path) -> RunResult:
    """`read_results` for one run's results.json (a job's is an error naming the file)."""
    data, path = _load(path)
    if isinstance(data, dict) and "runs" in data:
        raise DataError("a job's results, not one run's (open one of its run folders)", path=str(path))
    return RunResult.from_dict(data, path=str(path))


def write_results(path: str | Path, results: JobResult | RunResult) -> Path:
    """Write `results` atomically to `path` (a file, or the folder to hold results.json); returns the file."""
    path = results_file(path)
    write_json(path, results.to_dict())
    return path
