"""Sections 2 and 3 of the report: which layers are cross-lingual (the base encoder's layer analysis, and the
plain fine-tuned encoders'), and the English intermediate-task study (0 vs 3 vs 9 tasks), with how fine-tuning
after each changed the layers."""
from __future__ import annotations

import numpy as np

from dlfa import charts
from dlfa.analysis.layers import mean_over_languages
from dlfa.engine.spec import JobSpec
from dlfa.languages import family_of, language_label
from dlfa.reproduction.document import ReportDocument
from dlfa.reproduction.plan import LAYER_ANALYSIS_FILE, STUDY_TASKS, TUNED_LAYERS_FILE, read_json, read_results
from dlfa.reproduction.rules import E5_CANNOT_TEST
from dlfa.reproduction.study import change_in_words, compare, not_learned_note, summarize
from dlfa.reproduction.tables import TASK_TITLES, fmt_score, table
from dlfa.results import RESULTS_FILE, JobResult


class AnalysisSections(ReportDocument):
    """Section 2 (layer analysis) and section 3 (intermediate tasks)."""

    def layer_section(self) -> None:
        self.add("## 2. Layer analysis: which layers are cross-lingual?", "")
        analysis = read_json(self.out_root / LAYER_ANALYSIS_FILE)
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
        tuned = (read_json(self.out_root / TUNED_LAYERS_FILE) or {}).get("runs", {})
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
                results = read_results(path)
                if results.completed_runs:
                    found[len(results.intermediate_tasks)] = results
            found = dict(sorted(found.items()))
            if not found:
                self.add(f"**{TASK_TITLES[task]}**: not run yet (`study/{task}-*`).", "")
                continue
            jobs = ", ".join(f"`study/{task}-{c}`{self.took(f'study/{task}-{c}')}" for c in found)
            tasks_of = {c: ", ".join(r.intermediate_tasks) or "none" for c, r in found.items()}
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

    def tuned_layers(self, task: str, found: dict[int, JobResult]) -> None:
        """Per analysed study run: translation retrieval and CKA per layer of its fine-tuned encoder (mean over the
        Parallel UD languages) against the base encoder's, beside the run's English dev and target scores."""
        tuned = (read_json(self.out_root / TUNED_LAYERS_FILE) or {}).get("runs", {})
        base = read_json(self.out_root / LAYER_ANALYSIS_FILE)
        analysed, missing = [], []  # (count, run, analysis); "count tasks seed s"
        for count, results in found.items():
            for run in results.completed_runs:
                key = f"study/{task}-{count}/{JobSpec.from_dict(run.spec).unit_name()}"
                if key in tuned:
                    analysed.append((count, run, tuned[key]))
                else:
                    missing.append(f"{count} tasks seed {run.seed}")
        if not analysed or base is None:
            return
        retrieval = mean_over_languages(base["retrieval"])
        curves = {"base encoder": retrieval}
        rows = [["base encoder", "–", "–", "–", *self.layer_cells(retrieval, mean_over_languages(base["cka"]))]]
        for count, run, analysis in analysed:
            seed = run.seed
            retrieval = curves[f"{count} tasks · seed {seed}"] = mean_over_languages(analysis["retrieval"])
            target = float(np.mean([m.value for m in run.metrics.values()]))
            rows.append([f"{count} tasks", str(seed), fmt_score(run.dev_score), f"{target:.1f}",
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

    def study_summary(self, task: str, found: dict[int, JobResult]) -> None:
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
