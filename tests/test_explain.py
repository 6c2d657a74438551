"""Integrated gradients on a tiny DLFA model: completeness (small delta), determinism, every head kind."""
import pytest
import torch

from dlfa.model.encoders import load_encoder
from dlfa.errors import ConfigError
from dlfa.analysis.explain import integrated_gradients
from dlfa.model.modeling import DlfaConfig, DlfaModel, HeadConfig


@pytest.fixture(scope="module")
def tiny_model(tiny_encoder):
    loaded = load_encoder(tiny_encoder)
    heads = {"sentiment": HeadConfig("sentence", ["negative", "positive"]),
             "nli": HeadConfig("pair", ["entailment", "neutral", "contradiction"]),
             "pos": HeadConfig("token", ["NOUN", "VERB", "DET"])}
    torch.manual_seed(0)
    model = DlfaModel(DlfaConfig(encoder=tiny_encoder, heads=heads, aggregation="dlfa", fusion_layer=2), loaded.model)
    return model.eval(), loaded.tokenizer


def _logits(model, tokenizer, *texts, task, position=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (num_labels,) of the input and of its all-PAD baseline, at `position` for a token task."""
    enc = tokenizer(*texts, return_tensors="pt", return_special_tokens_mask=True)
    special = enc["special_tokens_mask"].bool()
    baseline = torch.where(special, enc["input_ids"], torch.full_like(enc["input_ids"], tokenizer.pad_token_id))
    with torch.no_grad():
        values = [model(ids, enc["attention_mask"], task=task).logits[0] for ids in (enc["input_ids"], baseline)]
    return tuple(v[position] for v in values) if position is not None else tuple(values)


def _logit_difference(model, tokenizer, attribution, *texts, task, position=None):
    """f(input) − f(baseline) for the attribution's target, computed independently of captum."""
    target = model.config.heads[task].labels.index(attribution.target)
    logits, baseline = _logits(model, tokenizer, *texts, task=task, position=position)
    return float(logits[target] - baseline[target])


def _assert_prediction(model, tokenizer, attribution, *texts, task, position=None):
    """The attribution's predicted label and probabilities are the model's own softmax, computed here."""
    probabilities = torch.softmax(_logits(model, tokenizer, *texts, task=task, position=position)[0], dim=-1)
    labels = model.config.heads[task].labels
    assert attribution.predicted == labels[int(probabilities.argmax())]
    assert attribution.probability == pytest.approx(float(probabilities.max()), abs=1e-5)
    assert attribution.target_probability == pytest.approx(float(probabilities[labels.index(attribution.target)]),
                                                           abs=1e-5)


def test_sentence_completeness_and_determinism(tiny_model):
    model, tokenizer = tiny_model
    first = integrated_gradients(model, tokenizer, "The film was wonderful.", task="sentiment", steps=64)
    again = integrated_gradients(model, tokenizer, "The film was wonderful.", task="sentiment", steps=64)
    assert first == again
    assert len(first.tokens) == len(first.scores) and first.tokens[0] == "<s>" and first.tokens[-1] == "</s>"
    assert abs(first.delta) < 0.05
    expected = _logit_difference(model, tokenizer, first, "The film was wonderful.", task="sentiment")
    assert sum(first.scores) == pytest.approx(expected, abs=0.05)
    assert first.target == first.predicted  # the default target is the prediction
    _assert_prediction(model, tokenizer, first, "The film was wonderful.", task="sentiment")
    assert first.to_dict()["scores"] == first.scores


def test_pair_with_explicit_target(tiny_model):
    model, tokenizer = tiny_model
    result = integrated_gradients(model, tokenizer, "A man sleeps.", task="nli", text_pair="Nobody sleeps.",
                                  target=2, steps=64)
    assert result.target == "contradiction" and abs(result.delta) < 0.05
    expected = _logit_difference(model, tokenizer, result, "A man sleeps.", "Nobody sleeps.", task="nli")
    assert sum(result.scores) == pytest.approx(expected, abs=0.05)
    _assert_prediction(model, tokenizer, result, "A man sleeps.", "Nobody sleeps.", task="nli")
    with pytest.raises(ConfigError, match="text_pair"):
        integrated_gradients(model, tokenizer, "A man sleeps.", task="nli")


def test_token_task_explains_one_word(tiny_model):
    model, tokenizer = tiny_model
    result = integrated_gradients(model, tokenizer, "the dog barks", task="pos", word_index=2, steps=64)
    assert result.word_index == 2 and result.tokens[result.position] == "▁bar"  # "barks" = "▁bar" + "ks"
    assert abs(result.delta) < 0.05 and result.target == result.predicted
    expected = _logit_difference(model, tokenizer, result, "the dog barks", task="pos", position=result.position)
    assert sum(result.scores) == pytest.approx(expected, abs=0.05)
    _assert_prediction(model, tokenizer, result, "the dog barks", task="pos", position=result.position)
    with pytest.raises(ConfigError, match="word 5"):
        integrated_gradients(model, tokenizer, "the dog barks", task="pos", word_index=5)
