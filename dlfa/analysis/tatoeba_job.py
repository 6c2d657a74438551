"""Tatoeba retrieval as a job of the store: `run_tatoeba_job(spec, out_dir)` has run_job's signature, trains
nothing and writes `out_dir/results.json` through dlfa.results.

The encoder measured is `spec.encoder`, or the trained encoder of the run folder `spec.init_from` (a DLFA run's
fused representation too: its fusion module on the last layer and its fusion layer, the grid's row "dlfa"). Every
layer of every language in `spec.eval_languages` is measured (dlfa.analysis.retrieval), on the first
`spec.max_eval_examples` pairs of each language (all when None), with `spec.bootstrap_samples` resamples. A stop
request (cancel) between two languages ends it with status "stopped" and nothing written.

results.json: per language, `retrieval_accuracy` (the mean of xx→en and en→xx, in points, with its 95% bootstrap
interval over sentence pairs) at `spec.retrieval_layer`, or at XTREME's choice when it is None (`xtreme_layer`:
layer 7 of 12, 13 of 24, as XTREME's scripts/run_tatoeba.sh); the whole layer × language grid with both directions
in `extra["tatoeba"]` (a TatoebaResult dict) and the layer in `extra["retrieval_layer"]`. dlfa.jobs.runner
chooses this function for RETRIEVAL_TASKS; `python -m dlfa train --task tatoeba` calls it in the foreground.
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from dlfa.analysis.layers import run_model_dir
from dlfa.analysis.retrieval import FUSED_ROW, TatoebaResult, tatoeba_retrieval
from dlfa.code_version import code_version
from dlfa.data.sources import DataSource
from dlfa.data.tatoeba import read_tatoeba
from dlfa.engine.callbacks import CallbackList, Progress
from dlfa.engine.job import init_unit_dir
from dlfa.engine.spec import JobSpec
from dlfa.errors import ConfigError, DataError
from dlfa.model.encoders import load_encoder
from dlfa.model.modeling import CONFIG_FILE, DlfaModel
from dlfa.results import COMPLETED, RESULTS_FILE, STOPPED, JobResult, LanguageMetric, read_job_results, write_results

METRIC = "retrieval_accuracy"


def xtreme_layer(num_layers: int) -> int:
    """The layer XTREME's Tatoeba baseline pools (scripts/run_tatoeba.sh: 7 for 12-layer mBERT, 13 for 24-layer
    XLM-R; an index into the hidden states, 0 = embeddings): num_layers // 2 + 1, at most the last layer."""
    return min(num_layers // 2 + 1, num_layers)


def load_run(run_folder: str | Path, encoder: str, seed: int = 1):
    """(the run's saved DlfaModel, a LoadedEncoder holding its trained encoder) of a run folder, a job folder (its
    unit of `seed`, as a training job's init_from) or a model folder; ConfigError when the run was trained from
    another encoder than `encoder`."""
    folder = Path(run_folder).expanduser()
    if (folder / RESULTS_FILE).is_file():
        _, model_dir = init_unit_dir(JobSpec(task="tatoeba", eval_languages=(), encoder=encoder, seeds=(seed,),
                                             init_from=str(folder)))
    else:
        model_dir = run_model_dir(folder)
    try:
        trained_from = json.loads((model_dir / CONFIG_FILE).read_text(encoding="utf-8"))["encoder"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"not a saved model ({exc})", str(model_dir / CONFIG_FILE)) from exc
    if trained_from != encoder:
        raise ConfigError(f"the run {run_folder} was trained from the encoder {trained_from}, not {encoder}: "
                          "give its encoder (or leave --encoder out)")
    base = load_encoder(encoder)
    model = DlfaModel.from_pretrained(model_dir, encoder=base.model).eval()
    return model, replace(base, model=model.encoder)


def language_metrics(result: TatoebaResult, layer: int) -> dict[str, LanguageMetric]:
    """Per language: the average of both directions at `layer`, with its interval and the number of pairs."""
    metrics = {}
    for language in result.languages:
        average = result.cell(language, str(layer)).average
        metrics[language] = LanguageMetric(METRIC, average.value, average.ci_low, average.ci_high,
                                           result.n_sentences[language])
    return metrics


def _finished(spec: JobSpec, path: Path) -> JobResult | None:
    """The completed results of this same spec in `path`, if any (a rerun reuses them)."""
    if not path.is_file():
        return None
    try:
        recorded = read_job_results(path)
    except DataError:
        return None
    if recorded.status == COMPLETED and not spec.changed_settings(recorded.spec):
        return recorded
    raise ConfigError(f"{path} holds the results of other settings "
                      f"({', '.join(spec.changed_settings(recorded.spec)) or recorded.status}): choose another folder")


class _Stopped(Exception):
    """A stop request (cancel, signal) between two languages."""


def run_tatoeba_job(spec: JobSpec, out_dir: str | Path, callbacks=(), resume: bool = True) -> dict:
    """Measure, write `out_dir/results.json` and return its content (see the module docstring)."""
    out_dir = Path(out_dir)
    callbacks = CallbackList(list(callbacks))
    started = time.time()
    done = _finished(spec, out_dir / RESULTS_FILE) if resume else None
    if done is not None:
        callbacks.on_log(f"already measured: {out_dir / RESULTS_FILE}")
        return done.to_dict()
    source = DataSource.resolve(spec.data_root)
    pools = [read_tatoeba(source, language, spec.max_eval_examples) for language in spec.eval_languages]
    if spec.init_from:
        fusion_model, loaded = load_run(spec.init_from, spec.encoder, spec.seeds[0])
        name = f"{spec.encoder} trained in {spec.init_from}"
        fusion_model = fusion_model if fusion_model.config.aggregation == FUSED_ROW else None
    else:
        fusion_model, loaded, name = None, load_encoder(spec.encoder), spec.encoder
    device = torch.device("cuda" if spec.device != "cpu" and torch.cuda.is_available() else "cpu")
    (fusion_model or loaded.model).to(device)
    num_layers = loaded.model.config.num_hidden_layers
    layer = spec.retrieval_layer if spec.retrieval_layer is not None else xtreme_layer(num_layers)
    if layer > num_layers:
        raise ConfigError(f"layer {layer} does not exist: the encoder has layers 0…{num_layers} (0 = embeddings)")

    def on_language(index: int, language: str) -> None:
        if callbacks.should_stop():  # a cancel: nothing is written, a rerun measures from the start
            raise _Stopped
        callbacks.on_progress(Progress(1, 1, "tatoeba", language, index, len(pools), None, index / len(pools)))
        callbacks.on_log(f"measuring {language} ({index + 1}/{len(pools)})")

    try:
        result = tatoeba_retrieval(name, loaded, pools, None, spec.bootstrap_samples, spec.batch_size,
                                   source.describe(), fusion_model, spec.max_length, on_language)
    except _Stopped:
        callbacks.on_log("stopped before the end: no results written")
        return {"status": STOPPED, "spec": spec.to_dict()}
    metrics = language_metrics(result, layer)
    callbacks.on_progress(Progress(1, 1, "tatoeba", "eval", len(pools), len(pools), None, 1.0))
    callbacks.on_unit_end(f"tatoeba-L{layer}", {"metrics": {lang: m.to_dict() for lang, m in metrics.items()}})
    results = JobResult(spec.to_dict(), COMPLETED, (), metrics, None, code_version(), round(time.time() - started, 1),
                        {"retrieval_layer": layer, "tatoeba": result.to_dict()})
    write_results(out_dir / RESULTS_FILE, results)
    return results.to_dict()


def job_tatoeba(results: JobResult) -> TatoebaResult | None:
    """The layer × language grid a Tatoeba job recorded (None for other jobs)."""
    recorded = results.extra.get("tatoeba")
    if recorded is None:
        return None
    try:
        return TatoebaResult.from_dict(recorded)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataError(f"the job's 'tatoeba' grid is malformed ({type(exc).__name__}: {exc})") from None
