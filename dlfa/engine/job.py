"""One training entry point: `run_job(spec, out_dir)` trains and evaluates every unit of a JobSpec.

    for each unit (aggregation × fusion layer × learning rate × seed) of the spec → out_dir/<unit_name>/
        the unit's loop (dlfa.engine.train.UnitTrainer): stages, steps, dev selection, checkpoints, and
        its results.json: zero-shot test metrics per language of the best dev state
    out_dir/results.json: the spec, per-language metrics (mean over seeds), every run, a layer × language grid,
    the learning rate chosen per configuration when the spec holds a grid
    out_dir/<unit_name>/spec.json: the unit's settings; a folder holding another run's settings is refused

The units of a job share one loaded encoder (its trainable weights restored before each unit) and the encoded
data. With `init_from`, each unit's encoder then takes the trained encoder of the finished unit it names
(`init_unit_dir`: the unit itself, or a job's unit of the same seed). The command line (`python -m dlfa
train`) and the job worker (dlfa.jobs.worker, also under torchrun) call `run_job`.
"""
from __future__ import annotations

import gc
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dlfa.code_version import code_version
from dlfa.curves import CURVES_FILE
from dlfa.engine.callbacks import Callback, CallbackList, CurvesCallback, TensorBoardCallback
from dlfa.engine.datasets import UnitData, load_job_data
from dlfa.engine.cpu_dropout import use_fast_cpu_dropout
from dlfa.engine.metrics import mean_interval
from dlfa.engine.probe import FeatureNet, fit_standardization, hidden_state_dataset
from dlfa.engine.runtime import Runtime, advise_random_access, name_seed, release_memory, set_seed, setup_runtime
from dlfa.engine.spec import JobSpec
from dlfa.engine.train import UnitTrainer
from dlfa.errors import ConfigError, DlfaError
from dlfa.io import write_json
from dlfa.model.encoders import encoder_path, load_encoder
from dlfa.model.modeling import DlfaConfig, DlfaModel, HeadConfig, load_encoder_weights, read_saved_config
from dlfa.results import (COMPLETED, RESULTS_FILE, RUNNING, STOPPED, JobResult, LanguageMetric, RunResult,
                          model_folder, read_job_results, read_results, read_run_results, write_results)

UNIT_SPEC_FILE = "spec.json"  # in each unit folder: the settings its checkpoints and results belong to


class JobInputs:
    """What every unit of a job shares: the encoder, checked out by each unit with its original weights restored
    from a copy of the parameters training can change (frozen word embeddings never change and are not copied; a
    job of one fine-tuning unit keeps no copy), and the encoded data. The tokenizer is dropped once the data is
    encoded: training does not need its large vocabulary."""

    def __init__(self, spec: JobSpec, freeze_word_embeddings: bool, reused: bool):
        loaded = load_encoder(spec.encoder)
        self.encoder = loaded.model
        embeddings = self.encoder.get_input_embeddings().weight
        advise_random_access(embeddings)
        self.data = load_job_data(spec, loaded.tokenizer)
        del loaded
        gc.collect()
        release_memory()
        self.original = {name: p.detach().clone() for name, p in self.encoder.named_parameters()
                         if reused and not (freeze_word_embeddings and p is embeddings)}

    @torch.no_grad()
    def checkout_encoder(self) -> nn.Module:
        """The encoder with its parameters as loaded and all trainable."""
        for name, p in self.encoder.named_parameters():
            if name in self.original:
                p.copy_(self.original[name])
            p.requires_grad_(True)
        return self.encoder


def freezes_word_embeddings(spec: JobSpec, runtime: Runtime) -> bool:
    """spec.freeze_word_embeddings, or by default: frozen on the CPU, trained on a GPU."""
    if spec.freeze_word_embeddings is not None:
        return spec.freeze_word_embeddings
    return runtime.device.type == "cpu"


def init_unit_dir(unit: JobSpec) -> tuple[Path, Path]:
    """(the finished unit folder whose trained encoder `unit` starts from, its saved model folder): unit.init_from
    itself when it is a unit's folder, else the unit of that job folder with the same seed (and, among several,
    the same aggregation, fusion layer and learning rate). ConfigError naming the folder when it is missing or
    unfinished, holds no saved model, or was trained from another base encoder than unit.encoder."""
    folder = Path(unit.init_from).expanduser()
    if not (folder / RESULTS_FILE).is_file():
        raise ConfigError(f"init_from: {folder} is not a finished run: it has no {RESULTS_FILE} (give the folder "
                          "of a finished job, or of one of its units)")
    try:
        results = read_results(folder)
    except DlfaError as exc:
        raise ConfigError(f"init_from: {exc}") from exc
    unit_dir = folder
    if isinstance(results, JobResult):
        seed = unit.seeds[0]
        runs = [run for run in results.runs if run.seed == seed]
        if len(runs) > 1:
            runs = [run for run in runs if JobSpec.from_dict(run.spec).unit_name() == unit.unit_name()]
        if len(runs) != 1:
            found = ", ".join(JobSpec.from_dict(run.spec).unit_name() for run in results.runs) or "none yet"
            raise ConfigError(f"init_from: the job {folder} ({results.status}) has "
                              f"{'no unit' if not runs else 'several units'} of seed {seed} to start "
                              f"{unit.unit_name()} from (its units: {found})")
        unit_dir = folder / JobSpec.from_dict(runs[0].spec).unit_name()
        results = runs[0]
    if not results.completed:
        raise ConfigError(f"init_from: the run in {unit_dir} is {results.status}, not finished: resume it first")
    model_dir = model_folder(unit_dir, results)
    try:
        saved, _ = read_saved_config(model_dir)
    except DlfaError as exc:
        raise ConfigError(f"init_from: {exc}") from exc
    if saved.encoder != unit.encoder and not _same_encoder(saved.encoder, unit.encoder):
        raise ConfigError(f"init_from: {unit_dir} was trained from the encoder {saved.encoder}, this job's encoder is "
                          f"{unit.encoder}: init_from replaces the weights of the same base encoder, so set the "
                          f"encoder to {saved.encoder}")
    return unit_dir, model_dir


def _same_encoder(first: str, second: str) -> bool:
    """Whether two encoder specs name the same folder or hub id (e.g. a relative and an absolute path)."""
    try:
        return encoder_path(first) == encoder_path(second)
    except DlfaError:
        return False


def build_unit(spec: JobSpec, runtime: Runtime, inputs: JobInputs,
               init_model_dir: Path | None = None) -> tuple[DlfaModel, nn.Module, UnitData]:
    """The model (its encoder torch.compile'd with spec.compile_model), the net that runs it on batches (the
    model, or the probe's cached-feature front end), and the data of one unit. Each head is initialised from
    (seed, its name) alone, so a target head starts the same whatever intermediate heads, aggregation or init_from
    came with it; the encoder's weights are those of the saved model in `init_model_dir`
    (dlfa.model.modeling.load_encoder_weights) when it is given."""
    heads = {name: HeadConfig(info.kind, list(info.labels)) for name, info in inputs.data.tasks.items()}
    config = DlfaConfig(encoder=spec.encoder, heads=heads, aggregation=spec.aggregations[0],
                        fusion_layer=spec.fusion_layers[0] if spec.fusion_layers else None,
                        reduction=spec.reduction, freeze_word_embeddings=freezes_word_embeddings(spec, runtime),
                        standardize_features=spec.probe, pooling=spec.pooling)
    set_seed(spec.seeds[0])
    model = DlfaModel(config, inputs.checkout_encoder())
    if init_model_dir is not None:
        loaded = set(load_encoder_weights(init_model_dir, model.encoder))
        frozen = sorted(loaded & {name for name, p in model.encoder.named_parameters() if not p.requires_grad})
        if frozen:  # a saved model reloads frozen weights from the base encoder: they would be lost
            raise ConfigError(f"init_from: {init_model_dir} trained {', '.join(frozen)}, which this job freezes: "
                              "set freeze_word_embeddings to false to keep them")
    for task, head in model.heads.items():  # each head's start: the same whatever aggregation or heads came first
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(name_seed(spec.seeds[0], task))
            head.reset_parameters()
    model.to(runtime.device)
    if runtime.device.type == "cpu":
        use_fast_cpu_dropout(model)
    set_seed(spec.seeds[0])  # dropout masks: the same stream for every aggregation
    if spec.compile_model:
        compile_encoder(model)
    if spec.probe:
        model.encoder.requires_grad_(False)
        data = inputs.data.map(lambda d: hidden_state_dataset(model, d, spec, runtime))
        fit_standardization(model, data.train.values())
        return model, FeatureNet(model), data
    return model, model, inputs.data


def compile_encoder(model: DlfaModel) -> None:
    """torch.compile the model's encoder, in place (JobSpec.compile_model). The encoder only: it launches nearly all
    of a step's kernels, and it never sees the task's name, on which a compiled model would be specialised once per
    head (torch stops compiling after 8). In place, so the state dict keeps its names. dynamic=True: every batch
    shape runs the same shape-generic kernels; left to torch, the first shape gets its own, and a later process that
    finds the shapes' dynamism cached does not, so two runs of one spec would differ."""
    model.encoder.compile(dynamic=True)


def config_name(spec: JobSpec) -> str:
    """A unit's configuration without its seed: `dlfa-L6`, `last`."""
    return spec.unit_name().rsplit("-s", 1)[0]


def summarize(spec: JobSpec, runs: list[RunResult], status: str, seconds: float) -> JobResult:
    """The job's results: its runs, the job-level metrics (one config: its run, or the mean over seeds with a
    t-interval over seeds) and, for sweeps over several configs, a grid: one row per config with dev and
    per-language values. An intermediate-only job has neither: its runs hold their intermediate_dev tables."""
    complete = [r for r in runs if r.completed]
    configs: dict[str, list[RunResult]] = {}
    for run in complete if not spec.intermediate_only else ():  # intermediate only: no zero-shot metrics
        configs.setdefault(config_name(JobSpec.from_dict(run.spec)), []).append(run)
    metrics: dict[str, LanguageMetric] = {}
    grid, extra = None, {}
    if len(configs) == 1:
        (group,) = configs.values()
        if len(group) == 1:
            metrics = group[0].metrics
        else:
            for language in spec.eval_languages:
                values = [r.metrics[language].value for r in group]
                mean, low, high = mean_interval(values)
                metrics[language] = LanguageMetric(group[0].metrics[language].metric, mean, low, high, len(values),
                                                   ci_over="seeds")
    elif configs:
        rows = []
        for name, group in configs.items():
            unit = JobSpec.from_dict(group[0].spec)
            values = {lang: float(np.mean([r.metrics[lang].value for r in group])) for lang in spec.eval_languages}
            devs = [r.dev_score for r in group if r.dev_score is not None]
            rows.append({"config": name, "aggregation": unit.aggregations[0],
                         "fusion_layer": unit.fusion_layers[0] if unit.fusion_layers else None,
                         "learning_rate": unit.learning_rate, "seeds": len(group),
                         "dev": float(np.mean(devs)) if devs else None, "values": values,
                         "mean": float(np.mean(list(values.values())))})
        grid = {"languages": list(spec.eval_languages), "rows": rows}
    if spec.learning_rates:
        extra["learning_rate_choice"] = choose_learning_rates(complete)
    return JobResult(spec.to_dict(), status, tuple(runs), metrics, grid, code_version(), seconds, extra)


def choose_learning_rates(runs: list[RunResult]) -> list[dict]:
    """Per configuration (aggregation, fusion layer) of a learning-rate grid: the rate with the best mean
    English dev score over its seeds (ties: the smaller rate), and every candidate's score (None: no dev)."""
    scores: dict[tuple, dict[float, list[float]]] = {}
    for run in runs:
        unit = JobSpec.from_dict(run.spec)
        key = (unit.aggregations[0], unit.fusion_layers[0] if unit.fusion_layers else None)
        devs = scores.setdefault(key, {}).setdefault(unit.learning_rate, [])
        if run.dev_score is not None:
            devs.append(run.dev_score)
    choices = []
    for (aggregation, layer), by_rate in scores.items():
        candidates = [{"learning_rate": rate, "dev": float(np.mean(devs)) if devs else None}
                      for rate, devs in sorted(by_rate.items())]
        scored = [c for c in candidates if c["dev"] is not None]
        chosen = max(scored, key=lambda c: c["dev"])["learning_rate"] if scored else None  # max keeps the first
        choices.append({"aggregation": aggregation, "fusion_layer": layer, "learning_rate": chosen,
                        "candidates": candidates})
    return choices


def claim_unit_dir(unit: JobSpec, unit_dir: Path, write: bool = True) -> None:
    """Record the unit's spec in unit_dir/spec.json, or refuse a folder that holds a run with other settings
    (its results or checkpoints would otherwise be taken for this run's)."""
    recorded_path = unit_dir / UNIT_SPEC_FILE
    if recorded_path.is_file():
        recorded = json.loads(recorded_path.read_text())
    elif (unit_dir / RESULTS_FILE).is_file():  # written before units recorded their spec
        recorded = json.loads((unit_dir / RESULTS_FILE).read_text()).get("spec", {})
    else:
        recorded = None
    changed = unit.changed_settings(recorded) if recorded is not None else []
    if changed:
        raise ConfigError(f"{unit_dir} holds a run of {unit.unit_name()} with other settings "
                          f"({', '.join(changed)}): choose another output folder, or move that one away to start over")
    if write and not recorded_path.is_file():
        write_json(recorded_path, unit.to_dict())


def _finished(unit_dir: Path) -> bool:
    """Whether unit_dir holds a completed run's results.json."""
    if not (unit_dir / RESULTS_FILE).is_file():
        return False
    done = read_results(unit_dir)
    return isinstance(done, RunResult) and done.completed


def run_job(spec: JobSpec, out_dir: str | Path, callbacks: tuple[Callback, ...] | list[Callback] = (),
            resume: bool = True) -> dict:
    """Train and evaluate every unit of `spec` into out_dir/<unit_name>/; write out_dir/results.json (a
    dlfa.results.JobResult) and return its content: {"spec", "status", "metrics", "runs", ["grid"]}. Completed
    units are skipped and interrupted ones resumed unless resume=False. Only rank 0 writes files and returns the
    full results."""
    spec.validate(check_data=False, check_encoder=False)  # a bad field fails here, before anything is written
    out_dir = Path(out_dir)
    callbacks = CallbackList([*callbacks, CurvesCallback(out_dir),
                              *([TensorBoardCallback(out_dir)] if spec.tensorboard else [])])
    runtime = setup_runtime(spec)
    if not resume and runtime.is_main:
        (out_dir / CURVES_FILE).unlink(missing_ok=True)  # every unit starts over, and so do the curves
    units = spec.units()
    runs: list[RunResult] = []
    inputs: JobInputs | None = None
    started = time.perf_counter()
    finished = {unit.unit_name() for unit in units if resume and _finished(out_dir / unit.unit_name())}
    inits = {unit.unit_name(): init_unit_dir(unit) for unit in units  # before any training: fail fast
             if unit.init_from and unit.unit_name() not in finished}
    for index, unit in enumerate(units):
        unit_dir = out_dir / unit.unit_name()
        if not resume and runtime.is_main:
            shutil.rmtree(unit_dir, ignore_errors=True)
        if runtime.world > 1:
            torch.distributed.barrier()
        claim_unit_dir(unit, unit_dir, write=runtime.is_main)  # every rank refuses, so none waits alone
        if unit.unit_name() in finished:
            results = read_run_results(unit_dir)
        else:
            if runtime.is_main:
                unit_dir.mkdir(parents=True, exist_ok=True)
                callbacks.on_log(f"unit {index + 1}/{len(units)}: {unit.unit_name()} on {runtime.device} "
                                 f"({runtime.precision}, {runtime.world} process{'es' if runtime.world > 1 else ''})")
            inputs = inputs or JobInputs(spec, freezes_word_embeddings(spec, runtime),
                                         reused=index + 1 < len(units) and not spec.probe)
            init_dir, init_model_dir = inits.get(unit.unit_name(), (None, None))
            model, net, data = build_unit(unit, runtime, inputs, init_model_dir)
            results = UnitTrainer(unit, unit_dir, model, net, data, runtime, callbacks, (index, len(units)),
                                  init_from=init_dir).run()
            del model, net, data
            if runtime.is_main and results.completed:
                callbacks.on_unit_end(unit.unit_name(), results.to_dict())
        runs.append(results)
        status = STOPPED if not results.completed else RUNNING if index + 1 < len(units) else COMPLETED
        if runtime.is_main:
            job = summarize(spec, runs, status, time.perf_counter() - started)
            write_results(out_dir, job)
        if not results.completed:
            break
    if runtime.world > 1:
        torch.distributed.barrier()
    if runtime.owns_process_group:
        torch.distributed.destroy_process_group()
    if not runtime.is_main:
        return {"spec": spec.to_dict(), "status": status, "rank": runtime.rank}
    return read_job_results(out_dir).to_dict()  # as written: JSON lists, not the spec's tuples
