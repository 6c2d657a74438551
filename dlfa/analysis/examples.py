"""Per-example view of a run's zero-shot test predictions, and the paired comparison of two runs.
Longer than 400 lines because every task kind's view and the paired tests they share read one predictions format.

Every evaluation writes `<run>/predictions/<language>.jsonl.gz` (dlfa.engine.evaluate.write_predictions): gold and
predicted labels per example (per word for token tasks), and the probability of the predicted label for
sentence and pair tasks. Here they are joined with the test examples' text (read again through the task
registry, checked to be the same examples), filtered, tabulated per tag or class, and two runs evaluated on the
same test set are compared item by item:
- which examples the second run fixes (fewer errors) and which it breaks (more errors);
- a paired test on the same items: McNemar's exact test (a binomial test on the discordant items, scipy) for
  accuracy, where an item is an example (a word for token tasks), and a paired bootstrap over examples (the same
  resamples for both runs) for F1-like metrics; the bootstrap also gives the interval of the difference.
Question answering (dlfa.analysis.qa_examples) is compared twice per language: exact match with McNemar's test,
F1 (the mean over questions) with the paired bootstrap.
"""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dlfa.analysis.qa_examples import QA_METRICS, qa_table, question_values
from dlfa.errors import DataError, DlfaError
from dlfa.engine.evaluate import PREDICTIONS_DIR, predictions_path
from dlfa.engine.metrics import _BOOTSTRAP_CHUNK, example_statistics, metric_from_statistics
from dlfa.results import RESULTS_FILE, RunResult, read_run_results, saved_model

UNEVALUATED = "—"  # the predicted tag of a word cut at max_length (never evaluated)


@dataclass
class LanguagePredictions:
    """One run's test predictions for one language. kind: token | sentence | pair | multiple_choice | qa.

    table: one row per example: index, text, gold, pred (label names; per word lists for token tasks),
    words (token tasks), confidence (sentence, pair), length (words), errors, correct; question answering has
    qa_examples.qa_table's columns (the question as text, answers as gold and pred, EM, F1, outcome, ...).
    """

    task: str
    kind: str
    language: str
    labels: tuple[str, ...]
    metric: str
    table: pd.DataFrame
    with_text: bool  # False when the test examples could not be read: labels only


def prediction_languages(run_dir: str | Path) -> list[str]:
    """The languages a run kept per-example predictions for (none for runs evaluated before they were kept)."""
    folder = Path(run_dir) / PREDICTIONS_DIR
    return sorted(p.name.removesuffix(".jsonl.gz") for p in folder.glob("*.jsonl.gz")) if folder.is_dir() else []


def read_prediction_rows(run_dir: str | Path, language: str) -> list[dict]:
    """The raw rows of `predictions/<language>.jsonl.gz`: {"gold", "pred"[, "confidence"]} per example."""
    path = predictions_path(run_dir, language)
    if not path.is_file():
        raise DataError(f"no predictions for {language!r} (this run kept predictions for "
                        f"{', '.join(prediction_languages(run_dir)) or 'no language'})", str(path))
    rows = []
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                row = json.loads(line)
                if not isinstance(row, dict) or "gold" not in row or "pred" not in row:
                    raise DataError("a prediction row needs 'gold' and 'pred'", str(path), number)
                rows.append(row)
    except (OSError, EOFError, ValueError) as exc:
        raise DataError(f"unreadable predictions ({exc})", str(path)) from exc
    return rows


def missing_predictions_message(results: RunResult, folder: Path, data_root: str | None = None) -> str:
    """Why a run has no per-example predictions and the command that produces them: the run again from its
    recorded spec, into a new folder (its results come back with predictions)."""
    run = results
    job_results = folder.parent / RESULTS_FILE
    source = job_results if job_results.is_file() else folder / RESULTS_FILE
    flags = [f"--aggregation {run.aggregation}"]
    if run.fusion_layer is not None:
        flags.append(f"--fusion-layer {run.fusion_layer}")
    if run.spec.get("learning_rates"):  # a unit of a learning-rate grid: its rate picks it
        flags.append(f"--lr {run.spec['learning_rate']:g}")
    flags.append(f"--seed {run.seed}")
    flags.append(f"--data-root {data_root or run.spec.get('data_root') or 'DATA_ROOT'}")
    unit = folder.name
    command = f"python -m dlfa train --spec {_short_path(source)} {' '.join(flags)} --out runs/{unit}-predictions"
    has_model = saved_model(folder, run) is not None
    why = ("was evaluated before runs kept their predictions" if has_model
           else "kept no predictions and its model is not on this machine (a recorded run keeps only its results)")
    return f"This run {why}. To get its per-example predictions, run it again: `{command}`"


def _short_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_language(results: RunResult, folder: Path, language: str, source=None) -> LanguagePredictions:
    """A run's predictions for `language` joined with the test examples' text from `source` (a DataSource;
    None: the run's own data root when it exists). Without readable test data the rows keep their labels only
    (with_text False); test data that no longer matches the predictions is an error."""
    from dlfa.data.registry import DataSource, get_task, load_examples

    spec = results.spec
    info = get_task(spec["task"])
    rows = read_prediction_rows(folder, language)
    examples = None
    if source is None and spec.get("data_root") and Path(spec["data_root"]).is_dir():
        source = DataSource.resolve(spec["data_root"])
    if source is not None:
        try:
            examples = load_examples(info, language, "test", source, max_examples=spec.get("max_eval_examples"))
        except (DlfaError, OSError):
            examples = None
    if info.kind == "qa":
        return LanguagePredictions(info.name, info.kind, language, (), info.metric,
                                   qa_table(rows, examples, language, source), examples is not None)
    if examples is not None:
        _check_same_examples(examples, rows, info.kind, language, source)
    records = []
    for index, row in enumerate(rows):
        example = examples[index] if examples is not None else None
        record = {"index": index, "gold": row["gold"], "pred": row["pred"]}
        if info.kind == "token":
            words = list(example.words) if example else [f"w{i + 1}" for i in range(len(row["gold"]))]
            if example:  # words cut at max_length were never predicted
                record["gold"] = list(example.tags)
                record["pred"] = row["pred"] + [UNEVALUATED] * (len(words) - len(row["pred"]))
            record["words"] = words
            record["text"] = " ".join(words)
            record["length"] = len(words)
            record["errors"] = sum(g != p != UNEVALUATED for g, p in zip(record["gold"], record["pred"]))
        else:
            if example:
                # a multiple-choice example: context ‖ question ‖ its choices, named as the task's labels
                parts = [example.text, example.text_pair,
                         " | ".join(f"{name}: {choice}" for name, choice in zip(info.labels, example.choices))]
                record["text"] = " ‖ ".join(part for part in parts if part)
                record["length"] = len(example.text.split()) + len((example.text_pair or "").split())
            else:
                record["text"], record["length"] = f"example {index + 1}", 0
            record["confidence"] = row.get("confidence")
            record["errors"] = int(row["gold"] != row["pred"])
        record["correct"] = record["errors"] == 0
        records.append(record)
    return LanguagePredictions(info.name, info.kind, language, info.labels, info.metric, pd.DataFrame(records),
                               examples is not None)


def _check_same_examples(examples: list, rows: list[dict], kind: str, language: str, source) -> None:
    if len(examples) != len(rows):
        raise DataError(f"the {language} test set in {source} has {len(examples)} examples but the run predicted "
                        f"{len(rows)}: it is not the data the run was evaluated on")
    for index, (example, row) in enumerate(zip(examples, rows)):
        gold = list(example.tags[: len(row["gold"])]) if kind == "token" else example.label
        if gold != row["gold"]:
            dropped = ", or a word the tokenizer dropped" if kind == "token" else ""
            raise DataError(f"the {language} test set in {source} differs from the one the run was evaluated on "
                            f"(example {index + 1} has other gold labels{dropped})")


# ----------------------------------------------------------------------------------------------------
# Filters and tables


def filter_examples(data: LanguagePredictions, correct: bool | None = None, gold_label: str | None = None,
                    length: tuple[int, int] | None = None, outcome: str | None = None) -> pd.DataFrame:
    """The examples that are all correct (correct=True) or have an error (False), whose gold labels include
    `gold_label` (a tag of some word, or the class), whose length in words lies in `length` (inclusive), and
    (question answering) whose outcome is `outcome` (exact, partial or wrong: dlfa.analysis.qa_examples)."""
    table = data.table
    keep = np.ones(len(table), dtype=bool)
    if outcome is not None:
        keep &= (table["outcome"] == outcome).to_numpy(dtype=bool)
    if correct is not None:
        keep &= table["correct"].to_numpy() == correct
    if gold_label is not None:
        has = table["gold"].map(lambda g: gold_label in g if isinstance(g, list) else g == gold_label)
        keep &= has.to_numpy(dtype=bool)
    if length is not None:
        keep &= table["length"].between(*length).to_numpy()
    return table[keep]


def _label_pairs(data: LanguagePredictions) -> tuple[list[str], list[str]]:
    """Gold and predicted label of every item (word or example); unevaluated words left out."""
    if data.kind != "token":
        return list(data.table["gold"]), list(data.table["pred"])
    gold, pred = [], []
    for g, p in zip(data.table["gold"], data.table["pred"]):
        for gold_tag, pred_tag in zip(g, p):
            if pred_tag != UNEVALUATED:
                gold.append(gold_tag)
                pred.append(pred_tag)
    return gold, pred


def confusion_matrix(data: LanguagePredictions) -> pd.DataFrame:
    """Counts of (gold row, predicted column) over items (words for token tasks), labels that occur only."""
    gold, pred = _label_pairs(data)
    present = [label for label in data.labels if label in set(gold) | set(pred)]
    matrix = pd.crosstab(pd.Categorical(gold, present), pd.Categorical(pred, present), dropna=False)
    matrix.index.name, matrix.columns.name = "gold", "predicted"
    return matrix


def label_scores(data: LanguagePredictions) -> pd.DataFrame:
    """Per gold label: support, precision, recall and F1 (points), worst F1 first."""
    matrix = confusion_matrix(data)
    true_positive = np.diag(matrix.to_numpy()).astype(float)
    predicted, support = matrix.sum(0).to_numpy(), matrix.sum(1).to_numpy()
    precision = np.divide(true_positive, predicted, out=np.zeros_like(true_positive), where=predicted > 0)
    recall = np.divide(true_positive, support, out=np.zeros_like(true_positive), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(recall), where=precision + recall > 0)
    table = pd.DataFrame({"label": matrix.index.astype(str), "support": support, "precision": 100 * precision,
                          "recall": 100 * recall, "f1": 100 * f1})
    return table[table["support"] > 0].sort_values(["f1", "support"], ascending=[True, False]).reset_index(drop=True)


# ----------------------------------------------------------------------------------------------------
# Two runs on the same test set


@dataclass
class PairedComparison:
    """Run B against run A on the same test examples of one language.

    fixed / broken / both_correct / both_wrong count examples (fixed: B makes fewer errors than A; broken: more;
    the four add up to n); the items of the test (examples, or words for token tasks' accuracy) give the
    discordant counts b_only (B right, A wrong) and a_only. value_a / value_b: the metric in points; delta_low /
    delta_high: the 95% paired bootstrap interval of B − A; p_value: McNemar exact (accuracy) or paired bootstrap.
    """

    language: str
    metric: str
    n: int
    fixed: int
    broken: int
    both_correct: int
    both_wrong: int
    items: int
    b_only: int
    a_only: int
    value_a: float
    value_b: float
    delta_low: float
    delta_high: float
    p_value: float
    test: str

    @property
    def delta(self) -> float:
        return self.value_b - self.value_a


def mcnemar_exact(b_only: int, a_only: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of the discordant items against 1/2."""
    from scipy.stats import binomtest

    discordant = b_only + a_only
    return 1.0 if discordant == 0 else float(binomtest(b_only, discordant, 0.5).pvalue)


def paired_bootstrap(metric: str, stats_a: np.ndarray, stats_b: np.ndarray, samples: int = 1000,
                     seed: int = 0) -> tuple[float, float, float]:
    """(low, high, p) of metric(B) − metric(A): both runs scored on the same resamples of the N examples
    (stats_a, stats_b: N × K per-example statistics, dlfa.engine.metrics.example_statistics). p is two-sided: twice the
    smaller share of resampled differences on either side of 0."""
    n = len(stats_a)
    rng = np.random.default_rng(seed)
    deltas = []
    for start in range(0, samples, _BOOTSTRAP_CHUNK):
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=min(_BOOTSTRAP_CHUNK, samples - start))  # S × N
        scores_a, scores_b = (_score(metric, counts @ stats) for stats in (stats_a, stats_b))
        deltas.append(scores_b - scores_a)
    delta = np.concatenate(deltas)
    low, high = np.percentile(delta, [2.5, 97.5])
    p_value = min(1.0, 2 * min(np.mean(delta <= 0), np.mean(delta >= 0)))
    return float(low), float(high), float(p_value)


def _score(metric: str, totals: np.ndarray) -> np.ndarray:
    """metric_from_statistics, and for question answering's per-question (value, 1) statistics the mean value."""
    if metric in QA_METRICS:
        return totals[..., 0] / np.maximum(totals[..., 1], 1)
    return metric_from_statistics(metric, totals)


def compare_qa(a: LanguagePredictions, b: LanguagePredictions, samples: int = 1000,
               seed: int = 0) -> list[PairedComparison]:
    """Two question answering runs on the same questions: exact match (McNemar exact on the questions one run
    answers exactly and the other not) and F1 (the paired bootstrap of the mean F1 over questions). Fixed /
    broken: questions whose EM (F1) B raises / lowers."""
    if (a.task, a.language) != (b.task, b.language) or list(a.table["id"]) != list(b.table["id"]):
        raise DataError(f"runs on different questions cannot be paired ({a.task}/{a.language}, {len(a.table)} "
                        f"questions vs {b.task}/{b.language}, {len(b.table)})")
    comparisons = []
    for metric in QA_METRICS:  # per question in points: EM 0 | 100, F1 0-100
        value_a, value_b = question_values(a.table, metric), question_values(b.table, metric)
        low, high, p_bootstrap = paired_bootstrap(metric, *(np.stack([v, np.ones_like(v)], 1)
                                                            for v in (value_a, value_b)), samples, seed)
        b_only, a_only, same = int((value_b > value_a).sum()), int((value_b < value_a).sum()), value_a == value_b
        exact = metric == "exact_match"
        comparisons.append(PairedComparison(
            language=a.language, metric=metric, n=len(value_a), fixed=b_only, broken=a_only,
            both_correct=int((same & (value_a == 100)).sum()), both_wrong=int((same & (value_a < 100)).sum()),
            items=len(value_a), b_only=b_only, a_only=a_only, value_a=float(value_a.mean()),
            value_b=float(value_b.mean()), delta_low=low, delta_high=high,
            p_value=mcnemar_exact(b_only, a_only) if exact else p_bootstrap,
            test="McNemar exact" if exact else "paired bootstrap"))
    return comparisons


def compare_languages(a: LanguagePredictions, b: LanguagePredictions, samples: int = 1000,
                      seed: int = 0) -> list[PairedComparison]:
    """The paired comparisons of B against A in one language: one (`compare`), or for question answering two
    (`compare_qa`: exact match and F1)."""
    return compare_qa(a, b, samples, seed) if a.kind == "qa" else [compare(a, b, samples, seed)]


def compare(a: LanguagePredictions, b: LanguagePredictions, samples: int = 1000, seed: int = 0) -> PairedComparison:
    """The paired comparison of run B against run A (same task, language and test examples)."""
    if (a.task, a.language) != (b.task, b.language) or len(a.table) != len(b.table):
        raise DataError(f"runs on different test sets cannot be paired ({a.task}/{a.language}, {len(a.table)} "
                        f"examples vs {b.task}/{b.language}, {len(b.table)})")
    if list(a.table["gold"]) != list(b.table["gold"]):
        raise DataError(f"the two runs' {a.language} test sets have other gold labels: not the same examples")
    errors_a, errors_b = a.table["errors"].to_numpy(), b.table["errors"].to_numpy()
    correct_a, correct_b = errors_a == 0, errors_b == 0
    gold_a, pred_a = _label_pairs(a)
    gold_b, pred_b = _label_pairs(b)
    right_a, right_b = np.equal(gold_a, pred_a), np.equal(gold_b, pred_b)
    if len(right_a) != len(right_b):
        raise DataError(f"the two runs evaluated different words of the {a.language} sentences (other max_length)")
    b_only, a_only = int((right_b & ~right_a).sum()), int((right_a & ~right_b).sum())
    label_ids = {label: i for i, label in enumerate(a.labels)}
    stats_a, stats_b = (example_statistics(a.metric, *_ids(d, label_ids), list(a.labels)) for d in (a, b))
    value_a = float(metric_from_statistics(a.metric, stats_a.sum(0)))
    value_b = float(metric_from_statistics(a.metric, stats_b.sum(0)))
    low, high, p_bootstrap = paired_bootstrap(a.metric, stats_a, stats_b, samples, seed)
    accuracy = a.metric == "accuracy"
    return PairedComparison(
        language=a.language, metric=a.metric, n=len(a.table), fixed=int((errors_b < errors_a).sum()),
        broken=int((errors_b > errors_a).sum()),
        both_correct=int((correct_a & correct_b).sum()),
        both_wrong=int(((errors_a == errors_b) & ~correct_a).sum()),
        items=len(right_a), b_only=b_only, a_only=a_only, value_a=value_a, value_b=value_b, delta_low=low,
        delta_high=high, p_value=mcnemar_exact(b_only, a_only) if accuracy else p_bootstrap,
        test="McNemar exact" if accuracy else "paired bootstrap")


def _ids(data: LanguagePredictions, label_ids: dict[str, int]) -> tuple[list, list]:
    """Gold and predicted label ids per example (token tasks: per evaluated word)."""
    if data.kind != "token":
        return [label_ids[g] for g in data.table["gold"]], [label_ids[p] for p in data.table["pred"]]
    gold, pred = [], []
    for g, p in zip(data.table["gold"], data.table["pred"]):
        kept = [(x, y) for x, y in zip(g, p) if y != UNEVALUATED]
        gold.append([label_ids[x] for x, _ in kept])
        pred.append([label_ids[y] for _, y in kept])
    return gold, pred


def changed_examples(a: LanguagePredictions, b: LanguagePredictions, which: str) -> pd.DataFrame:
    """The examples B fixes (which="fixed": fewer errors than A) or breaks ("broken"), with both predictions."""
    errors_a, errors_b = a.table["errors"], b.table["errors"]
    keep = errors_b < errors_a if which == "fixed" else errors_b > errors_a
    columns = ["index", "text", "gold"]
    table = a.table.loc[keep, columns].copy()
    table["pred A"], table["errors A"] = a.table.loc[keep, "pred"], errors_a[keep]
    table["pred B"], table["errors B"] = b.table.loc[keep, "pred"], errors_b[keep]
    return table.reset_index(drop=True)


def comparison_frame(comparisons: list[PairedComparison]) -> pd.DataFrame:
    """One row per language and metric: the counts, both scores, B − A with its interval, the test and its
    p-value."""
    return pd.DataFrame([{
        "language": c.language, "metric": c.metric, "n": c.n, "fixed": c.fixed, "broken": c.broken,
        "both correct": c.both_correct, "both wrong": c.both_wrong, "A": c.value_a, "B": c.value_b,
        "B − A": c.delta, "low": c.delta_low, "high": c.delta_high, "test": c.test, "p": c.p_value}
        for c in comparisons])


def compare_runs(run_a: str | Path, run_b: str | Path, source=None, samples: int = 1000,
                 seed: int = 0) -> list[PairedComparison]:
    """Run B against run A (two run folders, each with its results.json and predictions/) on every language both
    kept predictions for: the paired comparison the report and the study can call."""
    run_a, run_b = Path(run_a), Path(run_b)
    results = {}
    for folder in (run_a, run_b):
        try:
            results[folder] = read_run_results(folder)
        except DataError as exc:
            raise DataError(f"not a finished run ({str(exc).removeprefix(f'{exc.path}: ')})", exc.path) from exc
    for folder in (run_a, run_b):
        if not prediction_languages(folder):
            raise DataError(missing_predictions_message(results[folder], folder), str(folder))
    languages = [lang for lang in prediction_languages(run_a) if lang in prediction_languages(run_b)]
    if not languages:
        raise DataError(f"{run_a} and {run_b} kept predictions for no common language")
    return [comparison for lang in languages
            for comparison in compare_languages(load_language(results[run_a], run_a, lang, source),
                                                load_language(results[run_b], run_b, lang, source), samples, seed)]
