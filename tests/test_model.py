"""DlfaModel on a tiny random BERT: shapes, losses, gradients, save/load."""
import pytest
import torch
from transformers import BertConfig, BertModel

from dlfa.errors import ConfigError, DlfaError
from dlfa.model.modeling import DlfaConfig, DlfaModel, HeadConfig
from dlfa.data.base import IGNORE_INDEX
from dlfa.testing import TINY_CONFIG

B, T = 2, 6
HEADS = {"pos": HeadConfig("token", ["NOUN", "VERB", "X"]), "nli": HeadConfig("pair", ["e", "n", "c"])}


def tiny_bert(seed=0):
    torch.manual_seed(seed)
    return BertModel(BertConfig(vocab_size=99, **TINY_CONFIG), add_pooling_layer=False)


def make_model(aggregation="dlfa", fusion_layer=1, **kwargs):
    config = DlfaConfig(encoder="unused", heads=HEADS, aggregation=aggregation, fusion_layer=fusion_layer, **kwargs)
    return DlfaModel(config, tiny_bert())


def batch():
    input_ids = torch.randint(5, 99, (B, T))
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, 4:] = 0
    return input_ids, mask


@pytest.mark.parametrize("aggregation", ["last", "dlfa", "mean", "concat", "scalar-mix"])
def test_logit_shapes_per_task_kind(aggregation):
    model = make_model(aggregation, fusion_layer=None if aggregation in ("last", "scalar-mix") else 2)
    ids, mask = batch()
    token = model(ids, mask, task="pos")
    pair = model(ids, mask, task="nli")
    assert token.logits.shape == (B, T, 3) and pair.logits.shape == (B, 3)
    assert (token.fusion_weights is not None) == (aggregation == "dlfa")
    if aggregation == "dlfa":
        assert token.fusion_weights.shape == (B, T, 32)


def test_token_loss_ignores_unlabelled_positions():
    model = make_model().eval()
    ids, mask = batch()
    labels = torch.full((B, T), IGNORE_INDEX)
    labels[:, 1] = 0
    out = model(ids, mask, task="pos", labels=labels)
    expected = torch.nn.functional.cross_entropy(out.logits[:, 1], labels[:, 1])
    assert torch.isclose(out.loss, expected)


def test_gradients_reach_encoder_fusion_and_head():
    model = make_model()
    ids, mask = batch()
    model(ids, mask, task="nli", labels=torch.tensor([0, 2])).loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters() if p.requires_grad}
    for prefix in ("encoder.encoder.layer.0.", "aggregation.local_branch.", "aggregation.global_branch.", "heads.nli."):
        assert any(g is not None and g.abs().sum() > 0 for n, g in grads.items() if n.startswith(prefix)), prefix
    assert model.encoder.get_input_embeddings().weight.grad is None  # frozen by default


def test_word_embeddings_train_when_not_frozen():
    model = make_model(freeze_word_embeddings=False)
    ids, mask = batch()
    model(ids, mask, task="nli", labels=torch.tensor([0, 2])).loss.backward()
    assert model.encoder.get_input_embeddings().weight.grad is not None


def test_unknown_task_head_is_refused():
    ids, mask = batch()
    with pytest.raises(ConfigError, match="no head for task 'ner'"):
        make_model()(ids, mask, task="ner")


def test_fusion_layer_out_of_range_is_refused():
    with pytest.raises(ConfigError, match="0…3"):
        make_model(fusion_layer=4)


@pytest.mark.integration
def test_save_load_round_trip_gives_identical_outputs(tmp_path, tiny_encoder):
    config = DlfaConfig(encoder=tiny_encoder, heads=HEADS, aggregation="dlfa", fusion_layer=2)
    model = DlfaModel.from_encoder_spec(config)
    ids, mask = batch()
    model(ids, mask, task="pos")  # one training-mode pass moves BatchNorm running stats
    model.eval()
    model.save_pretrained(tmp_path)
    assert not list(tmp_path.glob("*.pkl")) and not list(tmp_path.glob("*.bin"))
    reloaded = DlfaModel.from_pretrained(tmp_path).eval()
    for task in HEADS:
        assert torch.equal(model(ids, mask, task=task).logits, reloaded(ids, mask, task=task).logits)


@pytest.mark.integration
def test_loading_a_corrupted_checkpoint_names_the_file(tmp_path, tiny_encoder):
    config = DlfaConfig(encoder=tiny_encoder, heads=HEADS, aggregation="last")
    DlfaModel.from_encoder_spec(config).save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(DlfaError, match="model.safetensors"):
        DlfaModel.from_pretrained(tmp_path)
    with pytest.raises(DlfaError, match="holds no saved model"):
        DlfaModel.from_pretrained(tmp_path / "nowhere")


@pytest.mark.parametrize("task", ["pos", "nli"])
def test_token_slices_add_up_to_the_batch_loss(task):
    from dlfa.engine.batching import token_slices

    model = make_model("last", fusion_layer=None).eval()  # eval: dropout off, so both sides compute the same
    torch.manual_seed(1)
    ids = torch.randint(5, 99, (5, T))
    mask = torch.ones(5, T, dtype=torch.long)
    mask[2:, T - 1 :] = 0  # the last three rows are shorter: their slice drops a column of padding
    mask[3, 2:] = 0
    labels = torch.randint(0, 3, (5, T) if task == "pos" else (5,))
    if task == "pos":
        labels[mask == 0] = IGNORE_INDEX
        labels[0] = IGNORE_INDEX  # a row with nothing to learn adds no weight
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels, "task": task}
    slices = token_slices(batch, max_tokens=2 * T)
    assert [tuple(part["input_ids"].shape) for part, _ in slices] == [(2, T), (3, T - 1)]  # the 5th row joins
    if task == "pos":
        assert slices[1][0]["labels"].shape == (3, T - 1)
    assert sum(weight for _, weight in slices) == pytest.approx(1.0)
    whole = model(**batch).loss
    assert sum(model(**part).loss.item() * weight for part, weight in slices) == pytest.approx(whole.item(), rel=1e-5)
    assert [len(part["input_ids"]) for part, _ in token_slices(batch, max_tokens=1)] == [2, 3]  # ≥ 2 rows
    for fits in (None, 100 * T):
        (part, weight), = token_slices(batch, fits)
        assert part is batch and weight == 1.0


def test_mean_pooling_ignores_padding_and_cls_takes_the_first_token():
    model = make_model("dlfa", fusion_layer=1, pooling="mean").eval()
    ids, mask = batch()
    padded_ids = torch.cat([ids, torch.full((B, 3), 1)], dim=1)  # 3 more padding positions, with any token id
    padded_mask = torch.cat([mask, torch.zeros(B, 3, dtype=torch.long)], dim=1)
    plain = model(ids, mask, task="nli").logits
    assert torch.allclose(model(padded_ids, padded_mask, task="nli").logits, plain, atol=1e-5)
    hidden = model.encode(ids, mask)
    fused = model.aggregation(hidden, mask).sequence
    expected_mean = model.heads["nli"](fused[1, :4].mean(0))  # row 1 has 4 real tokens
    assert torch.allclose(plain[1], expected_mean, atol=1e-5)
    model.config.pooling = "cls"
    assert torch.allclose(model(ids, mask, task="nli").logits[1], model.heads["nli"](fused[1, 0]), atol=1e-5)
    with pytest.raises(ConfigError, match="unknown pooling 'max': choose one of cls, mean"):
        make_model(pooling="max")
