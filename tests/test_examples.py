"""Per-example predictions (dlfa.engine.evaluate.write_predictions, written by every evaluation) and their explorer
library (dlfa.analysis.examples): the join with the test text, filters, confusion matrices, and the paired comparison.

Unit tests use hand-made predictions; `tiny_sweep` trains a tiny encoder a few steps on real UD-POS and
PAWS-X data (last vs dlfa L2) and checks what the evaluation kept."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from dlfa.analysis import examples
from dlfa.engine.evaluate import predictions_path, write_predictions
from dlfa.data.base import TaskInfo
from dlfa.results import COMPLETED, RunResult, read_job_results, write_results

POS = TaskInfo("pos", "token", ("NOUN", "VERB", "DET"), "accuracy")
NLI = TaskInfo("nli", "pair", ("yes", "no"), "accuracy")
NER = TaskInfo("ner", "token", ("O", "B-PER", "I-PER"), "entity_f1")


def fake_run(folder: Path, task: TaskInfo, gold: list, pred: list, confidences=None, language: str = "de") -> RunResult:
    write_predictions(predictions_path(folder, language), task, gold, pred, confidences)
    return RunResult({"task": task.name, "aggregations": ["last"], "seeds": [1], "data_root": None}, COMPLETED)


def load(folder: Path, task: TaskInfo, results: RunResult, language: str = "de") -> examples.LanguagePredictions:
    from unittest import mock

    with mock.patch("dlfa.data.registry.get_task", return_value=task):
        return examples.load_language(results, folder, language)


def test_write_predictions_keeps_label_names_and_confidence_per_example(tmp_path):
    write_predictions(tmp_path / "p" / "de.jsonl.gz", NLI, [0, 1], [1, 1], [0.75, 0.9])
    with gzip.open(tmp_path / "p" / "de.jsonl.gz", "rt") as handle:
        rows = [json.loads(line) for line in handle]
    assert rows == [{"gold": "yes", "pred": "no", "confidence": 0.75}, {"gold": "no", "pred": "no", "confidence": 0.9}]
    assert not list((tmp_path / "p").glob("*.partial"))


def test_filters_select_the_right_examples(tmp_path):
    gold = [[0, 1], [0, 2, 0], [1], [2, 2, 2, 2]]
    pred = [[0, 1], [0, 0, 0], [0], [2, 2, 2, 2]]
    data = load(tmp_path, POS, fake_run(tmp_path, POS, gold, pred))
    assert not data.with_text and list(data.table["errors"]) == [0, 1, 1, 0]
    assert list(examples.filter_examples(data, correct=False)["index"]) == [1, 2]
    assert list(examples.filter_examples(data, correct=True, gold_label="DET")["index"]) == [3]
    assert list(examples.filter_examples(data, gold_label="VERB", length=(1, 1))["index"]) == [2]
    assert list(examples.filter_examples(data, length=(2, 3))["index"]) == [0, 1]


def test_confusion_matrix_and_worst_labels(tmp_path):
    data = load(tmp_path, POS, fake_run(tmp_path, POS, [[0, 1], [0, 2, 0], [1]], [[0, 1], [0, 0, 0], [0]]))
    matrix = examples.confusion_matrix(data)
    assert matrix.loc["DET", "NOUN"] == 1 and matrix.loc["VERB", "NOUN"] == 1 and matrix.loc["NOUN", "NOUN"] == 3
    assert int(matrix.to_numpy().sum()) == 6
    scores = examples.label_scores(data)
    assert list(scores["label"]) == ["DET", "VERB", "NOUN"]  # DET never right (F1 0), VERB 1 of 2, NOUN all
    assert scores.loc[1, "recall"] == pytest.approx(50.0) and scores.loc[2, "precision"] == pytest.approx(60.0)


def test_mcnemar_is_the_exact_binomial_on_discordant_items():
    assert examples.mcnemar_exact(0, 0) == 1.0
    assert examples.mcnemar_exact(10, 0) == pytest.approx(2 * 0.5**10)
    assert examples.mcnemar_exact(7, 3) == pytest.approx(0.34375)  # 2 · P(X ≥ 7), X ~ Bin(10, 1/2)


def test_paired_comparison_counts_add_up_and_use_mcnemar_for_accuracy(tmp_path):
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 2, 200).tolist()
    pred_a = [g if rng.random() < 0.6 else 1 - g for g in gold]
    pred_b = [g if rng.random() < 0.9 else 1 - g for g in gold]
    a = load(tmp_path / "a", NLI, fake_run(tmp_path / "a", NLI, gold, pred_a, [0.5] * 200))
    b = load(tmp_path / "b", NLI, fake_run(tmp_path / "b", NLI, gold, pred_b, [0.5] * 200))
    result = examples.compare(a, b, samples=500)
    assert result.fixed + result.broken + result.both_correct + result.both_wrong == result.n == 200
    assert (result.fixed, result.broken) == (result.b_only, result.a_only)  # one item per example
    assert result.test == "McNemar exact" and result.p_value == examples.mcnemar_exact(result.fixed, result.broken)
    assert result.delta > 20 and result.p_value < 1e-6 and result.delta_low > 0
    fixed = examples.changed_examples(a, b, "fixed")
    assert len(fixed) == result.fixed and (fixed["errors A"] > fixed["errors B"]).all()
    assert len(examples.changed_examples(a, b, "broken")) == result.broken


def test_paired_bootstrap_for_f1_sees_no_difference_between_identical_runs(tmp_path):
    gold = [[1, 2, 0], [0, 0], [1, 0]] * 20
    pred = [[1, 2, 0], [1, 0], [0, 0]] * 20
    a = load(tmp_path / "a", NER, fake_run(tmp_path / "a", NER, gold, pred))
    same = examples.compare(a, a, samples=300)
    assert same.test == "paired bootstrap" and same.delta == 0 and same.p_value == 1.0
    assert same.delta_low == same.delta_high == 0
    b = load(tmp_path / "b", NER, fake_run(tmp_path / "b", NER, gold, gold))
    better = examples.compare(a, b, samples=300)
    assert better.value_b == 100 and better.delta_low > 0 and better.p_value < 0.01
    assert better.fixed == 40 and better.broken == 0 and better.both_correct == 20


def test_runs_on_other_test_sets_are_refused(tmp_path):
    a = load(tmp_path / "a", NLI, fake_run(tmp_path / "a", NLI, [0, 1], [0, 1], [1, 1]))
    b = load(tmp_path / "b", NLI, fake_run(tmp_path / "b", NLI, [1, 1], [0, 1], [1, 1]))
    with pytest.raises(examples.DataError, match="other gold labels"):
        examples.compare(a, b)


def test_missing_or_broken_predictions_give_a_clear_message(tmp_path):
    results = RunResult({"task": "udpos", "aggregations": ["dlfa"], "fusion_layers": [6], "seeds": [2]}, COMPLETED)
    folder = tmp_path / "job" / "dlfa-L6-s2"
    message = examples.missing_predictions_message(results, folder, "../shared/data")
    assert "model is not on this machine" in message
    assert "--aggregation dlfa --fusion-layer 6 --seed 2 --data-root ../shared/data" in message
    grid_unit = RunResult({**results.spec, "learning_rate": 5e-5, "learning_rates": [5e-5]}, COMPLETED)
    assert "--fusion-layer 6 --lr 5e-05 --seed 2 " in examples.missing_predictions_message(grid_unit, folder)
    with pytest.raises(examples.DataError, match="no predictions for 'de'"):
        examples.read_prediction_rows(folder, "de")
    path = predictions_path(folder, "de")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not gzip")
    with pytest.raises(examples.DataError, match="unreadable predictions"):
        examples.read_prediction_rows(folder, "de")


# ----------------------------------------------------------------------------------------------------
# A real evaluation keeps its predictions


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory, tiny_encoder, fixture_root):
    from dlfa.engine.spec import JobSpec
    from dlfa.engine.job import run_job

    out = tmp_path_factory.mktemp("sweep")
    spec = JobSpec(task="udpos", eval_languages=("de", "fr"), encoder=tiny_encoder, data_root=str(fixture_root),
                   aggregations=("last", "dlfa"), fusion_layers=(2,), max_steps=3, max_train_examples=32,
                   max_eval_examples=24, batch_size=8, learning_rate=1e-3, bootstrap_samples=20)
    return out, run_job(spec, out)


def test_evaluation_keeps_predictions_that_reproduce_its_metrics(tiny_sweep):
    out, results = tiny_sweep
    for run in read_job_results(out).runs:
        folder = out / ("last-s1" if run.aggregation == "last" else "dlfa-L2-s1")
        assert examples.prediction_languages(folder) == ["de", "fr"]
        data = examples.load_language(run, folder, "de")
        assert data.with_text and len(data.table) == run.metrics["de"].n == 24
        first = data.table.iloc[0]
        assert len(first["words"]) == len(first["gold"]) == len(first["pred"]) and first["text"].split() == first["words"]
        items = examples.confusion_matrix(data).to_numpy()
        assert 100 * np.trace(items) / items.sum() == pytest.approx(run.metrics["de"].value)


def test_paired_comparison_of_two_real_runs(tiny_sweep):
    out, results = tiny_sweep
    last, dlfa = (examples.load_language(run, out / name, "fr")
                  for run, name in zip(read_job_results(out).runs, ("last-s1", "dlfa-L2-s1")))
    result = examples.compare(last, dlfa, samples=200)
    assert result.fixed + result.broken + result.both_correct + result.both_wrong == 24
    assert result.value_a == pytest.approx(results["runs"][0]["metrics"]["fr"]["value"])
    assert result.value_b == pytest.approx(results["runs"][1]["metrics"]["fr"]["value"])
    assert result.items == sum(map(len, last.table["gold"])) and 0 <= result.p_value <= 1


def test_compare_runs_pairs_two_run_folders_on_every_language(tiny_sweep, tmp_path):
    out, results = tiny_sweep
    comparisons = examples.compare_runs(out / "last-s1", out / "dlfa-L2-s1", samples=100)
    assert [c.language for c in comparisons] == ["de", "fr"]
    assert all(c.fixed + c.broken + c.both_correct + c.both_wrong == c.n == 24 for c in comparisons)
    assert comparisons[0].value_b == pytest.approx(results["runs"][1]["metrics"]["de"]["value"])
    bare = tmp_path / "bare"
    bare.mkdir()
    recorded = RunResult(results["runs"][0]["spec"], COMPLETED, model_dir="model")  # a recorded run: no predictions
    write_results(bare, recorded)
    with pytest.raises(examples.DataError, match="To get its per-example predictions"):
        examples.compare_runs(out / "last-s1", bare)


def test_test_data_that_changed_since_the_evaluation_is_refused(tiny_sweep, fixture_root):
    from dlfa.engine.evaluate import write_predictions as write
    from dlfa.data.registry import get_task

    out, results = tiny_sweep
    folder = out / "last-s1"
    rows = examples.read_prediction_rows(folder, "de")
    info = get_task("udpos")
    gold = [[info.label_id(tag) for tag in row["gold"]] for row in rows]
    gold[3][0] = (gold[3][0] + 1) % len(info.labels)  # one gold tag that the data does not have
    write(predictions_path(out / "changed", "de"), info, gold, gold)
    with pytest.raises(examples.DataError, match="example 4 has other gold labels"):
        examples.load_language(read_job_results(out).runs[0], out / "changed", "de")
