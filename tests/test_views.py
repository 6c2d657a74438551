"""The three inspection pages (Examples, Projector, Attention) under streamlit.testing.v1.AppTest, on a store
that holds a real finished job (a tiny encoder trained a few steps on real UD-POS data: `last` and `dlfa` L2,
evaluated on German and French) and on the imported recorded reproduction."""
from __future__ import annotations

import functools

import pytest
from test_pages import REPO, no_errors, plotly_specs, recorded_job
from test_pages import page as pages_page

from dlfa.app import runs, session
from dlfa.results import read_job_results
from dlfa.testing import link_built

TIMEOUT = 120
page = functools.partial(pages_page, timeout=TIMEOUT)
pytestmark = pytest.mark.integration  # the views read jobs trained for this module


@pytest.fixture(scope="module")
def finished_job(tmp_path_factory, fixture_root):
    from dlfa.engine.spec import JobSpec
    from dlfa.jobs.store import JobStore
    from dlfa.testing import build_tiny_encoder
    from dlfa.engine.job import run_job

    cache = link_built(tmp_path_factory.mktemp("cache-views"))
    encoder = str(build_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder-views")))
    spec = JobSpec(task="udpos", eval_languages=("de", "fr"), encoder=encoder, data_root=str(fixture_root),
                   aggregations=("last", "dlfa"), fusion_layers=(2,), max_steps=5, max_train_examples=64,
                   max_eval_examples=30, batch_size=8, learning_rate=1e-3, bootstrap_samples=50, name="tiny views")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DLFA_CACHE_DIR", str(cache))
        store = JobStore(cache / "jobs.sqlite")
        job = store.submit(spec)
        assert store.claim_job(job.id) and store.mark_running(job.id)
        results = run_job(spec, job.out_dir)
        assert store.mark_completed(job.id)
        pairs = JobSpec(task="xnli", eval_languages=("de",), encoder=encoder, data_root=str(fixture_root),
                        aggregations=("dlfa",), fusion_layers=(2,), max_steps=3, max_train_examples=32,
                        max_eval_examples=40, batch_size=8, bootstrap_samples=50, name="tiny xnli")
        pair_job = store.submit(pairs)
        assert store.claim_job(pair_job.id) and store.mark_running(pair_job.id)
        run_job(pairs, pair_job.out_dir)
        assert store.mark_completed(pair_job.id)
    return {"cache": cache, "job": job, "encoder": encoder, "results": results, "pair_job": pair_job}


@pytest.fixture
def job_cache(finished_job, monkeypatch, fixture_root):
    monkeypatch.setenv("DLFA_CACHE_DIR", str(finished_job["cache"]))
    monkeypatch.setenv("DLFA_DATA_DIR", str(fixture_root))
    return finished_job




def unit_id(job, name: str) -> str:
    return f"{job.id}/{name}"


# ----------------------------------------------------------------------------------------------------
# Examples


def test_examples_filters_show_the_right_examples(job_cache):
    job = job_cache["job"]
    at = page("examples.py", ex_unit=unit_id(job, "dlfa-L2-s1"), ex_language="de").run()
    no_errors(at)
    table = at.dataframe[0].value
    assert len(table) == 30 and any(m.value.startswith("**30 of 30 examples**") for m in at.markdown)
    at.radio(key="ex_correct").set_value("with an error").run()
    wrong = at.dataframe[0].value
    assert len(wrong) and (wrong["errors"] > 0).all()
    assert any(m.value.startswith(f"**{len(wrong)} of 30 examples**") for m in at.markdown)
    at.radio(key="ex_correct").set_value("all").run()
    sentences_with = {tag: sum(tag in gold for gold in table["gold"]) for tag in at.selectbox(key="ex_gold").options}
    tag = next(tag for tag, count in sentences_with.items() if 0 < count < 30)  # a class some sentences lack
    at.selectbox(key="ex_gold").set_value(tag).run()
    with_tag = at.dataframe[0].value
    assert len(with_tag) == sentences_with[tag] and all(tag in gold for gold in with_tag["gold"])
    sentence = next(m.value for m in at.markdown if m.value.startswith("<div>#"))
    assert "<span style=" in sentence  # coloured words
    confusion = plotly_specs(at)[0]
    matrix = confusion["data"][0]["text"]
    words = sum(len(g) for g in table["gold"])
    assert sum(map(sum, matrix)) == words  # the confusion matrix counts every word of the 30 sentences


def test_examples_compares_two_runs_with_counts_adding_up(job_cache):
    job = job_cache["job"]
    at = page("examples.py", ex_unit=unit_id(job, "last-s1"), ex_language="fr",
              ex_other=unit_id(job, "dlfa-L2-s1")).run()
    no_errors(at)
    paired = next(d.value for d in at.dataframe if "fixed" in d.value.columns)
    assert set(paired["language"]) == {"de", "fr"}
    assert (paired["fixed"] + paired["broken"] + paired["both correct"] + paired["both wrong"] == paired["n"]).all()
    assert set(paired["test"]) == {"McNemar exact"} and paired["p"].between(0, 1).all()
    runs = {r["spec"]["aggregations"][0]: r for r in job_cache["results"]["runs"]}
    fr = paired.set_index("language").loc["fr"]
    assert fr["A"] == pytest.approx(runs["last"]["metrics"]["fr"]["value"])
    assert fr["B"] == pytest.approx(runs["dlfa"]["metrics"]["fr"]["value"])
    at.radio(key="ex_which").set_value("broken").run()
    broken = at.dataframe[-1].value
    assert len(broken) == fr["broken"] and (broken["errors B"] > broken["errors A"]).all()


def test_examples_of_a_pair_task_show_labels_with_confidence_and_filter_by_class(job_cache):
    at = page("examples.py", ex_unit=unit_id(job_cache["pair_job"], "dlfa-L2-s1")).run()
    no_errors(at)
    table = at.dataframe[0].value
    tested = read_job_results(job_cache["pair_job"].out_dir).runs[0].metrics["de"].n  # the run's German test items
    assert tested > 0 and len(table) == tested and table["confidence"].between(1 / 3, 1).all()
    assert set(table["gold"]) <= {"entailment", "neutral", "contradiction"} and " ‖ " in table["text"].iloc[0]
    at.selectbox(key="ex_gold").set_value("neutral").run()
    at.radio(key="ex_correct").set_value("correct").run()
    neutral = at.dataframe[0].value
    assert (neutral["gold"] == "neutral").all() and (neutral["pred"] == "neutral").all()
    assert len(neutral) == ((table["gold"] == "neutral") & (table["pred"] == "neutral")).sum()
    confusion = plotly_specs(at)[0]["data"][0]["text"]
    assert sum(map(sum, confusion)) == tested  # one count per example
    assert any(i.value.startswith("No other run kept predictions on the xnli test set") for i in at.info)


def test_examples_of_a_recorded_run_say_how_to_get_predictions(tmp_path, monkeypatch, fixture_root):
    from dlfa.jobs.store import JobStore

    monkeypatch.setenv("DLFA_CACHE_DIR", str(link_built(tmp_path / "cache")))
    monkeypatch.setenv("DLFA_DATA_DIR", str(fixture_root))
    JobStore().add_finished_under(runs.reproduction_record())
    job = recorded_job(JobStore().list(), "select/xnli-cls")
    unit = runs.job_units(job)[0]
    at = page("examples.py", ex_unit=unit_id(job, unit.name)).run()
    no_errors(at)
    message = at.info[0].value
    assert "model is not on this machine" in message
    spec_file = (job.out_dir / "results.json").relative_to(REPO).as_posix()
    assert f"python -m dlfa train --spec {spec_file} --aggregation " in message


# ----------------------------------------------------------------------------------------------------
# Projector


def scatter_points(spec: dict) -> dict[str, int]:
    return {t["name"]: len(t["x"]) for t in spec["data"] if t.get("mode") == "markers"}


def test_projector_shows_points_per_language_and_moves_with_the_layer_slider(job_cache):
    at = page("projector.py", **{session.ENCODER_KEY: job_cache["encoder"]}, pj_source="parallel-ud",
              pj_languages=["de", "fr"]).run()
    no_errors(at)
    at.slider(key="pj_count").set_value(10).run()
    at.button(key="pj_compute").click().run()
    no_errors(at)
    (spec, distance) = plotly_specs(at)
    assert scatter_points(spec) == {"English (en)": 10, "German (de)": 10, "French (fr)": 10}
    lines = next(t for t in spec["data"] if t.get("mode") == "lines")
    assert lines["x"].count(None) == 10  # one line per translation group
    assert len(distance["data"][0]["y"]) == 5  # the tiny encoder: layers 0…4
    assert "layer 4" in spec["layout"]["title"]["text"]
    last = spec["data"][1]["x"]
    at.slider(key="pj_layer").set_value(1).run()
    no_errors(at)
    moved = plotly_specs(at)[0]
    assert "layer 1" in moved["layout"]["title"]["text"] and moved["data"][1]["x"] != last


def test_projector_puts_a_fine_tuned_run_beside_its_base_encoder(job_cache):
    job = job_cache["job"]
    at = page("projector.py", pj_source="xnli", pj_languages=["de"], pj_count=5, pj_beside=True,
              pj_unit=unit_id(job, "dlfa-L2-s1")).run()
    at.button(key="pj_compute").click().run()
    no_errors(at)
    base, tuned, distance = plotly_specs(at)
    assert scatter_points(base) == scatter_points(tuned) == {"English (en)": 5, "German (de)": 5}
    assert [t["name"] for t in distance["data"]] == ["base", "fine-tuned"]
    assert any(c.value.startswith(f"Base encoder: `{job_cache['encoder']}` (the run's)") for c in at.caption)


def test_projector_word_mode_colours_words_by_tag(job_cache):
    at = page("projector.py", **{session.ENCODER_KEY: job_cache["encoder"]}, pj_mode="words",
              pj_languages=["en", "de"], pj_count=5).run()
    at.button(key="pj_compute").click().run()
    no_errors(at)
    by_tag = scatter_points(plotly_specs(at)[0])
    assert {"NOUN", "VERB", "DET"} <= set(by_tag)
    at.radio(key="pj_color").set_value("language").run()
    by_language = scatter_points(plotly_specs(at)[0])
    assert set(by_language) == {"English (en)", "German (de)"} and sum(by_language.values()) == sum(by_tag.values())


# ----------------------------------------------------------------------------------------------------
# Attention


def test_attention_shows_the_chosen_head_and_the_entropy_of_every_head(job_cache):
    at = page("attention.py", **{session.ENCODER_KEY: job_cache["encoder"]}, at_text="Der Hund bellt.",
              at_pair="The dog barks.").run()
    no_errors(at)
    heatmap, lines, entropy = plotly_specs(at)
    tokens = heatmap["data"][0]["x"]
    assert tokens[0] == "0:&lt;s&gt;" and any("Hund" in t for t in tokens) and any("dog" in t for t in tokens)
    assert len(heatmap["data"][0]["z"]) == len(tokens) and "layer 4, mean over heads" in heatmap["layout"]["title"]["text"]
    assert len(entropy["data"][0]["z"]) == 4 and len(entropy["data"][0]["z"][0]) == 4  # 4 layers × 4 heads
    at.slider(key="at_layer").set_value(2).run()
    at.selectbox(key="at_head").set_value(3).run()
    no_errors(at)
    heatmap = plotly_specs(at)[0]
    assert "layer 2, head 3" in heatmap["layout"]["title"]["text"]
    assert all(abs(sum(row) - 1) < 1e-4 for row in heatmap["data"][0]["z"])
    downloads = {d.proto.label: d for d in at.get("download_button")}
    assert {"Table (CSV)", "Data (JSON)"} <= set(downloads)
    at.button(key="at_make_png").click().run()
    no_errors(at)
    png = next(d for d in at.get("download_button") if d.proto.label == "Chart (PNG)")
    assert png.proto.url.endswith(".png") and not at.info  # kaleido rendered it (no "PNG export needs" note)


def test_attention_of_a_dlfa_run_puts_w_beside_the_fused_and_last_layer(job_cache):
    job = job_cache["job"]
    at = page("attention.py", at_source="a fine-tuned run", at_unit=unit_id(job, "dlfa-L2-s1"),
              at_text="Die Katze schläft.").run()
    no_errors(at)
    assert any(s.value.startswith("Fusion weight W beside the attention of layer 2") for s in at.subheader)
    specs = plotly_specs(at)
    w, fused, last = specs[3], specs[4], specs[5]
    assert len(w["data"][0]["y"]) == len(fused["data"][0]["x"]) == len(last["data"][0]["x"])
    assert fused["layout"]["title"]["text"] == "Fused layer 2" and last["layout"]["title"]["text"] == "Last layer 4"
