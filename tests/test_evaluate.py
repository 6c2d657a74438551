"""Metrics with bootstrap intervals, fusion statistics, prediction on datasets and on typed text."""
import numpy as np
import pytest
import torch
from seqeval.metrics import f1_score

from dlfa.model.encoders import load_tokenizer
from dlfa.errors import ConfigError
from dlfa.engine.evaluate import FusionStatistics, fusion_weights_for_text, predict, predict_dataset
from dlfa.engine.metrics import (
    SCORE_RANGE, at_majority, bootstrap_interval, example_statistics, mean_interval, score, score_with_interval,
)
from dlfa.model.modeling import DlfaConfig, DlfaModel, HeadConfig
from dlfa.data.base import IGNORE_INDEX, Example, TaskInfo, encode_examples
from dlfa.engine.datasets import EncodedDataset

NER = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
POS = TaskInfo("pos", "token", ("NOUN", "VERB", "PUNCT"), "accuracy")


def test_accuracy_f1_and_mcc_match_their_definitions():
    gold, pred = [1, 1, 0, 0, 1, 0], [1, 0, 0, 1, 1, 0]
    tp, tn, fp, fn = 2, 2, 1, 1
    assert score("accuracy", gold, pred, ["a", "b"]) == pytest.approx(100 * 4 / 6)
    assert score("f1", gold, pred, ["a", "b"]) == pytest.approx(100 * 2 * tp / (2 * tp + fp + fn))
    mcc = (tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert score("mcc", gold, pred, ["a", "b"]) == pytest.approx(100 * mcc)
    assert score("mcc", [0, 1, 2, 2], [0, 1, 2, 2], ["a", "b", "c"]) == pytest.approx(100)


def test_token_accuracy_counts_tokens_not_sentences():
    gold, pred = [[0, 1, 2], [0]], [[0, 1, 1], [1]]
    assert score("accuracy", gold, pred, ["a", "b", "c"]) == pytest.approx(100 * 2 / 4)


def test_entity_f1_equals_seqeval_micro_f1():
    rng = np.random.default_rng(0)
    gold = [rng.integers(0, len(NER), rng.integers(1, 12)).tolist() for _ in range(60)]
    pred = [[t if rng.random() < 0.7 else int(rng.integers(0, len(NER))) for t in g] for g in gold]
    expected = f1_score([[NER[t] for t in g] for g in gold], [[NER[t] for t in p] for p in pred])
    assert score("entity_f1", gold, pred, NER) == pytest.approx(100 * expected)


def test_bootstrap_interval_brackets_the_value_and_shrinks_with_more_data():
    rng = np.random.default_rng(1)
    small_gold = rng.integers(0, 2, 100).tolist()
    big_gold = rng.integers(0, 2, 2000).tolist()
    flip = lambda g: [y if rng.random() < 0.8 else 1 - y for y in g]  # noqa: E731
    small = score_with_interval("accuracy", small_gold, flip(small_gold), ["a", "b"], samples=500, seed=3)
    big = score_with_interval("accuracy", big_gold, flip(big_gold), ["a", "b"], samples=500, seed=3)
    for result in (small, big):
        assert result["ci_low"] <= result["value"] <= result["ci_high"]
    assert big["ci_high"] - big["ci_low"] < small["ci_high"] - small["ci_low"]
    assert small["n"] == 100 and small["metric"] == "accuracy"
    stats = example_statistics("accuracy", small_gold, small_gold, ["a", "b"])
    assert bootstrap_interval("accuracy", stats, 200, seed=5) == bootstrap_interval("accuracy", stats, 200, seed=5)


def test_mean_interval_over_seeds():
    mean, low, high = mean_interval([80.0, 82.0, 84.0])
    assert mean == pytest.approx(82.0) and low < 80.0 and high > 84.0  # t(0.975, 2) · 2 / √3 ≈ 4.97
    assert mean_interval([70.0]) == (70.0, None, None)


def test_mean_interval_is_clipped_to_the_range_a_score_can_take():
    """Three seeds that scatter widely near 100: the t-interval reaches past 100, which no accuracy can."""
    mean, low, high = mean_interval([99.0, 60.0, 98.0])
    assert high > 100.0
    assert mean_interval([99.0, 60.0, 98.0], bounds=SCORE_RANGE) == (mean, low, 100.0)
    assert mean_interval([1.0, 40.0, 2.0], bounds=SCORE_RANGE)[1] == 0.0


def test_a_score_at_least_one_point_above_the_majority_class_counts_as_learned():
    """The one rule every "learned nothing" verdict reads (runs, intermediate tasks, the report, the study)."""
    assert at_majority(50.99, 50.0) and at_majority(33.0, 40.0)  # less than 1 point above, or below
    assert not at_majority(51.0, 50.0) and not at_majority(71.0, 50.0)


def test_fusion_statistics_average_real_tokens_per_position_and_tag():
    stats = FusionStatistics(list(POS.labels), positions=4)
    weights = torch.tensor([[0.2, 0.4, 0.6], [0.8, 1.0, 0.0]])[..., None].expand(2, 3, 5)  # B × T × E
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    labels = torch.tensor([[IGNORE_INDEX, 0, 1], [IGNORE_INDEX, 0, IGNORE_INDEX]])
    stats.add(weights, mask, labels)
    result = stats.result()
    assert result["mean_last"] == pytest.approx((0.2 + 0.4 + 0.6 + 0.8 + 1.0) / 5)
    assert result["mean_low"] == pytest.approx(1 - result["mean_last"])
    assert result["per_position"] == pytest.approx([0.5, 0.7, 0.6])
    assert result["per_tag"] == pytest.approx({"NOUN": 0.7, "VERB": 0.6})


@pytest.fixture(scope="module")
def tiny_model(tiny_encoder):
    heads = {"pos": HeadConfig("token", list(POS.labels)), "nli": HeadConfig("pair", ["yes", "no"])}
    torch.manual_seed(0)
    return DlfaModel.from_encoder_spec(DlfaConfig(tiny_encoder, heads, "dlfa", fusion_layer=1))


def test_predict_dataset_returns_labeled_positions_in_dataset_order(tiny_model, tiny_encoder):
    tokenizer = load_tokenizer(tiny_encoder)
    examples = [Example(words=tuple("a b c d e f".split()[:n]), tags=("NOUN",) * n) for n in (2, 6, 1, 4)]
    split = encode_examples(examples, POS, tokenizer, max_length=32, language="en", split="test")
    dataset = EncodedDataset(split, tokenizer.pad_token_id)
    stats = FusionStatistics(list(POS.labels))
    gold, pred = predict_dataset(tiny_model, dataset, torch.device("cpu"), batch_size=3, fusion=stats)
    assert [len(g) for g in gold] == [2, 6, 1, 4] and [len(p) for p in pred] == [2, 6, 1, 4]
    assert all(set(g) == {0} for g in gold)
    assert stats.count == int(dataset.lengths.sum()) and set(stats.result()["per_tag"]) == {"NOUN"}


def test_predict_on_typed_text(tiny_model, tiny_encoder):
    tokenizer = load_tokenizer(tiny_encoder)
    tagged = predict(tiny_model, tokenizer, "我 喜欢 北京 。", task="pos")
    assert tagged["words"] == ["我", "喜欢", "北京", "。"] and all(t in POS.labels for t in tagged["tags"])
    pairs = predict(tiny_model, tokenizer, [("A man sleeps.", "Ein Mann schläft."), ("Yes", "No")], task="nli")
    assert len(pairs) == 2 and sum(pairs[0]["scores"].values()) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="no head"):
        predict(tiny_model, tokenizer, "x", task="ner")


def test_fusion_weights_for_text(tiny_model, tiny_encoder):
    tokenizer = load_tokenizer(tiny_encoder)
    out = fusion_weights_for_text(tiny_model, tokenizer, "Der Hund schläft.", task="pos")
    T = len(out["tokens"])
    assert out["tokens"][0] == "<s>" and len(out["weights"]) == T and len(out["weights"][0]) == 32
    assert all(0 < w < 1 for row in out["weights"] for w in row)
    assert out["per_token_mean"] == pytest.approx(np.mean(out["weights"], axis=1).tolist(), abs=1e-6)
    assert out["fusion_layer"] == 1
    last = DlfaModel(DlfaConfig("x", {"pos": HeadConfig("token", ["A"])}, "last"), tiny_model.encoder)
    with pytest.raises(ConfigError, match="only for the dlfa"):
        fusion_weights_for_text(last, tokenizer, "x")


def test_encoded_dataset_pads_dynamically(tiny_encoder):
    tokenizer = load_tokenizer(tiny_encoder)
    sentences = TaskInfo("s", "sentence", ("a", "b"), "accuracy")
    split = encode_examples([Example(text="short", label="a"), Example(text="a much longer sentence here", label="b")],
                            sentences, tokenizer, max_length=32)
    dataset = EncodedDataset(split, tokenizer.pad_token_id)
    batch = dataset.collate(np.array([1, 0]))
    assert batch["input_ids"].shape == (2, dataset.lengths.max()) and batch["labels"].tolist() == [1, 0]
    assert batch["attention_mask"].sum(1).tolist() == [dataset.lengths[1], dataset.lengths[0]]
    assert (batch["input_ids"][1][dataset.lengths[0]:] == tokenizer.pad_token_id).all()
