"""The report's verdict rules, stated in the report too:
- a gain whose 95% interval over seeds contains 0 is "inconclusive", whatever its sign; with one seed there is
  no interval and nothing is decided; the table says whether the paper's value lies inside our interval;
- a run whose target mean is less than MIN_ABOVE_MAJORITY above the majority class (or below it) is listed by
  name and left out of the means (the gain pairs the seeds left to both), and no claim is decided on it;
- layer ties on English dev go, by rule, to the lowest layer, are shown, and decide no claim.
(Runs of different code versions or precisions are never compared: `record.refuse_mixed_runs`.)
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from dlfa.engine.metrics import mean_interval, side_of_zero
from dlfa.reproduction.choices import dlfa_dev_scores
from dlfa.results import JobResult, RunResult

# The paper's average gains of DLFA over the last layer with mBERT (Chen et al. 2022, abstract and Table 2).
PAPER_GAINS = {"xnli": 1.5, "pawsx": 2.4, "panx": 1.2, "udpos": 1.5}
TIE_RULE = "by rule the lowest tied layer is taken, and no claim rests on the choice"
E5_CANNOT_TEST = ("multilingual-e5-small was trained contrastively on its mean-pooled last layer, which makes that "
                  "layer cross-lingual by construction; mBERT was not, so e5-small cannot test mBERT's \"lower "
                  "layers are more cross-lingual\" claim: these rows report what we measured, not a verdict on it")


def tied_layers(results: JobResult, best: int) -> str:
    """' (tied on English dev with layers 1, 9: by rule ...)' when other dlfa layers reach the best one's score."""
    scores = dlfa_dev_scores(results)
    tied = [layer for layer, dev in scores.items() if dev == scores[best] and layer != best]
    return (f" (tied on English dev with layer{'s' if len(tied) > 1 else ''} {', '.join(map(str, tied))}: "
            f"{TIE_RULE})") if tied else ""


@dataclass
class Cell:
    """A mean with its 95% interval: over seeds when there are several, else the run's bootstrap interval."""

    value: float
    low: float | None
    high: float | None
    n: int  # seeds

    def __str__(self) -> str:
        if self.low is None or self.high is None:
            return f"{self.value:.1f}"
        return f"{self.value:.1f} ± {(self.high - self.low) / 2:.1f}"

    def interval(self) -> str:
        return "" if self.low is None else f" [{self.low:+.2f}, {self.high:+.2f}]"


def gain_verdict(source: str, gain: Cell | None, not_run: tuple[str, ...] = ()) -> str:
    """Whether a measured DLFA − last gain (over seeds) agrees with the paper's claim of a gain. not_run: the
    aggregations of the two (last, dlfa) without a finished run yet."""
    if source == "probe":  # the paper's claim is about fine-tuning; a frozen-encoder probe cannot decide it
        return "not decided: probe only (a frozen encoder); the fine-tuning over seeds has not run yet"
    if not_run:
        return f"not decided: fine-tuning of {' and '.join(not_run)} not run yet"
    if gain is None:
        return "not decided: no seed where both DLFA and last learned more than the majority class"
    return {None: "not decided: one seed, no interval over seeds", "above": "agrees: a gain, interval above 0",
            "below": "does not agree: DLFA is worse, interval below 0",
            "includes": "inconclusive: the interval includes 0"}[side_of_zero(gain.low, gain.high)]


DLFA_NOT_RUN = "DLFA not fine-tuned yet"


def undecided_layer(gain: dict) -> str:
    """Why a fine-tuned setting's DLFA layer (report gains: layer, tied, dlfa_at_majority, not_run) cannot count
    towards "the best layer differs per task", or '' when it can."""
    if "dlfa" in gain["not_run"]:
        return DLFA_NOT_RUN
    return " and ".join(why for flag, why in ((gain["tied"], "its layer was chosen on a tie"),
                                           (gain["dlfa_at_majority"], "DLFA runs at the majority class")) if flag)


def paper_in_interval(gain: Cell | None, paper: float) -> str:
    if gain is None or gain.low is None:
        return "–"
    return "yes" if gain.low <= paper <= gain.high else "no"


def runs_of(runs: Iterable[RunResult], aggregation: str | None, layer: int | None = None) -> list[RunResult]:
    """The completed runs of one configuration (all its seeds); aggregation None: of every one."""
    return [r for r in runs if r.completed and aggregation in (None, r.aggregation)
            and (layer is None or r.fusion_layer == layer)]


def cell(runs: list[RunResult], language: str) -> Cell | None:
    values = [r.metrics[language].value for r in runs if language in r.metrics]
    if not values:
        return None
    if len(values) == 1:
        metric = runs[0].metrics[language]
        return Cell(values[0], metric.ci_low, metric.ci_high, 1)
    mean, low, high = mean_interval(values)
    return Cell(mean, low, high, len(values))


def by_seed(runs: list[RunResult]) -> dict[int, RunResult]:
    return {r.seed: r for r in runs}


def mean_gain(dlfa: list[RunResult], last: list[RunResult], languages: list[str]) -> Cell | None:
    """DLFA − last averaged over languages, paired by seed; the 95% interval over seeds when there are ≥ 2
    (none with one seed: a spread over languages is not a confidence interval)."""
    ours, theirs = by_seed(dlfa), by_seed(last)
    shared = sorted(set(ours) & set(theirs))
    if not shared:
        return None
    gains = [float(np.mean([ours[s].metrics[lang].value - theirs[s].metrics[lang].value for lang in languages]))
             for s in shared]
    mean, low, high = mean_interval(gains)
    return Cell(mean, low, high, len(shared))


def lower_layers_retrieve_better(retrieval: list[float]) -> bool:
    """The paper's "lower layers are more cross-lingual", on mean retrieval per layer: the peak lies clearly below
    the top (not in the last two layers) and the last layer retrieves at least 2 points worse than it."""
    peak, last = int(np.argmax(retrieval)), len(retrieval) - 1
    return peak <= last - 2 and retrieval[last] < retrieval[peak] - 0.02
