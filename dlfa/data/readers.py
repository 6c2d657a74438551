"""Readers for the local data formats. Longer than 400 lines because it holds one reader per format and the row
converters that the JSON-lines and CSV readers share with the hub (dlfa.data.hub_layouts); each section stands alone.

Each reader returns `list[Example]` and raises only `DataError`, naming the file, the line and what was wrong
(wrong column count, a tag outside the label set, undecodable bytes, empty file).

Formats: CoNLL-U (`read_conllu`), `token<TAB>tag` as in XTREME PAN-X / UD-POS (`read_token_tag`), CoNLL-2002/2003
(`read_conll_ner`), tab-separated sentence and pair files such as XNLI, PAWS-X and GLUE (`read_tsv` with a
`TsvFormat`, presets in `TSV_FORMATS`) and JSON lines such as SuperGLUE, XCOPA and CommonsenseQA (`read_jsonl`
with a converter, presets in `JSONL_FORMATS`) and comma-separated files with a header such as Cosmos QA
(`read_csv`, the same converters). Lines may end in LF or CRLF; a UTF-8 byte-order mark is ignored.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from dlfa.errors import DataError
from dlfa.data.base import Example

UPOS_TAGS = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
    "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
)  # fmt: skip
PANX_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
CONLL_NER_TAGS = PANX_TAGS + ("B-MISC", "I-MISC")

_COLUMN_SEPARATOR = re.compile(r"[ \t]+")


# ----------------------------------------------------------------------------------------------------
# Lines


def read_text_lines(path: str | Path, fallback_encoding: str | None = None) -> list[str]:
    """The file's lines without line endings. UTF-8 first; `fallback_encoding` (e.g. "latin-1") where it is not."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read the file: {exc.strerror or exc}", str(path)) from exc
    encodings = ["utf-8-sig"] + ([fallback_encoding] if fallback_encoding else [])
    errors = []
    for encoding in encodings:
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError as exc:
            errors.append(exc)
    else:
        start = errors[0].start
        tried = " or ".join(["UTF-8"] + encodings[1:])
        line = raw.count(b"\n", 0, start) + 1
        raise DataError(f"undecodable bytes: not {tried} (byte {raw[start]:#04x})", str(path), line)
    if not text.strip():
        raise DataError("empty file", str(path))
    # split on "\n" only: str.splitlines would also break on characters such as U+0085 inside Latin-1 text
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def _is_blank(line: str) -> bool:
    return not line.strip(" \t")


def _blocks(lines: list[str]) -> Iterator[list[tuple[int, str]]]:
    """Blank-line separated blocks of (1-based line number, line)."""
    block: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        if _is_blank(line):
            if block:
                yield block
            block = []
        else:
            block.append((number, line))
    if block:
        yield block


def _check_label(label: str, labels: Collection[str] | None, path: Path, line: int, what: str = "tag") -> None:
    if labels is not None and label not in labels:
        shown = ", ".join(labels) if len(labels) <= 20 else f"{len(labels)} labels"
        raise DataError(f"{what} {label!r} is not in the task's label set ({shown})", str(path), line)


def _no_examples(path: Path) -> DataError:
    return DataError("no examples found", str(path))


# ----------------------------------------------------------------------------------------------------
# Token-level formats


def read_conllu(path: str | Path, labels: Collection[str] | None = UPOS_TAGS) -> list[Example]:
    """CoNLL-U: one example per sentence, UPOS (column 4) as the tag. Multiword-token ranges (`1-2`) and empty
    nodes (`1.1`) are skipped; `# sent_id` becomes `item_id` and `# text` the example's text."""
    path = Path(path)
    examples = []
    for block in _blocks(read_text_lines(path)):
        words, tags, sent_id, text = [], [], None, None
        for number, line in block:
            if line.startswith("#"):
                key, sep, value = line[1:].partition("=")
                if sep and key.strip() == "sent_id":
                    sent_id = value.strip()
                elif sep and key.strip() == "text":
                    text = value.strip()
                continue
            columns = line.split("\t")
            if len(columns) != 10:
                raise DataError(f"expected 10 tab-separated CoNLL-U columns, found {len(columns)}", str(path), number)
            token_id, form, upos = columns[0], columns[1], columns[3]
            if "-" in token_id or "." in token_id:
                continue
            if not (token_id.isascii() and token_id.isdigit()):
                raise DataError(f"invalid word id {token_id!r}", str(path), number)
            if not form:
                raise DataError("empty word form", str(path), number)
            _check_label(upos, labels, path, number, "UPOS tag")
            words.append(form)
            tags.append(upos)
        if words:
            examples.append(
                Example(
                    text=text or " ".join(words),
                    words=tuple(words),
                    tags=tuple(tags),
                    item_id=sent_id,
                    source=f"{path}:{block[0][0]}",
                )
            )
    if not examples:
        raise _no_examples(path)
    return examples


def read_token_tag(
    path: str | Path, labels: Collection[str] | None = None, language: str | None = None
) -> list[Example]:
    """`token<TAB>tag` lines, a blank line between sentences (XTREME PAN-X and UD-POS). A `language:` prefix on
    the tokens (`en:word`, as in the raw PAN-X files) is stripped when `language` is given."""
    path = Path(path)
    prefix = f"{language}:" if language else None
    examples = []
    for block in _blocks(read_text_lines(path)):
        words, tags = [], []
        for number, line in block:
            columns = line.split("\t")
            if len(columns) != 2:
                raise DataError(f"expected token<TAB>tag (2 columns), found {len(columns)}", str(path), number)
            token, tag = columns[0], columns[1].strip()
            if prefix and token.startswith(prefix) and len(token) > len(prefix):
                token = token[len(prefix) :]
            if not token:
                raise DataError("empty token", str(path), number)
            _check_label(tag, labels, path, number)
            words.append(token)
            tags.append(tag)
        examples.append(
            Example(text=" ".join(words), words=tuple(words), tags=tuple(tags), source=f"{path}:{block[0][0]}")
        )
    if not examples:
        raise _no_examples(path)
    return examples


def iob1_to_iob2(tags: list[str]) -> list[str]:
    """IOB1 -> IOB2: an `I-X` that starts an entity (after `O` or another type) becomes `B-X`. IOB2 is unchanged."""
    converted: list[str] = []
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and (previous == "O" or previous[2:] != tag[2:]):
            tag = "B-" + tag[2:]
        converted.append(tag)
        previous = tag
    return converted


def read_conll_ner(
    path: str | Path, labels: Collection[str] | None = CONLL_NER_TAGS, fallback_encoding: str | None = None
) -> list[Example]:
    """CoNLL-2002/2003 NER: space-separated columns, the token first and the tag last, `-DOCSTART-` lines skipped.
    Tags are converted to IOB2 (CoNLL-2003 uses IOB1). The Spanish, Dutch and German files need
    `fallback_encoding="latin-1"`."""
    path = Path(path)
    examples = []
    for block in _blocks(read_text_lines(path, fallback_encoding)):
        words, tags, numbers = [], [], []
        for number, line in block:
            columns = _COLUMN_SEPARATOR.split(line.strip(" \t"))
            if columns[0] == "-DOCSTART-":
                continue
            if len(columns) < 2:
                raise DataError(
                    "expected at least 2 space-separated columns (token ... tag), found 1", str(path), number
                )
            words.append(columns[0])
            tags.append(columns[-1])
            numbers.append(number)
        if not words:
            continue
        tags = iob1_to_iob2(tags)
        for tag, number in zip(tags, numbers):
            _check_label(tag, labels, path, number)
        examples.append(
            Example(text=" ".join(words), words=tuple(words), tags=tuple(tags), source=f"{path}:{numbers[0]}")
        )
    if not examples:
        raise _no_examples(path)
    return examples


# ----------------------------------------------------------------------------------------------------
# Tab-separated sentence and pair files


@dataclass(frozen=True)
class TsvFormat:
    """Layout of a tab-separated file. Columns are names (files with a header row) or 0-based positions.

    columns: the exact column count of a file without header (with a header, the header's count).
    quoted: fields may be quoted CSV-style, with doubled inner quotes (pandas exports); otherwise quotes are text.
    label_map: raw label -> label name (e.g. "0" -> "entailment"); values not in it are kept as they are.
    """

    text: str | int
    label: str | int
    text_pair: str | int | None = None
    header: bool = False
    columns: int | None = None
    quoted: bool = False
    label_map: dict[str, str] = field(default_factory=dict)


_NLI = {"0": "entailment", "1": "not_entailment"}
TSV_FORMATS = {
    # XTREME XNLI / PAWS-X: premise|sentence1, hypothesis|sentence2, label; no header
    "xnli": TsvFormat(text=0, text_pair=1, label=2, columns=3),
    "pawsx": TsvFormat(text=0, text_pair=1, label=2, columns=3, label_map={"0": "different", "1": "paraphrase"}),
    "sst2": TsvFormat(text="sentence", label="label", header=True, label_map={"0": "negative", "1": "positive"}),
    # CoLA raw: source, label, original mark, sentence; no header
    "cola": TsvFormat(text=3, label=1, columns=4, label_map={"0": "unacceptable", "1": "acceptable"}),
    "mrpc": TsvFormat(
        text="#1 String",
        text_pair="#2 String",
        label="Quality",
        header=True,
        label_map={"0": "not_paraphrase", "1": "paraphrase"},
    ),  # fmt: skip
    "qnli": TsvFormat(text="question", text_pair="sentence", label="label", header=True),
    # GLUE RTE as exported from the HF hub (quoted, 0 = entailment); GLUE's own RTE file has the names already
    "rte": TsvFormat(text="sentence1", text_pair="sentence2", label="label", header=True, quoted=True, label_map=_NLI),
    "stsb": TsvFormat(text="sentence1", text_pair="sentence2", label="score", header=True),
}


def _column_index(column: str | int, names: list[str] | None, path: Path) -> int:
    if isinstance(column, int):
        return column
    if names is None or column not in names:
        raise DataError(f"no column {column!r} in the header ({', '.join(names or [])})", str(path), 1)
    return names.index(column)


def read_tsv(path: str | Path, fmt: TsvFormat | str, labels: Collection[str] | None = None) -> list[Example]:
    """Tab-separated sentence (text, label) or pair (text, text_pair, label) rows; `item_id` is the row index."""
    path = Path(path)
    fmt = TSV_FORMATS[fmt] if isinstance(fmt, str) else fmt
    lines = read_text_lines(path)
    quoting = csv.QUOTE_MINIMAL if fmt.quoted else csv.QUOTE_NONE
    reader = csv.reader(lines, delimiter="\t", quoting=quoting, strict=True)
    examples: list[Example] = []
    try:
        names = next(reader) if fmt.header else None
        expected = len(names) if names is not None else fmt.columns
        text_index = _column_index(fmt.text, names, path)
        pair_index = None if fmt.text_pair is None else _column_index(fmt.text_pair, names, path)
        label_index = _column_index(fmt.label, names, path)
        needed = max(i for i in (text_index, pair_index, label_index) if i is not None) + 1
        for row in reader:
            number = reader.line_num
            if not row or (len(row) == 1 and _is_blank(row[0])):
                continue
            if (expected is not None and len(row) != expected) or len(row) < needed:
                raise DataError(
                    f"expected {expected or needed} tab-separated columns, found {len(row)}", str(path), number
                )
            text = row[text_index]
            if not text.strip():
                raise DataError("empty text", str(path), number)
            raw_label = row[label_index].strip()
            label = fmt.label_map.get(raw_label, raw_label)
            _check_label(label, labels, path, number, "label")
            examples.append(
                Example(
                    text=text,
                    text_pair=None if pair_index is None else row[pair_index],
                    label=label,
                    item_id=str(len(examples)),
                    source=f"{path}:{number}",
                )
            )
    except csv.Error as exc:
        raise DataError(f"malformed tab-separated line: {exc}", str(path), reader.line_num) from None
    except StopIteration:
        raise _no_examples(path) from None
    if not examples:
        raise _no_examples(path)
    return examples


# ----------------------------------------------------------------------------------------------------
# JSON lines

JsonConverter = Callable[[dict], dict]


def _string(row: dict, key: str) -> str:
    value = row[key]
    if not isinstance(value, str):
        raise TypeError(f"field {key!r} should be a string, not {type(value).__name__}")
    return value


def _label(value: object) -> str:
    """JSON label -> label name: booleans as "true"/"false", integers and strings as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, str)):
        return str(value)
    raise TypeError(f"label should be a string, an integer or a boolean, not {type(value).__name__}")


def json_pair(text: str, text_pair: str | None, label: str = "label") -> JsonConverter:
    """A converter for objects holding two texts (or one, without `text_pair`) and a label."""

    def convert(row: dict) -> dict:
        pair = {"text_pair": _string(row, text_pair)} if text_pair else {}
        return {"text": _string(row, text), **pair, "label": _label(row[label])}

    return convert


def _sentence(row: dict) -> dict:
    return {"text": _string(row, "text"), "label": _label(row["label"])}


def _wic(row: dict) -> dict:
    word = _string(row, "word")
    return {
        "text": f"{word}: {_string(row, 'sentence1')}",
        "text_pair": _string(row, "sentence2"),
        "label": _label(row["label"]),
    }


def _choice_texts(row: dict, keys: list[str]) -> tuple[str, ...]:
    return tuple(_string(row, key) for key in keys)


def _copa(row: dict) -> dict:
    """COPA / XCOPA as multiple choice: the premise, the question ("cause" or "effect") and two choices."""
    question = _string(row, "question")
    if question not in ("cause", "effect"):
        raise ValueError(f"question should be 'cause' or 'effect', not {question!r}")
    answer = row["label"]
    if answer not in (0, 1) or isinstance(answer, bool):
        raise ValueError(f"label should be 0 or 1, not {answer!r}")
    return {"text": _string(row, "premise"), "text_pair": f"What was the {question}?",
            "choices": _choice_texts(row, ["choice1", "choice2"]), "label": f"choice{answer + 1}"}


def _commonsenseqa(row: dict) -> dict:
    """CommonsenseQA as multiple choice, in the official release's format (question.stem, question.choices
    [{label, text}]) or the hub's (question, choices {label: [...], text: [...]}); the label is the gold letter."""
    question = row["question"]
    if isinstance(question, dict):  # the official release
        stem, listed = _string(question, "stem"), question["choices"]
        letters, texts = [choice["label"] for choice in listed], [choice["text"] for choice in listed]
    else:
        stem, letters, texts = _string(row, "question"), row["choices"]["label"], row["choices"]["text"]
    if not (isinstance(letters, list) and isinstance(texts, list) and len(letters) == len(texts)):
        raise ValueError("choices should hold as many letters as texts")
    if letters != [chr(ord("A") + i) for i in range(len(letters))]:
        raise ValueError(f"choices should be lettered A, B, C ... in order, not {letters}")
    answer = _label(row["answerKey"])
    if answer not in letters:
        raise ValueError(f"answerKey {answer!r} is not one of the choices' letters (an unlabeled row?)")
    return {"text": stem, "choices": tuple(map(str, texts)), "label": answer}


def _cosmosqa(row: dict) -> dict:
    """Cosmos QA: a context, a question and four answers (answer0 ... answer3); the label is the gold index."""
    return {"text": _string(row, "context"), "text_pair": _string(row, "question"),
            "choices": _choice_texts(row, [f"answer{i}" for i in range(4)]), "label": _index_label(row["label"], 4)}


def _hellaswag(row: dict) -> dict:
    """HellaSwag (hub schema): a context `ctx` and four `endings`; the label is the gold index."""
    endings = row["endings"]
    if not (isinstance(endings, list) and all(isinstance(ending, str) for ending in endings)):
        raise TypeError("field 'endings' should be a list of strings")
    return {"text": _string(row, "ctx"), "choices": tuple(endings), "label": _index_label(row["label"], len(endings))}


def _siqa(row: dict) -> dict:
    """Social IQa (hub schema): a context, a question and three answers (answerA ... answerC); the label is the
    gold answer's number, "1" to "3", named here by its letter."""
    label = row["label"]
    if label not in ("1", "2", "3"):
        raise ValueError(f"label should be '1', '2' or '3', not {label!r} (an unlabeled row?)")
    return {"text": _string(row, "context"), "text_pair": _string(row, "question"),
            "choices": _choice_texts(row, ["answerA", "answerB", "answerC"]), "label": "ABC"[int(label) - 1]}


def _index_label(value: object, choices: int) -> str:
    """A gold choice index (an integer, or its digits as in CSV files and the hub's HellaSwag) as a label name."""
    index = int(value) if isinstance(value, str) and value.strip().isdigit() else value
    if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < choices:
        return str(index)
    raise ValueError(f"label should be a choice index below {choices}, not {value!r} (an unlabeled row?)")


def hub_labels(convert: JsonConverter, names: tuple) -> JsonConverter:
    """`convert` for hub rows whose label is an integer indexing `names` (the dataset's ClassLabel order);
    unlabeled rows (label -1, as in the GLUE and SuperGLUE test splits) are refused."""

    def converted(row: dict) -> dict:
        label = row["label"]
        if not isinstance(label, int) or isinstance(label, bool) or not 0 <= label < len(names):
            raise ValueError(f"label should be an index below {len(names)}, not {label!r} (an unlabeled row?)")
        return convert({**row, "label": names[label]})

    return converted


def _choices(row: dict) -> dict:
    """The generic multiple-choice object (uploads): text, an optional text_pair (the question), a list of
    choices and the gold choice's name as label."""
    choices = row["choices"]
    if not (isinstance(choices, list) and choices and all(isinstance(choice, str) for choice in choices)):
        raise TypeError("field 'choices' should be a non-empty list of strings")
    pair = {"text_pair": _string(row, "text_pair")} if row.get("text_pair") is not None else {}
    return {"text": _string(row, "text"), **pair, "choices": tuple(choices), "label": _label(row["label"])}


JSONL_FORMATS: dict[str, JsonConverter] = {
    "sentence": _sentence,
    "boolq": json_pair("question", "passage"),
    "cb": json_pair("premise", "hypothesis"),
    "rte": json_pair("premise", "hypothesis"),
    "wic": _wic,
    "copa": _copa,
    "commonsenseqa": _commonsenseqa,
    "cosmosqa": _cosmosqa,
    "hellaswag": _hellaswag,
    "siqa": _siqa,
    "choices": _choices,
}


def convert_row(row: object, convert: JsonConverter, labels: Collection[str] | None, where: str, line: int,
                item: object) -> Example:
    """One row (a dict) turned into an Example by `convert`; DataError naming `where` and `line` otherwise."""
    if not isinstance(row, dict):
        raise DataError(f"expected a JSON object, found {type(row).__name__}", where, line)
    try:
        fields = convert(row)
    except KeyError as exc:
        raise DataError(f"missing field {exc}", where, line) from None
    except (TypeError, ValueError, AttributeError, IndexError) as exc:
        raise DataError(f"unexpected value: {exc}", where, line) from None
    if not fields["text"].strip():
        raise DataError("empty text", where, line)
    _check_label(fields["label"], labels, Path(where), line, "label")
    return Example(**fields, item_id=str(item), source=f"{where}:{line}")


def read_jsonl(path: str | Path, convert: JsonConverter | str, labels: Collection[str] | None = None) -> list[Example]:
    """One JSON object per line, turned into an example by `convert` (a name in JSONL_FORMATS or a function
    returning Example fields); `item_id` is the object's `idx` or `id` where present, else the line index."""
    path = Path(path)
    convert = JSONL_FORMATS[convert] if isinstance(convert, str) else convert
    examples = []
    for number, line in enumerate(read_text_lines(path), start=1):
        if _is_blank(line):
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise DataError(f"invalid JSON: {exc}", str(path), number) from None
        item = row.get("idx", row.get("id", len(examples))) if isinstance(row, dict) else None
        examples.append(convert_row(row, convert, labels, str(path), number, item))
    if not examples:
        raise _no_examples(path)
    return examples


def read_xcopa(path: str | Path, english: str | Path, labels: Collection[str] | None = None) -> list[Example]:
    """An XCOPA file, whose items translate English COPA's validation items (the same `idx`), with each item's
    question ("cause" or "effect") taken from the English item in `english`: XCOPA's own files get it wrong
    (tr and th say "effect" for all 100 items, id, it and sw for 5 or 6 cause items), and the question decides
    which choice is right."""
    questions = {example.item_id: example.text_pair for example in read_jsonl(english, "copa")}
    examples = read_jsonl(path, "copa", labels)
    for example in examples:
        if example.item_id not in questions:
            where, _, line = example.source.rpartition(":")
            raise DataError(f"item idx {example.item_id} has no English COPA item in {english} to take its "
                            "question from", where, int(line))
    return [replace(example, text_pair=questions[example.item_id]) for example in examples]


def read_csv(path: str | Path, convert: JsonConverter | str, labels: Collection[str] | None = None) -> list[Example]:
    """Comma-separated rows with a header (Cosmos QA), each row a dict of the header's columns turned into an
    example by `convert` (as for read_jsonl); `item_id` is the row's `id` where present, else the row index.
    Errors name the line a row starts on (a quoted field may span lines)."""
    path = Path(path)
    convert = JSONL_FORMATS[convert] if isinstance(convert, str) else convert
    reader = csv.reader(read_text_lines(path), strict=True)
    examples = []
    start = 1
    try:
        header = next(reader)
        start = reader.line_num + 1
        while (values := next(reader, None)) is not None:
            if any(value.strip() for value in values):
                if len(values) != len(header):
                    raise DataError(f"expected {len(header)} comma-separated columns as in the header, found "
                                    f"{len(values)}", str(path), start)
                row = dict(zip(header, values))
                examples.append(convert_row(row, convert, labels, str(path), start, row.get("id", len(examples))))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise DataError(f"malformed comma-separated line: {exc}", str(path), start) from None
    except StopIteration:
        raise _no_examples(path) from None
    if not examples:
        raise _no_examples(path)
    return examples
