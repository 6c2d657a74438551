"""The JobSpec fields of the engine's convergence, learning-rate grid and pooling: defaults that keep old
records readable, validation messages, sweep expansion and the command-line flags."""
import argparse

import pytest

from dlfa.errors import ConfigError
from dlfa.cli.jobs import add_spec_arguments, spec_from_args
from dlfa.engine.spec import JobSpec

BASE = dict(task="xnli", eval_languages=("de",))


def test_a_record_written_before_these_fields_reads_as_before():
    old = JobSpec(**BASE).to_dict()
    for name in ("patience", "max_epochs", "learning_rates", "pooling"):
        old.pop(name)
    spec = JobSpec.from_dict(old)
    assert (spec.pooling, spec.patience, spec.max_epochs, spec.learning_rates) == ("cls", None, None, ())
    assert spec.units()[0].unit_name() == "dlfa-L6-s1"  # the old folder names
    assert JobSpec(**BASE).changed_settings(old) == []


@pytest.mark.parametrize("fields, field, message", [
    ({"patience": 0}, "patience", "whole number ≥ 1"),
    ({"max_epochs": 5.0}, "max_epochs", "set patience too"),
    ({"patience": 2, "max_epochs": 0.0}, "max_epochs", "> 0"),
    ({"learning_rates": (2e-5, 2.0)}, "learning_rates", "between 0 and 1, got [2.0]"),
    ({"pooling": "max"}, "pooling", "must be one of cls, mean, got 'max'"),
])
def test_bad_convergence_grid_and_pooling_fields_are_named(fields, field, message):
    problems = JobSpec(**BASE, **fields).problems(check_data=False, check_encoder=False)
    assert field in problems and message in problems[field], problems


def test_a_learning_rate_grid_expands_into_named_units():
    spec = JobSpec(**BASE, aggregations=("last", "dlfa"), fusion_layers=(0,), seeds=(1, 2),
                   learning_rates=(2e-5, 1e-4))
    units = spec.units()
    assert [u.unit_name() for u in units] == [
        "last-lr2e-05-s1", "last-lr2e-05-s2", "last-lr0.0001-s1", "last-lr0.0001-s2",
        "dlfa-L0-lr2e-05-s1", "dlfa-L0-lr2e-05-s2", "dlfa-L0-lr0.0001-s1", "dlfa-L0-lr0.0001-s2"]
    assert [u.learning_rate for u in units[:4]] == [2e-5, 2e-5, 1e-4, 1e-4]
    assert all(u.learning_rates == (u.learning_rate,) for u in units)


def parse(data_root, *argv: str, sweep: bool = True) -> JobSpec:
    parser = argparse.ArgumentParser()
    add_spec_arguments(parser, sweep=sweep, out_required=False)
    return spec_from_args(parser.parse_args(["--task", "xnli", "--eval-langs", "de", "--data-root", str(data_root),
                                             *argv]))


def test_flags_set_pooling_early_stopping_and_the_grid(fixture_root):
    spec = parse(fixture_root, "--pooling", "mean", "--patience", "3", "--max-epochs", "10", "--eval-every", "50",
                 "--learning-rates", "2e-5, 5e-5,1e-4")
    assert (spec.pooling, spec.patience, spec.max_epochs, spec.eval_every) == ("mean", 3, 10.0, 50)
    assert spec.learning_rates == (2e-5, 5e-5, 1e-4)
    with pytest.raises(ConfigError, match="--learning-rates: '2e-5,fast' is not a list of numbers"):
        parse(fixture_root, "--learning-rates", "2e-5,fast")
    with pytest.raises(ConfigError, match="max_epochs: caps early stopping: set patience too"):
        parse(fixture_root, "--max-epochs", "10", sweep=False)
