"""Training-free layer analysis: how close are English sentences and their translations at each layer?

For every language, the English and the other side of N parallel pairs are mean-pooled (padding excluded) at
every layer 0…L (0 = embedding output), and compared per layer by
- translation retrieval: top-1 cosine nearest neighbour among the N candidates, English→other and other→English
  averaged (chance = 1/N);
- linear CKA (Kornblith et al. 2019, "Similarity of Neural Network Representations Revisited"): similarity of
  the two N × E representation matrices, invariant to orthogonal transforms and isotropic scaling.

The encoder may be a base encoder (an encoder spec) or a fine-tuned one (a run's saved model,
`fine_tuned_encoder`), so the same measures show what fine-tuning did to each layer. From the command line
(dlfa.cli.analysis): `python -m dlfa layers --encoder SPEC | --run RUN_FOLDER --langs de,zh --data-root DIR`.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from dlfa.data.classroom import load_parallel, parallel_languages
from dlfa.data.sources import DataSource
from dlfa.errors import ConfigError, DataError
from dlfa.model.encoders import load_encoder
from dlfa.model.modeling import CONFIG_FILE, DlfaModel

Pairs = list[tuple[str, str]]


@dataclass
class LayerAnalysis:
    """Per language, one value per layer 0…num_layers (index 0 = embedding output)."""

    encoder: str
    num_layers: int
    languages: list[str]
    n_pairs: dict[str, int]
    retrieval: dict[str, list[float]]  # translation-retrieval accuracy in [0, 1]
    cka: dict[str, list[float]]  # linear CKA with English in [0, 1]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LayerAnalysis:
        return cls(**data)


# ----------------------------------------------------------------------------------------------------
# Measures


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of x: N × E1 and y: N × E2 (rows = the same N items): ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F) after
    centering each column."""
    x = x.double() - x.double().mean(0, keepdim=True)
    y = y.double() - y.double().mean(0, keepdim=True)
    cross = torch.linalg.matrix_norm(y.T @ x) ** 2
    norms = torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)
    return float(cross / norms) if norms > 0 else 0.0


def nearest_neighbour_hits(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x, y: N × E, row i of x translates row i of y. Two N booleans: whether row i's cosine nearest neighbour
    among y's rows is y[i] (x→y), and whether y[i]'s among x's rows is x[i] (y→x)."""
    normalize = torch.nn.functional.normalize
    similarity = normalize(x.double(), dim=-1) @ normalize(y.double(), dim=-1).T  # N × N cosines
    target = torch.arange(len(x))
    return similarity.argmax(1) == target, similarity.argmax(0) == target


def retrieval_accuracy(x: torch.Tensor, y: torch.Tensor) -> float:
    """x, y: N × E, row i of x translates row i of y. Fraction of rows whose cosine nearest neighbour on the
    other side is their translation, averaged over both directions."""
    forward, backward = nearest_neighbour_hits(x, y)
    return float((forward.double().mean() + backward.double().mean()) / 2)


def mean_over_languages(per_language: dict[str, list[float]]) -> list[float]:
    """{language: one value per layer} -> the mean over the languages at each layer."""
    return torch.tensor(list(per_language.values()), dtype=torch.float64).mean(0).tolist()


# ----------------------------------------------------------------------------------------------------
# Embeddings


@torch.inference_mode()
def mean_pooled_states(model, tokenizer, texts: list[str], batch_size: int = 32, max_length: int = 128) -> torch.Tensor:
    """(L + 1) × N × E: each text's hidden states averaged over its tokens (padding excluded) at every layer.
    Texts are batched in order of length (less padding); the result is in the order of `texts`."""
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    chunks = []
    for start in range(0, len(texts), batch_size):
        batch = [texts[i] for i in order[start : start + batch_size]]
        enc = tokenizer(batch, truncation=True, max_length=max_length, padding=True, return_tensors="pt").to(device)
        hidden = torch.stack(model(**enc, output_hidden_states=True).hidden_states)  # (L + 1) × B × T × E
        mask = enc["attention_mask"][None, :, :, None].to(hidden.dtype)  # 1 × B × T × 1
        chunks.append(((hidden * mask).sum(2) / mask.sum(2)).float().cpu())
    pooled = torch.cat(chunks, dim=1)  # in length order
    return pooled[:, torch.argsort(torch.tensor(order))]


def fine_tuned_encoder(model_dir: str | Path, base=None):
    """The encoder of a saved DlfaModel (a run's `model/` folder) as a dlfa.model.encoders.LoadedEncoder. `base`, the
    LoadedEncoder of the run's encoder spec, is copied instead of loaded again when given."""
    config_path = Path(model_dir) / CONFIG_FILE
    try:
        spec = json.loads(config_path.read_text())["encoder"]
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"not a saved model ({exc})", path=str(config_path)) from exc
    base = base or load_encoder(spec)
    model = DlfaModel.from_pretrained(model_dir, encoder=copy.deepcopy(base.model))
    return replace(base, model=model.encoder.eval())


def run_model_dir(run: str | Path) -> Path:
    """The saved model of a run: `run` itself when it is a model folder, else the model its results.json names."""
    run = Path(run)
    if (run / CONFIG_FILE).is_file():
        return run
    try:
        model_dir = run / json.loads((run / "results.json").read_text())["model_dir"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(f"{run} is neither a run folder with a saved model nor a model folder") from None
    if not (model_dir / CONFIG_FILE).is_file():
        raise ConfigError(f"the run {run} kept no model ({model_dir} is missing): rerun it to analyse its layers")
    return model_dir


def _distinct(pairs: Pairs) -> Pairs:
    """Pairs whose English and other sides both occur once (duplicates would make retrieval ambiguous)."""
    seen_en, seen_other, kept = set(), set(), []
    for english, other in pairs:
        if english.strip() and other.strip() and english not in seen_en and other not in seen_other:
            seen_en.add(english)
            seen_other.add(other)
            kept.append((english, other))
    return kept


def layer_analysis(
    encoder_spec: str, pairs: dict[str, Pairs], max_pairs: int = 200, batch_size: int = 32, loaded=None
) -> LayerAnalysis:
    """Retrieval accuracy and linear CKA against English at every layer, per language.

    pairs: language -> [(English, other)] (the first `max_pairs` distinct pairs are used, at least 2 needed);
    loaded: an already loaded dlfa.model.encoders.LoadedEncoder for `encoder_spec` (skips loading it again).
    """
    kept = {language: _distinct(language_pairs)[:max_pairs] for language, language_pairs in pairs.items()}
    for language, language_pairs in kept.items():
        if len(language_pairs) < 2:
            raise DataError(
                f"layer analysis for {language!r} needs at least 2 distinct parallel pairs, got {len(language_pairs)}"
            )
    if loaded is None:
        loaded = load_encoder(encoder_spec)
    result = LayerAnalysis(encoder_spec, loaded.model.config.num_hidden_layers, [], {}, {}, {})
    for language, language_pairs in kept.items():
        english = mean_pooled_states(loaded.model, loaded.tokenizer, [en for en, _ in language_pairs], batch_size)
        other = mean_pooled_states(loaded.model, loaded.tokenizer, [o for _, o in language_pairs], batch_size)
        result.languages.append(language)
        result.n_pairs[language] = len(language_pairs)
        result.retrieval[language] = [retrieval_accuracy(e, o) for e, o in zip(english, other)]
        result.cka[language] = [linear_cka(e, o) for e, o in zip(english, other)]
    return result


# ----------------------------------------------------------------------------------------------------
# Parallel data


def available_parallel_languages(source=None) -> list[str]:
    """Languages with sentences parallel to English in `source` (a DataSource, a data root path, or None for the
    default source): Parallel UD of a data root, then the classroom pack's."""
    return parallel_languages(_source(source))


def parallel_pairs(source, languages: list[str], max_pairs: int = 200) -> dict[str, Pairs]:
    """language -> the first `max_pairs` distinct (English, other) pairs (dlfa.data.classroom.load_parallel)."""
    resolved = _source(source)
    return {language: _distinct(load_parallel(resolved, language))[:max_pairs] for language in languages}


def _source(source):
    return source if isinstance(source, DataSource) else DataSource.resolve(source)
