"""Tiny random encoders for fast tests (like Hugging Face's tiny test configs), with the embedded
encoder's real tokenizer so that real data can flow through them."""
from __future__ import annotations

import shutil
from pathlib import Path

from dlfa.model.encoders import embedded_folder
from dlfa.paths import REPO_ROOT

TINY_CONFIG = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=37,
                   max_position_embeddings=514, type_vocab_size=2, hidden_dropout_prob=0.0,
                   attention_probs_dropout_prob=0.0, pad_token_id=1)


def build_tiny_encoder(out_dir: str | Path, seed: int = 0, **overrides) -> Path:
    """Write a random BERT (hidden 32, 4 layers) with the e5-small tokenizer to `out_dir` (a local encoder spec)."""
    import torch
    from transformers import BertConfig, BertModel

    out_dir = Path(out_dir)
    if (out_dir / "config.json").is_file():
        return out_dir
    source = embedded_folder()
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=250037, **{**TINY_CONFIG, **overrides})
    BertModel(config, add_pooling_layer=False).save_pretrained(out_dir)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(source / name, out_dir / name)
    return out_dir


def link_built(cache: Path, source: Path = REPO_ROOT / "cache") -> Path:
    """A fresh cache folder with the built embedded encoder and classroom pack of `source` linked in (read only,
    so nothing is rebuilt) and its data-file example counts copied."""
    for part in ("models/e5-small", "pack"):
        if (source / part).exists():
            (cache / part).parent.mkdir(parents=True, exist_ok=True)
            (cache / part).symlink_to(source / part, target_is_directory=True)
    counts = source / "features" / "counts.json"  # example counts of the data files (speed only)
    if counts.is_file():
        (cache / "features").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(counts, cache / "features" / "counts.json")
    return cache
