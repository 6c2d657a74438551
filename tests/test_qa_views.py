"""What the app shows of question answering, in the library: the per-question predictions every QA evaluation
keeps (dlfa.engine.qa_evaluate), read back with their contexts and outcomes (dlfa.analysis.examples,
qa_examples), the paired comparison of two QA runs, W per token over question + context and the attribution of
the predicted answer's start and end. A tiny random encoder with a DLFA span head on the fixture root's XQuAD."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import torch

from dlfa.analysis import examples, qa_examples
from dlfa.data.registry import DataSource, get_task, load_examples
from dlfa.engine.evaluate import predictions_path
from dlfa.results import COMPLETED, RunResult

QUESTION = "Who wrote the letter?"
CONTEXT = "The letter was written by Anna Berg in Vienna. It reached Paris a year later."


@pytest.fixture(scope="module")
def qa_model(tiny_encoder):
    """A DLFA (fusion layer 2) span model on the tiny encoder, random head, and its tokenizer."""
    from transformers import AutoTokenizer

    from dlfa.model.modeling import DlfaConfig, DlfaModel, HeadConfig

    torch.manual_seed(3)
    model = DlfaModel.from_encoder_spec(DlfaConfig(tiny_encoder, {"xquad": HeadConfig("qa", [])}, "dlfa", 2))
    return model.eval(), AutoTokenizer.from_pretrained(tiny_encoder)


@pytest.fixture(scope="module")
def german_questions(fixture_root):
    return load_examples(get_task("xquad"), "de", "test", DataSource.resolve(fixture_root))


def evaluate_into(folder, model, tokenizer, questions, language="de"):
    from dlfa.data.qa_features import encode_qa
    from dlfa.engine.qa_evaluate import evaluate_qa

    windows = encode_qa(questions, tokenizer, max_length=160, doc_stride=46).features
    return evaluate_qa(model, questions, windows, tokenizer.pad_token_id, torch.device("cpu"), task="xquad",
                       bootstrap_samples=50, predictions_file=predictions_path(folder, language))


def qa_run(fixture_root) -> RunResult:
    return RunResult({"task": "xquad", "aggregations": ["dlfa"], "fusion_layers": [2], "seeds": [1],
                      "data_root": str(fixture_root)}, COMPLETED)


def test_a_qa_evaluation_keeps_every_questions_prediction_with_its_span_em_and_f1(
        qa_model, german_questions, fixture_root, tmp_path):
    from dlfa.engine.qa_metrics import question_scores

    model, tokenizer = qa_model
    scores, answers = evaluate_into(tmp_path, model, tokenizer, german_questions)
    with gzip.open(predictions_path(tmp_path, "de"), "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    assert [row["id"] for row in rows] == [q.id for q in german_questions] and len(rows) == 21
    expected = question_scores(german_questions, answers)
    for row, question, (em, f1) in zip(rows, german_questions, expected):
        assert row["question"] == question.question and row["gold"] == [a.text for a in question.answers]
        assert row["gold_starts"] == [a.start for a in question.answers]
        assert row["pred"] == answers[question.id] and row["pred"]  # a random head still picks some span
        assert question.context[row["pred_start"]:row["pred_end"]] == row["pred"]
        assert (row["exact_match"], row["f1"]) == (int(em), pytest.approx(f1, abs=1e-5))
    assert scores["span_f1"]["value"] == pytest.approx(100 * np.mean([row["f1"] for row in rows]), abs=1e-3)

    data = examples.load_language(qa_run(fixture_root), tmp_path, "de")
    table = data.table
    assert data.kind == "qa" and data.with_text and len(table) == 21
    assert list(table["context"]) == [q.context for q in german_questions]
    assert table["outcome"].isin(qa_examples.OUTCOMES).all()
    assert ((table["outcome"] == "exact") == (table["exact_match"] == 1)).all()
    assert ((table["outcome"] == "wrong") == (table["f1"] == 0)).all()
    counts = [len(examples.filter_examples(data, outcome=o)) for o in qa_examples.OUTCOMES]
    assert sum(counts) == 21 and counts[0] == int(table["exact_match"].sum())


def test_qa_predictions_of_other_questions_are_refused(qa_model, german_questions, fixture_root, tmp_path):
    model, tokenizer = qa_model
    evaluate_into(tmp_path, model, tokenizer, german_questions[::-1])
    with pytest.raises(examples.DataError, match="question 1 is"):
        examples.load_language(qa_run(fixture_root), tmp_path, "de")


def write_rows(folder, rows: list[tuple[str, str, int, float]]) -> None:
    """(id, predicted text, EM, F1 0-1) per question, gold 'Anna' at 0."""
    path = predictions_path(folder, "de")
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for qa_id, pred, em, f1 in rows:
            handle.write(json.dumps({"id": qa_id, "question": "q", "gold": ["Anna"], "gold_starts": [0],
                                     "pred": pred, "pred_start": 0, "pred_end": len(pred), "exact_match": em,
                                     "f1": f1}) + "\n")


def test_two_qa_runs_are_paired_on_em_with_mcnemar_and_on_f1_with_the_bootstrap(tmp_path):
    rng = np.random.default_rng(0)
    ids = [f"q{i}" for i in range(120)]
    em_a, em_b = rng.random(120) < 0.3, rng.random(120) < 0.7
    f1_a = np.where(em_a, 1.0, rng.random(120) * 0.6)
    f1_b = np.where(em_b, 1.0, rng.random(120) * 0.6)
    write_rows(tmp_path / "a", [(i, "x", int(e), float(f)) for i, e, f in zip(ids, em_a, f1_a)])
    write_rows(tmp_path / "b", [(i, "x", int(e), float(f)) for i, e, f in zip(ids, em_b, f1_b)])
    run = RunResult({"task": "xquad", "aggregations": ["last"], "seeds": [1], "data_root": None}, COMPLETED)
    a, b = (examples.load_language(run, tmp_path / side, "de") for side in "ab")
    assert not a.with_text
    exact, f1 = examples.compare_languages(a, b, samples=400)
    assert (exact.metric, exact.test, f1.metric, f1.test) == ("exact_match", "McNemar exact", "span_f1",
                                                              "paired bootstrap")
    for c in (exact, f1):
        assert c.fixed + c.broken + c.both_correct + c.both_wrong == c.n == 120
        assert c.delta_low <= c.delta <= c.delta_high and c.delta > 0 and c.p_value < 0.01
    assert (exact.fixed, exact.broken) == (int((em_b & ~em_a).sum()), int((em_a & ~em_b).sum()))
    assert exact.p_value == examples.mcnemar_exact(exact.fixed, exact.broken)
    assert exact.value_a == pytest.approx(100 * em_a.mean()) and f1.value_b == pytest.approx(100 * f1_b.mean())
    assert exact.both_correct == int((em_a & em_b).sum())
    assert len(examples.changed_examples(a, b, "fixed")) == exact.fixed
    same = examples.compare_qa(a, a, samples=100)
    assert all(c.delta == 0 and c.p_value == 1.0 and c.fixed == c.broken == 0 for c in same)
    frame = examples.comparison_frame([exact, f1])
    assert list(frame["metric"]) == ["exact_match", "span_f1"]


def test_qa_runs_on_other_questions_are_not_paired(tmp_path):
    write_rows(tmp_path / "a", [("q1", "x", 1, 1.0), ("q2", "x", 0, 0.0)])
    write_rows(tmp_path / "b", [("q2", "x", 1, 1.0), ("q1", "x", 0, 0.0)])
    run = RunResult({"task": "xquad", "aggregations": ["last"], "seeds": [1], "data_root": None}, COMPLETED)
    a, b = (examples.load_language(run, tmp_path / side, "de") for side in "ab")
    with pytest.raises(examples.DataError, match="different questions"):
        examples.compare_qa(a, b)


def test_context_pieces_mark_gold_and_predicted_characters():
    context = "The letter was written by Anna Berg in Vienna."
    gold = [(26, 35)]  # Anna Berg
    pieces = qa_examples.context_pieces(context, gold, (26, 30))  # predicted: Anna
    assert "".join(text for text, _, _ in pieces) == context
    assert [(t, g, p) for t, g, p in pieces if g or p] == [("Anna", True, True), (" Berg", True, False)]
    wrong = qa_examples.context_pieces(context, gold, (39, 45))
    assert ("Vienna", False, True) in wrong and ("Anna Berg", True, False) in wrong
    assert qa_examples.context_pieces(context, gold, None)[1] == ("Anna Berg", True, False)
    assert [qa_examples.outcome(1, 100.0), qa_examples.outcome(0, 40.0), qa_examples.outcome(0, 0.0)] == [
        "exact", "partial", "wrong"]


def test_fusion_weights_of_a_qa_model_tell_question_and_context_apart(qa_model):
    from dlfa.engine.evaluate import fusion_weights_for_text
    from dlfa.errors import ConfigError

    model, tokenizer = qa_model
    w = fusion_weights_for_text(model, tokenizer, (QUESTION, CONTEXT), task="xquad")
    segments, per_token = w["segments"], np.array(w["per_token_mean"])
    question_tokens = len(tokenizer(QUESTION, add_special_tokens=False)["input_ids"])
    context_tokens = len(tokenizer(CONTEXT, add_special_tokens=False)["input_ids"])
    assert segments.count("question") == question_tokens and segments.count("context") == context_tokens
    assert len(segments) == len(w["tokens"]) == len(per_token) and segments[0] is None
    assert segments.index("context") > max(i for i, s in enumerate(segments) if s == "question")
    for name in ("question", "context"):
        mask = np.array([s == name for s in segments])
        assert w["segment_means"][name] == pytest.approx(per_token[mask].mean(), abs=1e-6)
    assert ((per_token > 0) & (per_token < 1)).all()
    with pytest.raises(ConfigError, match="needs a question and a context"):
        fusion_weights_for_text(model, tokenizer, (QUESTION, ""), task="xquad")


def test_attribution_of_a_qa_answer_explains_its_start_and_end_logits(qa_model):
    from dlfa.analysis.explain import integrated_gradients

    model, tokenizer = qa_model
    result = integrated_gradients(model, tokenizer, QUESTION, task="xquad", text_pair=CONTEXT, steps=16)
    assert CONTEXT[result.answer_start:result.answer_end] == result.answer and result.answer
    assert len(result.start_scores) == len(result.end_scores) == len(result.tokens) == len(result.segments)
    assert result.segments[result.start_position] == result.segments[result.end_position] == "context"
    assert result.start_position <= result.end_position and not result.truncated
    enc = tokenizer(QUESTION, CONTEXT, return_tensors="pt", return_special_tokens_mask=True)
    baseline = torch.where(enc["special_tokens_mask"].bool(), enc["input_ids"], tokenizer.pad_token_id)
    with torch.no_grad():
        real = model(enc["input_ids"], enc["attention_mask"], task="xquad")
        empty = model(baseline, enc["attention_mask"], task="xquad")
    for scores, delta, logits, position in (
            (result.start_scores, result.start_delta, "start_logits", result.start_position),
            (result.end_scores, result.end_delta, "end_logits", result.end_position)):
        change = float(getattr(real, logits)[0, position] - getattr(empty, logits)[0, position])
        assert sum(scores) - delta == pytest.approx(change, abs=1e-3)  # completeness, up to the delta
        assert abs(delta) < 0.05 * max(abs(change), 1.0)
    assert result.start_scores != result.end_scores
