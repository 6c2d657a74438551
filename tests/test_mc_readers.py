"""The multiple-choice readers on the real files (COPA / XCOPA, CommonsenseQA, Cosmos QA) and on malformed
input (one error naming the file and the line). XCOPA's question word is taken from the English COPA item: the
XCOPA files get it wrong for tr and th (all "effect") and for a few items of id, it and sw."""
import csv
import json
from collections import Counter

import pytest

from dlfa.data.readers import read_csv, read_jsonl, read_xcopa
from dlfa.data.registry import DataSource, load_examples
from dlfa.errors import DataError

XCOPA_LANGUAGES = ("et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh")


def _write(path, rows):
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows),
                    encoding="utf-8")
    return path


def _copa(idx, question="cause", label=0, **fields):
    return {"premise": f"Premise {idx}.", "choice1": "One.", "choice2": "Two.", "question": question,
            "label": label, "idx": idx, **fields}


def test_xcopa_takes_each_items_question_from_the_english_item(tmp_path):
    english = _write(tmp_path / "val-en.jsonl", [_copa(0, "cause"), _copa(1, "effect"), _copa(2, "cause")])
    turkish = _write(tmp_path / "val-tr.jsonl", [_copa(2, "effect"), _copa(0, "effect")])
    examples = read_xcopa(turkish, english, ("choice1", "choice2"))
    assert [(e.item_id, e.text_pair, e.text) for e in examples] == [
        ("2", "What was the cause?", "Premise 2."), ("0", "What was the cause?", "Premise 0.")]
    assert [e.source for e in examples] == [f"{turkish}:1", f"{turkish}:2"]


def test_malformed_copa_and_xcopa_rows_name_file_and_line(tmp_path):
    english = _write(tmp_path / "val-en.jsonl", [_copa(0), _copa(1)])
    with pytest.raises(DataError, match=r"val-tr\.jsonl:2: item idx 7 has no English COPA item in .*val-en\.jsonl"):
        read_xcopa(_write(tmp_path / "val-tr.jsonl", [_copa(0), _copa(7)]), english)
    with pytest.raises(DataError, match=r"val-et\.jsonl:2: unexpected value: label should be 0 or 1, not 2$"):
        read_xcopa(_write(tmp_path / "val-et.jsonl", [_copa(0), _copa(1, label=2)]), english)
    with pytest.raises(DataError, match=r"val-zh\.jsonl:1: missing field 'choice2'"):
        read_xcopa(_write(tmp_path / "val-zh.jsonl", [{k: v for k, v in _copa(0).items() if k != "choice2"}]),
                   english)
    with pytest.raises(DataError, match=r"val-id\.jsonl:2: invalid JSON"):
        read_xcopa(_write(tmp_path / "val-id.jsonl", [_copa(0), '{"premise": "cut off']), english)
    with pytest.raises(DataError, match=r"val-en\.jsonl:2: unexpected value: question should be 'cause' or 'effect'"):
        read_xcopa(_write(tmp_path / "val-vi.jsonl", [_copa(0)]),
                   _write(tmp_path / "val-en.jsonl", [_copa(0), _copa(1, question="why")]))


def test_malformed_commonsenseqa_cosmosqa_hellaswag_and_siqa_rows_name_file_and_line(tmp_path):
    def csqa(letters):
        return {"id": "q", "answerKey": "A", "question": {"stem": "Where?", "choices": [
            {"label": letter, "text": f"place {letter}"} for letter in letters]}}

    with pytest.raises(DataError, match=r"c\.jsonl:2: unexpected value: choices should be lettered A, B, C \.\.\. "
                                        r"in order, not \['A', 'C', 'B'\]"):
        read_jsonl(_write(tmp_path / "c.jsonl", [csqa("AB"), csqa("ACB")]), "commonsenseqa")
    stemless = {"id": "q", "answerKey": "A", "question": {"choices": [{"label": "A", "text": "x"}]}}
    with pytest.raises(DataError, match=r"s\.jsonl:1: missing field 'stem'"):
        read_jsonl(_write(tmp_path / "s.jsonl", [stemless]), "commonsenseqa")
    header = "id,context,question,answer0,answer1,answer2,answer3,label"
    with pytest.raises(DataError, match=r"q\.csv:3: malformed comma-separated line"):
        read_csv(_write(tmp_path / "q.csv", [header, "a,ctx,q,a,b,c,d,1", 'b,"ctx,q,a,b,c,d,1']), "cosmosqa")
    with pytest.raises(DataError, match=r"h\.csv:2: missing field 'answer3'"):
        read_csv(_write(tmp_path / "h.csv", [header.replace("answer3", "answer4"), "a,ctx,q,a,b,c,d,1"]), "cosmosqa")
    with pytest.raises(DataError, match=r"e\.jsonl:1: unexpected value: field 'endings' should be a list of strings"):
        read_jsonl(_write(tmp_path / "e.jsonl", [{"ctx": "He cooks.", "endings": "a b", "label": "0"}]), "hellaswag")
    siqa = {"context": "Jan cooked.", "question": "Why?", "answerA": "a", "answerB": "b", "answerC": "c", "label": "2"}
    with pytest.raises(DataError, match=r"i\.jsonl:2: unexpected value: label should be '1', '2' or '3', not '0'"):
        read_jsonl(_write(tmp_path / "i.jsonl", [siqa, {**siqa, "label": "0"}]), "siqa")
    with pytest.raises(DataError, match=r"j\.jsonl:1: missing field 'answerC'"):
        read_jsonl(_write(tmp_path / "j.jsonl", [{k: v for k, v in siqa.items() if k != "answerC"}]), "siqa")


def test_real_xcopa_items_carry_the_english_items_question_and_label(data_root):
    source = DataSource.resolve(data_root)
    english = {e.item_id: e for e in load_examples("xcopa", "en", "test", source)}
    assert Counter(e.text_pair for e in english.values()) == {"What was the cause?": 52, "What was the effect?": 48}
    raw_turkish = [json.loads(line) for line in (data_root / "pair/xcopa_xtreme_style/val-tr.jsonl").open()]
    assert {row["question"] for row in raw_turkish} == {"effect"}  # the defect read_xcopa repairs
    for language in XCOPA_LANGUAGES:
        examples = load_examples("xcopa", language, "test", source)
        assert sorted(e.item_id for e in examples) == sorted(english), language
        assert all((e.text_pair, e.label) == (english[e.item_id].text_pair, english[e.item_id].label)
                   for e in examples), language
        assert all(e.text != english[e.item_id].text for e in examples if language != "qu"), language  # translated


def test_real_copa_train_is_cut_90_10_with_both_questions(data_root):
    source = DataSource.resolve(data_root)
    train, dev = (load_examples("xcopa", "en", split, source) for split in ("train", "dev"))
    assert (len(train), len(dev)) == (360, 40) and not {e.item_id for e in train} & {e.item_id for e in dev}
    assert set(Counter(e.text_pair for e in train)) == {"What was the cause?", "What was the effect?"}
    first = json.loads((data_root / "pair/xcopa_xtreme_style/train-en.jsonl").open().readline())
    (same,) = [e for e in train + dev if e.item_id == str(first["idx"])]
    assert (same.text, same.choices, same.label) == (
        first["premise"], (first["choice1"], first["choice2"]), f"choice{first['label'] + 1}")


def test_real_commonsenseqa_and_cosmosqa_rows_read_as_in_the_files(data_root):
    source = DataSource.resolve(data_root)
    first = json.loads((data_root / "english/CommonsenseQA/official/train_rand_split.jsonl").open().readline())
    csqa = load_examples("commonsenseqa", "en", "train", source) + load_examples("commonsenseqa", "en", "dev", source)
    (same,) = [e for e in csqa if e.item_id == first["id"]]
    assert (same.text, same.choices, same.label, same.text_pair) == (
        first["question"]["stem"], tuple(c["text"] for c in first["question"]["choices"]), first["answerKey"], None)
    with (data_root / "english/CosmosQA/valid.csv").open(newline="", encoding="utf-8") as handle:
        rows = {row["id"]: row for row in csv.DictReader(handle)}
    cosmos = [e for split in ("train", "dev", "test") for e in load_examples("cosmosqa", "en", split, source)]
    assert sorted(e.item_id for e in cosmos) == sorted(rows)  # every row once, none lost to quoting
    for example in cosmos[:50]:
        row = rows[example.item_id]
        assert (example.text, example.text_pair, example.choices, example.label) == (
            row["context"], row["question"], tuple(row[f"answer{i}"] for i in range(4)), row["label"])
    assert set(Counter(e.label for e in cosmos)) == {"0", "1", "2", "3"}
