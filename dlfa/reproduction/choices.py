"""The choices the plan takes from finished jobs, on seed 1 and English dev only (never on test languages): the
best fusion layer of a probe sweep, the two other candidate layers, and the learning rate (and layer) of each
aggregation. Test languages decide none of them, nor which runs learned nothing (run_at_majority: English dev)."""
from __future__ import annotations

from collections.abc import Sequence

from dlfa.engine.metrics import at_majority
from dlfa.errors import ConfigError
from dlfa.results import JobResult, RunResult


def dlfa_dev_scores(probe_results: JobResult) -> dict[int, float]:
    """fusion layer -> English dev score of each finished dlfa run of a probe sweep, in sweep order."""
    return {r["fusion_layer"]: r["dev"] for r in (probe_results.grid or {}).get("rows", [])
            if r["aggregation"] == "dlfa" and r.get("dev") is not None}


def best_dev_layer(probe_results: JobResult) -> int:
    """The dlfa fusion layer with the best English dev score in a sweep (never chosen on test languages); of
    tied layers, by rule, the lowest."""
    scores = dlfa_dev_scores(probe_results)
    if not scores:
        raise ConfigError("the probe sweep has no finished dlfa run with a dev score yet: run the probe part first")
    return max(sorted(scores), key=scores.get)


def finetune_layers(best: int, num_layers: int) -> tuple[int, ...]:
    """The best probe layer and two others from the lower and upper part of the encoder, e.g. 6 → (6, 3, 9)."""
    candidates = [num_layers // 4, num_layers // 2, (3 * num_layers) // 4]
    others = [k for k in candidates if k != best][:2]
    return (best, *others)


def run_at_majority(run: RunResult, dev_majority: float | None) -> bool:
    """Whether a run learned nothing: its English dev score less than MIN_ABOVE_MAJORITY above the majority class's
    on that dev set (the run's own `dev_majority`, else `dev_majority`, its task's in the record). Its target
    languages decide nothing here, so a run that learned English but transfers nothing stays in the comparison.
    False when neither majority score is known."""
    majority = run.dev_majority if run.dev_majority is not None else dev_majority
    return run.dev_score is not None and majority is not None and at_majority(run.dev_score, majority)


def choose(runs: Sequence[RunResult], aggregation: str) -> RunResult:
    """The completed run of `aggregation` with the best English dev score; ties go to the smaller learning rate,
    then the lower fusion layer. English dev only: its target scores never enter."""
    candidates = [r for r in runs if r.completed and r.aggregation == aggregation and r.dev_score is not None]
    if not candidates:
        raise ConfigError(f"no finished {aggregation} run with an English dev score to choose from")
    return min(candidates, key=lambda r: (-r.dev_score, r.spec["learning_rate"], r.fusion_layer or 0))
