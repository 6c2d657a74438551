"""Readers: every format, CRLF, IOB1 -> IOB2, CoNLL-U multiword tokens and empty nodes, Latin-1, and errors that
name the file and the line. A property test per reader: garbage input raises DataError and nothing else."""

import json
import tempfile
from functools import partial
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlfa.errors import DataError
from dlfa.data import readers
from dlfa.data.readers import (
    CONLL_NER_TAGS,
    PANX_TAGS,
    UPOS_TAGS,
    iob1_to_iob2,
    read_conll_ner,
    read_conllu,
    read_jsonl,
    read_token_tag,
    read_tsv,
)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


CONLLU = """# newdoc id = d1
# sent_id = s1
# text = Don't stop.
1-2\tDon't\t_\t_\t_\t_\t_\t_\t_\t_
1\tDo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_
2\tn't\tnot\tPART\tRB\t_\t3\tadvmod\t_\t_
3\tstop\tstop\tVERB\tVB\t_\t0\troot\t_\tSpaceAfter=No
3.1\tgo\tgo\tVERB\tVB\t_\t_\t_\t3:conj\t_
4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_

# sent_id = s2
1\tYes\tyes\tINTJ\tUH\t_\t0\troot\t_\t_
"""


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_conllu_skips_multiword_ranges_and_empty_nodes(tmp_path, newline):
    examples = read_conllu(write(tmp_path, "a.conllu", CONLLU.replace("\n", newline)))
    assert [e.item_id for e in examples] == ["s1", "s2"]
    assert examples[0].words == ("Do", "n't", "stop", ".")
    assert examples[0].tags == ("AUX", "PART", "VERB", "PUNCT")
    assert examples[0].text == "Don't stop."
    assert examples[1].text == "Yes" and examples[0].source.endswith("a.conllu:1")


def test_conllu_errors_name_file_and_line(tmp_path):
    bad_columns = write(tmp_path, "cols.conllu", CONLLU.replace("3\tstop\tstop\tVERB", "3\tstop\tVERB"))
    with pytest.raises(DataError, match=r"cols\.conllu:7: expected 10 tab-separated CoNLL-U columns, found 9"):
        read_conllu(bad_columns)
    bad_tag = write(tmp_path, "tag.conllu", CONLLU.replace("INTJ", "INTERJ"))
    with pytest.raises(DataError, match=r"tag\.conllu:12: UPOS tag 'INTERJ' is not in the task's label set") as caught:
        read_conllu(bad_tag)
    assert caught.value.line == 12 and caught.value.path.endswith("tag.conllu")


def test_token_tag_strips_language_prefix_and_handles_crlf(tmp_path):
    path = write(tmp_path, "panx.tsv", crlf("en:Anton\tB-PER\nen:Wilhelm\tI-PER\nen:.\tO\n\n\nen:Hi\tO\n"))
    examples = read_token_tag(path, PANX_TAGS, language="en")
    assert [e.words for e in examples] == [("Anton", "Wilhelm", "."), ("Hi",)]
    assert examples[0].tags == ("B-PER", "I-PER", "O")
    # without a language the prefix is part of the token; "http:" prefixes of other languages are never touched
    assert read_token_tag(path, PANX_TAGS)[0].words[0] == "en:Anton"
    assert read_token_tag(write(tmp_path, "u.tsv", "http://x.org\tX\n"), UPOS_TAGS, "de")[0].words == ("http://x.org",)


def test_token_tag_errors(tmp_path):
    with pytest.raises(DataError, match=r"t\.tsv:3: expected token<TAB>tag \(2 columns\), found 3"):
        read_token_tag(write(tmp_path, "t.tsv", "a\tO\n\nb\tO\tx\n"), PANX_TAGS)
    with pytest.raises(DataError, match=r"u\.tsv:2: tag 'B-FOO' is not in the task's label set \(O, B-PER"):
        read_token_tag(write(tmp_path, "u.tsv", "a\tO\nb\tB-FOO\n"), PANX_TAGS)


def test_iob1_to_iob2():
    assert iob1_to_iob2(["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "I-ORG"]) == [
        "B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "I-ORG",
    ]  # fmt: skip
    iob2 = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"]
    assert iob1_to_iob2(iob2) == iob2


def test_conll_ner_docstart_iob1_and_latin1(tmp_path):
    english = (
        "-DOCSTART- -X- O O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\nGerman JJ I-NP I-MISC\n\nPeter NNP I-NP I-PER\n"
    )
    examples = read_conll_ner(write(tmp_path, "eng.train", crlf(english)))
    assert [e.words for e in examples] == [("EU", "rejects", "German"), ("Peter",)]
    assert examples[0].tags == ("B-ORG", "O", "B-MISC") and examples[1].tags == ("B-PER",)
    spanish = "España B-LOC\nes O\n\nMadrid B-LOC\n".encode("latin-1")
    path = write(tmp_path, "esp.train", spanish)
    assert read_conll_ner(path, fallback_encoding="latin-1")[0].words == ("España", "es")
    with pytest.raises(DataError, match=r"esp\.train:1: undecodable bytes: not UTF-8"):
        read_conll_ner(path)


def test_conll_ner_errors(tmp_path):
    with pytest.raises(DataError, match=r"n\.txt:2: expected at least 2 space-separated columns"):
        read_conll_ner(write(tmp_path, "n.txt", "a O\nlonely\n"))
    with pytest.raises(DataError, match=r"m\.txt:1: tag 'B-DATE'"):
        read_conll_ner(write(tmp_path, "m.txt", "May B-DATE\n"), CONLL_NER_TAGS)


XNLI = "He is home.\tHe is away.\tcontradiction\nA dog runs.\tAn animal moves.\tentailment\n"


def test_xnli_and_pawsx_tsv(tmp_path):
    examples = read_tsv(write(tmp_path, "dev-en.tsv", crlf(XNLI)), "xnli", ("entailment", "neutral", "contradiction"))
    assert [(e.text, e.text_pair, e.label, e.item_id) for e in examples] == [
        ("He is home.", "He is away.", "contradiction", "0"),
        ("A dog runs.", "An animal moves.", "entailment", "1"),
    ]
    paws = read_tsv(write(tmp_path, "paws.tsv", 'A "b" c\tA b c\t1\r\n'), "pawsx", ("different", "paraphrase"))
    assert paws[0].label == "paraphrase" and paws[0].text == 'A "b" c'


def test_glue_formats(tmp_path):
    sst = read_tsv(
        write(tmp_path, "sst.tsv", "sentence\tlabel\nit 's charming \t1\nbleak\t0\n"), "sst2", ("negative", "positive")
    )
    assert [(e.text, e.label) for e in sst] == [("it 's charming ", "positive"), ("bleak", "negative")]
    cola = read_tsv(write(tmp_path, "cola.tsv", "gj04\t0\t*\tThem is here.\n"), "cola", ("unacceptable", "acceptable"))
    assert (cola[0].text, cola[0].label) == ("Them is here.", "unacceptable")
    mrpc_text = '\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t7\t8\tHe said "hi".\tHe greeted.\n'
    mrpc = read_tsv(write(tmp_path, "msr.txt", mrpc_text), "mrpc", ("not_paraphrase", "paraphrase"))
    assert (mrpc[0].text, mrpc[0].text_pair, mrpc[0].label) == ('He said "hi".', "He greeted.", "paraphrase")
    qnli = read_tsv(write(tmp_path, "qnli.tsv", "index\tquestion\tsentence\tlabel\n0\tWho?\tHe.\tentailment\n"), "qnli")
    assert (qnli[0].text, qnli[0].text_pair, qnli[0].label) == ("Who?", "He.", "entailment")
    rte_text = 'sentence1\tsentence2\tlabel\tidx\n"It said ""extensive"" damage."\tNo damage.\t1\t0\n'
    rte = read_tsv(write(tmp_path, "rte.tsv", crlf(rte_text)), "rte", ("entailment", "not_entailment"))
    assert (rte[0].text, rte[0].label) == ('It said "extensive" damage.', "not_entailment")
    stsb_text = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    stsb_text += "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane.\tAn air plane.\t5.000\n"
    stsb = read_tsv(write(tmp_path, "stsb.tsv", stsb_text), "stsb")
    assert (stsb[0].text, stsb[0].text_pair, stsb[0].label) == ("A plane.", "An air plane.", "5.000")


def test_tsv_errors(tmp_path):
    labels = ("entailment", "neutral", "contradiction")
    with pytest.raises(DataError, match=r"x\.tsv:2: expected 3 tab-separated columns, found 2"):
        read_tsv(write(tmp_path, "x.tsv", XNLI.replace("\tentailment", "")), "xnli", labels)
    with pytest.raises(DataError, match=r"y\.tsv:1: label 'maybe' is not in the task's label set"):
        read_tsv(write(tmp_path, "y.tsv", "a\tb\tmaybe\n"), "xnli", labels)
    with pytest.raises(DataError, match=r"h\.tsv:1: no column 'label' in the header"):
        read_tsv(write(tmp_path, "h.tsv", "sentence\tscore\nx\t1\n"), "sst2")
    with pytest.raises(DataError, match=r"e\.tsv:2: empty text"):
        read_tsv(write(tmp_path, "e.tsv", "a\tb\tneutral\n\tb\tneutral\n"), "xnli", labels)


def test_jsonl_formats(tmp_path):
    rows = {
        "boolq": (
            {"question": "is it?", "passage": "It is.", "label": True, "idx": 4},
            ("is it?", "It is.", "true", "4"),
        ),
        "cb": ({"premise": "P", "hypothesis": "H", "label": "neutral", "idx": 0}, ("P", "H", "neutral", "0")),
        "wic": (
            {"word": "class", "sentence1": "A class.", "sentence2": "Real class.", "label": False, "idx": 1},
            ("class: A class.", "Real class.", "false", "1"),
        ),
        "sentence": ({"text": "Great film", "label": "positive"}, ("Great film", None, "positive", "0")),
    }
    for name, (row, expected) in rows.items():
        path = write(tmp_path, f"{name}.jsonl", crlf(json.dumps(row) + "\n\n"))
        example = read_jsonl(path, name)[0]
        assert (example.text, example.text_pair, example.label, example.item_id) == expected, name


def test_jsonl_errors(tmp_path):
    with pytest.raises(DataError, match=r"j\.jsonl:2: invalid JSON"):
        read_jsonl(write(tmp_path, "j.jsonl", '{"text": "a", "label": "x"}\n{"text": \n'), "sentence")
    with pytest.raises(DataError, match=r"k\.jsonl:1: missing field 'passage'"):
        read_jsonl(write(tmp_path, "k.jsonl", '{"question": "q", "label": true}\n'), "boolq")
    with pytest.raises(DataError, match=r"l\.jsonl:1: unexpected value: field 'question' should be a string"):
        read_jsonl(write(tmp_path, "l.jsonl", '{"question": 3, "passage": "p", "label": true}\n'), "boolq")
    with pytest.raises(DataError, match=r"m\.jsonl:1: expected a JSON object, found list"):
        read_jsonl(write(tmp_path, "m.jsonl", "[1, 2]\n"), "boolq")
    with pytest.raises(DataError, match=r"n\.jsonl:1: label 'maybe'"):
        read_jsonl(
            write(tmp_path, "n.jsonl", '{"question": "q", "passage": "p", "label": "maybe"}\n'),
            "boolq",
            ("false", "true"),
        )


READERS = {
    "conllu": read_conllu,
    "token_tag": partial(read_token_tag, labels=PANX_TAGS, language="en"),
    "conll_ner": read_conll_ner,
    "conll_ner_latin1": partial(read_conll_ner, fallback_encoding="latin-1"),
    **{f"tsv_{name}": partial(read_tsv, fmt=name) for name in readers.TSV_FORMATS},
    **{f"jsonl_{name}": partial(read_jsonl, convert=name, labels=("a", "true")) for name in readers.JSONL_FORMATS},
}


@pytest.mark.parametrize("name", sorted(READERS))
def test_empty_and_missing_files(tmp_path, name):
    for content in (b"", b"\n  \r\n\t\n"):
        with pytest.raises(DataError, match=r"empty\.txt: empty file"):
            READERS[name](write(tmp_path, "empty.txt", content))
    with pytest.raises(DataError, match="cannot read the file"):
        READERS[name](tmp_path / "missing.txt")


_ALPHABET = "\t\n\r #=-.:,;\"'{}[]01239aAbBxOIé☃\x85\ufeff" + "NOUN" + "B-PER" + "label"
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text("ab1 ", max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["label", "text"]), inner, max_size=2),
    max_leaves=6,
)
_JSON_KEYS = ["text", "label", "question", "passage", "premise", "hypothesis", "word", "sentence1", "sentence2",
              "choice1", "choice2", "choices", "answerKey", "idx", "id"]  # fmt: skip
GARBAGE = st.one_of(
    st.binary(max_size=200),
    st.text(_ALPHABET, max_size=200).map(lambda s: s.encode("utf-8")),
    st.lists(st.lists(st.text("aB-PERNOUN1:é", max_size=6), min_size=1, max_size=11).map("\t".join), max_size=6).map(
        lambda rows: "\n".join(rows).encode("utf-8")
    ),
    st.lists(st.dictionaries(st.sampled_from(_JSON_KEYS), _JSON_VALUES, max_size=6).map(json.dumps), max_size=3).map(
        lambda rows: "\n".join(rows).encode("utf-8")
    ),
)


@pytest.mark.parametrize("name", sorted(READERS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=GARBAGE)
def test_garbage_raises_only_data_error(name, content):
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder), "garbage.txt", content)
        try:
            examples = READERS[name](path)
        except DataError as exc:
            assert "garbage.txt" in str(exc)
        else:
            assert examples and all(isinstance(e, readers.Example) for e in examples)


def test_the_derived_xnli_test_files_read_with_their_carried_labels(data_root):
    labels = ("entailment", "neutral", "contradiction")
    folder = data_root / "pair" / "xnli_test_derived"
    german, swahili = (read_tsv(folder / f"test-{language}.tsv", "xnli", labels) for language in ("de", "sw"))
    assert len(german) == len(swahili) == 5010
    assert {label: sum(e.label == label for e in german) for label in labels} == dict.fromkeys(labels, 1670)
    assert [e.label for e in german] == [e.label for e in swahili]  # carried row-wise to every language
    assert german[0].item_id == "0" and german[0].text != swahili[0].text
