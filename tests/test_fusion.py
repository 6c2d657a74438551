"""Aggregation modules on random hidden states (B × T × E), as in Hugging Face's tiny-config tests."""
import copy

import pytest
import torch

from dlfa.errors import ConfigError
from dlfa.model.fusion import AGGREGATIONS, AIFFusion, build_aggregation, check_fusion_layer, needed_layers

B, T, E, L = 3, 7, 32, 4


def random_states(batch=B, tokens=T, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch, tokens, E, generator=generator) for _ in range(L + 1))


@pytest.mark.parametrize("name", AGGREGATIONS)
def test_every_aggregation_returns_b_t_e(name):
    module = build_aggregation(name, E, L, fusion_layer=1)
    out = module(random_states(), torch.ones(B, T))
    assert out.sequence.shape == (B, T, E)
    assert (out.fusion_weights is not None) == (name == "dlfa")
    assert (out.layer_weights is not None) == (name == "scalar-mix")


def test_scalar_mix_weights_are_a_distribution_over_all_states():
    out = build_aggregation("scalar-mix", E, L)(random_states(), torch.ones(B, T))
    assert out.layer_weights.shape == (L + 1,)
    assert torch.isclose(out.layer_weights.sum(), torch.tensor(1.0))


def test_aif_weights_lie_strictly_between_0_and_1():
    fusion = AIFFusion(E, fusion_layer=2, reduction=4)
    weights = fusion(random_states(), torch.ones(B, T)).fusion_weights
    assert weights.shape == (B, T, E)
    assert bool(((weights > 0) & (weights < 1)).all())


@pytest.mark.parametrize("training", [False, True])
def test_padding_never_changes_real_tokens(training):
    """The same sentences padded to a longer T give the same fused real tokens, in eval and in training
    (BatchNorm statistics and the global mean exclude padding)."""
    torch.manual_seed(0)
    fusion = AIFFusion(E, fusion_layer=1, reduction=4).train(training)
    twin = copy.deepcopy(fusion)  # training mode updates running stats: each call gets a fresh copy
    short = random_states(tokens=5)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]], dtype=torch.float)
    padded = tuple(torch.cat([h, torch.randn(B, 4, E) * 100], dim=1) for h in short)
    padded_mask = torch.cat([mask, torch.zeros(B, 4)], dim=1)
    reference = fusion(short, mask).sequence
    result = twin(padded, padded_mask).sequence[:, :5]
    real = mask.bool()
    assert torch.allclose(result[real], reference[real], atol=1e-5)
    if training:
        assert torch.allclose(fusion.local_branch.expand_norm.running_mean, twin.local_branch.expand_norm.running_mean)


def test_global_branch_ignores_padding_values():
    fusion = AIFFusion(E, fusion_layer=1).eval()
    states = random_states()
    mask = torch.ones(B, T)
    mask[:, 4:] = 0
    noisy = tuple(torch.where(mask.bool()[..., None], h, torch.randn_like(h) * 1e3) for h in states)
    assert torch.allclose(fusion(states, mask).fusion_weights[:, :4], fusion(noisy, mask).fusion_weights[:, :4], atol=1e-6)


def test_dlfa_with_weights_forced_to_one_equals_last(monkeypatch):
    states, mask = random_states(), torch.ones(B, T)
    fusion = AIFFusion(E, fusion_layer=2)
    monkeypatch.setattr(fusion, "fusion_weights", lambda summed, attention_mask: torch.ones_like(summed))
    last = build_aggregation("last", E, L)
    assert torch.equal(fusion(states, mask).sequence, last(states, mask).sequence)


@pytest.mark.parametrize("layer", [-1, L, 12, 1.5, None, True])
def test_fusion_layer_out_of_range_is_refused_with_the_valid_range(layer):
    with pytest.raises(ConfigError, match=r"0…3"):
        check_fusion_layer("dlfa", layer, L)


def test_unknown_aggregation_lists_the_choices():
    with pytest.raises(ConfigError, match="scalar-mix"):
        build_aggregation("max", E, L, 1)


def test_reduction_ratio_is_configurable_and_checked():
    assert AIFFusion(E, 1, reduction=16).local_branch.compress.out_features == 2
    with pytest.raises(ConfigError):
        AIFFusion(E, 1, reduction=0)


def test_masked_batch_norm_is_batch_norm_over_the_real_tokens():
    from dlfa.model.fusion import MaskedBatchNorm1d

    torch.manual_seed(0)
    x, mask = torch.randn(B, T, E), torch.ones(B, T)
    mask[1, 4:] = 0
    ours, reference = MaskedBatchNorm1d(E), torch.nn.BatchNorm1d(E)
    real = x[mask.bool()]  # N × E
    assert torch.allclose(ours(x, mask)[mask.bool()], reference(real), atol=1e-5)
    assert torch.allclose(ours.running_mean, reference.running_mean) and torch.allclose(ours.running_var, reference.running_var)
    ours.eval(), reference.eval()
    assert torch.allclose(ours(x), reference(x.reshape(-1, E)).reshape(B, T, E), atol=1e-5)


def test_aif_run_per_slice_sees_other_batch_statistics_than_the_whole_batch():
    """Why the engine runs DLFA's aggregation on the whole batch (dlfa.engine.batching.backward_whole_batch): in training
    mode the weights W of a row depend on the rest of its batch, so two slices of 4 rows give other W than the
    8 rows at once. `last` has no such dependence."""
    from dlfa.model.fusion import uses_batch_statistics

    torch.manual_seed(0)
    module = AIFFusion(E, 1).train()
    states, mask = random_states(batch=8), torch.ones(8, T)
    whole = module(states, mask).fusion_weights
    halves = torch.cat([module(tuple(h[rows] for h in states), mask[rows]).fusion_weights
                        for rows in (slice(0, 4), slice(4, 8))])
    assert (whole - halves).abs().max() > 0.05
    assert uses_batch_statistics(module) and not uses_batch_statistics(build_aggregation("last", E, L).train())
    module.eval()  # running statistics: each row on its own
    assert not uses_batch_statistics(module)
    assert torch.allclose(module(states, mask).fusion_weights[:4], module(tuple(h[:4] for h in states), mask[:4]).fusion_weights)


def test_needed_layers_are_the_hidden_states_an_aggregation_reads():
    assert needed_layers("dlfa", 3, 12) == [3, 12] and needed_layers("last", None, 12) == [12]
    assert needed_layers("scalar-mix", None, 4) == [0, 1, 2, 3, 4]
