"""The QA tasks' hub sources without a network: rajpurkar/squad (English train and dev, cut by paragraph; its
validation split the test of the intermediate task `squad`) and google/xtreme's XQuAD.<lang>, MLQA.<lang>.<lang>
and tydiqa configurations, read through the registry from local parquet files written with the hub's schema (the
dataset cards' columns id, title, context, question, answers {text, answer_start}); `data list` shows where each
comes from; malformed rows name the dataset and row."""
import json

import pytest

from dlfa.cli.main import main
from dlfa.data.hub_layouts import HUB_MLQA_LANGUAGES, HUB_TYDIQA_LANGUAGES, HUB_XQUAD_LANGUAGES
from dlfa.data.qa import read_squad_json
from dlfa.data.registry import DataSource, available_languages, load_examples, scan_languages, task_source
from dlfa.errors import DataError


MLQA_EN = "qa/mlqa_dev/dev-context-en-question-en.json"  # in the fixture root: the made-up SQuAD validation rows


def hub_rows(path, id_prefix: str = "") -> list[dict]:
    """A SQuAD v1.1 JSON file's questions as the hub's flat rows."""
    return [{"id": id_prefix + example.id, "title": example.title, "context": example.context,
             "question": example.question,
             "answers": {"text": [a.text for a in example.answers], "answer_start": [a.start for a in example.answers]}}
            for example in read_squad_json(path, "xx")]


@pytest.fixture
def hub(tmp_path, fixture_root):
    """(a hub source, the (config, split) pairs its loader was asked for): the loader reads local parquet files with the hub's features (answers a Sequence of
    {text, answer_start}, as rajpurkar/squad and google/xtreme declare it)."""
    from datasets import Dataset, Features, Sequence, Value, load_dataset

    features = Features({"id": Value("string"), "title": Value("string"), "context": Value("string"),
                         "question": Value("string"),
                         "answers": Sequence({"text": Value("string"), "answer_start": Value("int32")})})
    english, german = (fixture_root / "qa" / "xquad" / f"xquad.{lang}.json" for lang in ("en", "de"))
    folder = tmp_path / "hub"
    files = {("rajpurkar/squad:", "train"): hub_rows(english),
             ("rajpurkar/squad:", "validation"): hub_rows(fixture_root / MLQA_EN),
             ("XQuAD.en", "validation"): hub_rows(english),
             ("XQuAD.de", "validation"): hub_rows(german), ("MLQA.de.de", "test"): hub_rows(german),
             ("tydiqa", "validation"): hub_rows(english, "english-") + hub_rows(german, "finnish-")}
    for (config, split), rows in files.items():
        path = folder / config.replace("/", "_").replace(":", "_") / f"{split}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        Dataset.from_list(rows, features=features).to_parquet(str(path))
    asked = []

    def loader(config, split):
        asked.append((config, split))
        path = folder / config.replace("/", "_").replace(":", "_") / f"{split}.parquet"
        if not path.is_file():
            raise FileNotFoundError(f"no {config} {split}")
        return load_dataset("parquet", data_files={split: str(path)}, split=split, cache_dir=str(tmp_path / "hf"))

    return DataSource.hub(loader), asked


def test_xquad_trains_on_squad_cut_by_paragraph_and_tests_on_google_xtremes_xquad(hub, fixture_root):
    hub, asked = hub
    scan = scan_languages("xquad", hub)
    assert set(scan.available) == {"en", "de"}  # the other XQuAD languages have no local file here
    assert set(scan.broken) == set(HUB_XQUAD_LANGUAGES) - {"en", "de"} and "no XQuAD.ar validation" in scan.broken["ar"]
    english = scan.available["en"]
    assert english["train"] + english["dev"] == 72 and english["dev"] == 6 and english["test"] == 72  # 24 paragraphs of 3
    assert scan.available["de"] == {"test": 72}
    train, dev = (load_examples("xquad", "en", split, hub) for split in ("train", "dev"))
    assert not {e.context for e in train} & {e.context for e in dev}  # no dev paragraph is trained on
    assert ("rajpurkar/squad:", "train") in asked and not any(c.startswith("rajpurkar/squad") and s != "train"
                                                                  for c, s in asked)
    german = load_examples("xquad", "de", "test", hub)
    from_file = read_squad_json(fixture_root / "qa" / "xquad" / "xquad.de.json", "de")
    assert [(e.id, e.question, e.context, e.answers) for e in german] == \
           [(e.id, e.question, e.context, e.answers) for e in from_file]
    assert german[0].language == "de" and german[0].source.startswith("google/xtreme XQuAD.de (validation): row 1")
    assert task_source("xquad", hub) == "hub google/xtreme, rajpurkar/squad"


def test_mlqa_and_tydiqa_test_sets_come_from_their_configurations(hub):
    hub, asked = hub
    assert available_languages("mlqa", hub)["de"] == {"test": 72}
    assert ("MLQA.de.de", "test") in asked
    assert set(HUB_MLQA_LANGUAGES) >= {"ar", "de", "es", "hi", "vi", "zh"}
    tydiqa = available_languages("tydiqa", hub)
    assert set(tydiqa) == {"en", "fi"} and tydiqa["fi"] == {"test": 72} and tydiqa["en"]["test"] == 72
    finnish = load_examples("tydiqa", "fi", "test", hub)
    assert all(e.id.startswith("finnish-") and e.language == "fi" for e in finnish)
    assert {e.id for e in load_examples("tydiqa", "en", "test", hub)} == {f"english-{e.id[8:]}" for e in finnish}
    assert set(HUB_TYDIQA_LANGUAGES) == {"ar", "bn", "en", "fi", "id", "ko", "ru", "sw", "te"}


def test_squad_reads_train_and_dev_as_the_qa_tasks_do_and_tests_on_squads_validation_split(hub, fixture_root,
                                                                                          monkeypatch, capsys):
    hub, asked = hub
    assert available_languages("squad", hub) == {"en": {"train": 66, "dev": 6, "test": 72}}  # 24 + 4 paragraphs
    train, dev, test = (load_examples("squad", "en", split, hub) for split in ("train", "dev", "test"))
    assert not {e.context for e in train} & {e.context for e in dev}  # no dev paragraph is trained on
    # one reader and one paragraph split: squad's train and dev are the QA targets' English train and dev
    for split, examples in (("train", train), ("dev", dev)):
        assert [e.id for e in examples] == [e.id for e in load_examples("xquad", "en", split, hub)], split
    assert ("rajpurkar/squad:", "validation") in asked and not any(c.startswith("google/xtreme") for c, _ in asked)
    from_file = read_squad_json(fixture_root / MLQA_EN, "en")  # the validation rows, as their file has them
    assert [e.id for e in test] == [e.id for e in from_file]
    number, example = next((n, e) for n, e in enumerate(test, start=1) if e.answers[0].start > 0)
    assert (example.question, example.context, example.answers) == \
           (from_file[number - 1].question, from_file[number - 1].context, from_file[number - 1].answers)
    answer = example.answers[0]
    assert example.context[answer.start:answer.end] == answer.text
    assert example.source.startswith(f"rajpurkar/squad (validation): row {number}")
    assert task_source("squad", hub) == "hub rajpurkar/squad"
    monkeypatch.setattr("dlfa.data.sources.load_hub_split", hub.loader)  # what the data root `hub` reads
    assert main(["data", "list", "--data-root", "hub", "--task", "squad"]) == 0
    text = capsys.readouterr().out
    assert "squad (question answering, span_f1, intermediate): Question answering: SQuAD v1.1 (hub only" in text
    assert "  source: hub rajpurkar/squad\n" in text and "1 language(s): en train 66 dev 6 test 72" in text


def test_malformed_hub_rows_name_the_dataset_and_the_row(fixture_root):
    rows = hub_rows(fixture_root / "qa" / "xquad" / "xquad.en.json")
    rows[4] = {**rows[4], "answers": {"text": ["a", "b"], "answer_start": [0]}}
    broken = DataSource.hub(lambda config, split: rows)
    with pytest.raises(DataError, match=r"^rajpurkar/squad \(train\): row 5 \(id \S+\): 'answers' must hold lists "):
        load_examples("xquad", "en", "train", broken)
    without_context = DataSource.hub(lambda config, split: [{k: v for k, v in rows[0].items() if k != "context"}])
    with pytest.raises(DataError, match=r"google/xtreme XQuAD.de \(validation\): row 1: 'context' must be"):
        load_examples("xquad", "de", "test", without_context)
    offline = DataSource.hub(lambda config, split: (_ for _ in ()).throw(ConnectionError("no network")))
    with pytest.raises(DataError, match=r"cannot load google/xtreme tydiqa \(validation\): no network"):
        load_examples("tydiqa", "fi", "test", offline)


def test_data_list_shows_tatoeba_as_retrieval_and_where_the_qa_tasks_are(fixture_root, capsys):
    assert main(["data", "list", "--data-root", str(fixture_root), "--json", "--task", "tatoeba", "--task", "tydiqa",
                 "--task", "xquad", "--task", "squad"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)["tasks"]}
    assert rows["tatoeba"]["family"] == "retrieval" and rows["tatoeba"]["source"] == "retrieval/tatoeba"
    assert rows["tatoeba"]["languages"] == {"de": {"test": 30}, "fr": {"test": 30}, "zh": {"test": 30}}
    assert rows["tydiqa"]["family"] == "question answering" and rows["tydiqa"]["languages"] == {}
    assert rows["tydiqa"]["source"] == (f"none in the data root {fixture_root} "
                                        "(hub google/xtreme, rajpurkar/squad has it)")
    assert rows["xquad"]["source"] == "qa/xquad"
    assert rows["squad"]["family"] == "question answering" and rows["squad"]["intermediate"] and \
           rows["squad"]["source"] == f"none in the data root {fixture_root} (hub rajpurkar/squad has it)"
    assert main(["data", "list", "--data-root", str(fixture_root), "--task", "tatoeba"]) == 0
    text = capsys.readouterr().out
    assert "tatoeba (retrieval, retrieval_accuracy): Sentence retrieval: Tatoeba" in text
    assert "3 language(s): de test 30; fr test 30; zh test 30" in text
