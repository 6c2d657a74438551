"""Embedding projector across layers: parallel sentences (or tagged words) mean-pooled at every layer 0…L of an
encoder and projected to 2-D, so one can watch translations draw together or apart from layer to layer.

Sentence mode reads translation groups (an English sentence and its translations) from
- Parallel UD (or the classroom pack's parallel pairs), through dlfa.analysis.layers.parallel_pairs, grouped by the
  English sentence (Parallel UD gives the same sentence in every language);
- Tatoeba (through dlfa.data.tatoeba.read_tatoeba: a data root's LASER files or the hub; line i translates
  line i): one group per line and language;
- XNLI test items (each distinct premise), grouped by item id across languages.
Token mode takes UD-POS test sentences per language; each word is the mean of its sub-words' states, with its tag.

States are cached in cache/features/projector/ (safetensors, keyed by the encoder and the texts); the 2-D
projection is PCA (an SVD, signs fixed so consecutive layers do not flip), t-SNE where scikit-learn is
installed, UMAP where umap-learn is installed.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from dlfa.analysis.layers import available_parallel_languages, mean_pooled_states, parallel_pairs
from dlfa.data.tatoeba import available_tatoeba_languages, read_tatoeba
from dlfa.data.registry import available_languages as task_languages
from dlfa.data.registry import load_examples
from dlfa.errors import ConfigError, DataError
from dlfa.io import atomic_file

SOURCES = {"parallel-ud": "Parallel UD", "tatoeba": "Tatoeba", "xnli": "XNLI items"}
METHODS = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}


@dataclass
class Items:
    """What is projected: one entry per point. group: the translation group (sentence mode; -1 in token mode,
    where `tags` holds each word's gold tag)."""

    texts: list[str]
    languages: list[str]
    groups: list[int]
    tags: list[str] | None = None


# ----------------------------------------------------------------------------------------------------
# Parallel sentences and tagged words


def available_methods() -> list[str]:
    """Projection methods usable here: PCA always, t-SNE with scikit-learn, UMAP with umap-learn."""
    optional = {"tsne": "sklearn", "umap": "umap"}
    return ["pca"] + [m for m, module in optional.items() if importlib.util.find_spec(module) is not None]


def available_languages(source_name: str, source) -> list[str]:
    """Languages (besides English) with text parallel to English in this source."""
    if source_name == "parallel-ud":
        return available_parallel_languages(source)
    if source_name == "tatoeba":
        return sorted(available_tatoeba_languages(source))
    if source_name == "xnli":
        found = task_languages("xnli", source)
        return [lang for lang, splits in found.items() if lang != "en" and "test" in splits] if "en" in found else []
    raise ConfigError(f"unknown sentence source {source_name!r}: choose one of {', '.join(SOURCES)}")


def parallel_sentences(source_name: str, source, languages: list[str], max_groups: int) -> Items:
    """English sentences and their translations into `languages`: at most `max_groups` groups (Tatoeba: per
    language). The English sentence of a group comes first; every member carries the group's number."""
    if not languages:
        raise ConfigError("choose at least one language besides English")
    groups: list[dict[str, str]] = []
    if source_name == "parallel-ud":
        by_english: dict[str, dict[str, str]] = {}
        for language, pairs in parallel_pairs(source, languages, max_pairs=10**6).items():
            for english, other in pairs:
                by_english.setdefault(english, {"en": english})[language] = other
        complete = sorted(by_english.values(), key=len, reverse=True)  # the most translated first (stable)
        groups = complete[:max_groups]
    elif source_name == "tatoeba":
        for language in languages:
            pool = read_tatoeba(source, language, max_groups)
            groups += [{"en": e, language: o} for e, o in zip(pool.english, pool.other)]
    elif source_name == "xnli":
        by_item = {lang: {ex.item_id: ex.text for ex in load_examples("xnli", lang, "test", source)}
                   for lang in ["en", *languages]}
        premises = {}  # an XNLI premise comes with three hypotheses: one group per distinct English premise
        for item, text in by_item["en"].items():
            if all(item in by_item[lang] for lang in languages):
                premises.setdefault(text, item)
        groups = [{lang: by_item[lang][item] for lang in ["en", *languages]}
                  for item in list(premises.values())[:max_groups]]
    else:
        raise ConfigError(f"unknown sentence source {source_name!r}: choose one of {', '.join(SOURCES)}")
    if not groups:
        raise DataError(f"{SOURCES[source_name]} has no sentences parallel to English for {', '.join(languages)} "
                        f"in {source.describe()}")
    items = Items([], [], [])
    for number, group in enumerate(groups):
        for language in ["en", *languages]:
            if language in group:
                items.texts.append(group[language])
                items.languages.append(language)
                items.groups.append(number)
    return items


def tagged_sentences(source, languages: list[str], max_sentences: int) -> list[tuple[str, tuple, tuple]]:
    """(language, words, tags) of the first `max_sentences` UD-POS test sentences of each language."""
    return [(lang, ex.words, ex.tags) for lang in languages
            for ex in load_examples("udpos", lang, "test", source, max_examples=max_sentences)]


# ----------------------------------------------------------------------------------------------------
# States at every layer


@torch.inference_mode()
def word_states(model, tokenizer, sentences: list[tuple], batch_size: int = 16, max_length: int = 128) -> torch.Tensor:
    """(L + 1) × W × E: every word of `sentences` ((language, words, tags), in order) as the mean of its
    sub-words' hidden states at each layer; words cut at max_length are left out (so are their tags: see
    `word_items`)."""
    model.eval()
    device = next(model.parameters()).device
    chunks = []
    for start in range(0, len(sentences), batch_size):
        batch = [list(words) for _, words, _ in sentences[start : start + batch_size]]
        enc = tokenizer(batch, is_split_into_words=True, truncation=True, max_length=max_length, padding=True,
                        return_tensors="pt")
        hidden = torch.stack(model(**{k: v.to(device) for k, v in enc.items()}, output_hidden_states=True)
                             .hidden_states).float().cpu()  # (L + 1) × B × T × E
        for row in range(len(batch)):
            word_ids = enc.word_ids(row)
            for word in range(len(batch[row])):
                positions = [p for p, w in enumerate(word_ids) if w == word]
                if positions:
                    chunks.append(hidden[:, row, positions].mean(1))  # (L + 1) × E
    return torch.stack(chunks, dim=1)


def word_items(tokenizer, sentences: list[tuple], max_length: int = 128) -> Items:
    """The words `word_states` keeps (those within max_length), with their language and tag."""
    items = Items([], [], [], [])
    for language, words, tags in sentences:
        enc = tokenizer([list(words)], is_split_into_words=True, truncation=True, max_length=max_length)
        kept = {w for w in enc.word_ids(0) if w is not None}
        for index, (word, tag) in enumerate(zip(words, tags)):
            if index in kept:
                items.texts.append(word)
                items.languages.append(language)
                items.groups.append(-1)
                items.tags.append(tag)
    return items


def layer_states(loaded, encoder_key: str, items: Items | list[tuple], cache: Path | None = None) -> torch.Tensor:
    """(L + 1) × N × E states of sentence `items` (mean-pooled) or of tagged sentences (per word), read from
    `cache` when an earlier call stored them for the same encoder key and texts."""
    words = not isinstance(items, Items)
    payload = json.dumps([encoder_key, "words" if words else "sentences",
                          [list(s[1]) for s in items] if words else items.texts], ensure_ascii=False)
    path = cache / f"{hashlib.sha256(payload.encode()).hexdigest()[:32]}.safetensors" if cache else None
    if path is not None and path.is_file():
        try:
            return load_file(str(path))["states"]
        except (OSError, KeyError, RuntimeError):
            path.unlink(missing_ok=True)  # unreadable: compute again
    if words:
        states = word_states(loaded.model, loaded.tokenizer, items)
    else:
        states = mean_pooled_states(loaded.model, loaded.tokenizer, items.texts)
    if path is not None:
        with atomic_file(path) as staging:
            save_file({"states": states.contiguous()}, str(staging))
    return states


# ----------------------------------------------------------------------------------------------------
# 2-D projections


def project(states: torch.Tensor, method: str = "pca", seed: int = 0) -> np.ndarray:
    """N × 2 coordinates of N × E states. PCA components are signed so that the first point lies at positive
    coordinates (the same point across layers keeps its side, so the picture does not flip as layers change)."""
    if method not in available_methods():
        raise ConfigError(f"projection {method!r} is not available here: choose one of "
                          f"{', '.join(available_methods())} (t-SNE needs scikit-learn, UMAP needs umap-learn)")
    x = states.double().numpy()
    if len(x) < 3:
        raise DataError(f"a projection needs at least 3 points, got {len(x)}")
    if method == "pca":
        centred = x - x.mean(0, keepdims=True)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        coordinates = centred @ vt[:2].T  # N × 2
        return coordinates * np.where(coordinates[0] < 0, -1.0, 1.0)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30, (len(x) - 1) / 3))
        return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    import umap

    return umap.UMAP(n_components=2, random_state=seed, n_neighbors=min(15, len(x) - 1)).fit_transform(x)


def points_frame(items: Items, coordinates: np.ndarray) -> pd.DataFrame:
    """One row per point: x, y, language, group, text (and tag in token mode)."""
    frame = pd.DataFrame({"x": coordinates[:, 0], "y": coordinates[:, 1], "language": items.languages,
                          "group": items.groups, "text": items.texts})
    if items.tags is not None:
        frame["tag"] = items.tags
    return frame


def translation_distance(states: torch.Tensor, items: Items) -> float:
    """Mean cosine distance between an English sentence and its translations, divided by the mean cosine
    distance between English sentences and the other groups' translations (1: no closer than any sentence;
    near 0: translations coincide). Computed in the full space of one layer, N × E."""
    x = torch.nn.functional.normalize(states.double(), dim=-1)
    languages, groups = np.array(items.languages), np.array(items.groups)
    english, others = np.flatnonzero(languages == "en"), np.flatnonzero(languages != "en")
    distance = 1 - x[english] @ x[others].T  # E × O
    same = torch.from_numpy(groups[english][:, None] == groups[others][None, :])
    if not same.any() or same.all():
        raise DataError("translation distance needs at least two translation groups")
    return float(distance[same].mean() / distance[~same].mean())
