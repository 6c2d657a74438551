"""Zero-shot evaluation of extractive question answering: windows -> span logits -> best answers -> exact match
and F1 per language with bootstrap intervals over questions, and the per-question predictions kept beside the
run's results (`<run>/predictions/<language>.jsonl.gz`, as every task keeps them: dlfa.analysis.examples reads them).

`net(**batch)` takes input_ids, attention_mask (and token_type_ids when the windows have them) B × T, plus
`task` when given, and returns an output with `start_logits` and `end_logits` B × T (dlfa.model.qa_head.SpanOutput,
or a model output that carries them).
"""
from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dlfa.data.qa import QaExample
from dlfa.data.qa_features import MAX_ANSWER_TOKENS, N_BEST, SpanPrediction, pad_windows, predict_spans
from dlfa.engine.evaluate import EVAL_BATCH_SIZE, autocast, sorted_batches, to_device
from dlfa.engine.qa_metrics import qa_scores_with_intervals, question_scores
from dlfa.io import atomic_file

_MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@torch.inference_mode()
def predict_span_logits(
    net: nn.Module,
    windows: Sequence[dict],
    pad_token_id: int,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    batch_size: int = EVAL_BATCH_SIZE,
    task: str | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per window (in `windows`' order) its start and end logits, each (T_w,) float32 over its own tokens;
    windows are batched longest first (least padding)."""
    net.eval()
    starts: list[np.ndarray | None] = [None] * len(windows)
    ends: list[np.ndarray | None] = [None] * len(windows)
    lengths = np.array([len(window["input_ids"]) for window in windows])
    for indices in sorted_batches(lengths, batch_size):
        arrays = pad_windows([windows[i] for i in indices], pad_token_id)
        batch = {key: torch.from_numpy(arrays[key]) for key in _MODEL_INPUTS if key in arrays}
        batch = to_device(batch, device) | ({"task": task} if task else {})
        with autocast(device, amp_dtype):
            out = net(**batch)
        start_rows, end_rows = out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()
        for row, index in enumerate(indices):
            starts[index], ends[index] = start_rows[row, : lengths[index]], end_rows[row, : lengths[index]]
    return starts, ends


def evaluate_qa(
    net: nn.Module,
    examples: Sequence[QaExample],
    windows: Sequence[dict],
    pad_token_id: int,
    device: torch.device,
    normalization: str = "squad",
    amp_dtype: torch.dtype | None = None,
    bootstrap_samples: int = 1000,
    seed: int = 0,
    task: str | None = None,
    n_best: int = N_BEST,
    max_answer_tokens: int = MAX_ANSWER_TOKENS,
    predictions_file: Path | None = None,
) -> tuple[dict[str, dict], dict[str, str]]:
    """One language's {"exact_match": {...}, "span_f1": {...}} (points, 95% bootstrap over questions) and the
    predicted answer of every question (id -> text). `windows`: encode_qa's features of `examples`. With
    `predictions_file`, every question's prediction is written there (`write_qa_predictions`)."""
    starts, ends = predict_span_logits(net, windows, pad_token_id, device, amp_dtype, task=task)
    spans = predict_spans(examples, windows, starts, ends, n_best, max_answer_tokens)
    predictions = {qa_id: span.text for qa_id, span in spans.items()}
    if predictions_file is not None:
        write_qa_predictions(predictions_file, examples, spans, question_scores(examples, predictions, normalization))
    return qa_scores_with_intervals(examples, predictions, normalization, bootstrap_samples, seed), predictions


def write_qa_predictions(path: Path, examples: Sequence[QaExample], spans: dict[str, SpanPrediction],
                         scores: np.ndarray) -> None:
    """One JSON line per question, in `examples`' order, gzipped (written atomically): {"id", "question", "gold":
    [gold answer texts], "gold_starts": [their character offsets], "pred": the predicted text, "pred_start",
    "pred_end": its characters [start, end) in the context (null when no span was valid), "exact_match": 0 | 1,
    "f1": 0-1}. scores: N × 2 per-question (exact match, F1) (dlfa.engine.qa_metrics.question_scores). The
    contexts are not repeated here: they are read again from the test data."""
    with atomic_file(path) as staging, gzip.open(staging, "wt", encoding="utf-8") as handle:
        for example, (em, f1) in zip(examples, scores):
            span = spans[example.id]
            found = bool(span.text)
            row = {"id": example.id, "question": example.question, "gold": [a.text for a in example.answers],
                   "gold_starts": [a.start for a in example.answers], "pred": span.text,
                   "pred_start": span.start if found else None, "pred_end": span.end if found else None,
                   "exact_match": int(em), "f1": float(f1)}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
