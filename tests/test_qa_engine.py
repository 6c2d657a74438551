"""Extractive QA wired into the registry, the model and the engine: xquad and mlqa as tasks, the span head on
every aggregation, training and zero-shot evaluation with EM / F1 per language."""
import json

import pytest

from dlfa.data.registry import DataSource, available_languages, get_task, load_examples, task_source


def test_registry_lists_the_qa_tasks_with_the_paragraph_split(data_root):
    source = DataSource.resolve(data_root)
    xquad = available_languages("xquad", source)
    assert get_task("xquad").kind == "qa" and get_task("mlqa").metric == "span_f1"
    assert xquad["en"] == {"train": 716, "dev": 120, "test": 354}
    assert set(xquad) == {"ar", "de", "el", "en", "es", "ro", "ru", "tr", "vi", "zh"}
    assert all(splits == {"test": 354} for language, splits in xquad.items() if language != "en")
    mlqa = available_languages("mlqa", source)
    assert mlqa["en"] == {"train": 689, "dev": 115, "test": 344} and set(mlqa) == {"en", "ar", "de", "es", "vi", "zh"}
    assert task_source("xquad", source) == "qa/xquad" and task_source("mlqa", source) == "qa/mlqa_dev"
    german = load_examples("mlqa", "de", "test", source)
    assert {(e.language, e.question_language) for e in german} == {("de", "de")}
    train_paragraphs = {e.paragraph_id for e in load_examples("xquad", "en", "train", source)}
    assert not train_paragraphs & {e.paragraph_id for e in load_examples("xquad", "zh", "test", source)}


def test_data_list_shows_the_qa_tasks(data_root, capsys):
    from dlfa.cli.main import main

    assert main(["data", "list", "--data-root", str(data_root), "--task", "xquad", "--task", "mlqa"]) == 0
    out = capsys.readouterr().out
    assert "xquad (question answering, span_f1)" in out and "en train 716 dev 120 test 354; ar test 354" in out
    assert "mlqa (question answering, span_f1)" in out and "en train 689 dev 115 test 344" in out
    assert main(["data", "list", "--data-root", str(data_root), "--json", "--task", "mlqa"]) == 0
    row = json.loads(capsys.readouterr().out)["tasks"][0]
    assert row["family"] == "question answering" and row["languages"]["zh"] == {"test": 161}


@pytest.fixture(scope="module")
def tiny_loaded(tiny_encoder):
    """The tiny encoder loaded once for the module (each model below puts its own head on it)."""
    from dlfa.model.encoders import load_encoder

    return load_encoder(tiny_encoder).model


@pytest.mark.parametrize("aggregation, fusion_layer", [("last", None), ("dlfa", 0), ("dlfa", 2), ("mean", 1),
                                                       ("concat", 3), ("scalar-mix", None)])
def test_span_head_on_every_aggregation(tiny_encoder, tiny_loaded, aggregation, fusion_layer):
    import torch

    from dlfa.model.modeling import DlfaConfig, DlfaModel, HeadConfig
    from dlfa.model.qa_head import SpanHead

    config = DlfaConfig(tiny_encoder, {"xquad": HeadConfig("qa", [])}, aggregation, fusion_layer)
    model = DlfaModel(config, tiny_loaded)
    assert isinstance(model.heads["xquad"], SpanHead)
    input_ids = torch.randint(5, 100, (3, 12))
    attention_mask = torch.ones(3, 12, dtype=torch.long)
    attention_mask[2, 9:] = 0
    starts, ends = torch.tensor([1, 0, 4]), torch.tensor([3, 0, 6])
    out = model(input_ids, attention_mask, start_positions=starts, end_positions=ends)
    assert out.start_logits.shape == out.end_logits.shape == (3, 12) and out.logits.shape == (3, 12, 2)
    assert torch.equal(out.logits[..., 0], out.start_logits) and torch.equal(out.logits[..., 1], out.end_logits)
    assert (out.start_logits[2, 9:] < -1e30).all()  # padding is never an answer
    assert out.loss.ndim == 0 and out.loss.item() > 0
    out.loss.backward()
    assert model.heads["xquad"].qa_outputs.weight.grad.abs().sum() > 0
    assert (out.fusion_weights is not None) == (aggregation == "dlfa")


def test_a_saved_span_head_model_reloads_with_the_same_logits(tiny_encoder, tmp_path):
    import torch

    from dlfa.model.modeling import DlfaConfig, DlfaModel, HeadConfig

    model = DlfaModel.from_encoder_spec(DlfaConfig(tiny_encoder, {"xquad": HeadConfig("qa", [])}, "dlfa", 2)).eval()
    input_ids, attention_mask = torch.randint(5, 100, (3, 12)), torch.ones(3, 12, dtype=torch.long)
    reloaded = DlfaModel.from_pretrained(model.save_pretrained(tmp_path / "saved")).eval()
    with torch.no_grad():
        expected = model(input_ids, attention_mask).start_logits
        assert torch.allclose(reloaded(input_ids, attention_mask).start_logits, expected)


def _train_qa(args: list[str], out) -> dict:
    from dlfa.cli.main import main

    assert main(["train", *args, "--train-lang", "en", "--aggregation", "dlfa", "--fusion-layer", "2",
                 "--batch-size", "8", "--max-length", "160", "--seed", "1", "--out", str(out)]) == 0
    return json.loads((out / "results.json").read_text())


def test_train_xquad_reports_em_and_f1_per_language(data_root, tiny_encoder, tmp_path):
    from dlfa.results import read_run_results

    job = _train_qa(["--task", "xquad", "--encoder", tiny_encoder, "--eval-langs", "de,zh", "--data-root",
                     str(data_root), "--max-train-examples", "48", "--max-steps", "3"], tmp_path / "xquad")
    run = read_run_results(tmp_path / "xquad" / "dlfa-L2-s1" / "results.json")
    assert run.dev_metric == "span_f1" and run.dev_score is not None
    assert set(job["metrics"]) == {"de", "zh"} and set(run.extra["exact_match"]) == {"de", "zh"}
    for language in ("de", "zh"):
        f1, em = run.metrics[language], run.extra["exact_match"][language]
        assert (f1.metric, em["metric"]) == ("span_f1", "exact_match") and f1.n == em["n"] == 354
        assert f1.ci_low <= f1.value <= f1.ci_high and em["ci_low"] <= em["value"] <= em["ci_high"]
        assert 0 < f1.value <= 100 and em["value"] <= f1.value  # a wrong span still shares tokens: F1 > 0
    assert run.extra["fusion_stats"]["fusion_layer"] == 2


@pytest.mark.parametrize("task", ["xquad", "mlqa"])
def test_qa_end_to_end_on_the_fixture_root(fixture_root, tiny_encoder, tmp_path, task):
    """Made-up paragraphs of three clauses, each question asking for one clause's subject: a tiny random encoder
    trained 8 epochs learns where a subject is (at least the first clause's: EM 33% on English), and every
    language gets EM and F1 with intervals over its 21 test questions."""
    from dlfa.results import read_run_results

    job = _train_qa(["--task", task, "--encoder", tiny_encoder, "--eval-langs", "en,de", "--data-root",
                     str(fixture_root), "--epochs", "8", "--lr", "1e-3"], tmp_path / task)
    run = read_run_results(tmp_path / task / "dlfa-L2-s1" / "results.json")
    assert job["runs"][0]["spec"]["task"] == task and run.spec["max_length"] == 160
    dev_curve = [score for _, score in run.extra["convergence"]["dev_curve"]]
    assert dev_curve[0] < 20 and run.dev_score >= 30 and run.dev_score == max(dev_curve)  # learned
    english, english_em = run.metrics["en"], run.extra["exact_match"]["en"]
    assert english.n == english_em["n"] == 21 and english.value >= 30 and english_em["value"] >= 30
    german = run.metrics["de"]
    assert german.metric == "span_f1" and german.n == 21 and german.ci_low <= german.value <= german.ci_high
    assert run.extra["exact_match"]["de"]["value"] <= german.value


@pytest.mark.integration  # end to end on committed files: seconds each, too slow for the unit tier
def test_qa_refuses_a_probe_and_too_short_windows_with_one_line(fixture_root, tiny_encoder, tmp_path, capsys):
    from transformers import AutoTokenizer

    from dlfa.cli.main import main
    from dlfa.engine.datasets import qa_doc_stride
    from dlfa.errors import ConfigError

    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder)
    assert qa_doc_stride(tokenizer, 384) == 128 and qa_doc_stride(tokenizer, 160) == 46  # (160 - 64 - 4) // 2
    with pytest.raises(ConfigError, match="max_length 64 is too short for question answering"):
        qa_doc_stride(tokenizer, 64)
    common = ["train", "--task", "xquad", "--encoder", tiny_encoder, "--fusion-layer", "1", "--eval-langs", "de",
              "--data-root", str(fixture_root), "--max-steps", "2"]
    assert main([*common, "--probe", "--out", str(tmp_path / "probe")]) != 0
    assert main([*common, "--max-length", "64", "--out", str(tmp_path / "short")]) != 0
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert errors == ["error: task xquad (question answering) cannot be probed: fine-tune it (no --probe)",
                      "error: max_length 64 is too short for question answering: a window keeps 64 question tokens; "
                      "use at least 96 (384 is usual)"]
