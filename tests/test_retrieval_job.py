"""Tatoeba as a job kind: `dlfa train --task tatoeba` and a stored job run by the worker measure every layer of an
encoder (or of a run's trained encoder, with a DLFA run's fused representation as the grid's row "dlfa") without
training and write results.json through dlfa.results; the spec's rules for a retrieval task; one-line errors; e5-small
on the real data."""
import json
import shutil

import pytest

from dlfa.analysis.retrieval import FUSED_ROW, fused_pooled_states, layer_scores
from dlfa.analysis.tatoeba_job import METRIC, job_tatoeba, load_run, xtreme_layer
from dlfa.cli.main import main
from dlfa.data.registry import DataSource, available_languages, task_source
from dlfa.data.tatoeba import read_tatoeba
from dlfa.engine.spec import JobSpec
from dlfa.errors import ConfigError, DataError
from dlfa.results import COMPLETED, JobResult, read_job_results


def train_tatoeba(capsys, *argv) -> tuple[int, str, str]:
    code = main(["train", "--task", "tatoeba", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.integration  # end to end on committed files: seconds each, too slow for the unit tier
def test_the_train_command_measures_every_layer_and_reports_xtremes_layer_per_language(tiny_encoder, fixture_root,
                                                                                       tmp_path, capsys):
    code, out, _ = train_tatoeba(capsys, "--encoder", tiny_encoder, "--eval-langs", "de,fr", "--data-root",
                                 str(fixture_root), "--max-eval-examples", "20", "--out", str(tmp_path / "job"))
    assert code == 0, out
    results = read_job_results(tmp_path / "job")
    grid = job_tatoeba(results)
    layer = xtreme_layer(4)
    assert results.status == COMPLETED and results.runs == () and results.extra["retrieval_layer"] == layer == 3
    assert grid.layers == [0, 1, 2, 3, 4] and grid.rows() == ["0", "1", "2", "3", "4"] and grid.fused is None
    assert grid.languages == ["de", "fr"] and grid.n_sentences == {"de": 20, "fr": 20}
    for language in ("de", "fr"):
        metric, cell = results.metrics[language], grid.cell(language, str(layer))
        assert metric.metric == METRIC and metric.n == 20
        assert (metric.value, metric.ci_low, metric.ci_high) == (cell.average.value, cell.average.ci_low,
                                                                 cell.average.ci_high)
        assert metric.ci_low <= metric.value <= metric.ci_high
        # the average is the mean of both directions, each kept in the grid
        assert cell.average.value == pytest.approx((cell.xx_to_en.value + cell.en_to_xx.value) / 2)
    table = [line.split() for line in out.splitlines() if line.startswith("tatoeba-L3")]
    assert [row[1] for row in table] == ["de", "fr"] and table[0][2] == METRIC

    # --layer picks another row of the same grid; a rerun with the same settings reuses the results
    code, _, _ = train_tatoeba(capsys, "--encoder", tiny_encoder, "--eval-langs", "de", "--data-root",
                               str(fixture_root), "--max-eval-examples", "20", "--layer", "0",
                               "--out", str(tmp_path / "layer0"))
    at_zero = read_job_results(tmp_path / "layer0")
    assert code == 0 and at_zero.extra["retrieval_layer"] == 0
    assert at_zero.metrics["de"].value == grid.cell("de", "0").average.value
    stamp = (tmp_path / "layer0" / "results.json").stat().st_mtime_ns
    code, out, _ = train_tatoeba(capsys, "--encoder", tiny_encoder, "--eval-langs", "de", "--data-root",
                                 str(fixture_root), "--max-eval-examples", "20", "--layer", "0",
                                 "--out", str(tmp_path / "layer0"))
    assert code == 0 and (tmp_path / "layer0" / "results.json").stat().st_mtime_ns == stamp


def saved_run(folder, encoder: str, aggregation: str):
    """A run's model folder as the engine saves it, with a randomly initialised aggregation (no training; the
    encoder's weights without its tokenizer, which is slow to load)."""
    import torch
    from transformers import AutoModel

    from dlfa.model.modeling import DlfaConfig, DlfaModel, HeadConfig

    torch.manual_seed(0)
    config = DlfaConfig(encoder=encoder, heads={"udpos": HeadConfig("token", ["NOUN", "VERB"])},
                        aggregation=aggregation, fusion_layer=1 if aggregation == "dlfa" else None)
    return DlfaModel(config, AutoModel.from_pretrained(encoder, add_pooling_layer=False)).save_pretrained(folder)


@pytest.mark.integration  # end to end on committed files: seconds each, too slow for the unit tier
def test_a_dlfa_runs_encoder_adds_its_fused_representation_as_the_row_dlfa(tiny_encoder, fixture_root, tmp_path,
                                                                          capsys):
    run = saved_run(tmp_path / "dlfa-run" / "model", tiny_encoder, "dlfa")
    code, out, _ = train_tatoeba(capsys, "--init-from", str(run), "--eval-langs", "de", "--data-root",
                                 str(fixture_root), "--max-eval-examples", "12", "--out", str(tmp_path / "job"))
    assert code == 0, out
    results = read_job_results(tmp_path / "job")
    assert results.spec["encoder"] == tiny_encoder and results.spec["init_from"] == str(run)
    grid = job_tatoeba(results)
    assert grid.rows() == ["0", "1", "2", "3", "4", FUSED_ROW] and set(grid.fused) == {"de"}

    # the row is the run's fusion module applied to the last layer and layer 1, mean-pooled: measured again here
    model, loaded = load_run(run, tiny_encoder)
    pairs = read_tatoeba(DataSource.resolve(fixture_root), "de", 12)
    expected = layer_scores(fused_pooled_states(model, loaded.tokenizer, pairs.other),
                            fused_pooled_states(model, loaded.tokenizer, pairs.english), grid.bootstrap_samples)
    assert grid.cell("de", FUSED_ROW) == expected


def test_a_retrieval_spec_trains_nothing_and_names_what_is_wrong(tiny_encoder, fixture_root, tmp_path):
    base = dict(task="tatoeba", eval_languages=("de", "fr"), encoder=tiny_encoder, data_root=str(fixture_root))
    assert JobSpec(**base).problems() == {}  # no English training data needed, the aggregation fields do not apply
    problems = JobSpec(**{**base, "eval_languages": ("de", "ko"), "retrieval_layer": 5,
                          "init_from": str(tmp_path / "missing")}).problems()
    assert problems == {
        "retrieval_layer": "layer 5 does not exist: this encoder has layers 0…4 (0 = embeddings)",
        "eval_languages": f"task tatoeba has no data for ko in the data root {fixture_root}; available: de, fr, zh",
    }
    assert JobSpec(**{**base, "intermediate_tasks": ("rte",)}).problems() == {
        "intermediate_tasks": "tatoeba trains nothing: leave the intermediate tasks empty"}
    other = JobSpec(task="udpos", eval_languages=("de",), retrieval_layer=3, init_from=str(tmp_path))
    assert set(other.problems(check_data=False, check_encoder=False)) == {"retrieval_layer"}  # init_from: trains from
    assert available_languages("tatoeba", DataSource.resolve(fixture_root)) == {
        "de": {"test": 30}, "fr": {"test": 30}, "zh": {"test": 30}}
    assert task_source("tatoeba", DataSource.resolve(fixture_root)) == "retrieval/tatoeba"
    assert task_source("tatoeba", DataSource.hub(lambda config, split: [])) == "hub google/xtreme"


def test_malformed_input_gives_one_line_errors_naming_the_file_and_line(tiny_encoder, fixture_root, tmp_path,
                                                                        capsys):
    root = tmp_path / "root"
    shutil.copytree(fixture_root / "retrieval", root / "retrieval")
    german = root / "retrieval" / "tatoeba" / "tatoeba.deu-eng.deu"
    lines = german.read_text(encoding="utf-8").splitlines()
    german.write_text("\n".join(lines[:3] + ["  "] + lines[4:]) + "\n", encoding="utf-8")
    code, _, err = train_tatoeba(capsys, "--encoder", tiny_encoder, "--eval-langs", "de", "--data-root", str(root),
                                 "--out", str(tmp_path / "job"))
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1, err
    assert errors[0].endswith(f"de is disabled: {german}:4: blank line: every line must hold one sentence"), err

    code, _, err = train_tatoeba(capsys, "--init-from", str(tmp_path), "--eval-langs", "de", "--data-root",
                                 str(fixture_root), "--out", str(tmp_path / "job"))
    assert code == 2 and f"--init-from {tmp_path}: not a finished run or a saved model" in err

    broken = JobResult({"task": "tatoeba", "eval_languages": ["de"]}, COMPLETED, extra={"tatoeba": {"scores": 1}})
    with pytest.raises(DataError, match="the job's 'tatoeba' grid is malformed"):
        job_tatoeba(broken)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "dlfa_config.json").write_text(json.dumps({"encoder": "embedded:e5-small"}))
    with pytest.raises(ConfigError, match=f"the run {model_dir} was trained from the encoder embedded:e5-small"):
        load_run(model_dir, tiny_encoder)


@pytest.mark.slow
def test_e5_small_as_a_tatoeba_job_on_the_real_data(data_root, tmp_path, capsys):
    code, out, _ = train_tatoeba(capsys, "--encoder", "embedded:e5-small", "--eval-langs", "de,fr", "--data-root",
                                 str(data_root), "--max-eval-examples", "50", "--out", str(tmp_path / "job"))
    assert code == 0, out
    results = read_job_results(tmp_path / "job")
    grid = job_tatoeba(results)
    assert results.extra["retrieval_layer"] == 7 and grid.layers == list(range(13))
    for language in ("de", "fr"):
        assert results.metrics[language].n == 50
        assert results.metrics[language].value > 60, results.metrics[language]
        assert grid.cell(language, "12").average.value > grid.cell(language, "0").average.value + 20


def test_a_stored_job_run_by_the_worker_shows_its_grid_and_accuracies_on_results(tiny_encoder, fixture_root, tmp_path,
                                                                   monkeypatch):
    from streamlit.testing.v1 import AppTest

    from dlfa.jobs.runner import run_stored_job
    from dlfa.jobs.store import JobStore
    from dlfa.paths import REPO_ROOT
    from dlfa.testing import link_built

    cache = link_built(tmp_path / "cache")
    monkeypatch.setenv("DLFA_CACHE_DIR", str(cache))
    monkeypatch.setenv("DLFA_DATA_DIR", str(fixture_root))
    store = JobStore(cache / "jobs.sqlite")
    run = saved_run(tmp_path / "dlfa-run" / "model", tiny_encoder, "dlfa")
    job = store.submit(JobSpec(task="tatoeba", eval_languages=("de", "fr", "zh"), encoder=tiny_encoder,
                               init_from=str(run), max_eval_examples=10, bootstrap_samples=50, name="tatoeba tiny"))
    assert run_stored_job(job.id, store) == 0  # the worker's code path: the store's job, run to its end
    done = store.get(job.id)
    assert done.status == COMPLETED and done.progress == 1.0 and "measuring zh (3/3)" in done.log_path.read_text()
    results = store.results(job.id)
    grid = job_tatoeba(results)
    rows = store.metrics(job.id)  # what `dlfa jobs show` prints
    assert [(r["unit"], r["language"], r["value"]) for r in rows] == [
        ("tatoeba", lang, results.metrics[lang].value) for lang in ("de", "fr", "zh")]

    at = AppTest.from_file(str(REPO_ROOT / "pages" / "results.py"), default_timeout=60)
    at.session_state["dlfa_selected_jobs"] = [job.id]
    at.run()
    assert not at.exception and not at.error, [e.value for e in (*at.exception, *at.error)]
    assert [s.value for s in at.subheader][:2] == ["Per-language table", "Tatoeba retrieval of tatoeba tiny"]
    assert any("The job's metrics are layer 3 (◆)" in c.value and "dlfa = the run" in c.value for c in at.caption)
    heatmap = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                   if json.loads(c.proto.spec)["data"][0]["type"] == "heatmap")["data"][0]
    assert heatmap["y"] == ["0", "1", "2", "3 ◆", "4", FUSED_ROW] and len(heatmap["x"]) == 3
    languages = grid.languages
    assert heatmap["z"][-1] == [grid.fused[lang].average.value for lang in languages]
    assert heatmap["z"][3] == [results.metrics[lang].value for lang in languages]
    table = at.dataframe[1].value  # after the per-language table of every chosen job
    assert sorted(table["code"]) == ["de", "fr", "zh"] and set(table["pairs"]) == {10}
    german = table[table["code"] == "de"].iloc[0]
    cell = grid.cell("de", "3")
    assert (german["xx→en"], german["en→xx"], german["mean"], german["ci_low"]) == (
        cell.xx_to_en.value, cell.en_to_xx.value, cell.average.value, cell.average.ci_low)


def test_the_launch_form_offers_tatoeba_and_submits_a_retrieval_job(tmp_path, monkeypatch, fixture_root):
    from types import SimpleNamespace

    from streamlit.testing.v1 import AppTest

    from dlfa.app import background
    from dlfa.paths import REPO_ROOT
    from dlfa.testing import link_built

    monkeypatch.setenv("DLFA_CACHE_DIR", str(link_built(tmp_path / "cache")))
    monkeypatch.setenv("DLFA_DATA_DIR", str(fixture_root))
    submitted = []
    monkeypatch.setattr(background, "submit", lambda spec: submitted.append(spec) or SimpleNamespace(id="job-1"))
    at = AppTest.from_file(str(REPO_ROOT / "pages" / "launch.py"), default_timeout=60)
    at.session_state["launch_task"] = "tatoeba"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    task = at.selectbox(key="launch_task")
    assert task.value == "tatoeba" and "tatoeba — retrieval, retrieval_accuracy" in task.options
    assert at.multiselect(key="launch_languages").options == ["German (de) · Germanic", "French (fr) · Romance",
                                                              "Chinese (zh) · Sino-Tibetan"]
    at.multiselect(key="launch_languages").set_value(["de", "fr"]).run()
    at.button(key="launch_submit").click().run()
    assert [s.value for s in at.success] == ["Submitted job `job-1`."], [e.value for e in at.error]
    (spec,) = submitted
    assert (spec.task, spec.eval_languages) == ("tatoeba", ("de", "fr"))


def test_a_stop_request_between_languages_writes_nothing(tiny_encoder, fixture_root, tmp_path):
    from dlfa.analysis.tatoeba_job import run_tatoeba_job
    from dlfa.engine.callbacks import Callback

    class StopAfterFirstLanguage(Callback):
        def __init__(self):
            self.languages = []

        def on_log(self, message: str) -> None:
            self.languages += [message.split()[1]] if message.startswith("measuring") else []

        def should_stop(self) -> bool:
            return bool(self.languages)

    stopper = StopAfterFirstLanguage()
    spec = JobSpec(task="tatoeba", eval_languages=("de", "fr"), encoder=tiny_encoder, data_root=str(fixture_root),
                   max_eval_examples=5, bootstrap_samples=0)
    assert run_tatoeba_job(spec, tmp_path, callbacks=(stopper,))["status"] == "stopped"
    assert stopper.languages == ["de"] and not (tmp_path / "results.json").exists()
