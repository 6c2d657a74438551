"""Every st.cache_data and st.cache_resource of the app, in one place, each keyed by all it depends on.

Streamlit keys a cached function by its arguments, leaving out those whose names start with "_": no parameter
here starts with one (tests/test_pages.py checks it), and every input a result depends on is an argument:
- a data source as a SourceKey (its kind and folder), not a data root that $DLFA_DATA_DIR or the classroom pack
  would resolve later;
- an encoder by its spec and `stamp` (encoder_stamp: where its files are and when they were written);
- a run's saved model by its folder and `stamp` (model_stamp: its files, and its base encoder's), so a run
  retrained in place is loaded again.
The callers (dlfa.app.session, dlfa.app.catalog, dlfa.app.inference, the pages) compute these keys.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import NamedTuple

import numpy as np
import streamlit as st

from dlfa.app.guard import require
from dlfa.errors import DlfaError
from dlfa.paths import cache_dir


class SourceKey(NamedTuple):
    """A resolved data source: kind ("files", "pack" or "hub") and its folder (None for the hub)."""

    kind: str
    root: str | None

    @classmethod
    def of(cls, source) -> SourceKey:
        return cls(source.kind, str(source.root) if source.root else None)

    def source(self):
        from dlfa.data.registry import DataSource

        return DataSource.hub() if self.kind == "hub" else DataSource(self.kind, Path(self.root))


def files_stamp(folder: str | Path) -> str:
    """The folder and a hash of the path, size and modification time (ns) of every file under it: it changes
    when any file is written again. '' when there is no such folder."""
    folder = Path(folder)
    if not folder.is_dir():
        return ""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return f"{folder.resolve()}@{digest.hexdigest()[:16]}"


def encoder_stamp(spec: str) -> str:
    """files_stamp of the folder an encoder spec loads from (the built embedded encoder, a local folder); '' for
    a hub id (a revision on the hub does not change) or a spec that does not parse (loading it says why)."""
    from dlfa.model.encoders import resolve_spec

    try:
        kind, target = resolve_spec(spec)
    except DlfaError:
        return ""
    if kind == "embedded":
        return files_stamp(cache_dir() / "models" / target)
    return files_stamp(target) if kind == "local" else ""


# ----------------------------------------------------------------------------------------------------
# Facts of the machine, the encoder and the data source


@st.cache_resource(show_spinner=False)
def gpu_info() -> dict:
    """{"available": bool, "count": int, "name": str}."""
    import torch

    if not torch.cuda.is_available():
        return {"available": False, "count": 0, "name": ""}
    return {"available": True, "count": torch.cuda.device_count(), "name": torch.cuda.get_device_name(0)}


@st.cache_data(show_spinner=False, ttl=600)
def encoder_summary(spec: str, stamp: str) -> dict:
    """dlfa.model.encoders.encoder_info as a dict; DlfaError with a readable message on a bad spec."""
    from dlfa.model.encoders import encoder_info

    return encoder_info(spec).to_dict()


@st.cache_resource(show_spinner=False)
def job_store(path: str):
    """The JobStore of a database file (one per file and process)."""
    from dlfa.jobs.store import JobStore

    return JobStore(path)


@st.cache_data(show_spinner=False, ttl=300)
def language_scan(task: str, source: SourceKey):
    """dlfa.data.registry.LanguageScan of a task in a data source."""
    from dlfa.data.registry import scan_languages

    return scan_languages(task, source.source())


@st.cache_data(show_spinner=False, ttl=300)
def intermediate_presets(source: SourceKey, exclude: tuple[str, ...]) -> dict[int, tuple | str]:
    """{count: intermediate tasks, or why the source cannot serve that count} of dlfa.reproduction.study_design."""
    from dlfa.reproduction.study_design import INTERMEDIATE_PRESETS, preset_for

    presets = {}
    for count in INTERMEDIATE_PRESETS:
        try:
            presets[count] = tuple(preset_for(count, source.source(), exclude))
        except DlfaError as exc:
            presets[count] = str(exc)  # not enough intermediate tasks with English data in this source
    return presets


@st.cache_data(show_spinner=False, ttl=300)
def intermediate_tasks(source: SourceKey) -> list[str]:
    """English intermediate tasks with English training data in the source, in dlfa.reproduction.study_design's order."""
    from dlfa.reproduction.study_design import available_intermediate_tasks

    return list(available_intermediate_tasks(source.source()))


# ----------------------------------------------------------------------------------------------------
# Encoders and saved models (inference in the app's process)


@st.cache_resource(show_spinner="Loading the encoder…", max_entries=2)
def loaded_encoder(spec: str, stamp: str):
    """dlfa.model.encoders.load_encoder in eval mode (inference only)."""
    from dlfa.model.encoders import load_encoder

    loaded = load_encoder(spec)
    loaded.model.eval()
    return loaded


def run_encoder_spec(model_dir: str) -> str:
    """The encoder spec a saved model was fine-tuned from (its dlfa_config.json); DlfaError without one."""
    from dlfa.model.modeling import CONFIG_FILE

    try:
        return json.loads((Path(model_dir) / CONFIG_FILE).read_text())["encoder"]
    except (OSError, ValueError, KeyError) as exc:
        raise DlfaError(f"{model_dir} holds no readable model config: {exc}") from exc


@st.cache_resource(show_spinner="Loading the run's model…", max_entries=4)
def run_model(model_dir: str, device: str, stamp: str):
    """(DlfaModel on `device`, tokenizer) of a saved model. The encoder is copied from the cached one of its spec
    (reading a model folder and its tokenizer from disk costs far more than a copy in memory)."""
    import copy

    from dlfa.model.modeling import DlfaModel

    spec = run_encoder_spec(model_dir)
    loaded = loaded_encoder(spec, encoder_stamp(spec))
    model = DlfaModel.from_pretrained(model_dir, encoder=copy.deepcopy(loaded.model))
    model.to(device).eval()
    return model, loaded.tokenizer


@st.cache_resource(show_spinner="Loading the run's encoder…", max_entries=2)
def run_encoder(model_dir: str, stamp: str, base_spec: str):
    """The fine-tuned encoder of a saved model as a LoadedEncoder (dlfa.analysis.layers.fine_tuned_encoder)."""
    layers = require("dlfa.analysis.layers")
    return layers.fine_tuned_encoder(model_dir, base=loaded_encoder(base_spec, encoder_stamp(base_spec)))


@st.cache_data(show_spinner=False, max_entries=64)
def fusion_weights(model_dir: str, device: str, stamp: str, task: str, text: str, text_pair: str | None) -> dict:
    """W of a saved dlfa model on a typed text: {"tokens", "weights" T×E, "per_token_mean", "mean_last"}."""
    from dlfa.engine.evaluate import fusion_weights_for_text

    model, tokenizer = run_model(model_dir, device, stamp)
    return fusion_weights_for_text(model, tokenizer, (text, text_pair) if text_pair is not None else text, task)


@st.cache_data(show_spinner=False, max_entries=64)
def attribution(model_dir: str, device: str, stamp: str, task: str, text: str, text_pair: str | None,
                word_index: int | None) -> dict:
    """Captum integrated gradients of one prediction of a saved model, as a dict of plain lists."""
    from dataclasses import asdict, is_dataclass

    explain = require("dlfa.analysis.explain")
    model, tokenizer = run_model(model_dir, device, stamp)
    kwargs = {"text_pair": text_pair} if text_pair is not None else {}
    if word_index is not None:
        kwargs["word_index"] = word_index
    result = explain.integrated_gradients(model, tokenizer, text, task=task, **kwargs)
    data = asdict(result) if is_dataclass(result) else dict(result)
    return {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in data.items()}


# ----------------------------------------------------------------------------------------------------
# Layer analysis and Tatoeba retrieval


def _layer_analysis(loaded, name: str, languages: tuple[str, ...], max_pairs: int, source: SourceKey) -> dict:
    layers = require("dlfa.analysis.layers")
    pairs = layers.parallel_pairs(source.source(), list(languages), max_pairs)
    return layers.layer_analysis(name, pairs, max_pairs, loaded=loaded).to_dict()


@st.cache_data(show_spinner=False, max_entries=16)
def layer_analysis(encoder: str, stamp: str, languages: tuple[str, ...], max_pairs: int, source: SourceKey) -> dict:
    """dlfa.analysis.layers.layer_analysis of an encoder on parallel pairs of the source, as plain lists."""
    return _layer_analysis(loaded_encoder(encoder, stamp), encoder, languages, max_pairs, source)


@st.cache_data(show_spinner=False, max_entries=16)
def run_layer_analysis(model_dir: str, stamp: str, name: str, languages: tuple[str, ...], max_pairs: int,
                       source: SourceKey, encoder: str) -> dict:
    """The layer analysis of a saved model's fine-tuned encoder (`encoder`: the spec it was tuned from)."""
    return _layer_analysis(run_encoder(model_dir, stamp, encoder), name, languages, max_pairs, source)


@st.cache_data(show_spinner=False, max_entries=16)
def tatoeba_analysis(encoder: str, model_dir: str, stamp: str, name: str, languages: tuple[str, ...],
                     max_pairs: int, source: SourceKey) -> dict:
    """dlfa.analysis.retrieval.tatoeba_retrieval (every layer, 200 bootstrap samples) of an encoder, or of the
    fine-tuned encoder saved in `model_dir` when given ('' otherwise), as TatoebaResult.to_dict()."""
    retrieval = require("dlfa.analysis.retrieval")
    if model_dir:
        loaded = run_encoder(model_dir, stamp, encoder)
    else:
        loaded = loaded_encoder(encoder, stamp)
    pools = [retrieval.read_tatoeba(source.source(), language, max_pairs) for language in languages]
    return retrieval.tatoeba_retrieval(name, loaded, pools, bootstrap_samples=200,
                                       source=str(source.source())).to_dict()


# ----------------------------------------------------------------------------------------------------
# The inspection views: attention, projector, examples


@st.cache_resource(show_spinner="Loading the encoder with eager attention…", max_entries=2)
def eager_encoder(spec: str, stamp: str):
    """dlfa.analysis.attention.load_eager_encoder: the encoder with attention probabilities."""
    return require("dlfa.analysis.attention").load_eager_encoder(spec)


@st.cache_resource(show_spinner="Loading the run's model…", max_entries=2)
def eager_run_model(model_dir: str, stamp: str, spec: str):
    """(DlfaModel, tokenizer) of a saved model whose encoder (fine-tuned from `spec`) uses eager attention."""
    return require("dlfa.analysis.attention").load_run(model_dir, eager_encoder(spec, encoder_stamp(spec)))


@st.cache_data(show_spinner="Running the encoder…", max_entries=32)
def encoder_attention(spec: str, stamp: str, text: str, pair: str | None) -> dict:
    """{"maps": AttentionMaps} of an encoder on a text (and its pair)."""
    loaded = eager_encoder(spec, stamp)
    return {"maps": require("dlfa.analysis.attention").attention_maps(loaded.model, loaded.tokenizer, text, pair)}


@st.cache_data(show_spinner="Running the run's model…", max_entries=32)
def run_attention(model_dir: str, stamp: str, spec: str, text: str, pair: str | None) -> dict:
    """A saved model's attention maps; for a dlfa model also W and the fused and last layers' attention
    (dlfa.analysis.attention.fused_view)."""
    attention = require("dlfa.analysis.attention")
    model, tokenizer = eager_run_model(model_dir, stamp, spec)
    if model.config.aggregation == "dlfa":
        return attention.fused_view(model, tokenizer, text, pair)
    return {"maps": attention.attention_maps(model.encoder, tokenizer, text, pair)}


@st.cache_data(show_spinner=False, max_entries=8)
def projector_points(mode: str, source_name: str, languages: tuple[str, ...], count: int, source: SourceKey,
                     tokenizer_spec: str, tokenizer_stamp: str):
    """(Items to project, the tagged sentences of word mode or None) of a projector request."""
    projector = require("dlfa.analysis.projector")
    if mode == "sentences":
        return projector.parallel_sentences(source_name, source.source(), list(languages), count), None
    sentences = projector.tagged_sentences(source.source(), list(languages), count)
    tokenizer = loaded_encoder(tokenizer_spec, tokenizer_stamp).tokenizer
    return projector.word_items(tokenizer, sentences), sentences


@st.cache_data(show_spinner="Encoding layer by layer…", max_entries=8)
def projector_states(encoder_key: str, base_spec: str, base_stamp: str, model_dir: str | None, stamp: str | None,
                     request: tuple) -> np.ndarray:
    """(L + 1) × N × E states of a request's points in the base encoder, or in the fine-tuned encoder saved in
    `model_dir` (`stamp`: its model_stamp). `request`: the arguments of projector_points before the tokenizer."""
    projector = require("dlfa.analysis.projector")
    from dlfa.paths import cache_subdir

    items, sentences = projector_points(*request, base_spec, base_stamp)
    loaded = run_encoder(model_dir, stamp, base_spec) if model_dir else loaded_encoder(base_spec, base_stamp)
    states = projector.layer_states(loaded, encoder_key, sentences or items, cache_subdir("features", "projector"))
    return states.numpy()


@st.cache_data(show_spinner="Projecting…", max_entries=64)
def projection(encoder_key: str, states: np.ndarray, layer: int, method: str) -> np.ndarray:
    """N × 2 coordinates of one layer's states (dlfa.analysis.projector.project)."""
    import torch

    return require("dlfa.analysis.projector").project(torch.from_numpy(states[layer]), method)


@st.cache_data(show_spinner="Reading the predictions…", max_entries=32)
def predictions(folder: str, stamp: str, results, language: str, source: SourceKey | None):
    """dlfa.analysis.examples.load_language of a run (`results`: its dlfa.results.RunResult; `stamp`: files_stamp
    of its predictions) joined with the test text of `source` (None: the run's own data root)."""
    examples = require("dlfa.analysis.examples")
    return examples.load_language(results, Path(folder), language, source.source() if source else None)
