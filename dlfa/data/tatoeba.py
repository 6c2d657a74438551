"""Tatoeba's sentence pairs (XTREME's retrieval task), read from a data root or the hub, and the `tatoeba` task's
layouts for the registry.

- A data root (or a folder) holds LASER's files `retrieval/tatoeba/tatoeba.deu-eng.deu` and `tatoeba.deu-eng.eng`:
  line i of one translates line i of the other (`read_tatoeba`, `tatoeba_files`).
- The hub: google/xtreme's `tatoeba.deu` configurations, split `validation`, columns source_sentence (the language)
  and target_sentence (English) (`hub_tatoeba`).
Languages are project codes ("de"); LASER's codes ("deu") are accepted wherever a language is given. In the
registry every language has one split, "test": Examples with `text` = the language's sentence, `text_pair` = its
English translation, `item_id` = the line (counted from 1), `source` = "file:line" (or the hub row).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlfa.data.base import Example, TaskInfo
from dlfa.data.sources import HUB_DATASET
from dlfa.data.splits import Layout, digest, file_stats
from dlfa.errors import ConfigError, DataError
from dlfa.languages import LASER_TO_PROJECT, TATOEBA_LASER_CODES, language_label

TATOEBA_SUBFOLDER = Path("retrieval") / "tatoeba"
HUB_SPLIT = "validation"


def tatoeba_language(code: str) -> str:
    """The project code of a Tatoeba language given as a project code ("de") or a LASER code ("deu")."""
    code = code.strip().lower()
    if code in TATOEBA_LASER_CODES:
        return code
    if code in LASER_TO_PROJECT:
        return LASER_TO_PROJECT[code]
    choices = ", ".join(f"{project} ({laser})" for project, laser in TATOEBA_LASER_CODES.items())
    raise ConfigError(f"unknown Tatoeba language {code!r}: choose from {choices}")


@dataclass(frozen=True)
class TatoebaPairs:
    """One language's retrieval pool: other[i] translates english[i]."""

    language: str  # project code
    english: list[str]
    other: list[str]
    origin: str  # where the sentences were read from


def tatoeba_folder(root: Path) -> Path:
    """The folder holding LASER's Tatoeba files: `root/retrieval/tatoeba/`, or `root` itself when it holds them."""
    nested = root / TATOEBA_SUBFOLDER
    return nested if nested.is_dir() else root


def laser_files(folder: Path, language: str) -> tuple[Path, Path]:
    """(other language's file, English file) of `language` in LASER's naming."""
    laser = TATOEBA_LASER_CODES[language]
    return folder / f"tatoeba.{laser}-eng.{laser}", folder / f"tatoeba.{laser}-eng.eng"


def available_tatoeba_languages(source) -> list[str]:
    """Project codes of the Tatoeba languages `source` (a dlfa.data.sources.DataSource) holds: the hub has all
    of XTREME's; a data root or the pack those whose two files exist."""
    if source.kind == "hub":
        return list(TATOEBA_LASER_CODES)
    folder = tatoeba_folder(source.root)
    return [language for language in TATOEBA_LASER_CODES
            if all(path.is_file() for path in laser_files(folder, language))]


def _read_lines(path: Path) -> list[str]:
    """The file's lines; a blank line is an error naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError("the Tatoeba file is missing", str(path)) from None
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", str(path)) from None
    lines = [line.rstrip("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise DataError("blank line: every line must hold one sentence", str(path), number)
    return lines


def _read_folder(folder: Path, language: str, described: str) -> TatoebaPairs:
    other_path, english_path = laser_files(folder, language)
    if not other_path.is_file() and not english_path.is_file():
        raise DataError(f"no Tatoeba data for {language_label(language)} in {described}: expected "
                        f"{other_path.name} and {english_path.name} in {other_path.parent}")
    other, english = _read_lines(other_path), _read_lines(english_path)
    if len(other) != len(english):
        raise DataError(f"{len(other)} sentences but {english_path.name} has {len(english)}: the files must "
                        "align line by line", str(other_path))
    return TatoebaPairs(language, english, other, str(other_path))


def _read_hub(loader: Callable[[str, str], Any], language: str) -> TatoebaPairs:
    where = f"{HUB_DATASET} tatoeba.{TATOEBA_LASER_CODES[language]} ({HUB_SPLIT})"
    try:
        rows = loader(f"tatoeba.{TATOEBA_LASER_CODES[language]}", HUB_SPLIT)
    except DataError:
        raise
    except Exception as exc:  # network, missing config, bad files: all reach the user as DataError
        raise DataError(f"cannot load {where}: {exc}") from exc
    english, other = [], []
    for number, row in enumerate(rows, start=1):
        try:
            sentence, translation = row["source_sentence"], row["target_sentence"]
        except (KeyError, TypeError) as exc:
            raise DataError(f"{where} does not have the expected columns (source_sentence, target_sentence): "
                            f"row {number} lacks {exc}") from None
        if not (isinstance(sentence, str) and sentence.strip() and isinstance(translation, str)
                and translation.strip()):
            raise DataError(f"{where}: row {number} has an empty sentence")
        other.append(sentence.rstrip("\r\n"))  # the hub's rows keep the files' line ends
        english.append(translation.rstrip("\r\n"))
    return TatoebaPairs(language, english, other, where)


def read_tatoeba(source, language: str, max_sentences: int | None = None) -> TatoebaPairs:
    """The first `max_sentences` (all when None) pairs of one language (project or LASER code) from `source`, a
    dlfa.data.sources.DataSource: a data root or the pack (LASER's files) or the hub (google/xtreme)."""
    language = tatoeba_language(language)
    if source.kind == "hub":
        pairs = _read_hub(source.loader, language)
    else:
        pairs = _read_folder(tatoeba_folder(source.root), language, source.describe())
    if len(pairs.english) < 2:
        raise DataError(f"retrieval needs at least 2 sentence pairs, {pairs.origin} has {len(pairs.english)}")
    return TatoebaPairs(language, pairs.english[:max_sentences], pairs.other[:max_sentences], pairs.origin)


# ----------------------------------------------------------------------------------------------------
# The registry's view: one "test" split per language


@dataclass(frozen=True)
class TatoebaSplit:
    """All of one language's pairs, from LASER's files in `folder` or, without a folder, from the hub's `loader`."""

    language: str
    folder: Path | None = None
    loader: Callable[[str, str], Any] | None = field(default=None, compare=False, repr=False)

    @property
    def paths(self) -> tuple[Path, ...]:
        """The two LASER files (none from the hub)."""
        return laser_files(self.folder, self.language) if self.folder is not None else ()

    @property
    def hub_name(self) -> str | None:
        """The hub dataset the pairs come from (None: files)."""
        return HUB_DATASET if self.folder is None else None

    def pairs(self) -> TatoebaPairs:
        if self.folder is None:
            return _read_hub(self.loader, self.language)
        return _read_folder(self.folder, self.language, str(self.folder))

    def load(self) -> list[Example]:
        pairs = self.pairs()
        return [Example(text=other, text_pair=english, item_id=str(line), source=f"{pairs.origin}:{line}")
                for line, (other, english) in enumerate(zip(pairs.other, pairs.english), start=1)]

    def fingerprint(self) -> str | None:
        if self.folder is None:
            return None
        return digest(["tatoeba", file_stats(self.paths)])


def tatoeba_files(root: Path, task: TaskInfo) -> Layout:
    """The languages whose two LASER files are under `root` (see tatoeba_folder), each with a "test" split."""
    folder = tatoeba_folder(root)
    return {language: {"test": TatoebaSplit(language, folder)}
            for language in TATOEBA_LASER_CODES if all(path.is_file() for path in laser_files(folder, language))}


def hub_tatoeba(loader: Callable[[str, str], Any]) -> Layout:
    """Every XTREME Tatoeba language on the hub, each with a "test" split (google/xtreme's validation split)."""
    return {language: {"test": TatoebaSplit(language, loader=loader)} for language in TATOEBA_LASER_CODES}
