"""The caches of the data layer under `cache/features/`: the number of examples of a split (`counts.json`) and the
model-ready features of a split (one .npz per split, no pickle), each keyed by everything it depends on, including
the code that reads and encodes the data (`code_version`), and written atomically (dlfa.io)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from dlfa.data.base import EncodedSplit
from dlfa.data.splits import SplitData, digest
from dlfa.io import atomic_file, write_text
from dlfa.paths import cache_subdir

# The modules of dlfa.data that turn files into examples and examples into features
FEATURE_CODE = ("base", "readers", "splits", "sources", "file_layouts", "hub_layouts", "tasks", "registry",
                "feature_cache")

_COUNTS: dict[str, int] = {}


@lru_cache(maxsize=1)
def code_version() -> str:
    """Hash of the code that turns files into features (FEATURE_CODE): a change invalidates cached counts and
    features."""
    folder = Path(__file__).parent
    return digest([(folder / f"{module}.py").read_text(encoding="utf-8") for module in FEATURE_CODE])


def _counts_file() -> Path:
    return cache_subdir("features") / "counts.json"


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def cached_count(data: SplitData) -> int:
    """Number of examples; counts of files are cached in memory and in cache/features/counts.json."""
    fingerprint = data.fingerprint()
    if fingerprint is None:
        return len(data.load())
    key = digest([fingerprint, code_version()])
    if key not in _COUNTS:
        stored = _read_json(_counts_file())
        if key not in stored:
            stored[key] = len(data.load())
            write_text(_counts_file(), json.dumps(stored))
        _COUNTS[key] = stored[key]
    return _COUNTS[key]


def tokenizer_fingerprint(tokenizer) -> str:
    """Identity of a tokenizer: class, name, size and its serialized definition (or vocabulary)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # the serialization begins with the current truncation and padding settings, which change with every call
        definition = backend.to_str().partition('"added_tokens"')[2]
    else:
        definition = json.dumps(sorted(tokenizer.get_vocab().items()))
    return digest([type(tokenizer).__name__, getattr(tokenizer, "name_or_path", ""), len(tokenizer), definition])


def _sequences(features: list[dict], kind: str) -> list[dict]:
    """One entry per encoded sequence: the features themselves, or every choice of a multiple-choice feature."""
    if kind != "multiple_choice":
        return features
    return [{key: feature[key][choice] for key in ("input_ids", "token_type_ids") if key in feature}
            for feature in features for choice in range(len(feature["input_ids"]))]


def save_features(path: Path, encoded: EncodedSplit, kind: str) -> None:
    """Stored flat: every sequence's ids one after another with their offsets (a multiple-choice feature's C
    choices as C consecutive sequences), the labels per feature (per token for token tasks)."""
    labels = [f["labels"] for f in encoded.features]
    features = _sequences(encoded.features, kind)
    lengths = [len(f["input_ids"]) for f in features]
    arrays = {
        "offsets": np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64),
        "input_ids": np.fromiter((i for f in features for i in f["input_ids"]), dtype=np.int32),
        "truncated": np.array(encoded.truncated, dtype=np.int64),
    }
    if kind == "token":
        arrays["labels"] = np.fromiter((i for f in features for i in f["labels"]), dtype=np.int32)
    else:
        arrays["labels"] = np.array(labels, dtype=np.int32)
    if features and "token_type_ids" in features[0]:
        arrays["token_type_ids"] = np.fromiter((i for f in features for i in f["token_type_ids"]), dtype=np.int32)
    with atomic_file(path) as staging, open(staging, "wb") as handle:  # a handle: np.savez would add ".npz" to a name
        np.savez(handle, **arrays)


def load_features(path: Path, encoded: EncodedSplit, kind: str, choices: int) -> EncodedSplit:
    """Fill `encoded` with the features save_features stored at `path` (`choices` per multiple-choice feature)."""
    with np.load(path, allow_pickle=False) as stored:
        offsets = stored["offsets"].tolist()
        input_ids = stored["input_ids"].tolist()
        labels = stored["labels"].tolist()
        types = stored["token_type_ids"].tolist() if "token_type_ids" in stored.files else None
        encoded.truncated = int(stored["truncated"])
    sequences = []
    for start, end in zip(offsets, offsets[1:]):
        sequence = {"input_ids": input_ids[start:end]}
        if types is not None:
            sequence["token_type_ids"] = types[start:end]
        sequences.append(sequence)
    if kind == "token":
        encoded.features = [{**sequence, "labels": labels[start:end]}
                            for sequence, start, end in zip(sequences, offsets, offsets[1:])]
    elif kind == "multiple_choice":  # C consecutive sequences per feature
        encoded.features = [{key: [s[key] for s in sequences[i * choices : (i + 1) * choices]] for key in sequences[0]}
                            | {"labels": label} for i, label in enumerate(labels)]
    else:
        encoded.features = [{**sequence, "labels": label} for sequence, label in zip(sequences, labels)]
    return encoded
