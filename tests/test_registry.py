"""The task registry on the real data root (../shared/data, or $DLFA_TEST_DATA_ROOT through the `data_root`
fixture): counts match MANIFEST.md, the XNLI / PAWS-X item split, refusals that list what exists, the feature
cache, the hub code path on local files with the hub's schema, and Chinese labels off the lone "▁"."""

import json
import os

import numpy as np
import pytest

from dlfa.cli.main import main
from dlfa.errors import DataError
from dlfa.engine.spec import JobSpec
from dlfa.data import file_layouts, registry
from dlfa.data.base import IGNORE_INDEX
from dlfa.data.readers import PANX_TAGS, UPOS_TAGS
from dlfa.data.registry import (DataSource, available_languages, english_sizes, get_task, list_tasks, load_encoded,
                                  load_examples)

PUD_LANGUAGES = ["ar", "cs", "de", "en", "es", "fi", "fr", "gl", "it", "pl", "pt", "ru", "sv", "tr", "zh"]


@pytest.fixture(scope="module", autouse=True)
def isolated_cache(tmp_path_factory):
    """A cache of this module's own (counts and features), shared by its tests."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DLFA_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        patch.delenv("DLFA_DATA_DIR", raising=False)
        yield


@pytest.fixture(scope="module")
def source(data_root):
    return DataSource.resolve(data_root)


@pytest.fixture(scope="module")
def tokenizer():
    from dlfa.model.encoders import load_tokenizer

    return load_tokenizer()


def test_paper_tasks_match_manifest(source):
    udpos = available_languages("udpos", source)
    assert udpos["en"] == {"train": 12544, "dev": 2001, "test": 1000}  # EWT train/dev, English PUD test
    assert all(udpos[language]["test"] == 1000 for language in PUD_LANGUAGES)
    assert udpos["ja"] == {"dev": 511, "test": 2372}  # XTREME tsv where no PUD
    assert udpos["af"] == {"dev": 194, "test": 425}  # UD AfriBooms conllu
    assert all("train" not in splits for language, splits in udpos.items() if language != "en")
    panx = available_languages("panx", source)
    assert panx["en"] == {"train": 20000, "dev": 10000}
    assert panx["de"] == {"test": 10000} and panx["yo"] == {"test": 100} and len(panx) == 44
    for task, rows, languages, test_share in (("xnli", 2490 + 5010, 15, 0.12), ("pawsx", 2000, 7, 1 / 3)):
        counts = available_languages(task, source)
        assert len(counts) == languages and sum(counts["en"].values()) == rows
        assert {language: splits["test"] for language, splits in counts.items()} == dict.fromkeys(
            counts, counts["en"]["test"]
        )
        assert counts["en"]["test"] == pytest.approx(rows * test_share, abs=5)


def test_english_sizes_of_the_paper_tasks(source):
    assert english_sizes("xnli", source) == {"train": 6000, "dev": 600, "test": 900}  # dev + test items pooled
    assert english_sizes("pawsx", source) == {"train": 1201, "dev": 133, "test": 666}  # the English dev set only
    assert english_sizes("udpos", source) == {"train": 12544, "dev": 2001, "test": 1000}
    assert english_sizes("panx", source) == {"train": 20000, "dev": 10000, "test": 0}  # no English test labels
    assert "no more labeled English data" in get_task("pawsx").description


def test_xnli_pools_dev_and_test_items_with_a_seeded_split_shared_by_every_language(source):
    english = {split: load_examples("xnli", "en", split, source) for split in ("train", "dev", "test")}
    ids = {split: [e.item_id for e in examples] for split, examples in english.items()}
    every = [i for split in ids.values() for i in split]
    assert len(every) == len(set(every)) == 7500
    assert set(every) == {f"dev-{i}" for i in range(2490)} | {f"test-{i}" for i in range(5010)}
    for split in ("train", "dev", "test"):  # the seeded shuffle mixes both files into every part
        assert {i.partition("-")[0] for i in ids[split]} == {"dev", "test"}
    premises = {split: {e.text for e in examples} for split, examples in english.items()}
    assert not (premises["train"] & premises["test"]) and not (premises["train"] & premises["dev"])
    for language in ("de", "sw", "zh"):
        test = load_examples("xnli", language, "test", source)
        assert [e.item_id for e in test] == ids["test"]  # the same items, translated
        assert {e.text for e in test}.isdisjoint(premises["test"])


@pytest.mark.parametrize("task", ["xnli", "pawsx"])
def test_item_split_is_aligned_and_leak_free(source, task):
    english = {split: load_examples(task, "en", split, source) for split in ("train", "dev", "test")}
    ids = {split: {e.item_id for e in examples} for split, examples in english.items()}
    assert not (ids["train"] & ids["test"]) and not (ids["dev"] & ids["test"]) and not (ids["train"] & ids["dev"])
    texts = {split: {t for e in examples for t in (e.text, e.text_pair)} for split, examples in english.items()}
    assert not (texts["train"] & texts["test"]) and not (texts["dev"] & texts["test"])
    for language in available_languages(task, source):
        test = load_examples(task, language, "test", source)
        assert [e.item_id for e in test] == [e.item_id for e in english["test"]]
        agreement = np.mean([a.label == b.label for a, b in zip(test, english["test"])])
        assert agreement == 1.0 if task == "xnli" else agreement > 0.95
    assert load_examples("xnli", "de", "test", source)[0].text != english["test"][0].text  # German, not English


def _synthetic_xnli(root, shift: int = 0, rows: int = 30):
    folder = root / "pair" / "xnli_xtreme"
    folder.mkdir(parents=True, exist_ok=True)
    labels = ["entailment", "neutral", "contradiction"]
    english = [f"Premise {i // 3}.\tHypothesis {i}.\t{labels[i % 3]}" for i in range(rows)]
    german = [f"Prämisse {i // 3}.\tHypothese {i}.\t{labels[(i + shift) % 3]}" for i in range(rows)]
    (folder / "dev-en.tsv").write_text("\r\n".join(english) + "\r\n", encoding="utf-8")
    (folder / "dev-de.tsv").write_text("\r\n".join(german) + "\r\n", encoding="utf-8")
    return folder


def test_item_split_groups_premises_and_refuses_misaligned_files(tmp_path):
    _synthetic_xnli(tmp_path)
    source = DataSource.resolve(tmp_path)
    parts = [load_examples("xnli", "en", split, source) for split in ("train", "dev", "test")]
    assert [len(p) for p in parts] == [18, 3, 9]  # whole premise groups of 3
    assert {e.text for e in parts[0]}.isdisjoint({e.text for e in parts[2]})
    _synthetic_xnli(tmp_path, shift=1)
    with pytest.raises(DataError, match=r"dev-de\.tsv: labels agree with the English file on only 0% of rows"):
        load_examples("xnli", "de", "test", source)
    _synthetic_xnli(tmp_path, rows=27)
    (tmp_path / "pair" / "xnli_xtreme" / "dev-en.tsv").write_text("a\tb\tneutral\n" * 30, encoding="utf-8")
    scan = registry.scan_languages("xnli", source)
    assert "de" not in scan.available and "27 rows but the English file has 30" in scan.broken["de"]


def _synthetic_xnli_test(root, rows: int = 60, shift: int = 0):
    folder = root / "pair" / "xnli_test_derived"
    folder.mkdir(parents=True, exist_ok=True)
    labels = ["entailment", "neutral", "contradiction"]
    for language, word, offset in (("en", "Premise", 0), ("de", "Prämisse", shift)):
        lines = [f"{word} T{i // 3}.\tH{i}.\t{labels[(i + offset) % 3]}" for i in range(rows)]
        (folder / f"test-{language}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_pooled_item_split_is_seeded_by_groups_and_checks_each_file(tmp_path, monkeypatch):
    _synthetic_xnli(tmp_path)
    _synthetic_xnli_test(tmp_path)
    source = DataSource.resolve(tmp_path)
    parts = {split: load_examples("xnli", "en", split, source) for split in ("train", "dev", "test")}
    assert [len(p) for p in parts.values()] == [72, 9, 9]  # 90 items: 80%, up to 88% in whole groups of 3, the rest
    assert all(len({e.text for e in p}) * 3 == len(p) for p in parts.values())  # whole premise groups
    german = load_examples("xnli", "de", "test", source)
    assert [e.item_id for e in german] == [e.item_id for e in parts["test"]]
    assert all(e.text.startswith("Prämisse") for e in german)
    monkeypatch.setattr(file_layouts, "XNLI_SPLIT_SEED", file_layouts.XNLI_SPLIT_SEED + 1)
    reshuffled = load_examples("xnli", "en", "test", DataSource.resolve(tmp_path))
    assert [e.item_id for e in reshuffled] != [e.item_id for e in parts["test"]]  # the seed decides the split
    _synthetic_xnli_test(tmp_path, shift=1)
    with pytest.raises(DataError, match=r"test-de\.tsv: labels agree with the English file on only 0% of rows"):
        load_examples("xnli", "de", "test", source)


def test_refusals_list_what_exists(source):
    with pytest.raises(DataError, match=r"no language 'xx' .* languages available: en, ar, bg, de, el"):
        load_examples("xnli", "xx", "test", source)
    with pytest.raises(DataError, match=r"no 'train' split for 'de' .*; it has: test"):
        load_examples("panx", "de", "train", source)
    with pytest.raises(DataError, match=r"unknown task 'squad2'; known tasks: udpos, panx, xnli, pawsx"):
        get_task("squad2")
    with pytest.raises(DataError, match="unknown split 'validation'"):
        load_examples("udpos", "en", "validation", source)
    with pytest.raises(DataError, match=r"task conll-ner has no data in the hub \(google/xtreme and .*; give a data root"):
        load_examples("conll-ner", "en", "train", DataSource.hub(lambda config, split: []))
    with pytest.raises(DataError, match=r"^nyu-mll/glue sst2 \(train\) has no rows$"):
        load_examples("sst2", "en", "train", DataSource.hub(lambda config, split: []))


def test_intermediate_tasks_have_english_training_data(source):
    hub_only = {"mnli", "qqp", "hellaswag", "siqa", "squad"}  # their files are 4 MiB and more: not on this machine
    intermediate = [t for t in list_tasks() if t.intermediate and "classroom" not in t.name and t.name not in hub_only]
    assert len(intermediate) >= 12
    for task in intermediate:
        splits = available_languages(task, source)["en"]
        assert splits["train"] > 0 and splits["dev"] > 0, task.name
        examples = load_examples(task, "en", "train", source, max_examples=50)
        assert len(examples) == min(50, splits["train"])
        assert all(
            (e.label in task.labels) if task.kind != "token" else set(e.tags) <= set(task.labels) for e in examples
        )
    conll = load_examples("conll-ner", "es", "test", source)  # Latin-1, IOB2
    assert any("ñ" in word for e in conll for word in e.words)


def test_source_resolution(tmp_path, monkeypatch, data_root):
    monkeypatch.setenv("DLFA_CACHE_DIR", str(tmp_path / "cache"))
    assert DataSource.resolve().kind == "hub"
    (tmp_path / "cache" / "pack").mkdir(parents=True)
    (tmp_path / "cache" / "pack" / "MANIFEST.json").write_text("{}")
    assert DataSource.resolve() == DataSource("pack", tmp_path / "cache" / "pack")
    monkeypatch.setenv("DLFA_DATA_DIR", str(data_root))
    assert DataSource.resolve() == DataSource("files", data_root.resolve())
    assert DataSource.resolve(tmp_path) == DataSource("files", tmp_path.resolve())
    with pytest.raises(DataError, match="the data root does not exist"):
        DataSource.resolve(tmp_path / "nowhere")


def test_feature_cache_hits_and_invalidates(tmp_path, monkeypatch, tokenizer):
    folder = _synthetic_xnli(tmp_path)
    source = DataSource.resolve(tmp_path)
    first = load_encoded("xnli", "de", "test", source, tokenizer, 64)
    assert len(first) == 9 and first.features[0]["labels"] in (0, 1, 2)
    stored = sorted((registry.cache_subdir("features")).glob("xnli-de-test-*.npz"))
    assert len(stored) == 1 and np.load(stored[0], allow_pickle=False)["input_ids"].dtype == np.int32

    def must_not_encode(*args, **kwargs):
        raise AssertionError("tokenized again despite a cache hit")

    monkeypatch.setattr(registry, "encode_examples", must_not_encode)
    again = load_encoded("xnli", "de", "test", source, tokenizer, 64)
    assert again.features == first.features and again.truncated == first.truncated
    with pytest.raises(AssertionError, match="tokenized again"):
        load_encoded("xnli", "de", "test", source, tokenizer, 32)  # another max_length is another entry
    with pytest.raises(AssertionError, match="tokenized again"):
        load_encoded("xnli", "de", "test", source, tokenizer, 64, max_examples=5)
    german = folder / "dev-de.tsv"
    german.write_text(
        german.read_text(encoding="utf-8").replace("Hypothese 29.", "Eine ganz andere Hypothese."), encoding="utf-8"
    )
    os.utime(german, ns=(german.stat().st_atime_ns, german.stat().st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="tokenized again"):
        load_encoded("xnli", "de", "test", source, tokenizer, 64)  # the changed file is a miss
    monkeypatch.undo()
    changed = load_encoded("xnli", "de", "test", source, tokenizer, 64)
    assert changed.features[:-1] == first.features[:-1] and changed.features[-1] != first.features[-1]


def test_chinese_labels_are_not_on_lone_spaces(source, tokenizer):
    encoded = load_encoded("udpos", "zh", "test", source, tokenizer, 128)
    examples = load_examples("udpos", "zh", "test", source)
    lone = labeled_lone = 0
    for example, feature in zip(examples, encoded.features):
        tokens = tokenizer.convert_ids_to_tokens(feature["input_ids"])
        labeled = [token for token, label in zip(tokens, feature["labels"]) if label != IGNORE_INDEX]
        assert len(labeled) == len(example.words)  # no truncation at 128 here: every word labeled once
        lone += tokens.count("▁")
        labeled_lone += labeled.count("▁")
    assert lone > 10000 and labeled_lone == 0  # the case exists, and the bare "▁" is never the labeled piece


def _parquet_loader(folder, cache_dir):
    """A hub loader reading `folder/<config>/<split>.parquet` with `datasets`, as the hub's files are read."""
    from datasets import load_dataset

    def loader(config, split):
        path = folder / config / f"{split}.parquet"
        if not path.is_file():
            raise FileNotFoundError(f"no {config} {split}")
        return load_dataset("parquet", data_files={split: str(path)}, split=split, cache_dir=str(cache_dir))

    return loader


def _hub_folder(tmp_path):
    """Local parquet files with google/xtreme's schema: ClassLabel tags for PAN-X, plain integers for UD-POS."""
    from datasets import ClassLabel, Dataset, Features, Sequence, Value

    def save(config, split, rows, features):
        (tmp_path / config).mkdir(parents=True, exist_ok=True)
        Dataset.from_dict(rows, features=features).to_parquet(str(tmp_path / config / f"{split}.parquet"))

    panx = Features(
        {
            "tokens": Sequence(Value("string")),
            "ner_tags": Sequence(ClassLabel(names=list(PANX_TAGS))),
            "langs": Sequence(Value("string")),
        }
    )
    for config, split, words in (("PAN-X.en", "train", ["Angela", "Merkel"]), ("PAN-X.en", "validation", ["Paris"]),
                                 ("PAN-X.de", "test", ["Berlin", "ist"])):  # fmt: skip
        save(
            config,
            split,
            {"tokens": [words] * 4, "ner_tags": [[1, 2][: len(words)]] * 4, "langs": [["x"] * len(words)] * 4},
            panx,
        )
    udpos = Features({"tokens": Sequence(Value("string")), "pos_tags": Sequence(Value("int64"))})
    save("udpos.German", "test", {"tokens": [["Er", "läuft"]], "pos_tags": [[10, 15]]}, udpos)
    xnli = Features({name: Value("string") for name in ("language", "sentence1", "sentence2", "gold_label")})
    rows = {
        "language": ["en", "de"] * 10,
        "sentence1": [f"p{i}" for i in range(20)],
        "sentence2": [f"h{i}" for i in range(20)],
        "gold_label": ["neutral"] * 20,
    }
    save("XNLI", "validation", rows, xnli)
    save("XNLI", "test", rows, xnli)
    pawsx = Features({name: Value("string") for name in ("sentence1", "sentence2", "label")})
    save("PAWS-X.de", "test", {"sentence1": ["a", "b"], "sentence2": ["c", "d"], "label": ["0", "1"]}, pawsx)
    return tmp_path


def test_hub_code_path_on_local_files_with_the_hub_schema(tmp_path):
    folder = _hub_folder(tmp_path / "hub")
    hub = DataSource.hub(_parquet_loader(folder, tmp_path / "hf"))
    assert available_languages("panx", hub) == {"en": {"train": 4, "dev": 4}, "de": {"test": 4}}
    german = load_examples("panx", "de", "test", hub)
    assert german[0].words == ("Berlin", "ist") and german[0].tags == ("B-PER", "I-PER")
    assert german[0].source.startswith("google/xtreme PAN-X.de (test)")
    assert load_examples("udpos", "de", "test", hub)[0].tags == (UPOS_TAGS[10], UPOS_TAGS[15]) == ("PRON", "VERB")
    xnli = available_languages("xnli", hub)
    assert xnli == {"en": {"train": 9, "dev": 1, "test": 10}, "de": {"test": 10}}
    assert {e.text for e in load_examples("xnli", "de", "test", hub)} == {f"p{i}" for i in range(1, 20, 2)}
    assert [e.label for e in load_examples("pawsx", "de", "test", hub)] == ["different", "paraphrase"]
    with pytest.raises(DataError, match=r"cannot load google/xtreme PAN-X\.fr \(test\): no PAN-X\.fr test"):
        load_examples("panx", "fr", "test", hub)
    with pytest.raises(DataError, match=r"no language 'xx' in the hub .* languages available: en, af, ar"):
        load_examples("panx", "xx", "test", hub)
    broken = DataSource.hub(lambda config, split: [{"tokens": ["a"]}])
    with pytest.raises(DataError, match="does not have the expected columns"):
        load_examples("panx", "de", "test", broken)


def _tiny_ud(root, language: str, split: str, text: str) -> None:
    folder = root / "ud" / f"UD_{language}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{language}_pud-ud-{split}.conllu").write_text(text, encoding="utf-8")


SENTENCE = "1\tHallo\thallo\tINTJ\t_\t_\t0\troot\t_\t_\n2\twelt\twelt\tNOUN\t_\t_\t1\tobj\t_\t_\n\n"


@pytest.mark.parametrize("broken", ["", "1\tHallo\n\n", SENTENCE.replace("INTJ", "WORD")])
def test_a_broken_file_disables_only_its_own_language(tmp_path, capsys, broken):
    for split in ("train", "dev", "test"):
        _tiny_ud(tmp_path, "en", split, SENTENCE)
    _tiny_ud(tmp_path, "it", "test", SENTENCE)
    _tiny_ud(tmp_path, "de", "test", broken)
    source = DataSource.resolve(tmp_path)
    scan = registry.scan_languages("udpos", source)
    assert scan.available == {"en": {"train": 1, "dev": 1, "test": 1}, "it": {"test": 1}}
    assert list(scan.broken) == ["de"] and "de_pud-ud-test.conllu" in scan.broken["de"]
    assert load_examples("udpos", "it", "test", source)[0].words == ("Hallo", "welt")
    JobSpec("udpos", ("it",), data_root=str(tmp_path)).validate(check_encoder=False)  # `train --eval-langs it`
    assert main(["data", "list", "--data-root", str(tmp_path), "--task", "udpos"]) == 0
    out = capsys.readouterr().out
    assert "2 language(s): en train 1 dev 1 test 1; it test 1" in out
    assert f"de disabled: {scan.broken['de']}" in out


def test_cli_lists_tasks_as_json(data_root, capsys):
    assert main(["data", "list", "--data-root", str(data_root), "--json", "--task", "xnli", "--task", "udpos"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["source"] == {"kind": "files", "root": str(data_root.resolve())}
    xnli, udpos = listing["tasks"]
    assert xnli["name"] == "xnli" and len(xnli["languages"]) == 15 and udpos["languages"]["en"]["train"] == 12544
    assert main(["data", "list", "--data-root", str(data_root), "--task", "pawsx"]) == 0
    assert "pawsx (pair, accuracy)" in capsys.readouterr().out


def test_the_hub_unreachable_is_a_clear_data_error_not_retries(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr("dlfa.hub.hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(DataError, match="hub cannot be reached.*dlfa prepare"):
        registry.load_hub_split("udpos.German", "test")


def test_a_hub_dataset_still_served_by_a_loading_script_is_read_from_the_hubs_parquet_export(monkeypatch):
    calls = []

    def load_dataset(path, name=None, split=None, revision=None):
        calls.append((path, name, split, revision))
        if path == "allenai/social_i_qa" and revision is None:
            raise RuntimeError("Dataset scripts are no longer supported, but found social_i_qa.py")
        if path == "broken/dataset":
            raise RuntimeError("something else went wrong")
        return [{"revision": revision}]

    monkeypatch.setattr("dlfa.hub.hub_reachable", lambda timeout=3.0: True)
    monkeypatch.setattr("datasets.load_dataset", load_dataset)
    assert registry.load_hub_split("allenai/social_i_qa:", "train") == [{"revision": "refs/convert/parquet"}]
    assert calls == [("allenai/social_i_qa", None, "train", None),
                     ("allenai/social_i_qa", None, "train", "refs/convert/parquet")]
    assert registry.load_hub_split("nyu-mll/glue:rte", "validation") == [{"revision": None}]  # no script: main
    with pytest.raises(RuntimeError, match="something else went wrong"):  # only the script error falls back
        registry.load_hub_split("broken/dataset:", "train")


# One labeled row per intermediate task in its hub dataset's schema (the dataset cards' column names; integer
# labels index the ClassLabel names) and the example it must become: (text, text_pair, choices, label)
HUB_ROWS = {
    "sst2": ("nyu-mll/glue:sst2", {"sentence": "a fine film", "label": 1, "idx": 0},
             ("a fine film", None, (), "positive")),
    "cola": ("nyu-mll/glue:cola", {"sentence": "Him went.", "label": 0, "idx": 0},
             ("Him went.", None, (), "unacceptable")),
    "mrpc": ("nyu-mll/glue:mrpc", {"sentence1": "A", "sentence2": "B", "label": 1, "idx": 0},
             ("A", "B", (), "paraphrase")),
    "qqp": ("nyu-mll/glue:qqp", {"question1": "Why?", "question2": "How?", "label": 0, "idx": 0},
            ("Why?", "How?", (), "not_duplicate")),
    "qnli": ("nyu-mll/glue:qnli", {"question": "Who?", "sentence": "Me.", "label": 1, "idx": 0},
             ("Who?", "Me.", (), "not_entailment")),
    "rte": ("nyu-mll/glue:rte", {"sentence1": "P", "sentence2": "H", "label": 0, "idx": 0},
            ("P", "H", (), "entailment")),
    "mnli": ("nyu-mll/glue:mnli", {"premise": "P", "hypothesis": "H", "label": 2, "idx": 0},
             ("P", "H", (), "contradiction")),
    "boolq": ("aps/super_glue:boolq", {"question": "is it", "passage": "It is.", "label": 1, "idx": 0},
              ("is it", "It is.", (), "true")),
    "cb": ("aps/super_glue:cb", {"premise": "P", "hypothesis": "H", "label": 1, "idx": 0},
           ("P", "H", (), "contradiction")),  # CB's ClassLabel order: entailment, contradiction, neutral
    "wic": ("aps/super_glue:wic", {"word": "bank", "sentence1": "A bank.", "sentence2": "The bank.", "start1": 2,
                                   "start2": 4, "end1": 6, "end2": 8, "label": 0, "idx": 0},
            ("bank: A bank.", "The bank.", (), "false")),
    "xcopa": ("aps/super_glue:copa", {"premise": "It rained.", "choice1": "Sun.", "choice2": "Wet.",
                                      "question": "effect", "label": 1, "idx": 0},
              ("It rained.", "What was the effect?", ("Sun.", "Wet."), "choice2")),
    "commonsenseqa": ("tau/commonsense_qa:", {"id": "q", "question": "Where?", "question_concept": "x",
                                              "choices": {"label": list("ABCDE"), "text": list("vwxyz")},
                                              "answerKey": "C"},
                      ("Where?", None, tuple("vwxyz"), "C")),
    "cosmosqa": ("allenai/cosmos_qa:", {"id": "c", "context": "A story.", "question": "Why?", "answer0": "a",
                                        "answer1": "b", "answer2": "c", "answer3": "d", "label": 3},
                 ("A story.", "Why?", tuple("abcd"), "3")),
    "hellaswag": ("Rowan/hellaswag:", {"ind": 4, "activity_label": "Cooking", "ctx_a": "He cooks.", "ctx_b": "he",
                                       "ctx": "He cooks. he", "endings": ["eats.", "runs.", "sits.", "naps."],
                                       "source_id": "s", "split": "val", "split_type": "indomain", "label": "2"},
                  ("He cooks. he", None, ("eats.", "runs.", "sits.", "naps."), "2")),
    "siqa": ("allenai/social_i_qa:", {"context": "Jan cooked for friends.", "question": "Why did Jan do this?",
                                      "answerA": "to be kind", "answerB": "to sleep", "answerC": "to leave",
                                      "label": "1"},
             ("Jan cooked for friends.", "Why did Jan do this?", ("to be kind", "to sleep", "to leave"), "A")),
}


@pytest.mark.integration  # end to end on committed files: seconds each, too slow for the unit tier
def test_every_intermediate_task_reads_its_hub_dataset_from_local_files_of_its_schema(tmp_path):
    from datasets import Dataset

    folder = tmp_path / "hub"
    for config, row, _ in HUB_ROWS.values():
        test_split = "validation_matched" if config.endswith("mnli") else "validation"
        for split, count in (("train", 10), (test_split, 3)):
            rows = [{**row, **({"idx": i} if "idx" in row else {})} for i in range(count)]
            (folder / config).mkdir(parents=True, exist_ok=True)
            Dataset.from_list(rows).to_parquet(str(folder / config / f"{split}.parquet"))

    hub = DataSource.hub(_parquet_loader(folder, tmp_path / "hf"))
    for task, (config, _, expected) in HUB_ROWS.items():
        splits = available_languages(task, hub)["en"]  # identical rows: one text group, so all of it is train
        assert splits == {"train": 10, "test": 3}, task
        example = load_examples(task, "en", "test", hub)[0]
        assert (example.text, example.text_pair, example.choices, example.label) == expected, task
        assert example.source.startswith(config.replace(":", " ").strip() + " (validation")
    unlabeled = DataSource.hub(lambda config, split: [{**HUB_ROWS["cb"][1], "label": -1}])
    with pytest.raises(DataError, match=r"aps/super_glue cb \(train\) row:1: unexpected value: label should be an "
                                        r"index below 3, not -1 \(an unlabeled row\?\)"):
        load_examples("cb", "en", "train", unlabeled)
    with pytest.raises(DataError, match=r"cannot load Rowan/hellaswag \(validation\): no Rowan/hellaswag: test"):
        load_examples("hellaswag", "en", "test", DataSource.hub(lambda config, split: hub.loader(config, "test")))
