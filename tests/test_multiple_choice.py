"""Multiple-choice tasks (COPA / XCOPA, CommonsenseQA, Cosmos QA, HellaSwag): the head on a tiny config, the
readers and feature cache, B × C × T batches, a tiny fine-tune end to end on the fixture data root's COPA / XCOPA
files, and the real files' sizes (integration tier)."""
import gzip
import json

import numpy as np
import pytest
import torch

from dlfa.errors import ConfigError, DataError
from dlfa.model.modeling import DlfaConfig, DlfaModel, HeadConfig
from dlfa.data.base import Example, encode_examples
from dlfa.data.readers import read_csv, read_jsonl
from dlfa.data.registry import DataSource, get_task, load_encoded, load_examples
from dlfa.engine.batching import slice_bounds
from dlfa.engine.datasets import MultipleChoiceDataset
from tests.test_model import tiny_bert

B, C, T = 3, 4, 7
AGGREGATIONS = [("last", None), ("dlfa", 0), ("dlfa", 2), ("mean", 2), ("concat", 3), ("scalar-mix", None)]


def mc_model(aggregation="dlfa", fusion_layer=2, **kwargs):
    heads = {"mc": HeadConfig("multiple_choice", ["0", "1", "2", "3"])}
    return DlfaModel(DlfaConfig("unused", heads, aggregation, fusion_layer, **kwargs), tiny_bert())


def choice_batch():
    torch.manual_seed(1)
    ids = torch.randint(5, 99, (B, C, T))
    mask = torch.ones(B, C, T, dtype=torch.long)
    mask[0, 1, 5:] = 0
    return ids, mask


@pytest.mark.parametrize("aggregation,fusion_layer", AGGREGATIONS)
@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_the_head_scores_each_choice_on_any_aggregation(aggregation, fusion_layer, pooling):
    model = mc_model(aggregation, fusion_layer, pooling=pooling)
    ids, mask = choice_batch()
    labels = torch.tensor([0, 3, 1])
    out = model(ids, mask, task="mc", labels=labels)
    assert out.logits.shape == (B, C)
    assert torch.isclose(out.loss, torch.nn.functional.cross_entropy(out.logits, labels))
    if aggregation == "dlfa":
        assert out.fusion_weights.shape == (B * C, T, 32)
    out.loss.backward()
    assert model.heads["mc"].weight.grad.abs().sum() > 0 and model.heads["mc"].weight.shape == (1, 32)


def test_each_choice_is_scored_alone_as_one_flat_sequence():
    """A choice's score is the head on its own (context, choice) sequence: the same as running it flat."""
    model = mc_model("last", None).eval()
    ids, mask = choice_batch()
    scores = model(ids, mask, task="mc").logits
    flat = model.classify(model.encode(ids.flatten(0, 1), mask.flatten(0, 1)), mask.flatten(0, 1), "mc").logits
    assert torch.allclose(scores, flat.view(B, C), atol=1e-6)
    one_ids, one_mask = ids[2, 1:2], mask[2, 1:2]  # row 2, choice 1, computed by itself
    alone = model.heads["mc"](model.pool(model.aggregation(model.encode(one_ids, one_mask), one_mask).sequence, one_mask))
    assert torch.allclose(alone.view(-1)[0], scores[2, 1], atol=1e-6)


def test_a_multiple_choice_model_saves_and_reloads(tmp_path):
    model = mc_model().eval()
    ids, mask = choice_batch()
    model.save_pretrained(tmp_path)
    again = DlfaModel.from_pretrained(tmp_path, encoder=tiny_bert()).eval()  # frozen embeddings reload from it
    assert torch.allclose(model(ids, mask).logits, again(ids, mask).logits, atol=1e-6)


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_readers_give_a_context_a_question_and_the_choices(tmp_path):
    copa = _write(tmp_path / "copa.jsonl", [json.dumps({"premise": "It rained.", "choice1": "Sun.", "choice2": "Wet.",
                                                        "question": "effect", "label": 1, "idx": 2})])
    example = read_jsonl(copa, "copa", ("choice1", "choice2"))[0]
    assert (example.text, example.text_pair, example.choices, example.label) == (
        "It rained.", "What was the effect?", ("Sun.", "Wet."), "choice2")
    official = {"answerKey": "B", "id": "q1", "question": {"stem": "Where?", "choices": [
        {"label": "A", "text": "bank"}, {"label": "B", "text": "mall"}]}}
    hub = {"id": "q2", "question": "Where?", "choices": {"label": ["A", "B"], "text": ["bank", "mall"]},
           "answerKey": "A"}
    both = read_jsonl(_write(tmp_path / "csqa.jsonl", [json.dumps(official), json.dumps(hub)]), "commonsenseqa")
    assert [(e.text, e.choices, e.label, e.item_id) for e in both] == [
        ("Where?", ("bank", "mall"), "B", "q1"), ("Where?", ("bank", "mall"), "A", "q2")]
    cosmos = _write(tmp_path / "c.csv", ["id,context,question,answer0,answer1,answer2,answer3,label",
                                         'x1,"A story, with a comma.",Why?,a,b,c,d,2'])
    example = read_csv(cosmos, "cosmosqa", ("0", "1", "2", "3"))[0]
    assert (example.text, example.text_pair, example.choices, example.label, example.item_id) == (
        "A story, with a comma.", "Why?", ("a", "b", "c", "d"), "2", "x1")


def test_malformed_multiple_choice_rows_name_file_and_line(tmp_path):
    header = "id,context,question,answer0,answer1,answer2,answer3,label"
    with pytest.raises(DataError, match=r"c\.csv:3: unexpected value: label should be a choice index below 4, not '7'"):
        read_csv(_write(tmp_path / "c.csv", [header, "a,ctx,q,a,b,c,d,1", "b,ctx,q,a,b,c,d,7"]), "cosmosqa")
    with pytest.raises(DataError, match=r"d\.csv:2: expected 8 comma-separated columns as in the header, found 7"):
        read_csv(_write(tmp_path / "d.csv", [header, "a,ctx,q,a,b,c,1"]), "cosmosqa")
    bad_key = {"id": "q", "question": "Q?", "choices": {"label": ["A", "B"], "text": ["x", "y"]}, "answerKey": ""}
    with pytest.raises(DataError, match=r"q\.jsonl:1: unexpected value: answerKey '' is not one of the choices"):
        read_jsonl(_write(tmp_path / "q.jsonl", [json.dumps(bad_key)]), "commonsenseqa")
    with pytest.raises(DataError, match=r"p\.jsonl:1: unexpected value: question should be 'cause' or 'effect'"):
        read_jsonl(_write(tmp_path / "p.jsonl", [json.dumps({"premise": "P", "choice1": "a", "choice2": "b",
                                                              "question": "why", "label": 0})]), "copa")


def test_real_files_are_multiple_choice_tasks(data_root):
    source = DataSource.resolve(data_root)
    csqa = load_examples("commonsenseqa", "en", "train", source) + load_examples("commonsenseqa", "en", "dev", source)
    assert len(csqa) == 9741 and all(len(e.choices) == 5 for e in csqa)  # the full official train set
    assert len(load_examples("commonsenseqa", "en", "test", source)) == 1221
    turkish = load_examples("xcopa", "tr", "test", source)
    assert len(turkish) == 100 and {e.label for e in turkish} == {"choice1", "choice2"}
    cosmos = [e for split in ("train", "dev", "test") for e in load_examples("cosmosqa", "en", split, source)]
    assert len(cosmos) == 2985 and all(len(e.choices) == 4 and e.text_pair for e in cosmos)
    parts = {split: {e.text for e in load_examples("cosmosqa", "en", split, source)} for split in ("train", "test")}
    assert not parts["train"] & parts["test"]  # no context in two parts


def test_features_hold_one_sequence_per_choice_and_survive_the_cache(fixture_root, tiny_encoder, tmp_path, monkeypatch):
    from dlfa.model.encoders import load_tokenizer

    monkeypatch.setenv("DLFA_CACHE_DIR", str(tmp_path / "cache"))
    tokenizer = load_tokenizer(tiny_encoder)
    source = DataSource.resolve(fixture_root)
    task = get_task("xcopa")
    examples = load_examples(task, "et", "test", source, max_examples=5)
    fresh = encode_examples(examples, task, tokenizer, 64)
    assert len(fresh.features[0]["input_ids"]) == 2 and fresh.features[0]["labels"] == task.label_id(examples[0].label)
    assert tokenizer.decode(fresh.features[0]["input_ids"][1], skip_special_tokens=True).endswith(examples[0].choices[1])
    first = load_encoded(task, "et", "test", source, tokenizer, 64, max_examples=5)
    cached = load_encoded(task, "et", "test", source, tokenizer, 64, max_examples=5)
    assert first.features == cached.features == fresh.features
    dataset = MultipleChoiceDataset(cached, tokenizer.pad_token_id)
    batch = dataset.collate(np.array([3, 0]))
    width = max(len(ids) for i in (3, 0) for ids in cached.features[i]["input_ids"])
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (2, 2, width)
    assert batch["input_ids"][0, 1, : len(cached.features[3]["input_ids"][1])].tolist() == cached.features[3]["input_ids"][1]
    assert batch["labels"].tolist() == [cached.features[3]["labels"], cached.features[0]["labels"]]
    assert dataset.lengths.tolist() == [max(map(len, f["input_ids"])) for f in cached.features]
    assert slice_bounds(batch, max_tokens=4) == [(0, 2, width)]  # a question's choices are never cut apart
    with pytest.raises(DataError, match="3 choices, but task xcopa has 2"):
        encode_examples([Example(text="P", choices=("a", "b", "c"), label="choice1")], task, tokenizer, 64)


@pytest.mark.integration
def test_a_tiny_fine_tune_on_copa_learns_and_writes_xcopa_predictions(tiny_encoder, fixture_root, tmp_path):
    from dlfa.model.encoders import load_tokenizer
    from dlfa.engine.evaluate import predict_dataset
    from dlfa.engine.spec import JobSpec
    from dlfa.engine.job import run_job

    spec = JobSpec(task="xcopa", eval_languages=("et", "tr"), encoder=tiny_encoder, data_root=str(fixture_root),
                   fusion_layers=(2,), max_train_examples=16, max_eval_examples=20, batch_size=8, max_steps=30,
                   learning_rate=3e-3, bootstrap_samples=50, checkpoint_every=100)
    results = run_job(spec, tmp_path)
    unit = json.loads((tmp_path / "dlfa-L2-s1" / "results.json").read_text())
    assert results["status"] == "completed" and set(unit["metrics"]) == {"et", "tr"}
    for metrics in unit["metrics"].values():
        assert metrics["metric"] == "accuracy" and metrics["n"] == 20
        assert metrics["ci_low"] <= metrics["value"] <= metrics["ci_high"]
    losses = [loss for _, _, loss in unit["history"]["loss"]]
    assert len(losses) == 3 and losses[-1] < losses[0] * 0.9, losses  # the loss falls on the 16 training items
    rows = [json.loads(line) for line in gzip.open(tmp_path / "dlfa-L2-s1" / "predictions" / "tr.jsonl.gz", "rt")]
    gold = [e.label for e in load_examples("xcopa", "tr", "test", DataSource.resolve(fixture_root))]
    assert [row["gold"] for row in rows] == gold  # the test file's labels, in its order
    assert unit["metrics"]["tr"]["value"] == pytest.approx(100 * np.mean([r["pred"] == r["gold"] for r in rows]))
    assert all(0.5 <= row["confidence"] <= 1 for row in rows)  # the predicted choice's probability over 2
    model = DlfaModel.from_pretrained(tmp_path / "dlfa-L2-s1" / "model")
    assert model.config.heads["xcopa"].kind == "multiple_choice"
    tokenizer = load_tokenizer(tiny_encoder)
    train = load_encoded("xcopa", "en", "train", DataSource.resolve(fixture_root), tokenizer, spec.max_length, 16)
    gold, pred = predict_dataset(model, MultipleChoiceDataset(train, tokenizer.pad_token_id), torch.device("cpu"))
    assert np.mean(np.equal(gold, pred)) > 0.5  # above chance on the items it was trained on


def test_typed_text_refuses_a_multiple_choice_head():
    from dlfa.engine.evaluate import predict

    with pytest.raises(ConfigError, match="typed text is not supported for the multiple-choice task 'mc'"):
        predict(mc_model(), tokenizer=None, texts="a question")


def test_data_list_shows_family_languages_sizes_and_source(data_root, capsys):
    from dlfa.cli.main import main

    tasks = ["xcopa", "commonsenseqa", "hellaswag", "udpos", "sst2"]
    assert main(["data", "list", "--data-root", str(data_root), *[f"--task={t}" for t in tasks]]) == 0
    out = capsys.readouterr().out
    assert "xcopa (multiple choice, accuracy, intermediate)" in out and "  source: pair/xcopa_xtreme_style" in out
    assert "12 language(s): en train 360 dev 40 test 100; et test 100;" in out
    assert "commonsenseqa (multiple choice" in out and "en train 8,767 dev 974 test 1,221" in out
    assert "hellaswag (multiple choice, accuracy, intermediate)" in out
    assert f"  source: none in the data root {data_root.resolve()} (hub Rowan/hellaswag has it)" in out
    assert "udpos (tagging, accuracy)" in out and "  source: ud\n" in out
    assert "sst2 (classification, accuracy, intermediate)" in out
    assert main(["data", "list", "--data-root", str(data_root), "--json", "--task", "cosmosqa"]) == 0
    cosmos = json.loads(capsys.readouterr().out)["tasks"][0]
    assert (cosmos["family"], cosmos["source"], cosmos["languages"]) == (
        "multiple choice", "english/CosmosQA", {"en": {"train": 2391, "dev": 296, "test": 298}})


def test_an_uploaded_multiple_choice_file_is_read_and_a_wrong_choice_count_named(tmp_path, monkeypatch):
    from dlfa.engine import uploads

    monkeypatch.setenv("DLFA_CACHE_DIR", str(tmp_path / "cache"))
    rows = [{"text": "Der Mann fiel.", "text_pair": "What was the cause?", "choices": ["Er stolperte.", "Er aß."],
             "label": "choice1"}, {"text": "Es regnete.", "choices": ["Sonne.", "Nass."], "label": "choice2"}]
    data = "".join(json.dumps(row) + "\n" for row in rows).encode()
    upload = uploads.save_upload("xcopa-de.jsonl", data, "xcopa", "de")
    examples = uploads.load_uploaded_examples(upload)
    assert [(e.text_pair, e.choices, e.label) for e in examples] == [
        ("What was the cause?", ("Er stolperte.", "Er aß."), "choice1"), (None, ("Sonne.", "Nass."), "choice2")]
    three = data + json.dumps({"text": "T", "choices": ["a", "b", "c"], "label": "choice1"}).encode() + b"\n"
    with pytest.raises(DataError, match=r"^bad\.jsonl:3: 3 choices; xcopa has 2 \(choice1, choice2\)$"):
        uploads.save_upload("bad.jsonl", three, "xcopa", "de")
    with pytest.raises(DataError, match=r"takes \.jsonl files, not \.tsv"):
        uploads.save_upload("x.tsv", b"a\tb\n", "xcopa", "de")
