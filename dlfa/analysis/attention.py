"""Attention maps of an encoder (or of a fine-tuned run's encoder) on a sentence, or a sentence and its
translation encoded as one pair: every layer and head, head averages, and the entropy of each head's attention;
for a DLFA run, the fusion weight W per token beside the attention of the fused layer and of the last layer.

Attention probabilities need the eager implementation (transformers' SDPA kernels do not return them):
encoders are loaded with `attn_implementation="eager"`, which computes the same hidden states.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dlfa.errors import ConfigError, DlfaError
from dlfa.model.encoders import load_encoder
from dlfa.model.modeling import CONFIG_FILE, DlfaModel

MAX_TOKENS = 128  # attention maps are T × T per head: longer inputs are cut (and say so)


@dataclass
class AttentionMaps:
    """tokens: T; attentions: L × H × T × T float32 (layer 1…L; row = the attending token, column = the attended
    one; each row sums to 1); truncated: the input was cut at MAX_TOKENS."""

    tokens: list[str]
    attentions: np.ndarray
    truncated: bool = False

    @property
    def num_layers(self) -> int:
        return self.attentions.shape[0]

    @property
    def num_heads(self) -> int:
        return self.attentions.shape[1]

    def matrix(self, layer: int, head: int | None = None) -> np.ndarray:
        """T × T attention of `layer` (1…L) and `head` (None: the mean over heads)."""
        if not 1 <= layer <= self.num_layers:
            raise ConfigError(f"layer {layer} does not exist: attention layers are 1…{self.num_layers}")
        maps = self.attentions[layer - 1]
        return maps.mean(0) if head is None else maps[head]

    def entropy(self) -> np.ndarray:
        """L × H: the entropy (bits) of each head's attention distribution, averaged over attending tokens.
        0 = every token attends to one token; log2(T) = uniform attention."""
        p = self.attentions.astype(np.float64)
        return -(p * np.log2(np.where(p > 0, p, 1))).sum(-1).mean(-1)


def load_eager_encoder(spec: str):
    """dlfa.model.encoders.load_encoder with eager attention (attention probabilities available), in eval mode."""
    loaded = load_encoder(spec, attn_implementation="eager")
    loaded.model.eval()
    return loaded


def load_run(model_dir: str | Path, base=None):
    """(DlfaModel, tokenizer) of a run's saved model whose encoder uses eager attention. `base`: the eager
    LoadedEncoder of the run's encoder spec (copied, not reloaded)."""
    config_path = Path(model_dir) / CONFIG_FILE
    try:
        spec = json.loads(config_path.read_text())["encoder"]
    except (OSError, ValueError, KeyError) as exc:
        raise DlfaError(f"{config_path} is not a saved model's config ({exc})") from exc
    base = base or load_eager_encoder(spec)
    model = DlfaModel.from_pretrained(model_dir, encoder=copy.deepcopy(base.model)).eval()
    return model, base.tokenizer


@torch.inference_mode()
def _forward(encoder, tokenizer, text: str, text_pair: str | None):
    """(encoding, encoder output with hidden states and attentions) of one text or pair, cut at MAX_TOKENS."""
    if not text.strip():
        raise ConfigError("type a sentence to see its attention")
    if getattr(encoder.config, "_attn_implementation", "eager") != "eager":
        raise ConfigError("attention maps need an encoder loaded with attn_implementation='eager' "
                          "(dlfa.analysis.attention.load_eager_encoder)")
    kwargs = {"text_pair": text_pair} if text_pair else {}
    enc = tokenizer(text, truncation=True, max_length=MAX_TOKENS, return_tensors="pt", **kwargs)
    device = next(encoder.parameters()).device
    enc = {k: v.to(device) for k, v in enc.items()}
    out = encoder(**enc, output_attentions=True, output_hidden_states=True)
    return enc, out


def _maps(tokenizer, text: str, text_pair: str | None, enc: dict, out) -> AttentionMaps:
    full = tokenizer(text, **({"text_pair": text_pair} if text_pair else {}))["input_ids"]
    attentions = torch.stack([a[0] for a in out.attentions]).float().cpu().numpy()  # L × H × T × T
    return AttentionMaps(tokenizer.convert_ids_to_tokens(enc["input_ids"][0].tolist()), attentions,
                         len(full) > MAX_TOKENS)


def attention_maps(encoder, tokenizer, text: str, text_pair: str | None = None) -> AttentionMaps:
    """All attention maps of a transformers encoder (eager attention) on `text` (and `text_pair`, encoded as one
    pair, so the off-diagonal blocks show how the two sides attend to each other)."""
    enc, out = _forward(encoder, tokenizer, text, text_pair)
    return _maps(tokenizer, text, text_pair, enc, out)


@torch.inference_mode()
def fused_view(model, tokenizer, text: str, text_pair: str | None = None) -> dict:
    """For a DLFA model, from one pass: {"maps": AttentionMaps of its encoder, "fusion_layer" k, "weights": [T]
    the fusion weight W per token (channel mean: the last layer's share; 1 − W goes to layer k), "fused": T × T
    head-averaged attention of layer k (None for k = 0, the embeddings, which have no attention), "last": the
    same for the last layer}."""
    if model.config.aggregation != "dlfa":
        raise ConfigError(f"fusion weights exist only for dlfa runs; this run uses '{model.config.aggregation}'")
    enc, out = _forward(model.encoder, tokenizer, text, text_pair)
    maps = _maps(tokenizer, text, text_pair, enc, out)
    task = next(iter(model.config.heads))  # W comes before the heads: any head gives the same weights
    fused = model.classify(tuple(out.hidden_states), enc["attention_mask"], task)
    layer = model.config.fusion_layer
    return {"maps": maps, "fusion_layer": layer, "weights": fused.fusion_weights[0].float().mean(-1).cpu().tolist(),
            "fused": maps.matrix(layer) if layer else None, "last": maps.matrix(maps.num_layers)}
