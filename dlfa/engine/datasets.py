"""The data a unit trains and evaluates on: encoded splits stored flat and served as dynamically padded batches
(`collate(indices)` gives the keyword arguments of DlfaModel.forward), and `load_job_data`, which reads and
encodes every split a job needs through the task registry. Question answering splits keep their questions
beside their windows (`QaDataset`): the evaluation maps the windows' span logits back to answers."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from dlfa.data.base import IGNORE_INDEX, EncodedSplit, TaskInfo
from dlfa.data.qa import QaExample
from dlfa.data.qa_features import DOC_STRIDE, MAX_QUESTION_TOKENS, encode_qa, pad_windows
from dlfa.data.registry import DataSource, available_languages, get_task, load_encoded, load_examples
from dlfa.engine.spec import JobSpec
from dlfa.errors import ConfigError

# the official evaluation script of each QA task
QA_NORMALIZATIONS = {"squad": "squad", "xquad": "squad", "mlqa": "mlqa", "tydiqa": "squad"}


class EncodedDataset:
    """An EncodedSplit stored flat (N_tokens ids + offsets) and served as dynamically padded batches.

    collate(indices) -> {input_ids B × T, attention_mask B × T, labels B (sentence, pair) or B × T (token),
    token_type_ids B × T when the tokenizer makes them, task}: the keyword arguments of DlfaModel.forward.
    """

    def __init__(self, split: EncodedSplit, pad_token_id: int):
        features = split.features
        self.task, self.language, self.split = split.task, split.language, split.split
        self.pad_token_id = pad_token_id
        self.truncated = split.truncated
        self.lengths = np.array([len(f["input_ids"]) for f in features], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        self.input_ids = np.fromiter((i for f in features for i in f["input_ids"]), np.int64, self.offsets[-1])
        self.token_level = bool(features) and isinstance(features[0]["labels"], list)
        if self.token_level:
            self.labels = np.fromiter((y for f in features for y in f["labels"]), np.int64, self.offsets[-1])
        else:
            self.labels = np.array([f["labels"] for f in features], dtype=np.int64)
        self.token_type_ids = (
            np.fromiter((t for f in features for t in f["token_type_ids"]), np.int64, self.offsets[-1])
            if features and "token_type_ids" in features[0] else None
        )

    def __len__(self) -> int:
        return len(self.lengths)

    def label_counts(self, num_labels: int) -> np.ndarray:
        """How often each label occurs (labeled sub-words for token tasks)."""
        return np.bincount(self.labels[self.labels != IGNORE_INDEX], minlength=num_labels)

    def _padded(self, flat: np.ndarray, indices: np.ndarray, width: int, fill: int) -> torch.Tensor:
        out = np.full((len(indices), width), fill, dtype=np.int64)
        for row, i in enumerate(indices):
            out[row, : self.lengths[i]] = flat[self.offsets[i] : self.offsets[i + 1]]
        return torch.from_numpy(out)

    def collate(self, indices: np.ndarray) -> dict:
        width = int(self.lengths[indices].max())
        batch = {
            "input_ids": self._padded(self.input_ids, indices, width, self.pad_token_id),
            "attention_mask": torch.from_numpy((np.arange(width)[None] < self.lengths[indices][:, None]).astype(np.int64)),
            "labels": self._padded(self.labels, indices, width, IGNORE_INDEX) if self.token_level
            else torch.from_numpy(self.labels[indices]),
            "task": self.task,
        }
        if self.token_type_ids is not None:
            batch["token_type_ids"] = self._padded(self.token_type_ids, indices, width, 0)
        return batch


class MultipleChoiceDataset:
    """A multiple-choice EncodedSplit (C sequences per example) served as B × C × T batches.

    collate(indices) -> {input_ids B × C × T, attention_mask B × C × T, token_type_ids B × C × T when the
    tokenizer makes them, labels B (the gold choice), task}; `lengths` (N,) is each example's longest choice.
    """

    def __init__(self, split: EncodedSplit, pad_token_id: int):
        self.choices = len(split.features[0]["input_ids"]) if split.features else 0
        sequences = [{key: feature[key][choice] for key in ("input_ids", "token_type_ids") if key in feature}
                     | {"labels": feature["labels"]}
                     for feature in split.features for choice in range(self.choices)]
        self.sequences = EncodedDataset(EncodedSplit(split.task, split.language, split.split, sequences,
                                                     split.truncated), pad_token_id)
        self.task, self.language, self.split = split.task, split.language, split.split
        self.truncated = split.truncated
        self.labels = np.array([f["labels"] for f in split.features], dtype=np.int64)
        self.lengths = (self.sequences.lengths.reshape(-1, self.choices).max(1) if self.choices
                        else np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.labels)

    def label_counts(self, num_labels: int) -> np.ndarray:
        """How often each choice is the gold one."""
        return np.bincount(self.labels, minlength=num_labels)

    def choice_rows(self, indices: np.ndarray) -> np.ndarray:
        """The rows of `sequences` that hold the choices of examples `indices`, example by example (B·C,)."""
        return (np.asarray(indices)[:, None] * self.choices + np.arange(self.choices)).ravel()

    def collate(self, indices: np.ndarray) -> dict:
        flat = self.sequences.collate(self.choice_rows(indices))
        batch = {key: value.view(len(indices), self.choices, -1) for key, value in flat.items()
                 if key in ("input_ids", "attention_mask", "token_type_ids")}
        return batch | {"labels": torch.from_numpy(self.labels[indices]), "task": self.task}


class QaDataset:
    """A question answering split: its questions and their windows (dlfa.data.qa_features.encode_qa), served
    as batches of windows.

    collate(indices) -> {input_ids B × T, attention_mask B × T, token_type_ids B × T when the tokenizer makes
    them, start_positions B, end_positions B, task}; `lengths` (N_windows,) is each window's length."""

    def __init__(self, examples: list[QaExample], split: EncodedSplit, pad_token_id: int, normalization: str):
        self.examples, self.windows = examples, split.features
        self.task, self.language, self.split = split.task, split.language, split.split
        self.pad_token_id, self.normalization = pad_token_id, normalization
        self.truncated = split.truncated
        self.lengths = np.array([len(window["input_ids"]) for window in self.windows], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.windows)

    def collate(self, indices: np.ndarray) -> dict:
        arrays = pad_windows([self.windows[i] for i in indices], self.pad_token_id)
        return {key: torch.from_numpy(value) for key, value in arrays.items()} | {"task": self.task}


def qa_doc_stride(tokenizer, max_length: int) -> int:
    """The windows' overlap: DOC_STRIDE tokens, or half the context room of a window when that is less."""
    room = max_length - MAX_QUESTION_TOKENS - tokenizer.num_special_tokens_to_add(pair=True)
    if room < 16:
        raise ConfigError(f"max_length {max_length} is too short for question answering: a window keeps "
                          f"{MAX_QUESTION_TOKENS} question tokens; use at least {MAX_QUESTION_TOKENS + 32} "
                          "(384 is usual)")
    return min(DOC_STRIDE, room // 2)


def load_qa(task: str, language: str, split: str, source: DataSource, tokenizer, max_length: int,
            limit: int | None) -> QaDataset:
    """The questions (the first `limit`) of one QA split and their windows."""
    examples = load_examples(task, language, split, source, max_examples=limit)
    windows = encode_qa(examples, tokenizer, max_length, qa_doc_stride(tokenizer, max_length), task=task,
                        split=split)
    return QaDataset(examples, windows, tokenizer.pad_token_id, QA_NORMALIZATIONS[task])


def serve(split: EncodedSplit, pad_token_id: int, kind: str) -> "EncodedDataset | MultipleChoiceDataset":
    """The dataset that serves a split of a task of `kind` as batches."""
    return (MultipleChoiceDataset if kind == "multiple_choice" else EncodedDataset)(split, pad_token_id)


@dataclass
class UnitData:
    """What a unit trains and evaluates on. tasks: head name -> TaskInfo (dlfa.engine.spec.JobSpec.head_tasks);
    train: head name -> English training data of every stage's tasks; dev: the target task in the training
    language (None when there is none, and in an intermediate-only job); test: language -> data (empty in an
    intermediate-only job); intermediate_dev: head name -> the English dev set of each intermediate task that
    has one."""

    tasks: dict[str, TaskInfo]
    train: dict[str, object]
    dev: object | None
    test: dict[str, object]
    majority: int  # the most frequent training label of the target task (0 for QA and intermediate-only jobs)
    truncated: dict[str, int] = field(default_factory=dict)  # language -> test examples cut at max_length
    intermediate_dev: dict[str, object] = field(default_factory=dict)

    def map(self, to_dataset) -> "UnitData":
        """The same data with `to_dataset` applied to every dataset (e.g. EncodedDataset -> cached hidden states)."""
        return replace(self, train={name: to_dataset(d) for name, d in self.train.items()},
                       dev=to_dataset(self.dev) if self.dev is not None else None,
                       test={lang: to_dataset(d) for lang, d in self.test.items()},
                       intermediate_dev={name: to_dataset(d) for name, d in self.intermediate_dev.items()})


def as_head(dataset, head: str):
    """`dataset` serving its batches to head `head` (the control arm's `<task>:intermediate`): a shallow copy
    that shares the encoded arrays."""
    if dataset.task == head:
        return dataset
    renamed = copy.copy(dataset)
    renamed.task = head
    return renamed


def load_job_data(spec: JobSpec, tokenizer) -> UnitData:
    """Read and encode every split the units of a job need (the same for all of them) through the task registry:
    every head's training data, each intermediate task's English dev set, and (unless the job is intermediate
    only) the target task's dev set in the training language and its test sets."""
    source = DataSource.resolve(spec.data_root)
    loaded: dict[tuple[str, str, str], object] = {}

    def encoded(task: str, language: str, split: str, limit: int | None) -> "EncodedDataset | QaDataset":
        if (task, language, split) in loaded:  # the control arm trains the target's English data twice
            return loaded[task, language, split]
        if get_task(task).kind == "qa":
            if spec.probe:
                raise ConfigError(f"task {task} (question answering) cannot be probed: fine-tune it (no --probe)")
            data = load_qa(task, language, split, source, tokenizer, spec.max_length, limit)
        else:
            data = serve(load_encoded(task, language, split, source, tokenizer, spec.max_length, max_examples=limit),
                         tokenizer.pad_token_id, get_task(task).kind)
        loaded[task, language, split] = data
        return data

    heads = spec.head_tasks()
    tasks = {head: get_task(task) for head, task in heads.items()}
    train = {head: as_head(encoded(task, "en" if head != spec.task else spec.train_language, "train",
                                   spec.max_train_examples), head)
             for head, task in heads.items()}
    intermediate_dev = {head: as_head(encoded(task, "en", "dev", spec.max_eval_examples), head)
                        for head, task in heads.items()
                        if head != spec.task and "dev" in available_languages(task, source).get("en", {})}
    if spec.intermediate_only:
        return UnitData(tasks, train, None, {}, 0, intermediate_dev=intermediate_dev)
    has_dev = "dev" in available_languages(spec.task, source).get(spec.train_language, {})
    test = {lang: encoded(spec.task, lang, "test", spec.max_eval_examples) for lang in spec.eval_languages}
    return UnitData(
        tasks=tasks,
        train=train,
        dev=encoded(spec.task, spec.train_language, "dev", spec.max_eval_examples) if has_dev else None,
        test=test,
        majority=(int(train[spec.task].label_counts(len(tasks[spec.task].labels)).argmax())
                  if tasks[spec.task].kind != "qa" else 0),  # QA has no majority class (0 is unused)
        truncated={lang: data.truncated for lang, data in test.items()},
        intermediate_dev=intermediate_dev,
    )
