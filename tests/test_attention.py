"""dlfa.analysis.attention on the tiny random encoder: attention maps, head averages, entropy, and a DLFA model's W."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dlfa.analysis import attention
from dlfa.errors import ConfigError


@pytest.fixture(scope="module")
def eager(tiny_encoder):
    return attention.load_eager_encoder(tiny_encoder)


def test_maps_of_every_layer_and_head_are_distributions_over_tokens(eager):
    maps = attention.attention_maps(eager.model, eager.tokenizer, "The cat sleeps.", "Die Katze schläft.")
    tokens = len(maps.tokens)
    assert maps.attentions.shape == (4, 4, tokens, tokens) and maps.num_layers == 4 and not maps.truncated
    assert np.allclose(maps.attentions.sum(-1), 1, atol=1e-5)
    assert maps.tokens[0] == "<s>" and "</s>" in maps.tokens[1:-1]  # both sides of the pair
    assert np.allclose(maps.matrix(2), maps.attentions[1].mean(0)) and np.array_equal(maps.matrix(4, 3),
                                                                                      maps.attentions[3, 3])
    with pytest.raises(ConfigError, match="layers are 1…4"):
        maps.matrix(0)


def test_entropy_is_zero_for_one_hot_and_log2_tokens_for_uniform_attention():
    one_hot = np.zeros((1, 2, 4, 4), dtype=np.float32)
    one_hot[..., 0] = 1
    uniform = np.full((1, 1, 4, 4), 0.25, dtype=np.float32)
    assert np.allclose(attention.AttentionMaps(["a"] * 4, one_hot).entropy(), 0)
    assert np.allclose(attention.AttentionMaps(["a"] * 4, uniform).entropy(), 2.0)


def test_eager_attention_changes_nothing_but_returns_the_maps(tiny_encoder, eager):
    from dlfa.model.encoders import load_encoder

    default = load_encoder(tiny_encoder).model.eval()
    enc = eager.tokenizer("Ein kleiner Test.", return_tensors="pt")
    with torch.inference_mode():
        assert torch.allclose(default(**enc).last_hidden_state, eager.model(**enc).last_hidden_state, atol=1e-5)
    assert default.config._attn_implementation == "sdpa"  # transformers' default returns no attention maps
    with pytest.raises(ConfigError, match="eager"):
        attention.attention_maps(default, eager.tokenizer, "x")
    with pytest.raises(ConfigError, match="type a sentence"):
        attention.attention_maps(eager.model, eager.tokenizer, "  ")


def test_long_inputs_are_cut_and_say_so(eager):
    maps = attention.attention_maps(eager.model, eager.tokenizer, "word " * 300)
    assert maps.truncated and len(maps.tokens) == attention.MAX_TOKENS


def test_fused_view_gives_w_per_token_beside_the_fused_and_last_layer(tiny_encoder, eager, tmp_path):
    from dlfa.engine.evaluate import fusion_weights_for_text
    from dlfa.model.modeling import DlfaConfig, DlfaModel, HeadConfig

    torch.manual_seed(0)
    config = DlfaConfig(tiny_encoder, {"pos": HeadConfig("token", ["NOUN", "VERB"])}, "dlfa", fusion_layer=2)
    DlfaModel.from_encoder_spec(config).save_pretrained(tmp_path / "model")
    model, tokenizer = attention.load_run(tmp_path / "model", eager)
    view = attention.fused_view(model, tokenizer, "Der Hund bellt laut.")
    tokens = len(view["maps"].tokens)
    assert view["fusion_layer"] == 2 and len(view["weights"]) == tokens
    assert np.allclose(view["fused"], view["maps"].matrix(2)) and np.allclose(view["last"], view["maps"].matrix(4))
    reference = fusion_weights_for_text(model, tokenizer, "Der Hund bellt laut.")["per_token_mean"]
    assert np.allclose(view["weights"], reference, atol=1e-5)  # the same W as the Fusion weights page
