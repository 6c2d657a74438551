"""Section 3 of the report: the English intermediate-task study (dlfa.reproduction.study_design), from its
design (study/design.json) and its jobs' results in the record: the design in words, the budget each arm spent,
the per-task learning table, per target and aggregation the arms' English dev, target mean, transfer gap and
ratio with their paired changes against 0 tasks and the control, the runs left out, each arm's Tatoeba
retrieval, and the answer in words. The hub-scale study's own report (`write_study_report`) is this section alone."""
from __future__ import annotations

from pathlib import Path

from dlfa.io import write_text
from dlfa.reproduction.document import ReportDocument
from dlfa.reproduction.plan import read_json
from dlfa.reproduction.study import (MEASURES, REFERENCES, ArmRow, answer, arm_label, arm_table,
                                     budget_in_words, budget_table, excluded_note, learning_table, progress_in_words,
                                     retrieval_table, study_aggregations, study_targets)
from dlfa.reproduction.study_design import DESIGN_FILE, HUB_NAME, PREFIX, StudyDesign, StudyTarget
from dlfa.reproduction.tables import TASK_TITLES, fmt_score, table
from dlfa.results import RESULTS_FILE, JobResult

RUN_COMMAND = "python -m dlfa reproduce run --parts study --data-root ../shared/data"
HUB_COMMAND = "python -m dlfa reproduce hub-study --device cuda"
TITLES = {**TASK_TITLES, "xquad": "Question answering (XQuAD)", "mlqa": "Question answering (MLQA)"}


def _interval(mean_low_high: tuple | None, digits: int = 1) -> str:
    if not mean_low_high:
        return "–"
    mean, low, high = mean_low_high
    return f"{mean:.{digits}f}" + ("" if low is None else f" [{low:.{digits}f}, {high:.{digits}f}]")


def arm_cells(rows: list[ArmRow]) -> list[dict[str, str]]:
    """The arms table of one target and aggregation, as text cells (the report's table and the page's); the
    exact-match column only for a target that has it (question answering)."""
    shown = [m for m in MEASURES if m != "exact_match" or any(m in row.means for row in rows)]
    body = []
    for row in rows:
        cells = {"arm": arm_label(row.arm), "tasks": ", ".join(row.tasks) or "–",
                 "runs": f"{len(row.runs) - len(row.excluded)}"
                         + (f" (+{len(row.excluded)} left out)" if row.excluded else "")}
        cells.update({MEASURES[m]: _interval(row.means.get(m), 3 if m == "ratio" else 1) for m in shown})
        for reference in REFERENCES:
            for measure in ("target", "gap"):
                change = row.changes.get(reference, {}).get(measure)
                cells[f"{MEASURES[measure]} vs {arm_label(reference).split(' (')[0]}"] = (
                    "–" if change is None else f"{change.text()} ({change.verdict()})")
        body.append(cells)
    return body


def scores_note(rows: list[ArmRow]) -> str:
    """What the scores of a question answering target are ('' for the other tasks)."""
    if not any("exact_match" in row.means for row in rows):
        return ""
    return "Scores are F1 (English dev and the target languages), with the target languages' exact match beside it."


def learning_cells(rows: list[dict]) -> list[dict[str, str]]:
    return [{"arm": row["arm"], "task": row["task"], "metric": row["metric"] or "–",
             "English dev (mean over runs)": fmt_score(row["value"]), "majority": fmt_score(row["majority"]),
             "learned (runs)": "not recorded" if row["learned"] is None else
             f"{row['learned_runs']} of {row['runs']}" + ("" if row["learned"] else ": did not learn")}
            for row in rows]


def budget_cells(rows: list[dict]) -> list[dict[str, str]]:
    return [{"arm": row["arm"], "runs": str(row["runs"]),
             "intermediate steps": ", ".join(f"{s:,}" for s in row["steps"]) or "–",
             "examples drawn per task (mean over runs)":
                 ", ".join(f"{task} {n:,.0f}" for task, n in row["examples"].items()) or "–"} for row in rows]


def retrieval_cells(rows: list[dict]) -> list[dict[str, str]]:
    return [{"arm": arm_label(row["arm"]), "encoders": str(row["seeds"]),
             "accuracy": _interval((row["mean"], row["low"], row["high"])),
             "vs 0 tasks": "–" if row["change"] is None else f"{row['change'].text()} ({row['change'].verdict()})"}
            for row in rows]


def cells_table(cells: list[dict[str, str]]) -> str:
    return table(list(cells[0]), [list(row.values()) for row in cells])


def design_in_words(design: StudyDesign) -> str:
    """The design as one paragraph: budget, mode, arms in training order, control, seeds and targets."""
    mode = (f"mixture ({design.mixture_sampling}"
            + (f", T = {design.mixture_temperature:g})" if design.mixture_sampling == "temperature" else ")")
            if design.mode == "mixture" else "sequential (the steps split equally over the tasks)")
    subsets = (f"drawn with seed {design.draw_seed}" if design.subset_rule == "drawn"
               else "named, in order of preference")
    arms = "; ".join(f"{len(s)}: {', '.join(s) or 'none (the base encoder)'}" for s in design.subsets)
    targets = "; ".join(f"{t.task} (DLFA layer {t.fusion_layer}, {t.epochs:g} epochs of "
                        + (f"at most {t.max_train_examples:,}" if t.max_train_examples else "all")
                        + f" training examples, learning rate {t.learning_rate:g}, "
                        + (f"{t.max_length} tokens, " if t.max_length != StudyTarget.max_length else "")
                        + f"{len(t.eval_languages)} target languages)" for t in design.targets)
    return (f"Every arm with intermediate tasks spends the same intermediate budget of "
            f"{design.intermediate_steps:,} optimizer steps (batch {design.batch_size}), {mode}; arms (tasks "
            f"{subsets}, in training order): {arms}"
            + ("; the control arm spends the budget on the target task itself" if design.control else "")
            + f". Seeds {', '.join(map(str, design.seeds))}; aggregations {', '.join(design.aggregations)}; "
            f"targets: {targets}. Each arm's encoder is trained once per seed and shared by its target jobs and its "
            "Tatoeba job; the target stage is the same in every arm (budget, seeds, batch order, head "
            "initialisation), so seeds pair.")


def conclusion(design: StudyDesign) -> str:
    """What the design's scale allows one to conclude, and where the other scale runs."""
    if design.name == HUB_NAME:
        return (f"These arms train {design.encoder} on the hub's English training sets "
                f"({design.intermediate_steps:,} intermediate steps of batch {design.batch_size} per arm, every "
                f"target's whole training set), with {len(design.seeds)} seeds: an effect smaller than the interval "
                "over seeds stays inconclusive. On the hub XNLI's English training set is 90% of XTREME's English "
                "XNLI validation set (2,241 pairs), so an arm with MNLI trains on far more English NLI than the XNLI "
                "target stage itself; XQuAD's is SQuAD v1.1's train split, which an arm with the intermediate task "
                "squad trains on before the XQuAD target stage too, as the control arm does. The CPU version on "
                f"this project's data: `{RUN_COMMAND}`.")
    examples = design.intermediate_steps * design.batch_size
    return (f"These arms train {design.encoder} for {design.intermediate_steps:,} steps of batch {design.batch_size} "
            f"({examples:,} English examples drawn across each arm's tasks) on a 2-core CPU, with "
            f"{len(design.seeds)} seeds: an interval over so few seeds is wide, and an effect smaller than it "
            "stays inconclusive. The study at hub scale (Phang et al.'s tasks from the Hugging Face hub, whole "
            f"training sets, XQuAD as a third target) runs on a GPU with `{HUB_COMMAND}`; the Intermediate tasks "
            "page designs and launches a study with any budget, arms and seeds.")


def write_study_report(out_root: str | Path, path: str | Path) -> Path:
    """The study's section alone, written to `path` from the design and results under `out_root` (the hub-scale
    study's report)."""
    document = StudySections(Path(out_root), Path(path))
    document.study_section("# English intermediate tasks at hub scale: does their number change zero-shot transfer?")
    write_text(path, "\n".join(document.lines).rstrip() + "\n")
    return Path(path)


class StudySections(ReportDocument):
    """Section 3: the intermediate-task study."""

    def study_section(self, heading: str = "## 3. English intermediate tasks: does their number change zero-shot "
                                           "transfer?") -> None:
        self.add(heading, "")
        data = read_json(self.out_root / DESIGN_FILE)
        if data is None:
            older = sorted(p.parent.name for p in self.out_root.glob(f"{PREFIX}*/{RESULTS_FILE}"))
            self.add(f"Not run yet under the equal-budget design (`{RUN_COMMAND}`)."
                     + (f" The record's older study jobs ({', '.join(older)}) gave every intermediate stage the "
                        "target's step count, so their number of tasks is confounded with training length: they "
                        "are listed in the appendix and analysed nowhere." if older else ""), "")
            return
        design = StudyDesign.from_dict(data)
        results = {key: job for key in self._keys() if (job := self.job(key)) is not None}
        self.add(f"Design (`{DESIGN_FILE}`, dlfa.reproduction.study_design). {design_in_words(design)}", "",
                 f"**Progress.** {progress_in_words(design, results)}", "")
        budget = budget_table(results)
        if budget:
            self.add(f"**Budget.** {budget_in_words(budget)}", "", cells_table(budget_cells(budget)), "")
        else:  # e.g. a record whose first arm is rerun
            self.add("**Budget.** No arm's intermediate training has finished yet.", "")
        self.learning_section(results)
        for target in study_targets(results):
            for aggregation in study_aggregations(results, target):
                self.arms_section(target, aggregation, arm_table(results, target, aggregation))
        self.retrieval_section(results)
        self.add(f"**What this can conclude.** {conclusion(design)}", "")

    def _keys(self) -> list[str]:
        return sorted(path.parent.relative_to(self.out_root).as_posix()
                      for path in self.out_root.glob(f"{PREFIX}*/{RESULTS_FILE}"))

    def learning_section(self, results: dict[str, JobResult]) -> None:
        rows = learning_table(results)
        if not rows:
            return
        flagged = sorted({row["task"] for row in rows if row["learned"] is False})
        self.add("**Did each intermediate task learn?** English dev after the intermediate training against the "
                 "majority class (the prior; 0 for MCC), per arm; a task learned when every run is at least 1 "
                 "point above it.", "",
                 cells_table(learning_cells(rows)), "")
        if flagged:
            self.add(f"Did not learn in at least one run: {', '.join(flagged)}.", "")

    def arms_section(self, target: str, aggregation: str, rows: list[ArmRow]) -> None:
        title = TITLES.get(target, target)
        self.add(f"### {title}, {aggregation}", "",
                 "Mean over seeds [95% interval, a score's clipped to 0–100]; changes are paired over the seeds both "
                 "arms have (healthy runs only). "
                 f"Gap = English dev − target mean; ratio = target mean / English dev. {scores_note(rows)}"
                 .rstrip(), "")
        self.add(cells_table(arm_cells(rows)), "")
        note = excluded_note(rows)
        if note:
            self.add(note, "")
        said = [text for text in (answer(rows, reference) for reference in REFERENCES) if text]
        if said:
            self.add(f"**Answer, {title}, {aggregation}** (equal intermediate budgets): " + ". ".join(said) + ".", "")
        else:
            self.add("No change against 0 tasks or the control can be computed yet (no paired seeds): no answer.", "")

    def retrieval_section(self, results: dict[str, JobResult]) -> None:
        rows = retrieval_table(results)
        if not rows:
            return
        self.add("**Tatoeba retrieval of each arm's encoder** (XTREME's protocol, zero-shot, mean accuracy over the "
                 "languages, both directions; mean over seeds [95% interval, clipped to 0–100]; change against the "
                 "base encoder (0 tasks), per seed):", "",
                 cells_table(retrieval_cells(rows)), "")
