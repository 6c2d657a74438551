"""Layouts read from the Hugging Face hub (language -> split -> data, like dlfa.data.file_layouts for a data root).

- The paper's four tasks from `google/xtreme` (`HubSplit`, `hub_xtreme`): English train/validation and each
  language's test; XNLI has no English training set there, so its English validation set is cut 90/10 into train
  and dev, and each language's labeled test is its test.
- The QA tasks (`HubQaRows`, `hub_qa`): English train and dev from `rajpurkar/squad` (its train split cut 90/10 by
  paragraph: no dev paragraph is trained on; XQuAD's English paragraphs come from SQuAD's validation split, which
  only the intermediate task `squad` reads, as its test), each language's test from google/xtreme:
  `XQuAD.<lang>` (split validation, the only one),
  `MLQA.<lang>.<lang>` (split test) and `tydiqa` (TyDiQA-GoldP, split validation; a row's language is its id's
  prefix, e.g. `arabic-…`). Rows have SQuAD's columns id, title, context, question, answers {text, answer_start}
  (dlfa.data.qa.read_squad_rows).
- The intermediate tasks from their own datasets (`HubRows`, `hub_english`: nyu-mll/glue, aps/super_glue,
  tau/commonsense_qa, allenai/cosmos_qa, Rowan/hellaswag, allenai/social_i_qa), each row converted by the local
  readers' converters: train cut 90/10 into train and dev (the test splits carry no labels), validation as test;
  squad, the QA one, is `hub_qa("squad")` (above).
A layout function takes the loader (`loader(config, split)` -> rows, see dlfa.data.sources.DataSource), so tests
inject one that reads local files written with the hub's schema.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from dlfa.data import readers
from dlfa.data.base import Example
from dlfa.data.qa import QA_SPLIT_SEED, QaExample, read_squad_rows, split_by_paragraph, take_split
from dlfa.data.readers import PANX_TAGS, UPOS_TAGS
from dlfa.data.sources import HUB_DATASET, hub_config
from dlfa.data.splits import TRAIN_DEV, Cut, Layout, take_part
from dlfa.errors import DataError

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
        return take_part(examples, self.cut)

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
# aps/super_glue, tau/commonsense_qa, allenai/cosmos_qa, Rowan/hellaswag, allenai/social_i_qa; integer labels in
# ClassLabel order)
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
    "siqa": readers.JSONL_FORMATS["siqa"],
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
        return take_part(examples, self.cut)

    def fingerprint(self) -> None:
        return None


def hub_english(dataset: str, config: str | None, convert: str, test_split: str = "validation"):
    """A hub layout for an English intermediate task: the train split cut 90/10 into train and dev (the test
    splits carry no labels), `test_split` as test."""

    def layout(loader: Callable[[str, str], Any]) -> Layout:
        def part(split: str, cut: Cut | None = None) -> HubRows:
            return HubRows(loader, dataset, config, split, convert, cut)

        return {"en": {"train": part("train", (TRAIN_DEV, 0)), "dev": part("train", (TRAIN_DEV, 1)),
                       "test": part(test_split)}}

    return layout


def hub_xtreme(config: Callable[[str], str], languages: Iterable[str], schema: str, by_language: bool = False):
    """A google/xtreme layout: English train/dev (validation) and every language's test; `config(language)` names
    the language's configuration."""

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
# Question answering: SQuAD for training, google/xtreme for testing

HUB_SQUAD = "rajpurkar/squad"
HUB_XQUAD_LANGUAGES = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")
HUB_MLQA_LANGUAGES = ("ar", "de", "en", "es", "hi", "vi", "zh")
HUB_TYDIQA_LANGUAGES = {"ar": "arabic", "bn": "bengali", "en": "english", "fi": "finnish", "id": "indonesian",
                        "ko": "korean", "ru": "russian", "sw": "swahili", "te": "telugu"}  # id prefix per language
SQUAD_DEV_PART = (0.9, 1.0)  # SQuAD train by paragraph: train up to 90% of the questions, dev the rest


@dataclass(frozen=True)
class HubQaRows:
    """One split of SQuAD-format rows on the hub as QaExamples: whole, only the rows whose id starts with
    `id_prefix` + "-" (TyDiQA's language), or one `part` ("train" | "dev") of its paragraph split SQUAD_DEV_PART."""

    loader: Callable[[str, str], Any] = field(compare=False, repr=False)
    dataset: str
    config: str | None
    split: str
    language: str
    part: str | None = None
    id_prefix: str | None = None

    @property
    def hub_name(self) -> str:
        return self.dataset

    def load(self) -> list[QaExample]:
        where = f"{self.dataset}{f' {self.config}' if self.config else ''} ({self.split})"
        config = self.config if self.dataset == HUB_DATASET else hub_config(self.dataset, self.config)
        try:
            rows = self.loader(config, self.split)
        except Exception as exc:  # network, missing config or split, bad files: all reach the user as DataError
            raise DataError(f"cannot load {where}: {exc}") from exc
        if self.id_prefix:
            rows = [row for row in rows if str(row.get("id", "")).startswith(f"{self.id_prefix}-")]
            where = f"{where}, ids {self.id_prefix}-…"
        examples = read_squad_rows(rows, self.language, where=where)
        if self.part is None:
            return examples
        return take_split(examples, split_by_paragraph(examples, (), SQUAD_DEV_PART, QA_SPLIT_SEED), self.part)

    def fingerprint(self) -> None:
        return None


def hub_qa(task: str):
    """A hub layout for a QA task ("squad", "xquad", "mlqa" or "tydiqa"): English train and dev from SQuAD's train
    split; test: SQuAD's validation split for "squad" (English only), each language's from google/xtreme for the
    others (see the module docstring)."""

    def test_rows(loader: Callable[[str, str], Any], language: str) -> HubQaRows:
        if task == "squad":
            return HubQaRows(loader, HUB_SQUAD, None, "validation", language)
        if task == "xquad":
            return HubQaRows(loader, HUB_DATASET, f"XQuAD.{language}", "validation", language)
        if task == "mlqa":
            return HubQaRows(loader, HUB_DATASET, f"MLQA.{language}.{language}", "test", language)
        return HubQaRows(loader, HUB_DATASET, "tydiqa", "validation", language,
                         id_prefix=HUB_TYDIQA_LANGUAGES[language])

    languages = {"squad": ("en",), "xquad": HUB_XQUAD_LANGUAGES, "mlqa": HUB_MLQA_LANGUAGES,
                 "tydiqa": tuple(HUB_TYDIQA_LANGUAGES)}[task]

    def layout(loader: Callable[[str, str], Any]) -> Layout:
        result: Layout = {language: {"test": test_rows(loader, language)} for language in languages}
        result["en"].update({part: HubQaRows(loader, HUB_SQUAD, None, "train", "en", part=part)
                             for part in ("train", "dev")})
        return result

    return layout
