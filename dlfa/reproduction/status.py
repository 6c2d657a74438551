"""Where a reproduction stands (`python -m dlfa reproduce status`): per setting, how many of the runs each step
of the plan holds have finished, and how long the rest will take at the pace this output root measured.

The pace of a setting's fine-tuning runs (select and finetune) is the median seconds (training and evaluation) of
the finished fine-tuning runs of its task in this output root, whatever their pooling: it is the hardware and
precision that will run the rest. The median, because a run's seconds are wall time: one that was paused, or whose
sitting ended and resumed it later, counts the gap. A task with no such run yet takes the timing model's
(plan.model_run_seconds: fp32 on a 2-core CPU without native bf16), and the table says so. A probe sweep not yet
finished takes the mean of those that did (timings.json), else the model's; the layer analyses, minutes, are left
out. Seed 1 of a fine-tuning job that will be taken over from the selection costs nothing
(`takeable_aggregations`: for UD-POS and XNLI only with the selection run's saved model in this output root). An
output root that holds the intermediate-task study (study/design.json) gets a line on it too: its jobs
finished of planned, and the timing model's hours for all of it (plan.study_hours).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from dlfa.engine.spec import JobSpec
from dlfa.errors import ConfigError
from dlfa.reproduction.choices import finetune_layers
from dlfa.reproduction.plan import (AGGREGATIONS, PROBE_SECONDS, SELECTION_SEED, STUDY_TASKS, TIMINGS_FILE,
                                    Reproduction, choices_setting, chosen_settings, model_run_seconds, read_json,
                                    read_results, setting_name, study_hours)
from dlfa.reproduction.study_design import DESIGN_FILE, StudyDesign
from dlfa.reproduction.tables import table
from dlfa.results import COMPLETED, RESULTS_FILE, RunResult, saved_model

STEPS = ("probe", "select", "finetune")


@dataclass(frozen=True)
class SettingStatus:
    """One setting's finished and planned runs per step (probe, select, finetune), and the seconds a fine-tuning
    run takes (`measured`: from this output root, else the timing model's)."""

    setting: str
    done: dict[str, int]
    planned: dict[str, int]
    run_seconds: float
    measured: bool
    probe_seconds: float
    taken_over: int = 0  # fine-tuning runs left that are seed 1's selection runs, copied rather than trained

    @property
    def seconds_left(self) -> float:
        tuning = sum(self.planned[step] - self.done[step] for step in ("select", "finetune")) - self.taken_over
        probe = self.probe_seconds if self.done["probe"] < self.planned["probe"] else 0.0
        return tuning * self.run_seconds + probe


def finished_runs(out_root: Path, job: str) -> list[RunResult]:
    results = read_results(out_root / job / RESULTS_FILE)
    return list(results.completed_runs) if results else []


def seconds_of(run: RunResult) -> float:
    return float(run.extra.get("train_seconds") or 0.0) + float(run.extra.get("eval_seconds") or 0.0)


def takeable_aggregations(out_root: Path, task: str, setting: str) -> set[str]:
    """The aggregations whose seed-1 fine-tuning run runner.take_selection_run can take over from the selection:
    every one, but for a study task only those whose chosen selection run has its saved model in out_root (an
    output root restored from the record has none: those runs train again). Every one while the choices are
    still to be made here (the selection saves its models)."""
    if task not in STUDY_TASKS:
        return set(AGGREGATIONS)
    try:
        chosen = chosen_settings(out_root, setting)
    except ConfigError:
        return set(AGGREGATIONS)
    return {aggregation for aggregation, run in chosen.items() if any(
        saved_model(out_root / job / JobSpec.from_dict(run.spec).unit_name(), run)
        for job in (f"select/{setting}", f"select/{setting}-layers"))}


def plan_status(config: Reproduction, out_root: Path, train_sizes: dict[str, int],
                num_layers: int) -> list[SettingStatus]:
    """Every setting of the plan with its finished and planned runs. train_sizes: task -> English training
    examples available; num_layers: the encoder's."""
    runs = {}  # setting -> step -> its jobs' finished runs, each results.json read once
    for task, pooling in config.settings():
        setting = setting_name(task, pooling)
        jobs = {"probe": [f"probe/{setting}"], "select": [f"select/{setting}", f"select/{setting}-layers"],
                "finetune": [f"finetune/{setting}-{aggregation}" for aggregation in AGGREGATIONS]}
        runs[setting] = {step: [run for job in jobs[step] for run in finished_runs(out_root, job)] for step in STEPS}
    tuning: dict[str, list[float]] = {}  # task -> seconds of each of its finished fine-tuning runs
    for task, pooling in config.settings():
        by_step = runs[setting_name(task, pooling)]
        tuning.setdefault(task, []).extend(s for s in map(seconds_of, by_step["select"] + by_step["finetune"]) if s > 0)
    timings = read_json(out_root / TIMINGS_FILE) or {}
    probes = [entry["seconds"] for job, entry in timings.items() if job.startswith("probe/") and entry.get("complete")]
    grid = len(AGGREGATIONS) * len(config.learning_rates) + len(finetune_layers(0, num_layers)) - 1  # select runs
    statuses = []
    for task, pooling in config.settings():
        setting = setting_name(task, pooling)
        chooses = setting == choices_setting(task)  # a mean-pooled setting is fine-tuned at the CLS one's choices
        planned = {"probe": len(JobSpec.from_dict(config.probe_fields(task, pooling, num_layers)).units()),
                   "select": grid if chooses else 0, "finetune": len(AGGREGATIONS) * len(config.seeds)}
        done = {step: len(runs[setting][step]) for step in STEPS}
        seed_one_done = {run.aggregation for run in runs[setting]["finetune"] if run.seed == SELECTION_SEED}
        taken_over = len(takeable_aggregations(out_root, task, setting) - seed_one_done) \
            if chooses and SELECTION_SEED in config.seeds else 0
        measured = tuning[task]
        pace = statistics.median(measured) if measured else model_run_seconds(task, train_sizes[task])
        probe = sum(probes) / len(probes) if probes else PROBE_SECONDS[task]
        statuses.append(SettingStatus(setting, done, planned, pace, bool(measured), probe, taken_over))
    return statuses


def status_text(statuses: list[SettingStatus], out_root: Path) -> str:
    """The table and a closing line: runs left, hours left, hours spent (timings.json)."""
    rows = [[s.setting, *(f"{s.done[step]}/{s.planned[step]}" if s.planned[step] else "–" for step in STEPS),
             f"{s.run_seconds / 60:.1f}{'' if s.measured else ' *'}", f"{s.seconds_left / 3600:.1f}"] for s in statuses]
    left = sum(s.planned[step] - s.done[step] for s in statuses for step in STEPS)
    total = sum(s.planned[step] for s in statuses for step in STEPS)
    spent = sum(entry["seconds"] for entry in (read_json(out_root / TIMINGS_FILE) or {}).values())
    hours = sum(s.seconds_left for s in statuses) / 3600
    taken = sum(s.taken_over for s in statuses)
    lines = [table(["setting", "probe", "select", "finetune", "min per fine-tuning run", "hours left"], rows), "",
             f"{left} of {total} runs left ({taken} of them seed 1 of fine-tuning, taken over from the selection), "
             f"about {hours:.1f} h (the layer analyses add minutes); {spent / 3600:.1f} h spent so far "
             f"({out_root / TIMINGS_FILE}). A setting with no selection (–) is fine-tuned at its task's CLS choices."]
    if not all(s.measured for s in statuses):
        lines.append("* no fine-tuning run of the task has finished here yet: the timing model's minutes (fp32 on a "
                     "2-core CPU without native bf16; bf16 where it is native runs 2-3.5 times as fast)")
    return "\n".join(lines)


def study_status_text(out_root: Path, train_sizes: dict[str, int]) -> str | None:
    """A line on the study under out_root (None without one): its jobs and runs finished of planned (a target job's
    runs may finish seed by seed before the job does), and the timing model's hours for the whole study where it
    prices every target. train_sizes: task -> English training examples."""
    saved = read_json(out_root / DESIGN_FILE)
    if saved is None:
        return None
    design = StudyDesign.from_dict(saved)
    jobs = {key: (read_results(out_root / key / RESULTS_FILE), len(spec.units()))
            for key, spec in design.jobs(out_root)}
    finished = sum(1 for done, _ in jobs.values() if done is not None and done.status == COMPLETED)
    runs_done = sum(done.finished_count for done, _ in jobs.values() if done is not None)
    runs = f"{runs_done} of {sum(planned for _, planned in jobs.values())}"
    whole = ""
    if all(target.task in train_sizes for target in design.targets):
        whole = f"; the timing model puts the whole study at {study_hours(design, train_sizes)['total']:.1f} h"
    return f"Study (`{DESIGN_FILE}`): {finished} of {len(jobs)} jobs finished, {runs} runs{whole}."
