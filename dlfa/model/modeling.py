"""Encoder + layer aggregation + one classification head per task.

    input_ids B × T ──encoder──► hidden states (L + 1) × B × T × E ──aggregation──► fused B × T × E
        sentence / pair tasks: head on the pooled fused sequence → logits B × C
                               pooling `cls`: the fused first token (as the paper); `mean`: the mean over
                               the real tokens (with fusion layer 0, `cls` fuses a constant: the embedding
                               output at position 0 is the same for every input)
        token tasks:           head on every position          → logits B × T × C
                               (labels only on each word's first sub-word; IGNORE_INDEX elsewhere)
        multiple choice:       input_ids B × C × T (one (context, choice) pair per choice) run flat as
                               (B·C) × T; the pooled sequence of each pair → one score, B × C scores;
                               softmax over the choices, cross-entropy on the gold choice (as Hugging Face's
                               BertForMultipleChoice)
        question answering:    a span head (dlfa.model.qa_head) on every position → start and end logits
                               B × T each (logits: B × T × 2, start then end); the loss the mean of the
                               start and end cross-entropies

Several heads share the encoder and the aggregation, so intermediate tasks carry over to the target task.
Probes (a frozen encoder) standardize each hidden state per dimension with the English training statistics
before the aggregation: a frozen last layer is strongly anisotropic (its tokens share one direction, far
more than a middle layer's), which a small head in a short budget cannot undo, so without it a probe would
measure the features' offset rather than what they carry.
Saved as `dlfa_config.json` + `model.safetensors`; parameters frozen at their encoder values (the word
embeddings by default) are not written again but reloaded from the encoder spec. Nothing is unpickled.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from dlfa.errors import ConfigError, DlfaError
from dlfa.io import atomic_file, write_json
from dlfa.results import CONFIG_FILE
from dlfa.model.fusion import AggregationOutput, build_aggregation
from dlfa.model.qa_head import SpanHead
from dlfa.data.base import IGNORE_INDEX, TaskKind

POOLINGS = ("cls", "mean")

WEIGHTS_FILE = "model.safetensors"


@dataclass
class HeadConfig:
    """One task's head: its kind and label names (the number of classes is len(labels))."""

    kind: TaskKind
    labels: list[str]


@dataclass
class DlfaConfig:
    """Everything needed to rebuild a model. `heads` maps task name -> HeadConfig."""

    encoder: str
    heads: dict[str, HeadConfig]
    aggregation: str = "dlfa"
    fusion_layer: int | None = None
    reduction: int = 4
    dropout: float = 0.1
    freeze_word_embeddings: bool = True
    standardize_features: bool = False  # probes: (h − mean) / std per layer and dimension, English train stats
    pooling: str = "cls"  # sentence and pair tasks: "cls" (first token) or "mean" (over the real tokens)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "DlfaConfig":
        heads = {name: HeadConfig(**head) for name, head in data["heads"].items()}
        return cls(**{**data, "heads": heads})


@dataclass
class DlfaOutput:
    """loss: scalar or None; logits: B × C (sentence, pair; multiple choice: one score per choice) or
    B × T × C (token; question answering: C = 2, start and end); start_logits, end_logits: B × T (question
    answering only); fusion_weights: B × T × E for `dlfa` ((B·C) × T × E for multiple choice); layer_weights:
    (L + 1,) for `scalar-mix`."""

    loss: torch.Tensor | None
    logits: torch.Tensor
    fusion_weights: torch.Tensor | None = None
    layer_weights: torch.Tensor | None = None
    start_logits: torch.Tensor | None = None
    end_logits: torch.Tensor | None = None


class DlfaModel(nn.Module):
    """A multilingual encoder whose last layer is aggregated with lower layers before each task head."""

    def __init__(self, config: DlfaConfig, encoder: nn.Module):
        super().__init__()
        if not config.heads:
            raise ConfigError("a model needs at least one task head")
        if config.pooling not in POOLINGS:
            raise ConfigError(f"unknown pooling '{config.pooling}': choose one of {', '.join(POOLINGS)}")
        self.config = config
        self.encoder = encoder
        num_layers = encoder.config.num_hidden_layers
        hidden = encoder.config.hidden_size
        self.aggregation = build_aggregation(
            config.aggregation, hidden, num_layers, config.fusion_layer, config.reduction
        )
        self.dropout = nn.Dropout(config.dropout)
        self.heads = nn.ModuleDict({name: self._head(head, hidden) for name, head in config.heads.items()})
        if config.standardize_features:  # (L + 1) × E, saved with the weights; set by set_feature_statistics
            self.register_buffer("feature_mean", torch.zeros(num_layers + 1, hidden))
            self.register_buffer("feature_std", torch.ones(num_layers + 1, hidden))
        if config.freeze_word_embeddings:
            encoder.get_input_embeddings().weight.requires_grad_(False)

    @staticmethod
    def _head(head: HeadConfig, hidden: int) -> nn.Module:
        if head.kind == "qa":
            return SpanHead(hidden)
        return nn.Linear(hidden, 1 if head.kind == "multiple_choice" else len(head.labels))

    @classmethod
    def from_encoder_spec(cls, config: DlfaConfig) -> "DlfaModel":
        from dlfa.model.encoders import load_encoder

        return cls(config, load_encoder(config.encoder).model)

    @property
    def num_layers(self) -> int:
        return self.encoder.config.num_hidden_layers

    def encode(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, ...]:
        """All hidden states: a tuple of L + 1 tensors B × T × E (index 0 = embedding output)."""
        kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True, **kwargs)
        return tuple(out.hidden_states)

    def set_feature_statistics(self, layer: int, mean: torch.Tensor, std: torch.Tensor) -> None:
        """The per-dimension mean and std (E each) that standardize hidden state `layer`."""
        self.feature_mean[layer] = mean
        self.feature_std[layer] = std

    def standardize(self, hidden_states: tuple[torch.Tensor | None, ...]) -> tuple[torch.Tensor | None, ...]:
        """(h − mean) / std for every hidden state given (None entries stay None), when the config asks for it."""
        if not self.config.standardize_features:
            return hidden_states
        return tuple(None if h is None else (h - self.feature_mean[i]) / self.feature_std[i]
                     for i, h in enumerate(hidden_states))

    def pool(self, sequence: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """sequence: B × T × E, attention_mask: B × T -> B × E, by the config's pooling."""
        if self.config.pooling == "cls":
            return sequence[:, 0]
        mask = attention_mask.to(sequence.dtype).unsqueeze(-1)  # B × T × 1
        return (sequence * mask).sum(1) / mask.sum(1).clamp_min(1.0)

    def classify(
        self,
        hidden_states: tuple[torch.Tensor, ...],
        attention_mask: torch.Tensor,
        task: str,
        labels: torch.Tensor | None = None,
        start_positions: torch.Tensor | None = None,
        end_positions: torch.Tensor | None = None,
    ) -> DlfaOutput:
        """Aggregate hidden states and apply `task`'s head. labels: B (sentence, pair, multiple choice) or B × T
        (token); start_positions, end_positions: B (question answering). A multiple-choice head takes the
        (B·C) × T hidden states of its flattened choices."""
        if task not in self.heads:
            raise ConfigError(f"this model has no head for task '{task}' (heads: {', '.join(self.heads)})")
        fused: AggregationOutput = self.aggregation(self.standardize(hidden_states), attention_mask)
        kind = self.config.heads[task].kind
        if kind == "qa":
            span = self.heads[task](self.dropout(fused.sequence), attention_mask, start_positions, end_positions)
            return DlfaOutput(span.loss, torch.stack([span.start_logits, span.end_logits], -1), fused.fusion_weights,
                              fused.layer_weights, span.start_logits, span.end_logits)
        features = fused.sequence if kind == "token" else self.pool(fused.sequence, attention_mask)
        logits = self.heads[task](self.dropout(features))
        if kind == "multiple_choice":  # (B·C) × 1 scores -> B × C
            logits = logits.view(-1, len(self.config.heads[task].labels))
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=IGNORE_INDEX
            )
        return DlfaOutput(loss, logits, fused.fusion_weights, fused.layer_weights)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        task: str | None = None,
        labels: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        start_positions: torch.Tensor | None = None,
        end_positions: torch.Tensor | None = None,
    ) -> DlfaOutput:
        """input_ids, attention_mask: B × T, or B × C × T for a multiple-choice task (run flat as (B·C) × T);
        start_positions, end_positions: B, the gold span of a question answering task's windows.
        `task` may be omitted when the model has a single head."""
        task = task or next(iter(self.heads))
        if input_ids.dim() == 3:
            input_ids, attention_mask = input_ids.flatten(0, 1), attention_mask.flatten(0, 1)
            token_type_ids = token_type_ids.flatten(0, 1) if token_type_ids is not None else None
        return self.classify(self.encode(input_ids, attention_mask, token_type_ids), attention_mask, task, labels,
                             start_positions, end_positions)

    # ------------------------------------------------------------------------------------------------
    # Saving and loading (safetensors + JSON)

    def _frozen_encoder_names(self) -> set[str]:
        return {f"encoder.{name}" for name, p in self.encoder.named_parameters() if not p.requires_grad}

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write config and weights, each file atomically (dlfa.io)."""
        from safetensors.torch import save_file

        directory = Path(directory)
        frozen = self._frozen_encoder_names()
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items() if k not in frozen}
        with atomic_file(directory / WEIGHTS_FILE) as staging:
            save_file(state, str(staging), metadata={"format": "pt"})
        write_json(directory / CONFIG_FILE, {**self.config.to_dict(), "reloaded_from_encoder": sorted(frozen)})
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, encoder: nn.Module | None = None) -> "DlfaModel":
        """Rebuild a saved model. `encoder` may be given to skip reloading it from its spec."""
        config, reloaded = read_saved_config(directory)
        model = cls(config, encoder) if encoder is not None else cls.from_encoder_spec(config)
        weights_path = Path(directory) / WEIGHTS_FILE
        missing, unexpected = model.load_state_dict(_saved_weights(weights_path), strict=False)
        if unexpected or set(missing) - reloaded:
            raise DlfaError(
                f"{weights_path} does not match its config: missing {sorted(set(missing) - reloaded)[:5]}, "
                f"unexpected {sorted(unexpected)[:5]}"
            )
        return model


def read_saved_config(directory: str | Path) -> tuple[DlfaConfig, set[str]]:
    """A saved model's config and the names of the parameters it did not write (frozen at their encoder values,
    reloaded from its encoder spec). DlfaError naming the folder when it holds no saved model."""
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    if not config_path.is_file() or not weights_path.is_file():
        raise DlfaError(f"{directory} holds no saved model (expected {CONFIG_FILE} and {WEIGHTS_FILE})")
    try:
        raw = json.loads(config_path.read_text())
        reloaded = set(raw.pop("reloaded_from_encoder", []))
        return DlfaConfig.from_dict(raw), reloaded
    except (json.JSONDecodeError, TypeError, KeyError) as exc:
        raise DlfaError(f"{config_path} is not a valid model config: {exc}") from exc


def _saved_weights(weights_path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(weights_path))
    except (SafetensorError, OSError) as exc:
        raise DlfaError(f"{weights_path} cannot be read (truncated or corrupted?): {exc}") from exc


@torch.no_grad()
def load_encoder_weights(directory: str | Path, encoder: nn.Module) -> list[str]:
    """Copy the trained encoder of a saved model (a run's `model/` folder) into `encoder`, a freshly loaded copy
    of the same base encoder; returns the names of the parameters copied. The parameters the saved model did
    not write (frozen at their encoder values) keep `encoder`'s, which are those values. Heads and aggregation
    are not read. DlfaError when the weights do not fit `encoder` (another architecture)."""
    weights_path = Path(directory) / WEIGHTS_FILE
    read_saved_config(directory)
    prefix = "encoder."
    state = {name[len(prefix):]: tensor for name, tensor in _saved_weights(weights_path).items()
             if name.startswith(prefix)}
    own = encoder.state_dict()
    misfits = sorted(name for name, tensor in state.items() if name not in own or own[name].shape != tensor.shape)
    if misfits:
        raise DlfaError(f"the encoder saved in {directory} does not fit this encoder (e.g. {', '.join(misfits[:3])}): "
                        "it was trained from another base encoder")
    for name, tensor in state.items():
        own[name].copy_(tensor)
    return sorted(state)
