"""Dropout that costs less on the CPU: the engine's CPU training swaps it in (`use_fast_cpu_dropout`).

Why: torch's CPU dropout draws its mask with `bernoulli_`, one thread at about 8 ns per element; in a
fine-tuning step of the embedded encoder that was 10% of the time (README "Benchmarks"). And SDPA attention
with dropout on the CPU leaves its fused kernel for the math path. Here a mask is 16 random bits per element,
drawn 64 at a time (`random_` on int64, about 2 ns per element) and compared with a threshold, and attention
during training is written out (scores, softmax, that mask, values). The masks are a function of torch's
seeded CPU generator, as before, so runs stay deterministic and a replayed RNG state replays them; they are
other masks than torch's, so numbers differ from the stock modules'. Evaluation (no dropout) and GPUs keep
SDPA unchanged.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

ATTENTION = "dlfa_cpu_dropout"
_LEVELS = 1 << 16  # a 16-bit draw per element


def dropout_keep_mask(shape: torch.Size | tuple[int, ...], p: float) -> tuple[torch.Tensor, float]:
    """(keep, scale): a bool mask of `shape` that is False with probability p (rounded to 1 / 65,536), and the
    1 / P(keep) that keeps the expectation of the kept values."""
    count = math.prod(shape)
    words = torch.empty((count + 3) // 4, dtype=torch.int64).random_(-(1 << 63), (1 << 63) - 1)
    dropped_levels = round(p * _LEVELS)
    keep = words.view(torch.int16)[:count].view(shape) >= dropped_levels - (1 << 15)
    return keep, _LEVELS / (_LEVELS - dropped_levels)


def fast_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """x with each element zeroed with probability p and the rest scaled by 1 / (1 - p); any shape."""
    if p == 0.0:
        return x
    keep, scale = dropout_keep_mask(x.shape, p)
    return x * keep * scale


class CpuDropout(nn.Dropout):
    """nn.Dropout with the cheaper mask of `fast_dropout` on CPU tensors in training (the same p); torch's
    dropout elsewhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p) if self.training and x.device.type == "cpu" else super().forward(x)


def cpu_dropout_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                          attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                          **kwargs) -> tuple[torch.Tensor, None]:
    """A transformers attention function: query, key, value B × H × T × D, attention_mask B × 1 × T × T (bool,
    True = attend, or additive) or None -> (B × T × H × D, None). SDPA itself unless it would drop out on a CPU."""
    if dropout == 0.0 or query.device.type != "cpu":
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    scores = torch.matmul(query, key.transpose(2, 3)) * (scaling if scaling is not None else query.shape[-1] ** -0.5)
    if attention_mask is not None:
        scores = (scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
                  if attention_mask.dtype == torch.bool else scores + attention_mask)
    weights = fast_dropout(torch.softmax(scores, dim=-1).to(value.dtype), dropout)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), None


AttentionInterface.register(ATTENTION, cpu_dropout_attention)
AttentionMaskInterface.register(ATTENTION, sdpa_mask)  # the masks SDPA gets


def use_fast_cpu_dropout(model: nn.Module) -> None:
    """Swap, in place, every nn.Dropout of `model` for CpuDropout and SDPA attention for
    cpu_dropout_attention (encoders loaded with another attention, e.g. eager for attention maps, and
    architectures without transformers' attention interface keep theirs)."""
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) is nn.Dropout:
                setattr(parent, name, CpuDropout(child.p).train(child.training))
    for module in model.modules():
        config = getattr(module, "config", None)
        if getattr(config, "_attn_implementation", None) == "sdpa" and hasattr(module, "set_attn_implementation"):
            try:
                module.set_attn_implementation(ATTENTION)
            except ValueError:  # an architecture without transformers' attention interface: it keeps SDPA
                pass
