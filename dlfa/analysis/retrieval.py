"""Tatoeba sentence retrieval with XTREME's protocol, no training.

Each sentence is mean-pooled over its real tokens (padding excluded) at a layer
(`dlfa.analysis.layers.mean_pooled_states`, 0 = embedding output); every sentence of one language looks up its cosine
nearest neighbour among the English sentences of that language's pool, and every English sentence among the other
language's. A hit is the sentence on
the same line (XTREME's gold alignment, so a duplicated sentence elsewhere in the pool counts as a miss). Accuracy is
reported per direction (xx→en, which XTREME publishes, and en→xx) and averaged, per layer and language, in points
with a 95% percentile bootstrap interval over the sentence pairs (`dlfa.engine.metrics`).

The encoder is any encoder spec or a fine-tuned run's encoder (`dlfa.analysis.layers.fine_tuned_encoder`), so the
same grid shows what fine-tuning did to retrieval; of a DLFA run, also its fused representation (the grid's row
"dlfa"). The sentence pairs are read by dlfa.data.tatoeba (a data root's LASER files or google/xtreme's tatoeba
configurations). From the command line (dlfa.cli.analysis):
`python -m dlfa tatoeba --encoder SPEC | --run RUN_FOLDER --langs de,fr --layers all`; as a job of the store
(task `tatoeba`, nothing trained): dlfa.analysis.tatoeba_job.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from dlfa.analysis.layers import mean_pooled_states, nearest_neighbour_hits
from dlfa.code_version import code_version
from dlfa.data.tatoeba import TatoebaPairs, available_tatoeba_languages, read_tatoeba
from dlfa.engine.metrics import score_with_interval
from dlfa.errors import ConfigError, DataError
from dlfa.io import write_text

__all__ = ["FUSED_ROW", "TatoebaResult", "available_tatoeba_languages", "check_layers", "fused_pooled_states",
           "layer_scores", "parse_layers", "read_tatoeba", "tatoeba_retrieval"]  # the app reads the data through here

HIT_LABELS = ["miss", "hit"]  # a retrieval outcome as a two-class "prediction" whose gold is always a hit


# ----------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Accuracy:
    """Retrieval accuracy in points (0–100) with its 95% bootstrap interval over sentence pairs (None: no
    resampling)."""

    value: float
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class LayerScores:
    """One (language, layer) cell: each direction and their average."""

    xx_to_en: Accuracy
    en_to_xx: Accuracy
    average: Accuracy


DIRECTIONS = ("xx_to_en", "en_to_xx", "average")
FUSED_ROW = "dlfa"  # the grid row of a DLFA run's fused representation


@dataclass
class TatoebaResult:
    """scores[language][k] is the cell of layer `layers[k]` (0 = embedding output); `fused[language]`, when a DLFA
    run's encoder was measured, the cell of its fused representation (the run's fusion module on the last layer
    and its fusion layer), the grid's row FUSED_ROW."""

    encoder: str
    source: str
    num_layers: int
    layers: list[int]
    languages: list[str]
    n_sentences: dict[str, int]
    bootstrap_samples: int
    scores: dict[str, list[LayerScores]]
    code_version: dict | None = None  # dlfa.code_version.code_version() of the process that measured it
    fused: dict[str, LayerScores] | None = None

    def grid(self, direction: str = "average") -> list[list[float]]:
        """len(layers) × len(languages) accuracies in points."""
        return [[getattr(self.scores[language][k], direction).value for language in self.languages]
                for k in range(len(self.layers))]

    def mean_over_languages(self, direction: str = "average") -> list[float]:
        """One mean accuracy per entry of `layers`."""
        return [sum(row) / len(row) for row in self.grid(direction)]

    def rows(self) -> list[str]:
        """The grid's row names: each layer ("0" … "L"), then FUSED_ROW when the fused representation was measured."""
        return [str(layer) for layer in self.layers] + ([FUSED_ROW] if self.fused else [])

    def cell(self, language: str, row: str) -> LayerScores:
        """The cell of one language and one of `rows()`."""
        return self.fused[language] if row == FUSED_ROW else self.scores[language][self.layers.index(int(row))]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TatoebaResult:
        def cell(raw: dict) -> LayerScores:
            return LayerScores(**{d: Accuracy(**raw[d]) for d in DIRECTIONS})

        scores = {language: [cell(raw) for raw in cells] for language, cells in data["scores"].items()}
        fused = {language: cell(raw) for language, raw in data["fused"].items()} if data.get("fused") else None
        return cls(**{**data, "scores": scores, "fused": fused})

    def write(self, path: str | Path) -> None:
        write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def read(cls, path: str | Path) -> TatoebaResult:
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise DataError("no such Tatoeba result file", str(path)) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"not a Tatoeba result ({exc})", str(path)) from None


# ----------------------------------------------------------------------------------------------------
# Measure


def layer_scores(other: torch.Tensor, english: torch.Tensor, bootstrap_samples: int, seed: int = 0) -> LayerScores:
    """other, english: N × E pooled states, row i of `other` translates row i of `english`."""
    xx_to_en, en_to_xx = (hits.long().tolist() for hits in nearest_neighbour_hits(other, english))

    def accuracy(gold: list, pred: list) -> Accuracy:
        scored = score_with_interval("accuracy", gold, pred, HIT_LABELS, bootstrap_samples, seed)
        return Accuracy(scored["value"], scored["ci_low"], scored["ci_high"])

    n = len(xx_to_en)
    both = [[a, b] for a, b in zip(xx_to_en, en_to_xx)]  # a pair is resampled with both its directions
    return LayerScores(accuracy([1] * n, xx_to_en), accuracy([1] * n, en_to_xx), accuracy([[1, 1]] * n, both))


def parse_layers(text: str) -> list[int] | None:
    """'all' -> None; '0-12' / '4,8,12' / '0-3,12' -> sorted distinct layers (range checked by `check_layers`)."""
    if text.strip().lower() == "all":
        return None
    layers: set[int] = set()
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            low, _, high = part.partition("-")
            layers.update(range(int(low), int(high or low) + 1))
    except ValueError:
        raise ConfigError(f"bad --layers {text!r}: write all, a range like 0-12 or a list like 4,8,12") from None
    if not layers:
        raise ConfigError(f"bad --layers {text!r}: no layer given (a range must go upwards, like 0-12)")
    return sorted(layers)


def check_layers(layers: list[int] | None, num_layers: int) -> list[int]:
    """`layers` (None = all) within 0…num_layers."""
    if layers is None:
        return list(range(num_layers + 1))
    outside = [layer for layer in layers if not 0 <= layer <= num_layers]
    if outside:
        raise ConfigError(f"layer {outside[0]} does not exist: the encoder has layers 0-{num_layers} "
                          "(0 = embedding output)")
    return layers


@torch.inference_mode()
def fused_pooled_states(model, tokenizer, texts: list[str], batch_size: int = 32, max_length: int = 128) -> torch.Tensor:
    """N × E: each text's fused sequence (the aggregation of a dlfa.model.modeling.DlfaModel, e.g. DLFA's fusion of
    the last layer and its fusion layer) averaged over its real tokens."""
    model.eval()
    device = next(model.parameters()).device
    chunks = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(texts[start : start + batch_size], truncation=True, max_length=max_length, padding=True,
                        return_tensors="pt").to(device)
        hidden = model.encode(enc["input_ids"], enc["attention_mask"], enc.get("token_type_ids"))
        fused = model.aggregation(model.standardize(hidden), enc["attention_mask"]).sequence  # B × T × E
        mask = enc["attention_mask"][:, :, None].to(fused.dtype)  # B × T × 1
        chunks.append(((fused * mask).sum(1) / mask.sum(1)).float().cpu())
    return torch.cat(chunks)


def tatoeba_retrieval(
    encoder_name: str,
    loaded,
    pools: list[TatoebaPairs],
    layers: list[int] | None = None,
    bootstrap_samples: int = 1000,
    batch_size: int = 32,
    source: str = "",
    fusion_model=None,
    max_length: int = 128,
    on_language: Callable[[int, str], None] | None = None,
) -> TatoebaResult:
    """The layer × language grid of retrieval accuracies of `loaded` (a dlfa.model.encoders.LoadedEncoder) on `pools`.

    layers: None = every layer 0…L. fusion_model: a DlfaModel around `loaded.model` whose fused representation is
    measured too (the result's `fused`). on_language(i, language) is called before the i-th pool (from 0)."""
    num_layers = loaded.model.config.num_hidden_layers
    layers = check_layers(layers, num_layers)
    result = TatoebaResult(encoder_name, source, num_layers, layers, [], {}, bootstrap_samples, {}, code_version(),
                           {} if fusion_model is not None else None)
    for i, pool in enumerate(pools):
        if on_language:
            on_language(i, pool.language)
        english = mean_pooled_states(loaded.model, loaded.tokenizer, pool.english, batch_size, max_length)  # (L+1)×N×E
        other = mean_pooled_states(loaded.model, loaded.tokenizer, pool.other, batch_size, max_length)
        result.languages.append(pool.language)
        result.n_sentences[pool.language] = len(pool.english)
        result.scores[pool.language] = [layer_scores(other[k], english[k], bootstrap_samples) for k in layers]
        if fusion_model is not None:
            result.fused[pool.language] = layer_scores(
                fused_pooled_states(fusion_model, loaded.tokenizer, pool.other, batch_size, max_length),
                fused_pooled_states(fusion_model, loaded.tokenizer, pool.english, batch_size, max_length),
                bootstrap_samples)
    return result
