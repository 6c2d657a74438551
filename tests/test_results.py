"""The results contract (dlfa.results): one writer, one reader that validates, the record's files and the first
record's format (schema 0, tests/fixtures/results_schema0)."""
import json
from pathlib import Path

import pytest

from dlfa.engine.spec import INTERMEDIATE_ONLY, RETRIEVAL_TASKS
from dlfa.errors import DataError
from dlfa.results import (COMPLETED, RESULTS_FILE, SCHEMA_VERSION, STOPPED, JobResult, LanguageMetric, RunResult,
                          read_job_results, read_results, read_run_results, write_results)

RECORD = Path(__file__).resolve().parents[1] / "docs" / "reproduction"
SPEC = {"task": "xnli", "encoder": "embedded:e5-small", "aggregations": ["dlfa"], "fusion_layers": [6],
        "seeds": [2], "eval_languages": ["de", "zh"], "intermediate_tasks": ["rte"]}


def a_run(**changes) -> RunResult:
    fields = dict(spec=SPEC, status=COMPLETED, dev_score=71.5, dev_metric="accuracy", model_dir="model",
                  metrics={"de": LanguageMetric("accuracy", 60.5, 57.0, 64.0, 828, majority=33.3),
                           "zh": LanguageMetric("accuracy", 55.0, None, None, 10, majority=40.0)},
                  code_version={"sources_sha256": "ab" * 32, "git_commit": None, "git_dirty": None},
                  extra={"convergence": {"best_step": 40, "stopped_early": False}, "probe": {"de": [1, 2]},
                         "retrieval": {"layers": [0.5, 0.75]}})
    return RunResult(**{**fields, **changes})


def test_a_job_and_its_runs_survive_a_write_and_read_unchanged(tmp_path):
    stopped = RunResult(spec={**SPEC, "seeds": [3]}, status=STOPPED, extra={"stage": 0, "steps_done": 12})
    job = JobResult(spec={**SPEC, "seeds": [2, 3]}, status=STOPPED, runs=(a_run(), stopped),
                    metrics={"de": LanguageMetric("accuracy", 60.5, 58.0, 63.0, 2, ci_over="seeds")},
                    grid={"languages": ["de"], "rows": []}, seconds=12.5, extra={"learning_rate_choice": []})
    path = write_results(tmp_path, job)
    assert path == tmp_path / RESULTS_FILE
    written = json.loads(path.read_text())
    assert written["schema_version"] == SCHEMA_VERSION and written["runs"][0]["schema_version"] == SCHEMA_VERSION
    assert written["runs"][0]["probe"] == {"de": [1, 2]} and written["runs"][1]["steps_done"] == 12
    assert written["runs"][0]["metrics"]["de"]["majority"] == 33.3 and "majority" not in written["metrics"]["de"]
    assert "ci_over" not in written["runs"][0]["metrics"]["de"] and written["metrics"]["de"]["ci_over"] == "seeds"
    again = read_results(tmp_path)
    assert again == job
    assert again.completed_runs == [job.runs[0]]
    run = again.runs[0]
    assert (run.task, run.encoder, run.aggregation, run.fusion_layer, run.seed) == ("xnli", "embedded:e5-small",
                                                                                    "dlfa", 6, 2)
    assert run.eval_languages == ["de", "zh"] and run.intermediate_tasks == ["rte"]
    assert run.extra["retrieval"] == {"layers": [0.5, 0.75]} and run.metrics["zh"].ci_low is None
    write_results(tmp_path / "again.json", again)
    assert json.loads((tmp_path / "again.json").read_text()) == written


def test_a_run_result_reads_back_as_a_run(tmp_path):
    write_results(tmp_path / "unit", a_run())
    assert read_run_results(tmp_path / "unit" / RESULTS_FILE) == a_run()
    with pytest.raises(DataError, match=r"unit/results.json: field 'runs': missing$"):
        read_job_results(tmp_path / "unit")
    with pytest.raises(DataError, match=r"job.json: a job's results, not one run's"):
        read_run_results(write_results(tmp_path / "job.json", JobResult(SPEC, COMPLETED, (a_run(),))))


RECORDED = sorted(RECORD.glob(f"**/{RESULTS_FILE}"))
SCHEMA_0 = Path(__file__).resolve().parent / "fixtures" / "results_schema0" / RESULTS_FILE  # the first record's


def test_the_record_holds_jobs_to_read():
    assert len(RECORDED) >= 4, "docs/reproduction holds the committed record"


def _check_retrieval_job(job: JobResult, raw: dict) -> None:
    """Nothing trained: the job's own metrics, its per-layer scores in extra."""
    assert job.status == COMPLETED and job.runs == () == tuple(raw["runs"])
    assert {lang: job.metrics[lang].value for lang in job.metrics} == {
        lang: raw["metrics"][lang]["value"] for lang in raw["metrics"]} != {}
    assert job.extra["tatoeba"] == raw["tatoeba"] and job.extra["retrieval_layer"] == raw["retrieval_layer"]


def _check_trained_job(job: JobResult, raw: dict) -> None:
    assert job.status in (COMPLETED, STOPPED) and len(job.runs) == len(raw["runs"]) > 0  # a record between sittings
    assert job.status == STOPPED or all(run.status == COMPLETED for run in job.runs)  # may hold stopped jobs
    first, raw_first = job.runs[0], raw["runs"][0]
    assert first.spec == raw_first["spec"] and first.dev_score == raw_first["dev_score"]
    if raw_first["metrics"]:
        language = sorted(raw_first["metrics"])[0]
        metric = first.metrics[language]
        assert (metric.value, metric.ci_low, metric.ci_high, metric.n, metric.majority) == tuple(
            raw_first["metrics"][language][key] for key in ("value", "ci_low", "ci_high", "n", "majority"))
    else:  # an intermediate-only job (a study arm) tests no language: it measures its intermediate tasks' dev
        assert job.spec["task"] == INTERMEDIATE_ONLY and first.intermediate_dev == raw_first["intermediate_dev"] != {}
    assert first.extra["history"] == raw_first["history"] and first.extra["fusion_stats"] == raw_first["fusion_stats"]


@pytest.mark.parametrize("path", [*RECORDED, SCHEMA_0],
                         ids=lambda p: "schema 0" if p == SCHEMA_0 else str(p.relative_to(RECORD).parent))
def test_every_results_file_of_the_record_reads(path, tmp_path):
    raw = json.loads(path.read_text())
    if "schema_version" not in raw:  # schema 0, the first record's: its own status word
        assert raw["status"] == "complete" and all(run["status"] == "complete" for run in raw["runs"])
    job = read_job_results(path)
    (_check_retrieval_job if job.spec["task"] in RETRIEVAL_TASKS else _check_trained_job)(job, raw)
    write_results(tmp_path, job)
    assert read_results(tmp_path) == job


def _broken(tmp_path, change) -> Path:
    data = json.loads(SCHEMA_0.read_text())
    change(data)
    path = tmp_path / "job" / RESULTS_FILE
    path.parent.mkdir()
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("change, field, reason", [
    (lambda d: d["runs"][3]["metrics"]["de"].update(value="60"), r"runs\[3\]\.metrics\.de\.value",
     "expected a number, got a string"),
    (lambda d: d["runs"][1]["metrics"]["zh"].pop("metric"), r"runs\[1\]\.metrics\.zh\.metric", "missing"),
    (lambda d: d["runs"][0].update(status="done"), r"runs\[0\]\.status", "'done' is not one of completed, stopped"),
    (lambda d: d["runs"][2].pop("spec"), r"runs\[2\]\.spec", "missing"),
    (lambda d: d["spec"].pop("task"), r"spec\.task", "missing"),
    (lambda d: d.update(runs={}), "runs", "expected a list, got an object"),
    (lambda d: d.update(schema_version=SCHEMA_VERSION + 1), "schema_version",
     rf"{SCHEMA_VERSION + 1} is newer than this version"),
])
def test_a_malformed_file_gives_one_error_naming_the_file_and_the_field(tmp_path, change, field, reason):
    path = _broken(tmp_path, change)
    with pytest.raises(DataError, match=rf"^{path}: field '{field}': {reason}") as raised:
        read_results(path)
    assert "\n" not in str(raised.value) and raised.value.path == str(path)


def test_a_file_that_is_missing_or_not_json_is_named(tmp_path):
    with pytest.raises(DataError, match=rf"^{tmp_path / RESULTS_FILE}: no results.json here"):
        read_results(tmp_path)
    (tmp_path / RESULTS_FILE).write_text('{"spec": {"task": "udpos"}')
    with pytest.raises(DataError, match=rf"^{tmp_path / RESULTS_FILE}: not JSON"):
        read_results(tmp_path)
    (tmp_path / RESULTS_FILE).write_text("[1, 2]")
    with pytest.raises(DataError, match=rf"^{tmp_path / RESULTS_FILE}: the file: expected a JSON object, got a list"):
        read_results(tmp_path)


def test_the_writer_refuses_what_json_cannot_hold(tmp_path):
    with pytest.raises(ValueError):
        write_results(tmp_path, a_run(metrics={"de": LanguageMetric("accuracy", float("nan"), n=3)}))
    assert not (tmp_path / RESULTS_FILE).exists()
