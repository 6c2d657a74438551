"""Question answering predictions, question by question: the rows a QA evaluation keeps
(dlfa.engine.qa_evaluate.write_qa_predictions) joined with the test questions' contexts, each question's outcome
(exact, partial, wrong), and a context cut into pieces marked gold and predicted for the app to highlight.
dlfa.analysis.examples builds its QA views (filters, the paired comparison of two runs) on these.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from dlfa.data.qa import QaExample
from dlfa.errors import DataError

OUTCOMES = ("exact", "partial", "wrong")  # exact match; no exact match but F1 > 0; F1 0
QA_METRICS = ("exact_match", "span_f1")


def outcome(exact_match: int, f1: float) -> str:
    """"exact" (EM 1), "partial" (EM 0, some shared token: F1 > 0) or "wrong" (F1 0)."""
    return "exact" if exact_match else ("partial" if f1 > 0 else "wrong")


def qa_table(rows: Sequence[dict], examples: Sequence[QaExample] | None, language: str, source=None) -> pd.DataFrame:
    """One row per question: index, id, text (the question), context ("" without test data), gold (answer
    texts), gold_starts, pred, pred_start, pred_end, exact_match (0 | 1), f1 (points), outcome, errors (1 − EM),
    correct (EM), length (words of the context). `examples`: the test questions of the run's data, in the
    evaluation's order (checked by id), or None."""
    if examples is not None:
        _check_same_questions(examples, rows, language, source)
    records = []
    for index, row in enumerate(rows):
        for key in ("id", "exact_match", "f1", "pred_start", "pred_end"):
            if key not in row:
                raise DataError(f"QA prediction row {index + 1} of {language} has no '{key}'")
        context = examples[index].context if examples is not None else ""
        em, f1 = int(row["exact_match"]), 100 * float(row["f1"])
        records.append({"index": index, "id": row["id"], "text": row.get("question", ""), "context": context,
                        "gold": list(row["gold"]), "gold_starts": list(row.get("gold_starts", [])),
                        "pred": row["pred"], "pred_start": row["pred_start"], "pred_end": row["pred_end"],
                        "exact_match": em, "f1": f1, "outcome": outcome(em, f1), "errors": 1 - em,
                        "correct": bool(em), "length": len(context.split())})
    return pd.DataFrame(records)


def _check_same_questions(examples: Sequence[QaExample], rows: Sequence[dict], language: str, source) -> None:
    if len(examples) != len(rows):
        raise DataError(f"the {language} test set in {source} has {len(examples)} questions but the run predicted "
                        f"{len(rows)}: it is not the data the run was evaluated on")
    for number, (example, row) in enumerate(zip(examples, rows), 1):
        if example.id != row.get("id"):
            raise DataError(f"the {language} test set in {source} differs from the one the run was evaluated on "
                            f"(question {number} is {example.id}, the run predicted {row.get('id')})")


def question_values(table: pd.DataFrame, metric: str) -> np.ndarray:
    """Per question, N, in points: exact match (0 | 100) or F1 (0-100) of a qa_table."""
    if metric == "exact_match":
        return 100 * table["exact_match"].to_numpy(dtype=np.float64)
    return table["f1"].to_numpy(dtype=np.float64)


def context_pieces(context: str, gold: Sequence[tuple[int, int]], predicted: tuple[int, int] | None
                   ) -> list[tuple[str, bool, bool]]:
    """The context cut at every gold and predicted span boundary: (text, inside a gold answer, inside the
    prediction) pieces that join back to `context`. gold: [start, end) character spans; predicted: one or None."""
    spans = [*gold, *([predicted] if predicted else [])]
    cuts = sorted({0, len(context), *(max(0, min(len(context), c)) for span in spans for c in span)})
    pieces = []
    for start, end in zip(cuts, cuts[1:]):
        in_gold = any(s <= start and end <= e for s, e in gold)
        in_pred = predicted is not None and predicted[0] <= start and end <= predicted[1]
        pieces.append((context[start:end], in_gold, in_pred))
    return pieces


def row_pieces(row) -> list[tuple[str, bool, bool]]:
    """context_pieces of one qa_table row (its gold answers and its prediction)."""
    gold = [(start, start + len(text)) for text, start in zip(row["gold"], row["gold_starts"])]
    found = row["pred_start"] is not None and not pd.isna(row["pred_start"])  # null: no valid span
    return context_pieces(row["context"], gold, (int(row["pred_start"]), int(row["pred_end"])) if found else None)
