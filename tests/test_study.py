"""The intermediate-task study: presets on the real data root, specs, and the comparison math by hand."""
import math
from dataclasses import replace
from types import SimpleNamespace

import pytest
from scipy import stats

from dlfa.errors import DlfaError
from dlfa.engine.spec import JobSpec
from dlfa.reproduction.study import (INTERMEDIATE_PRESETS, change_in_words, compare, find_study, not_learned_note, preset_for,
                        study_specs, summarize)
from dlfa.data.registry import get_task
from dlfa.results import COMPLETED, STOPPED, JobResult, LanguageMetric, RunResult


def _job(values_by_seed: dict[int, dict[str, float]], ci: float | None = None, tasks=(), dev_scores=(),
         majority: float | None = None, stopped_seeds=()) -> JobResult:
    """A job's results: one completed run per seed (English dev scores in seed order when given), then a stopped
    run per stopped seed; `ci` = half-width of each run's bootstrap interval."""
    runs = [RunResult({"task": "xnli", "seeds": [seed]}, COMPLETED,
                      {lang: LanguageMetric("accuracy", v, None if ci is None else v - ci, None if ci is None else v + ci,
                                            100, majority) for lang, v in values.items()},
                      dev_score=dev)
            for (seed, values), dev in zip(values_by_seed.items(), [*dev_scores, *[None] * len(values_by_seed)])]
    runs += [RunResult({"task": "xnli", "seeds": [seed]}, STOPPED) for seed in stopped_seeds]
    return JobResult({"task": "xnli", "intermediate_tasks": list(tasks)}, COMPLETED, tuple(runs))


def _row(rows, language, count):
    return next(r for r in rows if r["language"] == language and r["count"] == count)


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


def test_study_specs_share_seeds_and_budget(data_root):
    base = JobSpec(task="xnli", eval_languages=("de", "zh"), seeds=(1, 2), data_root=str(data_root),
                   max_train_examples=320, batch_size=32, epochs=2.0)
    specs = study_specs(base, source=data_root)
    assert list(specs) == [0, 3, 9]
    assert specs[3].name == "study: xnli +3" and specs[3].intermediate_tasks == INTERMEDIATE_PRESETS[3]
    assert specs[0].intermediate_tasks == ()
    for spec in specs.values():
        assert spec.seeds == (1, 2) and spec.max_steps == 20  # 2 epochs × 320 examples / 32 per step, every stage
        assert spec.task == "xnli" and spec.eval_languages == ("de", "zh") and spec.epochs == 2.0


def test_find_study_picks_the_jobs_that_differ_only_in_their_intermediate_tasks(data_root):
    base = JobSpec(task="xnli", eval_languages=("de", "zh"), seeds=(1, 2), data_root=str(data_root), max_steps=20)
    study = {count: SimpleNamespace(id=f"study-{count}", spec=spec) for count, spec in study_specs(base).items()}
    newer_zero = SimpleNamespace(id="other-0", spec=replace(base, seeds=(7,)))  # another setting, no partners
    stray_three = SimpleNamespace(id="other-3", spec=replace(study[3].spec, learning_rate=1e-3))
    jobs = [newer_zero, stray_three, study[9], study[3], study[0]]  # newest first, like JobStore.list
    assert {count: job.id for count, job in find_study(jobs).items()} == {0: "study-0", 3: "study-3", 9: "study-9"}
    assert {count: job.id for count, job in find_study([newer_zero, stray_three]).items()} == {0: "other-0"}
    assert find_study([stray_three]) == {}


def test_compare_paired_over_seeds():
    reference = _job({1: {"de": 70.0, "zh": 60.0}, 2: {"de": 72.0, "zh": 61.0}, 3: {"de": 71.0, "zh": 59.0}})
    study = _job({1: {"de": 71.0, "zh": 60.5}, 2: {"de": 74.0, "zh": 61.5}, 3: {"de": 74.0, "zh": 59.5}},
                 tasks=("qnli", "boolq", "mrpc"))
    rows = compare({0: reference, 3: study})
    assert [(r["language"], r["count"]) for r in rows] == [("de", 0), ("de", 3), ("zh", 0), ("zh", 3)]
    de = _row(rows, "de", 3)
    # per-seed differences 1, 2, 3: mean 2, sd 1
    half = stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)  # 4.303 / 1.732 = 2.484
    assert de["value"] == pytest.approx(73.0) and de["change"] == pytest.approx(2.0)
    assert (de["ci_low"], de["ci_high"]) == pytest.approx((2.0 - half, 2.0 + half))
    assert de["ci_kind"] == "paired-t" and de["seeds"] == 3 and de["intermediate_tasks"] == ["qnli", "boolq", "mrpc"]
    zh = _row(rows, "zh", 3)  # every difference is 0.5: a zero-width interval
    assert (zh["change"], zh["ci_low"], zh["ci_high"]) == pytest.approx((0.5, 0.5, 0.5))
    baseline = _row(rows, "de", 0)
    assert baseline["change"] == 0 and baseline["ci_kind"] == "none" and baseline["ci_low"] is None


def test_compare_single_seed_sums_bootstrap_intervals():
    rows = compare({0: _job({1: {"de": 70.0}}, ci=2.0), 9: _job({1: {"de": 73.0}}, ci=1.5)})
    row = _row(rows, "de", 9)
    # change 3; below = (73 − 71.5) + (72 − 70) = 3.5, above = (74.5 − 73) + (70 − 68) = 3.5
    assert row["change"] == pytest.approx(3.0) and row["ci_kind"] == "bootstrap-sum"
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((-0.5, 6.5))
    no_interval = compare({0: _job({1: {"de": 70.0}}), 3: _job({1: {"de": 71.0}})})
    assert _row(no_interval, "de", 3)["ci_kind"] == "none" and _row(no_interval, "de", 3)["change"] == 1.0


def test_compare_unpaired_seeds_use_welch():
    rows = compare({0: _job({1: {"de": 70.0}, 2: {"de": 72.0}}), 3: _job({5: {"de": 73.0}, 6: {"de": 77.0}})})
    row = _row(rows, "de", 3)
    # variances of the means: 2/2 = 1 and 8/2 = 4; se = √5; df = 25 / (1 + 16) = 1.4706
    half = stats.t.ppf(0.975, 25 / 17) * math.sqrt(5)
    assert row["ci_kind"] == "welch-t" and row["change"] == pytest.approx(4.0)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((4.0 - half, 4.0 + half))


def test_compare_without_zero_uses_smallest_count_and_skips_incomplete_runs():
    study = _job({1: {"de": 80.0}}, ci=1.0, stopped_seeds=(2,))
    rows = compare({3: _job({1: {"de": 78.0}}, ci=1.0), 9: study})
    row = _row(rows, "de", 9)
    assert row["reference"] == 3 and row["change"] == pytest.approx(2.0) and row["seeds"] == 1
    assert compare({}) == []


def test_summary_compares_language_means_against_zero_and_the_previous_count():
    jobs = {0: _job({1: {"de": 70.0, "zh": 60.0}, 2: {"de": 72.0, "zh": 62.0}, 3: {"de": 71.0, "zh": 61.0}}),
            3: _job({1: {"de": 69.0, "zh": 59.0}, 2: {"de": 70.0, "zh": 62.0}, 3: {"de": 70.0, "zh": 60.0}},
                    tasks=("qnli", "boolq", "mrpc"), dev_scores=(80.0, 82.0, 84.0)),
            9: _job({1: {"de": 60.0, "zh": 50.0, "fr": 1.0}}, ci=1.0)}  # fr: not in every job, left out
    zero, three, nine = summarize(jobs)
    assert zero["languages"] == ["de", "zh"] and zero["changes"] == [] and zero["english_dev"] is None
    assert (zero["value"], three["value"], three["english_dev"], three["seeds"]) == pytest.approx((66.0, 65.0, 82, 3))
    # per-seed language means 0 tasks: 65, 67, 66; 3 tasks: 64, 66, 65: every difference is -1
    (against_zero,) = three["changes"]
    assert against_zero["against"] == 0 and against_zero["ci_kind"] == "paired-t"
    assert (against_zero["change"], against_zero["ci_low"], against_zero["ci_high"]) == pytest.approx((-1, -1, -1))
    assert [c["against"] for c in nine["changes"]] == [0, 3] and nine["seeds"] == 1
    assert nine["changes"][1]["change"] == pytest.approx(55.0 - 65.0)
    assert nine["changes"][1]["ci_low"] is None  # one seed: the spread over languages is no interval of the mean
    assert nine["intermediate_tasks"] == [] and three["intermediate_tasks"] == ["qnli", "boolq", "mrpc"]
    assert summarize({}) == [] and summarize({0: jobs[0], 3: _job({1: {"fr": 50.0}})}) == []
    assert zero["majority"] is None and not zero["at_majority"]  # no majority-class score recorded
    jobs[9] = _job({1: {"de": 60.0, "zh": 50.0, "fr": 1.0}}, ci=1.0, majority=54.5)
    nine = summarize(jobs)[2]
    assert nine["majority"] == 54.5 and nine["at_majority"]  # 55.0 is within 1 point: nothing learned


@pytest.mark.parametrize("change, answer", [
    ((2.0, 0.5, 3.5), "9 tasks transfer better than 3: +2.0 [+0.5, +3.5] points (paired-t)"),
    ((-7.4, -9.8, -4.9), "9 tasks transfer worse than 3: -7.4 [-9.8, -4.9] points (paired-t)"),
    ((-1.0, -3.0, 1.0), "no clear difference between 9 and 3 tasks: -1.0 [-3.0, +1.0] points (paired-t)"),
    ((-1.0, None, None), "9 vs 3 tasks: -1.0 points (no interval: one side has a single seed)"),
])
def test_changes_in_words(change, answer):
    value, low, high = change
    kind = "none" if low is None else "paired-t"
    change = {"against": 3, "change": value, "ci_low": low, "ci_high": high, "ci_kind": kind}
    assert change_in_words(9, change) == answer


def test_a_count_at_the_majority_class_is_flagged_as_not_learned():
    stuck = {"count": 9, "value": 33.8, "majority": 33.3, "at_majority": True}
    assert not_learned_note(stuck) == ("; with 9 tasks the target mean (33.8) stays within 1 point of the majority "
                                       "class (33.3): the target task was not learned")
    assert not_learned_note({**stuck, "value": 60.0, "at_majority": False}) == ""
