"""Probing: freeze the encoder, compute the L + 1 hidden states of every split once, cache them, and train
only the aggregation + head on the cache, so that a 12-layer sweep costs a small multiple of one run.

    cache/features/hidden/<task>-<language>-<split>-<digest>/
        meta.json                 what the cache holds (encoder, task, language, split, sizes, shards)
        shard-0000.safetensors    {"layer.0" … "layer.L": N_tokens × E fp16} for a run of SHARD_EXAMPLES examples
    digest: encoder, max_length, max_examples, precision and the token ids themselves.

A multiple-choice split is cached as its C × N (context, choice) sequences, one cached sequence per (example,
choice), and served as the (B·C) × T batches a multiple-choice head takes (`MultipleChoiceHiddenStates`).
A unit loads only the layers its aggregation reads (the last layer and the fusion layer; all for
scalar-mix), so memory stays at two layers of its splits. Those layers are standardized with the English
training statistics (`fit_standardization`, see dlfa.model.modeling). `FeatureNet` gives the training loop and the
evaluator the same `net(**batch) -> DlfaOutput` interface as the full model.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dlfa.io import atomic_folder, locked
from dlfa.engine.datasets import MultipleChoiceDataset
from dlfa.engine.evaluate import EVAL_BATCH_SIZE, autocast, sorted_batches, to_device
from dlfa.model.fusion import needed_layers
from dlfa.engine.spec import JobSpec
from dlfa.model.modeling import DlfaModel, DlfaOutput
from dlfa.paths import cache_subdir

SHARD_EXAMPLES = 256


def features_dir() -> Path:
    return cache_subdir("features", "hidden")


def cache_key(spec: JobSpec, encoded, precision: str) -> str:
    """`<task>-<language>-<split>-<digest>` for an EncodedDataset of `spec`."""
    from dlfa.model.encoders import encoder_path

    limit = spec.max_train_examples if encoded.split == "train" else spec.max_eval_examples
    digest = hashlib.sha256(json.dumps([spec.encoder, encoder_path(spec.encoder), spec.max_length, limit,
                                        precision]).encode())
    digest.update(encoded.lengths.tobytes())
    digest.update(encoded.input_ids.tobytes())
    return f"{encoded.task}-{encoded.language}-{encoded.split}-{digest.hexdigest()[:16]}"


@torch.inference_mode()
def write_hidden_states(model: DlfaModel, encoded, directory: Path, device: torch.device,
                        amp_dtype: torch.dtype | None, info: dict) -> Path:
    """Run the frozen encoder over `encoded` and write its hidden states to `directory`, atomically and once
    (a file lock serializes concurrent writers, e.g. DDP ranks)."""
    from safetensors.torch import save_file

    with locked(directory):
        if (directory / "meta.json").is_file():
            return directory
        with atomic_folder(directory) as staging:
            model.eval()
            num_states, hidden = model.num_layers + 1, model.encoder.config.hidden_size
            shards = []
            for start in range(0, len(encoded), SHARD_EXAMPLES):
                end = min(start + SHARD_EXAMPLES, len(encoded))
                base = encoded.offsets[start]
                states = torch.empty(num_states, encoded.offsets[end] - base, hidden, dtype=torch.float16)
                for batch_indices in sorted_batches(encoded.lengths[start:end], EVAL_BATCH_SIZE):
                    indices = batch_indices + start
                    batch = to_device(encoded.collate(indices), device)
                    with autocast(device, amp_dtype):
                        layers = model.encode(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
                    stacked = torch.stack(layers).to("cpu", torch.float16)  # (L + 1) × B × T × E
                    for row, i in enumerate(indices):
                        first = encoded.offsets[i] - base
                        states[:, first : first + encoded.lengths[i]] = stacked[:, row, : encoded.lengths[i]]
                name = f"shard-{len(shards):04d}.safetensors"
                save_file({f"layer.{layer}": states[layer] for layer in range(num_states)}, str(staging / name))
                shards.append({"file": name, "start": start, "end": end})
            meta = {**info, "examples": len(encoded), "tokens": int(encoded.offsets[-1]), "num_states": num_states,
                    "hidden_size": hidden, "shards": shards}
            (staging / "meta.json").write_text(json.dumps(meta, indent=2))
    return directory


class HiddenStateDataset:
    """Cached hidden states of one split served as padded batches for FeatureNet.

    collate(indices) -> {hidden_states: a tuple of L + 1 entries, B × T × E for the loaded layers and None
    for the others, attention_mask B × T, labels B or B × T, task}.
    """

    def __init__(self, encoded, directory: Path, layers: list[int]):
        from safetensors import safe_open

        meta = json.loads((directory / "meta.json").read_text())
        if meta["examples"] != len(encoded) or meta["tokens"] != int(encoded.offsets[-1]):
            raise ValueError(f"{directory} does not hold the hidden states of this split")
        self.encoded, self.lengths, self.task = encoded, encoded.lengths, encoded.task
        self.layers: list[torch.Tensor | None] = [None] * meta["num_states"]
        handles = [safe_open(str(directory / shard["file"]), "pt") for shard in meta["shards"]]
        for layer in layers:
            self.layers[layer] = torch.cat([h.get_tensor(f"layer.{layer}") for h in handles])  # N_tokens × E

    def __len__(self) -> int:
        return len(self.lengths)

    def collate(self, indices: np.ndarray) -> dict:
        batch = self.encoded.collate(indices)
        mask = batch["attention_mask"].bool()
        starts = torch.from_numpy(self.encoded.offsets[indices])
        positions = (starts[:, None] + torch.arange(mask.shape[1])).masked_fill(~mask, 0)  # B × T
        hidden = tuple(None if layer is None else layer[positions].float().masked_fill_(~mask[..., None], 0.0)
                       for layer in self.layers)
        return {"hidden_states": hidden, "attention_mask": batch["attention_mask"], "labels": batch["labels"],
                "task": batch["task"]}


class MultipleChoiceHiddenStates:
    """Cached hidden states of a multiple-choice split, one cached sequence per (example, choice), served as the
    flat batches of a multiple-choice head.

    collate(indices) -> {hidden_states: a tuple of L + 1 entries, (B·C) × T × E for the loaded layers and None
    for the others (example b's choice c at row b·C + c), attention_mask (B·C) × T, labels B (the gold
    choice), task}; `lengths` (N,) is each example's longest choice.
    """

    def __init__(self, dataset: MultipleChoiceDataset, sequences: HiddenStateDataset):
        self.dataset, self.sequences, self.task = dataset, sequences, dataset.task
        self.lengths, self.labels = dataset.lengths, dataset.labels

    @property
    def layers(self) -> list[torch.Tensor | None]:
        return self.sequences.layers

    def __len__(self) -> int:
        return len(self.labels)

    def collate(self, indices: np.ndarray) -> dict:
        flat = self.sequences.collate(self.dataset.choice_rows(indices))
        return flat | {"labels": torch.from_numpy(self.labels[indices])}


def fit_standardization(model: DlfaModel, train_sets: Iterable[HiddenStateDataset]) -> None:
    """Set the model's per-dimension statistics of every loaded hidden state from the English training tokens
    of all its stages (never from the test languages)."""
    train_sets = list(train_sets)
    for layer, states in enumerate(train_sets[0].layers):
        if states is not None:
            tokens = torch.cat([data.layers[layer] for data in train_sets]).float()  # N_tokens × E
            model.set_feature_statistics(layer, tokens.mean(0), tokens.std(0).clamp_min(1e-6))


class FeatureNet(nn.Module):
    """The model's aggregation + heads applied to cached hidden states (the encoder is not run)."""

    def __init__(self, model: DlfaModel):
        super().__init__()
        self.model = model

    def forward(self, hidden_states: tuple, attention_mask: torch.Tensor, task: str,
                labels: torch.Tensor | None = None) -> DlfaOutput:
        return self.model.classify(hidden_states, attention_mask, task, labels)


def hidden_state_dataset(model: DlfaModel, encoded, spec: JobSpec,
                         runtime) -> HiddenStateDataset | MultipleChoiceHiddenStates:
    """The cached hidden states of an EncodedDataset or a MultipleChoiceDataset (its (example, choice) sequences)
    (computed on first use) with the layers `spec` needs."""
    if isinstance(encoded, MultipleChoiceDataset):
        return MultipleChoiceHiddenStates(encoded, hidden_state_dataset(model, encoded.sequences, spec, runtime))
    key = cache_key(spec, encoded, runtime.precision)
    info = {"encoder": spec.encoder, "task": encoded.task, "language": encoded.language, "split": encoded.split,
            "max_length": spec.max_length, "precision": runtime.precision}
    directory = write_hidden_states(model, encoded, features_dir() / key, runtime.device, runtime.amp_dtype, info)
    layers = needed_layers(spec.aggregations[0], spec.fusion_layers[0] if spec.fusion_layers else None,
                           model.num_layers)
    return HiddenStateDataset(encoded, directory, layers)
