"""The reproduction report: docs/REPRODUCTION.md and its PNG figures, written only from the results of the
reproduction plan (dlfa.reproduction.plan), so that `python -m dlfa reproduce report` regenerates it at any time.

Every table names where its numbers come from (the job folder, whose results.json holds the spec); parts not
run yet are listed as such, never filled in. The verdict rules, stated in the report too:
- a gain whose 95% interval over seeds contains 0 is "inconclusive", whatever its sign; with one seed there is
  no interval and nothing is decided; the table says whether the paper's value lies inside our interval;
- a run whose target mean stays within MIN_ABOVE_MAJORITY of the majority class is listed by name and left out
  of the means (the gain pairs the seeds left to both), and no claim is decided on it;
- layer ties on English dev go, by rule, to the lowest layer, are shown, and decide no claim;
- runs of different code versions are never compared: a record that mixes them is refused.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlfa import charts
from dlfa.analysis.layers import mean_over_languages
from dlfa.errors import DlfaError
from dlfa.engine.spec import JobSpec
from dlfa.languages import family_of, language_label
from dlfa.engine.metrics import MIN_ABOVE_MAJORITY, mean_interval
from dlfa.reproduction.plan import (AGGREGATIONS, LAYER_ANALYSIS_FILE, RESULTS_FILE, SIZES_FILE, STUDY_TASKS, TASK_PLANS,
                            TIMINGS_FILE, TUNED_LAYERS_FILE, best_dev_layer, code_versions, dlfa_dev_scores,
                            choose, read_results, refuse_mixed_code_versions, run_at_majority, setting_name)
from dlfa.reproduction.study import change_in_words, compare, not_learned_note, summarize

TASK_TITLES = {"udpos": "POS tagging (UD-POS)", "panx": "NER (PAN-X / WikiANN)", "xnli": "XNLI", "pawsx": "PAWS-X"}
# The paper's average gains of DLFA over the last layer with mBERT (Chen et al. 2022, abstract and Table 2).
PAPER_GAINS = {"xnli": 1.5, "pawsx": 2.4, "panx": 1.2, "udpos": 1.5}
FIGURES = "figures"  # the figures' folder, beside the report
SIZE_NOTES = {
    "udpos": "UD English-EWT train/dev, English Parallel UD test; training capped by the plan (see the budgets)",
    "panx": "XTREME PAN-X English train/dev; no English test (XTREME removed the test labels: the other languages' "
            "dev sets are their test); training capped by the plan",
    "xnli": "the XNLI dev (2,490) and test (5,010, labels carried row-wise from a labeled copy) items pooled and "
            "split by item with a recorded seed: no test item's translation is trained on",
    "pawsx": "only the English dev set (2,000 pairs) is labeled here: no more labeled English PAWS-X data on this "
             "machine (XTREME's 49,401 training pairs are not staged), so train, dev and test are cut from it",
}
TIE_RULE = "by rule the lowest tied layer is taken, and no claim rests on the choice"
E5_CANNOT_TEST = ("multilingual-e5-small was trained contrastively on its mean-pooled last layer, which makes that "
                  "layer cross-lingual by construction; mBERT was not, so e5-small cannot test mBERT's \"lower "
                  "layers are more cross-lingual\" claim: these rows report what we measured, not a verdict on it")


def tied_layers(results: dict, best: int) -> str:
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


def gain_verdict(source: str, gain: Cell | None) -> str:
    """Whether a measured DLFA − last gain (over seeds) agrees with the paper's claim of a gain."""
    if source == "probe":  # the paper's claim is about fine-tuning; a frozen-encoder probe cannot decide it
        return "not decided: probe only (a frozen encoder), fine-tuning not run"
    if gain is None:
        return "not decided: no seed where both DLFA and last learned more than the majority class"
    if gain.low is None:
        return "not decided: one seed, no interval over seeds"
    if gain.low > 0:
        return "agrees: a gain, interval above 0"
    if gain.high < 0:
        return "does not agree: DLFA is worse, interval below 0"
    return "inconclusive: the interval includes 0"


def paper_in_interval(gain: Cell | None, paper: float) -> str:
    if gain is None or gain.low is None:
        return "–"
    return "yes" if gain.low <= paper <= gain.high else "no"


def runs_of(results: dict, aggregation: str | None, layer: int | None = None) -> list[dict]:
    """The complete runs of one configuration of a job (all its seeds); aggregation None: of every one."""
    return [r for r in results.get("runs", []) if r["status"] == "complete"
            and aggregation in (None, r["spec"]["aggregations"][0])
            and (layer is None or r["spec"]["fusion_layers"] == [layer])]


def run_name(run: dict) -> str:
    return JobSpec.from_dict(run["spec"]).unit_name()


def convergence(run: dict) -> str:
    """'best dev at step 120 of 180' from the run's record, or 'not recorded'."""
    recorded = {**run, **(run.get("convergence") or {})}
    best, trained = recorded.get("best_step"), recorded.get("steps_trained")
    if best is None or trained is None:
        return "not recorded"
    return f"best dev at step {best} of {trained}"


def cell(runs: list[dict], language: str) -> Cell | None:
    values = [r["metrics"][language]["value"] for r in runs if language in r.get("metrics", {})]
    if not values:
        return None
    if len(values) == 1:
        metric = runs[0]["metrics"][language]
        return Cell(values[0], metric.get("ci_low"), metric.get("ci_high"), 1)
    mean, low, high = mean_interval(values)
    return Cell(mean, low, high, len(values))


def by_seed(runs: list[dict]) -> dict[int, dict]:
    return {r["spec"]["seeds"][0]: r for r in runs}


def mean_gain(dlfa: list[dict], last: list[dict], languages: list[str]) -> Cell | None:
    """DLFA − last averaged over languages, paired by seed; the 95% interval over seeds when there are ≥ 2
    (none with one seed: a spread over languages is not a confidence interval)."""
    ours, theirs = by_seed(dlfa), by_seed(last)
    shared = sorted(set(ours) & set(theirs))
    if not shared:
        return None
    gains = [float(np.mean([ours[s]["metrics"][lang]["value"] - theirs[s]["metrics"][lang]["value"]
                            for lang in languages])) for s in shared]
    mean, low, high = mean_interval(gains)
    return Cell(mean, low, high, len(shared))


def budget(spec: dict, sizes: dict | None) -> str:
    """e.g. '4,000 of 12,544 English training examples, until English dev stops improving (...), batch 32, ...'."""
    available = f"{sizes['train']:,}" if sizes else "(size not recorded)"
    train = (f"{spec['max_train_examples']:,} of {available} English training examples" if spec["max_train_examples"]
             else f"all {available} English training examples" if sizes else "all English training examples "
             "(size not recorded)")
    if spec.get("patience"):
        steps = (f"until English dev stops improving (patience {spec['patience']} evaluations, at most "
                 f"{spec['max_epochs']:g} epochs, the best-dev state evaluated)")
    else:
        steps = f"{spec['max_steps']} steps" if spec["max_steps"] else f"{spec['epochs']:g} epoch(s)"
    rate = f", learning rate {spec['learning_rate']:g}" if not spec.get("probe") else ""
    pooling = f", {spec['pooling']} pooling" if spec.get("pooling") else ""
    evaluate = f"at most {spec['max_eval_examples']}" if spec["max_eval_examples"] else "all"
    return f"{train}, {steps}, batch {spec['batch_size']}{rate}{pooling}, {evaluate} test examples per language"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value) -> str:
    return "–" if value is None else str(value)


def fmt_score(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def lower_layers_retrieve_better(retrieval: list[float]) -> bool:
    """The paper's "lower layers are more cross-lingual", on mean retrieval per layer: the peak lies clearly below
    the top (not in the last two layers) and the last layer retrieves at least 2 points worse than it."""
    peak, last = int(np.argmax(retrieval)), len(retrieval) - 1
    return peak <= last - 2 and retrieval[last] < retrieval[peak] - 0.02


class Report:
    """Builds the markdown from the plan's output root; figures go to `figures/` beside the report."""

    def __init__(self, out_root: Path, doc_path: Path):
        self.out_root, self.figures_dir = out_root, doc_path.parent / FIGURES
        self.record_shown = f"{doc_path.parent.name}/{out_root.name}"  # the record as seen from the repository root
        self.timings = read_results(out_root / TIMINGS_FILE) or {}
        self.sizes = read_results(out_root / SIZES_FILE) or {}
        self.lines: list[str] = []
        self.gains: dict[str, dict] = {}  # setting -> task, source, gain, layer, tied, dlfa_at_majority
        # "layers" -> text; "plain_tuned" -> {key: retrieval per layer} of the plain fine-tuned encoders
        self.findings: dict = {}

    def add(self, *blocks: str) -> None:
        self.lines.extend(blocks)

    def figure(self, fig, name: str, alt: str, height: int = 550) -> None:
        self.figures_dir.mkdir(parents=True, exist_ok=True)
        png, why = charts.figure_png(fig, height=height)
        if png is None:
            raise DlfaError(f"cannot write the figure {name}: {why}")
        (self.figures_dir / name).write_bytes(png)
        self.add(f"![{alt}]({FIGURES}/{name})", "")

    def took(self, job: str) -> str:
        entry = self.timings.get(job)
        if not entry:
            return ""
        state = "" if entry.get("complete") else ", not finished"
        return f" ({entry['seconds'] / 60:.1f} min over {entry['sittings']} sitting(s){state})"

    # ------------------------------------------------------------------------------------------------
    def job(self, job: str) -> dict | None:
        return read_results(self.out_root / job / RESULTS_FILE)

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

    def finetune_runs(self, setting: str) -> tuple[list[str], list[dict]]:
        """The fine-tuning jobs of a setting and their complete runs: finetune/<setting>-<aggregation>, or one
        finetune/<setting> job holding every aggregation (records before issue 13)."""
        jobs = [job for job in (f"finetune/{setting}", *(f"finetune/{setting}-{a}" for a in AGGREGATIONS))
                if self.job(job) is not None]
        return jobs, [run for job in jobs for run in runs_of(self.job(job), None)]

    def setting_section(self, task: str, setting: str) -> None:
        if setting != task:
            self.add(f"#### {setting}", "")
        probe = self.job(f"probe/{setting}")
        jobs, runs = self.finetune_runs(setting)
        languages = (probe or self.job(jobs[0]))["spec"]["eval_languages"]
        size = self.sizes.get(task)
        if probe is not None:
            best = best_dev_layer(probe)
            self.add(f"Probe sweep `probe/{setting}`{self.took(f'probe/{setting}')} ({budget(probe['spec'], size)}): "
                     f"{len(runs_of(probe, None))} of {len(JobSpec.from_dict(probe['spec']).units())} runs done; "
                     f"best DLFA fusion layer on the English dev set: **{best}**{tied_layers(probe, best)}.", "")
        layer_tied = self.selection(setting)
        if runs:
            self.comparison(task, setting, "fine-tuning", jobs, runs, languages)
            self.gains[setting]["tied"] |= layer_tied
        if probe is not None:
            self.comparison(task, setting, "probe", [f"probe/{setting}"], runs_of(probe, None), languages)
            self.probe_grid(setting, probe, languages)
            if tied_layers(probe, best_dev_layer(probe)):  # the fine-tuned candidate layers rest on the tie too
                self.gains[setting]["tied"] = True

    def selection(self, setting: str) -> bool:
        """The seed-1 choices of learning rate and fusion layer (select/<setting>[-layers]), when they ran;
        whether DLFA's layer was chosen on a tie."""
        runs = [run for job in (f"select/{setting}", f"select/{setting}-layers") if self.job(job) is not None
                for run in runs_of(self.job(job), None)]
        if not runs:
            return False
        rows, tied = [], False
        for aggregation in AGGREGATIONS:
            try:
                chosen = choose(runs, aggregation)
            except DlfaError:
                continue
            for run in (r for r in runs if r["spec"]["aggregations"][0] == aggregation):
                flag = " (majority class)" if run_at_majority(run) else ""
                tie = run is not chosen and run["dev_score"] == chosen["dev_score"] and not run_at_majority(run)
                other_layer = run["spec"]["fusion_layers"] != chosen["spec"]["fusion_layers"]
                tied = tied or (tie and aggregation == "dlfa" and other_layer)
                rows.append([run_name(run) + flag, f"{run['spec']['learning_rate']:g}", fmt_score(run.get("dev_score")),
                             convergence(run), "**chosen**" if run is chosen else "tied" if tie else ""])
        self.add(f"Choices on seed 1 and English dev (`select/{setting}`, `select/{setting}-layers`): the best "
                 "dev score per aggregation; ties go to the smaller learning rate, then the lower layer, and a tie "
                 "between layers decides no claim; runs at the majority class are not chosen while another "
                 "learned.", "", table(["run", "learning rate", "English dev", "convergence", ""], rows), "")
        return tied

    def comparison(self, task: str, setting: str, source: str, jobs: list[str], runs: list[dict],
                   languages: list[str]) -> None:
        """Per language: last, DLFA, their difference and scalar-mix, on the runs that learned more than the
        majority class; the mean gain over paired seeds; the runs left out and each run's convergence."""
        dlfa_layers = sorted({r["spec"]["fusion_layers"][0] for r in runs if r["spec"]["aggregations"][0] == "dlfa"})
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
        flagged = [r for r in runs if run_at_majority(r)]
        kept = [r for r in runs if r not in flagged]
        last, dlfa, mix = (runs_of({"runs": kept}, aggregation, lay) for aggregation, lay in
                           (("last", None), ("dlfa", layer), ("scalar-mix", None)))
        all_dlfa = runs_of({"runs": runs}, "dlfa", layer)
        where = ", ".join(f"`{job}`{self.took(job)}" for job in jobs)
        spread = "over seeds" if len(last) > 1 else "of the bootstrap over test examples"
        self.add(f"Baseline vs DLFA ({source}, {where}; {budget(self.job(jobs[-1])['spec'], self.sizes.get(task))}; "
                 f"seeds kept: last {len(last)}, DLFA {len(dlfa)}, scalar-mix {len(mix)}; ± is half the 95% interval "
                 f"{spread}{chosen}):", "")
        if flagged:
            self.add(f"Runs at the majority class (target mean within {MIN_ABOVE_MAJORITY:.0f} point of it), left out "
                     "of the means and of every claim: " + ", ".join(f"`{run_name(r)}`" for r in flagged) + ".", "")
        majority = {lang: runs[0]["metrics"][lang].get("majority") for lang in languages}  # the same test sets
        rows = []
        for lang in languages:
            a, b, c = cell(last, lang), cell(dlfa, lang), cell(mix, lang)
            difference = f"{b.value - a.value:+.1f}" if a and b else "–"
            rows.append([language_label(lang), fmt(a), fmt(b), difference, fmt(c),
                         "–" if majority[lang] is None else f"{majority[lang]:.1f}"])
        gain = mean_gain(dlfa, last, languages)

        def mean_of(group: list[dict]) -> float | None:
            return float(np.mean([cell(group, lang).value for lang in languages])) if group else None

        majority_mean = None if None in majority.values() else float(np.mean(list(majority.values())))
        shown = f"**{gain.value:+.2f}**{gain.interval()}" + ("" if gain.n > 1 else " (1 seed, no interval)") \
            if gain else "–"
        rows.append(["**mean**", fmt_score(mean_of(last)), fmt_score(mean_of(dlfa)), shown, fmt_score(mean_of(mix)),
                     fmt_score(majority_mean)])
        self.add(table(["language", "last", f"DLFA L{layer}", "Δ", "scalar-mix", "majority class"], rows), "")
        if source == "fine-tuning":
            points = {run_name(r): convergence(r) for r in runs}
            self.add("Convergence: " + ("not recorded for these runs (they predate it)."
                                        if set(points.values()) == {"not recorded"} else
                                        "; ".join(f"`{name}` {point}" for name, point in points.items()) + "."), "")
        if source == "probe":
            self.add("In probe mode the encoder is frozen, every hidden state is standardized per dimension with "
                     "the English training statistics, and only the aggregation and the head train, for a fixed "
                     "budget: a gap here measures how usable each layer's features are to a small head in that "
                     "budget, not what fine-tuning reaches.", "")
        self.gains.setdefault(setting, {"task": task, "source": source, "gain": gain, "layer": layer, "tied": tied,
                                        "dlfa_at_majority": len(all_dlfa) > len(dlfa)})

    def probe_grid(self, setting: str, probe: dict, languages: list[str]) -> None:
        grid = probe.get("grid")
        if not grid:
            return
        self.add("Layer × language grid of the probe sweep (★ = best configuration per language):", "")
        self.figure(charts.layer_language_grid(grid, label_of=language_label, title=f"{setting}: probe sweep"),
                    f"grid-{setting}.png", f"{setting} layer × language grid", height=160 + 36 * len(grid["rows"]))
        ordered = sorted(grid["rows"], key=lambda r: (r["fusion_layer"] is not None, r["fusion_layer"] or 0))
        rows = [[charts.config_label(r), "–" if r["dev"] is None else f"{r['dev']:.1f}",
                 *(f"{r['values'][lang]:.1f}" for lang in languages), f"{r['mean']:.1f}"] for r in ordered]
        self.add(table(["configuration", "en dev", *languages, "mean"], rows), "")

    def layer_section(self) -> None:
        self.add("## 2. Layer analysis: which layers are cross-lingual?", "")
        analysis = read_results(self.out_root / LAYER_ANALYSIS_FILE)
        if analysis is None:
            self.add("Not run yet (`layers`).", "")
            return
        settings = analysis["settings"]
        self.add(f"Encoder `{settings['encoder']}`, {settings['max_pairs']} Parallel UD sentence pairs per language "
                 f"(`{LAYER_ANALYSIS_FILE}`{self.took('layers')}). Retrieval: top-1 translation retrieval among the "
                 "pairs, both directions averaged (chance ≈ 1/pairs); CKA: linear CKA with English.", "")
        for measure, title in (("retrieval", "translation retrieval accuracy"), ("cka", "linear CKA with English")):
            self.figure(charts.layer_curves(analysis[measure], label_of=language_label, y_title=title, title=title),
                        f"layers-{measure}.png", title)
        layers = range(analysis["num_layers"] + 1)
        mean_of = {m: mean_over_languages(analysis[m]) for m in ("retrieval", "cka")}
        self.add(table(["layer", "retrieval (mean over languages)", "CKA (mean)"],
                       [[str(k), f"{mean_of['retrieval'][k]:.3f}", f"{mean_of['cka'][k]:.3f}"] for k in layers]), "")
        peak = int(np.argmax(mean_of["retrieval"]))
        last = analysis["num_layers"]
        self.findings["layers"] = (
            f"retrieval is highest at the last layer ({last}: {mean_of['retrieval'][last]:.3f})" if peak == last else
            f"retrieval peaks at layer {peak} ({mean_of['retrieval'][peak]:.3f}) against "
            f"{mean_of['retrieval'][last]:.3f} at the last layer {last}")
        self.add(f"**What this can and cannot say**: {E5_CANNOT_TEST}.", "")
        self.plain_tuned_layers(analysis)

    def plain_tuned_layers(self, base: dict) -> None:
        """The layer analysis of the plain fine-tuned encoders (0 intermediate tasks, every aggregation:
        finetune/* runs, and study/<task>-0 runs) against the base encoder's."""
        tuned = (read_results(self.out_root / TUNED_LAYERS_FILE) or {}).get("runs", {})
        plain = {key: analysis for key, analysis in tuned.items()
                 if key.startswith("finetune/") or key.split("/")[1].endswith("-0")}
        chains = len(tuned) - len(plain)
        if not plain:
            self.add(f"After fine-tuning: no plain fine-tuned encoder (0 intermediate tasks) analysed yet in "
                     f"`{TUNED_LAYERS_FILE}`" + (f"; the {chains} encoders of intermediate-task chains there are "
                                                 "shown in section 3 and do not stand for fine-tuning alone"
                                                 if chains else "") + ".", "")
            return
        retrieval = mean_over_languages(base["retrieval"])
        rows = [["base encoder", *self.layer_cells(retrieval, mean_over_languages(base["cka"]))]]
        for key, analysis in sorted(plain.items()):
            curve = mean_over_languages(analysis["retrieval"])
            self.findings.setdefault("plain_tuned", {})[key] = curve
            rows.append([f"`{key}`", *self.layer_cells(curve, mean_over_languages(analysis["cka"]))])
        self.add(f"After fine-tuning (`{TUNED_LAYERS_FILE}`{self.took('tuned-layers')}): the same analysis of each "
                 "plain fine-tuned encoder (0 intermediate tasks), mean over the Parallel UD languages:", "",
                 table(["encoder", "retrieval L0", "retrieval peak (layer)", f"retrieval L{base['num_layers']}",
                        f"CKA L{base['num_layers']}"], rows), "")

    def study_section(self) -> None:
        self.add("## 3. English intermediate tasks: 0 vs 3 vs 9", "")
        for task in STUDY_TASKS:
            found = {}  # number of intermediate tasks -> results, from the folders study/<task>-<count>
            for path in self.out_root.glob(f"study/{task}-*/{RESULTS_FILE}"):
                results = json.loads(path.read_text())
                if any(run["status"] == "complete" for run in results["runs"]):
                    found[len(results["spec"]["intermediate_tasks"])] = results
            found = dict(sorted(found.items()))
            if not found:
                self.add(f"**{TASK_TITLES[task]}**: not run yet (`study/{task}-*`).", "")
                continue
            jobs = ", ".join(f"`study/{task}-{c}`{self.took(f'study/{task}-{c}')}" for c in found)
            tasks_of = {c: ", ".join(r["spec"]["intermediate_tasks"]) or "none" for c, r in found.items()}
            self.add(f"**{TASK_TITLES[task]}** ({jobs}). Intermediate tasks: " +
                     "; ".join(f"{c}: {t}" for c, t in tasks_of.items()) + ".", "")
            self.study_summary(task, found)
            rows, per_language = [], compare(found)
            for r in per_language:
                change = "–" if r["change"] is None or r["count"] == r["reference"] else f"{r['change']:+.1f}"
                interval = "–" if r["ci_low"] is None else f"[{r['ci_low']:+.1f}, {r['ci_high']:+.1f}] ({r['ci_kind']})"
                rows.append([language_label(r["language"]), str(r["count"]), str(r["seeds"]), f"{r['value']:.1f}",
                             change, interval])
            self.add("Per language:", "",
                     table(["language", "intermediate tasks", "seeds", "score", "change vs 0", "95% interval"], rows), "")
            changes = [{**r, "series": f"{r['count']} tasks"} for r in per_language
                       if r["count"] != r["reference"] and r["change"] is not None]
            if changes:
                self.figure(charts.change_bars(changes, family_of, language_label,
                                               title=f"{TASK_TITLES[task]}: change vs 0 intermediate tasks (95% CI)"),
                            f"study-{task}.png", f"{task}: change vs 0 intermediate tasks per language")
            self.tuned_layers(task, found)

    def tuned_layers(self, task: str, found: dict[int, dict]) -> None:
        """Per analysed study run: translation retrieval and CKA per layer of its fine-tuned encoder (mean over the
        Parallel UD languages) against the base encoder's, beside the run's English dev and target scores."""
        tuned = (read_results(self.out_root / TUNED_LAYERS_FILE) or {}).get("runs", {})
        base = read_results(self.out_root / LAYER_ANALYSIS_FILE)
        analysed, missing = [], []  # (count, run, analysis); "count tasks seed s"
        for count, results in found.items():
            for run in results["runs"]:
                if run["status"] != "complete":
                    continue
                key = f"study/{task}-{count}/{JobSpec.from_dict(run['spec']).unit_name()}"
                if key in tuned:
                    analysed.append((count, run, tuned[key]))
                else:
                    missing.append(f"{count} tasks seed {run['spec']['seeds'][0]}")
        if not analysed or base is None:
            return
        retrieval = mean_over_languages(base["retrieval"])
        curves = {"base encoder": retrieval}
        rows = [["base encoder", "–", "–", "–", *self.layer_cells(retrieval, mean_over_languages(base["cka"]))]]
        for count, run, analysis in analysed:
            seed = run["spec"]["seeds"][0]
            retrieval = curves[f"{count} tasks · seed {seed}"] = mean_over_languages(analysis["retrieval"])
            target = float(np.mean([m["value"] for m in run["metrics"].values()]))
            rows.append([f"{count} tasks", str(seed), fmt_score(run.get("dev_score")), f"{target:.1f}",
                         *self.layer_cells(retrieval, mean_over_languages(analysis["cka"]))])
        self.add(f"How fine-tuning changed each layer (`{TUNED_LAYERS_FILE}`{self.took('tuned-layers')}): the "
                 "layer analysis of section 2 repeated on each run's fine-tuned encoder, mean over the "
                 f"{len(base['languages'])} Parallel UD languages"
                 + (f"; not analysed, as their saved models are not in the output root (runs of earlier sittings "
                    f"on other machines: the record keeps no models): {', '.join(missing)}" if missing else "")
                 + ".", "",
                 table(["encoder", "seed", "English dev", "target mean", "retrieval L0", "retrieval peak (layer)",
                        f"retrieval L{base['num_layers']}", f"CKA L{base['num_layers']}"], rows), "")
        self.figure(charts.layer_curves(curves, y_title="translation retrieval (mean over languages)",
                                        y_range=[0, 1.02], title=f"{TASK_TITLES[task]}: retrieval per layer after "
                                        "fine-tuning"), f"study-layers-{task}.png",
                    f"{task}: translation retrieval per layer of the fine-tuned encoders")

    @staticmethod
    def layer_cells(retrieval: list[float], cka: list[float]) -> list[str]:
        """From the mean retrieval and CKA per layer: retrieval at layer 0, at its peak and at the last layer, and
        the last layer's CKA."""
        peak = int(np.argmax(retrieval))
        return [f"{retrieval[0]:.3f}", f"{retrieval[peak]:.3f} ({peak})", f"{retrieval[-1]:.3f}", f"{cka[-1]:.3f}"]

    def study_summary(self, task: str, found: dict[int, dict]) -> None:
        """The mean over target languages per count with its changes, and the answer in words."""
        summary = summarize(found)
        if not summary:
            return
        english_dev = {row["count"]: row["english_dev"] for row in summary}
        rows, answers = [], []
        for row in summary:
            rows.append([str(row["count"]), str(row["seeds"]), fmt_score(row["english_dev"]), fmt_score(row["value"]),
                         fmt_score(row["majority"]),
                         "; ".join(f"vs {c['against']}: {c['change']:+.1f}" + (
                             "" if c["ci_low"] is None else f" [{c['ci_low']:+.1f}, {c['ci_high']:+.1f}]")
                             for c in row["changes"]) or "–"])
            if row["changes"]:
                previous = row["changes"][-1]  # against the previous count
                dev = english_dev[previous["against"]], english_dev[row["count"]]
                english = f", English dev {dev[0]:.1f} → {dev[1]:.1f}" if None not in dev else ""
                answers.append(change_in_words(row["count"], previous) + english + not_learned_note(row))
        self.add(f"Mean over the {len(summary[0]['languages'])} target languages, and its change (95% interval "
                 "over seeds, paired where the jobs share them):", "",
                 table(["intermediate tasks", "seeds", "English dev", "target mean", "majority class",
                        "change of the mean"], rows), "")
        if answers:
            self.add(f"**Answer, {TASK_TITLES[task]}**: " + "; ".join(answers) + ".", "")

    def claims_section(self) -> None:
        self.add("## 4. Against the paper's claims", "",
                 "The paper fine-tunes mBERT on the full English training sets; we run the embedded "
                 "multilingual-e5-small on a CPU budget (see the budgets and sizes above), so magnitudes are not "
                 "expected to match. Rules: a gain agrees when its 95% interval over seeds lies above 0 and "
                 "disagrees when it lies below; an interval that contains 0 is inconclusive whatever the sign; one "
                 "seed decides nothing; runs at the majority class are left out and decide nothing; probe sweeps (a "
                 "frozen encoder, a small head, a short budget) only locate layers and decide no claim about gains; "
                 f"layer ties: {TIE_RULE}.", "")
        rows = []
        for task, paper in PAPER_GAINS.items():
            found = {setting: g for setting, g in self.gains.items() if g["task"] == task}
            if not found:
                rows.append([TASK_TITLES[task], f"+{paper}", "not run yet", "–", "–"])
            for setting, g in found.items():
                gain = g["gain"]
                ours = "–" if gain is None else (
                    f"{gain.value:+.2f}{gain.interval()} (DLFA L{g['layer']}, {g['source']}, "
                    + (f"{gain.n} seeds)" if gain.n > 1 else "1 seed: no interval)"))
                rows.append([f"{TASK_TITLES[task]}: DLFA > last" + (f" ({setting})" if setting != task else ""),
                             f"+{paper}", ours, paper_in_interval(gain, paper), gain_verdict(g["source"], gain)])
        rows += self.layer_claim_rows()
        self.add(table(["claim", "paper (mBERT)", "ours (e5-small)", "paper's value inside our interval", "verdict"],
                       rows), "")

    def layer_claim_rows(self) -> list[list[str]]:
        rows = []
        fine_tuned = {s: g for s, g in self.gains.items() if g["source"] == "fine-tuning"}
        if len(fine_tuned) >= 2:
            undecided = [s for s, g in fine_tuned.items() if g["tied"] or g["dlfa_at_majority"]]
            differ = len({g["layer"] for g in fine_tuned.values()}) > 1
            verdict = ("not decided: the layer of " + ", ".join(undecided) + " rests on a tie or on runs at the "
                       "majority class") if undecided else ("agrees" if differ else
                                                            "does not agree: the same layer everywhere")
            rows.append(["best fusion layer differs per task", "yes",
                         ", ".join(f"{s} L{g['layer']}" for s, g in fine_tuned.items()), "–", verdict])
        if "layers" in self.findings:
            rows.append(["lower layers are more cross-lingual", "yes", self.findings["layers"], "–",
                         "cannot be tested on e5-small (section 2)"])
            plain = self.findings.get("plain_tuned")
            if plain:
                curves = list(plain.values())
                aggregations = sorted({key.split("/")[-1].split("-")[0] for key in plain})
                ours = (f"retrieval peaks at layers {min(map(np.argmax, curves))}–{max(map(np.argmax, curves))} "
                        f"(mean {np.mean([max(r) for r in curves]):.3f}) against "
                        f"{np.mean([r[-1] for r in curves]):.3f} at the last layer, mean over {len(curves)} encoders "
                        f"({', '.join(aggregations)}); lower layers retrieve better in "
                        f"{sum(map(lower_layers_retrieve_better, curves))}")
            else:
                ours = "no plain fine-tuned encoder analysed yet"
            rows.append(["… and after fine-tuning (the plain fine-tuned encoders, section 2)", "yes", ours, "–",
                         "cannot be tested on e5-small (section 2)"])
        return rows

    def appendix(self) -> None:
        self.add("## Appendix: the jobs and their specs", "",
                 "Each job folder holds `results.json` with the full spec, every run (per-seed metrics, dev scores, "
                 "timings) and the summary; units hold their checkpoints and logs. Any job reruns from its "
                 "record with the command under its name, and one of its runs with `python -m dlfa train --spec "
                 "… --aggregation dlfa --fusion-layer K --seed S --out DIR` (flags given replace the spec's fields).",
                 "")
        for path in sorted(self.out_root.glob("*/*/" + RESULTS_FILE)):  # <part>/<job>/results.json
            results = json.loads(path.read_text())
            job = path.parent.relative_to(self.out_root).as_posix()
            rerun = (f"python -m dlfa sweep --spec {self.record_shown}/{job}/{RESULTS_FILE} "
                     f"--data-root ../shared/data --out DIR")
            hardware = Counter(run.get("hardware", "not recorded") for run in results["runs"])
            ran_on = "; ".join(f"{name} ({n} run{'s' if n > 1 else ''})" for name, n in hardware.items())
            self.add(f"<details><summary><code>{job}</code>: {results['status']}, {len(results['runs'])} run(s)"
                     f"{self.took(job)}</summary>", "", f"`{rerun}`", "", f"Ran on: {ran_on}.", "", "```json",
                     json.dumps(results["spec"], indent=1), "```", "</details>", "")

    def code_version(self) -> str:
        versions = list(code_versions(self.out_root))
        if versions == ["not recorded"]:
            return ("not recorded (these runs predate code versions in results.json, and they were made before "
                    "DLFA's batch norm saw the whole batch on the CPU, where it saw slices of a few rows, which "
                    "biased DLFA alone, and before fine-tuning trained to convergence: read them as provisional "
                    "until a rerun of the plan under the current code replaces them)")
        return ", ".join(f"`{v}`" for v in versions) or "no runs yet"

    # ------------------------------------------------------------------------------------------------
    def build(self, command: str) -> str:
        self.add("# Reproducing DLFA with DLFA Explorer", "",
                 "Chen et al. (2022), *Feature Aggregation in Zero-Shot Cross-Lingual Transfer Using Multilingual "
                 "BERT* ([arXiv 2205.08497](https://arxiv.org/abs/2205.08497)), rerun with this repository's engine "
                 "on the embedded multilingual-e5-small (12 layers, hidden 384) and the development data. "
                 "This file is generated; do not edit it by hand. Regenerate it (and rerun or resume the jobs) with:",
                 "", "```bash", command, "```", "",
                 "Zero-shot: every model is trained on English only and evaluated on the other languages' test "
                 "splits; XNLI and PAWS-X are split by item so that no test item's translation was trained on. "
                 "Layer choices (the best DLFA layer) are made on the English dev set, never on test languages.", "",
                 "Budgets are capped for a 2-core CPU; each section gives its own (from the jobs' specs). The "
                 "majority-class column always predicts the most frequent label of the English training data (for "
                 "NER that is `O`, entity F1 0): a score near it means little was learned that transfers.", "",
                 f"Code version of every run: {self.code_version()}. A record that mixes code versions is "
                 "refused, so no comparison below mixes them.", "",
                 "## 1. Baseline vs DLFA per task", "")
        for task in TASK_PLANS:
            self.task_section(task)
        self.layer_section()
        self.study_section()
        self.claims_section()
        self.appendix()
        return "\n".join(self.lines).rstrip() + "\n"


def write_report(out_root: str | Path, doc_path: str | Path, command: str) -> Path:
    """Write the report (and its figures next to it, in `figures/`) from the results under `out_root`."""
    out_root, doc_path = Path(out_root), Path(doc_path)
    if not out_root.is_dir():
        raise DlfaError(f"no reproduction results in {out_root}: run `python -m dlfa reproduce run` first")
    refuse_mixed_code_versions(out_root)
    doc_path.parent.mkdir(parents=True, exist_ok=True)
    text = Report(out_root, doc_path).build(command)
    doc_path.write_text(text)
    return doc_path
