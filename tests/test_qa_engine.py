"""Extractive QA wired into the registry, the model and the engine: xquad and mlqa as tasks, the span head on
every aggregation, training and zero-shot evaluation with EM / F1 per language."""
import json

import pytest

from dlfa.data.registry import DataSource, available_languages, get_task, load_examples, task_source


def test_registry_lists_the_qa_tasks_with_the_paragraph_split(data_root):
    source = DataSource.resolve(data_root)
    xquad = available_languages("xquad", source)
    assert get_task("xquad").kind == "qa" and get_task("mlqa").metric == "span_f1"
    assert xquad["en"] == {"train": 716, "dev": 120, "test": 354}
    assert set(xquad) == {"ar", "de", "el", "en", "es", "ro", "ru", "tr", "vi", "zh"}
    assert all(splits == {"test": 354} for language, splits in xquad.items() if language != "en")
    mlqa = available_languages("mlqa", source)
    assert mlqa["en"] == {"train": 689, "dev": 115, "test": 344} and set(mlqa) == {"en", "ar", "de", "es", "vi", "zh"}
    assert task_source("xquad", source) == "qa/xquad" and task_source("mlqa", source) == "qa/mlqa_dev"
    german = load_examples("mlqa", "de", "test", source)
    assert {(e.language, e.question_language) for e in german} == {("de", "de")}
    train_paragraphs = {e.paragraph_id for e in load_examples("xquad", "en", "train", source)}
    assert not train_paragraphs & {e.paragraph_id for e in load_examples("xquad", "zh", "test", source)}


def test_data_list_shows_the_qa_tasks(data_root, capsys):
    from dlfa.cli.main import main

    assert main(["data", "list", "--data-root", str(data_root), "--task", "xquad", "--task", "mlqa"]) == 0
    out = capsys.readouterr().out
    assert "xquad (question answering, span_f1)" in out and "en train 716 dev 120 test 354; ar test 354" in out
    assert "mlqa (question answering, span_f1)" in out and "en train 689 dev 115 test 344" in out
    assert main(["data", "list", "--data-root", str(data_root), "--json", "--task", "mlqa"]) == 0
    row = json.loads(capsys.readouterr().out)["tasks"][0]
    assert row["family"] == "question answering" and row["languages"]["zh"] == {"test": 161}
