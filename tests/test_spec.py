"""JobSpec: JSON round trip, one clear message per bad field, sweep expansion, integer lists, and the
encoder and data checks against a tiny encoder and the fixture data root."""
import json
from dataclasses import replace

import pytest

from dlfa.errors import ConfigError
from dlfa.engine.spec import JobSpec, parse_int_list

BASE = JobSpec(task="pawsx", eval_languages=("de", "fr"))


def test_json_round_trip_keeps_every_field_and_tuple():
    spec = replace(BASE, aggregations=("last", "dlfa"), fusion_layers=(2, 6), seeds=(1, 2),
                   intermediate_tasks=("sst2",), max_steps=7, data_root="/data", probe=True, name="my run")
    again = JobSpec.from_json(spec.to_json())
    assert again == spec and isinstance(again.fusion_layers, tuple) and isinstance(again.intermediate_tasks, tuple)


@pytest.mark.parametrize("data, message", [
    ({"task": "pawsx", "eval_languages": ["de"], "colour": "red"}, "unknown job spec field"),
    ({"task": "pawsx"}, "needs at least 'task' and 'eval_languages'"),
])
def test_from_dict_refuses_unknown_or_missing_fields(data, message):
    with pytest.raises(ConfigError, match=message):
        JobSpec.from_dict(data)


def test_from_json_refuses_bad_json():
    with pytest.raises(ConfigError, match="not valid JSON"):
        JobSpec.from_json("{task: pawsx")


@pytest.mark.parametrize("changes, field, message", [
    ({"eval_languages": ()}, "eval_languages", "at least one of the target languages"),
    ({"aggregations": ()}, "aggregations", "at least one of the aggregations"),
    ({"aggregations": ("dlfa", "max")}, "aggregations", "unknown aggregations max"),
    ({"fusion_layers": ()}, "fusion_layers", "need at least one fusion layer"),
    ({"fusion_layers": (-1,)}, "fusion_layers", "each must be a whole number ≥ 0"),
    ({"seeds": ()}, "seeds", "at least one of the seeds"),
    ({"batch_size": 0}, "batch_size", "whole number ≥ 1"),
    ({"gradient_accumulation": 1.5}, "gradient_accumulation", "whole number ≥ 1"),
    ({"max_length": 4}, "max_length", "whole number ≥ 8"),
    ({"num_processes": 0}, "num_processes", "whole number ≥ 1"),
    ({"checkpoint_every": 0}, "checkpoint_every", "whole number ≥ 1"),
    ({"eval_every": 0}, "eval_every", "≥ 1 or empty"),
    ({"max_train_examples": 0}, "max_train_examples", "≥ 1 or empty"),
    ({"max_eval_examples": -5}, "max_eval_examples", "≥ 1 or empty"),
    ({"reduction": 0}, "reduction", "whole number ≥ 1"),
    ({"bootstrap_samples": -1}, "bootstrap_samples", "whole number ≥ 0"),
    ({"max_steps": 0}, "max_steps", "whole number ≥ 1 or empty"),
    ({"epochs": 0}, "epochs", "must be > 0"),
    ({"learning_rate": 2.0}, "learning_rate", "between 0 and 1"),
    ({"probe_learning_rate": 0}, "probe_learning_rate", "between 0 and 1"),
    ({"warmup_ratio": 1.0}, "warmup_ratio", "below 1"),
    ({"mixture_temperature": 0}, "mixture_temperature", "must be a number > 0"),
    ({"device": "tpu"}, "device", "must be one of auto, cpu, cuda, got 'tpu'"),
    ({"precision": "fp8"}, "precision", "must be one of auto, fp32, bf16"),
    ({"backend": "ray"}, "backend", "must be one of local, torchrun, slurm, got 'ray'"),
    ({"intermediate_mode": "parallel"}, "intermediate_mode", "must be one of sequential, mixture"),
    ({"mixture_sampling": "uniform"}, "mixture_sampling", "must be one of proportional, temperature"),
])
def test_each_bad_field_gets_its_own_message(changes, field, message):
    problems = replace(BASE, **changes).problems(check_data=False, check_encoder=False)
    assert list(problems) == [field] and message in problems[field]
    with pytest.raises(ConfigError, match="invalid job spec: " + field):
        replace(BASE, **changes).validate(check_data=False, check_encoder=False)


def test_a_valid_spec_has_no_problems_and_max_steps_overrides_epochs():
    assert BASE.problems(check_data=False, check_encoder=False) == {}
    assert replace(BASE, epochs=0, max_steps=10).problems(check_data=False, check_encoder=False) == {}


def test_units_expand_a_sweep():
    spec = replace(BASE, aggregations=("last", "dlfa", "scalar-mix", "mean"), fusion_layers=(2, 6), seeds=(1, 2))
    names = [unit.unit_name() for unit in spec.units()]
    assert names == ["last-s1", "last-s2", "dlfa-L2-s1", "dlfa-L2-s2", "dlfa-L6-s1", "dlfa-L6-s2",
                     "scalar-mix-s1", "scalar-mix-s2", "mean-L2-s1", "mean-L2-s2", "mean-L6-s1", "mean-L6-s2"]
    unit = spec.units()[2]
    assert (unit.aggregations, unit.fusion_layers, unit.seeds) == (("dlfa",), (2,), (1,))
    assert spec.units()[0].fusion_layers == ()
    assert replace(BASE, aggregations=("dlfa",), fusion_layers=(6,)).units() == [replace(BASE, fusion_layers=(6,))]


def test_changed_settings_compare_what_a_run_computes():
    recorded = json.loads(BASE.to_json())  # tuples read back as lists
    assert BASE.changed_settings(recorded) == []
    assert BASE.changed_settings({**recorded, "name": "other", "data_root": "/elsewhere", "device": "cpu"}) == []
    assert BASE.changed_settings({**recorded, "seeds": [2], "learning_rate": 1.0}) == ["learning_rate", "seeds"]
    assert BASE.changed_settings({k: v for k, v in recorded.items() if k != "precision"}) == []  # an older record


@pytest.mark.parametrize("text, expected", [
    ("0-3,6,11", (0, 1, 2, 3, 6, 11)), ("5", (5,)), (" 1, 2 ,3 ", (1, 2, 3)), ("2,2,1-2", (2, 1)), ("", ()),
    ("-1", (-1,)),
])
def test_parse_int_list(text, expected):
    assert parse_int_list(text, "--seeds") == expected


@pytest.mark.parametrize("text, message", [("1,a", "not a list of whole numbers"), ("1.5", "not a list"),
                                           ("0-", "not a list"), ("5-2", "runs backwards; write 2-5")])
def test_parse_int_list_refuses_bad_text(text, message):
    with pytest.raises(ConfigError, match=f"--fusion-layers: .*{message}"):
        parse_int_list(text, "--fusion-layers")


def test_fusion_layers_are_checked_against_the_encoder(tiny_encoder):
    spec = replace(BASE, encoder=tiny_encoder, fusion_layers=(0, 3))
    assert spec.problems(check_data=False) == {}
    problems = replace(spec, fusion_layers=(2, 4, 9)).problems(check_data=False)
    assert problems == {"fusion_layers": "fusion layer(s) 4, 9 out of range: this encoder has 4 layers, so fusion "
                                         "layers must be in 0…3 (0 = embeddings)"}
    assert replace(spec, aggregations=("last",), fusion_layers=(9,)).problems(check_data=False) == {}
    assert "does not exist" in replace(spec, encoder="./no/such/folder").problems(check_data=False)["encoder"]


def test_tasks_and_languages_are_checked_against_the_data_root(fixture_root):
    spec = replace(BASE, data_root=str(fixture_root), intermediate_tasks=("sst2",))
    assert spec.problems(check_encoder=False) == {}
    bad = replace(spec, eval_languages=("de", "xx"), train_language="tlh", intermediate_tasks=("udpos", "nope"))
    problems = bad.problems(check_encoder=False)
    assert set(problems) == {"eval_languages", "train_language", "intermediate_tasks"}
    assert "no data for xx" in problems["eval_languages"]
    assert "available: de, en, fr, zh" in problems["eval_languages"]
    assert "no 'tlh' data" in problems["train_language"]
    assert "udpos is not an English intermediate task" in problems["intermediate_tasks"]
    assert "unknown task 'nope'" in problems["intermediate_tasks"]
    assert "unknown task 'nope'" in replace(spec, task="nope").problems(check_encoder=False)["task"]
    missing_root = replace(spec, data_root=str(fixture_root / "missing")).problems(check_encoder=False)
    assert "does not exist" in missing_root["task"]
    assert json.loads(spec.to_json())["data_root"] == str(fixture_root)


def test_every_field_has_a_validation_rule():
    from dataclasses import fields

    from dlfa.engine.spec import FIELD_RULES

    assert set(FIELD_RULES) == {f.name for f in fields(JobSpec)}


@pytest.mark.parametrize("changes, field, message", [
    ({"seeds": (-5,)}, "seeds", "each must be a whole number in 0…4294967295, got [-5]"),
    ({"seeds": (2**32,)}, "seeds", "got [4294967296]"),
    ({"seeds": (1.5,)}, "seeds", "got [1.5]"),
    ({"learning_rate": "0.1"}, "learning_rate", "must be a number between 0 and 1, got '0.1'"),
    ({"max_steps": "10"}, "max_steps", "must be a whole number ≥ 1 or empty, got '10'"),
    ({"eval_languages": "de"}, "eval_languages", "must be a list of target languages, got 'de'"),
    ({"weight_decay": -0.1}, "weight_decay", "at least 0 and below 1, got -0.1"),
    ({"max_grad_norm": float("nan")}, "max_grad_norm", "≥ 0 (0: no clipping), got nan"),
    ({"max_grad_norm": "1"}, "max_grad_norm", "got '1'"),
    ({"batch_size": True}, "batch_size", "whole number ≥ 1, got True"),
    ({"probe": "yes"}, "probe", "must be true or false, got 'yes'"),
    ({"tensorboard": 1}, "tensorboard", "must be true or false, got 1"),
    ({"compile_model": "yes"}, "compile_model", "must be true or false, got 'yes'"),
    ({"epochs": "2"}, "epochs", "got '2'"),
    ({"data_root": 5}, "data_root", "must be a text or empty, got 5"),
])
def test_types_and_ranges_of_every_field_are_checked(changes, field, message):
    problems = replace(BASE, **changes).problems(check_data=False, check_encoder=False)
    assert list(problems) == [field] and message in problems[field]


def test_a_string_for_a_list_field_is_not_split_into_letters():
    spec = JobSpec.from_dict({"task": "pawsx", "eval_languages": "de"})
    assert spec.eval_languages == "de"  # kept as given, so that validation names it
    with pytest.raises(ConfigError, match="eval_languages: must be a list of target languages, got 'de'"):
        spec.validate(check_data=False, check_encoder=False)


@pytest.mark.parametrize("flags, spec_fields, message", [
    (["--seed", "-5"], {}, "seeds: each must be a whole number in 0…4294967295, got [-5]"),
    (["--seed", str(2**32)], {}, "got [4294967296]"),
    ([], {"seeds": [1.5]}, "seeds: each must be a whole number"),
    ([], {"learning_rate": "fast"}, "learning_rate: must be a number between 0 and 1, got 'fast'"),
    ([], {"max_steps": "ten"}, "max_steps: must be a whole number ≥ 1 or empty, got 'ten'"),
    ([], {"eval_languages": "de"}, "eval_languages: must be a list of target languages, got 'de'"),
    ([], {"weight_decay": 2}, "weight_decay: must be a number at least 0 and below 1, got 2"),
])
def test_cli_refuses_a_bad_spec_in_one_line_before_writing(flags, spec_fields, message, tmp_path, capsys,
                                                          fixture_root):
    from dlfa.cli.main import main

    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({"task": "pawsx", "eval_languages": ["de"], "data_root": str(fixture_root),
                                     **spec_fields}))
    out = tmp_path / "out"
    assert main(["train", "--spec", str(spec_file), *flags, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid job spec: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_run_job_refuses_a_bad_spec_before_writing(tmp_path):
    from dlfa.engine.job import run_job

    with pytest.raises(ConfigError, match="invalid job spec: max_grad_norm: must be a number ≥ 0"):
        run_job(replace(BASE, max_grad_norm=-1.0), tmp_path / "job")
    assert not (tmp_path / "job").exists()


def test_worker_fails_a_stored_bad_spec_with_one_line_before_writing(tmp_path, monkeypatch):
    """A spec that reached the store unchecked (an older version, a hand edit) fails in the worker, not in a
    traceback halfway through a run."""
    import sqlite3

    from dlfa.jobs.store import JobStore
    from dlfa.jobs.worker import run_worker

    monkeypatch.delenv("DLFA_JOB_RUNNER", raising=False)
    monkeypatch.setenv("DLFA_CACHE_DIR", str(tmp_path / "cache"))
    store = JobStore(tmp_path / "jobs.sqlite")
    job = store.submit(BASE)
    bad = json.loads(BASE.to_json()) | {"seeds": [-5], "learning_rate": "fast"}
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE jobs SET spec = ? WHERE id = ?", (json.dumps(bad), job.id))
    assert store.claim_job(job.id)
    assert run_worker(job.id, store) == 1
    failed = store.get(job.id)
    assert failed.status == "failed"
    assert failed.error == ("invalid job spec: seeds: each must be a whole number in 0…4294967295, got [-5]; "
                            "learning_rate: must be a number between 0 and 1, got 'fast'")
    assert sorted(p.name for p in failed.out_dir.iterdir()) == ["worker.log"]
