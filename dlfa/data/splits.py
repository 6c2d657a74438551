"""Split data: where the examples of one (task, language, split) come from, and how one file or an aligned set of
files is cut into train, dev and test without sharing a text between the parts.

- `FileSplit`: examples read from files by one of READERS, optionally one part of them (`Cut`, see group_parts);
- `ItemSplit`: the item split of row-aligned translations (XNLI, PAWS-X): rows sharing an English text form one
  item group, and whole groups fill English train, then dev, then test, the same items in every language.
Each has `load()` -> examples and `fingerprint()`, a key that changes with the data (dlfa.data.feature_cache).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from dlfa.data import readers
from dlfa.data.base import Example
from dlfa.errors import DataError

SPLITS = ("train", "dev", "test")
ITEM_SPLIT = (0.6, 2 / 3)  # PAWS-X dev sets: train up to 60% of the rows, dev up to two thirds, test the rest
MIN_LABEL_AGREEMENT = 0.9
THIRDS = (0.8, 0.9)  # one labeled file cut into train, dev and test
TRAIN_DEV = (0.9,)  # a train file cut into train and dev
Cut = tuple[tuple[float, ...], int]  # (bounds, index of the part kept), see group_parts

Layout = dict[str, dict[str, "SplitData"]]  # language -> split -> data


class SplitData(Protocol):
    """The examples of one (task, language, split), wherever they come from (files, an item split, the hub)."""

    def load(self) -> list[Example]: ...

    def fingerprint(self) -> str | None:
        """A key that changes when the data changes; None when only the content can tell."""


def digest(value: Any) -> str:
    """sha256 (hex) of `value` written as JSON with sorted keys: the cache keys of the data layer."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def file_stats(paths) -> list[list]:
    """[resolved path, mtime_ns, size] of each file: what a fingerprint of files read from disk covers; DataError
    naming a file that cannot be read."""
    stats = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError as exc:
            raise DataError(f"cannot read the file: {exc.strerror or exc}", str(path)) from exc
        stats.append([str(path.resolve()), stat.st_mtime_ns, stat.st_size])
    return stats


def group_parts(examples: list[Example], bounds: tuple[float, ...], seed: int | None = None) -> list[int]:
    """Part index per example. Examples sharing a text (either text of a pair) form one group, connected through
    any shared text; whole groups, in the order of their first example (or in an order shuffled with `seed`),
    fill part 0 up to `bounds[0]` of the examples, part 1 up to `bounds[1]`, ..., and the last part takes the
    rest, so no text is in two parts."""
    parent = list(range(len(examples)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_row: dict[str, int] = {}
    for row, example in enumerate(examples):
        # a multiple-choice example's text_pair is its question, often shared ("What was the cause?"): not grouped
        for text in (example.text, None if example.choices else example.text_pair):
            if text is not None:
                a, b = find(row), find(first_row.setdefault(text, row))
                parent[max(a, b)] = min(a, b)  # the root is the group's first row
    groups: dict[int, list[int]] = {}
    for row in range(len(examples)):
        groups.setdefault(find(row), []).append(row)
    roots = sorted(groups)
    if seed is not None:
        roots = [roots[i] for i in np.random.default_rng(seed).permutation(len(roots))]
    parts = [0] * len(examples)
    assigned = 0
    for root in roots:
        part = sum(assigned >= bound * len(examples) for bound in bounds)
        for row in groups[root]:
            parts[row] = part
        assigned += len(groups[root])
    return parts


def take_part(examples: list[Example], cut: Cut | None) -> list[Example]:
    """The examples of part `cut[1]` when the examples are cut by `cut[0]` (see group_parts); all without a cut."""
    if cut is None:
        return examples
    bounds, index = cut
    return [example for example, part in zip(examples, group_parts(examples, bounds)) if part == index]


READERS: dict[str, Callable[..., list[Example]]] = {
    "conllu": readers.read_conllu,
    "token_tag": readers.read_token_tag,
    "conll_ner": readers.read_conll_ner,
    "tsv": readers.read_tsv,
    "jsonl": readers.read_jsonl,
    "csv": readers.read_csv,
    "xcopa": readers.read_xcopa,
}


@dataclass(frozen=True)
class FileSplit:
    """Examples read from files (concatenated in order), optionally cut to one part (see group_parts)."""

    paths: tuple[Path, ...]
    reader: str  # a key of READERS
    options: tuple[tuple[str, Any], ...] = ()  # the reader's keyword arguments
    cut: Cut | None = None

    def load(self) -> list[Example]:
        read = READERS[self.reader]
        return take_part([example for path in self.paths for example in read(path, **dict(self.options))], self.cut)

    def fingerprint(self) -> str:
        stats = file_stats((*self.paths, *(value for _, value in self.options if isinstance(value, Path))))
        return digest([self.reader, repr(self.options), self.cut, stats])


def check_aligned(english: list[Example], target: list[Example], path: Path) -> None:
    """Raise DataError unless `target` is row-aligned with `english` (same length, labels mostly equal)."""
    if len(target) != len(english):
        raise DataError(
            f"{len(target)} rows but the English file has {len(english)}: the files are not aligned row by row",
            str(path),
        )
    agreement = sum(a.label == b.label for a, b in zip(english, target)) / len(english)
    if agreement < MIN_LABEL_AGREEMENT:
        raise DataError(
            f"labels agree with the English file on only {agreement:.0%} of rows: the rows are not aligned",
            str(path),
        )


@dataclass(frozen=True)
class ItemSplit:
    """One part ("train" | "dev" | "test") of a language's files under the item split (see the module docstring).

    english / target: the row-aligned files of English and of the language, pooled in this order; with several
    files an item's id is `<split of its file>-<row>` (`dev-17`, `test-4`), the same in every language."""

    english: tuple[FileSplit, ...]
    target: tuple[FileSplit, ...]
    part: str
    bounds: tuple[float, ...] = ITEM_SPLIT
    seed: int | None = None  # None: item groups in file order; else shuffled with this seed

    def load(self) -> list[Example]:
        english, target = [], []
        for english_file, target_file in zip(self.english, self.target):
            english_rows = self._rows(english_file)
            target_rows = english_rows if target_file == english_file else self._rows(target_file)
            check_aligned(english_rows, target_rows, target_file.paths[0])
            english += english_rows
            target += target_rows
        index = SPLITS.index(self.part)
        parts = group_parts(english, self.bounds, self.seed)
        return [example for example, part in zip(target, parts) if part == index]

    def _rows(self, data: FileSplit) -> list[Example]:
        examples = data.load()
        if len(self.english) == 1:
            return examples
        prefix = data.paths[0].stem.partition("-")[0]
        return [Example(**{**asdict(example), "item_id": f"{prefix}-{example.item_id}"}) for example in examples]

    def fingerprint(self) -> str:
        return digest(["item-split", self.bounds, self.seed, self.part,
                        [data.fingerprint() for data in (*self.english, *self.target)]])

