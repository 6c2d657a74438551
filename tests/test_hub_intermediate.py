"""Issue 15: every intermediate task of the issue reads its English training data from the hub when no local data
exists (GLUE, SuperGLUE, SQuAD, HellaSwag, CommonsenseQA, Cosmos QA), and `squad`, the QA intermediate task, trains
in sequential and mixture modes with its learning check (English dev F1 against a prior of 0). No network: the
hub loader serves rows of each dataset's schema (test_registry.HUB_ROWS, squad_rows below)."""
from __future__ import annotations

import pytest
from test_registry import HUB_ROWS

from dlfa.data.registry import DataSource, get_task, load_examples, task_source
from dlfa.data.tasks import TASKS_BY_NAME

# The issue's list: task -> the hub dataset and config (`<dataset>:<config>`, dlfa.data.sources.hub_config) its
# English train split is read from. COPA is the task `xcopa` (English COPA, zero-shot on XCOPA).
ISSUE_15 = {
    **{task: f"nyu-mll/glue:{task}" for task in ("mnli", "qqp", "qnli", "sst2", "cola", "mrpc", "rte")},
    **{task: f"aps/super_glue:{task}" for task in ("boolq", "cb", "wic")},
    "xcopa": "aps/super_glue:copa",
    "squad": "rajpurkar/squad:",
    "hellaswag": "Rowan/hellaswag:",
    "commonsenseqa": "tau/commonsense_qa:",
    "cosmosqa": "allenai/cosmos_qa:",
}


def squad_rows(count: int, split: str = "train") -> list[dict]:
    """`count` made-up rows of rajpurkar/squad's schema (id, title, context, question, answers {text,
    answer_start}), each on a paragraph of its own."""
    rows = []
    for i in range(count):
        context = f"The longest {split} river of land {i} is the Ouse {i}, which floods every spring."
        answer = f"the Ouse {i}"
        rows.append({"id": f"{split}-{i}", "title": f"Land {i}", "context": context,
                     "question": f"Which is the longest river of land {i}?",
                     "answers": {"text": [answer], "answer_start": [context.index(answer)]}})
    return rows


def hub_rows(config: str, split: str) -> list[dict]:
    """The rows the fake hub serves: 20 training rows (distinct texts) and 4 validation rows per dataset."""
    count = 20 if split == "train" else 4
    if config == ISSUE_15["squad"]:
        return squad_rows(count, split)
    (row,) = [row for name, row, _ in HUB_ROWS.values() if name == config]
    text = next(key for key in ("sentence", "sentence1", "question1", "premise", "question", "ctx") if key in row)
    return [{**row, text: f"{row[text]} {split} {i}"} for i in range(count)]


@pytest.fixture
def no_local_data(tmp_path, monkeypatch):
    """No data root, no classroom pack: DataSource.resolve() is the hub, whose loader (recorded in `asked`) serves
    hub_rows."""
    monkeypatch.delenv("DLFA_DATA_DIR", raising=False)
    monkeypatch.setenv("DLFA_CACHE_DIR", str(tmp_path / "cache"))
    asked = []

    def loader(config, split):
        asked.append((config, split))
        return hub_rows(config, split)

    monkeypatch.setattr("dlfa.data.sources.load_hub_split", loader)
    return asked


def test_every_intermediate_task_of_issue_15_reads_its_english_train_split_from_the_hub(no_local_data, tmp_path):
    asked = no_local_data
    source = DataSource.resolve()
    assert source.kind == "hub"
    empty_root = DataSource.resolve(tmp_path)  # a data root with none of their files
    for task, config in ISSUE_15.items():
        assert get_task(task).intermediate and TASKS_BY_NAME[task].hub is not None, task
        asked.clear()
        train = load_examples(task, "en", "train", source)
        assert train and (config, "train") in asked, task
        dataset = config.replace(":", " ").strip()
        assert task_source(task, empty_root).endswith(f"(hub {dataset} has it)"), task


@pytest.mark.integration  # trains two tiny intermediate-only jobs: about 15 s on this CPU
def test_squad_trains_as_an_intermediate_task_in_both_modes_and_its_learning_check_scores_f1(
        no_local_data, tiny_encoder, tmp_path):
    from dlfa.engine.job import run_job
    from dlfa.engine.spec import INTERMEDIATE_ONLY, JobSpec
    from dlfa.results import read_job_results

    for mode in ("mixture", "sequential"):
        spec = JobSpec.from_dict({
            "task": INTERMEDIATE_ONLY, "intermediate_tasks": ["squad", "sst2"], "intermediate_mode": mode,
            "intermediate_steps": 2, "eval_languages": ["en"], "aggregations": ["last"], "fusion_layers": [],
            "encoder": tiny_encoder, "data_root": "hub", "seeds": [1], "batch_size": 4, "max_length": 128,
            "max_train_examples": 16, "max_eval_examples": 8, "checkpoint_every": 50}).validate()
        run_job(spec, tmp_path / mode)
        (run,) = read_job_results(tmp_path / mode / "results.json").completed_runs
        squad = run.intermediate_dev["squad"]
        # scored on SQuAD's dev part (2 of the 20 training paragraphs), not on its test (4 validation rows)
        assert squad["metric"] == "span_f1" and squad["majority"] == 0.0 and squad["n"] == 2, mode
        assert 0.0 <= squad["value"] <= 100.0 and squad["learned"] == (squad["value"] >= 1.0), mode
        assert run.intermediate_dev["sst2"]["metric"] == "accuracy", mode
        assert run.intermediate_budget["steps"] == 2, mode
