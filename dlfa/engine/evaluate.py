"""Zero-shot evaluation: per-language task metrics with bootstrap intervals, fusion-weight statistics,
and two calls on typed text: `predict` (for library users) and `fusion_weights_for_text` (the app's).

A dataset here is anything with `lengths` (N,) and `collate(indices) -> batch`, where `net(**batch)`
returns a DlfaOutput and `batch["labels"]` holds the gold labels: B (sentence, pair) or B × T (token, with
IGNORE_INDEX on unlabeled sub-words). Fine-tuning serves token ids (dlfa.engine.datasets.EncodedDataset), probing
serves cached hidden states (dlfa.engine.probe.HiddenStateDataset); both evaluate through the same code.
"""
from __future__ import annotations

from contextlib import nullcontext

import gzip
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dlfa.errors import ConfigError
from dlfa.io import atomic_file
from dlfa.engine.metrics import majority_score, score_with_interval
from dlfa.model.modeling import HeadConfig
from dlfa.data.base import IGNORE_INDEX, TaskInfo, first_subword_positions

EVAL_BATCH_SIZE = 32  # sorted by length; larger batches buy no speed on a CPU, only memory
FUSION_POSITIONS = 32  # per-position fusion statistics cover the first 32 positions
PREDICTIONS_DIR = "predictions"  # a run's per-example test predictions: <run>/predictions/<language>.jsonl.gz


def to_device(batch: dict, device: torch.device) -> dict:
    """Move every tensor of a batch (tuples of tensors too, None kept) to `device`."""

    def move(value):
        if isinstance(value, torch.Tensor):
            return value.to(device, non_blocking=True)
        if isinstance(value, tuple):
            return tuple(move(v) for v in value)
        return value

    return {key: move(value) for key, value in batch.items()}


def autocast(device: torch.device, amp_dtype: torch.dtype | None):
    """Mixed precision on `device` when amp_dtype is set (bf16), else a no-op."""
    return torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()


def sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Index batches in order of decreasing length (least padding; the largest batch comes first)."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class FusionStatistics:
    """Running means of the DLFA fusion weight W (on the last layer; 1 − W goes to the lower layer),
    averaged over channels: overall, per position (first FUSION_POSITIONS), and per gold tag (token tasks)."""

    def __init__(self, labels: list[str] | None = None, positions: int = FUSION_POSITIONS):
        self.labels = labels
        self.total, self.count = 0.0, 0
        self.position_sum, self.position_count = np.zeros(positions), np.zeros(positions)
        n_tags = len(labels) if labels else 0
        self.tag_sum, self.tag_count = np.zeros(n_tags), np.zeros(n_tags)

    def add(self, weights: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        """weights: B × T × E; attention_mask: B × T (B × C × T for multiple choice, whose weights are
        (B·C) × T × E); labels: B × T gold tags of a token task, else None."""
        w = weights.float().mean(-1).cpu()  # B × T
        mask = attention_mask.bool().cpu().reshape(w.shape)
        self.total += float(w[mask].sum())
        self.count += int(mask.sum())
        p = min(w.shape[1], len(self.position_sum))
        self.position_sum[:p] += (w[:, :p] * mask[:, :p]).sum(0).numpy()
        self.position_count[:p] += mask[:, :p].sum(0).numpy()
        if labels is not None and self.labels:
            labels = labels.cpu()
            tagged = mask & (labels != IGNORE_INDEX)
            tags = labels[tagged].numpy()
            self.tag_sum += np.bincount(tags, weights=w[tagged].numpy(), minlength=len(self.labels))
            self.tag_count += np.bincount(tags, minlength=len(self.labels))

    def result(self) -> dict:
        """{"mean_last", "mean_low", "tokens", "per_position": [P], "per_tag": {tag: mean W}}."""
        mean = self.total / max(self.count, 1)
        seen = self.position_count > 0
        per_position = np.divide(self.position_sum, self.position_count, where=seen, out=np.zeros_like(self.position_sum))
        out = {"mean_last": mean, "mean_low": 1 - mean, "tokens": self.count,
               "per_position": [round(float(v), 6) for v in per_position[seen]]}
        if self.labels:
            out["per_tag"] = {tag: float(s / c) for tag, s, c in zip(self.labels, self.tag_sum, self.tag_count) if c}
        return out


@torch.inference_mode()
def predict_dataset(
    net: nn.Module,
    dataset,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    batch_size: int = EVAL_BATCH_SIZE,
    fusion: FusionStatistics | None = None,
    confidences: list | None = None,
) -> tuple[list, list]:
    """(gold, pred) in dataset order: one int per example (multiple choice: the choice's index), or per sentence
    a list of ints at its labeled sub-words (token tasks). Fills `fusion` from the outputs' fusion weights when given, and `confidences`
    (an empty list) with the softmax probability of each predicted label (sentence and pair tasks)."""
    net.eval()
    gold: list = [None] * len(dataset.lengths)
    pred: list = [None] * len(dataset.lengths)
    if confidences is not None:
        confidences.extend([None] * len(dataset.lengths))
    for indices in sorted_batches(dataset.lengths, batch_size):
        batch = to_device(dataset.collate(indices), device)
        with autocast(device, amp_dtype):
            out = net(**batch)
        labels, guesses = batch["labels"].cpu(), out.logits.argmax(-1).cpu()
        if labels.dim() == 2:  # token task: keep the labeled sub-words
            keep = labels != IGNORE_INDEX
            for row, index in enumerate(indices):
                gold[index], pred[index] = labels[row][keep[row]].tolist(), guesses[row][keep[row]].tolist()
        else:
            probabilities = out.logits.float().softmax(-1).max(-1).values.cpu()  # B
            for row, index in enumerate(indices):
                gold[index], pred[index] = int(labels[row]), int(guesses[row])
                if confidences is not None:
                    confidences[index] = float(probabilities[row])
        if fusion is not None and out.fusion_weights is not None:
            fusion.add(out.fusion_weights, batch["attention_mask"], labels if labels.dim() == 2 else None)
    return gold, pred


def evaluate_dataset(
    net: nn.Module,
    dataset,
    task: TaskInfo,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    bootstrap_samples: int = 1000,
    seed: int = 0,
    majority_label: int | None = None,
    with_fusion: bool = False,
    predictions_file: Path | None = None,
) -> tuple[dict, dict | None]:
    """One language's metrics {"metric", "value", "ci_low", "ci_high", "n"[, "majority"]} (points, 95%
    bootstrap over examples) and, with `with_fusion` on a DLFA model, its fusion statistics. With
    `predictions_file`, the per-example predictions are written there (`write_predictions`)."""
    fusion = FusionStatistics(list(task.labels) if task.kind == "token" else None) if with_fusion else None
    confidences = [] if task.kind != "token" else None
    gold, pred = predict_dataset(net, dataset, device, amp_dtype, fusion=fusion, confidences=confidences)
    if predictions_file is not None:
        write_predictions(predictions_file, task, gold, pred, confidences)
    metrics = score_with_interval(task.metric, gold, pred, list(task.labels), bootstrap_samples, seed)
    if majority_label is not None:
        metrics["majority"] = majority_score(task.metric, gold, list(task.labels), majority_label)
    return metrics, fusion.result() if fusion is not None and fusion.count else None


def predictions_path(run_dir: str | Path, language: str) -> Path:
    """Where a run keeps its per-example test predictions for one language."""
    return Path(run_dir) / PREDICTIONS_DIR / f"{language}.jsonl.gz"


def write_predictions(path: Path, task: TaskInfo, gold: list, pred: list, confidences: list | None = None) -> None:
    """One JSON line per test example, in dataset order, gzipped (written atomically):
    {"gold", "pred"} as label names: one per example, or per word a list (token tasks: the words' labeled
    first sub-words, so a sentence cut at max_length has fewer); sentence, pair and multiple-choice tasks add
    "confidence", the probability of the predicted label (multiple choice: the predicted choice's softmax
    probability over the choices)."""
    labels = task.labels

    def names(values):
        return [labels[v] for v in values] if isinstance(values, list) else labels[values]

    with atomic_file(path) as staging, gzip.open(staging, "wt", encoding="utf-8") as handle:
        for i, (g, p) in enumerate(zip(gold, pred)):
            row = {"gold": names(g), "pred": names(p)}
            if confidences is not None:
                row["confidence"] = round(confidences[i], 5)
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


# ----------------------------------------------------------------------------------------------------
# Typed text (the app)


def _encode_texts(tokenizer, texts: list, kind: str, max_length: int) -> tuple[dict, list[list[str]]]:
    """Tokenize raw inputs of one task kind: padded tensors, and the words of each text (token tasks)."""
    if kind == "token":
        words = [text.split() if isinstance(text, str) else list(text) for text in texts]
        enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length,
                        padding=True, return_tensors="pt")
        return enc, words
    if kind in ("pair", "qa"):  # question answering: (question, context), only the context is cut
        if not all(isinstance(t, (tuple, list)) and len(t) == 2 and t[1] for t in texts):
            raise ConfigError("question answering needs a question and a context" if kind == "qa"
                              else "a pair task needs (text, text_pair) inputs")
        enc = tokenizer([t[0] for t in texts], [t[1] for t in texts], max_length=max_length, padding=True,
                        truncation="only_second" if kind == "qa" else True, return_tensors="pt")
        return enc, []
    return tokenizer(list(texts), truncation=True, max_length=max_length, padding=True, return_tensors="pt"), []


@torch.inference_mode()
def _run(model, enc: dict, task: str):
    model.eval()
    device = next(model.parameters()).device
    kwargs = {"token_type_ids": enc["token_type_ids"].to(device)} if "token_type_ids" in enc else {}
    return model(enc["input_ids"].to(device), enc["attention_mask"].to(device), task=task, **kwargs)


def _head(model, task: str | None) -> tuple[str, HeadConfig]:
    """The head that typed text goes through; multiple-choice heads are refused (a typed question with its
    choices is not an input of the app's typed-text calls yet)."""
    task = task or next(iter(model.config.heads))
    if task not in model.config.heads:
        raise ConfigError(f"this model has no head for task '{task}' (heads: {', '.join(model.config.heads)})")
    if model.config.heads[task].kind == "multiple_choice":
        raise ConfigError(f"typed text is not supported for the multiple-choice task '{task}' yet: "
                          "its predictions are in the run's test predictions")
    return task, model.config.heads[task]


def predict(model, tokenizer, texts, task: str | None = None, max_length: int = 512):
    """Predictions of `model`'s head `task` (default: its only head).

    texts: a str (pair task: a (text, text_pair) tuple), or a list of them. Token tasks split each text on
    whitespace and tag each word at its first real sub-word. Returns, per input, {"label", "scores"}
    (sentence, pair) or {"words", "tags"} (token); a single input gives a single dict.
    """
    task, head = _head(model, task)
    single = isinstance(texts, (str, tuple))
    batch = [texts] if single else list(texts)
    results = []
    for start in range(0, len(batch), EVAL_BATCH_SIZE):
        chunk = batch[start : start + EVAL_BATCH_SIZE]
        enc, words = _encode_texts(tokenizer, chunk, head.kind, max_length)
        logits = _run(model, enc, task).logits.float().cpu()
        for row in range(len(chunk)):
            if head.kind == "token":
                tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"][row])
                positions = first_subword_positions(tokens, enc.word_ids(row))
                tags = [head.labels[int(logits[row, positions[w]].argmax())] if w in positions else None
                        for w in range(len(words[row]))]
                results.append({"words": words[row], "tags": tags})
            else:
                probabilities = logits[row].softmax(-1)
                results.append({"label": head.labels[int(probabilities.argmax())],
                                "scores": dict(zip(head.labels, map(float, probabilities)))})
    return results[0] if single else results


def fusion_weights_for_text(model, tokenizer, text, task: str | None = None, max_length: int = 512) -> dict:
    """W on one typed text (a (text, text_pair) tuple for a pair task, (question, context) for question
    answering) of a DLFA model.

    Returns {"tokens": [T], "weights": T × E (W on the last layer, 1 − W on the fusion layer),
    "per_token_mean": [T], "mean_last", "fusion_layer", "segments": [T] each token's part ("question" /
    "context" for question answering, "text" / "text pair" for a pair, "text" for one text; None for special
    tokens), "segment_means": {part: mean W over its tokens}}.
    """
    if model.config.aggregation != "dlfa":
        raise ConfigError(f"fusion weights exist only for the dlfa aggregation, this model uses "
                          f"'{model.config.aggregation}'")
    task, head = _head(model, task)
    kind = head.kind if head.kind in ("pair", "qa") else "sentence"
    enc, _ = _encode_texts(tokenizer, [text], kind, max_length)
    weights = _run(model, enc, task).fusion_weights[0].float().cpu()  # T × E
    per_token = weights.mean(-1)
    names = {"qa": ("question", "context"), "pair": ("text", "text pair")}.get(kind, ("text",))
    segments = [None if part is None else names[part] for part in enc.sequence_ids(0)]
    means = {name: float(per_token[[s == name for s in segments]].mean()) for name in names if name in segments}
    return {"tokens": tokenizer.convert_ids_to_tokens(enc["input_ids"][0]), "weights": weights.tolist(),
            "per_token_mean": per_token.tolist(), "mean_last": float(per_token.mean()),
            "fusion_layer": model.config.fusion_layer, "segments": segments, "segment_means": means}
