"""SQuAD JSON reading (XQuAD, MLQA) and the paragraph split: real files and small hand-written ones."""
import json
from collections import Counter, defaultdict

import pytest

from dlfa.data.qa import (
    QA_SPLIT_SEED,
    QaAnswer,
    QaExample,
    mlqa_files,
    paragraph_groups,
    read_squad_json,
    read_squad_rows,
    split_by_paragraph,
    take_split,
    xquad_files,
)
from dlfa.data.qa_sources import QaFileSplit, mlqa_split, xquad_split
from dlfa.errors import DataError

XQUAD_LANGUAGES = {"ar", "de", "el", "en", "es", "ro", "ru", "tr", "vi", "zh"}


def squad(paragraphs: list[dict], title: str = "T") -> dict:
    return {"version": "1.1", "data": [{"title": title, "paragraphs": paragraphs}]}


def write(tmp_path, document, name="data.json"):
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document, ensure_ascii=False, indent=1),
                    encoding="utf-8")
    return path


GOOD = [{"context": "Paris is the capital of France.",
         "qas": [{"id": "q1", "question": " What is the capital? ", "answers": [{"text": "Paris", "answer_start": 0}]},
                 {"id": "q2", "question": "Of what?", "answers": [{"text": "France", "answer_start": 24},
                                                                   {"text": "France.", "answer_start": 24}]}]},
        {"context": "Berlin is in Germany.",
         "qas": [{"id": "q3", "question": "Where is Berlin?", "answers": [{"text": "Germany", "answer_start": 13}]}]}]


def test_reader_hand_written_file(tmp_path):
    path = write(tmp_path, squad(GOOD))
    examples = read_squad_json(path, "en")
    assert [e.id for e in examples] == ["q1", "q2", "q3"]
    first = examples[0]
    assert first.question == "What is the capital?" and first.context == "Paris is the capital of France."
    assert first.answers == (QaAnswer("Paris", 0),) and first.answers[0].end == 5
    assert [e.paragraph_id for e in examples] == ["0.0", "0.0", "0.1"]
    assert examples[1].answers == (QaAnswer("France", 24), QaAnswer("France.", 24))
    assert first.language == first.question_language == "en" and first.title == "T"
    assert str(path) in first.source and "data[0].paragraphs[0].qas[0]" in first.source
    cross = read_squad_json(path, "de", question_language="en")
    assert (cross[0].language, cross[0].question_language) == ("de", "en")


def test_reader_xquad_real_files(data_root):
    files = xquad_files(data_root / "qa" / "xquad")
    assert set(files) == XQUAD_LANGUAGES
    english, chinese = read_squad_json(files["en"], "en"), read_squad_json(files["zh"], "zh")
    assert len(english) == len(chinese) == 1190
    assert len({e.paragraph_id for e in english}) == 240
    # parallel: the same question ids in the same paragraphs, in the same order
    assert [(e.id, e.paragraph_id) for e in english] == [(e.id, e.paragraph_id) for e in chinese]
    for example in english + chinese:
        for answer in example.answers:
            assert example.context[answer.start : answer.end] == answer.text
    assert english[0].question == "How many points did the Panthers defense surrender?"
    assert english[0].answers[0] == QaAnswer("308", 34)


def test_reader_mlqa_real_files(data_root):
    files = mlqa_files(data_root / "qa" / "mlqa_dev")
    assert len(files) == 36 and ("de", "en") in files and ("zh", "zh") in files
    diagonal = {lang: len(read_squad_json(files[(lang, lang)], lang)) for lang in ("en", "de", "es", "ar", "zh", "vi")}
    assert diagonal == {"en": 1148, "de": 512, "es": 500, "ar": 517, "zh": 504, "vi": 511}  # the MLQA paper's
    cross = read_squad_json(files[("de", "en")], "de", "en")
    assert (cross[0].language, cross[0].question_language) == ("de", "en")
    german_ids = {e.id for e in read_squad_json(files[("de", "de")], "de")}
    assert {e.id for e in cross} == german_ids  # one question, translated: the same id


def _break(edit):
    document = squad(json.loads(json.dumps(GOOD)))
    edit(document)
    return document


@pytest.mark.parametrize(
    "document, message, item, line",
    [
        ('{"data": [\n  {"paragraphs": [}\n]}', "not valid JSON", None, 2),
        ({"version": "1.1"}, "expected a SQuAD JSON object with a 'data' list", None, None),
        (_break(lambda d: d["data"][0].pop("paragraphs")), "'paragraphs' must be a non-empty list, found missing",
         "data[0]", None),
        (_break(lambda d: d["data"][0]["paragraphs"][1].update(context="")), "'context' must be a non-empty string",
         "data[0].paragraphs[1]", None),
        (_break(lambda d: d["data"][0]["paragraphs"][0]["qas"][1].update(answers=[])),
         "'answers' must be a non-empty list", "data[0].paragraphs[0].qas[1] (id q2)", 21),
        (_break(lambda d: d["data"][0]["paragraphs"][0]["qas"][1]["answers"][0].update(answer_start=23)),
         "answer 'France' is not at character 23 of its context (found ' Franc')",
         "data[0].paragraphs[0].qas[1] (id q2) answers[0]", 21),
        (_break(lambda d: d["data"][0]["paragraphs"][0]["qas"][0]["answers"][0].update(answer_start="0")),
         "'answer_start' must be an integer, found str '0'", "data[0].paragraphs[0].qas[0] (id q1) answers[0]", 11),
        (_break(lambda d: d["data"][0]["paragraphs"][1]["qas"][0].update(id="q1")), "duplicate question id",
         "data[0].paragraphs[1].qas[0] (id q1)", 40),
        (_break(lambda d: d["data"][0]["paragraphs"][1]["qas"][0].update(is_impossible=True)),
         "an unanswerable question (SQuAD 2.0)", "data[0].paragraphs[1].qas[0] (id q3)", 40),
        (squad([{"context": "x", "qas": [{"question": "?", "answers": []}]}]), "'id' must be a non-empty string",
         "data[0].paragraphs[0].qas[0]", None),
        ({"data": []}, "no questions found", None, None),
        ("", "empty file", None, None),
    ],
)
def test_reader_malformed_input_one_clear_error(tmp_path, document, message, item, line):
    path = write(tmp_path, document)
    with pytest.raises(DataError) as caught:
        read_squad_json(path, "en")
    text = str(caught.value)
    assert text.startswith(f"{path}:{line}: " if line else f"{path}: ") and message in text
    assert "\n" not in text
    if item:
        assert f"{item}: " in text
    assert caught.value.line == line


# ----------------------------------------------------------------------------------------------------
# The paragraph split


def _paragraph_splits(examples, assignment):
    """paragraph -> the set of splits its questions are in."""
    splits = defaultdict(set)
    for example in examples:
        splits[example.paragraph_id].add(assignment[example.id])
    return splits


def test_split_xquad_by_paragraph_no_translation_leak(data_root):
    files = xquad_files(data_root / "qa" / "xquad")
    languages = {lang: read_squad_json(path, lang) for lang, path in files.items()}
    english = languages.pop("en")
    assignment = split_by_paragraph(english, languages.values())
    counts = Counter(assignment[e.id] for e in english)
    assert counts == {"train": 716, "dev": 120, "test": 354}  # 60 / 70 % bounds over whole paragraphs
    english_splits = _paragraph_splits(english, assignment)
    assert all(len(splits) == 1 for splits in english_splits.values())  # whole paragraphs
    for examples in languages.values():
        # a target language's test paragraphs are exactly the English test paragraphs: none was trained on
        test_paragraphs = {e.paragraph_id for e in take_split(examples, assignment, "test")}
        train_paragraphs = {e.paragraph_id for e in take_split(english, assignment, "train")}
        assert test_paragraphs and not test_paragraphs & train_paragraphs
        assert test_paragraphs == {p for p, splits in english_splits.items() if splits == {"test"}}
    assert split_by_paragraph(english, languages.values()) == assignment  # seeded
    assert split_by_paragraph(english, seed=QA_SPLIT_SEED + 1) != assignment


def test_split_mlqa_by_context_no_translation_leak(data_root):
    files = mlqa_files(data_root / "qa" / "mlqa_dev")
    pairs = {pair: read_squad_json(path, *pair) for pair, path in files.items()}
    english = pairs[("en", "en")]
    assignment = split_by_paragraph(english, pairs.values())
    assert len(set(paragraph_groups([english, *pairs.values()]).values())) == 945  # 978 English paragraphs
    counts = Counter(assignment[e.id] for e in english)
    assert counts["train"] == pytest.approx(0.6 * 1148, abs=10) and counts["test"] == pytest.approx(0.3 * 1148, abs=10)
    for pair, examples in pairs.items():
        # in every file, no paragraph holds questions of two splits: a test context was never trained on
        mixed = [p for p, splits in _paragraph_splits(examples, assignment).items() if len(splits) > 1]
        assert not mixed, f"{pair}: paragraphs {mixed[:3]} mix splits"
    trained = {e.id for e in take_split(english, assignment, "train")}
    german_test = take_split(pairs[("de", "de")], assignment, "test")
    assert german_test and not {e.id for e in german_test} & trained


def _example(qa_id, paragraph, source, language="en"):
    return QaExample(qa_id, "?", "context", (QaAnswer("context", 0),), paragraph, language, language, "", source)


def test_split_merges_paragraphs_that_a_translation_joins():
    english = [_example("a", "0.0", "en.json"), _example("b", "0.1", "en.json"), _example("c", "0.2", "en.json")]
    # the German file puts the translations of a and b into one paragraph: a and b must share a split
    german = [_example("a", "0.0", "de.json", "de"), _example("b", "0.0", "de.json", "de")]
    groups = paragraph_groups([english, german])
    assert groups["a"] == groups["b"] != groups["c"]
    for seed in range(20):
        assignment = split_by_paragraph(english, [german], bounds=(0.34, 0.67), seed=seed)
        assert assignment["a"] == assignment["b"]
    only_translated = [_example("z", "0.5", "de.json", "de")]
    assert split_by_paragraph(english, [only_translated])["z"] == "test"  # never trained on: test


def test_take_split_refuses_a_question_outside_the_split():
    english = [_example("a", "0.0", "en.json")]
    assignment = split_by_paragraph(english)
    with pytest.raises(DataError, match="question b was not part of the paragraph split"):
        take_split([_example("b", "0.1", "en.json")], assignment, "test")


def _rows_of(document: dict) -> list[dict]:
    """A SQuAD JSON document flattened as the hub serves it (one row per question)."""
    return [{"id": qa["id"], "title": article["title"], "context": paragraph["context"], "question": qa["question"],
             "answers": {"text": [a["text"] for a in qa["answers"]],
                         "answer_start": [a["answer_start"] for a in qa["answers"]]}}
            for article in document["data"] for paragraph in article["paragraphs"] for qa in paragraph["qas"]]


def test_hub_rows_read_like_the_file(tmp_path, data_root):
    path = data_root / "qa" / "xquad" / "xquad.de.json"
    from_file = read_squad_json(path, "de")
    from_rows = read_squad_rows(_rows_of(json.loads(path.read_text(encoding="utf-8"))), "de",
                                where="google/xtreme XQuAD.de (validation)")
    assert [(e.id, e.question, e.context, e.answers, e.title) for e in from_rows] == \
        [(e.id, e.question, e.context, e.answers, e.title) for e in from_file]
    # one paragraph per context: the same grouping as the file's paragraphs
    assert Counter(e.paragraph_id for e in from_rows).most_common(3) == \
        Counter(e.paragraph_id for e in from_file).most_common(3)
    assert from_rows[0].source == "google/xtreme XQuAD.de (validation): row 1"


@pytest.mark.parametrize("edit, message", [
    (lambda row: row.update(answers={"text": ["Paris"], "answer_start": []}),
     "row 2 (id q1): 'answers' must hold lists 'text' and 'answer_start' of one length"),
    (lambda row: row.update(answers={"text": ["Pariss"], "answer_start": [0]}),
     "row 2 (id q1) answers[0]: answer 'Pariss' is not at character 0"),
    (lambda row: row.pop("context"), "row 2: 'context' must be a non-empty string, found missing"),
    (lambda row: row.update(question=None), "row 2 (id q1): 'question' must be a non-empty string, found NoneType"),
])
def test_hub_rows_malformed_one_clear_error(edit, message):
    rows = _rows_of(squad(json.loads(json.dumps(GOOD))))
    rows = [rows[2], rows[0]]
    edit(rows[1])
    with pytest.raises(DataError) as caught:
        read_squad_rows(rows, "en", where="squad (train)")
    assert str(caught.value).startswith("squad (train): ") and message in str(caught.value)


def test_task_splits_from_the_data_root(data_root):
    xquad, mlqa = data_root / "qa" / "xquad", data_root / "qa" / "mlqa_dev"
    english_train = xquad_split(xquad, "en", "train")
    greek_test = xquad_split(xquad, "el", "test")
    assert (len(english_train), len(xquad_split(xquad, "en", "dev")), len(greek_test)) == (716, 120, 354)
    assert not {e.paragraph_id for e in english_train} & {e.paragraph_id for e in greek_test}
    mlqa_train = mlqa_split(mlqa, "en", "en", "train")
    for pair in (("de", "de"), ("zh", "zh"), ("de", "en")):
        test = mlqa_split(mlqa, *pair, "test")
        assert test and (test[0].language, test[0].question_language) == pair
        assert not {e.id for e in test} & {e.id for e in mlqa_train}
    with pytest.raises(DataError, match="XQuAD has no file xquad.hi.json here"):
        xquad_split(xquad, "hi", "test")
    with pytest.raises(DataError, match="MLQA has no file dev-context-hi-question-hi.json here"):
        mlqa_split(mlqa, "hi", "hi", "test")


def test_file_split_is_a_registry_split_data(data_root, tmp_path):
    xquad = data_root / "qa" / "xquad"
    german_test = QaFileSplit("xquad", xquad, "de", "test")
    assert german_test.load() == xquad_split(xquad, "de", "test")
    mlqa_cross = QaFileSplit("mlqa", data_root / "qa" / "mlqa_dev", "de", "test", question_language="en").load()
    assert mlqa_cross == mlqa_split(data_root / "qa" / "mlqa_dev", "de", "en", "test")
    assert german_test.fingerprint() == QaFileSplit("xquad", xquad, "de", "test").fingerprint()
    assert german_test.fingerprint() != QaFileSplit("xquad", xquad, "de", "dev").fingerprint()
    assert german_test.fingerprint() != QaFileSplit("xquad", xquad, "de", "test", seed=1).fingerprint()
    for language in ("en", "de"):  # a copy outside the checkout: touching a file changes the fingerprint
        (tmp_path / f"xquad.{language}.json").write_bytes((xquad / f"xquad.{language}.json").read_bytes())
    copy = QaFileSplit("xquad", tmp_path, "de", "test")
    before = copy.fingerprint()
    # the split of the copy (English and German only) is the split of all ten languages: XQuAD is parallel
    assert [e.id for e in copy.load()] == [e.id for e in german_test.load()]
    (tmp_path / "xquad.de.json").write_text("{}", encoding="utf-8")
    assert copy.fingerprint() != before
    with pytest.raises(DataError, match="expected a SQuAD JSON object"):
        copy.load()
