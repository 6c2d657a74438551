"""Running the reproduction plan: its jobs through the engine (`run_job`; a Tatoeba job through its measurement),
each skipped when finished and resumed from its checkpoints when interrupted, and the layer analyses of the base
and of the fine-tuned encoders; the time each job took is added up over sittings in timings.json."""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from dlfa.analysis.layers import available_parallel_languages, fine_tuned_encoder, layer_analysis, parallel_pairs
from dlfa.data.registry import DataSource, english_sizes
from dlfa.engine.callbacks import Callback
from dlfa.engine.spec import JobSpec
from dlfa.jobs.runner import spec_runner
from dlfa.errors import ConfigError
from dlfa.io import locked, write_json
from dlfa.model.encoders import load_encoder
from dlfa.model.modeling import CONFIG_FILE
from dlfa.reproduction.plan import (DEFAULT_PARTS, LAYER_ANALYSIS_FILE, PARTS, SIZES_FILE, STUDY_TASKS, TASK_PLANS,
                                    TUNED_LAYERS_FILE, Reproduction, plan_jobs, read_json, read_results, setting_name)
from dlfa.reproduction.record import Timings
from dlfa.results import COMPLETED, RESULTS_FILE, STOPPED


def layer_pairs(config: Reproduction) -> dict:
    """The layer analyses' sentences: up to `layer_pairs` pairs of every Parallel UD language of the data root."""
    return parallel_pairs(config.data_root, available_parallel_languages(config.data_root), config.layer_pairs)


def layer_settings(config: Reproduction) -> dict:
    return {"encoder": config.encoder, "data_root": config.data_root, "max_pairs": config.layer_pairs}


def run_layer_analysis(config: Reproduction, out_root: Path, log: Callable[[str], None]) -> bool:
    """Retrieval and CKA per layer for every Parallel UD language of the data root, written with its settings;
    False when it was there already."""
    if (out_root / LAYER_ANALYSIS_FILE).is_file():
        return False
    log("layer analysis on the Parallel UD sentences")
    analysis = layer_analysis(config.encoder, layer_pairs(config), config.layer_pairs)
    write_json(out_root / LAYER_ANALYSIS_FILE, {"settings": layer_settings(config), "status": "complete",
                                                **analysis.to_dict()})
    return True


def run_tuned_layer_analysis(config: Reproduction, out_root: Path, log: Callable[[str], None]) -> bool:
    """The layer analysis of every plain fine-tuned encoder (finetune/<setting>-<aggregation>, 0 intermediate
    tasks, every aggregation) of the STUDY_TASKS, and of the study's runs when they ran, whose saved model is on
    this machine and that the file does not hold yet, keyed `<part>/<job>/<unit>`; written after each run, so a
    stop keeps the rest. False when there was none to do."""
    path = out_root / TUNED_LAYERS_FILE
    recorded = read_json(path) or {"settings": layer_settings(config), "runs": {}}
    base = pairs = None
    done = False
    job_dirs = [job_dir for task in STUDY_TASKS if task in config.tasks
                for pattern in (f"finetune/{setting_name(task, TASK_PLANS[task].poolings[0])}-*", f"study/{task}-*")
                for job_dir in sorted(out_root.glob(pattern))]
    for job_dir in job_dirs:
        results = read_results(job_dir / RESULTS_FILE)
        for run in results.completed_runs if results else []:
            unit = JobSpec.from_dict(run.spec).unit_name()
            key = f"{job_dir.relative_to(out_root).as_posix()}/{unit}"
            model_dir = job_dir / unit / (run.model_dir or "model")
            if key in recorded["runs"] or not (model_dir / CONFIG_FILE).is_file():
                continue
            log(f"layer analysis of the fine-tuned {key}")
            base, pairs = base or load_encoder(config.encoder), pairs or layer_pairs(config)
            analysis = layer_analysis(key, pairs, config.layer_pairs, loaded=fine_tuned_encoder(model_dir, base))
            recorded["runs"][key] = analysis.to_dict()
            write_json(path, recorded)
            done = True
    return done


def record_sizes(config: Reproduction, out_root: Path) -> None:
    """The English train / dev / test sizes in the data root of each task this run covers (SIZES_FILE); the
    sizes recorded by runs of other tasks (`reproduce run --tasks ...`) stay."""
    source = DataSource.resolve(config.data_root)
    sizes = {task: english_sizes(task, source) for task in config.tasks}
    path = out_root / SIZES_FILE
    with locked(path):
        write_json(path, {**(read_json(path) or {}), **sizes})


ANALYSES = {"layers": run_layer_analysis, "tuned-layers": run_tuned_layer_analysis}


def run_plan(config: Reproduction, out_root: str | Path, parts: tuple[str, ...] = DEFAULT_PARTS,
             callbacks: tuple[Callback, ...] = (), log: Callable[[str], None] = print) -> str:
    """Run (or resume) the chosen parts of the plan; COMPLETED, or STOPPED when a callback asked to stop."""
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise ConfigError(f"unknown part(s) {', '.join(unknown)}: choose from {', '.join(PARTS)}")
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    record_sizes(config, out_root)
    timings = Timings(out_root)
    for job, fields in plan_jobs(config, out_root, parts):
        started = time.perf_counter()
        if fields is None:
            if ANALYSES[job](config, out_root, log):
                timings.add(job, time.perf_counter() - started, True)
            continue
        spec = JobSpec.from_dict(fields)
        done = read_results(out_root / job / RESULTS_FILE)
        if done is not None and done.status == COMPLETED and not spec.changed_settings(done.spec):
            continue
        log(f"{job}: {len(spec.units())} runs")
        spec_runner(spec)(spec.validate(), out_root / job, callbacks)  # a Tatoeba job measures, the rest train
        completed = read_results(out_root / job / RESULTS_FILE).status == COMPLETED
        timings.add(job, time.perf_counter() - started, completed)
        if not completed:
            return STOPPED
    return COMPLETED
