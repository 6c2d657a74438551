"""Task metrics and their 95% bootstrap confidence intervals, in points (0–100).

Every metric is a function of per-example sufficient statistics summed over a set of examples, so a
bootstrap resample is one weighted sum (multinomial counts @ statistics) instead of a re-scoring:
- accuracy, f1 (binary, positive = label 1) and mcc (Matthews, multi-class): the C × C confusion counts
  of each example (rows gold, columns predicted); a token task's example is a sentence, so token metrics
  are bootstrapped over sentences;
- entity_f1 (seqeval's micro F1 on IOB2 tags): per sentence (correct, predicted, gold) entity counts.

gold / pred: one int per example (sentence, pair) or one list of ints per sentence (token tasks: the
labeled sub-words only).
"""
from __future__ import annotations

import math

import numpy as np

from dlfa.errors import ConfigError

METRICS = ("accuracy", "entity_f1", "mcc", "f1")
_BOOTSTRAP_CHUNK = 100  # resamples per matrix product (bounds memory to 100 × N counts)


def _as_sequences(values: list) -> list[list[int]]:
    return [v if isinstance(v, (list, tuple, np.ndarray)) else [v] for v in values]


def example_statistics(metric: str, gold: list, pred: list, labels: list[str]) -> np.ndarray:
    """N × K statistics: flattened confusion counts (K = C²) or entity counts (K = 3)."""
    if metric not in METRICS:
        raise ConfigError(f"unknown metric '{metric}': choose one of {', '.join(METRICS)}")
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predictions")
    gold_seqs, pred_seqs = _as_sequences(gold), _as_sequences(pred)
    if metric == "entity_f1":
        from seqeval.metrics.sequence_labeling import get_entities

        stats = np.zeros((len(gold), 3), dtype=np.int64)
        for i, (g, p) in enumerate(zip(gold_seqs, pred_seqs)):
            gold_entities = set(get_entities([labels[j] for j in g]))
            pred_entities = set(get_entities([labels[j] for j in p]))
            stats[i] = len(gold_entities & pred_entities), len(pred_entities), len(gold_entities)
        return stats
    c = len(labels)
    stats = np.zeros((len(gold), c * c), dtype=np.int64)
    for i, (g, p) in enumerate(zip(gold_seqs, pred_seqs)):
        np.add.at(stats[i], np.asarray(g, dtype=np.int64) * c + np.asarray(p, dtype=np.int64), 1)
    return stats


def metric_from_statistics(metric: str, totals: np.ndarray) -> np.ndarray:
    """totals: ... × K summed statistics -> the metric in points, shape `...`."""
    totals = totals.astype(np.float64)
    if metric == "entity_f1":
        correct, predicted, gold = totals[..., 0], totals[..., 1], totals[..., 2]
        return 100 * np.divide(2 * correct, predicted + gold, out=np.zeros_like(correct), where=predicted + gold > 0)
    c = math.isqrt(totals.shape[-1])
    cm = totals.reshape(*totals.shape[:-1], c, c)
    total = cm.sum(axis=(-2, -1))
    trace = np.trace(cm, axis1=-2, axis2=-1)
    if metric == "accuracy":
        return 100 * np.divide(trace, total, out=np.zeros_like(total), where=total > 0)
    if metric == "f1":
        tp, fp, fn = cm[..., 1, 1], cm[..., 0, 1], cm[..., 1, 0]
        return 100 * np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=2 * tp + fp + fn > 0)
    gold_counts, pred_counts = cm.sum(axis=-1), cm.sum(axis=-2)  # Gorodkin's multi-class MCC
    numerator = trace * total - (gold_counts * pred_counts).sum(-1)
    denominator = np.sqrt((total**2 - (pred_counts**2).sum(-1)) * (total**2 - (gold_counts**2).sum(-1)))
    return 100 * np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def bootstrap_interval(
    metric: str, stats: np.ndarray, samples: int, seed: int = 0, confidence: float = 0.95
) -> tuple[float | None, float | None]:
    """Percentile bootstrap over examples: resample the N rows of `stats` with replacement `samples` times
    (None, None when there is nothing to resample)."""
    n = len(stats)
    if n == 0 or samples < 1:
        return None, None
    rng = np.random.default_rng(seed)
    values = []
    for start in range(0, samples, _BOOTSTRAP_CHUNK):
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=min(_BOOTSTRAP_CHUNK, samples - start))  # S × N
        values.append(metric_from_statistics(metric, counts @ stats))
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(np.concatenate(values), [tail, 100 - tail])
    return float(low), float(high)


def score(metric: str, gold: list, pred: list, labels: list[str]) -> float:
    """The metric in points, without an interval."""
    return float(metric_from_statistics(metric, example_statistics(metric, gold, pred, labels).sum(0)))


def score_with_interval(
    metric: str, gold: list, pred: list, labels: list[str], samples: int, seed: int = 0
) -> dict:
    """{"metric", "value", "ci_low", "ci_high", "n"} with n = the number of examples (sentences)."""
    stats = example_statistics(metric, gold, pred, labels)
    value = float(metric_from_statistics(metric, stats.sum(0)))
    low, high = bootstrap_interval(metric, stats, samples, seed)
    return {"metric": metric, "value": value, "ci_low": low, "ci_high": high, "n": len(gold)}


def majority_score(metric: str, gold: list, labels: list[str], majority: int) -> float:
    """The score of always predicting label id `majority` (the most frequent training label)."""
    pred = [[majority] * len(g) if isinstance(g, (list, tuple)) else majority for g in gold]
    return score(metric, gold, pred, labels)


def constant_score(metric: str, gold: list, labels: list[str]) -> tuple[float, int]:
    """The best score of predicting one label for every example (every labeled token), and that label's id: what
    a model scores without learning anything. Accuracy: the majority class of `gold`; MCC: 0; F1: always the
    positive class when that beats the majority (a model stuck on the minority positive class scores well
    above the majority class's 0)."""
    scores = [majority_score(metric, gold, labels, label) for label in range(len(labels))]
    best = int(np.argmax(scores))
    return scores[best], best


# points: a mean closer to the majority-class score than this learned nothing that transfers (decides no claim)
MIN_ABOVE_MAJORITY = 1.0
SCORE_RANGE = (0.0, 100.0)  # an accuracy, F1 or retrieval accuracy, in points


def at_majority(value: float, majority: float) -> bool:
    """Whether a score (points) is less than MIN_ABOVE_MAJORITY above the majority-class score on the same data
    (below it counts too)."""
    return value - majority < MIN_ABOVE_MAJORITY


def side_of_zero(low: float | None, high: float | None) -> str | None:
    """Where an interval lies against 0: "above", "below" or "includes" (inconclusive, whatever the sign of the
    estimate); None without an interval. The one rule the report and the study read their verdicts from."""
    if low is None:
        return None
    if low > 0:
        return "above"
    if high < 0:
        return "below"
    return "includes"


def mean_interval(values: list[float], confidence: float = 0.95,
                  bounds: tuple[float, float] | None = None) -> tuple[float, float | None, float | None]:
    """(mean, low, high): a Student-t interval of the mean over runs (seeds); (mean, None, None) for one run.
    bounds: the range a score can take (SCORE_RANGE for a score in points), which the interval is clipped to:
    over few seeds that scatter widely a t-interval can reach past it."""
    from scipy import stats

    array = np.asarray(values, dtype=np.float64)
    mean = float(array.mean())
    if len(array) < 2:
        return mean, None, None
    half = float(stats.t.ppf((1 + confidence) / 2, len(array) - 1) * array.std(ddof=1) / math.sqrt(len(array)))
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return mean, low, high
