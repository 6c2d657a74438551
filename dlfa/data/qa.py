"""Extractive question answering data: SQuAD v1.1 JSON files (XQuAD, MLQA) read into typed examples, and the
paragraph split that trains on English without leaking a test paragraph's translation.

Files: XQuAD `xquad.<lang>.json` (the same 240 paragraphs and 1,190 questions in every language, question ids
shared), MLQA `dev-context-<c>-question-<q>.json` (the context in language c, the questions in language q; a
question keeps its id in every file it is translated into); the hub's flat rows of the same data
(`read_squad_rows`: `squad`, google/xtreme's XQuAD, MLQA and TyDiQA-GoldP configurations).

The split (`split_by_paragraph`): there is no SQuAD training set here, so a QA task trains on part of the English
questions and tests every language on the rest. Questions are grouped so that a group holds whole paragraphs
with every translation of them: two questions are in one group when they share an id (translations of one
question) or a paragraph of any file. On XQuAD the groups are exactly the 240 paragraphs (the paragraph index
is parallel across languages); on MLQA, whose contexts are aligned sentence by sentence, a few translated
contexts cover two English paragraphs, and their groups merge (945 groups for MLQA dev's 978 English
paragraphs). The groups, in an order shuffled with `seed`, fill train up to `bounds[0]` of the English
questions, dev (model selection, English) up to `bounds[1]`, and test takes the rest, in every language; a
group without an English question is test. No test question's paragraph, in any language, is trained on.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlfa.errors import DataError
from dlfa.data.readers import read_text_lines

QA_SPLITS = ("train", "dev", "test")
QA_SPLIT = (0.6, 0.7)  # English questions: train up to 60%, dev up to 70%, test the rest (every language)
QA_SPLIT_SEED = 17  # the shuffle of the paragraph groups: part of the split's definition


@dataclass(frozen=True)
class QaAnswer:
    """A gold answer: its text and the character offset where it starts in the context."""

    text: str
    start: int

    @property
    def end(self) -> int:
        """One past the answer's last character: context[start:end] == text."""
        return self.start + len(self.text)


@dataclass(frozen=True)
class QaExample:
    """One question on one context. `language` is the context's (and so the answer's) language,
    `question_language` the question's (they differ only in MLQA's cross-language pairs). `paragraph_id` is
    "<article index>.<paragraph index>" in its file (parallel across XQuAD's languages); `source` names the file
    and the item for messages."""

    id: str
    question: str
    context: str
    answers: tuple[QaAnswer, ...]
    paragraph_id: str
    language: str
    question_language: str
    title: str = ""
    source: str = ""


# ----------------------------------------------------------------------------------------------------
# Reading


def _line_of(text: str, needle: str | None, occurrence: int = 1) -> int | None:
    """The 1-based line of the `occurrence`-th `needle` in `text` (JSON gives no positions; an id is unique)."""
    at = -1
    for _ in range(occurrence if needle else 0):
        at = text.find(needle, at + 1)
        if at < 0:
            return None
    return text.count("\n", 0, at) + 1 if at >= 0 else None


_KINDS = {str: "a non-empty string", list: "a non-empty list", int: "an integer", dict: "an object"}


class _Malformed(ValueError):
    """An item of a SQuAD file that breaks the format; read_squad_json adds the file and the line."""


def _field(item: object, key: str, kind: type, where: str):
    value = item.get(key) if isinstance(item, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool) or (isinstance(value, (str, list)) and not value):
        found = "missing" if not isinstance(item, dict) or key not in item else f"{type(value).__name__} {value!r:.40}"
        raise _Malformed(f"{where}: '{key}' must be {_KINDS[kind]}, found {found}")
    return value


def read_squad_json(path: str | Path, language: str, question_language: str | None = None) -> list[QaExample]:
    """The questions of a SQuAD v1.1 JSON file ({"data": [{"title", "paragraphs": [{"context", "qas": [{"id",
    "question", "answers": [{"text", "answer_start"}]}]}]}]}), in file order. Every question needs at least one
    answer whose text is found at its `answer_start` in the context; ids are unique in a file. Raises DataError
    naming the file, the item (`data[a].paragraphs[p].qas[q]`) and, for a question, the line of its id."""
    path = Path(path)
    text = "\n".join(read_text_lines(path))
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON: {exc.msg} (column {exc.colno})", str(path), exc.lineno) from exc
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise DataError("expected a SQuAD JSON object with a 'data' list of articles", str(path))
    examples: list[QaExample] = []
    located = None  # the id of the question being read: an error's line is the line of that id
    try:
        for a, article in enumerate(document["data"]):
            title = article.get("title") if isinstance(article, dict) else None
            for p, paragraph in enumerate(_field(article, "paragraphs", list, f"data[{a}]")):
                located = None
                context = _field(paragraph, "context", str, f"data[{a}].paragraphs[{p}]")
                for q, qa in enumerate(_field(paragraph, "qas", list, f"data[{a}].paragraphs[{p}]")):
                    where = f"data[{a}].paragraphs[{p}].qas[{q}]"
                    located = qa.get("id") if isinstance(qa, dict) and isinstance(qa.get("id"), str) else None
                    qa_id = _field(qa, "id", str, where)
                    examples.append(_question(qa, qa_id, context, f"{where} (id {qa_id})", f"{a}.{p}", language,
                                              question_language or language, title if isinstance(title, str) else "",
                                              f"{path}: {where}"))
    except _Malformed as exc:
        raise DataError(str(exc), str(path), _line_of(text, located and json.dumps(located))) from None
    if not examples:
        raise DataError("no questions found", str(path))
    seen: set[str] = set()
    for example in examples:
        if example.id in seen:
            raise DataError(f"{example.source.partition(': ')[2]} (id {example.id}): duplicate question id",
                            str(path), _line_of(text, json.dumps(example.id), occurrence=2))
        seen.add(example.id)
    return examples


def _question(qa: dict, qa_id: str, context: str, where: str, paragraph_id: str, language: str,
              question_language: str, title: str, source: str) -> QaExample:
    question = _field(qa, "question", str, where)
    if qa.get("is_impossible"):
        raise _Malformed(f"{where}: an unanswerable question (SQuAD 2.0) in a SQuAD v1.1 task")
    answers = []
    for n, answer in enumerate(_field(qa, "answers", list, where)):
        answer_text = _field(answer, "text", str, f"{where} answers[{n}]")
        start = _field(answer, "answer_start", int, f"{where} answers[{n}]")
        found = context[start : start + len(answer_text)] if start >= 0 else ""
        if found != answer_text:
            raise _Malformed(f"{where} answers[{n}]: answer {answer_text!r:.60} is not at character {start} of its "
                             f"context (found {found!r:.60})")
        answers.append(QaAnswer(answer_text, start))
    return QaExample(qa_id, question.strip(), context, tuple(answers), paragraph_id, language, question_language,
                     title, source)


def read_squad_rows(rows: Iterable[dict], language: str, question_language: str | None = None,
                    where: str = "rows") -> list[QaExample]:
    """Questions from flat SQuAD rows, as the hub serves them (`squad`, and google/xtreme's XQuAD, MLQA and
    TyDiQA-GoldP configurations): {"id", "title", "context", "question", "answers": {"text": [...],
    "answer_start": [...]}}. Rows sharing a context form one paragraph, `paragraph_id` "0.<k>" for the k-th context.
    Raises DataError naming `where` and the row (counted from 1), as read_squad_json does for files."""
    examples: list[QaExample] = []
    paragraphs: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        item = f"row {number}"
        try:
            context = _field(row, "context", str, item)
            qa_id = _field(row, "id", str, item)
            answers = _field(row, "answers", dict, f"{item} (id {qa_id})")
            texts, starts = answers.get("text"), answers.get("answer_start")
            if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
                raise _Malformed(f"{item} (id {qa_id}): 'answers' must hold lists 'text' and 'answer_start' of one "
                                 "length")
            qa = {"question": row.get("question"),
                  "answers": [{"text": text, "answer_start": start} for text, start in zip(texts, starts)]}
            paragraph = paragraphs.setdefault(context, len(paragraphs))
            examples.append(_question(qa, qa_id, context, f"{item} (id {qa_id})", f"0.{paragraph}", language,
                                      question_language or language, str(row.get("title") or ""), f"{where}: {item}"))
        except _Malformed as exc:
            raise DataError(f"{where}: {exc}") from None
    if not examples:
        raise DataError(f"{where}: no questions found")
    return examples


def xquad_files(folder: str | Path) -> dict[str, Path]:
    """language -> `xquad.<language>.json` in `folder`."""
    return {path.name.split(".")[1]: path for path in sorted(Path(folder).glob("xquad.*.json"))}


def mlqa_files(folder: str | Path, split: str = "dev") -> dict[tuple[str, str], Path]:
    """(context language, question language) -> `<split>-context-<c>-question-<q>.json` in `folder`."""
    pattern = re.compile(rf"{re.escape(split)}-context-(\w+)-question-(\w+)\.json")
    matches = ((pattern.fullmatch(path.name), path) for path in sorted(Path(folder).glob(f"{split}-context-*.json")))
    return {(match[1], match[2]): path for match, path in matches if match}


# ----------------------------------------------------------------------------------------------------
# The paragraph split


def paragraph_groups(collections: Iterable[Sequence[QaExample]]) -> dict[str, int]:
    """question id -> group index: questions sharing an id or a paragraph (of one file) are in one group,
    connected through any chain of them (see the module docstring). Groups are numbered in the order of their
    first question in `collections`."""
    parent: dict[object, object] = {}

    def find(node: object) -> object:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    order: list[str] = []
    for examples in collections:
        for example in examples:
            if example.id not in parent:
                order.append(example.id)
            paragraph = (example.source.partition(": ")[0], example.paragraph_id)
            parent[find(paragraph)] = find(("question", example.id))
    numbers: dict[object, int] = {}
    return {qa_id: numbers.setdefault(find(("question", qa_id)), len(numbers)) for qa_id in order}


def split_by_paragraph(
    english: Sequence[QaExample],
    translations: Iterable[Sequence[QaExample]] = (),
    bounds: tuple[float, float] = QA_SPLIT,
    seed: int = QA_SPLIT_SEED,
) -> dict[str, str]:
    """question id -> "train" | "dev" | "test", for the questions of `english` and of every file in
    `translations` (which may include English files with other question languages): whole paragraph groups
    (`paragraph_groups`), shuffled with `seed`, fill train up to bounds[0] of the English questions, dev up to
    bounds[1], test the rest; groups with no English question are test."""
    groups = paragraph_groups([english, *translations])
    english_count = np.bincount([groups[example.id] for example in english], minlength=max(groups.values()) + 1)
    order = np.random.default_rng(seed).permutation(len(english_count))
    part_of_group = np.full(len(english_count), len(QA_SPLITS) - 1)
    assigned = 0
    for group in order:
        if english_count[group]:
            part_of_group[group] = sum(assigned >= bound * len(english) for bound in bounds)
            assigned += english_count[group]
    return {qa_id: QA_SPLITS[part_of_group[group]] for qa_id, group in groups.items()}


def take_split(examples: Sequence[QaExample], assignment: dict[str, str], split: str) -> list[QaExample]:
    """The examples that `assignment` (from split_by_paragraph) puts in `split`. A question the assignment does
    not know is an error: it was not grouped, so it could leak."""
    if split not in QA_SPLITS:
        raise ValueError(f"unknown split {split!r}: choose one of {', '.join(QA_SPLITS)}")
    unknown = [example for example in examples if example.id not in assignment]
    if unknown:
        raise DataError(f"question {unknown[0].id} was not part of the paragraph split", unknown[0].source)
    return [example for example in examples if assignment[example.id] == split]
