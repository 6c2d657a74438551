"""Exact match and F1 as the official SQuAD v1.1 and MLQA scripts compute them, and their bootstrap intervals.

The pinned values on real files were computed with the official scripts themselves (SQuAD's evaluate-v1.1.py,
facebookresearch/MLQA's mlqa_evaluation_v1.py) on the same predictions."""
import numpy as np
import pytest

from dlfa.data.qa import QaAnswer, QaExample, mlqa_files, read_squad_json, xquad_files
from dlfa.engine.qa_metrics import (
    bootstrap_mean_interval,
    exact_match,
    mixed_segmentation,
    mlqa_normalize,
    normalizer,
    qa_scores_with_intervals,
    question_scores,
    span_f1,
    squad_normalize,
)
from dlfa.errors import ConfigError


def test_squad_normalisation_is_the_official_one():
    assert squad_normalize("The Panthers' defense!") == "panthers defense"
    assert squad_normalize("  an   Apple a day ") == "apple day"
    assert squad_normalize("theory") == "theory"  # articles only as whole words
    assert squad_normalize("«Paris»") == "«paris»"  # ASCII punctuation only
    assert squad_normalize("der Hund") == "der hund"  # English articles only


def test_squad_exact_match_and_f1_known_cases():
    assert exact_match("the Broncos", ["Denver Broncos", "Broncos"]) == 1.0
    assert exact_match("Denver", ["Denver Broncos"]) == 0.0
    assert span_f1("Denver Broncos team", ["Broncos"]) == pytest.approx(0.5)  # precision 1/3, recall 1
    assert span_f1("Denver Broncos team", ["Broncos", "Denver Broncos"]) == pytest.approx(0.8)  # the best gold
    assert span_f1("", ["Broncos"]) == 0.0 and span_f1("the", ["a"]) == 0.0  # nothing left after normalising
    assert exact_match("the", ["a"]) == 1.0  # both normalise to "": the official script counts it as a match
    assert span_f1("北京大学", ["北京"]) == 0.0  # one whitespace token each


def test_mlqa_normalisation_per_language():
    assert mlqa_normalize("«Paris»!", "en") == "paris"  # every Unicode punctuation character
    assert mlqa_normalize("der Hund, die Katze", "de") == "hund katze"
    assert mlqa_normalize("los perros y la casa", "es") == "perros y casa"
    assert mlqa_normalize("của nhà", "vi") == "nhà"
    assert mlqa_normalize("الكتاب الكبير", "ar") == "كتاب كبير"
    assert mlqa_normalize("فالكتاب", "ar") == "ف كتاب"  # the script's pattern removes "ال" anywhere in a word
    assert mlqa_normalize("北京大学2015年，", "zh") == "北 京 大 学 2015 年"
    assert mlqa_normalize("the end", "zh") == "the end"  # no articles in Chinese
    assert mixed_segmentation("IBM主机 system。") == ["IBM", "主", "机", "system", "。"]
    with pytest.raises(ConfigError, match="MLQA's evaluation knows no language 'ru'"):
        mlqa_normalize("x", "ru")
    with pytest.raises(ConfigError, match="unknown normalisation 'bleu'"):
        normalizer("bleu", "en")


def test_mlqa_chinese_f1_counts_characters():
    chinese = normalizer("mlqa", "zh")
    assert span_f1("北京大学", ["北京"], chinese) == pytest.approx(2 / 3)  # precision 2/4, recall 1
    assert exact_match("北京大学。", ["北京大学"], chinese) == 1.0


def _left_context_prediction(example: QaExample) -> str:
    """The gold answer with up to 6 characters of left context: partly right, so EM and F1 both discriminate."""
    answer = example.answers[0]
    return example.context[max(0, answer.start - 6) : answer.end]


@pytest.mark.parametrize("language, em, f1", [
    ("en", 3.9495798319327733, 75.12386022046734),
    ("de", 2.0168067226890756, 72.75459117217774),
    ("zh", 3.9495798319327733, 59.344028520498775),
])
def test_xquad_scores_match_the_official_squad_script(data_root, language, em, f1):
    examples = read_squad_json(xquad_files(data_root / "qa" / "xquad")[language], language)
    predictions = {e.id: _left_context_prediction(e) for e in examples}
    scores = qa_scores_with_intervals(examples, predictions, "squad", samples=0)
    assert scores["exact_match"]["value"] == pytest.approx(em, abs=1e-9)
    assert scores["span_f1"]["value"] == pytest.approx(f1, abs=1e-9)


@pytest.mark.parametrize("language, em, f1", [
    ("en", 4.790940766550523, 74.86726140617938),
    ("de", 10.3515625, 77.02755227129836),
    ("ar", 1.9342359767891684, 74.39902629454382),
    ("zh", 5.9523809523809526, 63.36236509408986),
])
def test_mlqa_scores_match_the_official_mlqa_script(data_root, language, em, f1):
    path = mlqa_files(data_root / "qa" / "mlqa_dev")[(language, language)]
    examples = read_squad_json(path, language)
    predictions = {e.id: _left_context_prediction(e) for e in examples}
    scores = qa_scores_with_intervals(examples, predictions, "mlqa", samples=0)
    assert scores["exact_match"]["value"] == pytest.approx(em, abs=1e-9)
    assert scores["span_f1"]["value"] == pytest.approx(f1, abs=1e-9)
    if language == "zh":  # the SQuAD normalisation scores Chinese differently (no character tokens)
        squad = qa_scores_with_intervals(examples, predictions, "squad", samples=0)
        assert abs(squad["span_f1"]["value"] - f1) > 5


def _questions(n: int) -> list[QaExample]:
    return [QaExample(f"q{i}", "?", "red green blue", (QaAnswer("green", 4),), "0.0", "en", "en") for i in range(n)]


def test_missing_predictions_score_zero():
    examples = _questions(4)
    scores = question_scores(examples, {"q0": "green", "q1": "green blue", "q2": "red"})
    assert scores.tolist() == [[1.0, 1.0], [0.0, pytest.approx(2 / 3)], [0.0, 0.0], [0.0, 0.0]]


def test_intervals_bracket_the_value_and_are_seeded():
    examples = _questions(200)
    rng = np.random.default_rng(0)
    predictions = {e.id: ("green" if rng.random() < 0.6 else "green blue") for e in examples}
    scores = qa_scores_with_intervals(examples, predictions, samples=500, seed=3)
    em, f1 = scores["exact_match"], scores["span_f1"]
    assert em["metric"] == "exact_match" and f1["metric"] == "span_f1" and em["n"] == f1["n"] == 200
    assert em["ci_low"] < em["value"] < em["ci_high"] and f1["ci_low"] < f1["value"] < f1["ci_high"]
    # EM is a proportion p: the 95% interval is about p ± 1.96 sqrt(p (1 - p) / n)
    half = 1.96 * np.sqrt(em["value"] / 100 * (1 - em["value"] / 100) / 200) * 100
    assert em["ci_high"] - em["ci_low"] == pytest.approx(2 * half, rel=0.2)
    assert qa_scores_with_intervals(examples, predictions, samples=500, seed=3) == scores
    assert qa_scores_with_intervals(examples, predictions, samples=500, seed=4)["exact_match"] != em


def test_intervals_of_degenerate_samples():
    assert bootstrap_mean_interval(np.array([]), 100) == (None, None)
    assert bootstrap_mean_interval(np.array([100.0, 100.0, 100.0]), 100) == (100.0, 100.0)
    assert bootstrap_mean_interval(np.array([0.0, 100.0]), 0) == (None, None)
    empty = qa_scores_with_intervals([], {}, samples=100)
    assert empty["exact_match"] == {"metric": "exact_match", "value": 0.0, "ci_low": None, "ci_high": None, "n": 0}
