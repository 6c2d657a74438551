"""Aggregations of encoder layers: each turns the encoder's hidden states into one fused sequence B × T × E.

- `last`: the standard baseline, the last layer only;
- `dlfa`: AIF, attention-based fusion of the last layer with one lower layer k (Chen et al. 2022), written
  as MS-CAM / AFF (Dai et al. 2021) adapted to text:
      Xa = X_last + X_k                                 (B × T × E)
      L  = BN(PWConv(E/r→E)(ReLU(BN(PWConv(E→E/r)(Xa)))))          local branch, per token
      G  = the same bottleneck on the masked mean of Xa over T     global branch, padding excluded
      W  = sigmoid(L + G);   Z = W ⊙ X_last + (1 − W) ⊙ X_k
  A pointwise (kernel-size 1) convolution over T is a Linear layer over the channels, so the module works on
  the encoder's channel-last B × T × E directly.
- `mean` and `concat` (+ linear) of the last layer and layer k;
- `scalar-mix`: softmax-weighted sum of all layers (ELMo style).

Layer k counts from 0 (the embedding output) to L − 1; layer L is the last.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dlfa.errors import ConfigError

AGGREGATIONS = ("last", "dlfa", "mean", "concat", "scalar-mix")
NEEDS_FUSION_LAYER = ("dlfa", "mean", "concat")


@dataclass
class AggregationOutput:
    """sequence: B × T × E. fusion_weights (dlfa): B × T × E, the weight W on the last layer (1 − W on layer k).
    layer_weights (scalar-mix): (L + 1,), the softmax weights of the layers."""

    sequence: torch.Tensor
    fusion_weights: torch.Tensor | None = None
    layer_weights: torch.Tensor | None = None


def check_fusion_layer(aggregation: str, fusion_layer: int | None, num_layers: int) -> None:
    """Raise ConfigError unless `fusion_layer` is valid for `aggregation` on an encoder of `num_layers`."""
    if aggregation not in AGGREGATIONS:
        raise ConfigError(f"unknown aggregation '{aggregation}': choose one of {', '.join(AGGREGATIONS)}")
    if aggregation not in NEEDS_FUSION_LAYER:
        return
    if fusion_layer is None:
        raise ConfigError(f"aggregation '{aggregation}' needs a fusion layer in 0…{num_layers - 1}")
    if isinstance(fusion_layer, bool) or not isinstance(fusion_layer, int) or not 0 <= fusion_layer < num_layers:
        raise ConfigError(
            f"fusion layer {fusion_layer!r} is out of range: this encoder has {num_layers} layers, so the fusion "
            f"layer must be in 0…{num_layers - 1} (0 = embedding output; layer {num_layers} is the last layer "
            "it is fused with)"
        )


def needed_layers(aggregation: str, fusion_layer: int | None, num_layers: int) -> list[int]:
    """The hidden-state indices (0 = embeddings … L = last layer) an aggregation reads."""
    if aggregation == "scalar-mix":
        return list(range(num_layers + 1))
    if aggregation in NEEDS_FUSION_LAYER:
        return [fusion_layer, num_layers]
    return [num_layers]


def uses_batch_statistics(module: nn.Module) -> bool:
    """Whether `module`'s output for one example depends on the other examples of its batch (batch norm in
    training mode): such a module must see the whole batch at once (see dlfa.engine.batching.backward_whole_batch)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training for m in module.modules())


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm over the last dimension (channels) of B × T × C or B × C whose training statistics count real
    tokens only. mask: B × T (1 = token, 0 = padding) or None (every position counts). In training mode the
    output of a row depends on every other row of the batch."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if not self.training:
            mean, var = self.running_mean, self.running_var
        else:
            weights = mask.to(x.dtype).unsqueeze(-1) if mask is not None else torch.ones_like(x[..., :1])
            positions = tuple(range(x.dim() - 1))
            count = weights.sum().clamp_min(1.0)
            mean = (x * weights).sum(dim=positions) / count  # C
            var = (((x - mean) ** 2) * weights).sum(dim=positions) / count
            with torch.no_grad():
                unbiased = var * count / (count - 1).clamp_min(1.0)
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
                self.running_var.lerp_(unbiased.detach().to(self.running_var.dtype), self.momentum)
                self.num_batches_tracked += 1
        # y = (x − mean) / sqrt(var + eps) · weight + bias as one multiply-add over x, in x's dtype
        scale = torch.rsqrt(var.float() + self.eps) * self.weight  # C
        shift = self.bias - mean.float() * scale  # C
        return torch.addcmul(shift.to(x.dtype), x, scale.to(x.dtype))


class Bottleneck(nn.Module):
    """SENet-style channel attention branch: PWConv(E→E/r) → BN → ReLU → PWConv(E/r→E) → BN, on B × T × E
    (or B × E)."""

    def __init__(self, hidden_size: int, reduction: int):
        super().__init__()
        inner = max(1, hidden_size // reduction)
        self.compress = nn.Linear(hidden_size, inner)
        self.compress_norm = MaskedBatchNorm1d(inner)
        self.expand = nn.Linear(inner, hidden_size)
        self.expand_norm = MaskedBatchNorm1d(hidden_size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = torch.relu(self.compress_norm(self.compress(x), mask))
        return self.expand_norm(self.expand(x), mask)


class AIFFusion(nn.Module):
    """Attention-based fusion of the last layer with layer k (DLFA)."""

    def __init__(self, hidden_size: int, fusion_layer: int, reduction: int = 4):
        super().__init__()
        if reduction < 1 or reduction > hidden_size:
            raise ConfigError(f"AIF reduction ratio must be in 1…{hidden_size}, got {reduction}")
        self.fusion_layer = fusion_layer
        self.local_branch = Bottleneck(hidden_size, reduction)
        self.global_branch = Bottleneck(hidden_size, reduction)

    def fusion_weights(self, summed: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """summed: B × T × E (X_last + X_k), attention_mask: B × T -> W: B × T × E in (0, 1)."""
        mask = attention_mask.to(summed.dtype).unsqueeze(-1)  # B × T × 1
        pooled = (summed * mask).sum(1) / mask.sum(1).clamp_min(1.0)  # B × E
        local = self.local_branch(summed, attention_mask)
        global_ = self.global_branch(pooled).unsqueeze(1)  # B × 1 × E
        return torch.sigmoid(local + global_)

    def forward(self, hidden_states: tuple[torch.Tensor, ...], attention_mask: torch.Tensor) -> AggregationOutput:
        last, low = hidden_states[-1], hidden_states[self.fusion_layer]  # B × T × E
        weights = self.fusion_weights(last + low, attention_mask)
        return AggregationOutput(sequence=torch.lerp(low, last, weights.to(low.dtype)), fusion_weights=weights)


class LastLayer(nn.Module):
    """The baseline: the last layer's sequence, unchanged."""

    def forward(self, hidden_states: tuple[torch.Tensor, ...], attention_mask: torch.Tensor) -> AggregationOutput:
        return AggregationOutput(sequence=hidden_states[-1])


class MeanFusion(nn.Module):
    """(X_last + X_k) / 2."""

    def __init__(self, fusion_layer: int):
        super().__init__()
        self.fusion_layer = fusion_layer

    def forward(self, hidden_states: tuple[torch.Tensor, ...], attention_mask: torch.Tensor) -> AggregationOutput:
        return AggregationOutput(sequence=(hidden_states[-1] + hidden_states[self.fusion_layer]) / 2)


class ConcatFusion(nn.Module):
    """Linear(2E → E) over [X_last; X_k]."""

    def __init__(self, hidden_size: int, fusion_layer: int):
        super().__init__()
        self.fusion_layer = fusion_layer
        self.project = nn.Linear(2 * hidden_size, hidden_size)

    def forward(self, hidden_states: tuple[torch.Tensor, ...], attention_mask: torch.Tensor) -> AggregationOutput:
        both = torch.cat([hidden_states[-1], hidden_states[self.fusion_layer]], dim=-1)
        return AggregationOutput(sequence=self.project(both))


class ScalarMix(nn.Module):
    """gamma · Σ_l softmax(s)_l · X_l over all L + 1 hidden states (Peters et al. 2018)."""

    def __init__(self, num_states: int):
        super().__init__()
        self.scalars = nn.Parameter(torch.zeros(num_states))
        self.gamma = nn.Parameter(torch.ones(()))

    def forward(self, hidden_states: tuple[torch.Tensor, ...], attention_mask: torch.Tensor) -> AggregationOutput:
        weights = torch.softmax(self.scalars, dim=0)
        mixed = torch.einsum("l,lbte->bte", weights.to(hidden_states[0].dtype), torch.stack(hidden_states))
        return AggregationOutput(sequence=self.gamma * mixed, layer_weights=weights)


def build_aggregation(
    name: str, hidden_size: int, num_layers: int, fusion_layer: int | None = None, reduction: int = 4
) -> nn.Module:
    """The aggregation module `name` for an encoder with `num_layers` layers of width `hidden_size`."""
    check_fusion_layer(name, fusion_layer, num_layers)
    if name == "last":
        return LastLayer()
    if name == "dlfa":
        return AIFFusion(hidden_size, fusion_layer, reduction)
    if name == "mean":
        return MeanFusion(fusion_layer)
    if name == "concat":
        return ConcatFusion(hidden_size, fusion_layer)
    return ScalarMix(num_layers + 1)
