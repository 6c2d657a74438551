"""The engine side of the intermediate-task study: one intermediate budget shared by 1, 3 or 9 tasks
(plan_stages), the target task as its own intermediate task (the control arm), init_from (a run's trained encoder
loaded exactly; a missing, unfinished or mismatched folder refused), intermediate-only jobs with their per-task
learning table, the budget spent and the target's majority-class dev score in results.json, and the same target
stage (batch order, head initialisation) in every arm."""
import copy
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dlfa.engine.callbacks import Callback
from dlfa.engine.job import init_unit_dir, run_job
from dlfa.engine.schedule import plan_stages, split_budget
from dlfa.engine.spec import INTERMEDIATE_ONLY, JobSpec
from dlfa.engine.train import UnitTrainer
from dlfa.errors import ConfigError, DataError, DlfaError
from dlfa.model.modeling import WEIGHTS_FILE, DlfaConfig, DlfaModel, HeadConfig, load_encoder_weights
from dlfa.results import COMPLETED, STOPPED, JobResult, RunResult, read_job_results, read_run_results, write_results

NINE = ("sst2", "cola", "mrpc", "qnli", "rte", "boolq", "cb", "wic", "xcopa")
SIZES = {"sst2": 6000, "cola": 8000, "mrpc": 3300, "qnli": 4400, "rte": 2200, "boolq": 2600, "cb": 32, "wic": 500,
         "xcopa": 360, "udpos": 1000}


# ----------------------------------------------------------------------------------------------------
# Budgets and specs


@pytest.mark.parametrize("mode", ["sequential", "mixture"])
@pytest.mark.parametrize("budget", [90, 100])
def test_one_intermediate_budget_is_spent_equally_by_1_3_and_9_tasks(mode, budget):
    spent = {}
    for count in (1, 3, 9):
        spec = JobSpec(task="udpos", eval_languages=("de",), intermediate_tasks=NINE[:count], intermediate_mode=mode,
                       intermediate_steps=budget, max_steps=40, batch_size=32)
        stages = plan_stages(spec, SIZES)
        assert stages[-1].name == "udpos" and stages[-1].steps == 40  # the target stage keeps its own budget
        intermediate = stages[:-1]
        spent[count] = sum(stage.steps for stage in intermediate)
        assert sorted(t for stage in intermediate for t in stage.tasks) == sorted(NINE[:count])
        if mode == "mixture":
            assert len(intermediate) == 1 and intermediate[0].steps == budget
        else:
            assert [stage.tasks for stage in intermediate] == [(t,) for t in NINE[:count]]
            shares = [stage.steps for stage in intermediate]
            assert max(shares) - min(shares) <= 1 and shares == sorted(shares, reverse=True)
    assert spent == {1: budget, 3: budget, 9: budget}
    assert split_budget(100, 3) == [34, 33, 33] and split_budget(90, 9) == [10] * 9


def test_without_an_intermediate_budget_each_stage_keeps_its_own():
    spec = JobSpec(task="udpos", eval_languages=("de",), intermediate_tasks=NINE[:3], max_steps=40)
    assert [stage.steps for stage in plan_stages(spec, SIZES)] == [40, 40, 40, 40]
    mixture = replace(spec, intermediate_mode="mixture")
    assert [stage.steps for stage in plan_stages(mixture, SIZES)] == [40, 40]


def test_the_control_arm_trains_the_target_task_with_a_head_and_batches_of_its_own(fixture_root):
    control = JobSpec(task="udpos", eval_languages=("de",), intermediate_tasks=("udpos",), intermediate_steps=30,
                      data_root=str(fixture_root))
    assert control.problems(check_encoder=False) == {}  # the target task is accepted as its own intermediate task
    assert control.head_tasks() == {"udpos:intermediate": "udpos", "udpos": "udpos"}
    stages = plan_stages(control, {"udpos:intermediate": 80, "udpos": 80})
    assert [(stage.tasks, stage.steps) for stage in stages] == [(("udpos:intermediate",), 30), (("udpos",), 3)]
    only = JobSpec(task=INTERMEDIATE_ONLY, eval_languages=("en",), intermediate_tasks=("udpos", "sst2"),
                   data_root=str(fixture_root))
    assert INTERMEDIATE_ONLY == "intermediate" and only.intermediate_only
    assert only.problems(check_encoder=False) == {} and only.head_tasks() == {"udpos": "udpos", "sst2": "sst2"}
    assert [stage.name for stage in plan_stages(replace(only, intermediate_steps=9), {"udpos": 80, "sst2": 40})] \
        == ["udpos", "sst2"]  # no target stage


def _problems(spec: JobSpec, **changes) -> dict[str, str]:
    return replace(spec, **changes).problems(check_data=False, check_encoder=False)


def test_bad_study_settings_are_named_field_by_field():
    spec = JobSpec(task="udpos", eval_languages=("de",), intermediate_tasks=NINE[:3])
    assert _problems(spec, intermediate_steps=2) == {
        "intermediate_steps": "2 steps cannot be split over 3 sequential intermediate tasks: give at least 3"}
    assert _problems(spec, intermediate_steps=2, intermediate_mode="mixture") == {}
    assert "must be a whole number ≥ 1" in _problems(spec, intermediate_steps=0)["intermediate_steps"]
    assert "rte repeats" in _problems(spec, intermediate_tasks=("rte", "sst2", "rte"))["intermediate_tasks"]
    assert "the folder of a finished job or unit" in _problems(spec, init_from=" ")["init_from"]
    assert "probe" in _problems(spec, init_from="runs/arm", probe=True)["init_from"]
    only = JobSpec(task=INTERMEDIATE_ONLY, eval_languages=("en",))
    problems = _problems(only, patience=2, probe=True, learning_rates=(1e-4, 1e-3))
    assert set(problems) == {"intermediate_tasks", "patience", "probe", "learning_rates"}
    assert "choose at least one" in problems["intermediate_tasks"]


def test_the_command_line_sets_the_study_fields(fixture_root, tmp_path, monkeypatch):
    import argparse

    from dlfa.cli.spec_args import add_spec_arguments, spec_from_args

    parser = argparse.ArgumentParser()
    add_spec_arguments(parser, sweep=True, out_required=False)
    monkeypatch.chdir(tmp_path)
    spec = spec_from_args(parser.parse_args(
        ["--task", INTERMEDIATE_ONLY, "--intermediate", "sst2,rte", "--intermediate-mode", "mixture",
         "--intermediate-steps", "300", "--eval-langs", "en", "--data-root", str(fixture_root)]))
    assert (spec.intermediate_only, spec.intermediate_tasks, spec.intermediate_mode, spec.intermediate_steps) == \
        (True, ("sst2", "rte"), "mixture", 300)
    spec = spec_from_args(parser.parse_args(
        ["--task", "udpos", "--intermediate", "udpos", "--intermediate-steps", "30", "--init-from", "runs/arm",
         "--eval-langs", "de", "--data-root", str(fixture_root)]))
    assert spec.init_from == str(tmp_path / "runs" / "arm")  # absolute: the job runs the same from any folder
    assert spec.head_tasks() == {"udpos:intermediate": "udpos", "udpos": "udpos"}


# ----------------------------------------------------------------------------------------------------
# init_from


@pytest.fixture(scope="module")
def base_encoder(tiny_encoder):
    """The tiny encoder's weights, loaded once (tests take copies)."""
    from transformers import AutoModel

    return AutoModel.from_pretrained(tiny_encoder, add_pooling_layer=False)


def _finished_unit(folder: Path, encoder: str, base, seed: int = 1, status: str = COMPLETED,
                   freeze_word_embeddings: bool = True) -> DlfaModel:
    """A unit folder as a finished run leaves it: its model (the encoder's trainable weights moved away from the
    base encoder's) and its results.json."""
    torch.manual_seed(seed)
    config = DlfaConfig(encoder=encoder, heads={"sst2": HeadConfig("sentence", ["negative", "positive"])},
                        aggregation="last", freeze_word_embeddings=freeze_word_embeddings)
    model = DlfaModel(config, copy.deepcopy(base))
    with torch.no_grad():
        for parameter in model.encoder.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn_like(parameter))
    model.save_pretrained(folder / "model")
    spec = JobSpec(task=INTERMEDIATE_ONLY, eval_languages=("en",), encoder=encoder, intermediate_tasks=("sst2",),
                   aggregations=("last",), seeds=(seed,))
    write_results(folder, RunResult(spec.units()[0].to_dict(), status, model_dir="model" if status == COMPLETED
                                    else None))
    return model


def test_init_from_loads_the_trained_encoder_exactly(tiny_encoder, base_encoder, tmp_path):
    arm = tmp_path / "arm" / "last-s1"
    saved = _finished_unit(arm, tiny_encoder, base_encoder)
    spec = JobSpec(task="udpos", eval_languages=("de",), encoder=tiny_encoder, fusion_layers=(2,),
                   init_from=str(arm))
    assert init_unit_dir(spec) == (arm, arm / "model")
    base = copy.deepcopy(base_encoder)
    embeddings = base.get_input_embeddings().weight.detach().clone()
    loaded = load_encoder_weights(arm / "model", base)
    stored = load_file(str(arm / "model" / WEIGHTS_FILE))
    assert loaded and all(f"encoder.{name}" in stored for name in loaded)
    for name, tensor in base.state_dict().items():
        assert torch.equal(tensor, saved.encoder.state_dict()[name]), name  # every weight as trained
    assert torch.equal(base.get_input_embeddings().weight, embeddings)  # frozen: never saved, the base's


def test_init_from_a_job_folder_takes_its_unit_of_the_same_seed(tiny_encoder, base_encoder, tmp_path):
    job = tmp_path / "arm"
    runs = []
    for seed in (1, 2):
        _finished_unit(job / f"last-s{seed}", tiny_encoder, base_encoder, seed)
        runs.append(read_run_results(job / f"last-s{seed}"))
    write_results(job, JobResult(runs[0].spec, COMPLETED, tuple(runs)))
    spec = JobSpec(task="udpos", eval_languages=("de",), encoder=tiny_encoder, seeds=(2,), init_from=str(job))
    assert init_unit_dir(spec) == (job / "last-s2", job / "last-s2" / "model")
    with pytest.raises(ConfigError, match=r"init_from: the job .*arm \(completed\) has no unit of seed 3 .*"
                                          r"\(its units: last-s1, last-s2\)"):
        init_unit_dir(replace(spec, seeds=(3,)))


def test_init_from_refuses_a_missing_unfinished_or_mismatched_run(tiny_encoder, base_encoder, tmp_path):
    spec = JobSpec(task="udpos", eval_languages=("de",), encoder=tiny_encoder)
    missing = tmp_path / "no-such-arm"
    with pytest.raises(ConfigError, match=rf"init_from: {missing} is not a finished run: it has no results.json"):
        init_unit_dir(replace(spec, init_from=str(missing)))
    stopped = tmp_path / "stopped"
    _finished_unit(stopped, tiny_encoder, base_encoder, status=STOPPED)
    with pytest.raises(ConfigError, match=rf"init_from: the run in {stopped} is stopped, not finished"):
        init_unit_dir(replace(spec, init_from=str(stopped)))
    arm = tmp_path / "arm"
    _finished_unit(arm, tiny_encoder, base_encoder)
    with pytest.raises(ConfigError, match=rf"init_from: {arm} was trained from the encoder {tiny_encoder}, this "
                                          r"job's encoder is embedded:e5-small: .*set the encoder to"):
        init_unit_dir(replace(spec, encoder="embedded:e5-small", init_from=str(arm)))
    modelless = tmp_path / "modelless"
    _finished_unit(modelless, tiny_encoder, base_encoder)
    (modelless / "model" / WEIGHTS_FILE).unlink()
    with pytest.raises(ConfigError, match=rf"init_from: {modelless / 'model'} holds no saved model"):
        init_unit_dir(replace(spec, init_from=str(modelless)))
    other = copy.deepcopy(base_encoder)
    other.embeddings.position_embeddings = torch.nn.Embedding(8, 32)  # another architecture
    with pytest.raises(DlfaError, match="does not fit this encoder .*embeddings.position_embeddings.weight"):
        load_encoder_weights(arm / "model", other)


def test_a_unit_built_from_init_from_has_its_encoder_and_the_head_it_would_have_had(tiny_encoder, base_encoder,
                                                                                    tmp_path):
    from types import SimpleNamespace

    from dlfa.data.registry import get_task
    from dlfa.engine.job import build_unit
    from dlfa.engine.runtime import Runtime

    arm = tmp_path / "arm"
    saved = _finished_unit(arm, tiny_encoder, base_encoder, freeze_word_embeddings=False)
    inputs = SimpleNamespace(data=SimpleNamespace(tasks={name: get_task(name) for name in ("sst2", "udpos")}),
                             checkout_encoder=lambda: copy.deepcopy(base_encoder))
    runtime = Runtime(torch.device("cpu"), None)
    spec = JobSpec(task="udpos", eval_languages=("de",), encoder=tiny_encoder, fusion_layers=(2,),
                   intermediate_tasks=("sst2",), freeze_word_embeddings=False)
    fresh, _, _ = build_unit(spec, runtime, inputs)
    started, _, _ = build_unit(replace(spec, init_from=str(arm)), runtime, inputs, arm / "model")
    for name, tensor in started.encoder.state_dict().items():
        assert torch.equal(tensor, saved.encoder.state_dict()[name]), name  # word embeddings too: they trained
    for part in ("heads", "aggregation"):  # start fresh, as they would without init_from
        fresh_state, started_state = getattr(fresh, part).state_dict(), getattr(started, part).state_dict()
        assert fresh_state.keys() == started_state.keys()
        assert all(torch.equal(tensor, started_state[name]) for name, tensor in fresh_state.items())
    frozen = replace(spec, init_from=str(arm), freeze_word_embeddings=True)
    with pytest.raises(ConfigError, match=r"trained embeddings.word_embeddings.weight, which this job freezes"):
        build_unit(frozen, runtime, inputs, arm / "model")


def test_a_task_learned_nothing_when_one_label_predicted_everywhere_scores_as_well():
    from dlfa.engine.metrics import constant_score

    gold = [0] * 7 + [1] * 3  # the positive class is the minority
    assert constant_score("accuracy", gold, ["no", "yes"]) == (70.0, 0)
    assert constant_score("f1", gold, ["no", "yes"]) == (pytest.approx(100 * 6 / 13), 1)  # always "yes": 2·3/(3+10)
    assert constant_score("mcc", gold, ["no", "yes"])[0] == 0.0
    assert constant_score("accuracy", [[0, 2, 2], [2, 1]], ["A", "B", "C"]) == (60.0, 2)  # token tasks: per token


# ----------------------------------------------------------------------------------------------------
# results.json


def test_old_results_read_with_the_study_fields_defaulted_and_new_ones_round_trip(tmp_path):
    old = {"spec": {"task": "xnli", "seeds": [1]}, "status": "complete", "metrics": {}, "dev_score": 70.0}
    run = RunResult.from_dict(old)
    assert (run.dev_majority, run.intermediate_dev, run.intermediate_budget, run.init_from) == (None, {}, None, None)
    assert set(run.to_dict()) == {"schema_version", "spec", "status", "metrics", "dev_score", "dev_metric",
                                  "model_dir", "code_version"}  # nothing new written for what it does not hold
    table = {"rte": {"metric": "accuracy", "value": 52.0, "majority": 51.5, "learned": False, "n": 200}}
    budget = {"steps": 300, "examples": {"rte": 4800}}
    new = replace(run, dev_majority=33.3, intermediate_dev=table, intermediate_budget=budget, init_from="/runs/a/s1")
    assert read_run_results(write_results(tmp_path / "unit", new)) == new
    broken = {**new.to_dict(), "intermediate_dev": {"rte": {**table["rte"], "learned": "no"}}}
    with pytest.raises(DataError, match=r"field 'intermediate_dev.rte.learned': expected true/false, got a string"):
        RunResult.from_dict(broken)
    broken = {**new.to_dict(), "intermediate_budget": {"steps": 300, "examples": {"rte": 1.5}}}
    with pytest.raises(DataError, match=r"field 'intermediate_budget.examples.rte': expected a whole number"):
        RunResult.from_dict(broken)


# ----------------------------------------------------------------------------------------------------
# Jobs on the tiny encoder and the fixture data root


def _tiny(encoder: str, data_root: Path, **overrides) -> JobSpec:
    settings = dict(task="udpos", eval_languages=("de",), encoder=encoder, data_root=str(data_root),
                    aggregations=("last",), max_train_examples=32, max_eval_examples=12, batch_size=8, max_steps=2,
                    learning_rate=1e-3, bootstrap_samples=0)
    return JobSpec(**{**settings, **overrides})


def _intermediate_only(encoder: str, data_root: Path) -> JobSpec:
    """SST-2 (24 training examples) and RTE (18) in 5 sequential steps (3 + 2) of 6 examples."""
    return _tiny(encoder, data_root, task=INTERMEDIATE_ONLY, eval_languages=("en",), batch_size=6,
                 intermediate_tasks=("sst2", "rte"), intermediate_steps=5, checkpoint_every=1)


@pytest.fixture(scope="module")
def intermediate_arm(tiny_encoder, fixture_root, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("intermediate-arm")
    return out, run_job(_intermediate_only(tiny_encoder, fixture_root), out)


class StopAfter(Callback):
    """Asks the trainer to stop once `step` of stage `stage` is done."""

    def __init__(self, stage: str, step: int):
        self.stage, self.step, self.seen = stage, step, None

    def on_progress(self, progress):
        self.seen = (progress.stage, progress.step)

    def should_stop(self):
        return self.seen == (self.stage, self.step)


@pytest.mark.integration
def test_an_intermediate_only_job_records_what_each_task_learned_and_saves_its_model(intermediate_arm):
    out, results = intermediate_arm
    assert results["status"] == COMPLETED and "metrics" not in results and "grid" not in results
    run = read_run_results(out / "last-s1")
    assert run.metrics == {} and run.dev_score is None and run.dev_majority is None
    assert [(s["name"], s["steps"]) for s in run.extra["stages"]] == [("sst2", 3), ("rte", 2)]
    assert run.intermediate_budget == {"steps": 5, "examples": {"sst2": 18, "rte": 12}}  # 3 and 2 batches of 6
    assert set(run.intermediate_dev) == {"sst2", "rte"}
    for task, entry in run.intermediate_dev.items():
        assert entry["metric"] == "accuracy" and 0 <= entry["majority"] <= 100 and entry["n"] > 0
        assert entry["learned"] == (entry["value"] - entry["majority"] >= 1.0)
    model = DlfaModel.from_pretrained(out / "last-s1" / "model")
    assert set(model.heads) == {"sst2", "rte"}
    assert read_job_results(out).runs[0] == run


@pytest.mark.integration
def test_a_tatoeba_job_measures_the_arm_its_job_folder_names(tiny_encoder, intermediate_arm):
    from dlfa.analysis.tatoeba_job import load_run

    out, _ = intermediate_arm
    _, loaded = load_run(out, tiny_encoder, seed=1)  # the job folder: its unit of seed 1
    saved = DlfaModel.from_pretrained(out / "last-s1" / "model").encoder.state_dict()
    measured = loaded.model.state_dict()
    assert measured.keys() == saved.keys()
    assert all(torch.equal(measured[name], saved[name]) for name in saved)
    with pytest.raises(ConfigError, match="no unit\\b.*of seed 2"):
        load_run(out, tiny_encoder, seed=2)


@pytest.mark.integration
def test_an_intermediate_only_job_stopped_and_resumed_records_the_same_table_and_budget(
        tiny_encoder, fixture_root, intermediate_arm, tmp_path):
    out, reference = intermediate_arm
    spec = _intermediate_only(tiny_encoder, fixture_root)
    for stop in (StopAfter("sst2", 2), StopAfter("sst2", 3)):  # in a stage, and at its end before its dev score
        stopped = run_job(spec, tmp_path, [stop])
        assert stopped["status"] == STOPPED
    resumed = run_job(spec, tmp_path)["runs"][0]
    expected = reference["runs"][0]
    for key in ("intermediate_dev", "intermediate_budget", "history"):
        assert resumed[key] == expected[key], key


@pytest.mark.integration
def test_every_arm_trains_the_same_target_stage(tiny_encoder, fixture_root, intermediate_arm, tmp_path,
                                                monkeypatch):
    """Two arms with other intermediate tasks (a mixture of two tasks, the control: the target task itself) and
    one that starts from the intermediate-only arm's encoder: the target stage's batches and its head's initial
    weights are the same in all three; the third's encoder starts as the arm's trained encoder, exactly."""
    seen: dict[str, dict] = {}
    original = UnitTrainer._micro_batch

    def recording(self, stage_index, stage, streams, step, micro):
        batch = original(self, stage_index, stage, streams, step, micro)
        if stage.name == self.spec.task:
            arm = seen.setdefault(self.unit_dir.parent.name, {"batches": []})
            if step == 0 and micro == 0:
                arm["head"] = {k: v.clone() for k, v in self.model.heads["udpos"].state_dict().items()}
                arm["encoder"] = {k: v.clone() for k, v in self.model.encoder.state_dict().items()}
            arm["batches"].append(batch["input_ids"].clone())
        return batch

    monkeypatch.setattr(UnitTrainer, "_micro_batch", recording)
    arm_dir, _ = intermediate_arm
    arms = {"mixture": dict(intermediate_tasks=("sst2", "rte"), intermediate_mode="mixture", intermediate_steps=2),
            "control": dict(intermediate_tasks=("udpos",), intermediate_steps=2),
            "init": dict(init_from=str(arm_dir))}
    results = {name: run_job(_tiny(tiny_encoder, fixture_root, **settings), tmp_path / name)["runs"][0]
               for name, settings in arms.items()}
    assert len(seen["mixture"]["batches"]) == 2
    for name in ("control", "init"):
        assert all(torch.equal(a, b) for a, b in zip(seen[name]["batches"], seen["mixture"]["batches"], strict=True))
        assert all(torch.equal(seen[name]["head"][k], v) for k, v in seen["mixture"]["head"].items())
    trained = load_file(str(arm_dir / "last-s1" / "model" / WEIGHTS_FILE))
    for name, tensor in trained.items():
        if name.startswith("encoder."):
            assert torch.equal(seen["init"]["encoder"][name.removeprefix("encoder.")], tensor), name
    assert results["init"]["init_from"] == str(arm_dir / "last-s1") and "intermediate_dev" not in results["init"]
    control = results["control"]
    assert [s["tasks"] for s in control["stages"]] == [["udpos:intermediate"], ["udpos"]]
    assert set(control["intermediate_dev"]) == {"udpos"} and control["intermediate_budget"]["steps"] == 2
    assert set(DlfaModel.from_pretrained(tmp_path / "control" / "last-s1" / "model").heads) == \
        {"udpos:intermediate", "udpos"}
    for run in results.values():
        assert run["dev_majority"] is not None and 0 <= run["dev_majority"] <= 100
    assert json.loads((tmp_path / "mixture" / "last-s1" / "results.json").read_text())["intermediate_budget"] == \
        {"steps": 2, "examples": results["mixture"]["intermediate_budget"]["examples"]}
