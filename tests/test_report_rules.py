"""The report's verdict rules on synthetic records (results.json files written here): inconclusive intervals,
the paper's value against our interval, per-run majority-class flags, layer ties, code versions, sizes and
convergence points. No figure is drawn: these records hold no probe sweep and no layer analysis."""
import json

import pytest

from dlfa.errors import ConfigError
from dlfa.reproduction.report import write_report
from dlfa.reproduction.rules import Cell, gain_verdict, paper_in_interval

LANGUAGES = ["de", "zh"]
MAJORITY = 33.3


def run(aggregation: str, seed: int, values: tuple[float, float], layer: int | None = None, dev: float = 70.0,
        version: str | None = "v1", convergence: dict | None = None, commit: str | None = None,
        precision: str = "fp32", dev_majority: float | None = None) -> dict:
    spec = {"task": "xnli", "eval_languages": LANGUAGES, "aggregations": [aggregation],
            "fusion_layers": [] if layer is None else [layer], "seeds": [seed], "learning_rate": 5e-5,
            "max_train_examples": None, "max_eval_examples": None, "epochs": 3, "max_steps": None, "batch_size": 32,
            "probe": False}
    metrics = {lang: {"metric": "accuracy", "value": v, "ci_low": v - 2, "ci_high": v + 2, "n": 900,
                      "majority": MAJORITY} for lang, v in zip(LANGUAGES, values)}
    out = {"spec": spec, "status": "complete", "metrics": metrics, "dev_score": dev, "runs": None,
           "precision": precision, **({"dev_majority": dev_majority} if dev_majority is not None else {})}
    if version:
        out["code_version"] = {"sources_sha256": version * 8, "git_commit": commit, "git_dirty": None if commit is None
                               else False}
    out.update(convergence or {})
    return out


def write_job(root, job: str, runs: list[dict]) -> None:
    folder = root / job
    folder.mkdir(parents=True, exist_ok=True)
    for r in runs:
        r.pop("runs")
    spec = {**runs[0]["spec"], "seeds": sorted({r["spec"]["seeds"][0] for r in runs})}
    (folder / "results.json").write_text(json.dumps({"spec": spec, "status": "complete", "runs": runs}))


def fine_tuned(root, setting: str, dlfa_values: dict[int, tuple[float, float]], layer: int = 3, **kw) -> None:
    """finetune/<setting>-<aggregation>: last at 60/50 for seeds 1-3, DLFA as given, scalar-mix at 61/51."""
    seeds = sorted(dlfa_values)
    write_job(root, f"finetune/{setting}-last", [run("last", s, (60.0 + s, 50.0), **kw) for s in seeds])
    write_job(root, f"finetune/{setting}-dlfa", [run("dlfa", s, v, layer, **kw) for s, v in dlfa_values.items()])
    write_job(root, f"finetune/{setting}-scalar-mix", [run("scalar-mix", s, (61.0, 51.0), **kw) for s in seeds])


def report(root, tmp_path) -> str:
    doc = tmp_path / "docs" / "REPRODUCTION.md"
    write_report(root, doc, "CMD")
    return doc.read_text()


@pytest.mark.parametrize("gain, verdict", [
    (Cell(1.5, 0.2, 2.8, 5), "agrees: a gain, interval above 0"),
    (Cell(1.5, -0.2, 3.2, 5), "inconclusive: the interval includes 0"),  # positive, 0 inside
    (Cell(-2.14, -8.23, 3.95, 3), "inconclusive: the interval includes 0"),  # negative, 0 inside
    (Cell(-1.6, -3.2, -0.1, 5), "does not agree: DLFA is worse, interval below 0"),
    (Cell(4.0, None, None, 1), "not decided: one seed, no interval over seeds"),
    (None, "not decided: no seed where both DLFA and last learned"),
])
def test_an_interval_containing_zero_is_inconclusive_whatever_the_sign(gain, verdict):
    assert gain_verdict("fine-tuning", gain).startswith(verdict)
    assert gain_verdict("probe", Cell(5.0, 4.0, 6.0, 1)).startswith("not decided: probe only")


def test_a_comparison_whose_dlfa_runs_have_not_finished_reads_not_run_yet_not_at_the_majority_class():
    assert gain_verdict("fine-tuning", None, ("dlfa",)) == "not decided: fine-tuning of dlfa not run yet"
    assert gain_verdict("fine-tuning", None) != gain_verdict("fine-tuning", None, ("dlfa",))


def test_the_table_says_whether_the_papers_value_lies_inside_our_interval():
    assert paper_in_interval(Cell(-2.14, -8.23, 3.95, 3), 1.5) == "yes"
    assert paper_in_interval(Cell(-1.58, -5.31, 1.0, 3), 1.2) == "no"
    assert paper_in_interval(Cell(0.5, None, None, 1), 1.2) == "–"


def test_runs_whose_english_dev_stays_at_the_majority_class_are_named_left_out_and_decide_nothing(tmp_path):
    root = tmp_path / "record"
    # seed 2's DLFA: English dev 33.8 < 33.3 + 1 (its own dev_majority), so it and last's seed 2 leave the means
    fine_tuned(root, "xnli-cls", {1: (64.0, 52.0), 3: (66.0, 52.0)})
    write_job(root, "finetune/xnli-cls-dlfa", [run("dlfa", 1, (64.0, 52.0), 3), run("dlfa", 3, (66.0, 52.0), 3),
                                               run("dlfa", 2, (50.0, 40.0), 3, dev=33.8, dev_majority=33.3)])
    write_job(root, "finetune/xnli-cls-last", [run("last", s, (60.0 + s, 50.0)) for s in (1, 2, 3)])
    write_job(root, "finetune/xnli-cls-scalar-mix", [run("scalar-mix", s, (61.0, 51.0)) for s in (1, 2, 3)])
    text = report(root, tmp_path)
    assert "left out of the means and of every claim: `dlfa-L3-s2`." in text
    assert "seeds kept: last 3, DLFA 2, scalar-mix 3" in text
    # paired gains over seeds 1 and 3: ((64-61)+(52-50))/2 = 2.5 and ((66-63)+(52-50))/2 = 2.5
    assert "| **mean** | 56.0 | 58.5 | **+2.50** [+2.50, +2.50] |" in text  # last: (61+62+63)/3 = 62 and 50
    assert "| XNLI: DLFA > last (xnli-cls) | +1.5 | +2.50 [+2.50, +2.50] (DLFA L3, fine-tuning, 2 seeds) | no | agrees" in text
    every_dlfa_at_majority = tmp_path / "all"
    fine_tuned(every_dlfa_at_majority, "xnli-cls", {1: (50.0, 50.0), 2: (50.0, 50.0)}, dev=33.5)  # no own majority:
    (every_dlfa_at_majority / "data").mkdir()  # the record's, for runs from before they recorded their own
    (every_dlfa_at_majority / "data" / "dev_majority.json").write_text(json.dumps(
        {"xnli": {"metric": "accuracy", "dev_majority": 33.3, "examples": 600}}))
    text = report(every_dlfa_at_majority, tmp_path)
    assert "`dlfa-L3-s1`, `dlfa-L3-s2`" in text
    assert "| – | – | not decided: no seed where both DLFA and last learned" in text


def test_a_run_that_learned_english_but_transfers_nothing_stays_in_the_comparison(tmp_path):
    root = tmp_path / "record"
    # seed 2's DLFA: English dev 70 (learned), targets at the majority class (33.5): it counts, as a loss
    fine_tuned(root, "xnli-cls", {1: (64.0, 52.0), 2: (33.5, 33.5), 3: (66.0, 52.0)}, dev_majority=33.3)
    text = report(root, tmp_path)
    assert "Runs that learned nothing" not in text and "seeds kept: last 3, DLFA 3, scalar-mix 3" in text
    assert "| **mean** | 56.0 | 50.2 | **-5.83** [" in text  # paired gains +2.5, -22.5, +2.5


def test_the_claims_table_reads_inconclusive_and_shows_the_paper_inside_the_interval(tmp_path):
    root = tmp_path / "record"
    fine_tuned(root, "xnli-cls", {1: (58.0, 52.0), 2: (70.0, 50.0), 3: (60.0, 51.0)})  # gains -0.5, +4, -1
    text = report(root, tmp_path)
    row = next(line for line in text.splitlines() if line.startswith("| XNLI: DLFA > last (xnli-cls)"))
    assert row.startswith("| XNLI: DLFA > last (xnli-cls) | +1.5 | +0.83 [")  # positive, and 0 inside
    assert row.endswith("| yes | inconclusive: the interval includes 0 |")
    assert "| paper's value inside our interval | verdict |" in text


def test_runs_of_different_code_versions_are_refused_and_one_version_is_named(tmp_path):
    root = tmp_path / "record"
    fine_tuned(root, "xnli-cls", {1: (64.0, 52.0), 2: (65.0, 52.0)}, version="a")
    assert "Code version of every run of sections 1 and 2: `aaaaaaaa`; of the study" in report(root, tmp_path)
    write_job(root, "finetune/pawsx-cls-last", [run("last", 1, (60.0, 50.0), version=None)])
    with pytest.raises(ConfigError, match=r"mixes runs of 2 code versions \(not recorded: finetune/pawsx-cls-last; "
                                          r"aaaaaaaa: finetune/xnli-cls-dlfa, finetune/xnli-cls-last, "
                                          r"finetune/xnli-cls-scalar-mix\)"):
        report(root, tmp_path)


def test_runs_of_two_commits_with_the_same_sources_are_one_code_version_and_both_commits_are_named(tmp_path):
    root = tmp_path / "record"  # a docs-only commit between two sittings of the same plan
    fine_tuned(root, "xnli-cls", {1: (64.0, 52.0), 2: (65.0, 52.0)}, version="a", commit="1" * 40)
    write_job(root, "finetune/pawsx-cls-last", [run("last", 1, (60.0, 50.0), version="a", commit="2" * 40)])
    assert ("Code version of every run of sections 1 and 2: `aaaaaaaa` (the hash of dlfa/'s sources that can change "
            "a number; git 1111111111, 2222222222); of the study") in report(root, tmp_path)


def test_the_study_may_have_a_code_version_of_its_own_but_not_two(tmp_path):
    root = tmp_path / "record"  # the study runs later, on newer code: its own experiment
    fine_tuned(root, "xnli-cls", {1: (64.0, 52.0), 2: (65.0, 52.0)}, version="a")
    write_job(root, "study/xnli-arm-0", [run("last", 1, (60.0, 50.0), version="b")])
    assert ("Code version of every run of sections 1 and 2: `aaaaaaaa`; of the study (section 3, an experiment of "
            "its own): `bbbbbbbb`.") in report(root, tmp_path)
    write_job(root, "study/xnli-arm-3", [run("last", 1, (60.0, 50.0), version="c")])
    with pytest.raises(ConfigError, match=r"mixes runs of 2 code versions in the study \(bbbbbbbb: study/xnli-arm-0; "
                                          r"cccccccc: study/xnli-arm-3\)"):
        report(root, tmp_path)


def test_a_record_of_one_precision_says_it_and_one_that_mixes_two_is_refused_naming_the_jobs(tmp_path):
    root = tmp_path / "record"
    fine_tuned(root, "xnli-cls", {1: (64.0, 52.0), 2: (65.0, 52.0)})
    assert "Precision: `fp32` (sections 1 and 2), no runs yet (the study)." in report(root, tmp_path)
    write_job(root, "finetune/pawsx-cls-last", [run("last", 1, (60.0, 50.0), precision="bf16")])
    with pytest.raises(ConfigError, match=r"mixes runs of 2 precisions \(bf16: finetune/pawsx-cls-last; fp32: "
                                          r"finetune/xnli-cls-dlfa, finetune/xnli-cls-last, "):
        report(root, tmp_path)


def test_each_runs_convergence_point_is_shown_or_said_not_recorded(tmp_path):
    root = tmp_path / "record"
    converged = {"convergence": {"best_step": 120, "steps_trained": 180}}
    fine_tuned(root, "xnli-cls", {1: (64.0, 52.0), 2: (65.0, 52.0)}, convergence=converged)
    text = report(root, tmp_path)
    assert "`last-s1` best dev at step 120 of 180; `last-s2` best dev at step 120 of 180;" in text
    plain = tmp_path / "plain"
    fine_tuned(plain, "xnli-cls", {1: (64.0, 52.0), 2: (65.0, 52.0)})
    assert "Convergence: not recorded for these runs (they predate it)." in report(plain, tmp_path)


def test_runs_that_patience_never_stopped_are_said_to_end_at_their_cap_and_counted_when_still_rising(tmp_path):
    capped = {"best_step": 180, "steps_trained": 180, "epochs_trained": 3.0, "step_cap": 180, "stopped_early": False,
              "patience": 2, "dev_curve": [[60, 50.0], [120, 55.0], [180, 57.5]]}
    stopped = {"best_step": 120, "steps_trained": 180, "epochs_trained": 3.0, "step_cap": 240, "stopped_early": True,
               "patience": 1, "dev_curve": [[60, 50.0], [120, 55.0], [180, 54.0]]}
    for name, convergence in (("capped", capped), ("stopped", stopped)):
        fine_tuned(tmp_path / name, "xnli-cls", {1: (64.0, 52.0), 2: (65.0, 52.0)},
                   convergence={"convergence": convergence})
    text = report(tmp_path / "capped", tmp_path)
    assert "`last-s1` best dev at step 180 of 180, at its 3-epoch cap (+2.5 dev over its last epoch);" in text
    assert ("6 of 6 runs ended at their epoch cap with English dev still up by more than 0.5 point over their last "
            "epoch: they may not have converged") in text
    text = report(tmp_path / "stopped", tmp_path)
    assert "`last-s1` best dev at step 120 of 180, stopped by patience;" in text and "may not have converged" not in text


def test_the_choices_state_their_budget_and_count_the_runs_still_rising_at_their_cap(tmp_path):
    capped = {"best_step": 180, "steps_trained": 180, "epochs_trained": 3.0, "step_cap": 180, "stopped_early": False,
              "patience": 2, "dev_curve": [[60, 50.0], [120, 55.0], [180, 57.5]]}
    root = tmp_path / "record"
    grid = [run("last", 1, (60.0, 50.0), dev=72.0, convergence={"convergence": capped}),
            run("dlfa", 1, (62.0, 51.0), 4, dev=74.0)]
    write_job(root, "select/xnli-cls", grid)
    results = json.loads((root / "select/xnli-cls/results.json").read_text())
    results["spec"]["learning_rates"] = [2e-5, 5e-5, 1e-4]
    (root / "select/xnli-cls/results.json").write_text(json.dumps(results))
    fine_tuned(root, "xnli-cls", {1: (64.0, 52.0), 2: (65.0, 52.0)}, layer=4)
    choices = next(line for line in report(root, tmp_path).splitlines() if line.startswith("Choices on seed 1"))
    assert choices.startswith("Choices on seed 1 and English dev (`select/xnli-cls`, `select/xnli-cls-layers`; all "
                              "English training examples (size not recorded), 3 epoch(s), batch 32, learning rates "
                              "2e-05, 5e-05, 0.0001, all test examples per language): the best dev score")
    assert choices.endswith(" 1 of 2 runs ended at their epoch cap with English dev still up by more than 0.5 point "
                            "over their last epoch: they may not have converged, and the choices rest on them.")


def test_a_seed_1_trained_again_is_set_beside_its_selection_run_with_where_each_trained(tmp_path):
    root = tmp_path / "record"
    write_job(root, "select/xnli-cls", [{**run("last", 1, (60.0, 50.0), dev=72.0), "hardware": "CPU A, 2 threads"},
                                        run("dlfa", 1, (62.0, 51.0), 3, dev=74.0)])
    fine_tuned(root, "xnli-cls", {1: (64.0, 52.0), 2: (65.0, 52.0)})  # last-s1: dev 70.0, no hardware recorded
    text = report(root, tmp_path)
    assert ("Seed 1 trained again rather than taken over (a selection run is taken over only from the same code "
            "version, and for UD-POS and XNLI only with its saved model, which the fine-tuned layer analysis reads): "
            "`last-s1` English dev 70.00 (hardware not "
            "recorded) against its selection run's 72.00 (CPU A, 2 threads); `dlfa-L3-s1` English dev 70.00 (hardware "
            "not recorded) against its selection run's 74.00 (hardware not recorded).") in text


def test_english_sizes_are_stated_from_the_record(tmp_path):
    root = tmp_path / "record"
    fine_tuned(root, "xnli-cls", {1: (64.0, 52.0), 2: (65.0, 52.0)})
    text = report(root, tmp_path)
    assert "English data: sizes not recorded in this record (`data/sizes.json`: the record predates it)." in text
    assert "all English training examples (size not recorded)" in text
    fine_tuned(root, "pawsx-cls", {1: (64.0, 52.0), 2: (65.0, 52.0)})
    (root / "data").mkdir()
    sizes = {"xnli": {"train": 6000, "dev": 600, "test": 900}, "pawsx": {"train": 1201, "dev": 133, "test": 666}}
    (root / "data/sizes.json").write_text(json.dumps(sizes))
    text = report(root, tmp_path)
    assert "English data: train 6,000, dev 600, test 900 examples; the XNLI dev (2,490) and test (5,010" in text
    assert "all 6,000 English training examples" in text
    assert "no more labeled English PAWS-X data on this machine" in text.split("### PAWS-X")[1]


def test_a_layer_chosen_on_a_tie_is_shown_and_decides_no_claim(tmp_path):
    root = tmp_path / "record"
    # a record before issue 13: one fine-tuning job with dlfa at layers 0 and 9, tied on English dev
    runs = [run("last", s, (60.0, 50.0)) for s in (1, 2)]
    runs += [run("dlfa", s, (62.0, 51.0), layer, dev=70.0) for layer in (0, 9) for s in (1, 2)]
    runs += [run("scalar-mix", s, (61.0, 51.0)) for s in (1, 2)]
    write_job(root, "finetune/xnli", runs)
    results = json.loads((root / "finetune/xnli/results.json").read_text())
    results["grid"] = {"rows": [{"aggregation": "dlfa", "fusion_layer": k, "dev": 70.0} for k in (0, 9)]}
    (root / "finetune/xnli/results.json").write_text(json.dumps(results))
    fine_tuned(root, "pawsx-cls", {1: (64.0, 52.0), 2: (65.0, 52.0)}, layer=5)
    text = report(root, tmp_path)
    assert ("DLFA L0 has the best English dev score of the fine-tuned layers 0, 9 (tied on English dev with layer 9: "
            "by rule the lowest tied layer is taken, and no claim rests on the choice)") in text
    assert ("| best fusion layer differs per task | yes | xnli L0, pawsx-cls L5 | – | not decided: xnli (its layer "
            "was chosen on a tie) |") in text


def test_two_tasks_decided_on_different_layers_settle_the_layer_claim_while_a_third_is_under_way(tmp_path):
    root = tmp_path / "record"
    fine_tuned(root, "udpos", {1: (64.0, 52.0), 2: (65.0, 52.0)}, layer=6)
    fine_tuned(root, "panx", {1: (64.0, 52.0), 2: (65.0, 52.0)}, layer=8)
    write_job(root, "finetune/xnli-cls-last", [run("last", s, (60.0 + s, 50.0)) for s in (1, 2)])  # DLFA not yet
    text = report(root, tmp_path)
    assert ("| best fusion layer differs per task | yes | udpos L6, panx L8, xnli-cls (DLFA not fine-tuned yet) | – "
            "| agrees (not counted: xnli-cls (DLFA not fine-tuned yet)) |") in text
    write_job(root, "finetune/pawsx-cls-last", [run("last", s, (60.0, 50.0)) for s in (1, 2)])
    write_job(root, "finetune/pawsx-cls-dlfa", [run("dlfa", s, (50.0, 50.0), 11, dev=51.2, dev_majority=51.1)
                                                for s in (1, 2)])
    assert ("| udpos L6, panx L8, xnli-cls (DLFA not fine-tuned yet), pawsx-cls L11 | – | agrees (not counted: "
            "xnli-cls (DLFA not fine-tuned yet), pawsx-cls (DLFA runs at the majority class)) |") in report(root, tmp_path)
    fine_tuned(root, "panx", {1: (64.0, 52.0), 2: (65.0, 52.0)}, layer=6)  # the same layer as UD-POS
    assert ("| udpos L6, panx L6, xnli-cls (DLFA not fine-tuned yet), pawsx-cls L11 | – | not decided: xnli-cls (DLFA "
            "not fine-tuned yet), pawsx-cls (DLFA runs at the majority class) |") in report(root, tmp_path)


def test_the_seed_1_choices_are_tabled_and_a_layer_tie_there_decides_no_claim(tmp_path):
    root = tmp_path / "record"
    grid = [run("last", 1, (60.0, 50.0), dev=72.0), run("scalar-mix", 1, (60.0, 50.0), dev=70.0),
            run("dlfa", 1, (62.0, 51.0), 4, dev=74.0)]
    for r, rate in zip(grid, (2e-5, 1e-4, 5e-5)):
        r["spec"]["learning_rate"] = rate
    write_job(root, "select/xnli-cls", grid)
    write_job(root, "select/xnli-cls-layers", [run("dlfa", 1, (62.0, 51.0), 8, dev=74.0),
                                               run("dlfa", 1, (64.0, 50.0), 2, dev=33.4, dev_majority=33.3)])
    fine_tuned(root, "xnli-cls", {1: (64.0, 52.0), 2: (65.0, 52.0)}, layer=4)
    fine_tuned(root, "pawsx-cls", {1: (64.0, 52.0), 2: (65.0, 52.0)}, layer=5)
    text = report(root, tmp_path)
    assert "| last-s1 | 2e-05 | 72.0 | not recorded | **chosen** |" in text
    assert "| dlfa-L4-s1 | 5e-05 | 74.0 | not recorded | **chosen** |" in text  # the lower of the tied layers
    assert "| dlfa-L8-s1 | 5e-05 | 74.0 | not recorded | tied |" in text
    assert "| dlfa-L2-s1 (English dev at the majority class) | 5e-05 | 33.4 | not recorded |  |" in text
    assert "not decided: xnli-cls (its layer was chosen on a tie) |" in text


def test_a_choice_whose_runs_have_not_all_finished_marks_the_best_so_far_not_a_choice(tmp_path):
    root = tmp_path / "record"
    write_job(root, "select/xnli-cls", [run("last", 1, (60.0, 50.0), dev=72.0),
                                        run("dlfa", 1, (62.0, 51.0), 4, dev=74.0)])
    results = json.loads((root / "select/xnli-cls/results.json").read_text())
    (root / "select/xnli-cls/results.json").write_text(json.dumps({**results, "status": "running"}))  # mid-grid
    fine_tuned(root, "xnli-cls", {1: (64.0, 52.0), 2: (65.0, 52.0)}, layer=4)
    fine_tuned(root, "pawsx-cls", {1: (64.0, 52.0), 2: (65.0, 52.0)}, layer=5)
    text = report(root, tmp_path)
    assert "| last-s1 | 5e-05 | 72.0 | not recorded | best so far |" in text and "**chosen**" not in text
    assert "Not every run of the choice has finished yet: the best so far is marked" in text


def test_the_budget_names_the_pooling_only_of_a_task_that_pools_its_tokens_into_one_vector():
    from dlfa.engine.spec import JobSpec
    from dlfa.reproduction.tables import budget

    sizes = {"train": 6000}
    xnli = JobSpec(task="xnli", eval_languages=("de",), pooling="mean").to_dict()
    udpos = JobSpec(task="udpos", eval_languages=("de",), max_train_examples=4000).to_dict()  # pooling "cls" by default
    assert budget(xnli, sizes) == ("all 6,000 English training examples, 1 epoch(s), batch 32, learning rate 0.0001, "
                                   "mean pooling, all test examples per language")
    assert budget(udpos, {"train": 12544}) == ("4,000 of 12,544 English training examples, 1 epoch(s), batch 32, "
                                               "learning rate 0.0001, all test examples per language")


def test_the_budget_of_a_comparison_names_each_aggregations_learning_rate_where_they_differ():
    from dlfa.engine.spec import JobSpec
    from dlfa.reproduction.tables import budget

    def job(aggregation, rate):
        return JobSpec(task="pawsx", eval_languages=("de",), aggregations=(aggregation,), fusion_layers=(11,),
                       learning_rate=rate).to_dict()

    differ = [job("last", 1e-4), job("dlfa", 5e-5), job("scalar-mix", 1e-4)]
    assert budget(differ[-1], {"train": 1201}, differ) == (
        "all 1,201 English training examples, 1 epoch(s), batch 32, learning rates 0.0001 (last), 5e-05 (DLFA), "
        "0.0001 (scalar-mix), cls pooling, all test examples per language")
    same = [job("last", 5e-5), job("dlfa", 5e-5)]
    assert ", learning rate 5e-05, cls pooling" in budget(same[-1], {"train": 1201}, same)


def test_the_fine_tuned_layer_analysis_names_the_runs_it_could_not_analyse_and_the_claim_names_its_encoders(tmp_path):
    from dlfa.reproduction.report import Report

    fine_tuned(tmp_path, "xnli-cls", {1: (62.0, 52.0), 2: (63.0, 53.0)})
    curve = {"de": [0.3, 0.7, 0.6, 0.2], "zh": [0.3, 0.5, 0.4, 0.2]}  # peaks at layer 1, falls at the last (3)
    analysed = ["finetune/xnli-cls-last/last-s1", "finetune/xnli-cls-dlfa/dlfa-L3-s1",
                "finetune/xnli-cls-scalar-mix/scalar-mix-s1", "finetune/xnli-cls-scalar-mix/scalar-mix-s2"]
    (tmp_path / "layers").mkdir()
    (tmp_path / "layers/tuned.json").write_text(json.dumps(
        {"runs": {key: {"retrieval": curve, "cka": curve} for key in analysed}}))
    document = Report(tmp_path, tmp_path / "docs" / "REPRODUCTION.md")
    document.plain_tuned_layers({"retrieval": curve, "cka": curve, "num_layers": 3})
    text = "\n".join(document.lines)
    assert ("Fine-tuned runs analysed: xnli-cls 4 of 6 (not: `finetune/xnli-cls-last` last-s2, "
            "`finetune/xnli-cls-dlfa` dlfa-L3-s2).") in text
    assert "| `finetune/xnli-cls-dlfa/dlfa-L3-s1` | 0.300 | 0.600 (1) | 0.200 | 0.200 |" in text
    assert "saved models stay on the machine that trained them" in text
    every_run = {*analysed, "finetune/xnli-cls-last/last-s2", "finetune/xnli-cls-dlfa/dlfa-L3-s2"}
    assert document.tuned_coverage(every_run) == "Fine-tuned runs analysed: xnli-cls 6 of 6."
    document.findings["layers"] = "retrieval peaks at layer 1"
    after_tuning = document.layer_claim_rows()[-1][2]
    assert after_tuning.endswith("mean over 4 encoders (xnli: dlfa, last, scalar-mix); lower layers retrieve better "
                                 "in 4")
