"""Token attributions of one prediction with captum's integrated gradients.

`LayerIntegratedGradients` over the word embeddings (B × T × E), from a baseline that keeps the special tokens
and puts PAD everywhere between them, to the input. Each token's score is its attribution summed over E; the
scores sum to f(input) − f(baseline) up to the convergence delta, where f is the target class's logit (for a
token task: at the explained word's labeled sub-word). A small |delta| means the attribution is faithful.

Question answering (`span_integrated_gradients`) explains the predicted answer twice over the (question,
context) tokens: f is the start logit at the answer's first token, then the end logit at its last token.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from dlfa.errors import ConfigError
from dlfa.engine.evaluate import _head
from dlfa.data.base import first_subword_positions
from dlfa.data.qa_features import best_span


@dataclass
class Attribution:
    """Attribution of one prediction: `scores[i]` belongs to `tokens[i]` (special tokens included)."""

    tokens: list[str]
    scores: list[float]
    predicted: str  # the predicted label
    probability: float  # its probability
    target: str  # the label explained
    target_probability: float
    delta: float  # convergence delta: sum(scores) − (f(input) − f(baseline))
    task: str
    word_index: int | None = None  # token tasks: the word explained
    position: int | None = None  # token tasks: its labeled sub-word's index in `tokens`

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SpanAttribution:
    """Attribution of a predicted answer span: per token (special tokens included) `segments[i]` ("question",
    "context" or None for a special token), its attribution to the start logit at the answer's first token
    (`start_scores`) and to the end logit at its last token (`end_scores`), with each one's convergence delta."""

    tokens: list[str]
    segments: list[str | None]
    start_scores: list[float]
    end_scores: list[float]
    answer: str  # the predicted answer: context[answer_start:answer_end]
    answer_start: int
    answer_end: int
    start_position: int  # token index of the answer's first token
    end_position: int
    start_delta: float
    end_delta: float
    task: str
    truncated: bool  # the context was cut at max_length tokens

    def to_dict(self) -> dict:
        return asdict(self)


def _baseline(input_ids: torch.Tensor, special: torch.Tensor, pad_id: int) -> torch.Tensor:
    """input_ids with every non-special token replaced by PAD (1 × T)."""
    return torch.where(special.bool(), input_ids, torch.full_like(input_ids, pad_id))


def integrated_gradients(
    model,
    tokenizer,
    text: str,
    task: str | None = None,
    text_pair: str | None = None,
    target: int | None = None,
    steps: int = 32,
    word_index: int = 0,
    max_length: int = 512,
) -> Attribution:
    """Explain `model`'s prediction (a DlfaModel) for head `task` (default: its only head) on one text.

    Pair tasks need `text_pair`; token tasks split `text` on whitespace and explain the tag of word `word_index`.
    `target` is a label id (default: the predicted one). Question answering: `text` is the question, `text_pair`
    the context, and the result a SpanAttribution (`span_integrated_gradients`).
    """
    from captum.attr import LayerIntegratedGradients

    task, head = _head(model, task)
    if head.kind == "qa":
        if not text_pair:
            raise ConfigError(f"task {task} answers a question from a context: give the context as text_pair")
        return span_integrated_gradients(model, tokenizer, text, text_pair, task, steps, max_length)
    if head.kind == "pair" and text_pair is None:
        raise ConfigError(f"task {task} compares two texts: give text_pair")
    if head.kind == "token":
        words = text.split()
        enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length,
                        return_tensors="pt", return_special_tokens_mask=True)
        positions = first_subword_positions(tokenizer.convert_ids_to_tokens(enc["input_ids"][0]), enc.word_ids(0))
        if word_index not in positions:
            raise ConfigError(f"word {word_index} is not in the (truncated) text of {len(positions)} word(s)")
        position = positions[word_index]
    else:
        pair = (text_pair,) if head.kind == "pair" else ()
        enc = tokenizer(text, *pair, truncation=True, max_length=max_length, return_tensors="pt",
                        return_special_tokens_mask=True)
        position = None

    model.eval()
    device = next(model.parameters()).device
    input_ids = enc["input_ids"].to(device)  # 1 × T
    attention_mask = enc["attention_mask"].to(device)
    token_type_ids = enc["token_type_ids"].to(device) if "token_type_ids" in enc else None
    baseline = _baseline(input_ids, enc["special_tokens_mask"].to(device), tokenizer.pad_token_id)

    def logits(ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor | None) -> torch.Tensor:
        """B × C logits of the explained prediction (captum expands the batch to the interpolation steps)."""
        out = model(ids, mask.expand(len(ids), -1), task=task,
                    token_type_ids=None if types is None else types.expand(len(ids), -1)).logits
        return out[:, position] if position is not None else out

    with torch.no_grad():
        probabilities = logits(input_ids, attention_mask, token_type_ids)[0].float().softmax(-1)
    predicted = int(probabilities.argmax())
    target = predicted if target is None else int(target)
    if not 0 <= target < len(head.labels):
        raise ConfigError(f"target {target} is not a label id of task {task} (0…{len(head.labels) - 1})")

    explainer = LayerIntegratedGradients(logits, model.encoder.get_input_embeddings())
    attributions, delta = explainer.attribute(
        input_ids, baselines=baseline, target=target, additional_forward_args=(attention_mask, token_type_ids),
        n_steps=steps, return_convergence_delta=True,
    )  # attributions: 1 × T × E
    return Attribution(
        tokens=tokenizer.convert_ids_to_tokens(enc["input_ids"][0]),
        scores=attributions[0].sum(-1).float().tolist(),
        predicted=head.labels[predicted],
        probability=float(probabilities[predicted]),
        target=head.labels[target],
        target_probability=float(probabilities[target]),
        delta=float(delta[0]),
        task=task,
        word_index=word_index if position is not None else None,
        position=position,
    )


def span_integrated_gradients(model, tokenizer, question: str, context: str, task: str, steps: int = 32,
                              max_length: int = 512) -> SpanAttribution:
    """Integrated gradients of a question answering model's predicted answer on (question, context), one window
    of at most `max_length` tokens (a longer context is cut): the best span as in evaluation (best_span), then
    the start logit at its first token and the end logit at its last token explained over the input tokens."""
    from captum.attr import LayerIntegratedGradients

    enc = tokenizer(question, context, truncation="only_second", max_length=max_length, return_tensors="pt",
                    return_offsets_mapping=True, return_special_tokens_mask=True)
    parts = enc.sequence_ids(0)
    offsets = [tuple(span) if part == 1 else None for span, part in zip(enc["offset_mapping"][0].tolist(), parts)]
    model.eval()
    device = next(model.parameters()).device
    input_ids, attention_mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)  # 1 × T
    token_type_ids = enc["token_type_ids"].to(device) if "token_type_ids" in enc else None
    baseline = _baseline(input_ids, enc["special_tokens_mask"].to(device), tokenizer.pad_token_id)

    def span_logits(ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor | None):
        out = model(ids, mask.expand(len(ids), -1), task=task,
                    token_type_ids=None if types is None else types.expand(len(ids), -1))
        return out.start_logits, out.end_logits  # B × T each

    with torch.no_grad():
        starts, ends = (logits[0].float().cpu().numpy() for logits in span_logits(input_ids, attention_mask,
                                                                                  token_type_ids))
    span = best_span(context, [{"offsets": offsets}], [starts], [ends])
    if not span.text:
        raise ConfigError("the model finds no answer span in this context (no valid start and end)")
    # tokens may share a start (a lone "▁" and the next one): the one best_span scored is the highest logit
    first = max((i for i, o in enumerate(offsets) if o and o[0] == span.start), key=lambda i: starts[i])
    last = max((i for i, o in enumerate(offsets) if o and o[1] == span.end), key=lambda i: ends[i])
    scores, deltas = [], []
    for side, position in ((0, first), (1, last)):
        explainer = LayerIntegratedGradients(lambda *args, side=side, position=position:
                                             span_logits(*args)[side][:, position],
                                             model.encoder.get_input_embeddings())
        attributions, delta = explainer.attribute(
            input_ids, baselines=baseline, additional_forward_args=(attention_mask, token_type_ids),
            n_steps=steps, return_convergence_delta=True)  # 1 × T × E
        scores.append(attributions[0].sum(-1).float().tolist())
        deltas.append(float(delta[0]))
    full = len(tokenizer(question, context)["input_ids"])
    return SpanAttribution(
        tokens=tokenizer.convert_ids_to_tokens(enc["input_ids"][0]),
        segments=[None if part is None else ("question", "context")[part] for part in parts],
        start_scores=scores[0], end_scores=scores[1], answer=span.text, answer_start=span.start,
        answer_end=span.end, start_position=first, end_position=last, start_delta=deltas[0], end_delta=deltas[1],
        task=task, truncated=full > max_length)
