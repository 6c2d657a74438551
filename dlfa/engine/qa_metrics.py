"""Exact match and F1 of extractive question answering, as the official evaluation scripts compute them, with
per-language 95% bootstrap intervals over questions.

Two normalisations, chosen per task:
- "squad": the official SQuAD v1.1 script (evaluate-v1.1.py, also XQuAD's and XTREME's for XQuAD): lower case,
  drop ASCII punctuation (string.punctuation), drop the English articles a / an / the, split on whitespace.
- "mlqa": the official MLQA script (facebookresearch/MLQA, mlqa_evaluation_v1.py), which needs the answer's
  language (the context's): punctuation is every Unicode character of a category P* plus string.punctuation;
  articles per language (en: a an the; es: un una unos unas el la los las; de: ein eine einen einem eines einer
  der die das den dem des; vi: của là cái chiếc những; ar: every "ال", as the script's pattern `\\sال^|ال`
  removes it anywhere; hi, zh: none); tokens: whitespace, except zh, where each CJK ideograph (U+4E00-U+9FA5)
  and each punctuation character is a token of its own ("mixed segmentation"). Other languages are refused,
  as the script refuses them.
Both: a prediction's score is its best over the gold answers; F1 is the bag-of-tokens F1 (0 when no token is
shared); a question without a prediction scores 0.
"""
from __future__ import annotations

import re
import string
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache

import numpy as np

from dlfa.errors import ConfigError
from dlfa.data.qa import QaExample

QA_METRICS = ("exact_match", "span_f1")
NORMALIZATIONS = ("squad", "mlqa")

_SQUAD_PUNCTUATION = frozenset(string.punctuation)
_SQUAD_ARTICLES = re.compile(r"\b(a|an|the)\b")
_MLQA_ARTICLES = {
    "en": re.compile(r"\b(a|an|the)\b"),
    "es": re.compile(r"\b(un|una|unos|unas|el|la|los|las)\b"),
    "vi": re.compile(r"\b(của|là|cái|chiếc|những)\b"),
    "de": re.compile(r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b"),
    "ar": re.compile(r"\sال^|ال"),
    "hi": None,
    "zh": None,
}
_CJK = re.compile(r"[\u4e00-\u9fa5]")


@lru_cache(maxsize=1)
def unicode_punctuation() -> frozenset[str]:
    """The MLQA script's PUNCT: every character of a Unicode category P*, and string.punctuation (built once)."""
    return frozenset(chr(i) for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P")) | (
        _SQUAD_PUNCTUATION)


def squad_normalize(text: str) -> str:
    """The SQuAD v1.1 script's normalize_answer."""
    text = "".join(ch for ch in text.lower() if ch not in _SQUAD_PUNCTUATION)
    return " ".join(_SQUAD_ARTICLES.sub(" ", text).split())


def mixed_segmentation(text: str) -> list[str]:
    """The MLQA script's Chinese tokens: each CJK ideograph and punctuation character alone, whitespace-split
    runs of anything else."""
    punctuation = unicode_punctuation()
    tokens, run = [], ""
    for char in text:
        if _CJK.search(char) or char in punctuation:
            tokens.extend(run.split())
            run = ""
            tokens.append(char)
        else:
            run += char
    return tokens + run.split()


def mlqa_normalize(text: str, language: str) -> str:
    """The MLQA script's normalize_answer for an answer in `language`."""
    if language not in _MLQA_ARTICLES:
        raise ConfigError(f"MLQA's evaluation knows no language '{language}': "
                          f"choose one of {', '.join(_MLQA_ARTICLES)}")
    punctuation = unicode_punctuation()
    text = "".join(ch for ch in text.lower() if ch not in punctuation)
    if _MLQA_ARTICLES[language] is not None:
        text = _MLQA_ARTICLES[language].sub(" ", text)
    tokens = mixed_segmentation(text) if language == "zh" else text.split()
    return " ".join(token for token in tokens if token.strip())


def normalizer(normalization: str, language: str) -> Callable[[str], str]:
    """The normalize function of "squad" or "mlqa" (for answers in `language`)."""
    if normalization == "squad":
        return squad_normalize
    if normalization == "mlqa":
        mlqa_normalize("", language)  # refuse an unknown language before any scoring
        return lambda text: mlqa_normalize(text, language)
    raise ConfigError(f"unknown normalisation '{normalization}': choose one of {', '.join(NORMALIZATIONS)}")


def exact_match(prediction: str, golds: Sequence[str], normalize: Callable[[str], str] = squad_normalize) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer, else 0.0."""
    return float(max(normalize(prediction) == normalize(gold) for gold in golds))


def span_f1(prediction: str, golds: Sequence[str], normalize: Callable[[str], str] = squad_normalize) -> float:
    """The best bag-of-tokens F1 (0-1) of the prediction against the gold answers."""
    predicted = normalize(prediction).split()
    best = 0.0
    for gold in golds:
        expected = normalize(gold).split()
        shared = sum((Counter(predicted) & Counter(expected)).values())
        if shared:
            precision, recall = shared / len(predicted), shared / len(expected)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def question_scores(
    examples: Sequence[QaExample], predictions: Mapping[str, str], normalization: str = "squad"
) -> np.ndarray:
    """N × 2 per-question (exact match, F1), each 0-1, for the examples of one language (the answers'
    language is each example's `language`); a question without a prediction scores (0, 0)."""
    scores = np.zeros((len(examples), 2))
    for row, example in enumerate(examples):
        if example.id in predictions:
            normalize = normalizer(normalization, example.language)
            golds = [answer.text for answer in example.answers]
            prediction = predictions[example.id]
            scores[row] = exact_match(prediction, golds, normalize), span_f1(prediction, golds, normalize)
    return scores


def bootstrap_mean_interval(
    values: np.ndarray, samples: int, seed: int = 0, confidence: float = 0.95
) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of the mean of `values` (N,) over resampled questions (scipy);
    (None, None) when there is nothing to resample."""
    from scipy import stats

    if len(values) == 0 or samples < 1:
        return None, None
    if len(values) == 1 or np.ptp(values) == 0:  # every resample has the same mean
        return float(values[0]), float(values[0])
    result = stats.bootstrap((np.asarray(values, dtype=np.float64),), np.mean, n_resamples=samples,
                             confidence_level=confidence, method="percentile",
                             random_state=np.random.default_rng(seed))  # `rng=` only from scipy 1.15
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def qa_scores_with_intervals(
    examples: Sequence[QaExample],
    predictions: Mapping[str, str],
    normalization: str = "squad",
    samples: int = 1000,
    seed: int = 0,
) -> dict[str, dict]:
    """{"exact_match": {...}, "span_f1": {...}}, each {"metric", "value", "ci_low", "ci_high", "n"} in points
    (0-100) like dlfa.engine.metrics.score_with_interval, n = the number of questions; both intervals resample
    the same questions (one seed)."""
    scores = question_scores(examples, predictions, normalization)
    out = {}
    for column, metric in enumerate(QA_METRICS):
        values = 100 * scores[:, column]
        low, high = bootstrap_mean_interval(values, samples, seed)
        out[metric] = {"metric": metric, "value": float(values.mean()) if len(values) else 0.0,
                       "ci_low": low, "ci_high": high, "n": len(values)}
    return out
