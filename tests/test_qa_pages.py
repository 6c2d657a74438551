"""Question answering in the app (streamlit.testing.v1.AppTest): Launch offers the QA tasks and the job it submits
runs; Examples, Results, Layer comparison, Fusion weights and Attribution show a real QA job: a tiny encoder
trained a few steps on the fixture root's XQuAD (`last` and `dlfa` L2), evaluated on English and German."""
from __future__ import annotations

import functools
import gzip
import json
from types import SimpleNamespace

import pytest
from test_pages import no_errors, plotly_specs
from test_pages import page as pages_page

from dlfa.app.widgets import QA_EXAMPLE
from dlfa.engine.evaluate import predictions_path
from dlfa.results import read_job_results
from dlfa.testing import link_built

page = functools.partial(pages_page, timeout=120)
pytestmark = pytest.mark.integration  # the pages read a job trained for this module


@pytest.fixture(scope="module")
def qa_job(tmp_path_factory, fixture_root, tiny_encoder):
    from dlfa.engine.job import run_job
    from dlfa.engine.spec import JobSpec
    from dlfa.jobs.store import JobStore

    cache = link_built(tmp_path_factory.mktemp("cache-qa"))
    spec = JobSpec(task="xquad", eval_languages=("en", "de"), encoder=tiny_encoder, data_root=str(fixture_root),
                   aggregations=("last", "dlfa"), fusion_layers=(2,), max_steps=12, batch_size=8,
                   learning_rate=1e-3, max_length=160, bootstrap_samples=50, name="tiny qa")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DLFA_CACHE_DIR", str(cache))
        store = JobStore(cache / "jobs.sqlite")
        job = store.submit(spec)
        assert store.claim_job(job.id) and store.mark_running(job.id)
        run_job(spec, job.out_dir)
        assert store.mark_completed(job.id)
    runs = {run.aggregation: run for run in read_job_results(job.out_dir).runs}
    return {"cache": cache, "job": job, "runs": runs}


@pytest.fixture
def qa_cache(qa_job, monkeypatch, fixture_root):
    monkeypatch.setenv("DLFA_CACHE_DIR", str(qa_job["cache"]))
    monkeypatch.setenv("DLFA_DATA_DIR", str(fixture_root))
    return qa_job


def unit_id(qa_job, name: str) -> str:
    return f"{qa_job['job'].id}/{name}"


def prediction_rows(qa_job, unit: str, language: str) -> list[dict]:
    with gzip.open(predictions_path(qa_job["job"].out_dir / unit, language), "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_examples_shows_each_question_with_its_gold_and_predicted_spans(qa_cache):
    at = page("examples.py", ex_unit=unit_id(qa_cache, "dlfa-L2-s1"), ex_language="de").run()
    no_errors(at)
    rows = prediction_rows(qa_cache, "dlfa-L2-s1", "de")
    table = at.dataframe[0].value
    assert len(table) == len(rows) == 21 and list(table["pred"]) == [row["pred"] for row in rows]
    outcomes = table["outcome"].value_counts()
    summary = next(m.value for m in at.markdown if m.value.startswith("**21 of 21 questions**"))
    assert f"{outcomes.get('exact', 0)} exact, {outcomes.get('partial', 0)} partial, " \
           f"{outcomes.get('wrong', 0)} wrong" in summary
    shown = [m.value for m in at.markdown if m.value.startswith("<div><b>#")]
    first = rows[0]
    assert f"<b>#0 {first['question']}</b> — predicted <b>{first['pred']}</b>" in shown[0]
    assert "border-bottom:2px solid" in shown[0] and "background:" in shown[0]  # gold and predicted spans marked
    at.radio(key="ex_outcome").set_value("wrong").run()
    wrong = at.dataframe[0].value
    assert len(wrong) == outcomes.get("wrong", 0) and (wrong["f1"] == 0).all()
    assert any(m.value.startswith(f"**{len(wrong)} of 21 questions**") for m in at.markdown)


def test_examples_pairs_two_qa_runs_on_em_and_f1(qa_cache):
    at = page("examples.py", ex_unit=unit_id(qa_cache, "last-s1"), ex_language="de",
              ex_other=unit_id(qa_cache, "dlfa-L2-s1")).run()
    no_errors(at)
    paired = next(d.value for d in at.dataframe if "fixed" in d.value.columns)
    assert sorted(zip(paired["language"], paired["metric"], paired["test"])) == [
        ("de", "exact_match", "McNemar exact"), ("de", "span_f1", "paired bootstrap"),
        ("en", "exact_match", "McNemar exact"), ("en", "span_f1", "paired bootstrap")]
    assert (paired["fixed"] + paired["broken"] + paired["both correct"] + paired["both wrong"] == paired["n"]).all()
    assert (paired["n"] == 21).all() and paired["p"].between(0, 1).all()
    runs = qa_cache["runs"]
    de = paired[paired["language"] == "de"].set_index("metric")
    assert de.loc["span_f1", "A"] == pytest.approx(runs["last"].metrics["de"].value)
    assert de.loc["span_f1", "B"] == pytest.approx(runs["dlfa"].metrics["de"].value)
    assert de.loc["exact_match", "B"] == pytest.approx(runs["dlfa"].extra["exact_match"]["de"]["value"])
    fixed = at.dataframe[-1].value
    assert len(fixed) == de.loc["exact_match", "fixed"]  # questions B answers exactly and A does not


def test_results_shows_qa_f1_with_exact_match_beside_it_per_language(qa_cache):
    job = qa_cache["job"]
    at = page("results.py", dlfa_selected_jobs=[job.id]).run()
    no_errors(at)
    table = next(d.value for d in at.dataframe if "EM" in d.value.columns)
    runs = qa_cache["runs"]
    assert len(table) == 4 and set(table["code"]) == {"en", "de"}
    for _, row in table.iterrows():
        run = runs["dlfa" if row["run"].startswith("dlfa") else "last"]
        f1, em = run.metrics[row["code"]], run.extra["exact_match"][row["code"]]
        assert (row["F1"], row["F1 low"], row["F1 high"]) == pytest.approx((f1.value, f1.ci_low, f1.ci_high))
        assert (row["EM"], row["EM low"], row["EM high"]) == pytest.approx((em["value"], em["ci_low"], em["ci_high"]))
        assert row["n"] == 21
    em_chart = next(s for s in plotly_specs(at) if "Exact match" in json.dumps(s["layout"].get("title", "")))
    assert em_chart["data"]


def test_layer_comparison_shows_qa_runs_with_em_and_w_on_a_question(qa_cache):
    at = page("layer_comparison.py", lc_left=unit_id(qa_cache, "last-s1"),
              lc_right=unit_id(qa_cache, "dlfa-L2-s1")).run()
    no_errors(at)
    tables = [d.value for d in at.dataframe if "EM" in d.value.columns]  # left, then right
    assert len(tables) == 2 and all(set(t["code"]) == {"en", "de"} for t in tables)
    dlfa = qa_cache["runs"]["dlfa"]
    german = tables[1].set_index("code").loc["de"]
    assert german["F1"] == pytest.approx(dlfa.metrics["de"].value)
    assert german["EM"] == pytest.approx(dlfa.extra["exact_match"]["de"]["value"])
    assert at.text_input(key="lc_text").value == QA_EXAMPLE[0] and at.text_area(key="lc_text_pair").value
    assert any(t["type"] == "heatmap" for s in plotly_specs(at) for t in s["data"])  # W on the question + context


def test_fusion_weights_of_a_qa_run_tell_question_and_context_tokens_apart(qa_cache):
    at = page("fusion_weights.py", fw_unit=unit_id(qa_cache, "dlfa-L2-s1")).run()
    no_errors(at)
    labels = {m.label: float(m.value) for m in at.metric}
    parts = next(d.value for d in at.dataframe if "part" in d.value.columns)
    assert set(parts["part"]) == {"special", "question", "context"}
    context = parts[parts["part"] == "context"]
    assert len(context) > 20 and context["W"].between(0, 1).all()
    assert labels["Mean W over the context tokens"] == pytest.approx(context["W"].mean(), abs=5e-4)
    assert labels["Mean W over the question tokens"] == pytest.approx(
        parts[parts["part"] == "question"]["W"].mean(), abs=5e-4)
    titles = [json.dumps(s["layout"].get("title", "")) for s in plotly_specs(at)]
    assert any("W per context token" in t for t in titles) and any("W per question token" in t for t in titles)


def test_attribution_of_qa_runs_explains_the_answer_start_and_end(qa_cache):
    at = page("attribution.py", at_dlfa=unit_id(qa_cache, "dlfa-L2-s1"), at_last=unit_id(qa_cache, "last-s1")).run()
    no_errors(at)
    answers = [m.value for m in at.metric if m.label == "Predicted answer"]
    assert len(answers) == 2 and all(answer in QA_EXAMPLE[1] for answer in answers)
    rows = [m.value for m in at.markdown if m.value.startswith(("*Start of the answer*", "*End of the answer*"))]
    assert len(rows) == 4 and all("convergence delta" in row for row in rows)
    bars = [s for s in plotly_specs(at) if s["data"][0]["type"] == "bar"]
    assert len(bars) == 4 and len({json.dumps(s["layout"]["yaxis"]["range"]) for s in bars}) == 1  # one scale


def test_launch_offers_qa_with_its_languages_and_a_longer_max_length_and_the_job_runs(
        tmp_path, monkeypatch, fixture_root, tiny_encoder):
    from dlfa.app import background
    from dlfa.engine.job import run_job

    monkeypatch.setenv("DLFA_CACHE_DIR", str(link_built(tmp_path / "cache")))
    monkeypatch.setenv("DLFA_DATA_DIR", str(fixture_root))
    submitted = []
    monkeypatch.setattr(background, "submit", lambda spec: submitted.append(spec) or SimpleNamespace(id="job-qa"))
    at = page("launch.py").run()
    no_errors(at)
    assert at.number_input(key="launch_max_length").value == 128
    at.selectbox(key="launch_task").set_value("xquad").run()
    assert at.number_input(key="launch_max_length").value == 256
    languages = at.multiselect(key="launch_languages")  # targets: the fixture's XQuAD beside English (trained on)
    assert languages.options == ["German (de) · Germanic"] and languages.value == ["de"]
    assert not [c for c in at.checkbox if c.key == "launch_probe"]  # a span head is fine-tuned
    assert not [r for r in at.radio if r.key == "launch_pooling"]
    at.text_input(key="launch_encoder").input(tiny_encoder)
    at.multiselect(key="launch_languages").set_value(["de"])
    at.multiselect(key="launch_aggregations").set_value(["dlfa"])
    at.text_input(key="launch_fusion_layers").input("2")
    at.radio(key="launch_budget").set_value("steps").run()
    at.number_input(key="launch_steps").set_value(2)
    at.number_input(key="launch_max_length").set_value(160)
    at.number_input(key="launch_batch_size").set_value(8).run()
    at.button(key="launch_submit").click().run()
    assert [s.value for s in at.success] == ["Submitted job `job-qa`."], [e.value for e in at.error]
    (spec,) = submitted
    assert (spec.task, spec.max_length, spec.probe, spec.eval_languages) == ("xquad", 160, False, ("de",))
    results = run_job(spec, tmp_path / "job")
    run = results["runs"][0]
    assert run["metrics"]["de"]["metric"] == "span_f1" and run["metrics"]["de"]["n"] == 21
    assert run["exact_match"]["de"]["n"] == 21
    assert predictions_path(tmp_path / "job" / "dlfa-L2-s1", "de").is_file()


def test_fusion_weights_of_a_qa_run_start_from_one_of_its_test_questions(qa_cache, tiny_encoder):
    from transformers import AutoTokenizer

    at = page("fusion_weights.py", fw_unit=unit_id(qa_cache, "dlfa-L2-s1")).run()
    no_errors(at)
    language = at.selectbox(key="fw_test_language").value
    at.selectbox(key="fw_test_question").set_value(3).run()
    no_errors(at)
    chosen = prediction_rows(qa_cache, "dlfa-L2-s1", language)[3]
    context = at.text_area(key="fw_text_pair").value
    assert at.text_input(key="fw_text").value == chosen["question"] and chosen["pred"] in context
    parts = next(d.value for d in at.dataframe if "part" in d.value.columns)
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder)
    for part, text in (("context", context), ("question", chosen["question"])):
        assert (parts["part"] == part).sum() == len(tokenizer(text, add_special_tokens=False)["input_ids"])
