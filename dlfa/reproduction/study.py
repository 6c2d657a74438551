"""The intermediate-task study's analysis (the design and its jobs: `study_design`): pure functions over the
jobs' results, keyed as the design keys them (`study/arm-3`, `study/udpos-arm-3`, `study/udpos-control`,
`study/tatoeba-arm-3`).

Per target task and aggregation (the last-layer baseline and DLFA separately), per arm: English dev, the target
mean (over the target languages), the transfer gap (English − target mean) and the ratio (target / English), for
question answering (scored by F1) also the target mean of exact match, the mean over seeds with a 95% Student-t
interval, and each arm's change against the 0-task arm and against the control arm, paired over the seeds both
have (`mean_interval` of the per-seed differences). A run whose English dev is less than MIN_ABOVE_MAJORITY
(1 point) above its English dev majority-class score (`dev_majority`; question answering has none: above 0 F1)
did not learn the target task: it is named and left out of every mean and pair. Beside them: every intermediate
task's English dev score next to its majority class (did it learn?), the intermediate budget each arm actually
spent, and each arm encoder's Tatoeba retrieval. An interval that contains 0 is "inconclusive", whatever the sign.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from dlfa.data.registry import get_task
from dlfa.engine.metrics import MIN_ABOVE_MAJORITY, SCORE_RANGE, at_majority, mean_interval, side_of_zero
from dlfa.engine.spec import JobSpec
from dlfa.reproduction.study_design import PREFIX, RETRIEVAL_TASK, StudyDesign
from dlfa.results import JobResult, RunResult

CONTROL = "control"
REFERENCES = ("arm-0", CONTROL)  # every arm is compared with these two
MEASURES = {"english": "English dev", "target": "target mean", "gap": "transfer gap", "ratio": "ratio",
            "exact_match": "target exact match"}  # exact match: question answering only (its runs' extra)
SCORES = ("english", "target", "exact_match")  # the measures in points (SCORE_RANGE), not the gap or the ratio
_TARGET_KEY = re.compile(r"^(?P<target>.+)-(?P<arm>arm-\d+|control)$")
_NAMED_KEY = re.compile(r"^(?P<study>.+): (?P<key>study/\S+)$")


def parse_key(key: str) -> tuple[str, str | None, str]:
    """(kind, target, arm) of a study job's key: ("arm", None, "arm-3"), ("target", "udpos", "arm-3"),
    ("target", "udpos", "control"), ("retrieval", None, "arm-3") for study/tatoeba-arm-3-s1; ("other", None, "")
    for anything else."""
    name = key.removeprefix(PREFIX)
    if re.fullmatch(r"arm-\d+", name):
        return "arm", None, name
    retrieval = re.fullmatch(rf"{RETRIEVAL_TASK}-(arm-\d+)-s\d+", name)
    if retrieval and name != key:
        return "retrieval", None, retrieval[1]
    match = _TARGET_KEY.match(name)
    if not match or name == key or match["target"] == RETRIEVAL_TASK:
        return "other", None, ""
    return "target", match["target"], match["arm"]


def arm_order(arm: str) -> tuple[int, int]:
    """Sort key: arm-0, arm-1, arm-3, arm-9, then the control."""
    return (1, 0) if arm == CONTROL else (0, int(arm.split("-")[1]))


def arm_label(arm: str) -> str:
    if arm == CONTROL:
        return "control (the target task itself)"
    count = int(arm.split("-")[1])
    return f"{count} task" + ("" if count == 1 else "s")


def run_name(key: str, run: RunResult) -> str:
    return f"{key}/{JobSpec.from_dict(run.spec).unit_name()}"


# ----------------------------------------------------------------------------------------------------
# Per-run measures and health


@dataclass(frozen=True)
class RunMeasures:
    """One target run: English dev, target mean, gap and ratio (points), a QA run's target mean of exact match,
    and whether it learned the task."""

    name: str
    seed: int
    english: float | None
    target: float
    dev_majority: float | None
    exact_match: float | None = None

    @property
    def healthy(self) -> bool:
        return self.english is not None and (self.dev_majority is None
                                             or not at_majority(self.english, self.dev_majority))

    def value(self, measure: str) -> float | None:
        """The run's value of `measure` (None: exact match of a task that has none)."""
        return {"english": self.english, "target": self.target, "gap": self.english - self.target,
                "ratio": self.target / self.english if self.english else float("nan"),
                "exact_match": self.exact_match}[measure]


def run_measures(key: str, run: RunResult) -> RunMeasures:
    """A completed target run's measures; a question answering run (metrics: F1 per language) has no majority
    class, so it learned when its English dev F1 is at least MIN_ABOVE_MAJORITY above 0."""
    exact_match = run.extra.get("exact_match")  # language -> LanguageMetric as a dict (QA runs only)
    qa = get_task(run.task).kind == "qa"
    return RunMeasures(run_name(key, run), run.seed, run.dev_score,
                       float(np.mean([metric.value for metric in run.metrics.values()])),
                       0.0 if qa and run.dev_majority is None else run.dev_majority,
                       float(np.mean([m["value"] for m in exact_match.values()])) if exact_match else None)


@dataclass(frozen=True)
class Change:
    """mean(arm − reference) over the seeds both have healthy runs for, with its 95% paired interval."""

    against: str
    value: float
    low: float | None
    high: float | None
    pairs: int

    def verdict(self) -> str:
        return {None: "no interval: fewer than 2 paired seeds", "above": "above 0", "below": "below 0",
                "includes": "inconclusive"}[side_of_zero(self.low, self.high)]

    def text(self, digits: int = 1) -> str:
        interval = "" if self.low is None else f" [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"
        return f"{self.value:+.{digits}f}{interval}"


@dataclass
class ArmRow:
    """One arm of one target and aggregation: its healthy runs' means and its changes against REFERENCES."""

    arm: str
    tasks: tuple[str, ...]
    runs: list[RunMeasures]
    excluded: list[str]  # the names of runs left out: English dev at the majority class
    means: dict[str, tuple[float, float | None, float | None]] = field(default_factory=dict)
    changes: dict[str, dict[str, Change]] = field(default_factory=dict)  # reference -> measure -> change


def _arm_runs(results: dict[str, JobResult], target: str, aggregation: str) -> dict[str, tuple[tuple, list]]:
    """arm -> (intermediate tasks, RunMeasures of its completed runs of `aggregation`) for one target."""
    found = {}
    for key, job in results.items():
        kind, task, arm = parse_key(key)
        if kind != "target" or task != target:
            continue
        runs = [run_measures(key, run) for run in job.completed_runs if run.aggregation == aggregation]
        tasks = tuple(job.intermediate_tasks) if arm == CONTROL else arm_tasks(results, arm)
        found[arm] = (tasks, runs)
    return dict(sorted(found.items(), key=lambda item: arm_order(item[0])))


def arm_tasks(results: dict[str, JobResult], arm: str) -> tuple[str, ...]:
    """The tasks arm trained, in its order, from its intermediate-only job (() for the 0-task arm)."""
    job = results.get(PREFIX + arm)
    return tuple(job.intermediate_tasks) if job else ()


def _paired(arm: list[RunMeasures], reference: list[RunMeasures], measure: str, against: str) -> Change | None:
    mine = {r.seed: r.value(measure) for r in arm if r.healthy and r.value(measure) is not None}
    theirs = {r.seed: r.value(measure) for r in reference if r.healthy and r.value(measure) is not None}
    shared = sorted(set(mine) & set(theirs))
    if not shared:
        return None
    value, low, high = mean_interval([mine[s] - theirs[s] for s in shared])
    return Change(against, value, low, high, len(shared))


def arm_table(results: dict[str, JobResult], target: str, aggregation: str) -> list[ArmRow]:
    """One row per arm (arm-0, arm-1, ..., control) of `target` trained with `aggregation`."""
    arms = _arm_runs(results, target, aggregation)
    rows = []
    for arm, (tasks, runs) in arms.items():
        healthy = [r for r in runs if r.healthy]
        row = ArmRow(arm, tasks, runs, [r.name for r in runs if not r.healthy])
        for measure in MEASURES:
            values = [r.value(measure) for r in healthy]
            if values and None not in values:
                row.means[measure] = mean_interval(values, bounds=SCORE_RANGE if measure in SCORES else None)
        for reference in REFERENCES:
            if reference == arm or reference not in arms:
                continue
            changes = {m: _paired(runs, arms[reference][1], m, reference) for m in MEASURES}
            row.changes[reference] = {m: c for m, c in changes.items() if c is not None}
        rows.append(row)
    return rows


def study_targets(results: dict[str, JobResult]) -> list[str]:
    """The target tasks of a study's results, in first-seen order."""
    return list(dict.fromkeys(t for kind, t, _ in map(parse_key, results) if kind == "target"))


def study_aggregations(results: dict[str, JobResult], target: str) -> list[str]:
    """The aggregations the target jobs of `target` trained, last first."""
    found = {run.aggregation for key, job in results.items() if parse_key(key)[:2] == ("target", target)
             for run in job.completed_runs}
    return sorted(found, key=lambda a: (a != "last", a))


# ----------------------------------------------------------------------------------------------------
# Did each intermediate task learn, and what did each arm spend?


def _intermediate_sources(results: dict[str, JobResult]) -> list[tuple[str, str, JobResult]]:
    """(arm label for the tables, key, job) of every job with intermediate stages: the arms, then the controls."""
    sources = []
    for key, job in results.items():
        kind, target, arm = parse_key(key)
        if kind == "arm":
            sources.append((arm, key, job))
        elif kind == "target" and arm == CONTROL:
            sources.append((f"control ({target})", key, job))
    return sorted(sources, key=lambda s: (1, s[0]) if s[0].startswith(CONTROL) else (0, arm_order(s[0])))


def learning_table(results: dict[str, JobResult]) -> list[dict]:
    """Per arm and intermediate task: metric, mean English dev score over its runs, majority-class (prior) score,
    runs that learned (at least MIN_ABOVE_MAJORITY above it) of all, and `learned` (every run did)."""
    rows = []
    for arm, _, job in _intermediate_sources(results):
        per_task: dict[str, list[dict]] = {}
        for run in job.completed_runs:
            for task, entry in run.intermediate_dev.items():
                per_task.setdefault(task, []).append(entry)
        for task in job.intermediate_tasks:
            entries = per_task.get(task, [])
            if not entries:
                rows.append({"arm": arm, "task": task, "metric": None, "value": None, "majority": None,
                             "learned_runs": 0, "runs": 0, "learned": None})
                continue
            learned = sum(bool(e["learned"]) for e in entries)
            majority = [e["majority"] for e in entries if e.get("majority") is not None]
            rows.append({"arm": arm, "task": task, "metric": entries[0]["metric"],
                         "value": float(np.mean([e["value"] for e in entries])),
                         "majority": float(np.mean(majority)) if majority else None,
                         "learned_runs": learned, "runs": len(entries), "learned": learned == len(entries)})
    return rows


def budget_table(results: dict[str, JobResult]) -> list[dict]:
    """Per arm (and control): the intermediate steps its runs spent (distinct values) and the examples drawn
    per task (mean over runs)."""
    rows = []
    for arm, _, job in _intermediate_sources(results):
        budgets = [b for b in (run.intermediate_budget for run in job.completed_runs) if b]
        examples: dict[str, list[int]] = {}
        for budget in budgets:
            for task, n in budget.get("examples", {}).items():
                examples.setdefault(task, []).append(n)
        rows.append({"arm": arm, "steps": sorted({b["steps"] for b in budgets}), "runs": len(budgets),
                     "examples": {task: float(np.mean(ns)) for task, ns in examples.items()}})
    return rows


def budget_in_words(rows: list[dict]) -> str:
    """Whether every arm spent the same intermediate budget, said plainly (flagged when not)."""
    spent = {row["arm"]: row["steps"] for row in rows if row["runs"]}
    unknown = [row["arm"] for row in rows if not row["runs"]]
    steps = {s for values in spent.values() for s in values}
    note = f" (not recorded for {', '.join(unknown)})" if unknown else ""
    if not spent:
        return "The intermediate budget actually spent is not recorded" + note + "."
    if len(steps) == 1:
        return (f"Every arm with a finished run spent the same intermediate budget: {steps.pop():,} optimizer "
                f"steps{note}.")
    listed = "; ".join(f"{arm}: {', '.join(f'{s:,}' for s in values)}" for arm, values in spent.items())
    return f"NOT EQUAL: the arms spent different intermediate budgets ({listed}){note}: count is confounded."


def progress_in_words(design: StudyDesign, results: dict[str, JobResult]) -> str:
    """How far the study has come: its jobs and runs finished of the design's, and whether a target job has any
    (before one has, there is no answer on transfer)."""
    planned = {key: len(spec.units()) for key, spec in design.jobs("")}
    finished = {key: results[key].finished_count if key in results else 0 for key in planned}
    runs = f"{sum(finished.values())} of {sum(planned.values())} runs"
    jobs = f"{sum(finished[key] == n for key, n in planned.items())} of {len(planned)} jobs complete"
    if finished == planned:
        return f"Complete: {jobs}, {runs}."
    started = ", ".join(f"{key.removeprefix(PREFIX)} {n} of {planned[key]}" for key, n in finished.items()
                        if 0 < n < planned[key])
    return (f"Under way: {jobs}, {runs}" + (f" (part-way: {started})" if started else "")
            + ("; no target job has a finished run yet, so there is no answer on zero-shot transfer yet."
               if not study_targets(results) else "; the tables below hold the runs finished so far."))


# ----------------------------------------------------------------------------------------------------
# Tatoeba retrieval of each arm's encoder


def retrieval_table(results: dict[str, JobResult]) -> list[dict]:
    """Per arm: the Tatoeba accuracy (mean over languages, points) of its encoders (one retrieval job per seed), the
    mean over seeds with its interval, and the change against the 0-task arm's (base) encoder, paired over seeds
    when both have them."""
    per_arm: dict[str, dict[int, float]] = {}
    for key, job in results.items():
        kind, _, arm = parse_key(key)
        if kind == "retrieval" and job.metrics:  # a retrieval job: one encoder, job-level metrics
            per_arm.setdefault(arm, {})[job.seed] = float(np.mean([m.value for m in job.metrics.values()]))
    base = per_arm.get("arm-0")
    rows = []
    for arm in sorted(per_arm, key=arm_order):
        by_seed = per_arm[arm]
        mean, low, high = mean_interval(list(by_seed.values()), bounds=SCORE_RANGE)
        change = None
        if base and arm != "arm-0":
            # the base encoder is one encoder: every seed is compared with it, unless it ran per seed too
            differences = [v - base.get(seed, next(iter(base.values()))) for seed, v in by_seed.items()]
            change = Change("arm-0", *mean_interval(differences), len(differences))
        rows.append({"arm": arm, "seeds": len(by_seed), "mean": mean, "low": low, "high": high, "change": change})
    return rows


# ----------------------------------------------------------------------------------------------------
# The answer in words


def answer(rows: list[ArmRow], reference: str) -> str:
    """What the arms changed against `reference` ("arm-0" or "control") on the target mean and the transfer
    gap, e.g. '9 tasks: target mean -1.2 [-3.0, +0.6] (inconclusive), transfer gap +0.4 [+0.1, +0.7] (above 0)'."""
    parts = []
    for row in rows:
        changes = row.changes.get(reference)
        if not changes or "target" not in changes:
            continue
        said = [f"{MEASURES[m]} {changes[m].text()} ({changes[m].verdict()})" for m in ("target", "gap")
                if m in changes]
        pairs = changes["target"].pairs
        parts.append(f"{arm_label(row.arm)}: " + ", ".join(said) + f", {pairs} paired seed{'s' * (pairs != 1)}")
    if not parts:
        return ""
    return f"Against {arm_label(reference).split(' (')[0]}: " + "; ".join(parts)


def excluded_note(rows: list[ArmRow]) -> str:
    """The runs left out of the means, by name, or ''."""
    names = [name for row in rows for name in row.excluded]
    if not names:
        return ""
    qa = any(run.exact_match is not None for row in rows for run in row.runs)
    floor = "0 F1 (question answering has no majority class)" if qa else "the majority class"
    return (f"Left out of every mean and pair: {', '.join(names)} (English dev less than "
            f"{MIN_ABOVE_MAJORITY:.0f} point above {floor}: the target task was not learned).")


def find_studies(jobs: list) -> dict[str, dict[str, object]]:
    """study name -> {key: job} for jobs named '<study>: study/<key>' (as the design names them), newest first
    as `jobs` lists them; the newest job of a key wins."""
    studies: dict[str, dict[str, object]] = {}
    for job in jobs:
        match = _NAMED_KEY.match(job.spec.name or "")
        if match:
            studies.setdefault(match["study"], {}).setdefault(match["key"], job)
    return studies
