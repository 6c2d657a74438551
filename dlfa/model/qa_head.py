"""The extractive question answering head, as Hugging Face's BertForQuestionAnswering: one linear layer
H -> 2 on every position of the aggregated sequence gives the start and end logits of the answer span.

    fused sequence B × T × H ──Linear(H, 2)──► B × T × 2 ──split──► start_logits B × T, end_logits B × T
    loss = (cross-entropy(start_logits, start_positions) + cross-entropy(end_logits, end_positions)) / 2

Unlike BERT's head, padded positions (attention_mask 0) get the lowest logit, so they are never predicted and
take no probability mass. Positions outside [0, T) are clamped to T and ignored by the loss, as in BERT's.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class SpanOutput:
    """loss: scalar or None; start_logits, end_logits: B × T."""

    loss: torch.Tensor | None
    start_logits: torch.Tensor
    end_logits: torch.Tensor


class SpanHead(nn.Module):
    """Start and end logits of an answer span from a B × T × H sequence."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.qa_outputs = nn.Linear(hidden_size, 2)

    def reset_parameters(self) -> None:
        self.qa_outputs.reset_parameters()

    def forward(
        self,
        sequence: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        start_positions: torch.Tensor | None = None,
        end_positions: torch.Tensor | None = None,
    ) -> SpanOutput:
        """sequence: B × T × H; attention_mask: B × T (1 = real token); start_positions, end_positions: B (the
        answer's first and last token; 0, the first token, when the window holds no answer)."""
        start_logits, end_logits = self.qa_outputs(sequence).float().unbind(-1)  # B × T each
        if attention_mask is not None:
            padding = attention_mask == 0
            start_logits = start_logits.masked_fill(padding, torch.finfo(start_logits.dtype).min)
            end_logits = end_logits.masked_fill(padding, torch.finfo(end_logits.dtype).min)
        loss = None
        if start_positions is not None and end_positions is not None:
            ignored = start_logits.shape[1]
            loss = (nn.functional.cross_entropy(start_logits, start_positions.clamp(0, ignored), ignore_index=ignored)
                    + nn.functional.cross_entropy(end_logits, end_positions.clamp(0, ignored), ignore_index=ignored)) / 2
        return SpanOutput(loss, start_logits, end_logits)
