"""What the pages show of finished work: the job store, jobs with results (read through dlfa.results), their
completed runs (Units), the tables built from their metrics, and the repository's record of the reproduction."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dlfa.app import cache
from dlfa.app.catalog import family_of, short_label, sort_by_family
from dlfa.curves import convergence_text, read_curves, run_history_rows
from dlfa.errors import DlfaError
from dlfa.paths import cache_dir
from dlfa.results import JobResult, RunResult, metrics_to_dict, model_folder, read_job_results, saved_model

RECORDED_BASE = "base encoder"


def store():
    """The job store of the current cache folder (one per cache folder and process)."""
    return cache.job_store(str(cache_dir().resolve() / "jobs.sqlite"))


def job_label(job) -> str:
    spec = job.spec
    name = job.name or f"{spec.task} · {'+'.join(spec.aggregations)}"
    return f"{name} · {job.id} ({job.status})"


@dataclass(frozen=True)
class Unit:
    """One completed run (aggregation × fusion layer × seed) of a job, with its results."""

    job_id: str
    name: str
    folder: Path
    result: RunResult = field(repr=False)

    @property
    def aggregation(self) -> str:
        return self.result.aggregation

    @property
    def fusion_layer(self) -> int | None:
        return self.result.fusion_layer

    @property
    def task(self) -> str:
        return self.result.task

    @property
    def encoder(self) -> str:
        return self.result.encoder

    @property
    def metrics(self) -> dict[str, dict]:
        """{language: {"metric", "value", "ci_low", "ci_high", "n", ...}} as the charts and tables take them."""
        return metrics_to_dict(self.result.metrics)

    @property
    def exact_match(self) -> dict[str, dict]:
        """Question answering: exact match per language, like `metrics` (which holds F1); {} for other tasks."""
        return self.result.extra.get("exact_match") or {}

    @property
    def fusion_stats(self) -> dict:
        """The mean fusion weights the run recorded on its test sets ({} when it recorded none)."""
        return self.result.extra.get("fusion_stats") or {}

    @property
    def model_dir(self) -> Path:
        return model_folder(self.folder, self.result)

    @property
    def has_model(self) -> bool:
        return saved_model(self.folder, self.result) is not None

    @property
    def label(self) -> str:
        """e.g. `dlfa L6 (seed 1)`, or `last lr 5e-05 (seed 1)` for a run of a learning-rate grid."""
        layer = f" L{self.fusion_layer}" if self.fusion_layer is not None else ""
        rates = self.result.spec.get("learning_rates")
        rate = f" lr {rates[0]:g}" if rates else ""
        return f"{self.aggregation}{layer}{rate} (seed {self.result.seed})"


def job_results(job) -> JobResult | None:
    """A job's results.json (dlfa.results.read_job_results), None until it exists; DataError naming the file and
    the field when it holds no job's results."""
    if not job.results_path.is_file():
        return None
    return read_job_results(job.results_path)


def job_units(job, results: JobResult | None = None) -> list[Unit]:
    """The completed units of a job, in sweep order."""
    from dlfa.engine.spec import JobSpec

    results = results if results is not None else job_results(job)
    units = []
    for run in results.completed_runs if results else ():
        name = JobSpec.from_dict(run.spec).unit_name()
        units.append(Unit(job.id, name, job.out_dir / name, run))
    return units


def training_curves(job, results: JobResult | None = None) -> list[dict]:
    """A job's loss and English dev points (dlfa.curves rows): live from its curves file while it trains, else
    from its finished runs' histories (a job recorded before the file existed, or read in place)."""
    rows = read_curves(job.out_dir)
    if rows or results is None:
        return rows
    return [row for unit in job_units(job, results) for row in run_history_rows(unit.name, unit.result.extra.get(
        "history") or {})]


def convergence_frame(units: list[Unit]) -> pd.DataFrame:
    """Per completed run: its best English dev score and how its training ended (dlfa.curves.convergence_text)."""
    return pd.DataFrame([{"run": unit.name, "English dev": unit.result.dev_score,
                          "training": convergence_text(unit.result.extra)} for unit in units])


def finished_jobs(with_units: bool = True) -> list:
    """Jobs that have results to show: completed ones, and others whose results.json has complete units."""
    jobs = []
    for job in store().list():
        if job.status == "completed" and job.results_path.is_file():
            jobs.append(job)
        elif with_units and job.status != "completed" and job.results_path.is_file():
            try:
                if job_units(job):
                    jobs.append(job)
            except DlfaError:
                continue
    return jobs


def all_units(aggregation: str | None = None, with_model: bool = True) -> list[Unit]:
    """Every completed unit of every finished job (optionally one aggregation, only those with a saved model)."""
    units = []
    for job in finished_jobs():
        for unit in job_units(job):
            if aggregation and unit.aggregation != aggregation:
                continue
            if with_model and not unit.has_model:
                continue
            units.append(unit)
    return units


def unit_label(unit: Unit) -> str:
    return f"{unit.label} · {unit.task} · job {unit.job_id}"


def metrics_frame(metrics: dict, run: str | None = None) -> pd.DataFrame:
    """Per-language table: language, family, metric, value, CI low/high, n (± the run's name)."""
    rows = []
    for lang in sort_by_family(metrics):
        m = metrics[lang]
        row = {"language": short_label(lang), "code": lang, "family": family_of(lang), "metric": m.get("metric"),
               "value": m.get("value"), "ci_low": m.get("ci_low"), "ci_high": m.get("ci_high"), "n": m.get("n")}
        if run is not None:
            row = {"run": run, **row}
        rows.append(row)
    return pd.DataFrame(rows)


def job_series(job, results: JobResult) -> dict[str, dict[str, dict]]:
    """{series name: {language: metrics}} of a job: its units (sweeps, several seeds) or its summary."""
    units = job_units(job, results)
    prefix = job.name or job.id
    if len(units) <= 1:
        metrics = metrics_to_dict(results.metrics) or (units[0].metrics if units else {})
        return {prefix: metrics} if metrics else {}
    return {f"{prefix} · {unit.label}": unit.metrics for unit in units}


def qa_scores_frame(units: list[Unit]) -> pd.DataFrame:
    """Question answering runs' F1 and exact match side by side: one row per run and language, each score with
    its 95% interval, and n (questions); units of other tasks are left out."""
    rows = []
    for unit in units:
        for lang in sort_by_family(unit.exact_match):
            f1, em = unit.metrics.get(lang, {}), unit.exact_match[lang]
            rows.append({"run": unit.label, "language": short_label(lang), "code": lang,
                         "F1": f1.get("value"), "F1 low": f1.get("ci_low"), "F1 high": f1.get("ci_high"),
                         "EM": em.get("value"), "EM low": em.get("ci_low"), "EM high": em.get("ci_high"),
                         "n": em.get("n")})
    return pd.DataFrame(rows)


def grid_frame(grid: dict) -> pd.DataFrame:
    """A sweep's layer × language grid as a table (rows: configurations)."""

    def rounded(value):
        return None if value is None else round(float(value), 2)

    rows = []
    for row in grid.get("rows", []):
        rows.append({"config": row.get("config"), "aggregation": row.get("aggregation"),
                     "fusion_layer": row.get("fusion_layer"), "dev": rounded(row.get("dev")),
                     **{short_label(lang): rounded(v) for lang, v in row.get("values", {}).items()},
                     "mean": rounded(row.get("mean"))})
    return pd.DataFrame(rows)


def retrieval_view(results: JobResult) -> dict | None:
    """What the Results page shows of a Tatoeba job (None for other jobs): its grid of averaged accuracies
    ({"rows", "languages", "values", "chosen"}, for dlfa.charts.retrieval_heatmap) and, per language, both
    directions and their mean with its interval at the job's layer (`table`)."""
    if "tatoeba" not in results.extra:
        return None  # other jobs: no need to import the analysis (and torch)
    from dlfa.analysis.tatoeba_job import job_tatoeba

    grid = job_tatoeba(results)
    chosen = str(results.extra.get("retrieval_layer"))
    rows = []
    for language in sort_by_family(grid.languages):
        cell = grid.cell(language, chosen)
        rows.append({"language": short_label(language), "code": language, "pairs": grid.n_sentences[language],
                     "xx→en": cell.xx_to_en.value, "en→xx": cell.en_to_xx.value, "mean": cell.average.value,
                     "ci_low": cell.average.ci_low, "ci_high": cell.average.ci_high})
    values = [[grid.cell(language, row).average.value for language in grid.languages] for row in grid.rows()]
    return {"rows": grid.rows(), "languages": grid.languages, "values": values, "chosen": chosen,
            "encoder": grid.encoder, "table": pd.DataFrame(rows)}


def reproduction_record() -> Path:
    """The repository's record of the DLFA reproduction (docs/reproduction/): results of real jobs."""
    from dlfa.paths import REPO_ROOT
    from dlfa.reproduction.plan import DEFAULT_DOC, record_root

    return record_root(REPO_ROOT / DEFAULT_DOC)


def recorded_study() -> tuple[Path, int] | None:
    """The repository record's intermediate-task study (its folder, and how many of its jobs hold finished runs so
    far); None when the record holds no study."""
    from dlfa.jobs.recorded import job_folders, read_recorded_job
    from dlfa.reproduction.record import STUDY_PART

    folder = reproduction_record() / STUDY_PART
    if not folder.is_dir():
        return None
    jobs = [read_recorded_job(job) for job in job_folders(folder)]
    return (folder, sum(job.finished > 0 for job in jobs)) if jobs else None


def record_is_provisional() -> bool:
    """Whether the repository's record predates code versions (dlfa.reproduction.record.PROVISIONAL)."""
    from dlfa.reproduction.record import provisional

    return provisional(reproduction_record())


def record_contents() -> str:
    """What the repository's record holds, part by part, e.g. "fine-tuning over seeds: 45 runs" or ": not run yet"."""
    from dlfa.reproduction.record import RECORD_PARTS, record_contents

    counts = record_contents(reproduction_record())
    return "; ".join(f"{RECORD_PARTS[part]}: " + (f"{n} run{'s' * (n != 1)}" if n else "not run yet")
                     for part, n in counts.items())


def recorded_layer_analyses() -> dict[str, dict]:
    """The reproduction's layer analyses (retrieval and CKA per layer): RECORDED_BASE, the base encoder's, then
    each analysed fine-tuned encoder by its run (`<part>/<job>/<unit>`); {} without a record."""
    from dlfa.reproduction.plan import LAYER_ANALYSIS_FILE, TUNED_LAYERS_FILE

    found = {}
    for name in (LAYER_ANALYSIS_FILE, TUNED_LAYERS_FILE):
        path = reproduction_record() / name
        try:
            found[name] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        except (OSError, ValueError) as exc:
            raise DlfaError(f"cannot read the recorded layer analysis ({path}): {exc}") from exc
    if found[LAYER_ANALYSIS_FILE] is None:
        return {}
    return {RECORDED_BASE: found[LAYER_ANALYSIS_FILE], **(found[TUNED_LAYERS_FILE] or {}).get("runs", {})}
