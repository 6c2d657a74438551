"""The trainer: sampler, schedule, stages, checkpoints and exact resume (by callback, by SIGKILL), DDP,
and an end-to-end run of the embedded encoder on real UD-POS data."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from dlfa.engine.callbacks import Callback
from dlfa.model.encoders import load_tokenizer
from dlfa.errors import ConfigError
from dlfa.engine.evaluate import predict
from dlfa.engine.spec import JobSpec
from dlfa.model.modeling import DlfaModel
from dlfa.results import COMPLETED, LanguageMetric, RunResult
from dlfa.engine.batching import BatchStream, length_grouped_batches
from dlfa.engine.checkpoint import rng_state, set_rng_state
from dlfa.engine.job import run_job, summarize
from dlfa.engine.runtime import Runtime
from dlfa.engine.schedule import build_optimizer, learning_rate_at, plan_stages
from dlfa.engine.train import TrainState

REPO = Path(__file__).resolve().parents[1]


def tiny_spec(encoder: str, data_root, **overrides) -> JobSpec:
    settings = dict(task="udpos", eval_languages=("de", "zh"), encoder=encoder, data_root=str(data_root),
                    fusion_layers=(2,), max_train_examples=64, max_eval_examples=24, batch_size=8, max_steps=8,
                    learning_rate=1e-3, checkpoint_every=3, bootstrap_samples=50)
    return JobSpec(**{**settings, **overrides})


class StopAt(Callback):
    """Asks the trainer to stop once `step` of the target stage is done."""

    def __init__(self, step: int):
        self.step, self.seen = step, 0

    def on_progress(self, progress):
        if progress.stage == "udpos":
            self.seen = progress.step

    def should_stop(self):
        return self.seen == self.step


class Record(Callback):
    def __init__(self):
        self.logs, self.checkpoints, self.units, self.progress = [], [], [], []

    def on_log(self, message):
        self.logs.append(message)

    def on_checkpoint(self, unit_name, path):
        self.checkpoints.append(path)

    def on_unit_end(self, unit_name, results):
        self.units.append(unit_name)

    def on_progress(self, progress):
        self.progress.append(progress)


# ----------------------------------------------------------------------------------------------------
# Pieces


def test_length_grouped_batches_cover_every_example_once_with_little_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 120, 1000)
    batches = length_grouped_batches(lengths, 16, np.random.default_rng(1))
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    padded = sum(len(b) * lengths[b].max() for b in batches)
    random_order = np.random.default_rng(2).permutation(1000)
    padded_random = sum(16 * lengths[random_order[i : i + 16]].max() for i in range(0, 1000, 16))
    assert padded < 0.7 * padded_random
    assert [b.tolist() for b in batches] == [b.tolist() for b in length_grouped_batches(lengths, 16, np.random.default_rng(1))]
    assert all(len(b) >= 3 for b in length_grouped_batches(lengths, 16, np.random.default_rng(1), min_size=3))


def test_batch_stream_replays_from_its_state():
    lengths = np.random.default_rng(0).integers(1, 50, 300)
    stream = BatchStream(lengths, 8, [7, 0, 0])  # 38 batches per epoch
    seen = [stream.next().tolist() for _ in range(50)]
    resumed = BatchStream(lengths, 8, [7, 0, 0], **BatchStream(lengths, 8, [7, 0, 0], epoch=1, position=12).state())
    assert [resumed.next().tolist() for _ in range(30)] == [stream.next().tolist() for _ in range(30)]
    assert sorted(sum(seen[:38], [])) == list(range(300)) and seen[38:50] != seen[:12]


def test_learning_rate_warms_up_then_decays_to_zero():
    rates = [learning_rate_at(s, 10, 2, 1.0) for s in range(10)]
    assert rates[:2] == [0.5, 1.0] and rates[2] == 1.0 and rates[-1] == pytest.approx(1 / 8)
    assert all(a >= b for a, b in zip(rates[1:], rates[2:]))


def test_each_stage_gets_the_same_budget():
    spec = JobSpec(task="udpos", eval_languages=("de",), intermediate_tasks=("sst2", "rte"), batch_size=10, epochs=2)
    sizes = {"sst2": 90, "rte": 10, "udpos": 50}
    sequential = plan_stages(spec, sizes)
    assert [(s.name, s.steps) for s in sequential] == [("sst2", 18), ("rte", 2), ("udpos", 10)]
    mixture = plan_stages(JobSpec(**{**spec.to_dict(), "intermediate_mode": "mixture", "max_steps": 7}), sizes)
    assert [(s.tasks, s.steps) for s in mixture] == [(("sst2", "rte"), 7), (("udpos",), 7)]
    assert mixture[0].weights == pytest.approx((0.9, 0.1))
    tempered = plan_stages(JobSpec(**{**spec.to_dict(), "intermediate_mode": "mixture",
                                      "mixture_sampling": "temperature", "mixture_temperature": 2.0}), sizes)
    assert tempered[0].weights == pytest.approx((0.75, 0.25))


def test_weight_decay_skips_biases_and_norm_weights():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    spec = JobSpec(task="udpos", eval_languages=("de",))
    decay, no_decay = build_optimizer(model, spec, 1e-3, torch.device("cpu")).param_groups
    assert [p.shape for p in decay["params"]] == [(4, 4)] and decay["weight_decay"] == spec.weight_decay
    assert len(no_decay["params"]) == 3 and no_decay["weight_decay"] == 0.0


def test_rng_state_round_trips_through_json():
    runtime = Runtime(torch.device("cpu"), None)
    torch.manual_seed(3)
    state = json.loads(json.dumps(rng_state(runtime)))
    expected = (torch.rand(3), np.random.rand(), __import__("random").random())
    set_rng_state(state, runtime)
    assert torch.equal(torch.rand(3), expected[0]) and np.random.rand() == expected[1]
    assert __import__("random").random() == expected[2]


def test_train_state_reads_and_writes_the_state_json_of_checkpoints_unchanged():
    """A checkpoint's state.json (the format the trainer has always written) restores into TrainState and is
    written back with the same keys, order and values, so a job interrupted by older code resumes."""
    saved = {"stage": 1, "step": 5, "streams": {"udpos": {"epoch": 1, "position": 2}}, "best_score": 10.5,
             "best_step": 4, "evals_since_best": 1, "target_steps": 4, "train_seconds": 2.5, "window": [2.9, 2.8],
             "history": {"loss": [["sst2", 10, 0.7]], "dev": [[4, 10.5]]}, "examples": {"sst2": 80, "udpos": 40},
             "intermediate_dev": {"sst2": {"metric": "accuracy", "value": 80.0, "majority": 50.0, "learned": True,
                                           "n": 12}},
             "dev_majority": 7.5}
    state = TrainState.from_json(json.loads(json.dumps(saved)))
    assert state.stage == 1 and state.step == 5 and state.streams == {"udpos": {"epoch": 1, "position": 2}}
    assert state.best_score == 10.5 and state.evals_since_best == 1 and state.history["dev"] == [[4, 10.5]]
    assert json.dumps(state.to_json()) == json.dumps(saved)
    before_early_stopping = {k: v for k, v in saved.items() if k not in ("evals_since_best", "target_steps")}
    older = TrainState.from_json(before_early_stopping)
    assert older.evals_since_best == 0 and older.target_steps is None and older.step == 5
    before_the_study = {k: v for k, v in saved.items() if k not in ("examples", "intermediate_dev", "dev_majority")}
    older = TrainState.from_json(before_the_study)
    assert older.examples == {} and older.intermediate_dev == {} and older.dev_majority is None and older.step == 5


# ----------------------------------------------------------------------------------------------------
# Jobs on the tiny encoder and real data


@pytest.mark.integration
def test_run_job_writes_results_and_a_loadable_model(tiny_encoder, fixture_root, tmp_path):
    record = Record()
    results = run_job(tiny_spec(tiny_encoder, fixture_root), tmp_path, [record])
    unit_dir = tmp_path / "dlfa-L2-s1"
    unit = json.loads((unit_dir / "results.json").read_text())
    assert results == json.loads((tmp_path / "results.json").read_text()) and results["status"] == "completed"
    assert set(results["metrics"]) == {"de", "zh"} and results["metrics"] == unit["metrics"]
    for m in unit["metrics"].values():
        assert m["metric"] == "accuracy" and m["n"] == 24 and m["ci_low"] <= m["value"] <= m["ci_high"]
    assert unit["steps"] == 8 and unit["dev_score"] is not None and unit["truncated"] == {"de": 0, "zh": 0}
    assert re.search(rf"\d threads?, torch {re.escape(torch.__version__)}$", unit["hardware"])  # for the record
    fusion = unit["fusion_stats"]["languages"]["zh"]
    assert 0 < fusion["mean_last"] < 1 and len(fusion["per_position"]) == 32 and "NOUN" in fusion["per_tag"]
    assert not (unit_dir / "checkpoints").exists() and record.units == ["dlfa-L2-s1"]
    assert len(record.checkpoints) == 3 and record.progress[-1].fraction == pytest.approx(1.0)
    model = DlfaModel.from_pretrained(unit_dir / "model")
    tagged = predict(model, load_tokenizer(tiny_encoder), "Das ist gut .")
    assert len(tagged["tags"]) == 4
    again = run_job(tiny_spec(tiny_encoder, fixture_root, name="renamed"), tmp_path, [record])  # complete: not trained again
    assert again["metrics"] == results["metrics"] and record.units == ["dlfa-L2-s1"]
    with pytest.raises(ConfigError, match=r"dlfa-L2-s1 holds a run of dlfa-L2-s1 with other settings \(max_steps\)"):
        run_job(tiny_spec(tiny_encoder, fixture_root, max_steps=9), tmp_path)  # never taken for the 8-step run
    assert json.loads((unit_dir / "results.json").read_text()) == unit


@pytest.mark.integration
def test_a_sweep_reports_a_layer_by_language_grid(tiny_encoder, fixture_root, tmp_path):
    sweep = run_job(tiny_spec(tiny_encoder, fixture_root, aggregations=("dlfa", "last"), fusion_layers=(1, 3),
                              max_steps=3), tmp_path)
    assert [r["config"] for r in sweep["grid"]["rows"]] == ["dlfa-L1", "dlfa-L3", "last"]
    assert sweep["grid"]["languages"] == ["de", "zh"] and "metrics" not in sweep
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.jsonl", "dlfa-L1-s1", "dlfa-L3-s1", "last-s1",
                                                         "results.json"]
    row, run = sweep["grid"]["rows"][1], sweep["runs"][1]
    assert row["values"] == {lang: m["value"] for lang, m in run["metrics"].items()} and row["dev"] == run["dev_score"]


def test_seeds_of_one_config_give_a_mean_with_an_interval_over_seeds():
    spec = JobSpec(task="udpos", eval_languages=("de",), seeds=(1, 2, 3))
    runs = [RunResult(unit.to_dict(), COMPLETED, {"de": LanguageMetric("accuracy", value, 0, 100, 1000)},
                      dev_score=90.0) for unit, value in zip(spec.units(), (80.0, 82.0, 84.0))]
    metric = summarize(spec, runs, COMPLETED, 1.0).metrics["de"]
    assert metric.value == pytest.approx(82.0) and metric.n == 3 and metric.ci_over == "seeds"
    assert metric.ci_low == pytest.approx(82.0 - 4.9685, abs=1e-3) and metric.ci_high > 84.0
    assert summarize(spec, runs[:1], COMPLETED, 1.0).metrics == runs[0].metrics


@pytest.mark.integration
def test_stopping_and_resuming_gives_the_uninterrupted_result(tiny_encoder, fixture_root, tmp_path):
    spec = tiny_spec(tiny_encoder, fixture_root)
    reference = run_job(spec, tmp_path / "reference")
    stopped = run_job(spec, tmp_path / "resumed", [StopAt(5)])
    assert stopped["status"] == "stopped" and stopped["runs"][0]["steps_done"] == 5
    checkpoint_files = {p.suffix for p in (tmp_path / "resumed").rglob("checkpoints/*/*")}
    assert checkpoint_files == {".json", ".safetensors"}  # nothing pickled
    resumed = run_job(spec, tmp_path / "resumed")
    assert resumed["status"] == "completed"
    assert resumed["metrics"] == reference["metrics"]
    assert resumed["runs"][0]["history"] == reference["runs"][0]["history"]


@pytest.mark.integration
def test_intermediate_stages_sequential_and_mixture(tiny_encoder, fixture_root, tmp_path):
    record = Record()
    sequential = run_job(tiny_spec(tiny_encoder, fixture_root, intermediate_tasks=("sst2", "rte"), max_steps=2,
                                   max_train_examples=16), tmp_path / "seq", [record])
    assert [(s["name"], s["steps"]) for s in sequential["runs"][0]["stages"]] == [("sst2", 2), ("rte", 2), ("udpos", 2)]
    assert {p.stage for p in record.progress} == {"sst2", "rte", "udpos", "eval"}
    model = DlfaModel.from_pretrained(tmp_path / "seq" / "dlfa-L2-s1" / "model")
    assert set(model.heads) == {"sst2", "rte", "udpos"}
    mixture = run_job(tiny_spec(tiny_encoder, fixture_root, intermediate_tasks=("sst2", "rte"), max_steps=2,
                                max_train_examples=16, intermediate_mode="mixture"), tmp_path / "mix")
    assert [s["tasks"] for s in mixture["runs"][0]["stages"]] == [["sst2", "rte"], ["udpos"]]


def _cli(*args: str, torchrun: bool = False, **kwargs):
    """`python -m dlfa train ...` (under torchrun with two processes) as a subprocess."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"] if torchrun else []
    return subprocess.Popen([sys.executable, *launcher, "-m", "dlfa", "train", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def _cli_args(encoder: str, data_root, out: Path, steps: int, examples: int) -> list[str]:
    return ["--task", "udpos", "--encoder", encoder, "--data-root", str(data_root), "--eval-langs", "de,zh",
            "--fusion-layer", "2", "--max-train-examples", str(examples), "--batch-size", "8", "--lr", "1e-3",
            "--max-steps", str(steps), "--out", str(out)]


@pytest.mark.integration
def test_cli_worker_killed_mid_run_resumes_to_the_same_metrics(tiny_encoder, fixture_root, tmp_path):
    # checkpoint_every is 200 by default: the kill comes after the checkpoint at step 200 of 250 (one epoch)
    args = _cli_args(tiny_encoder, fixture_root, tmp_path / "killed", steps=250, examples=2000)
    unit_dir = tmp_path / "killed" / "dlfa-L2-s1"
    worker = _cli(*args)
    deadline = time.time() + 240
    while not (unit_dir / "checkpoints" / "latest.json").exists() and worker.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert not (unit_dir / "results.json").exists(), "the worker finished before it could be killed"
    finished = _cli(*args)
    output, _ = finished.communicate(timeout=300)
    assert finished.returncode == 0, output
    assert "resumed from stage0-step0000200" in output
    killed = json.loads((tmp_path / "killed" / "results.json").read_text())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the worker: the same reduction order, the same floats
    try:
        reference = run_job(JobSpec.from_dict(killed["spec"]), tmp_path / "reference")
    finally:
        torch.set_num_threads(threads)
    for language, metric in reference["metrics"].items():
        assert killed["metrics"][language]["value"] == pytest.approx(metric["value"], abs=0.1)


@pytest.mark.integration
def test_torchrun_two_processes_on_gloo(tiny_encoder, fixture_root, tmp_path):
    done = _cli(*_cli_args(tiny_encoder, fixture_root, tmp_path / "out", steps=4, examples=64), torchrun=True)
    output, _ = done.communicate(timeout=300)
    assert done.returncode == 0, output
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    run = results["runs"][0]
    assert results["status"] == "completed" and run["world_size"] == 2 and run["steps"] == 4
    assert set(results["metrics"]) == {"de", "zh"}


# ----------------------------------------------------------------------------------------------------
# End to end: the embedded encoder on real data


@pytest.mark.slow
def test_embedded_encoder_learns_udpos_and_transfers_to_german_and_chinese(data_root, tmp_path):
    spec = JobSpec(task="udpos", eval_languages=("de", "zh"), data_root=str(data_root), fusion_layers=(6,),
                   max_train_examples=600, max_eval_examples=150, max_steps=40, batch_size=16, learning_rate=1e-4,
                   bootstrap_samples=200)
    results = run_job(spec, tmp_path)
    for language in ("de", "zh"):
        metric = results["metrics"][language]
        assert metric["value"] > metric["majority"] + 10, (language, metric)
    assert results["runs"][0]["dev_score"] > 50


# ----------------------------------------------------------------------------------------------------
# Slicing, determinism, convergence


def _gradients_of_one_step(model, batch, max_tokens):
    from dlfa.engine.batching import backward_batch

    model.zero_grad(set_to_none=True)
    loss = backward_batch(model, model, batch, max_tokens, 0.5, Runtime(torch.device("cpu"), None))
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return loss, grads, {k: v.clone() for k, v in model.aggregation.state_dict().items()}


@pytest.mark.parametrize("task", ["nli", "pos", "qa"])
def test_slicing_a_batch_into_4_changes_neither_dlfa_loss_nor_gradients(task):
    from transformers import BertConfig, BertModel

    from dlfa.model.modeling import DlfaConfig, HeadConfig
    from dlfa.testing import TINY_CONFIG
    from dlfa.engine.batching import slice_bounds

    heads = {"nli": HeadConfig("pair", ["e", "n", "c"]), "pos": HeadConfig("token", ["NOUN", "VERB", "X"]),
             "qa": HeadConfig("qa", [])}
    torch.manual_seed(0)
    encoder = BertModel(BertConfig(vocab_size=99, **TINY_CONFIG), add_pooling_layer=False)
    model = DlfaModel(DlfaConfig("unused", heads, "dlfa", fusion_layer=1, dropout=0.0), encoder).train()
    lengths = torch.tensor([12, 3, 7, 12, 5, 9, 2, 11, 6, 10, 4, 8, 12, 7, 3, 9])
    mask = (torch.arange(12)[None] < lengths[:, None]).long()  # 16 rows × 12, padded
    ids = torch.randint(5, 99, (16, 12)).masked_fill(mask == 0, 1)
    labels = torch.randint(0, 3, (16, 12) if task == "pos" else (16,))
    if task == "pos":
        labels[mask == 0] = -100
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels, "task": task}
    if task == "qa":  # gold spans inside each window (or 0: no answer in it)
        del batch["labels"]
        batch["start_positions"] = torch.minimum(torch.randint(0, 12, (16,)), lengths - 1)
        batch["end_positions"] = torch.minimum(batch["start_positions"] + 1, lengths - 1)
    assert len(slice_bounds(batch, 4 * 12)) == 4
    start = {k: v.clone() for k, v in model.state_dict().items()}
    whole_loss, whole_grads, whole_stats = _gradients_of_one_step(model, batch, None)
    model.load_state_dict(start)
    sliced_loss, sliced_grads, sliced_stats = _gradients_of_one_step(model, batch, 4 * 12)
    assert sliced_loss == pytest.approx(whole_loss, abs=1e-5)
    assert sliced_grads.keys() == whole_grads.keys() and any(n.startswith("encoder.") for n in whole_grads)
    for name, grad in whole_grads.items():
        assert torch.allclose(sliced_grads[name], grad, atol=1e-5), name
    for name, value in whole_stats.items():  # running statistics: updated once, with the whole batch's
        assert torch.allclose(sliced_stats[name].float(), value.float(), atol=1e-6), name
    assert int(whole_stats["local_branch.compress_norm.num_batches_tracked"]) == \
        int(start["aggregation.local_branch.compress_norm.num_batches_tracked"]) + 1


@pytest.mark.integration
def test_the_specs_cpu_slice_size_reaches_the_step_and_leaves_the_results_unchanged(tiny_encoder, fixture_root,
                                                                                   tmp_path, monkeypatch):
    from dlfa.engine import batching

    slice_sizes = []
    real = batching.backward_whole_batch

    def counting(model, batch, max_tokens, scale, runtime):
        slice_sizes.append(len(batching.slice_bounds(batch, max_tokens)))
        return real(model, batch, max_tokens, scale, runtime)

    monkeypatch.setattr(batching, "backward_whole_batch", counting)
    sliced = run_job(tiny_spec(tiny_encoder, fixture_root, cpu_tokens_per_slice=24), tmp_path / "sliced")
    assert len(slice_sizes) == 8 and min(slice_sizes) >= 2  # every step's batch ran in slices
    whole = run_job(tiny_spec(tiny_encoder, fixture_root, cpu_tokens_per_slice=0), tmp_path / "whole")
    assert len(slice_sizes) == 8  # never sliced: the batch norm's whole-batch path is not needed
    for language, metric in whole["metrics"].items():
        assert sliced["metrics"][language]["value"] == pytest.approx(metric["value"], abs=1e-9)
    sliced_unit, whole_unit = (json.loads((tmp_path / side / "dlfa-L2-s1" / "results.json").read_text())
                               for side in ("sliced", "whole"))
    assert sliced_unit["dev_score"] == pytest.approx(whole_unit["dev_score"], abs=1e-9)


@pytest.mark.slow  # compiling the tiny model takes about a minute on the CPU
def test_a_compiled_model_trains_and_scores_as_the_eager_one(tiny_encoder, fixture_root, tmp_path, monkeypatch):
    compiled = []
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile",
                        lambda call, **options: compiled.append((call, options)) or real_compile(call, **options))
    common = dict(precision="fp32", cpu_tokens_per_slice=0)
    eager = run_job(tiny_spec(tiny_encoder, fixture_root, **common), tmp_path / "eager")
    assert not compiled
    fused = run_job(tiny_spec(tiny_encoder, fixture_root, compile_model=True, **common), tmp_path / "compiled")
    (call, options), = compiled  # the encoder's, in place (the saved state dict keeps its names)
    assert type(call.__self__).__name__ == "BertModel" and options == {"dynamic": True}
    eager_unit, fused_unit = (json.loads((tmp_path / side / "dlfa-L2-s1" / "results.json").read_text())
                              for side in ("eager", "compiled"))
    assert [loss for *_, loss in fused_unit["history"]["loss"]] == pytest.approx(
        [loss for *_, loss in eager_unit["history"]["loss"]], abs=1e-4)
    for language, metric in eager["metrics"].items():
        assert fused["metrics"][language]["value"] == pytest.approx(metric["value"], abs=1e-6)
    assert fused_unit["spec"]["compile_model"] is True and eager_unit["spec"]["compile_model"] is False


@pytest.mark.integration
def test_the_same_train_command_twice_gives_identical_metrics_and_records_the_code(tiny_encoder, fixture_root, tmp_path):
    results = []
    for name in ("first", "second"):
        done = _cli(*_cli_args(tiny_encoder, fixture_root, tmp_path / name, steps=6, examples=48), "--precision", "fp32")
        log, _ = done.communicate(timeout=600)
        assert done.returncode == 0, log
        results.append(json.loads((tmp_path / name / "results.json").read_text()))
    first, second = results
    assert first["metrics"] == second["metrics"] and first["runs"][0]["history"] == second["runs"][0]["history"]
    version = first["runs"][0]["code_version"]
    assert re.fullmatch(r"[0-9a-f]{64}", version["sources_sha256"]) and version == first["code_version"]
    assert version["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", version["git_commit"])
    assert first["runs"][0]["threads"] == 1  # OMP_NUM_THREADS=1 in _cli


def test_code_version_hashes_the_sources_without_git(tmp_path):
    import shutil

    from dlfa.code_version import PACKAGE, sources_hash

    copy = tmp_path / "dlfa"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert sources_hash(copy) == sources_hash()
    (copy / "charts.py").write_text((copy / "charts.py").read_text() + "\n# a view changed\n")
    assert sources_hash(copy) == sources_hash()  # presentation only: the numbers cannot change
    (copy / "model" / "fusion.py").write_text((copy / "model" / "fusion.py").read_text() + "\n# changed\n")
    assert sources_hash(copy) != sources_hash()


@pytest.mark.integration
def test_early_stopping_restores_the_best_dev_state_and_records_where_it_converged(tiny_encoder, fixture_root, tmp_path):
    spec = tiny_spec(tiny_encoder, fixture_root, max_steps=None, patience=1, max_epochs=20.0, eval_every=2,
                     learning_rate=3e-2, checkpoint_every=1000)
    run = run_job(spec, tmp_path)["runs"][0]
    convergence, curve = run["convergence"], run["convergence"]["dev_curve"]
    assert convergence["step_cap"] == 20 * 8 and convergence["stopped_early"]  # 64 examples / 8 = 8 steps an epoch
    best_step, best = max(curve, key=lambda point: point[1])  # the first best: later ties do not improve
    assert convergence["best_step"] == best_step and run["dev_score"] == best
    assert convergence["best_epoch"] == best_step / 8
    assert [point[1] for point in curve[-1:]][0] <= best and curve[-1][0] == convergence["steps_trained"]
    assert len([p for p in curve if p[0] > best_step]) == 1  # patience 1: one evaluation without improvement
    assert run["steps"] == convergence["steps_trained"] < 160


@pytest.mark.integration
def test_a_learning_rate_grid_picks_each_configs_best_rate_on_english_dev(tiny_encoder, fixture_root, tmp_path):
    spec = tiny_spec(tiny_encoder, fixture_root, aggregations=("dlfa", "last"), learning_rates=(1e-4, 3e-2),
                     max_steps=3, max_train_examples=24)
    results = run_job(spec, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [
        "dlfa-L2-lr0.0001-s1", "dlfa-L2-lr0.03-s1", "last-lr0.0001-s1", "last-lr0.03-s1"]
    dev = {(r["spec"]["aggregations"][0], r["spec"]["learning_rate"]): r["dev_score"] for r in results["runs"]}
    for choice in results["learning_rate_choice"]:
        aggregation = choice["aggregation"]
        assert choice["candidates"] == [{"learning_rate": rate, "dev": dev[aggregation, rate]} for rate in (1e-4, 3e-2)]
        assert choice["learning_rate"] == max((1e-4, 3e-2), key=lambda rate: dev[aggregation, rate])
    assert [c["aggregation"] for c in results["learning_rate_choice"]] == ["dlfa", "last"]
