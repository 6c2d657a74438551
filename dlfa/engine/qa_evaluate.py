"""Zero-shot evaluation of extractive question answering: windows -> span logits -> best answers -> exact match
and F1 per language with bootstrap intervals over questions.

`net(**batch)` takes input_ids, attention_mask (and token_type_ids when the windows have them) B × T, plus
`task` when given, and returns an output with `start_logits` and `end_logits` B × T (dlfa.model.qa_head.SpanOutput,
or a model output that carries them).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from dlfa.data.qa import QaExample
from dlfa.data.qa_features import MAX_ANSWER_TOKENS, N_BEST, pad_windows, predict_answers
from dlfa.engine.evaluate import EVAL_BATCH_SIZE, autocast, sorted_batches, to_device
from dlfa.engine.qa_metrics import qa_scores_with_intervals

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
) -> tuple[dict[str, dict], dict[str, str]]:
    """One language's {"exact_match": {...}, "span_f1": {...}} (points, 95% bootstrap over questions) and the
    predicted answer of every question (id -> text). `windows`: encode_qa's features of `examples`."""
    starts, ends = predict_span_logits(net, windows, pad_token_id, device, amp_dtype, task=task)
    predictions = predict_answers(examples, windows, starts, ends, n_best, max_answer_tokens)
    return qa_scores_with_intervals(examples, predictions, normalization, bootstrap_samples, seed), predictions
