"""The task registry: every task's TaskInfo, where its data lives per language and split, and loading with a
tokenized-feature cache.

Sources (`DataSource.resolve`): an explicit data root, else `$DLFA_DATA_DIR`, else the classroom pack in
`cache/pack/` when built, else the Hugging Face hub (`google/xtreme`). A data root is laid out like
`../shared/data` (see its MANIFEST.md): `ud/UD_*/*.conllu`, `ud/xtreme_udpos_tsv/`, `ner/panx_xtreme/`,
`ner/conll/`, `pair/{xnli,pawsx}_xtreme/`, `pair/xcopa_xtreme_style/`, `english/...`. Classroom tasks always read
the pack, whatever the source.

The paper's tasks from a data root:
- udpos: English train/dev = UD English-EWT train/dev. Test, per language: the Parallel UD set (`*_pud-ud-test`,
  English included, so every PUD language is tested on the same 1,000 sentences), else the language's other UD
  test files, else XTREME `test-xx.tsv`; dev: UD dev files, else XTREME `dev-xx.tsv`.
- panx: English train = `train-en.tsv`, English dev = `dev-en.tsv`, other languages' `dev-xx.tsv` are their test
  (XTREME removed the test labels).
- xnli, pawsx: split by ITEM, identically in every language, so that no test item's translation is trained on:
  rows that share an English text (an XNLI premise, a PAWS-X sentence) form one item group, and whole groups fill
  English train, then English dev (model selection), then test (the same items in every language), so no item or
  text is shared between splits. A language's file must have as many rows as the English one and agree with its
  labels on at least 90% of rows (PAWS-X translations differ on up to 1.6%), else DataError.
  - xnli: the labeled dev sets (2,490 rows per language, `pair/xnli_xtreme/dev-xx.tsv`) and the test sets with
    labels carried row-wise from a labeled copy (5,010 rows, `pair/xnli_test_derived/test-xx.tsv`, see its
    DERIVATION.md) are pooled into 7,500 items with ids `dev-<row>` / `test-<row>`; the item groups, in an order
    shuffled with XNLI_SPLIT_SEED, fill train up to 80% (about 6,000 English pairs), dev up to 88% (about 600),
    and test takes the rest (about 900 per language). Without the test folder: the dev sets alone, split as PAWS-X.
  - pawsx: only the labeled dev sets exist (2,000 rows per language; no more labeled English data on this
    machine): groups in the order of their first row fill train up to 60%, dev up to two thirds, test the rest.
From the hub: XNLI English validation (90% train, 10% dev) and each language's labeled test; PAWS-X, PAN-X and
UD-POS English train/validation and each language's test.

Intermediate tasks (English, `intermediate=True`): sst2, cola, mrpc, qqp, qnli, rte, mnli, boolq, cb, wic,
conll-ner (CoNLL-2003 English, zero-shot on German, Spanish, Dutch) and the multiple-choice tasks commonsenseqa,
xcopa (COPA, also zero-shot on XCOPA), cosmosqa and hellaswag. From the hub (`HubRows`, `_hub_english`) each reads
its own dataset (nyu-mll/glue, aps/super_glue, tau/commonsense_qa, allenai/cosmos_qa, Rowan/hellaswag): train cut
90/10 into train and dev, validation as test; qqp, mnli and hellaswag have no local files.
Where a task ships a single labeled file, it is cut into train 80% / dev 10% / test 10% of the rows in file
order, rows sharing a text kept in one part (`group_parts`, as for the item split).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from dlfa.errors import DataError
from dlfa.paths import cache_dir, cache_subdir
from dlfa.data import base, readers
from dlfa.data.base import EncodedSplit, Example, TaskInfo, encode_examples
from dlfa.data.readers import CONLL_NER_TAGS, PANX_TAGS, UPOS_TAGS

SPLITS = ("train", "dev", "test")
HUB_DATASET = "google/xtreme"
ITEM_SPLIT = (0.6, 2 / 3)  # PAWS-X dev sets: train up to 60% of the rows, dev up to two thirds, test the rest
XNLI_ITEM_SPLIT = (0.8, 0.88)  # XNLI dev + test items (7,500): train ~6,000, dev ~600, test ~900
XNLI_SPLIT_SEED = 13  # the shuffle of XNLI's item groups: part of the split's definition (and its fingerprint)
MIN_LABEL_AGREEMENT = 0.9
THIRDS = (0.8, 0.9)  # one labeled file cut into train, dev and test
TRAIN_DEV = (0.9,)  # a train file cut into train and dev
Cut = tuple[tuple[float, ...], int]  # (bounds, index of the part kept), see group_parts

Layout = dict[str, dict[str, "SplitData"]]  # language -> split -> data


# ----------------------------------------------------------------------------------------------------
# Sources


def pack_dir() -> Path:
    """Where the classroom pack lives (`cache/pack`)."""
    return cache_dir() / "pack"


def pack_built(path: Path | None = None) -> bool:
    return ((path or pack_dir()) / "MANIFEST.json").is_file()


def hub_config(dataset: str, config: str | None) -> str:
    """The loader's config argument for a hub dataset other than google/xtreme: `<dataset>:<config>`."""
    return f"{dataset}:{config or ''}"


def load_hub_split(config: str, split: str):
    """The default hub loader: one split of one google/xtreme config (or of another dataset, for a config
    written `<dataset>:<config>` by hub_config) as a `datasets.Dataset`."""
    from datasets import load_dataset

    from dlfa.hub import hub_reachable

    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")  # then datasets reads its cache
    if not offline and not hub_reachable():
        raise DataError("the Hugging Face hub cannot be reached, and no data root or classroom pack is set: "
                        "run `python -m dlfa prepare` for the classroom pack, or pass --data-root "
                        "(DLFA_DATA_DIR) a folder laid out like the project's data", HUB_DATASET)
    dataset, _, name = config.rpartition(":") if ":" in config else (HUB_DATASET, "", config)
    return load_dataset(dataset, name or None, split=split)


@dataclass(frozen=True)
class DataSource:
    """Where data comes from: a data root ("files"), the classroom pack ("pack") or the hub ("hub").

    `loader(config, split)` returns the rows of one google/xtreme split (a `datasets.Dataset` or any sequence of
    dicts); inject one to read local files written with the hub's schema.
    """

    kind: Literal["files", "pack", "hub"]
    root: Path | None = None
    loader: Callable[[str, str], Any] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def resolve(cls, data_root: str | Path | None = None) -> DataSource:
        """Explicit data root, else $DLFA_DATA_DIR, else the classroom pack if built, else the hub."""
        root = data_root or os.environ.get("DLFA_DATA_DIR")
        if root:
            path = Path(root).expanduser()
            if not path.is_dir():
                raise DataError("the data root does not exist or is not a folder", str(path))
            return cls("files", path.resolve())
        if pack_built():
            return cls("pack", pack_dir())
        return cls.hub()

    @classmethod
    def hub(cls, loader: Callable[[str, str], Any] | None = None) -> DataSource:
        return cls("hub", None, loader or load_hub_split)

    def describe(self) -> str:
        if self.kind == "hub":
            return f"the hub ({HUB_DATASET} and the intermediate tasks' datasets)"
        return f"{'the data root' if self.kind == 'files' else 'the classroom pack'} {self.root}"

    __str__ = describe


# ----------------------------------------------------------------------------------------------------
# Split data: where one (task, language, split) comes from


class SplitData(Protocol):
    def load(self) -> list[Example]: ...

    def fingerprint(self) -> str | None:
        """A key that changes when the data changes; None when only the content can tell."""


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


@lru_cache(maxsize=1)
def _code_version() -> str:
    """Hash of the code that turns files into features: a change invalidates cached counts and features."""
    return _digest([Path(path).read_text(encoding="utf-8") for path in (readers.__file__, base.__file__, __file__)])


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


def _take(examples: list[Example], cut: Cut | None) -> list[Example]:
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
        return _take([example for path in self.paths for example in read(path, **dict(self.options))], self.cut)

    def fingerprint(self) -> str:
        stats = []
        for path in self.paths:
            try:
                stat = path.stat()
            except OSError as exc:
                raise DataError(f"cannot read the file: {exc.strerror or exc}", str(path)) from exc
            stats.append([str(path.resolve()), stat.st_mtime_ns, stat.st_size])
        return _digest([self.reader, repr(self.options), self.cut, stats])


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
        return _digest(["item-split", self.bounds, self.seed, self.part,
                        [data.fingerprint() for data in (*self.english, *self.target)]])


HUB_PANX_LANGUAGES = (
    "af", "ar", "bg", "bn", "de", "el", "en", "es", "et", "eu", "fa", "fi", "fr", "he", "hi", "hu", "id", "it", "ja",
    "jv", "ka", "kk", "ko", "ml", "mr", "ms", "my", "nl", "pt", "ru", "sw", "ta", "te", "th", "tl", "tr", "ur", "vi",
    "yo", "zh",
)  # fmt: skip
HUB_UDPOS_CONFIGS = {
    "af": "Afrikaans", "ar": "Arabic", "eu": "Basque", "bg": "Bulgarian", "nl": "Dutch", "en": "English",
    "et": "Estonian", "fi": "Finnish", "fr": "French", "de": "German", "el": "Greek", "he": "Hebrew", "hi": "Hindi",
    "hu": "Hungarian", "id": "Indonesian", "it": "Italian", "ja": "Japanese", "kk": "Kazakh", "ko": "Korean",
    "zh": "Chinese", "mr": "Marathi", "fa": "Persian", "pt": "Portuguese", "ru": "Russian", "es": "Spanish",
    "tl": "Tagalog", "ta": "Tamil", "te": "Telugu", "th": "Thai", "tr": "Turkish", "ur": "Urdu", "vi": "Vietnamese",
    "yo": "Yoruba",
}  # fmt: skip
HUB_PAWSX_LANGUAGES = ("de", "en", "es", "fr", "ja", "ko", "zh")
HUB_XNLI_LANGUAGES = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")
# Label order of the hub's ClassLabel columns, used when a dataset carries plain integers without names
HUB_TAG_NAMES = {"ner_tags": PANX_TAGS, "pos_tags": UPOS_TAGS}


def _class_names(dataset: Any, column: str) -> tuple[str, ...]:
    try:
        return tuple(dataset.features[column].feature.names)
    except (AttributeError, KeyError, TypeError):
        return HUB_TAG_NAMES[column]


@dataclass(frozen=True)
class HubSplit:
    """One split of a google/xtreme config, converted to examples (`schema`: "xnli" | "pawsx" | "panx" | "udpos")."""

    loader: Callable[[str, str], Any] = field(compare=False, repr=False)
    config: str
    split: str  # the hub's split name: train | validation | test
    schema: str
    language: str | None = None  # keep only rows of this `language` (the XNLI config holds all languages)
    cut: Cut | None = None

    def load(self) -> list[Example]:
        where = f"{HUB_DATASET} {self.config} ({self.split})"
        try:
            dataset = self.loader(self.config, self.split)
        except Exception as exc:  # network, missing config or split, bad files: all reach the user as DataError
            raise DataError(f"cannot load {where}: {exc}") from exc
        try:
            examples = self._convert(dataset, where)
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise DataError(f"{where} does not have the expected columns: {exc!r}") from exc
        return _take(examples, self.cut)

    def _convert(self, dataset: Any, where: str) -> list[Example]:
        examples = []
        if self.schema in ("panx", "udpos"):
            column = "ner_tags" if self.schema == "panx" else "pos_tags"
            names = _class_names(dataset, column)
            for row in dataset:
                tags = tuple(names[t] if isinstance(t, int) else t for t in row[column])
                examples.append(Example(text=" ".join(row["tokens"]), words=tuple(row["tokens"]), tags=tags))
        elif self.schema == "xnli":
            for row in dataset:
                if row["language"] == self.language:
                    examples.append(Example(text=row["sentence1"], text_pair=row["sentence2"], label=row["gold_label"]))
        else:
            label_map = readers.TSV_FORMATS["pawsx"].label_map
            for row in dataset:
                label = str(row["label"])
                examples.append(
                    Example(text=row["sentence1"], text_pair=row["sentence2"], label=label_map.get(label, label))
                )
        return [
            Example(**{**asdict(example), "item_id": str(i), "source": f"{where} row {i}"})
            for i, example in enumerate(examples)
        ]

    def fingerprint(self) -> None:
        return None


# Hub rows of the intermediate tasks, converted by the local readers' converters (dataset cards: nyu-mll/glue,
# aps/super_glue, tau/commonsense_qa, allenai/cosmos_qa, Rowan/hellaswag; integer labels in ClassLabel order)
_GLUE_NLI3 = ("entailment", "neutral", "contradiction")
HUB_CONVERTERS: dict[str, readers.JsonConverter] = {
    "sst2": readers.hub_labels(readers.json_pair("sentence", None), ("negative", "positive")),
    "cola": readers.hub_labels(readers.json_pair("sentence", None), ("unacceptable", "acceptable")),
    "mrpc": readers.hub_labels(readers.json_pair("sentence1", "sentence2"), ("not_paraphrase", "paraphrase")),
    "qqp": readers.hub_labels(readers.json_pair("question1", "question2"), ("not_duplicate", "duplicate")),
    "qnli": readers.hub_labels(readers.json_pair("question", "sentence"), ("entailment", "not_entailment")),
    "rte": readers.hub_labels(readers.json_pair("sentence1", "sentence2"), ("entailment", "not_entailment")),
    "mnli": readers.hub_labels(readers.json_pair("premise", "hypothesis"), _GLUE_NLI3),
    "boolq": readers.hub_labels(readers.json_pair("question", "passage"), (False, True)),
    "cb": readers.hub_labels(readers.json_pair("premise", "hypothesis"), ("entailment", "contradiction", "neutral")),
    "wic": readers.hub_labels(readers.JSONL_FORMATS["wic"], (False, True)),
    "copa": readers.JSONL_FORMATS["copa"],
    "commonsenseqa": readers.JSONL_FORMATS["commonsenseqa"],
    "cosmosqa": readers.JSONL_FORMATS["cosmosqa"],
    "hellaswag": readers.JSONL_FORMATS["hellaswag"],
}


@dataclass(frozen=True)
class HubRows:
    """One split of a hub dataset other than google/xtreme, each row converted by HUB_CONVERTERS[convert]."""

    loader: Callable[[str, str], Any] = field(compare=False, repr=False)
    dataset: str
    config: str | None
    split: str
    convert: str
    cut: Cut | None = None

    def load(self) -> list[Example]:
        where = f"{self.dataset}{f' {self.config}' if self.config else ''} ({self.split})"
        try:
            rows = self.loader(hub_config(self.dataset, self.config), self.split)
        except Exception as exc:  # network, missing config or split, bad files: all reach the user as DataError
            raise DataError(f"cannot load {where}: {exc}") from exc
        convert = HUB_CONVERTERS[self.convert]
        examples = [readers.convert_row(row, convert, None, f"{where} row", number,  # rows counted from 1
                                        row.get("idx", row.get("id", number - 1)) if isinstance(row, dict) else None)
                    for number, row in enumerate(rows, start=1)]
        if not examples:
            raise DataError(f"{where} has no rows")
        return _take(examples, self.cut)

    def fingerprint(self) -> None:
        return None


# ----------------------------------------------------------------------------------------------------
# Layouts: language -> split -> data, for a data root, the pack or the hub


def _file(path: Path, reader: str, cut: Cut | None = None, **options: Any) -> FileSplit:
    return FileSplit((path,), reader, tuple(sorted(options.items())), cut)


def _udpos_files(root: Path, task: TaskInfo) -> Layout:
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


def _panx_files(root: Path, task: TaskInfo) -> Layout:
    folder = root / "ner" / "panx_xtreme"
    layout: Layout = {}
    for path in sorted(folder.glob("*-*.tsv")):
        split, _, language = path.stem.partition("-")
        data = _file(path, "token_tag", labels=task.labels, language=language)
        if language == "en" and split in ("train", "dev"):
            layout.setdefault("en", {})[split] = data
        elif language != "en" and split == "dev":
            layout.setdefault(language, {})["test"] = data
    return layout


def _item_split_files(folder: Path, tsv_format: str, task: TaskInfo, test_folder: Path | None = None) -> Layout:
    """The item split of `folder`'s dev-xx.tsv files; with `test_folder` holding test-en.tsv, of the dev and
    test-xx.tsv files pooled (languages that have both), split by XNLI_ITEM_SPLIT with XNLI_SPLIT_SEED."""
    dev = {path.stem.partition("-")[2]: path for path in sorted(folder.glob("dev-*.tsv"))}
    if not dev:
        return {}
    if "en" not in dev:
        raise DataError(f"the item split of {task.name} needs the English file dev-en.tsv", str(folder))
    pooled = test_folder is not None and (test_folder / "test-en.tsv").is_file()
    files = {language: (_file(path, "tsv", fmt=tsv_format, labels=task.labels),) for language, path in dev.items()}
    settings = {}
    if pooled:
        files = {language: (*dev_file, _file(test_folder / f"test-{language}.tsv", "tsv", fmt=tsv_format,
                                             labels=task.labels))
                 for language, dev_file in files.items() if (test_folder / f"test-{language}.tsv").is_file()}
        settings = {"bounds": XNLI_ITEM_SPLIT, "seed": XNLI_SPLIT_SEED}
    english = files["en"]
    layout: Layout = {"en": {split: ItemSplit(english, english, split, **settings) for split in SPLITS}}
    for language, target in files.items():
        if language != "en":
            layout[language] = {"test": ItemSplit(english, target, "test", **settings)}
    return layout


def _hub_english(dataset: str, config: str | None, convert: str, test_split: str = "validation"):
    """A hub layout for an English intermediate task: the train split cut 90/10 into train and dev (the test
    splits carry no labels), `test_split` as test."""

    def layout(loader: Callable[[str, str], Any]) -> Layout:
        def part(split: str, cut: Cut | None = None) -> HubRows:
            return HubRows(loader, dataset, config, split, convert, cut)

        return {"en": {"train": part("train", (TRAIN_DEV, 0)), "dev": part("train", (TRAIN_DEV, 1)),
                       "test": part(test_split)}}

    return layout


def _no_local_files(root: Path, task: TaskInfo) -> Layout:
    """Tasks whose data is not on this machine (files of 4 MiB and more): the hub only."""
    return {}


def _xcopa_files(root: Path, task: TaskInfo) -> Layout:
    """COPA English train (90% train, 10% dev), English COPA validation as English test, XCOPA validation as test."""
    folder = root / "pair" / "xcopa_xtreme_style"
    layout: Layout = {}
    if (folder / "train-en.jsonl").is_file():
        layout["en"] = {
            split: _file(folder / "train-en.jsonl", "jsonl", (TRAIN_DEV, index), convert="copa", labels=task.labels)
            for index, split in enumerate(("train", "dev"))
        }
    for path in sorted(folder.glob("val-*.jsonl")):
        language = path.stem.partition("-")[2]
        layout.setdefault(language, {})["test"] = _file(path, "jsonl", convert="copa", labels=task.labels)
    return layout


_CONLL_FILES = {
    "en": "conll2003/eng", "de": "conll2003/deu", "es": "conll2002/esp", "nl": "conll2002/ned",
}  # fmt: skip
_CONLL_SPLITS = {"train": "train", "dev": "testa", "test": "testb"}


def _conll_files(root: Path, task: TaskInfo) -> Layout:
    layout: Layout = {}
    for language, stem in _CONLL_FILES.items():
        for split, suffix in _CONLL_SPLITS.items():
            path = root / "ner" / "conll" / f"{stem}.{suffix}"
            if path.is_file() and (language == "en" or split != "train"):
                data = _file(path, "conll_ner", labels=task.labels, fallback_encoding="latin-1")
                layout.setdefault(language, {})[split] = data
    return layout


def _english_files(splits: dict[str, tuple[str, Cut | None]], reader: str, **options: Any):
    """A layout function for an English-only task: split -> (path under the root, the part of it or None)."""

    def layout(root: Path, task: TaskInfo) -> Layout:
        found = {
            split: _file(root / relative, reader, cut, labels=task.labels, **options)
            for split, (relative, cut) in splits.items()
            if (root / relative).is_file()
        }
        return {"en": found} if found else {}

    return layout


def _cut(relative: str, bounds: tuple[float, ...]) -> dict[str, tuple[str, Cut]]:
    """train, dev (and test) as parts of one file."""
    return {SPLITS[index]: (relative, (bounds, index)) for index in range(len(bounds) + 1)}


def _pack_files(subfolder: str, reader: str, **options: Any):
    """A layout function for a classroom task: `<pack>/<subfolder>/<language>-<split>.<ext>`."""

    def layout(root: Path, task: TaskInfo) -> Layout:
        result: Layout = {}
        for path in sorted((root / subfolder).glob("*-*.*")):
            language, _, split = path.stem.partition("-")
            if split in SPLITS:
                result.setdefault(language, {})[split] = _file(path, reader, labels=task.labels, **options)
        return result

    return layout


def _hub_layout(config: Callable[[str], str], languages: Iterable[str], schema: str, by_language: bool = False):
    """A hub layout: English train/dev (validation) and every language's test."""

    def layout(loader: Callable[[str, str], Any]) -> Layout:
        def split(language: str, name: str, cut: Cut | None = None) -> HubSplit:
            return HubSplit(loader, config(language), name, schema, language if by_language else None, cut)

        result: Layout = {language: {"test": split(language, "test")} for language in languages}
        if schema == "xnli":  # no English training set in google/xtreme: its validation set, cut in two
            result["en"].update(
                train=split("en", "validation", (TRAIN_DEV, 0)), dev=split("en", "validation", (TRAIN_DEV, 1))
            )
        else:
            result["en"].update(train=split("en", "train"), dev=split("en", "validation"))
        return result

    return layout


# ----------------------------------------------------------------------------------------------------
# The tasks


@dataclass(frozen=True)
class TaskSpec:
    info: TaskInfo
    files: Callable[[Path, TaskInfo], Layout]  # layout under a data root (or under the pack for classroom tasks)
    classroom: bool = False
    hub: Callable[[Callable[[str, str], Any]], Layout] | None = None


def _whole(folder: str, **files: str) -> dict[str, tuple[str, None]]:
    """split -> (whole file) for an English task's files in `folder`."""
    return {split: (f"{folder}/{name}", None) for split, name in files.items()}


_NLI3 = ("entailment", "neutral", "contradiction")
_NLI2 = ("entailment", "not_entailment")
_SUPERGLUE = "english/SuperGLUE_val_and_FewGLUE"
_CSQA = "english/CommonsenseQA/official"
# fmt: off
_SPECS = [
    # the paper's four target tasks
    TaskSpec(TaskInfo("udpos", "token", UPOS_TAGS, "accuracy",
                      "Universal POS tagging: UD English-EWT, Parallel UD, XTREME UD-POS"),
             _udpos_files,
             hub=_hub_layout(lambda lang: f"udpos.{HUB_UDPOS_CONFIGS[lang]}", HUB_UDPOS_CONFIGS, "udpos")),
    TaskSpec(TaskInfo("panx", "token", PANX_TAGS, "entity_f1", "Named entities (PER, ORG, LOC): PAN-X / WikiANN"),
             _panx_files,
             hub=_hub_layout(lambda lang: f"PAN-X.{lang}", HUB_PANX_LANGUAGES, "panx")),
    TaskSpec(TaskInfo("xnli", "pair", _NLI3, "accuracy",
                      "Natural language inference: XNLI (item split of the dev and test sets pooled)"),
             lambda root, task: _item_split_files(root / "pair" / "xnli_xtreme", "xnli", task,
                                                  root / "pair" / "xnli_test_derived"),
             hub=_hub_layout(lambda lang: "XNLI", HUB_XNLI_LANGUAGES, "xnli", by_language=True)),
    TaskSpec(TaskInfo("pawsx", "pair", ("different", "paraphrase"), "accuracy",
                      "Paraphrase identification: PAWS-X (item split of the dev sets: no more labeled English data "
                      "here)"),
             lambda root, task: _item_split_files(root / "pair" / "pawsx_xtreme", "pawsx", task),
             hub=_hub_layout(lambda lang: f"PAWS-X.{lang}", HUB_PAWSX_LANGUAGES, "pawsx")),
    # English intermediate tasks
    TaskSpec(TaskInfo("sst2", "sentence", ("negative", "positive"), "accuracy",
                      "Sentiment of movie-review phrases: GLUE SST-2", intermediate=True),
             _english_files(_whole("english/SST-2", train="train.tsv", dev="dev.tsv", test="test-labeled.tsv"),
                            "tsv", fmt="sst2"),
             hub=_hub_english("nyu-mll/glue", "sst2", "sst2")),
    TaskSpec(TaskInfo("cola", "sentence", ("unacceptable", "acceptable"), "mcc",
                      "Grammatical acceptability: CoLA (out-of-domain dev as test)", intermediate=True),
             _english_files(_whole("english/CoLA/raw", train="in_domain_train.tsv", dev="in_domain_dev.tsv",
                                   test="out_of_domain_dev.tsv"), "tsv", fmt="cola"),
             hub=_hub_english("nyu-mll/glue", "cola", "cola")),
    TaskSpec(TaskInfo("mrpc", "pair", ("not_paraphrase", "paraphrase"), "f1",
                      "Paraphrase: MSR Paraphrase Corpus (train cut 90/10, original test)", intermediate=True),
             _english_files({**_cut("english/MRPC/msr_paraphrase_train.txt", TRAIN_DEV),
                             **_whole("english/MRPC", test="msr_paraphrase_test.txt")}, "tsv", fmt="mrpc"),
             hub=_hub_english("nyu-mll/glue", "mrpc", "mrpc")),
    TaskSpec(TaskInfo("qqp", "pair", ("not_duplicate", "duplicate"), "f1",
                      "Duplicate questions: GLUE QQP (hub only: train cut 90/10, validation as test)",
                      intermediate=True),
             _no_local_files, hub=_hub_english("nyu-mll/glue", "qqp", "qqp")),
    TaskSpec(TaskInfo("mnli", "pair", _NLI3, "accuracy",
                      "Natural language inference: GLUE MNLI (hub only: train cut 90/10, validation_matched as "
                      "test)", intermediate=True),
             _no_local_files, hub=_hub_english("nyu-mll/glue", "mnli", "mnli", "validation_matched")),
    TaskSpec(TaskInfo("qnli", "pair", _NLI2, "accuracy", "Question-answer entailment: GLUE QNLI dev cut 80/10/10",
                      intermediate=True),
             _english_files(_cut("english/QNLI/dev.tsv", THIRDS), "tsv", fmt="qnli"),
             hub=_hub_english("nyu-mll/glue", "qnli", "qnli")),
    TaskSpec(TaskInfo("rte", "pair", _NLI2, "accuracy", "Textual entailment: GLUE RTE (train cut 90/10, dev as test)",
                      intermediate=True),
             _english_files({**_cut("english/RTE/train.tsv", TRAIN_DEV), **_whole("english/RTE", test="dev.tsv")},
                            "tsv", fmt="rte"),
             hub=_hub_english("nyu-mll/glue", "rte", "rte")),
    TaskSpec(TaskInfo("boolq", "pair", ("false", "true"), "accuracy",
                      "Yes/no questions on a passage: SuperGLUE BoolQ val cut 80/10/10", intermediate=True),
             _english_files(_cut(f"{_SUPERGLUE}/BoolQ/val.jsonl", THIRDS), "jsonl", convert="boolq"),
             hub=_hub_english("aps/super_glue", "boolq", "boolq")),
    TaskSpec(TaskInfo("cb", "pair", _NLI3, "accuracy",
                      "CommitmentBank NLI: FewGLUE train and dev32 (32 each), SuperGLUE val as test",
                      intermediate=True),
             _english_files(_whole(f"{_SUPERGLUE}/CB", train="train.jsonl", dev="dev32.jsonl", test="val.jsonl"),
                            "jsonl", convert="cb"),
             hub=_hub_english("aps/super_glue", "cb", "cb")),
    TaskSpec(TaskInfo("wic", "pair", ("false", "true"), "accuracy", "Word in context: SuperGLUE WiC val cut 80/10/10",
                      intermediate=True),
             _english_files(_cut(f"{_SUPERGLUE}/WiC/val.jsonl", THIRDS), "jsonl", convert="wic"),
             hub=_hub_english("aps/super_glue", "wic", "wic")),
    TaskSpec(TaskInfo("commonsenseqa", "multiple_choice", tuple("ABCDE"), "accuracy",
                      "Commonsense questions, 5 choices: CommonsenseQA official train (9,741) cut 90/10, official "
                      "dev as test", intermediate=True),
             _english_files({**_cut(f"{_CSQA}/train_rand_split.jsonl", TRAIN_DEV),
                             **_whole(_CSQA, test="dev_rand_split.jsonl")}, "jsonl", convert="commonsenseqa"),
             hub=_hub_english("tau/commonsense_qa", None, "commonsenseqa")),
    TaskSpec(TaskInfo("xcopa", "multiple_choice", ("choice1", "choice2"), "accuracy",
                      "Causal reasoning, 2 choices: COPA English train cut 90/10, COPA and XCOPA validation as test",
                      intermediate=True),
             _xcopa_files, hub=_hub_english("aps/super_glue", "copa", "copa")),
    TaskSpec(TaskInfo("cosmosqa", "multiple_choice", ("0", "1", "2", "3"), "accuracy",
                      "Reading comprehension with commonsense, 4 choices: Cosmos QA dev cut 80/10/10 (train on the "
                      "hub only)", intermediate=True),
             _english_files(_cut("english/CosmosQA/valid.csv", THIRDS), "csv", convert="cosmosqa"),
             hub=_hub_english("allenai/cosmos_qa", None, "cosmosqa")),
    TaskSpec(TaskInfo("hellaswag", "multiple_choice", ("0", "1", "2", "3"), "accuracy",
                      "Sentence completion, 4 endings: HellaSwag (hub only: train cut 90/10, validation as test)",
                      intermediate=True),
             _no_local_files, hub=_hub_english("Rowan/hellaswag", None, "hellaswag")),
    TaskSpec(TaskInfo("conll-ner", "token", CONLL_NER_TAGS, "entity_f1",
                      "Named entities: CoNLL-2003 English; CoNLL-2002/2003 German, Spanish, Dutch as test",
                      intermediate=True),
             _conll_files),
    # the offline classroom pack (dlfa.data.classroom)
    TaskSpec(TaskInfo("pos-classroom", "token", UPOS_TAGS, "accuracy",
                      "Classroom POS: English OANC/WSJ; Turkish, German, Spanish, Italian, Dutch (universal tags)",
                      intermediate=True),
             _pack_files("pos", "token_tag"), classroom=True),
    TaskSpec(TaskInfo("sentiment-classroom", "sentence", ("negative", "positive"), "accuracy",
                      "Classroom sentiment: English movie reviews; Dutch, French, German book reviews",
                      intermediate=True),
             _pack_files("sentiment", "jsonl", convert="sentence"), classroom=True),
]
# fmt: on
_TASKS = {spec.info.name: spec for spec in _SPECS}


def list_tasks() -> list[TaskInfo]:
    return [spec.info for spec in _SPECS]


def get_task(name: str | TaskInfo) -> TaskInfo:
    return _spec(name).info


def _spec(task: str | TaskInfo) -> TaskSpec:
    name = task.name if isinstance(task, TaskInfo) else task
    if name not in _TASKS:
        raise DataError(f"unknown task {name!r}; known tasks: {', '.join(_TASKS)}")
    return _TASKS[name]


def _layout(spec: TaskSpec, source: DataSource) -> Layout:
    if spec.classroom:
        root = source.root if source.kind == "pack" else pack_dir()
        return spec.files(root, spec.info) if pack_built(root) else {}
    if source.kind == "files":
        return spec.files(source.root, spec.info)
    if source.kind == "hub" and spec.hub is not None:
        return spec.hub(source.loader or load_hub_split)
    return {}


def _split_data(
    task: str | TaskInfo, language: str, split: str, source: DataSource | None
) -> tuple[TaskInfo, SplitData]:
    spec = _spec(task)
    source = source or DataSource.resolve()
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
    layout = _layout(spec, source)
    if not layout:
        hint = "build the classroom pack: python -m dlfa prepare" if spec.classroom else "give a data root that has it"
        raise DataError(f"task {spec.info.name} has no data in {source.describe()}; {hint}")
    if language not in layout:
        raise DataError(
            f"task {spec.info.name} has no language {language!r} in {source.describe()}; "
            f"languages available: {', '.join(_ordered(layout))}"
        )
    if split not in layout[language]:
        raise DataError(
            f"task {spec.info.name} has no {split!r} split for {language!r} in {source.describe()}; "
            f"it has: {', '.join(s for s in SPLITS if s in layout[language])}"
        )
    return spec.info, layout[language][split]


def _ordered(layout: Layout) -> list[str]:
    return sorted(layout, key=lambda language: (language != "en", language))


# ----------------------------------------------------------------------------------------------------
# Public loading API

_COUNTS: dict[str, int] = {}


def _counts_file() -> Path:
    return cache_subdir("features") / "counts.json"


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_atomic(path: Path, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Write through `write(file)` into a temporary file beside `path`, then rename it over `path`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, mode) as handle:
            write(handle)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _count(data: SplitData) -> int:
    """Number of examples; counts of files are cached in memory and in cache/features/counts.json."""
    fingerprint = data.fingerprint()
    if fingerprint is None:
        return len(data.load())
    key = _digest([fingerprint, _code_version()])
    if key not in _COUNTS:
        stored = _read_json(_counts_file())
        if key not in stored:
            stored[key] = len(data.load())
            _write_atomic(_counts_file(), lambda handle: handle.write(json.dumps(stored)), "w")
        _COUNTS[key] = stored[key]
    return _COUNTS[key]


@dataclass(frozen=True)
class LanguageScan:
    """What a source has for one task: `available` language -> split -> number of examples (English first), and
    `broken` language -> why its data cannot be read (one line naming the file and, where known, the line)."""

    available: dict[str, dict[str, int]]
    broken: dict[str, str]


def scan_languages(task: str | TaskInfo, source: DataSource | None = None) -> LanguageScan:
    """Count every language's splits. A language with a file that cannot be read is left out of `available`, its
    reason kept in `broken`, so one bad file disables only its own language; from the hub, where a config may lack
    a split, a split that fails to load is left out and a language is broken only when all its splits fail (and
    when every language fails, the first failure is raised: one reason, e.g. no network). Empty splits are left out.
    """
    spec = _spec(task)
    source = source or DataSource.resolve()
    layout = _layout(spec, source)
    available: dict[str, dict[str, int]] = {}
    broken: dict[str, str] = {}
    errors = []
    for language in _ordered(layout):
        counts, failures = {}, []
        for split in SPLITS:
            if split in layout[language]:
                try:
                    counts[split] = _count(layout[language][split])
                except DataError as exc:
                    failures.append(exc)
        errors += failures
        if failures and (source.kind != "hub" or not counts):
            broken[language] = str(failures[0])
        elif any(counts.values()):
            available[language] = {split: count for split, count in counts.items() if count}
    if source.kind == "hub" and layout and not available and errors:
        raise errors[0]
    return LanguageScan(available, broken)


def _layout_source(layout: Layout, root: Path | None) -> str | None:
    """The hub dataset of a layout, or the folder (under `root` where it is inside) that holds all its files."""
    paths, hub = [], None
    for splits in layout.values():
        for data in splits.values():
            files = [*data.english, *data.target] if isinstance(data, ItemSplit) else [data]
            for part in files:
                if isinstance(part, HubRows):
                    hub = f"hub {part.dataset}{f' {part.config}' if part.config else ''}"
                elif isinstance(part, HubSplit):
                    hub = f"hub {HUB_DATASET}"
                else:
                    paths += [path.parent for path in part.paths]
    if hub or not paths:
        return hub
    folder = Path(os.path.commonpath(paths))
    return str(folder.relative_to(root)) if root and folder.is_relative_to(root) else str(folder)


def task_source(task: str | TaskInfo, source: DataSource | None = None) -> str:
    """Where a task's data comes from in `source`: the folder under the data root or pack that holds its files,
    or its hub dataset; with no data there, where the hub has it."""
    spec, source = _spec(task), source or DataSource.resolve()
    found = _layout_source(_layout(spec, source), source.root)
    if found:
        return found
    on_hub = _layout_source(spec.hub(lambda config, split: []), None) if spec.hub and not spec.classroom else None
    return f"none in {source.describe()}" + (f" ({on_hub} has it)" if on_hub else "")


def available_languages(task: str | TaskInfo, source: DataSource | None = None) -> dict[str, dict[str, int]]:
    """Language -> split -> number of examples, for the languages `source` can read (English first); see
    scan_languages for the languages left out and why."""
    return scan_languages(task, source).available


def english_sizes(task: str | TaskInfo, source: DataSource | None = None) -> dict[str, int]:
    """The number of English train / dev / test examples `source` has for a task (0 for a missing split); only
    the English files are read."""
    english = _layout(_spec(task), source or DataSource.resolve()).get("en", {})
    return {split: _count(english[split]) if split in english else 0 for split in SPLITS}


def load_examples(
    task: str | TaskInfo, language: str, split: str, source: DataSource | None = None, max_examples: int | None = None
) -> list[Example]:
    """The examples of one (task, language, split): "train" and "dev" are English; zero-shot languages have "test"."""
    _, data = _split_data(task, language, split, source)
    examples = data.load()
    return examples if max_examples is None else examples[:max_examples]


def tokenizer_fingerprint(tokenizer) -> str:
    """Identity of a tokenizer: class, name, size and its serialized definition (or vocabulary)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # the serialization begins with the current truncation and padding settings, which change with every call
        definition = backend.to_str().partition('"added_tokens"')[2]
    else:
        definition = json.dumps(sorted(tokenizer.get_vocab().items()))
    return _digest([type(tokenizer).__name__, getattr(tokenizer, "name_or_path", ""), len(tokenizer), definition])


def _sequences(features: list[dict], kind: str) -> list[dict]:
    """One entry per encoded sequence: the features themselves, or every choice of a multiple-choice feature."""
    if kind != "multiple_choice":
        return features
    return [{key: feature[key][choice] for key in ("input_ids", "token_type_ids") if key in feature}
            for feature in features for choice in range(len(feature["input_ids"]))]


def _save_features(path: Path, encoded: EncodedSplit, kind: str) -> None:
    """Stored flat: every sequence's ids one after another with their offsets (a multiple-choice feature's C
    choices as C consecutive sequences), the labels per feature (per token for token tasks)."""
    labels = [f["labels"] for f in encoded.features]
    features = _sequences(encoded.features, kind)
    lengths = [len(f["input_ids"]) for f in features]
    arrays = {
        "offsets": np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64),
        "input_ids": np.fromiter((i for f in features for i in f["input_ids"]), dtype=np.int32),
        "truncated": np.array(encoded.truncated, dtype=np.int64),
    }
    if kind == "token":
        arrays["labels"] = np.fromiter((i for f in features for i in f["labels"]), dtype=np.int32)
    else:
        arrays["labels"] = np.array(labels, dtype=np.int32)
    if features and "token_type_ids" in features[0]:
        arrays["token_type_ids"] = np.fromiter((i for f in features for i in f["token_type_ids"]), dtype=np.int32)
    _write_atomic(path, lambda handle: np.savez(handle, **arrays))


def _load_features(path: Path, encoded: EncodedSplit, kind: str, choices: int) -> EncodedSplit:
    with np.load(path, allow_pickle=False) as stored:
        offsets = stored["offsets"].tolist()
        input_ids = stored["input_ids"].tolist()
        labels = stored["labels"].tolist()
        types = stored["token_type_ids"].tolist() if "token_type_ids" in stored.files else None
        encoded.truncated = int(stored["truncated"])
    sequences = []
    for start, end in zip(offsets, offsets[1:]):
        sequence = {"input_ids": input_ids[start:end]}
        if types is not None:
            sequence["token_type_ids"] = types[start:end]
        sequences.append(sequence)
    if kind == "token":
        encoded.features = [{**sequence, "labels": labels[start:end]}
                            for sequence, start, end in zip(sequences, offsets, offsets[1:])]
    elif kind == "multiple_choice":  # C consecutive sequences per feature
        encoded.features = [{key: [s[key] for s in sequences[i * choices : (i + 1) * choices]] for key in sequences[0]}
                            | {"labels": label} for i, label in enumerate(labels)]
    else:
        encoded.features = [{**sequence, "labels": label} for sequence, label in zip(sequences, labels)]
    return encoded


def load_encoded(
    task: str | TaskInfo,
    language: str,
    split: str,
    source: DataSource | None,
    tokenizer,
    max_length: int,
    max_examples: int | None = None,
) -> EncodedSplit:
    """Model-ready features of one (task, language, split), cached under cache/features/.

    The cache key covers the task and its labels, the data (file paths, mtimes and sizes; the examples' content for
    the hub), the tokenizer's full definition, max_length, max_examples and the reading/encoding code, so a changed
    input invalidates it; a hit skips reading and tokenization. Files are .npz (no pickle), written atomically.
    """
    info, data = _split_data(task, language, split, source)
    fingerprint = data.fingerprint()
    examples = None
    if fingerprint is None:
        examples = data.load()[:max_examples] if max_examples is not None else data.load()
        fingerprint = _digest([asdict(example) for example in examples])
    key = _digest(
        {
            "task": asdict(info),
            "where": [language, split, fingerprint],
            "tokenizer": tokenizer_fingerprint(tokenizer),
            "limits": [max_length, max_examples],
            "code": _code_version(),
        }
    )
    path = cache_subdir("features") / f"{info.name}-{language}-{split}-{key[:24]}.npz"
    if path.is_file():
        try:
            return _load_features(path, EncodedSplit(info.name, language, split), info.kind, len(info.labels))
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # unreadable: encode again
    if examples is None:
        examples = data.load()[:max_examples] if max_examples is not None else data.load()
    encoded = encode_examples(examples, info, tokenizer, max_length, language=language, split=split)
    _save_features(path, encoded, info.kind)
    return encoded
