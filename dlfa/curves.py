"""Training curves: each unit's training loss and English dev scores as they are logged, and how its training
ended.

    out_dir/curves.jsonl   appended live by dlfa.engine.callbacks.CurvesCallback, one JSON object per line:
                           {"unit": "dlfa-L6-s1", "kind": "loss", "point": ["udpos", 40, 0.512]}  stage, step, loss
                           {"unit": "dlfa-L6-s1", "kind": "dev", "point": [125, 91.3]}             step, dev score

The points are the ones a run's results.json keeps under "history" when it finishes (the loss is the mean over
the steps since the previous point). A resumed run logs the steps after its last checkpoint again: the later
line wins. Like dlfa.results, this module sits below the engine and imports none of it.
"""
from __future__ import annotations

import json
from pathlib import Path

CURVES_FILE = "curves.jsonl"
KINDS = ("loss", "dev")
RISING = 0.5  # points of English dev gained over a capped run's last epoch above which it may not have converged


def history_row(unit: str, kind: str, point: list) -> dict:
    """One row {"unit", "kind", "stage", "step", "value"} of a history point (stage None for a dev point)."""
    if kind not in KINDS:
        raise ValueError(f"a curve point's kind is one of {', '.join(KINDS)}, not {kind!r}")
    stage, step, value = point if kind == "loss" else (None, *point)
    return {"unit": unit, "kind": kind, "stage": stage, "step": int(step), "value": float(value)}


def read_curves(job_dir: str | Path) -> list[dict]:
    """The rows of job_dir/curves.jsonl (history_row), ordered by unit as they first appear, then as
    run_history_rows orders a run's (losses by stage, then dev scores; each by step); [] without the file. A line
    that is not a point (the line being written while this reads it, a damaged file) is skipped."""
    path = Path(job_dir) / CURVES_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return []
    rows: dict[tuple, dict] = {}  # the later line of a (unit, kind, stage, step) wins: a resumed run's point
    order: dict = {}
    for line in lines:
        try:
            entry = json.loads(line)
            row = history_row(entry["unit"], entry["kind"], entry["point"])
        except (ValueError, KeyError, TypeError):
            continue
        rows[(row["unit"], row["kind"], row["stage"], row["step"])] = row
        order.setdefault(row["unit"], len(order))
        order.setdefault((row["unit"], row["stage"]), len(order))
    return sorted(rows.values(), key=lambda r: (order[r["unit"]], KINDS.index(r["kind"]),
                                                order[(r["unit"], r["stage"])], r["step"]))


def run_history_rows(unit: str, history: dict) -> list[dict]:
    """The rows of a finished run's results.json "history" ({"loss": [[stage, step, loss]], "dev": [[step,
    score]]})."""
    return [history_row(unit, kind, point) for kind in KINDS for point in history.get(kind) or []]


def run_convergence(recorded: dict) -> dict:
    """A run's results.json fields with its "convergence" record merged in (older runs hold best_step and
    steps_trained at their top)."""
    return {**recorded, **(recorded.get("convergence") or {})}


def convergence_text(recorded: dict) -> str:
    """How a run's training ended, from its results.json "convergence" (older runs hold best_step and
    steps_trained at their top): 'best dev at step 120 of 180', and for a run trained with patience 'stopped
    by patience' or 'at its 3-epoch cap (+0.4 dev over its last epoch)' (then it may not have converged);
    'not recorded' for runs that predate it."""
    recorded = run_convergence(recorded)
    best, trained = recorded.get("best_step"), recorded.get("steps_trained")
    if best is None or trained is None:
        return "not recorded"
    point = f"best dev at step {best} of {trained}"
    if not recorded.get("patience") or "stopped_early" not in recorded:
        return point
    if recorded["stopped_early"]:
        return f"{point}, stopped by patience"
    gain = cap_gain(recorded)
    rise = "" if gain is None else f" ({gain:+.1f} dev over its last epoch)"
    epochs = round(recorded["epochs_trained"], 1)  # 563 steps of 188 per epoch read as a 3-epoch cap
    return f"{point}, at its {epochs:g}-epoch cap{rise}"


def still_rising(recorded: dict) -> bool:
    """Whether a run trained with patience ended at its epoch cap with its English dev score up by more than
    RISING points over its last epoch: it may not have converged."""
    gain = cap_gain(run_convergence(recorded))
    return gain is not None and gain > RISING


def cap_gain(convergence: dict) -> float | None:
    """The last epoch's dev rise of a run that patience never stopped (None for one it stopped, one trained
    without patience, or one that recorded no curve)."""
    if not convergence.get("patience") or convergence.get("stopped_early") is not False:
        return None
    return last_epoch_gain(convergence.get("dev_curve") or [], convergence.get("steps_trained") or 0,
                           convergence.get("epochs_trained"))


def last_epoch_gain(dev_curve: list[list[float]], trained: int, epochs: float | None) -> float | None:
    """How much the best English dev score rose during the last epoch of training. dev_curve: [step, score]
    pairs in step order; None when no evaluation precedes the last epoch."""
    if not epochs:
        return None
    last_epoch_start = trained - trained / epochs
    before = [score for step, score in dev_curve if step <= last_epoch_start]
    return max(score for _, score in dev_curve) - max(before) if before else None
