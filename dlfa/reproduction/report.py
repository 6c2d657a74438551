"""The reproduction report: docs/REPRODUCTION.md and its PNG figures, written only from the record of the
reproduction plan (dlfa.reproduction.plan), so that `python -m dlfa reproduce report` regenerates it at any time.

Every table names where its numbers come from (the job folder, whose results.json holds the spec); parts not
run yet are listed as such, never filled in. The verdict rules are in `rules`; a record that mixes code versions
is refused. Here: the header, the claims against the paper and the appendix; the sections before them are in
`report_baseline` (1), `report_analyses` (2) and `report_study` (3).
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from dlfa.errors import DlfaError
from dlfa.io import write_text
from dlfa.reproduction.plan import AGGREGATIONS, TASK_PLANS, read_results
from dlfa.reproduction.record import (PROVISIONAL, code_versions, git_commits, precisions, provisional,
                                      refuse_mixed_runs)
from dlfa.reproduction.report_analyses import AnalysisSections
from dlfa.reproduction.report_baseline import BaselineSections
from dlfa.reproduction.report_study import StudySections
from dlfa.reproduction.rules import (DLFA_NOT_RUN, PAPER_GAINS, TIE_RULE, gain_verdict, lower_layers_retrieve_better,
                                     paper_in_interval, undecided_layer)
from dlfa.reproduction.tables import STATUS_WORDS, TASK_TITLES, table
from dlfa.results import RESULTS_FILE


class Report(BaselineSections, AnalysisSections, StudySections):
    """Builds the markdown from the record: section 1 (BaselineSections), section 2 (AnalysisSections), section 3
    (StudySections), then the claims against the paper and the appendix of the jobs."""

    def claims_section(self) -> None:
        self.add("## 4. Against the paper's claims", "",
                 "The paper fine-tunes mBERT on the full English training sets; we run the embedded "
                 "multilingual-e5-small on a CPU budget (see the budgets and sizes above), so magnitudes are not "
                 "expected to match. Rules: a gain agrees when its 95% interval over seeds lies above 0 and "
                 "disagrees when it lies below; an interval that contains 0 is inconclusive whatever the sign; one "
                 "seed decides nothing; a run whose English dev stays at the majority class learned nothing and is "
                 "left out (its target languages never decide that); probe sweeps (a frozen encoder, a small head, a "
                 "short budget) only locate layers and decide no claim about gains; "
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
                             f"+{paper}", ours, paper_in_interval(gain, paper),
                             gain_verdict(g["source"], gain, g["not_run"])])
        rows += self.layer_claim_rows()
        self.add(table(["claim", "paper (mBERT)", "ours (e5-small)", "paper's value inside our interval", "verdict"],
                       rows), "")

    def layer_claim_rows(self) -> list[list[str]]:
        rows = []
        fine_tuned = {s: g for s, g in self.gains.items() if g["source"] == "fine-tuning"}
        if len(fine_tuned) >= 2:
            undecided = {s: why for s, g in fine_tuned.items() if (why := undecided_layer(g))}
            reasons = ", ".join(f"{s} ({why})" for s, why in undecided.items())
            # two settings decided on different layers settle the claim, whatever the undecided ones show later
            differ = len({g["layer"] for s, g in fine_tuned.items() if s not in undecided}) > 1
            if differ:
                verdict = "agrees" + (f" (not counted: {reasons})" if undecided else "")
            else:
                verdict = f"not decided: {reasons}" if undecided else "does not agree: the same layer everywhere"
            layers = ", ".join(f"{s} L{g['layer']}" if g["layer"] is not None else f"{s} ({DLFA_NOT_RUN})"
                               for s, g in fine_tuned.items())
            rows.append(["best fusion layer differs per task", "yes", layers, "–", verdict])
        if "layers" in self.findings:
            rows.append(["lower layers are more cross-lingual", "yes", self.findings["layers"], "–",
                         "cannot be tested on e5-small (section 2)"])
            plain = self.findings.get("plain_tuned")
            if plain:
                curves = list(plain.values())
                aggregations = defaultdict(set)  # task -> the aggregations of its analysed encoders
                for key in plain:
                    job, unit = key.split("/")[1:]
                    aggregations[job.split("-")[0]].add(next(a for a in AGGREGATIONS if unit.startswith(a)))
                encoders = "; ".join(f"{task}: {', '.join(sorted(names))}"
                                     for task, names in sorted(aggregations.items()))
                ours = (f"retrieval peaks at layers {min(map(np.argmax, curves))}–{max(map(np.argmax, curves))} "
                        f"(mean {np.mean([max(r) for r in curves]):.3f}) against "
                        f"{np.mean([r[-1] for r in curves]):.3f} at the last layer, mean over {len(curves)} encoders "
                        f"({encoders}); lower layers retrieve better in "
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
                 "… --aggregation dlfa --fusion-layer K --seed S --out DIR` (flags given replace the spec's fields; a "
                 "selection job's run also takes `--lr R`, which picks one rate of its grid).",
                 "")
        for path in sorted(self.out_root.glob("*/*/" + RESULTS_FILE)):  # <part>/<job>/results.json
            results = read_results(path)
            job = path.parent.relative_to(self.out_root).as_posix()
            rerun = (f"python -m dlfa sweep --spec {self.record_shown}/{job}/{RESULTS_FILE} "
                     f"--data-root ../shared/data --out DIR")
            hardware = Counter(run.extra.get("hardware", "not recorded") for run in results.runs)
            ran_on = ("; ".join(f"{name} ({n} run{'s' if n > 1 else ''})" for name, n in hardware.items())
                      or "not recorded (a job without runs: it records job-level metrics only)")
            status = STATUS_WORDS.get(results.status, results.status)
            done = results.finished_count
            part_way = f", {len(results.runs) - done} part-way" if len(results.runs) > done else ""
            self.add(f"<details><summary><code>{job}</code>: {status}, {done} run(s) finished{part_way}"
                     f"{self.took(job)}</summary>", "", f"`{rerun}`", "", f"Ran on: {ran_on}.", "", "```json",
                     json.dumps(results.spec, indent=1), "```", "</details>", "")

    def code_version(self, study: bool = False) -> str:
        if provisional(self.out_root, study):
            return "not recorded either" if study else f"not recorded ({PROVISIONAL})"
        versions = list(code_versions(self.out_root, study))
        commits = git_commits(self.out_root, study)
        made_from = f" (the hash of dlfa/'s sources that can change a number; git {', '.join(commits)})" if commits else ""
        return (", ".join(f"`{v}`" for v in versions) + made_from) if versions else "no runs yet"

    def precision(self, study: bool = False) -> str:
        return ", ".join(f"`{p}`" for p in precisions(self.out_root, study)) or "no runs yet"

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
                 "Layer choices (the best DLFA layer) are made on the English dev set, never on test languages. "
                 "Layers are counted from the embedding output (0) to the last layer (12): DLFA Lk fuses layer k "
                 "with the last, and section 2's layer k is the same layer.", "",
                 "Budgets are capped for a 2-core CPU; each section gives its own (from the jobs' specs). The "
                 "majority-class column always predicts the most frequent label of the English training data (for "
                 "NER that is `O`, entity F1 0): a score near it means little was learned that transfers.", "",
                 f"Code version of every run of sections 1 and 2: {self.code_version()}; of the study (section 3, "
                 f"an experiment of its own): {self.code_version(study=True)}. Precision: {self.precision()} "
                 f"(sections 1 and 2), {self.precision(study=True)} (the study). A record that mixes code versions "
                 "or precisions within either is refused, so no comparison below mixes them.", "",
                 "## 1. Baseline vs DLFA per task", "")
        for task in TASK_PLANS:
            self.task_section(task)
        self.layer_section()
        self.study_section()
        self.claims_section()
        self.appendix()
        return "\n".join(self.lines).rstrip() + "\n"


def write_report(out_root: str | Path, doc_path: str | Path, command: str) -> Path:
    """Write the report (and its figures next to it, in `figures/`, which it owns) from the results under
    `out_root`."""
    out_root, doc_path = Path(out_root), Path(doc_path)
    if not out_root.is_dir():
        raise DlfaError(f"no reproduction results in {out_root}: run `python -m dlfa reproduce run` first")
    refuse_mixed_runs(out_root)
    doc_path.parent.mkdir(parents=True, exist_ok=True)
    report = Report(out_root, doc_path)
    write_text(doc_path, report.build(command))
    report.drop_other_figures()
    return doc_path
