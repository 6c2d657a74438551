"""A finished multiple-choice run in the app: the Results page shows its accuracy per XCOPA language (a tiny
COPA fine-tune on the fixture data root, made in the test through the job store like any launched job)."""
from __future__ import annotations

import json
import os

import pytest
from streamlit.testing.v1 import AppTest

from dlfa.testing import link_built
from tests.test_pages import REPO, TIMEOUT, no_errors, plotly_specs, x_categories


@pytest.fixture(scope="module")
def finished_xcopa(tmp_path_factory, fixture_root, tiny_encoder):
    """A cache folder whose store holds one completed xcopa job (tiny encoder, zero-shot on et and tr)."""
    from dlfa.engine.job import run_job
    from dlfa.engine.spec import JobSpec
    from dlfa.jobs.store import JobStore

    cache = link_built(tmp_path_factory.mktemp("cache-xcopa"))
    old = os.environ.get("DLFA_CACHE_DIR")
    os.environ["DLFA_CACHE_DIR"] = str(cache)
    try:
        spec = JobSpec(task="xcopa", eval_languages=("et", "tr"), encoder=tiny_encoder, data_root=str(fixture_root),
                       fusion_layers=(2,), max_train_examples=16, max_eval_examples=20, batch_size=8, max_steps=4,
                       learning_rate=1e-3, bootstrap_samples=50, name="tiny xcopa")
        store = JobStore(cache / "jobs.sqlite")
        job = store.submit(spec)
        assert store.claim_job(job.id) and store.mark_running(job.id)
        run_job(spec, job.out_dir)
        assert store.mark_completed(job.id)
    finally:
        if old is None:
            os.environ.pop("DLFA_CACHE_DIR", None)
        else:
            os.environ["DLFA_CACHE_DIR"] = old
    unit = json.loads((job.out_dir / "dlfa-L2-s1" / "results.json").read_text())
    return {"cache": cache, "job_id": job.id, "metrics": unit["metrics"]}


@pytest.mark.integration
def test_results_shows_a_multiple_choice_run_with_accuracy_per_language(finished_xcopa, fixture_root, monkeypatch):
    monkeypatch.setenv("DLFA_CACHE_DIR", str(finished_xcopa["cache"]))
    monkeypatch.setenv("DLFA_DATA_DIR", str(fixture_root))
    at = AppTest.from_file(str(REPO / "pages" / "results.py"), default_timeout=TIMEOUT)
    at.session_state["dlfa_selected_jobs"] = [finished_xcopa["job_id"]]
    at.run()
    no_errors(at)
    assert at.multiselect(key="results_jobs").value == [finished_xcopa["job_id"]]
    table = at.dataframe[0].value
    assert sorted(table["code"]) == ["et", "tr"] and set(table["metric"]) == {"accuracy"}
    for row in table.itertuples():
        recorded = finished_xcopa["metrics"][row.code]
        assert (row.run, row.n) == ("tiny xcopa", 20)
        assert (row.value, row.ci_low, row.ci_high) == pytest.approx(
            (recorded["value"], recorded["ci_low"], recorded["ci_high"]))
        assert row.ci_low <= row.value <= row.ci_high and 0 <= row.value <= 100
    chart, training = plotly_specs(at)  # the languages' bars, then the run's training curves
    assert x_categories(chart) == {"Estonian (et)", "Turkish (tr)"}
    assert any(trace.get("name", "").endswith(" dev") for trace in training["data"])
    assert "accuracy" in json.dumps(chart["layout"])
