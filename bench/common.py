"""Shared settings of the benchmarks: the data root, the encoder, and the non-padding token count of a split.

Each benchmark measures every side of its ratio in one run, on the same machine state, so the ratios
hold on any machine even though the absolute times do not."""
from __future__ import annotations

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--encoder", default="embedded:e5-small")
    p.add_argument("--data-root", default=str(DEFAULT_DATA_ROOT))
    p.add_argument("--train-examples", type=int, default=400, help="English UD-POS training sentences")
    p.add_argument("--batch-size", type=int, default=32)
    return p


def train_split(args, tokenizer):
    """The first --train-examples English UD-POS training sentences as an EncodedDataset."""
    from dlfa.data.registry import DataSource, load_encoded
    from dlfa.engine.datasets import EncodedDataset

    split = load_encoded("udpos", "en", "train", DataSource.resolve(args.data_root), tokenizer, 128,
                         max_examples=args.train_examples)
    return EncodedDataset(split, tokenizer.pad_token_id)
