"""The engine's CPU dropout (dlfa.engine.cpu_dropout): the right rate and scale, seeded masks, SDPA's outputs when
nothing is dropped, and masks that the sliced DLFA backward replays exactly."""
import pytest
import torch
from transformers import BertConfig, BertModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from dlfa.engine.cpu_dropout import ATTENTION, CpuDropout, cpu_dropout_attention, fast_dropout, use_fast_cpu_dropout
from dlfa.model.modeling import DlfaConfig, DlfaModel, HeadConfig
from dlfa.testing import TINY_CONFIG


def _tiny_bert(dropout: float) -> BertModel:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=99, **{**TINY_CONFIG, "hidden_dropout_prob": dropout,
                                          "attention_probs_dropout_prob": dropout})
    return BertModel(config, add_pooling_layer=False)


def _padded_batch(rows: int = 6, width: int = 9) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.randint(2, width + 1, (rows,))
    lengths[0] = width
    mask = (torch.arange(width)[None] < lengths[:, None]).long()
    return torch.randint(5, 99, (rows, width)).masked_fill(mask == 0, 1), mask


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_fast_dropout_zeroes_a_fraction_p_and_keeps_the_mean(p):
    torch.manual_seed(0)
    dropped = fast_dropout(torch.ones(1000, 1000), p)
    assert (dropped == 0).float().mean().item() == pytest.approx(p, abs=0.002)
    assert dropped.mean().item() == pytest.approx(1.0, abs=0.005)
    assert dropped.unique().tolist() == [0.0, pytest.approx(1 / (1 - p), rel=1e-4)]


def test_the_mask_is_a_function_of_the_seed():
    def mask(seed):
        torch.manual_seed(seed)
        return fast_dropout(torch.ones(64, 64), 0.1) == 0

    assert torch.equal(mask(1), mask(1))
    assert not torch.equal(mask(1), mask(2))


def test_each_16_bit_part_of_a_random_word_drops_at_the_same_rate():
    torch.manual_seed(0)
    dropped = (fast_dropout(torch.ones(400_000, 4), 0.1) == 0).float().mean(0)  # element i uses part i % 4
    assert dropped.tolist() == pytest.approx([0.1] * 4, abs=0.003)


def test_the_written_out_attention_gives_sdpas_output_when_it_drops_nothing():
    torch.manual_seed(0)
    query, key, value = (torch.randn(3, 4, 7, 8) for _ in range(3))
    mask = (torch.arange(7)[None, None, None] < torch.tensor([7, 4, 2])[:, None, None, None]).expand(3, 1, 7, 7)
    module = _tiny_bert(0.0).encoder.layer[0].attention.self
    expected, _ = sdpa_attention_forward(module, query, key, value, mask, dropout=0.0, scaling=0.35)
    # a rate below 1 / 65,536 drops nothing but takes the written-out path (it only serves dropout > 0)
    written_out, weights = cpu_dropout_attention(module, query, key, value, mask, dropout=1e-9, scaling=0.35)
    assert weights is None and written_out.shape == (3, 7, 4, 8)
    assert torch.allclose(written_out, expected, atol=1e-6)


def test_an_encoder_with_the_cpu_dropout_drops_in_training_and_matches_the_stock_encoder_in_evaluation():
    ids, mask = _padded_batch()
    stock = _tiny_bert(0.1).eval()
    ours = _tiny_bert(0.1).eval()
    use_fast_cpu_dropout(ours)
    assert ours.config._attn_implementation == ATTENTION
    assert any(isinstance(m, CpuDropout) for m in ours.modules())
    assert not any(type(m) is torch.nn.Dropout for m in ours.modules())
    assert all(not m.training for m in ours.modules())  # the swap keeps each module's mode
    expected = stock(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.equal(ours(input_ids=ids, attention_mask=mask).last_hidden_state, expected)
    ours.train()
    torch.manual_seed(3)
    first = ours(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.manual_seed(3)
    again = ours(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.equal(first, again) and not torch.allclose(first, expected, atol=1e-3)


def test_an_encoder_loaded_for_attention_maps_keeps_its_eager_attention():
    eager = _tiny_bert(0.1)
    eager.set_attn_implementation("eager")
    use_fast_cpu_dropout(eager)
    assert eager.config._attn_implementation == "eager"


def test_a_sliced_dlfa_backward_replays_the_dropout_masks_of_its_first_pass():
    """backward_whole_batch runs every slice but the first through the encoder twice; with dropout on, its
    gradients equal those of one pass that keeps every slice's graph only if the second pass draws the same masks."""
    from dlfa.engine.batching import backward_whole_batch, batch_rows, slice_bounds
    from dlfa.engine.runtime import Runtime

    heads = {"nli": HeadConfig("pair", ["e", "n", "c"])}
    model = DlfaModel(DlfaConfig("unused", heads, "dlfa", fusion_layer=1), _tiny_bert(0.1)).train()
    use_fast_cpu_dropout(model)
    ids, mask = _padded_batch(rows=12, width=10)
    batch = {"input_ids": ids, "attention_mask": mask, "labels": torch.randint(0, 3, (12,)), "task": "nli"}
    bounds = slice_bounds(batch, 3 * 10)
    assert len(bounds) == 4
    start = {k: v.clone() for k, v in model.state_dict().items()}

    torch.manual_seed(5)
    sliced_loss = backward_whole_batch(model, batch, 3 * 10, 1.0, Runtime(torch.device("cpu"), None))
    sliced = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    model.load_state_dict(start)
    model.zero_grad()
    torch.manual_seed(5)
    parts = [model.encode(**{k: v for k, v in batch_rows(batch, *bound).items() if k in ("input_ids", "attention_mask")})
             for bound in bounds]
    layers = [torch.zeros(12, 10, h.shape[-1]) for h in parts[0]]
    for (first, end, width), hidden in zip(bounds, parts):
        layers = [whole.index_put((torch.arange(first, end)[:, None], torch.arange(width)[None]), h)
                  for whole, h in zip(layers, hidden)]
    loss = model.classify(tuple(layers), mask, "nli", batch["labels"]).loss
    loss.backward()
    assert sliced_loss == pytest.approx(loss.item(), abs=1e-6)
    for name, grad in sliced.items():
        assert torch.allclose(grad, model.get_parameter(name).grad, atol=1e-6), name


def test_training_under_cpu_bf16_autocast_drops_and_back_propagates():
    ids, mask = _padded_batch()
    encoder = _tiny_bert(0.1).train()
    use_fast_cpu_dropout(encoder)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    hidden.float().pow(2).mean().backward()
    grads = [p.grad for p in encoder.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        again = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    assert not torch.equal(hidden, again)  # other masks: dropout is on
