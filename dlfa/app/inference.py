"""Inference the pages run in the app's process (typed sentences, attributions, layer analyses, the inspection
views), through the cached functions of dlfa.app.cache with their keys computed here: a run's model by its
model_stamp, an encoder by its encoder_stamp, a data root by its resolved source."""
from __future__ import annotations

from pathlib import Path

from dlfa.app import cache
from dlfa.app.catalog import sort_by_family
from dlfa.app.guard import require
from dlfa.app.runs import Unit, unit_label
from dlfa.app.session import inference_device, resolve_source, settings, source_key
from dlfa.errors import DlfaError


def model_stamp(unit: Unit) -> str:
    """A cache key of the unit's saved model: its files (a rerun writes them again) and its base encoder's; a
    clear error when the run kept no model."""
    if not unit.has_model:
        raise DlfaError(f"run {unit.label} of job {unit.job_id} has no saved model in {unit.model_dir}")
    return f"{cache.files_stamp(unit.model_dir)}|{cache.encoder_stamp(unit.encoder)}"


def fusion_weights(unit: Unit, text: str, text_pair: str | None = None) -> dict:
    """W of a dlfa unit on a typed text: {"tokens", "weights" T×E, "per_token_mean", "mean_last"}."""
    if unit.aggregation != "dlfa":
        raise DlfaError(f"run {unit.label} uses '{unit.aggregation}': fusion weights exist only for dlfa runs")
    return cache.fusion_weights(str(unit.model_dir), inference_device(), model_stamp(unit), unit.task, text,
                                text_pair)


def attribution(unit: Unit, text: str, text_pair: str | None = None, word_index: int | None = None) -> dict:
    """Captum integrated gradients of one prediction of a unit's model, as a dict."""
    return cache.attribution(str(unit.model_dir), inference_device(), model_stamp(unit), unit.task, text, text_pair,
                             word_index)


def layer_analysis(encoder: str, languages: tuple[str, ...], max_pairs: int, data_root: str | None) -> dict:
    """dlfa.analysis.layers.layer_analysis of an encoder on parallel pairs of the data source, as plain lists."""
    return cache.layer_analysis(encoder, cache.encoder_stamp(encoder), languages, max_pairs, source_key(data_root))


def run_layer_analysis(unit: Unit, languages: tuple[str, ...], max_pairs: int, data_root: str | None) -> dict:
    """The layer analysis of a run's fine-tuned encoder (its saved model), like `layer_analysis`."""
    return cache.run_layer_analysis(str(unit.model_dir), model_stamp(unit), unit_label(unit), languages, max_pairs,
                                    source_key(data_root), unit.encoder)


def tatoeba_analysis(encoder: str | None, languages: tuple[str, ...], max_pairs: int, data_root: str | None,
                     unit: Unit | None = None) -> dict:
    """dlfa.analysis.retrieval.tatoeba_retrieval (every layer, 200 bootstrap samples) of an encoder, or of a run's
    fine-tuned encoder when `unit` is given, as TatoebaResult.to_dict()."""
    source = source_key(data_root)
    if unit is None:
        return cache.tatoeba_analysis(encoder, "", cache.encoder_stamp(encoder), encoder, languages, max_pairs, source)
    return cache.tatoeba_analysis(unit.encoder, str(unit.model_dir), model_stamp(unit), unit_label(unit), languages,
                                  max_pairs, source)


def tatoeba_languages(data_root: str | None) -> list[str]:
    retrieval = require("dlfa.analysis.retrieval")
    return sort_by_family(retrieval.available_tatoeba_languages(resolve_source(data_root)))


def parallel_languages(data_root: str | None) -> list[str]:
    layers = require("dlfa.analysis.layers")
    return sort_by_family(layers.available_parallel_languages(resolve_source(data_root)))


# ----------------------------------------------------------------------------------------------------
# The inspection views


def attention_view(spec: str, text: str, pair: str | None, unit: Unit | None = None) -> dict:
    """{"maps": AttentionMaps} of the encoder `spec` on a text, or of a run's model (for a dlfa run also "weights",
    "fusion_layer", "fused" and "last": dlfa.analysis.attention.fused_view)."""
    if unit is None:
        return cache.encoder_attention(spec, cache.encoder_stamp(spec), text, pair)
    return cache.run_attention(str(unit.model_dir), model_stamp(unit), spec, text, pair)


def projector_items(request: tuple, base_spec: str):
    """(Items, tagged sentences or None) of a projector request (mode, parallel source, languages, count,
    data root); word mode tokenizes with `base_spec`'s tokenizer."""
    *points, data_root = request
    return cache.projector_points(*points, source_key(data_root), base_spec, cache.encoder_stamp(base_spec))


def projector_states(request: tuple, base_spec: str, unit: Unit | None = None):
    """{side name: (L + 1) × N × E states} of a request: the base encoder's, and beside it a run's fine-tuned
    encoder's when `unit` is given."""
    *points, data_root = request
    keyed = (*points, source_key(data_root))
    base_stamp = cache.encoder_stamp(base_spec)
    sides = {f"base · {base_spec}": cache.projector_states(base_spec, base_spec, base_stamp, None, None, keyed)}
    if unit is not None:
        stamp = model_stamp(unit)
        sides[f"fine-tuned · {unit.label}"] = cache.projector_states(f"{unit.model_dir}@{stamp}", base_spec,
                                                                     base_stamp, str(unit.model_dir), stamp, keyed)
    return sides


def translation_distances(states, items) -> list[float]:
    """Per layer of (L + 1) × N × E states: the mean distance of translations ÷ that of other sentences."""
    import torch

    projector = require("dlfa.analysis.projector")
    return [projector.translation_distance(torch.from_numpy(layer), items) for layer in states]


def predictions(unit: Unit, language: str):
    """dlfa.analysis.examples.LanguagePredictions of a unit in one language, with the test text read from the run's
    own data root when it exists here, else from the sidebar's."""
    examples = require("dlfa.analysis.examples")
    own = unit.result.spec.get("data_root")
    data_root = own if own and Path(own).is_dir() else settings().data_root
    stamp = cache.files_stamp(unit.folder / examples.PREDICTIONS_DIR)
    return cache.predictions(str(unit.folder), stamp, unit.result, language,
                             source_key(data_root) if data_root else None)
