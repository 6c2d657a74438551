"""Experiment tracking: a run with `tensorboard=True` writes its losses, dev scores and per-language results as
TensorBoard events, read back here with tensorboard's EventAccumulator."""
import math

import pytest

from dlfa.engine.callbacks import TENSORBOARD_DIR
from dlfa.engine.spec import JobSpec
from dlfa.engine.job import run_job


def scalars(folder) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


@pytest.mark.integration
def test_tensorboard_events_hold_losses_dev_scores_and_results(tiny_encoder, fixture_root, tmp_path):
    spec = JobSpec(task="udpos", eval_languages=("de", "fr"), encoder=tiny_encoder, data_root=str(fixture_root),
                   fusion_layers=(2,), max_train_examples=64, max_eval_examples=16, batch_size=8, max_steps=6,
                   eval_every=3, learning_rate=1e-3, bootstrap_samples=0, tensorboard=True)
    results = run_job(spec, tmp_path / "job")
    unit = results["runs"][0]
    found = scalars(tmp_path / "job" / TENSORBOARD_DIR / "dlfa-L2-s1")

    losses = found["loss/udpos"]
    assert [step for step, _ in losses] == [1, 2, 3, 4, 5, 6] and all(math.isfinite(v) for _, v in losses)
    (_, logged_step, logged_mean), = unit["history"]["loss"]  # one log line: the mean loss of the 6 steps
    assert logged_step == 6 and sum(v for _, v in losses) / 6 == pytest.approx(logged_mean, rel=1e-5)

    assert found["dev/accuracy"] == [(step, pytest.approx(value, rel=1e-5)) for step, value in unit["history"]["dev"]]
    assert [step for step, _ in found["dev/accuracy"]] == [3, 6]
    for language in ("de", "fr"):
        assert found[f"test/{language}"] == [(6, pytest.approx(unit["metrics"][language]["value"], rel=1e-5))]
    mean = (unit["metrics"]["de"]["value"] + unit["metrics"]["fr"]["value"]) / 2
    assert found["test/mean"] == [(6, pytest.approx(mean, rel=1e-5))]


@pytest.mark.integration
def test_no_events_without_the_flag(tiny_encoder, fixture_root, tmp_path):
    spec = JobSpec(task="udpos", eval_languages=("de",), encoder=tiny_encoder, data_root=str(fixture_root),
                   fusion_layers=(2,), max_train_examples=32, max_eval_examples=8, batch_size=8, max_steps=2,
                   bootstrap_samples=0)
    run_job(spec, tmp_path / "job")
    assert not (tmp_path / "job" / TENSORBOARD_DIR).exists()



def test_cli_flag_sets_the_spec_field(fixture_root, tmp_path):
    from dlfa.cli.main import build_parser
    from dlfa.cli.jobs import spec_from_args

    common = ["train", "--task", "udpos", "--eval-langs", "de", "--out", str(tmp_path), "--data-root", str(fixture_root)]
    assert spec_from_args(build_parser().parse_args([*common, "--tensorboard"])).tensorboard is True
    assert spec_from_args(build_parser().parse_args(common)).tensorboard is False


@pytest.mark.integration
def test_the_live_curves_file_holds_each_units_history_as_its_results_json(tiny_encoder, fixture_root, tmp_path):
    from dataclasses import replace

    from dlfa.curves import read_curves, run_history_rows

    spec = JobSpec(task="udpos", eval_languages=("de",), encoder=tiny_encoder, data_root=str(fixture_root),
                   aggregations=("last", "dlfa"), fusion_layers=(2,), max_train_examples=64, max_eval_examples=8,
                   batch_size=8, max_steps=20, eval_every=10, learning_rate=1e-3, bootstrap_samples=0)
    results = run_job(spec, tmp_path / "job")
    expected = [row for run in results["runs"] for row in run_history_rows(JobSpec.from_dict(run["spec"]).unit_name(),
                                                                            run["history"])]
    assert read_curves(tmp_path / "job") == expected
    assert {(row["unit"], row["kind"], row["step"]) for row in expected} == {
        (unit, kind, step) for unit in ("last-s1", "dlfa-L2-s1") for kind in ("loss", "dev") for step in (10, 20)}

    rerun = run_job(replace(spec, aggregations=("last",), max_steps=10), tmp_path / "job", resume=False)  # anew
    assert read_curves(tmp_path / "job") == run_history_rows("last-s1", rerun["runs"][0]["history"])
    assert {row["step"] for row in read_curves(tmp_path / "job")} == {10}  # nothing left of the first run
