"""Section 2 of the report: which layers are cross-lingual (the base encoder's layer analysis, and the plain
fine-tuned encoders'). Section 3, the intermediate-task study, is in `report_study`."""
from __future__ import annotations

import numpy as np

from dlfa import charts
from dlfa.analysis.layers import mean_over_languages
from dlfa.languages import language_label
from dlfa.reproduction.document import ReportDocument
from dlfa.reproduction.plan import (AGGREGATIONS, LAYER_ANALYSIS_FILE, STUDY_TASKS, TASK_PLANS, TUNED_LAYERS_FILE,
                                   read_json, setting_name)
from dlfa.reproduction.rules import E5_CANNOT_TEST
from dlfa.reproduction.tables import run_name, table


class AnalysisSections(ReportDocument):
    """Section 2 (layer analysis)."""

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
        finetune/* runs, and the study's 0-task arm: study/<task>-arm-0) against the base encoder's."""
        tuned = (read_json(self.out_root / TUNED_LAYERS_FILE) or {}).get("runs", {})
        plain = {key: analysis for key, analysis in tuned.items()
                 if key.startswith("finetune/") or key.split("/")[1].endswith("-0")}
        chains = len(tuned) - len(plain)
        if not plain:
            self.add(f"After fine-tuning: no plain fine-tuned encoder (0 intermediate tasks) analysed yet in "
                     f"`{TUNED_LAYERS_FILE}`" + (f"; the {chains} encoders trained after intermediate tasks there "
                                                 "do not stand for fine-tuning alone"
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
        self.add(self.tuned_coverage(set(tuned)), "")

    def tuned_coverage(self, analysed: set[str]) -> str:
        """Per setting the analysis covers, how many of its fine-tuned runs it holds, naming the others."""
        parts, any_missing = [], False
        for task in STUDY_TASKS:
            setting = setting_name(task, TASK_PLANS[task].poolings[0])
            jobs = (f"finetune/{setting}-{aggregation}" for aggregation in AGGREGATIONS)
            units = {job: [run_name(run) for run in results.completed_runs]
                     for job in jobs if (results := self.job(job))}
            left = {job: [unit for unit in names if f"{job}/{unit}" not in analysed] for job, names in units.items()}
            runs, missing = sum(map(len, units.values())), sum(map(len, left.values()))
            any_missing |= missing > 0
            if runs:
                parts.append(f"{setting} {runs - missing} of {runs}" + (" (not: " + ", ".join(
                    f"`{job}` {' '.join(names)}" for job, names in left.items() if names) + ")" if missing else ""))
        return "Fine-tuned runs analysed: " + "; ".join(parts) + "." + (
            " The `tuned-layers` step analyses a run while its saved model is on the machine, and saved models stay "
            "on the machine that trained them: a sitting on a fresh machine has none of the earlier sittings' models."
            if any_missing else "")

    @staticmethod
    def layer_cells(retrieval: list[float], cka: list[float]) -> list[str]:
        """From the mean retrieval and CKA per layer: retrieval at layer 0, at its peak and at the last layer, and
        the last layer's CKA."""
        peak = int(np.argmax(retrieval))
        return [f"{retrieval[0]:.3f}", f"{retrieval[peak]:.3f} ({peak})", f"{retrieval[-1]:.3f}", f"{cka[-1]:.3f}"]
