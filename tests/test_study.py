"""The intermediate-task study: its design (subsets, jobs, budget), and its analysis on results built here (paired
intervals by hand, per-run health, the learning table, the budget, Tatoeba, the answer in words)."""
import math
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from scipy import stats

from dlfa.data.registry import get_task
from dlfa.errors import ConfigError, DlfaError
from dlfa.reproduction.study import (ArmRow, Change, answer, arm_table, budget_in_words, budget_table, excluded_note,
                                     find_studies, learning_table, parse_key, progress_in_words, retrieval_table,
                                     study_aggregations, study_targets)
from dlfa.reproduction.study_design import (INTERMEDIATE_PRESETS, StudyDesign, StudyTarget, drawn_subsets,
                                            named_subsets, preset_for)
from dlfa.results import COMPLETED, STOPPED, JobResult, LanguageMetric, RunResult

POOL = ["qnli", "boolq", "mrpc", "sst2", "commonsenseqa", "xcopa", "rte", "conll-ner", "cola", "cosmosqa"]


def design(**changes) -> StudyDesign:
    targets = (StudyTarget("udpos", ("de", "zh"), fusion_layer=4),
               StudyTarget("xnli", ("de", "sw"), fusion_layer=0, pooling="cls", max_train_examples=None))
    return replace(StudyDesign(targets, named_subsets((0, 1, 3, 9), POOL), intermediate_steps=600), **changes)


# ----------------------------------------------------------------------------------------------------
# The design


def test_presets_are_nested_english_intermediate_tasks():
    assert INTERMEDIATE_PRESETS[0] == () and len(INTERMEDIATE_PRESETS[3]) == 3 and len(INTERMEDIATE_PRESETS[9]) == 9
    assert INTERMEDIATE_PRESETS[9][:3] == INTERMEDIATE_PRESETS[3]
    assert all(get_task(name).intermediate for name in INTERMEDIATE_PRESETS[9])


def test_presets_available_in_the_real_data_root(data_root):
    for count, tasks in INTERMEDIATE_PRESETS.items():
        assert preset_for(count, data_root) == tasks
    assert "qnli" not in preset_for(3, data_root, exclude=("qnli",))
    with pytest.raises(DlfaError, match="has only .* qnli, boolq"):
        preset_for(40, data_root)


def test_named_subsets_nest_in_order_of_preference():
    assert named_subsets((0, 1, 3), POOL) == ((), ("qnli",), ("qnli", "boolq", "mrpc"))
    with pytest.raises(ConfigError, match="12 intermediate tasks asked for, but only 10"):
        named_subsets((0, 12), POOL)
    with pytest.raises(ConfigError, match="distinct"):
        named_subsets((3, 3), POOL)


def test_drawn_subsets_are_seeded_nested_and_their_order_recorded():
    drawn = drawn_subsets((0, 1, 3, 9), POOL, seed=7)
    assert drawn == drawn_subsets((0, 1, 3, 9), POOL, seed=7)  # the same seed draws the same subsets
    assert drawn != drawn_subsets((0, 1, 3, 9), POOL, seed=8)
    assert [len(s) for s in drawn] == [0, 1, 3, 9] and drawn[3][:3] == drawn[2] and drawn[2][:1] == drawn[1]
    assert drawn[3] != tuple(POOL[:9])  # a draw, not the order of preference
    recorded = design(subsets=drawn, subset_rule="drawn", draw_seed=7)
    again = StudyDesign.from_dict(recorded.to_dict())  # the design's JSON gives the same design back
    assert again == recorded and again.subsets[3] == drawn[3]


def test_design_jobs_arms_first_then_control_targets_and_retrieval():
    jobs = dict(design().job_fields("/out"))
    assert list(jobs) == ["study/arm-1", "study/arm-3", "study/arm-9",
                          "study/udpos-control", "study/udpos-arm-0", "study/udpos-arm-1", "study/udpos-arm-3",
                          "study/udpos-arm-9",
                          "study/xnli-control", "study/xnli-arm-0", "study/xnli-arm-1", "study/xnli-arm-3",
                          "study/xnli-arm-9",
                          "study/tatoeba-arm-0-s1",
                          *(f"study/tatoeba-arm-{n}-s{s}" for n in (1, 3, 9) for s in (1, 2, 3))]
    arm = jobs["study/arm-3"]
    assert arm["task"] == "intermediate" and arm["intermediate_tasks"] == ["qnli", "boolq", "mrpc"]
    assert arm["eval_languages"] == ["en"] and arm["seeds"] == [1, 2, 3]
    with_budget = [job for job in jobs.values() if job.get("intermediate_tasks")]
    assert len(with_budget) == 5  # three arms, two controls: one budget, one mode for all
    assert {(j["intermediate_steps"], j["intermediate_mode"], j["mixture_sampling"]) for j in with_budget} == {
        (600, "mixture", "temperature")}
    control = jobs["study/udpos-control"]
    assert control["intermediate_tasks"] == ["udpos"] and control["task"] == "udpos" and "init_from" not in control
    target = jobs["study/udpos-arm-9"]
    assert target["init_from"] == str(Path("/out/study/arm-9")) and target["aggregations"] == ["last", "dlfa"]
    assert target["fusion_layers"] == [4] and target["epochs"] == 2.0 and target["seeds"] == [1, 2, 3]
    assert jobs["study/udpos-arm-0"]["init_from"] is None  # the base encoder
    assert jobs["study/xnli-arm-1"]["pooling"] == "cls" and jobs["study/xnli-arm-1"]["max_train_examples"] is None
    # the target stage is the same in every arm: only where it starts from differs
    same = {key: {k: v for k, v in job.items() if k not in ("init_from", "name", "intermediate_tasks",
                                                             "intermediate_steps", "intermediate_mode",
                                                             "mixture_sampling", "mixture_temperature")}
            for key, job in jobs.items() if key.startswith("study/udpos-")}
    assert len({repr(sorted(fields.items())) for fields in same.values()}) == 1
    tatoeba = jobs["study/tatoeba-arm-3-s2"]  # one encoder per retrieval job: the arm's unit of seed 2
    assert tatoeba["task"] == "tatoeba" and tatoeba["init_from"] == str(Path("/out/study/arm-3/last-s2"))
    assert tatoeba["seeds"] == [2] and tatoeba["eval_languages"] == ["de", "fr", "ru", "zh", "sw"]
    assert jobs["study/tatoeba-arm-0-s1"]["seeds"] == [1] and jobs["study/tatoeba-arm-0-s1"]["init_from"] is None
    assert all(job["name"] == f"study: {key}" for key, job in jobs.items())  # find_studies finds them again


def test_design_without_control_or_retrieval_and_its_problems():
    keys = [key for key, _ in design(control=False, retrieval_languages=()).job_fields("/out")]
    assert "study/udpos-control" not in keys and not any("tatoeba" in key for key in keys)
    assert design().problems() == []
    problems = design(seeds=(1, 2), subsets=((), ("udpos", "qnli")), mode="both").problems()
    assert any("at least 3 distinct seeds" in p for p in problems)
    assert any("udpos is a target task" in p for p in problems)
    assert any("mode: one of mixture, sequential, got both" in p for p in problems)
    with pytest.raises(ConfigError, match="invalid study design: seeds"):
        design(seeds=(1, 1, 2)).check()
    with pytest.raises(ConfigError, match="no folder for study/arm-3"):
        design().target_fields({"study/arm-1": "a", "study/arm-9": "b"})


def test_launch_submits_the_arms_first_and_points_the_others_at_the_arms_folders():
    submitted = []

    def submit(key, fields):
        submitted.append((key, fields))
        return f"runs/{len(submitted)}"

    folders = design(retrieval_languages=("de",)).launch(submit)
    keys = [key for key, _ in submitted]
    assert keys[:3] == ["study/arm-1", "study/arm-3", "study/arm-9"] and len(keys) == 3 + 2 * 5 + 1 + 3 * 3
    assert folders["study/arm-3"] == "runs/2"
    fields = dict(submitted)
    assert fields["study/xnli-arm-3"]["init_from"] == "runs/2"
    assert fields["study/tatoeba-arm-9-s3"]["init_from"] == str(Path("runs/3/last-s3"))
    assert fields["study/udpos-arm-0"]["init_from"] is None


def test_design_jobs_are_valid_job_specs():
    for key, spec in design().jobs("/out"):
        assert spec.name == f"study: {key}"
        assert not {k: v for k, v in spec.problems(check_data=False, check_encoder=False).items()}, key


# ----------------------------------------------------------------------------------------------------
# The analysis, on results built here


def with_study_fields(run: RunResult, **fields) -> RunResult:
    """`run` as read back from a results.json that also holds the study's fields (dev_majority, intermediate_dev,
    intermediate_budget)."""
    return RunResult.from_dict({**run.to_dict(), **fields})


def target_run(seed: int, aggregation: str, english: float, targets: dict[str, float], dev_majority: float = 33.3,
               task: str = "xnli") -> RunResult:
    spec = {"task": task, "eval_languages": list(targets), "aggregations": [aggregation],
            "fusion_layers": [0] if aggregation == "dlfa" else [], "seeds": [seed]}
    metrics = {lang: LanguageMetric("accuracy", value, n=100) for lang, value in targets.items()}
    return with_study_fields(RunResult(spec, COMPLETED, metrics, dev_score=english), dev_majority=dev_majority)


def target_job(per_seed: dict[int, tuple[float, float]], aggregation: str = "dlfa", tasks=(), **kwargs) -> JobResult:
    """seed -> (English dev, target mean): one run per seed with two languages around the target mean."""
    runs = tuple(target_run(seed, aggregation, english, {"de": target + 1, "sw": target - 1}, **kwargs)
                 for seed, (english, target) in per_seed.items())
    return JobResult({"task": "xnli", "intermediate_tasks": list(tasks)}, COMPLETED, runs)


def intermediate_job(tasks: tuple[str, ...], scores: dict[str, list[float]], steps: int = 600) -> JobResult:
    """An arm's job: per seed, each task's English dev score (majority 50, MCC prior 0) and the budget spent."""
    runs = []
    for seed in (1, 2, 3):
        dev = {task: {"metric": "accuracy", "value": scores[task][seed - 1], "majority": 50.0,
                      "learned": scores[task][seed - 1] > 51.0} for task in tasks}
        budget = {"steps": steps, "examples": {task: steps * 32 // len(tasks) for task in tasks}}
        spec = {"task": "intermediate", "eval_languages": ["en"], "aggregations": ["last"], "seeds": [seed],
                "intermediate_tasks": list(tasks)}
        runs.append(with_study_fields(RunResult(spec, COMPLETED, {}), intermediate_dev=dev, intermediate_budget=budget))
    return JobResult({"task": "intermediate", "intermediate_tasks": list(tasks)}, COMPLETED, tuple(runs))


def study_results() -> dict[str, JobResult]:
    return {
        "study/arm-3": intermediate_job(("qnli", "boolq", "mrpc"), {"qnli": [70, 72, 71], "boolq": [50, 50.5, 62],
                                                                    "mrpc": [75, 76, 77]}),
        "study/xnli-arm-0": target_job({1: (70.0, 60.0), 2: (72.0, 61.0), 3: (71.0, 59.0)}),
        # seed 2 of 3 tasks stays at the majority class (33.3 + 0.6): named and left out
        "study/xnli-arm-3": target_job({1: (71.0, 61.0), 2: (33.9, 33.0), 3: (73.0, 60.0)}),
        "study/xnli-control": target_job({1: (74.0, 60.0), 2: (75.0, 62.0), 3: (76.0, 61.0)}, tasks=("xnli",)),
        "study/xnli-arm-0-last": target_job({}),  # not a key of the design: ignored
    }


def test_keys_parse_into_kind_target_and_arm():
    assert parse_key("study/arm-3") == ("arm", None, "arm-3")
    assert parse_key("study/conll-ner-arm-9") == ("target", "conll-ner", "arm-9")
    assert parse_key("study/udpos-control") == ("target", "udpos", "control")
    assert parse_key("study/tatoeba-arm-0-s1") == ("retrieval", None, "arm-0")
    assert parse_key("study/tatoeba-arm-0")[0] == "other"
    assert parse_key("finetune/udpos-dlfa") == ("other", None, "") and parse_key("udpos-arm-3")[0] == "other"


def test_arm_table_pairs_over_healthy_seeds_and_leaves_out_runs_at_the_majority_class():
    results = study_results()
    assert study_targets(results) == ["xnli"] and study_aggregations(results, "xnli") == ["dlfa"]
    zero, three, control = arm_table(results, "xnli", "dlfa")
    assert [row.arm for row in (zero, three, control)] == ["arm-0", "arm-3", "control"]
    assert three.tasks == ("qnli", "boolq", "mrpc") and control.tasks == ("xnli",)
    assert three.excluded == ["study/xnli-arm-3/dlfa-L0-s2"] and zero.excluded == []
    assert excluded_note([zero, three]).startswith("Left out of every mean and pair: study/xnli-arm-3/dlfa-L0-s2 "
                                                   "(English dev less than 1 point above the majority class")
    # arm-3's healthy seeds 1 and 3: English 71, 73; target 61, 60; gaps 10, 13; ratios 61/71, 60/73
    mean, low, high = three.means["english"]
    half = stats.t.ppf(0.975, 1) * math.sqrt(2) / math.sqrt(2)  # sd of (71, 73) is √2
    assert (mean, low, high) == pytest.approx((72.0, 72.0 - half, 72.0 + half))
    assert three.means["gap"][0] == pytest.approx(11.5) and three.means["ratio"][0] == pytest.approx(
        (61 / 71 + 60 / 73) / 2)
    # against arm-0, paired over seeds 1 and 3: target differences +1, +1 -> +1 [1, 1]; gap: (10-10), (13-12)
    vs_zero = three.changes["arm-0"]
    assert vs_zero["target"] == Change("arm-0", 1.0, 1.0, 1.0, 2)
    gap = vs_zero["gap"]
    assert gap.value == pytest.approx(0.5) and gap.pairs == 2
    assert (gap.low, gap.high) == pytest.approx((0.5 - stats.t.ppf(0.975, 1) * math.sqrt(0.5) / math.sqrt(2),
                                                 0.5 + stats.t.ppf(0.975, 1) * math.sqrt(0.5) / math.sqrt(2)))
    assert gap.verdict() == "inconclusive"
    # the control against arm-0 over 3 seeds: target differences 0, +1, +2 -> +1 [1 ± t(2)·1/√3]
    target = control.changes["arm-0"]["target"]
    half = stats.t.ppf(0.975, 2) / math.sqrt(3)
    assert (target.value, target.low, target.high, target.pairs) == pytest.approx((1.0, 1 - half, 1 + half, 3))
    assert "control" not in control.changes and "arm-0" not in zero.changes and "control" in zero.changes


def test_the_answer_in_words_calls_an_interval_containing_zero_inconclusive():
    rows = arm_table(study_results(), "xnli", "dlfa")
    said = answer(rows, "arm-0")
    assert said.startswith("Against 0 tasks: 3 tasks: target mean +1.0 [+1.0, +1.0] (above 0), transfer gap +0.5 [")
    assert "(inconclusive), 2 paired seeds; control (the target task itself): target mean +1.0 [" in said
    assert answer(rows, "control").startswith("Against control: 0 tasks: target mean -1.0 [")
    assert Change("arm-0", -2.0, -5.0, 1.0, 3).verdict() == "inconclusive"  # whatever the sign
    assert Change("arm-0", -2.0, -3.0, -1.0, 3).verdict() == "below 0"
    assert Change("arm-0", -2.0, None, None, 1).verdict() == "no interval: fewer than 2 paired seeds"
    assert answer([], "arm-0") == ""
    one_seed = ArmRow("arm-1", ("qnli",), [], [], changes={"arm-0": {"target": Change("arm-0", -0.6, None, None, 1)}})
    assert answer([one_seed], "arm-0") == ("Against 0 tasks: 1 task: target mean -0.6 (no interval: fewer than 2 "
                                           "paired seeds), 1 paired seed")


def test_learning_table_flags_tasks_that_did_not_learn():
    rows = learning_table(study_results())
    by_task = {(row["arm"], row["task"]): row for row in rows}
    assert list(by_task) == [("arm-3", "qnli"), ("arm-3", "boolq"), ("arm-3", "mrpc"), ("control (xnli)", "xnli")]
    boolq = by_task["arm-3", "boolq"]
    assert boolq["value"] == pytest.approx(54.1666, abs=1e-3) and boolq["majority"] == 50.0
    assert (boolq["learned_runs"], boolq["runs"], boolq["learned"]) == (1, 3, False)  # did not learn in 2 of 3
    assert by_task["arm-3", "qnli"]["learned"] is True
    assert by_task["control (xnli)", "xnli"]["learned"] is None  # nothing recorded: unknown, not "learned"


def test_budget_is_said_equal_or_flagged():
    results = study_results()
    results["study/arm-9"] = intermediate_job(tuple(POOL[:9]), {task: [60, 60, 60] for task in POOL[:9]})
    rows = budget_table(results)
    assert [row["arm"] for row in rows] == ["arm-3", "arm-9", "control (xnli)"]
    assert rows[0]["steps"] == [600] and rows[0]["examples"] == {"qnli": 6400, "boolq": 6400, "mrpc": 6400}
    assert budget_in_words(rows) == ("Every arm with a finished run spent the same intermediate budget: 600 optimizer "
                                     "steps (not recorded for control (xnli)).")
    results["study/arm-9"] = intermediate_job(tuple(POOL[:9]), {task: [60, 60, 60] for task in POOL[:9]}, steps=900)
    assert budget_in_words(budget_table(results)).startswith(
        "NOT EQUAL: the arms spent different intermediate budgets (arm-3: 600; arm-9: 900)")


def test_retrieval_per_arm_against_the_base_encoder():
    def tatoeba(seed: int, value: float) -> JobResult:
        """A retrieval job: one encoder, per-language accuracy at the job level, no runs."""
        metrics = {"de": LanguageMetric("retrieval_accuracy", value + 2), "fr": LanguageMetric("retrieval_accuracy",
                                                                                                 value - 2)}
        return JobResult({"task": "tatoeba", "seeds": [seed]}, COMPLETED, (), metrics)

    results = {f"study/tatoeba-arm-3-s{seed}": tatoeba(seed, value)
               for seed, value in ((1, 80.0), (2, 82.0), (3, 84.0))}
    results["study/tatoeba-arm-0-s1"] = tatoeba(1, 90.0)
    base, three = retrieval_table(results)
    assert base["arm"] == "arm-0" and base["mean"] == 90.0 and base["low"] is None and base["change"] is None
    half = stats.t.ppf(0.975, 2) * 2 / math.sqrt(3)
    assert (three["mean"], three["low"], three["high"]) == pytest.approx((82.0, 82 - half, 84 - 2 + half))
    assert three["change"].value == pytest.approx(-8.0) and three["change"].verdict() == "below 0"
    results["study/tatoeba-arm-3-s1"] = tatoeba(1, 40.0)  # a seed far below the others: the t-interval passes 100
    three = retrieval_table(results)[1]
    assert three["high"] == 100.0 and three["low"] < three["mean"] == pytest.approx((40 + 82 + 84) / 3)


def test_progress_counts_the_designs_jobs_and_runs_and_says_when_the_study_is_complete():
    small = design(subsets=((), ("qnli",)), retrieval_languages=())
    jobs = small.jobs("")
    done = {key: JobResult({}, COMPLETED, tuple(RunResult({}, COMPLETED) for _ in spec.units())) for key, spec in jobs}
    assert progress_in_words(small, done) == "Complete: 7 of 7 jobs complete, 39 of 39 runs."
    with_retrieval = design(subsets=((), ("qnli",)), retrieval_languages=("de", "fr"))
    retrieval_keys = [key for key, _ in with_retrieval.jobs("") if "tatoeba" in key]
    assert len(retrieval_keys) == 4  # the base encoder's, and the 1-task arm's of seeds 1-3
    accuracy = {"de": LanguageMetric("retrieval_accuracy", 80.0)}
    measured = {key: JobResult({"task": "tatoeba"}, COMPLETED, (), accuracy) for key in retrieval_keys}  # no runs
    assert progress_in_words(with_retrieval, {**done, **measured}) == "Complete: 11 of 11 jobs complete, 43 of 43 runs."
    arm_only = {"study/arm-1": JobResult({}, STOPPED, done["study/arm-1"].runs[:2])}
    assert progress_in_words(small, arm_only) == (
        "Under way: 0 of 7 jobs complete, 2 of 39 runs (part-way: arm-1 2 of 3); no target job has a finished run "
        "yet, so there is no answer on zero-shot transfer yet.")


def test_find_studies_groups_launched_jobs_by_their_names():
    def job(name):
        return SimpleNamespace(spec=SimpleNamespace(name=name), id=name)

    jobs = [job("study 2: study/arm-3"), job("study 1: study/arm-3"), job("study 2: study/udpos-arm-3"),
            job("something else"), job("study 2: study/arm-3")]
    found = find_studies(jobs)
    assert list(found) == ["study 2", "study 1"]
    assert found["study 2"]["study/arm-3"] is jobs[0] and set(found["study 2"]) == {"study/arm-3", "study/udpos-arm-3"}


def test_the_report_section_shows_the_tables_and_the_answer_and_regenerates_byte_identically(tmp_path):
    from dlfa.io import write_json
    from dlfa.reproduction.report import write_report
    from dlfa.reproduction.study_design import DESIGN_FILE
    from dlfa.results import write_results

    out = tmp_path / "record"
    results = study_results()
    for key, job in results.items():
        write_results(out / key, job)
    write_json(out / DESIGN_FILE, design(subsets=((), ("qnli", "boolq", "mrpc")), seeds=(1, 2, 3)).to_dict())
    doc = write_report(out, tmp_path / "docs" / "REPRODUCTION.md", "python -m dlfa reproduce run")
    first = doc.read_bytes()
    assert write_report(out, doc, "python -m dlfa reproduce run").read_bytes() == first  # byte-identical
    section = doc.read_text().split("## 3. ")[1].split("## 4. ")[0]
    assert "Every arm with intermediate tasks spends the same intermediate budget of 600 optimizer steps (batch 32), " \
           "mixture (temperature, T = 2); arms (tasks named, in order of preference, in training order): 0: none " \
           "(the base encoder); 3: qnli, boolq, mrpc; the control arm" in section
    assert "**Progress.** Under way: 1 of 11 jobs complete, 12 of 43 runs (part-way: xnli-control 3 of 6, xnli-arm-0 " \
           "3 of 6, xnli-arm-3 3 of 6); the tables below hold the runs finished so far." in section
    assert "**Budget.** Every arm with a finished run spent the same intermediate budget: 600 optimizer steps" \
        in section
    assert "| arm-3 | boolq | accuracy | 54.2 | 50.0 | 1 of 3: did not learn |" in section
    assert "Did not learn in at least one run: boolq." in section
    assert "### XNLI, dlfa" in section
    assert ("| 3 tasks | qnli, boolq, mrpc | 2 (+1 left out) | 72.0 [59.3, 84.7] | 60.5 [54.1, 66.9] | 11.5 ["
            in section)
    assert "Left out of every mean and pair: study/xnli-arm-3/dlfa-L0-s2" in section
    assert "**Answer, XNLI, dlfa** (equal intermediate budgets): Against 0 tasks: 3 tasks: target mean +1.0 " \
           "[+1.0, +1.0] (above 0)" in section
    assert "runs on a GPU with `python -m dlfa reproduce hub-study --device cuda`" in section
