"""Question answering features: (question, context) windows for a span head, and the way back from start/end
logits to an answer's characters, as in Hugging Face's run_qa example.

A context longer than one window is cut into overlapping windows (`doc_stride` tokens shared between
neighbours), each `<s> question </s></s> context part </s>` at most `max_length` tokens. A window's feature:
- `input_ids` (T,) (and `token_type_ids` (T,) when the tokenizer makes them);
- `start_positions`, `end_positions`: the token positions of the first gold answer's first and last token
  when the whole answer lies in the window, else 0 (the `<s>` token: "not in this window");
- `offsets`: per token, (start, end) character offsets in the context, None outside the context (special
  tokens, the question), so that a predicted span maps back to `context[start:end]`;
- `example_id`: the question's id (several windows share it).
An answer is wholly inside some window when it is at most `doc_stride` tokens long (XQuAD's longest, in Chinese,
are about 50 tokens); a longer one may be cut by every window and then has no positive window.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dlfa.errors import ConfigError
from dlfa.data.base import EncodedSplit
from dlfa.data.qa import QaExample

MAX_LENGTH = 384
DOC_STRIDE = 128
MAX_QUESTION_TOKENS = 64
N_BEST = 20
MAX_ANSWER_TOKENS = 30


def _cut_question(question: str, tokenizer, max_tokens: int) -> tuple[str, bool]:
    """The question cut after its `max_tokens`-th token (at that token's last character), and whether it was."""
    offsets = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    if len(offsets) <= max_tokens:
        return question, False
    return question[: offsets[max_tokens - 1][1]], True


def _gold_positions(offsets: list, start_char: int, end_char: int) -> tuple[int, int]:
    """Token positions (first, last) of the characters [start_char, end_char) in a window whose context tokens
    have `offsets` (None elsewhere); (0, 0) when the answer is not wholly inside the window. The first token is
    the last one starting at or before start_char (so a lone "▁", which shares its offsets' start with the
    next token, is skipped), the last the first one ending at or after end_char."""
    inside = [i for i, span in enumerate(offsets) if span is not None]
    if not inside or offsets[inside[0]][0] > start_char or offsets[inside[-1]][1] < end_char:
        return 0, 0
    first = max(i for i in inside if offsets[i][0] <= start_char)
    last = min(i for i in inside if offsets[i][1] >= end_char)
    return first, max(first, last)


def encode_qa(
    examples: Sequence[QaExample],
    tokenizer,
    max_length: int = MAX_LENGTH,
    doc_stride: int = DOC_STRIDE,
    max_question_tokens: int = MAX_QUESTION_TOKENS,
    task: str = "",
    split: str = "",
) -> EncodedSplit:
    """Windows of every example (a fast Hugging Face tokenizer; see the module docstring). The split's
    `truncated` counts the questions cut to `max_question_tokens`."""
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError("question answering needs a fast tokenizer (offset mappings): this one is not")
    room = max_length - max_question_tokens - tokenizer.num_special_tokens_to_add(pair=True)
    if room <= doc_stride:
        raise ConfigError(f"max_length {max_length} leaves {room} context tokens per window after a question of "
                          f"{max_question_tokens} tokens: fewer than doc_stride {doc_stride}")
    encoded = EncodedSplit(task=task, language=examples[0].language if examples else "", split=split)
    for example in examples:
        question, cut = _cut_question(example.question, tokenizer, max_question_tokens)
        encoded.truncated += cut
        windows = tokenizer(question, example.context, truncation="only_second", max_length=max_length,
                            stride=doc_stride, return_overflowing_tokens=True, return_offsets_mapping=True)
        answer = example.answers[0]
        for w, input_ids in enumerate(windows["input_ids"]):
            offsets = [tuple(span) if part == 1 else None
                       for span, part in zip(windows["offset_mapping"][w], windows.sequence_ids(w))]
            start, end = _gold_positions(offsets, answer.start, answer.end)
            feature = {"input_ids": input_ids, "start_positions": start, "end_positions": end,
                       "offsets": offsets, "example_id": example.id}
            if "token_type_ids" in windows:
                feature["token_type_ids"] = windows["token_type_ids"][w]
            encoded.features.append(feature)
    return encoded


def pad_windows(windows: Sequence[dict], pad_token_id: int) -> dict[str, np.ndarray]:
    """A batch of windows, right-padded to the longest: input_ids B × T (pad_token_id), attention_mask B × T,
    token_type_ids B × T when the windows have them, start_positions and end_positions B (int64 arrays)."""
    width = max(len(window["input_ids"]) for window in windows)
    lengths = np.array([len(window["input_ids"]) for window in windows])
    batch = {"input_ids": np.full((len(windows), width), pad_token_id, dtype=np.int64),
             "attention_mask": (np.arange(width)[None] < lengths[:, None]).astype(np.int64)}
    keys = ("input_ids", "token_type_ids") if "token_type_ids" in windows[0] else ("input_ids",)
    for key in keys[1:]:
        batch[key] = np.zeros((len(windows), width), dtype=np.int64)
    for row, window in enumerate(windows):
        for key in keys:
            batch[key][row, : lengths[row]] = window[key]
    for key in ("start_positions", "end_positions"):
        batch[key] = np.array([window[key] for window in windows], dtype=np.int64)
    return batch


@dataclass(frozen=True)
class SpanPrediction:
    """The best span of one question: its text, character offsets in the context and score (start + end logit)."""

    text: str
    start: int
    end: int
    score: float


def best_span(
    context: str,
    windows: Sequence[dict],
    start_logits: Sequence[np.ndarray],
    end_logits: Sequence[np.ndarray],
    n_best: int = N_BEST,
    max_answer_tokens: int = MAX_ANSWER_TOKENS,
) -> SpanPrediction:
    """The highest-scoring span over a question's windows: among each window's `n_best` start and `n_best` end
    positions, the pairs inside the context with start <= end and at most `max_answer_tokens` tokens, scored by
    start + end logit. start_logits / end_logits: one array (T_w,) per window (longer arrays are padding and
    ignored). An empty prediction (score -inf) when no window has a valid span."""
    best = SpanPrediction("", 0, 0, float("-inf"))
    for window, start_row, end_row in zip(windows, start_logits, end_logits):
        offsets = window["offsets"]
        starts = np.asarray(start_row, dtype=np.float64)[: len(offsets)]
        ends = np.asarray(end_row, dtype=np.float64)[: len(offsets)]
        for s in np.argsort(-starts)[:n_best]:
            for e in np.argsort(-ends)[:n_best]:
                if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > max_answer_tokens:
                    continue
                score = float(starts[s] + ends[e])
                if score > best.score:
                    start_char, end_char = offsets[s][0], offsets[e][1]
                    best = SpanPrediction(context[start_char:end_char], start_char, end_char, score)
    return best


def predict_spans(
    examples: Sequence[QaExample],
    features: Sequence[dict],
    start_logits: Sequence[np.ndarray],
    end_logits: Sequence[np.ndarray],
    n_best: int = N_BEST,
    max_answer_tokens: int = MAX_ANSWER_TOKENS,
) -> dict[str, SpanPrediction]:
    """question id -> its best span (text and character offsets in its context), from the logits of every window
    (features in encode_qa's order, start_logits / end_logits: one row per feature)."""
    by_question: dict[str, list[int]] = {}
    for row, feature in enumerate(features):
        by_question.setdefault(feature["example_id"], []).append(row)
    spans = {}
    for example in examples:
        rows = by_question.get(example.id, [])
        spans[example.id] = best_span(example.context, [features[r] for r in rows], [start_logits[r] for r in rows],
                                      [end_logits[r] for r in rows], n_best, max_answer_tokens)
    return spans
