"""Layouts under a data root or the classroom pack: language -> split -> data (dlfa.data.splits).

A data root is laid out like `../shared/data` (see its MANIFEST.md): `ud/UD_*/*.conllu`, `ud/xtreme_udpos_tsv/`,
`ner/panx_xtreme/`, `ner/conll/`, `pair/{xnli,pawsx}_xtreme/`, `pair/xcopa_xtreme_style/`, `english/...`.

The paper's tasks:
- udpos: English train/dev = UD English-EWT train/dev. Test, per language: the Parallel UD set (`*_pud-ud-test`,
  English included, so every PUD language is tested on the same 1,000 sentences), else the language's other UD
  test files, else XTREME `test-xx.tsv`; dev: UD dev files, else XTREME `dev-xx.tsv`.
- panx: English train = `train-en.tsv`, English dev = `dev-en.tsv`, other languages' `dev-xx.tsv` are their test
  (XTREME removed the test labels).
- xnli, pawsx: split by ITEM (dlfa.data.splits.ItemSplit), identically in every language, so that no test item's
  translation is trained on: rows that share an English text (an XNLI premise, a PAWS-X sentence) form one item
  group, and whole groups fill English train, then English dev (model selection), then test (the same items in
  every language), so no item or text is shared between splits. A language's file must have as many rows as the
  English one and agree with its labels on at least 90% of rows (PAWS-X translations differ on up to 1.6%), else
  DataError.
  - xnli: the labeled dev sets (2,490 rows per language, `pair/xnli_xtreme/dev-xx.tsv`) and the test sets with
    labels carried row-wise from a labeled copy (5,010 rows, `pair/xnli_test_derived/test-xx.tsv`, see its
    DERIVATION.md) are pooled into 7,500 items with ids `dev-<row>` / `test-<row>`; the item groups, in an order
    shuffled with XNLI_SPLIT_SEED, fill train up to 80% (about 6,000 English pairs), dev up to 88% (about 600),
    and test takes the rest (about 900 per language). Without the test folder: the dev sets alone, split as PAWS-X.
  - pawsx: only the labeled dev sets exist (2,000 rows per language; no more labeled English data on this
    machine): groups in the order of their first row fill train up to 60%, dev up to two thirds, test the rest.
- xquad, mlqa (extractive QA, `qa/xquad`, `qa/mlqa_dev`): the paragraph split of dlfa.data.qa (no SQuAD training
  set here): English train / dev / test, the other languages' test, no test paragraph's translation trained on;
  MLQA's languages are its same-language pairs (`dev-context-<x>-question-<x>.json`).
The English intermediate tasks read their files under `english/` (`english_files`); where a task ships a single
labeled file, it is cut into train 80% / dev 10% / test 10% of the rows in file order, rows sharing a text kept in
one part (`parts_of`, dlfa.data.splits.group_parts, as for the item split).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from dlfa.data.base import TaskInfo
from dlfa.data.qa import mlqa_files, xquad_files
from dlfa.data.qa_sources import QaFileSplit
from dlfa.data.splits import SPLITS, TRAIN_DEV, Cut, FileSplit, ItemSplit, Layout
from dlfa.errors import DataError

XNLI_ITEM_SPLIT = (0.8, 0.88)  # XNLI dev + test items (7,500): train ~6,000, dev ~600, test ~900
XNLI_SPLIT_SEED = 13  # the shuffle of XNLI's item groups: part of the split's definition (and its fingerprint)


def one_file(path: Path, reader: str, cut: Cut | None = None, **options: Any) -> FileSplit:
    """The examples of one file (or the part `cut` of them), read by READERS[reader] with `options`."""
    return FileSplit((path,), reader, tuple(sorted(options.items())), cut)


def udpos_files(root: Path, task: TaskInfo) -> Layout:
    """Per (language, split) the best-ranked files: Parallel UD test (0), other UD conllu (1), XTREME tsv (2)."""
    found: dict[tuple[str, str], dict[int, list[Path]]] = {}
    for path in sorted((root / "ud").glob("UD_*/*-ud-*.conllu")):
        match = re.fullmatch(r"([a-z]{2,3})_(\w+)-ud-(train|dev|test)\.conllu", path.name)
        if match:
            language, treebank, split = match.groups()
            found.setdefault((language, split), {}).setdefault(0 if treebank == "pud" else 1, []).append(path)
    for path in sorted((root / "ud" / "xtreme_udpos_tsv").glob("*-*.tsv")):
        split, _, language = path.stem.partition("-")
        if split in SPLITS:
            found.setdefault((language, split), {}).setdefault(2, []).append(path)
    layout: Layout = {}
    for (language, split), ranked in found.items():
        rank = min(ranked)
        if language != "en" and split == "train":
            continue  # zero-shot: only English trains
        reader = "token_tag" if rank == 2 else "conllu"
        layout.setdefault(language, {})[split] = FileSplit(tuple(ranked[rank]), reader, (("labels", task.labels),))
    return layout


def panx_files(root: Path, task: TaskInfo) -> Layout:
    folder = root / "ner" / "panx_xtreme"
    layout: Layout = {}
    for path in sorted(folder.glob("*-*.tsv")):
        split, _, language = path.stem.partition("-")
        data = one_file(path, "token_tag", labels=task.labels, language=language)
        if language == "en" and split in ("train", "dev"):
            layout.setdefault("en", {})[split] = data
        elif language != "en" and split == "dev":
            layout.setdefault(language, {})["test"] = data
    return layout


def item_split_files(folder: Path, tsv_format: str, task: TaskInfo, test_folder: Path | None = None) -> Layout:
    """The item split of `folder`'s dev-xx.tsv files; with `test_folder` holding test-en.tsv, of the dev and
    test-xx.tsv files pooled (languages that have both), split by XNLI_ITEM_SPLIT with XNLI_SPLIT_SEED."""
    dev = {path.stem.partition("-")[2]: path for path in sorted(folder.glob("dev-*.tsv"))}
    if not dev:
        return {}
    if "en" not in dev:
        raise DataError(f"the item split of {task.name} needs the English file dev-en.tsv", str(folder))
    pooled = test_folder is not None and (test_folder / "test-en.tsv").is_file()
    files = {language: (one_file(path, "tsv", fmt=tsv_format, labels=task.labels),) for language, path in dev.items()}
    settings = {}
    if pooled:
        files = {language: (*dev_file, one_file(test_folder / f"test-{language}.tsv", "tsv", fmt=tsv_format,
                                                labels=task.labels))
                 for language, dev_file in files.items() if (test_folder / f"test-{language}.tsv").is_file()}
        settings = {"bounds": XNLI_ITEM_SPLIT, "seed": XNLI_SPLIT_SEED}
    english = files["en"]
    layout: Layout = {"en": {split: ItemSplit(english, english, split, **settings) for split in SPLITS}}
    for language, target in files.items():
        if language != "en":
            layout[language] = {"test": ItemSplit(english, target, "test", **settings)}
    return layout


def qa_files(task_name: str, relative: str):
    """A layout function for a QA task (`xquad` or `mlqa`) whose SQuAD JSON files are in `relative`."""

    def layout(root: Path, task: TaskInfo) -> Layout:
        folder = root / relative
        if task_name == "xquad":
            languages = list(xquad_files(folder))
        else:
            languages = [context for context, question in mlqa_files(folder) if context == question]
        if "en" not in languages:
            return {}
        return {language: {split: QaFileSplit(task_name, folder, language, split)
                           for split in (SPLITS if language == "en" else ("test",))}
                for language in languages}

    return layout


def no_local_files(root: Path, task: TaskInfo) -> Layout:
    """Tasks whose data is not on this machine (files of 4 MiB and more): the hub only."""
    return {}


def xcopa_files(root: Path, task: TaskInfo) -> Layout:
    """COPA English train (90% train, 10% dev), English COPA validation as English test, XCOPA validation as test
    (each item's question from its English COPA validation item: dlfa.data.readers.read_xcopa)."""
    folder = root / "pair" / "xcopa_xtreme_style"
    layout: Layout = {}
    if (folder / "train-en.jsonl").is_file():
        layout["en"] = {
            split: one_file(folder / "train-en.jsonl", "jsonl", (TRAIN_DEV, index), convert="copa", labels=task.labels)
            for index, split in enumerate(("train", "dev"))
        }
    english = folder / "val-en.jsonl"
    for path in sorted(folder.glob("val-*.jsonl")):
        language = path.stem.partition("-")[2]
        layout.setdefault(language, {})["test"] = (
            one_file(path, "jsonl", convert="copa", labels=task.labels) if path == english
            else one_file(path, "xcopa", english=english, labels=task.labels))
    return layout


_CONLL_FILES = {
    "en": "conll2003/eng", "de": "conll2003/deu", "es": "conll2002/esp", "nl": "conll2002/ned",
}  # fmt: skip
_CONLL_SPLITS = {"train": "train", "dev": "testa", "test": "testb"}


def conll_files(root: Path, task: TaskInfo) -> Layout:
    layout: Layout = {}
    for language, stem in _CONLL_FILES.items():
        for split, suffix in _CONLL_SPLITS.items():
            path = root / "ner" / "conll" / f"{stem}.{suffix}"
            if path.is_file() and (language == "en" or split != "train"):
                data = one_file(path, "conll_ner", labels=task.labels, fallback_encoding="latin-1")
                layout.setdefault(language, {})[split] = data
    return layout


def english_files(splits: dict[str, tuple[str, Cut | None]], reader: str, **options: Any):
    """A layout function for an English-only task: split -> (path under the root, the part of it or None)."""

    def layout(root: Path, task: TaskInfo) -> Layout:
        found = {
            split: one_file(root / relative, reader, cut, labels=task.labels, **options)
            for split, (relative, cut) in splits.items()
            if (root / relative).is_file()
        }
        return {"en": found} if found else {}

    return layout


def parts_of(relative: str, bounds: tuple[float, ...]) -> dict[str, tuple[str, Cut]]:
    """train, dev (and test) as parts of one file."""
    return {SPLITS[index]: (relative, (bounds, index)) for index in range(len(bounds) + 1)}


def pack_files(subfolder: str, reader: str, **options: Any):
    """A layout function for a classroom task: `<pack>/<subfolder>/<language>-<split>.<ext>`."""

    def layout(root: Path, task: TaskInfo) -> Layout:
        result: Layout = {}
        for path in sorted((root / subfolder).glob("*-*.*")):
            language, _, split = path.stem.partition("-")
            if split in SPLITS:
                result.setdefault(language, {})[split] = one_file(path, reader, labels=task.labels, **options)
        return result

    return layout


def whole_files(folder: str, **files: str) -> dict[str, tuple[str, None]]:
    """split -> (whole file) for an English task's files in `folder`."""
    return {split: (f"{folder}/{name}", None) for split, name in files.items()}
