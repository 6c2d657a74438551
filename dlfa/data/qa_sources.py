"""QA data of a data root per (language, split), as the registry's `SplitData` (a `load()` and a
`fingerprint()`): XQuAD (`qa/xquad`) and MLQA dev (`qa/mlqa_dev`), every language's (every pair's) train / dev /
test part of the paragraph split of all the folder's files (dlfa.data.qa); the zero-shot protocol trains on
English train only. Hub rows (whole splits: `squad` train, google/xtreme XQuAD / MLQA for testing, as XTREME
does) are read by dlfa.data.qa.read_squad_rows.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from dlfa.data.splits import file_stats
from dlfa.errors import DataError
from dlfa.data.qa import (
    QA_SPLIT,
    QA_SPLIT_SEED,
    QaExample,
    mlqa_files,
    read_squad_json,
    split_by_paragraph,
    take_split,
    xquad_files,
)


@lru_cache(maxsize=4)
def _cached_split(files: tuple[tuple[Path, str, str], ...], stamps: tuple, bounds: tuple[float, float],
                  seed: int) -> dict[str, str]:
    collections = [read_squad_json(path, language, question_language) for path, language, question_language in files]
    return split_by_paragraph(collections[0], collections[1:], bounds, seed)


def paragraph_split_of_files(files: Sequence[tuple[Path, str, str]], bounds: tuple[float, float] = QA_SPLIT,
                             seed: int = QA_SPLIT_SEED) -> dict[str, str]:
    """split_by_paragraph over files given as (path, language, question language), the English one first;
    cached per process while the files keep their size and modification time."""
    return _cached_split(tuple(files), _stamps([path for path, _, _ in files]), tuple(bounds), seed)


def xquad_split(folder: str | Path, language: str, split: str, bounds: tuple[float, float] = QA_SPLIT,
                seed: int = QA_SPLIT_SEED) -> list[QaExample]:
    """XQuAD's questions in `language` that the paragraph split of all the folder's languages puts in `split`."""
    files = xquad_files(folder)
    for needed in ("en", language):
        if needed not in files:
            raise DataError(f"XQuAD has no file xquad.{needed}.json here", str(folder))
    order = ["en", *sorted(set(files) - {"en"})]
    assignment = paragraph_split_of_files([(files[lang], lang, lang) for lang in order], bounds, seed)
    return take_split(read_squad_json(files[language], language), assignment, split)


def mlqa_split(folder: str | Path, context_language: str, question_language: str, split: str,
               bounds: tuple[float, float] = QA_SPLIT, seed: int = QA_SPLIT_SEED) -> list[QaExample]:
    """MLQA dev's questions of one (context, question) language pair that the paragraph split of all the
    folder's pairs (grouped through shared question ids, see the module docstring) puts in `split`."""
    files = mlqa_files(folder)
    for needed in (("en", "en"), (context_language, question_language)):
        if needed not in files:
            raise DataError(f"MLQA has no file dev-context-{needed[0]}-question-{needed[1]}.json here", str(folder))
    order = [("en", "en"), *sorted(set(files) - {("en", "en")})]
    assignment = paragraph_split_of_files([(files[pair], *pair) for pair in order], bounds, seed)
    pair = (context_language, question_language)
    return take_split(read_squad_json(files[pair], *pair), assignment, split)


def _stamps(paths: Sequence[Path]) -> tuple[tuple[int, int], ...]:
    """(mtime_ns, size) of each file (splits.file_stats without the paths)."""
    return tuple((mtime, size) for _, mtime, size in file_stats(paths))


@dataclass(frozen=True)
class QaFileSplit:
    """One language's (`language`, `question_language`) part `split` of XQuAD (`task` "xquad") or MLQA dev
    ("mlqa") in `folder`, under the paragraph split with `bounds` and `seed`."""

    task: str
    folder: Path
    language: str
    split: str
    question_language: str | None = None  # MLQA: the question language of the pair (default: `language`)
    bounds: tuple[float, float] = QA_SPLIT
    seed: int = QA_SPLIT_SEED

    def load(self) -> list[QaExample]:
        if self.task == "xquad":
            return xquad_split(self.folder, self.language, self.split, self.bounds, self.seed)
        if self.task == "mlqa":
            return mlqa_split(self.folder, self.language, self.question_language or self.language, self.split,
                              self.bounds, self.seed)
        raise DataError(f"no QA files for task {self.task!r} (xquad or mlqa)", str(self.folder))

    @property
    def paths(self) -> tuple[Path, ...]:
        """Every file of the folder that the paragraph split reads."""
        return tuple(sorted(self.folder.glob("xquad.*.json" if self.task == "xquad" else "dev-context-*.json")))

    def fingerprint(self) -> str:
        paths = self.paths
        return hashlib.sha256(json.dumps(
            ["qa-paragraph-split", self.task, self.language, self.question_language, self.split, self.bounds,
             self.seed, [str(path.resolve()) for path in paths], _stamps(paths)]).encode()).hexdigest()
