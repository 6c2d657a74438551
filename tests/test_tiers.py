"""The test tiers themselves: the committed fixture data root (what its generator writes, readable through the
registry), the tests that need the real data skipped with the reason where it is absent, and the timeouts."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dlfa.data.registry import DataSource, available_languages, load_examples

REPO = Path(__file__).resolve().parents[1]


def load_generator():
    spec = importlib.util.spec_from_file_location("make_data_root", REPO / "tests" / "fixtures" / "make_data_root.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_fixture_root_is_what_its_generator_writes(fixture_root):
    committed = {p.relative_to(fixture_root).as_posix(): p.read_text(encoding="utf-8")
                 for p in sorted(fixture_root.rglob("*")) if p.is_file()}
    assert committed == load_generator().fixture_files()


def test_the_fixture_root_serves_every_task_the_hermetic_tests_train_on(fixture_root):
    source = DataSource.resolve(fixture_root)
    sizes = {task: {language: {split: len(load_examples(task, language, split, source)) for split in splits}
                    for language, splits in available_languages(task, source).items()}
             for task in ("udpos", "panx", "pawsx", "xnli", "xcopa", "sst2", "rte", "xquad", "mlqa")}
    assert sizes["udpos"] == {"en": {"train": 80, "dev": 12, "test": 40},
                              **{language: {"test": 40} for language in ("de", "fr", "zh")}}
    assert sizes["panx"] == {"en": {"train": 30, "dev": 12}, **{lang: {"test": 12} for lang in ("de", "fr", "zh")}}
    assert set(sizes["pawsx"]) == set(sizes["xnli"]) == {"en", "de", "fr", "zh"}
    assert sum(sizes["pawsx"]["en"].values()) == 100 and sizes["pawsx"]["fr"]["test"] >= 32
    assert sum(sizes["xnli"]["en"].values()) == 120 and sizes["xnli"]["de"]["test"] == sizes["xnli"]["en"]["test"]
    assert sizes["xcopa"] == {"en": {"train": 27, "dev": 3, "test": 20}, "et": {"test": 20}, "tr": {"test": 20}}
    assert sizes["sst2"] == {"en": {"train": 24, "dev": 8, "test": 8}}
    assert sizes["rte"]["en"]["test"] == 8
    assert sizes["xquad"] == sizes["mlqa"] == {"en": {"train": 45, "dev": 6, "test": 21}, "de": {"test": 21}}
    german = load_examples("udpos", "de", "test", source)
    assert german[0].item_id == "n01000" and german[0].tags[:3] == ("DET", "NOUN", "VERB")
    assert len(set(e.text for e in german)) == 40  # no repeated placeholder sentence


@pytest.mark.integration  # a whole pytest session in a subprocess
def test_without_the_real_data_its_tests_are_skipped_with_the_reason_and_marked_integration(tmp_path):
    """What a fresh clone sees: DLFA_TEST_DATA_ROOT names a folder without MANIFEST.md."""
    missing = tmp_path / "no-data"
    env = {**os.environ, "DLFA_TEST_DATA_ROOT": str(missing)}
    tests = ["tests/test_multiple_choice.py::test_real_files_are_multiple_choice_tasks",
             "tests/test_spec.py::test_tasks_and_languages_are_checked_against_the_data_root"]
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "-m", "integration",
                           *tests], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped, 1 deselected" in done.stdout  # the fixture-root test is not in the integration tier
    assert f"needs the real data root (its MANIFEST.md) at {missing}: not there" in done.stdout


def test_a_hang_fails_fast(request):
    assert request.config.pluginmanager.hasplugin("timeout")
    assert request.config.getini("timeout") == "300"  # the unit tier's limit per test
    assert request.node.get_closest_marker("timeout") is None  # ... taken from pytest.ini


def test_make_test_runs_the_import_rules_and_every_tier():
    recipe = subprocess.run(["make", "-n", "-B", "test", "VENV=/nonexistent/venv"], cwd=REPO, capture_output=True,
                            text=True).stdout
    assert "/nonexistent/venv/bin/lint-imports" in recipe
    assert '-m pytest -m "not integration and not slow and not browser"' in recipe
    assert '-m pytest -m "(integration or slow) and not browser"' in recipe and "-m pytest -m browser" in recipe


@pytest.mark.slow
def test_slow_tests_get_the_long_timeout(request):
    assert request.node.get_closest_marker("timeout").args == (1800,)
