"""Running the reproduction plan: its jobs through the engine (`run_job`; a Tatoeba job through its measurement),
each skipped when finished and resumed from its checkpoints when interrupted, and the layer analyses of the base
and of the fine-tuned encoders; the time each job took is added up over sittings in timings.json. Seed 1 of a
fine-tuning job is not trained twice: it is the selection run of the same settings, taken over."""
from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from dlfa.analysis.layers import available_parallel_languages, fine_tuned_encoder, layer_analysis, parallel_pairs
from dlfa.data.registry import DataSource, english_sizes, get_task, load_encoded
from dlfa.code_version import code_version
from dlfa.engine.callbacks import Callback
from dlfa.engine.job import UNIT_SPEC_FILE
from dlfa.engine.spec import JobSpec
from dlfa.jobs.runner import spec_runner
from dlfa.errors import ConfigError, DlfaError
from dlfa.io import atomic_folder, locked, write_json
from dlfa.engine.metrics import constant_score
from dlfa.model.encoders import load_encoder, load_tokenizer
from dlfa.reproduction.plan import (DEFAULT_PARTS, DEV_MAJORITY_FILE, LAYER_ANALYSIS_FILE, PARTS, SELECTION_SEED,
                                    SIZES_FILE, STUDY_TASKS, TASK_PLANS, TUNED_LAYERS_FILE, Reproduction, plan_jobs,
                                    read_json, read_results, setting_name)
from dlfa.reproduction.record import Timings
from dlfa.results import COMPLETED, RESULTS_FILE, STOPPED, read_run_results, saved_model, write_results


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
            model_dir = saved_model(job_dir / unit, run)
            if key in recorded["runs"] or model_dir is None:
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


def record_dev_majority(config: Reproduction, out_root: Path) -> None:
    """Each task's majority-class score on the English dev set its runs are scored on (the best constant
    prediction's, metrics.constant_score; DEV_MAJORITY_FILE): a run less than 1 point above it learned nothing.
    Runs record their own (`dev_majority`); this serves the runs of a record from before they did."""
    source = DataSource.resolve(config.data_root)
    path = out_root / DEV_MAJORITY_FILE
    with locked(path):
        recorded = read_json(path) or {}
        for task, pooling in config.settings():
            if task in recorded:
                continue
            spec = JobSpec.from_dict(config.base_fields(task, pooling))
            dev = load_encoded(task, "en", "dev", source, load_tokenizer(spec.encoder), spec.max_length,
                               max_examples=spec.max_eval_examples)
            info = get_task(task)
            recorded[task] = {"metric": info.metric, "dev_majority": constant_score(info.metric, dev.gold(),
                                                                                    list(info.labels))[0],
                              "examples": len(dev)}
        write_json(path, recorded)


def take_selection_run(out_root: Path, job: str, spec: JobSpec) -> str | None:
    """Seed 1 of a fine-tuning job (finetune/<setting>-<aggregation>) is the selection run of the same settings:
    copy that run's folder (select/<setting>[-layers], checkpoints left out) instead of training it again. Its
    spec may differ only in `learning_rates`, which names a grid's units and changes nothing a run computes, and
    in `name`, which is kept to say where the run came from; it must come from this code version. A run of a
    study task is taken only with its saved model, which the fine-tuned layer analysis reads. The unit's name
    when one was taken."""
    unit = spec.units()[0]
    unit_dir = out_root / job / unit.unit_name()
    if not job.startswith("finetune/") or unit.seeds != (SELECTION_SEED,) or unit_dir.exists():
        return None
    setting = job.removeprefix("finetune/").removesuffix(f"-{unit.aggregations[0]}")
    for path in sorted(p for select in (f"select/{setting}", f"select/{setting}-layers")
                       for p in (out_root / select).glob(f"*-s{SELECTION_SEED}/{RESULTS_FILE}")):
        try:
            run = read_run_results(path)
        except DlfaError:
            continue
        taken = dataclasses.replace(run, spec={**run.spec, "learning_rates": []})
        same = (run.completed and unit.changed_settings(taken.spec) == []
                and (run.code_version or {}).get("sources_sha256") == code_version()["sources_sha256"])
        if same and (unit.task not in STUDY_TASKS or saved_model(path.parent, run)):
            with atomic_folder(unit_dir) as staging:
                shutil.copytree(path.parent, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns("checkpoints"))
                write_json(staging / UNIT_SPEC_FILE, taken.spec)
                write_results(staging, taken)
            return unit.unit_name()
    return None


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
    record_dev_majority(config, out_root)
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
        taken = take_selection_run(out_root, job, spec)
        if taken:
            log(f"{job}/{taken}: the selection run of the same settings, taken over")
        spec_runner(spec)(spec.validate(), out_root / job, callbacks)  # a Tatoeba job measures, the rest train
        completed = read_results(out_root / job / RESULTS_FILE).status == COMPLETED
        timings.add(job, time.perf_counter() - started, completed)
        if not completed:
            return STOPPED
    return COMPLETED
