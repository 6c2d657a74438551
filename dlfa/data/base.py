"""The task contract: what a task is, what an example is, and how examples become model features.

Readers (dlfa.data.readers), sources (hub, data root, classroom pack) and the registry build on this;
the trainer and the evaluator consume `EncodedSplit`s.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dlfa.errors import DataError

TaskKind = Literal["token", "sentence", "pair", "multiple_choice", "qa", "retrieval"]
TASK_FAMILIES = {"token": "tagging", "sentence": "classification", "pair": "pair", "multiple_choice": "multiple choice",
                 "qa": "question answering", "retrieval": "retrieval"}
IGNORE_INDEX = -100
SENTENCEPIECE_SPACE = "▁"


@dataclass(frozen=True)
class TaskInfo:
    """A task: its kind, label set and metric.

    multiple_choice tasks: `labels` names the choices in order (every example has len(labels) choices) and an
    example's label is its gold choice's name.

    qa tasks (extractive question answering, dlfa.data.qa): no labels; their examples are QaExamples.

    retrieval tasks (Tatoeba, dlfa.data.tatoeba): nothing is trained; each language's "test" examples are sentence
    pairs (`text` the language's, `text_pair` its English translation), measured by dlfa.analysis.tatoeba_job.

    metric: "accuracy" | "entity_f1" (seqeval, IOB2 tags) | "mcc" (Matthews) | "f1" (binary, positive = labels[1])
    | "span_f1" (QA: SQuAD F1, exact match reported beside it) | "retrieval_accuracy" (the mean of both directions).
    """

    name: str
    kind: TaskKind
    labels: tuple[str, ...]
    metric: str
    description: str = ""
    intermediate: bool = False  # usable as an English intermediate task

    def label_id(self, label: str) -> int:
        return self.labels.index(label)


@dataclass(frozen=True)
class Example:
    """One labeled example.

    token tasks: `words` and `tags` (one tag per word); sentence tasks: `text` and `label`;
    pair tasks: `text`, `text_pair` and `label`; multiple-choice tasks: `text` (the context), optionally
    `text_pair` (the question), `choices` and `label` (the gold choice's name). `item_id` aligns translations of the same item
    (XNLI / PAWS-X rows, Parallel UD sentence ids); `source` is "file:line" for error messages.
    """

    text: str = ""
    text_pair: str | None = None
    words: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    label: str | None = None
    choices: tuple[str, ...] = ()
    item_id: str | None = None
    source: str = ""


@dataclass
class EncodedSplit:
    """Model-ready features of one (task, language, split).

    Each feature: `input_ids` (T,), optional `token_type_ids` (T,), `labels`: an int (sentence/pair) or
    a list of T ints with IGNORE_INDEX everywhere but the first sub-word of each word (token tasks).
    Multiple-choice features hold one sequence per choice: `input_ids` and `token_type_ids` are C lists (C × T_c),
    `labels` the gold choice's index. `truncated` counts examples cut at `max_length` (reported, never silent).
    """

    task: str
    language: str
    split: str
    features: list[dict] = field(default_factory=list)
    truncated: int = 0

    def __len__(self) -> int:
        return len(self.features)

    def gold(self) -> list:
        """The gold labels as predictions are scored against them: an int per example, or per sentence a list of
        its labeled sub-words' labels (token tasks)."""
        return [[y for y in f["labels"] if y != IGNORE_INDEX] if isinstance(f["labels"], list) else f["labels"]
                for f in self.features]


def first_subword_positions(tokens: list[str], word_ids: list[int | None]) -> dict[int, int]:
    """Map word index -> position of its labeled sub-word.

    The labeled sub-word is the word's first piece that is not a lone "▁" (SentencePiece often splits a
    word into a bare "▁" and the word; labelling the bare "▁" throws the word away, and most Chinese words
    begin with one: tests/test_registry.py checks this on Chinese).
    """
    chosen: dict[int, int] = {}
    for position, (token, word) in enumerate(zip(tokens, word_ids)):
        if word is None:
            continue
        if word not in chosen:
            chosen[word] = position
        elif tokens[chosen[word]] == SENTENCEPIECE_SPACE and token != SENTENCEPIECE_SPACE:
            chosen[word] = position
    return chosen


def encode_examples(
    examples: list[Example], task: TaskInfo, tokenizer, max_length: int, language: str = "", split: str = ""
) -> EncodedSplit:
    """Tokenize examples for `task` (a fast Hugging Face tokenizer) into an EncodedSplit."""
    encoded = EncodedSplit(task=task.name, language=language, split=split)
    for example in examples:
        if task.kind == "multiple_choice":
            feature, cut = _encode_choices(example, task, tokenizer, max_length)
            encoded.truncated += cut
            encoded.features.append(feature)
            continue
        if task.kind == "token":
            full = tokenizer(list(example.words), is_split_into_words=True, truncation=False)
            out = tokenizer(list(example.words), is_split_into_words=True, truncation=True, max_length=max_length)
            tokens = tokenizer.convert_ids_to_tokens(out["input_ids"])
            positions = first_subword_positions(tokens, out.word_ids())
            labels = [IGNORE_INDEX] * len(out["input_ids"])
            for word, position in positions.items():
                labels[position] = task.label_id(example.tags[word])
            feature = {"input_ids": out["input_ids"], "labels": labels}
        else:
            kwargs = {"text_pair": example.text_pair} if task.kind == "pair" else {}
            full = tokenizer(example.text, truncation=False, **kwargs)
            truncation = "longest_first" if task.kind == "pair" else True
            out = tokenizer(example.text, truncation=truncation, max_length=max_length, **kwargs)
            feature = {"input_ids": out["input_ids"], "labels": task.label_id(example.label)}
        if "token_type_ids" in out:
            feature["token_type_ids"] = out["token_type_ids"]
        if len(full["input_ids"]) > max_length:
            encoded.truncated += 1
        encoded.features.append(feature)
    return encoded


def _encode_choices(example: Example, task: TaskInfo, tokenizer, max_length: int) -> tuple[dict, bool]:
    """One (context, [question] choice) pair per choice: input_ids C × T_c, the gold choice's index; and whether
    any pair was cut at max_length."""
    if len(example.choices) != len(task.labels):
        raise DataError(f"{len(example.choices)} choices, but task {task.name} has {len(task.labels)}",
                        example.source or None)
    seconds = [f"{example.text_pair} {choice}" if example.text_pair else choice for choice in example.choices]
    contexts = [example.text] * len(seconds)
    full = tokenizer(contexts, seconds, truncation=False)
    out = tokenizer(contexts, seconds, truncation="longest_first", max_length=max_length)
    feature = {"input_ids": out["input_ids"], "labels": task.label_id(example.label)}
    if "token_type_ids" in out:
        feature["token_type_ids"] = out["token_type_ids"]
    return feature, any(len(ids) > max_length for ids in full["input_ids"])
