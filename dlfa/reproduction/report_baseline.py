"""Section 1 of the report: baseline (the last layer) against DLFA per task and setting, from the probe sweeps,
the seed-1 choices and the fine-tuning jobs, with the runs that learned nothing (English dev at the majority class)
named and left out."""
from __future__ import annotations

import numpy as np

from dlfa import charts
from dlfa.curves import RISING, still_rising
from dlfa.engine.metrics import MIN_ABOVE_MAJORITY
from dlfa.engine.spec import JobSpec
from dlfa.errors import DlfaError
from dlfa.languages import language_label
from dlfa.reproduction.choices import best_dev_layer, choose
from dlfa.reproduction.document import ReportDocument
from dlfa.reproduction.plan import (AGGREGATIONS, SELECTION_SEED, SIZES_FILE, TASK_PLANS, choices_setting,
                                    setting_name)
from dlfa.reproduction.rules import cell, mean_gain, runs_of, tied_layers
from dlfa.reproduction.tables import SIZE_NOTES, TASK_TITLES, budget, convergence, fmt, fmt_score, run_name, table
from dlfa.results import COMPLETED, JobResult, RunResult


def rising_note(runs: list[RunResult], rests_on: str) -> str:
    """' N of M runs ended at their epoch cap with English dev still rising ...: they may not have converged, and
    <rests_on>.', or '' when none did."""
    rising = [r for r in runs if still_rising(r.extra)]
    return (f" {len(rising)} of {len(runs)} runs ended at their epoch cap with English dev still up by more than "
            f"{RISING:g} point over their last epoch: they may not have converged, and {rests_on}." if rising else "")


def hardware(run: RunResult) -> str:
    """Where a run trained, as it recorded it (processor, threads, torch)."""
    return run.extra.get("hardware", "hardware not recorded")


class BaselineSections(ReportDocument):
    """Section 1: one sub-section per task, one per setting (a pooling) within it."""

    def task_section(self, task: str) -> None:
        self.add(f"### {TASK_TITLES[task]}", "")
        size = self.sizes.get(task)
        self.add(f"English data: train {size['train']:,}, dev {size['dev']:,}, test {size['test']:,} examples; "
                 f"{SIZE_NOTES[task]}." if size else
                 f"English data: sizes not recorded in this record (`{SIZES_FILE}`: the record predates it).", "")
        settings = [s for s in dict.fromkeys([setting_name(task, p) for p in TASK_PLANS[task].poolings] + [task])
                    if self.job(f"probe/{s}") is not None or self.finetune_runs(s)[1]]
        if not settings:
            self.add(f"Not run yet (`probe/{task}`).", "")
            return
        for setting in settings:
            self.setting_section(task, setting)

    def finetune_runs(self, setting: str) -> tuple[list[str], list[RunResult]]:
        """The fine-tuning jobs of a setting and their complete runs: finetune/<setting>-<aggregation>, or one
        finetune/<setting> job holding every aggregation (records before issue 13)."""
        jobs = [job for job in (f"finetune/{setting}", *(f"finetune/{setting}-{a}" for a in AGGREGATIONS))
                if self.job(job) is not None]
        return jobs, [run for job in jobs for run in runs_of(self.job(job).runs, None)]

    def setting_section(self, task: str, setting: str) -> None:
        if setting != task:
            self.add(f"#### {setting}", "")
        probe = self.job(f"probe/{setting}")
        jobs, runs = self.finetune_runs(setting)
        languages = (probe or self.job(jobs[0])).eval_languages
        size = self.sizes.get(task)
        if probe is not None:
            best = best_dev_layer(probe)
            self.add(f"Probe sweep `probe/{setting}`{self.took(f'probe/{setting}')} ({budget(probe.spec, size)}): "
                     f"{len(runs_of(probe.runs, None))} of {len(JobSpec.from_dict(probe.spec).units())} runs done; "
                     f"best DLFA fusion layer on the English dev set: **{best}**{tied_layers(probe, best)}.", "")
        layer_tied = self.selection(task, setting)
        if runs:
            self.comparison(task, setting, "fine-tuning", jobs, runs, languages)
            self.gains[setting]["tied"] |= layer_tied
        if probe is not None:
            self.comparison(task, setting, "probe", [f"probe/{setting}"], runs_of(probe.runs, None), languages)
            self.probe_grid(setting, probe, languages)
            if tied_layers(probe, best_dev_layer(probe)):  # the fine-tuned candidate layers rest on the tie too
                self.gains[setting]["tied"] = True

    def selection(self, task: str, setting: str) -> bool:
        """The seed-1 choices of learning rate and fusion layer (select/<setting>[-layers]), when they ran, or
        the setting whose choices it takes; whether DLFA's layer was chosen on a tie."""
        jobs = [self.job(job) for job in (f"select/{setting}", f"select/{setting}-layers")]
        runs = [run for job in jobs if job is not None for run in runs_of(job.runs, None)]
        source = choices_setting(task)
        if not runs and source != setting:
            self.add(f"No choices of its own: its fine-tuning takes those of `{source}` (each aggregation's "
                     "learning rate, DLFA's fusion layer), so that the two settings differ in the pooling only.", "")
            return self.gains.get(source, {}).get("tied", False)
        if not runs:
            return False
        finished = all(job is not None and job.status == COMPLETED for job in jobs)
        mark = "**chosen**" if finished else "best so far"
        rows, tied = [], False
        for aggregation in AGGREGATIONS:
            try:
                chosen = choose(runs, aggregation)
            except DlfaError:
                continue
            for run in (r for r in runs if r.aggregation == aggregation):
                flag = " (English dev at the majority class)" if self.learned_nothing(run) else ""
                tie = run is not chosen and run.dev_score == chosen.dev_score
                other_layer = run.fusion_layer != chosen.fusion_layer
                tied = tied or (tie and aggregation == "dlfa" and other_layer)
                rows.append([run_name(run) + flag, f"{run.spec['learning_rate']:g}", fmt_score(run.dev_score),
                             convergence(run), mark if run is chosen else "tied" if tie else ""])
        pending = "" if finished else (" Not every run of the choice has finished yet: the best so far is marked, "
                                       "and the choice is made when all have.")
        grid = next(job for job in jobs if job is not None).spec
        self.add(f"Choices on seed 1 and English dev (`select/{setting}`, `select/{setting}-layers`; "
                 f"{budget(grid, self.sizes.get(task))}): the best "
                 "dev score per aggregation; ties go to the smaller learning rate, then the lower layer, and a tie "
                 "between layers decides no claim. Test languages decide no choice. A run marked \"English dev at "
                 f"the majority class\" (less than {MIN_ABOVE_MAJORITY:.0f} point above the majority class's "
                 f"{self.dev_majority_shown(task)} on English dev) learned nothing.{pending}"
                 + rising_note(runs, "the choices rest on them"), "",
                 table(["run", "learning rate", "English dev", "convergence", ""], rows), "")
        return tied

    def comparison(self, task: str, setting: str, source: str, jobs: list[str], runs: list[RunResult],
                   languages: list[str]) -> None:
        """Per language: last, DLFA, their difference and scalar-mix, on the runs that learned more than the
        majority class; the mean gain over paired seeds; the runs left out and each run's convergence."""
        dlfa_layers = sorted({r.fusion_layer for r in runs if r.aggregation == "dlfa"})
        if source == "fine-tuning" and len(dlfa_layers) > 1:  # a record before issue 13: layers chosen on dev
            layer = best_dev_layer(self.job(jobs[0]))
            chosen = (f"; DLFA L{layer} has the best English dev score of the fine-tuned layers "
                      f"{', '.join(map(str, dlfa_layers))}{tied_layers(self.job(jobs[0]), layer)}")
            tied = bool(tied_layers(self.job(jobs[0]), layer))
        elif source == "probe":
            layer = best_dev_layer(self.job(jobs[0]))
            chosen, tied = "", bool(tied_layers(self.job(jobs[0]), layer))
        else:
            layer, chosen, tied = (dlfa_layers or [None])[0], "", False
        flagged = [r for r in runs if self.learned_nothing(r)]
        kept = [r for r in runs if r not in flagged]
        last, dlfa, mix = (runs_of(kept, aggregation, lay) for aggregation, lay in
                           (("last", None), ("dlfa", layer), ("scalar-mix", None)))
        all_dlfa = runs_of(runs, "dlfa", layer)
        where = ", ".join(f"`{job}`{self.took(job)}" for job in jobs)
        spread = "over seeds" if len(last) > 1 else "of the bootstrap over test examples"
        specs = [self.job(job).spec for job in jobs]
        self.add(f"Baseline vs DLFA ({source}, {where}; {budget(specs[-1], self.sizes.get(task), specs)}; "
                 f"seeds kept: last {len(last)}, DLFA {len(dlfa)}, scalar-mix {len(mix)}; ± is half the 95% interval "
                 f"{spread}{chosen}):", "")
        if flagged:
            self.add(f"Runs that learned nothing (English dev less than {MIN_ABOVE_MAJORITY:.0f} point above the "
                     f"majority class's {self.dev_majority_shown(task)}), left out of the means and of every claim: "
                     + ", ".join(f"`{run_name(r)}`" for r in flagged) + ".", "")
        majority = {lang: runs[0].metrics[lang].majority for lang in languages}  # the same test sets
        rows = []
        for lang in languages:
            a, b, c = cell(last, lang), cell(dlfa, lang), cell(mix, lang)
            difference = f"{b.value - a.value:+.1f}" if a and b else "–"
            rows.append([language_label(lang), fmt(a), fmt(b), difference, fmt(c),
                         "–" if majority[lang] is None else f"{majority[lang]:.1f}"])
        gain = mean_gain(dlfa, last, languages)

        def mean_of(group: list[RunResult]) -> float | None:
            return float(np.mean([cell(group, lang).value for lang in languages])) if group else None

        majority_mean = None if None in majority.values() else float(np.mean(list(majority.values())))
        shown = f"**{gain.value:+.2f}**{gain.interval()}" + ("" if gain.n > 1 else " (1 seed, no interval)") \
            if gain else "–"
        rows.append(["**mean**", fmt_score(mean_of(last)), fmt_score(mean_of(dlfa)), shown, fmt_score(mean_of(mix)),
                     fmt_score(majority_mean)])
        dlfa_title = "DLFA" if layer is None else f"DLFA L{layer}"  # None: no DLFA run has finished yet
        self.add(table(["language", "last", dlfa_title, "Δ", "scalar-mix", "majority class"], rows), "")
        if source == "fine-tuning":
            points = {run_name(r): convergence(r) for r in runs}
            self.add("Convergence: " + ("not recorded for these runs (they predate it)."
                                        if set(points.values()) == {"not recorded"} else
                                        "; ".join(f"`{name}` {point}" for name, point in points.items()) + ".")
                     + rising_note(runs, "the comparison above rests on them"), "")
            taken = [run_name(run) for job in jobs for run in runs_of(self.job(job).runs, None)
                     if run.spec.get("name") != self.job(job).spec.get("name")]
            if taken:
                self.add("Seed 1 is the selection run of the same settings (the choices above), taken over rather "
                         "than trained twice: " + ", ".join(f"`{name}`" for name in taken) + ".", "")
            retrained = self.retrained_selection_runs(setting, jobs, taken)
            if retrained:
                self.add("Seed 1 trained again rather than taken over (a selection run is taken over only from the "
                         "same code version, and for UD-POS and XNLI only with its saved model, which the fine-tuned "
                         "layer analysis reads): " + "; ".join(retrained)
                         + ". An fp32 run repeats exactly with the same code on the same machine type and number of "
                         "CPU threads, not across them.", "")
        if source == "probe":
            self.add("In probe mode the encoder is frozen, every hidden state is standardized per dimension with "
                     "the English training statistics, and only the aggregation and the head train, for a fixed "
                     "budget: a gap here measures how usable each layer's features are to a small head in that "
                     "budget, not what fine-tuning reaches.", "")
        self.gains.setdefault(setting, {"task": task, "source": source, "gain": gain, "layer": layer, "tied": tied,
                                        "dlfa_at_majority": len(all_dlfa) > len(dlfa),
                                        "not_run": tuple(a for a in ("last", "dlfa") if not runs_of(runs, a))})

    def dev_majority_shown(self, task: str) -> str:
        majority = self.dev_majority.get(task)
        return "score" if majority is None else f"{majority:.1f}"

    def retrained_selection_runs(self, setting: str, jobs: list[str], taken: list[str]) -> list[str]:
        """'`<run>` English dev X against its selection run's Y' for each seed-1 fine-tuning run that was trained
        again although the selection run of the same settings is in the record."""
        selection = [run for job in (f"select/{setting}", f"select/{setting}-layers")
                     if (found := self.job(job)) is not None for run in runs_of(found.runs, None)]
        said = []
        for run in (r for job in jobs for r in runs_of(self.job(job).runs, None)):
            if run.seed != SELECTION_SEED or run_name(run) in taken:
                continue
            unit = JobSpec.from_dict(run.spec)
            same = [s for s in selection if not unit.changed_settings({**s.spec, "learning_rates": []})]
            if same:
                said.append(f"`{run_name(run)}` English dev {run.dev_score:.2f} ({hardware(run)}) against its "
                            f"selection run's {same[0].dev_score:.2f} ({hardware(same[0])})")
        return said

    def probe_grid(self, setting: str, probe: JobResult, languages: list[str]) -> None:
        grid = probe.grid
        if not grid:
            return
        self.add("Layer × language grid of the probe sweep (in the figure, ★ = best configuration per language):", "")
        self.figure(charts.layer_language_grid(grid, label_of=language_label, title=f"{setting}: probe sweep"),
                    f"grid-{setting}.png", f"{setting} layer × language grid", height=160 + 36 * len(grid["rows"]))
        ordered = sorted(grid["rows"], key=lambda r: (r["fusion_layer"] is not None, r["fusion_layer"] or 0))
        rows = [[charts.config_label(r), "–" if r["dev"] is None else f"{r['dev']:.1f}",
                 *(f"{r['values'][lang]:.1f}" for lang in languages), f"{r['mean']:.1f}"] for r in ordered]
        self.add(table(["configuration", "en dev", *languages, "mean"], rows), "")
