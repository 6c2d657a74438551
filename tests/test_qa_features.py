"""QA windows (sliding window with doc stride, gold token positions, offsets) and the way back from logits to
answer characters, with the embedded encoder's tokenizer (through the tiny encoder, which carries it)."""
import numpy as np
import pytest

from dlfa.data.qa import QaAnswer, QaExample, read_squad_json, xquad_files
from dlfa.data.qa_features import best_span, encode_qa, pad_windows, predict_spans
from dlfa.engine.qa_metrics import qa_scores_with_intervals, squad_normalize
from dlfa.errors import ConfigError


@pytest.fixture(scope="module")
def tokenizer(tiny_encoder):
    from dlfa.model.encoders import load_tokenizer

    return load_tokenizer(tiny_encoder)


FILLER = " ".join(f"Sentence number {n} says nothing about the question at all." for n in range(30))
ANSWER = "Marie Curie"
LONG_CONTEXT = f"{FILLER} The prize went to {ANSWER} in 1903. {FILLER}"
LONG = QaExample("q-long", "Who won the prize?", LONG_CONTEXT,
                 (QaAnswer(ANSWER, LONG_CONTEXT.index(ANSWER)),), "0.0", "en", "en")


def test_windows_slide_over_a_long_context_and_map_the_answer_back_exactly(tokenizer):
    encoded = encode_qa([LONG], tokenizer, max_length=64, doc_stride=16, max_question_tokens=16)
    windows = encoded.features
    assert len(windows) > 10 and all(len(w["input_ids"]) <= 64 for w in windows)
    assert {w["example_id"] for w in windows} == {"q-long"}
    with_answer = [w for w in windows if w["start_positions"] > 0]
    assert with_answer, "the answer is in no window"
    for window in with_answer:
        start, end = window["offsets"][window["start_positions"]][0], window["offsets"][window["end_positions"]][1]
        assert LONG_CONTEXT[start:end] == ANSWER
    for window in windows:
        if window["start_positions"] == 0:
            assert window["end_positions"] == 0
            covered = [span for span in window["offsets"] if span is not None]
            # no answer position: the answer is not wholly inside this window
            assert covered[0][0] > LONG.answers[0].start or covered[-1][1] < LONG.answers[0].end
        assert window["offsets"][0] is None  # <s>, the question and the separators map to no context character
        question_end = window["input_ids"].index(tokenizer.sep_token_id)
        assert all(span is None for span in window["offsets"][: question_end + 2])
    # neighbouring windows share doc_stride tokens, and together the windows cover every context character
    first_context = [[span for span in w["offsets"] if span is not None] for w in windows]
    assert first_context[0][-16:] == first_context[1][:16]
    covered = {i for spans in first_context for span in spans for i in range(*span)}
    assert covered >= {i for i, ch in enumerate(LONG_CONTEXT) if not ch.isspace()}


def test_long_questions_are_cut_and_counted(tokenizer):
    long_question = QaExample("q", "why " * 100 + "?", "Because.", (QaAnswer("Because", 0),), "0.0", "en", "en")
    encoded = encode_qa([long_question, LONG], tokenizer, max_length=64, doc_stride=16, max_question_tokens=16)
    assert encoded.truncated == 1
    first = encoded.features[0]
    assert first["input_ids"].index(tokenizer.sep_token_id) == 17  # <s> + 16 question tokens
    assert first["start_positions"] > 0


def test_windows_refuse_a_stride_without_room(tokenizer):
    with pytest.raises(ConfigError, match="fewer than doc_stride 48"):
        encode_qa([LONG], tokenizer, max_length=64, doc_stride=48, max_question_tokens=16)


@pytest.mark.parametrize("language, min_exact_match", [("en", 0.995), ("zh", 0.985)])
def test_gold_positions_on_real_xquad_map_back_to_the_answer(data_root, tokenizer, language, min_exact_match):
    """Every question has a window with its answer; the gold tokens' characters always contain the answer and,
    normalised, equal it for nearly all (a token such as '2015.' may carry a punctuation mark past it)."""
    examples = read_squad_json(xquad_files(data_root / "qa" / "xquad")[language], language)
    # windows of 160 tokens sharing 64, more than the longest answer (about 50 tokens)
    encoded = encode_qa(examples, tokenizer, max_length=160, doc_stride=64, max_question_tokens=32)
    by_id = {e.id: e for e in examples}
    found, equal, windows = set(), 0, 0
    for window in encoded.features:
        if window["start_positions"] == 0:
            continue
        example = by_id[window["example_id"]]
        start, end = window["offsets"][window["start_positions"]][0], window["offsets"][window["end_positions"]][1]
        answer = example.answers[0]
        assert start <= answer.start and end >= answer.end, (example.id, example.context[start:end], answer.text)
        found.add(example.id)
        windows += 1
        equal += squad_normalize(example.context[start:end]) == squad_normalize(answer.text)
    assert found == set(by_id)
    assert equal / windows >= min_exact_match
    assert len(encoded) > 1.5 * len(examples)  # 160-token windows: many contexts need several


def _logits(window: dict, start: int, end: int, high: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    starts, ends = np.zeros(len(window["input_ids"])), np.zeros(len(window["input_ids"]))
    starts[start], ends[end] = high, high
    return starts, ends


def test_best_span_keeps_valid_spans_only(tokenizer):
    window = encode_qa([LONG], tokenizer, max_length=512, doc_stride=128).features[0]
    gold_start, gold_end = window["start_positions"], window["end_positions"]
    starts, ends = _logits(window, gold_start, gold_end)
    assert best_span(LONG_CONTEXT, [window], [starts], [ends]).text == ANSWER
    starts[1], ends[1] = 50.0, 50.0  # a question token: not in the context, never predicted
    starts[gold_end + 3] = 15.0  # a start after the best end: with it, 25 > 20, but end < start
    assert best_span(LONG_CONTEXT, [window], [starts], [ends]).text == ANSWER
    ends[gold_end + 40] = 40.0  # longer than max_answer_tokens
    assert best_span(LONG_CONTEXT, [window], [starts], [ends], max_answer_tokens=30).text == ANSWER
    assert best_span(LONG_CONTEXT, [window], [starts], [ends], max_answer_tokens=60).end > LONG.answers[0].end
    padded = np.concatenate([starts, np.full(5, 99.0)])  # logits past the window's tokens are padding
    assert best_span(LONG_CONTEXT, [window], [padded], [np.concatenate([ends, np.full(5, 99.0)])]).text == ANSWER
    assert best_span(LONG_CONTEXT, [], [], []).text == ""


def test_predict_spans_takes_the_best_window(tokenizer):
    windows = encode_qa([LONG], tokenizer, max_length=64, doc_stride=16, max_question_tokens=16).features
    starts, ends = [], []
    for window in windows:
        if window["start_positions"]:
            s, e = _logits(window, window["start_positions"], window["end_positions"], high=5.0)
        else:  # a confident wrong span elsewhere, but less confident than the gold one
            first_context = window["offsets"].index(next(span for span in window["offsets"] if span is not None))
            s, e = _logits(window, first_context, first_context, high=4.0)
        starts.append(s)
        ends.append(e)
    (span,) = predict_spans([LONG], windows, starts, ends).values()
    assert span.text == ANSWER == LONG.context[span.start:span.end]


def test_oracle_logits_score_full_marks_on_real_xquad(data_root, tokenizer):
    """encode -> logits at the gold positions -> predict_spans -> EM / F1: the round trip loses only what the
    tokenizer's token boundaries cost."""
    examples = read_squad_json(xquad_files(data_root / "qa" / "xquad")["en"], "en")[:300]
    encoded = encode_qa(examples, tokenizer)
    logits = [_logits(w, w["start_positions"], w["end_positions"]) if w["start_positions"] else
              (np.zeros(len(w["input_ids"])), np.zeros(len(w["input_ids"]))) for w in encoded.features]
    spans = predict_spans(examples, encoded.features, [s for s, _ in logits], [e for _, e in logits])
    predictions = {qa_id: span.text for qa_id, span in spans.items()}
    scores = qa_scores_with_intervals(examples, predictions, "squad", samples=200)
    assert scores["exact_match"]["value"] >= 99.0 and scores["span_f1"]["value"] >= 99.5
    assert scores["exact_match"]["n"] == 300


def test_pad_windows_makes_a_batch(tokenizer):
    short = QaExample("q-short", "Who?", "Marie Curie won.", (QaAnswer("Marie Curie", 0),), "0.0", "en", "en")
    windows = encode_qa([short, LONG], tokenizer, max_length=64, doc_stride=16, max_question_tokens=16).features[:3]
    batch = pad_windows(windows, tokenizer.pad_token_id)
    lengths = [len(w["input_ids"]) for w in windows]
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (3, max(lengths)) and lengths[0] < max(lengths)
    assert batch["attention_mask"].sum(1).tolist() == lengths
    assert batch["input_ids"][0, : lengths[0]].tolist() == windows[0]["input_ids"]
    assert (batch["input_ids"][0, lengths[0] :] == tokenizer.pad_token_id).all()
    assert batch["start_positions"].tolist() == [w["start_positions"] for w in windows]
    assert batch["end_positions"].tolist() == [w["end_positions"] for w in windows]
    assert batch["start_positions"][0] > 0  # the short context's answer
    assert ("token_type_ids" in batch) == ("token_type_ids" in windows[0])
