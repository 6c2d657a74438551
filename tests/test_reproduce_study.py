"""The reproduction plan's study part end to end on a tiny encoder with tiny budgets on the real data: the arms
run first, every job finishes, a second run redoes nothing, the record keeps the design, and the report's
section 3 shows the budget spent, the learning table and the arms' tables."""
import json
from pathlib import Path

from dlfa.reproduction.plan import Reproduction
from dlfa.reproduction.plan import STUDY_CAPS
from dlfa.reproduction.record import arms_to_retrain, restore_record, save_record
from dlfa.reproduction.report import write_report
from dlfa.reproduction.runner import run_plan
from dlfa.reproduction.study_design import DESIGN_FILE, StudyDesign, StudyTarget, named_subsets
from dlfa.results import COMPLETED, JobResult, RunResult, read_job_results, write_results

TINY = {"max_steps": 3, "max_train_examples": 32, "max_eval_examples": 12, "batch_size": 8, "bootstrap_samples": 20,
        "checkpoint_every": 50, "eval_languages": ("de", "zh")}


def test_the_study_part_runs_resumes_and_reports(tiny_encoder, data_root, tmp_path):
    out, doc = tmp_path / "reproduction", tmp_path / "docs" / "REPRODUCTION.md"
    config = Reproduction(str(data_root), tiny_encoder, tasks=("udpos",), seeds=(1, 2, 3), study_counts=(0, 1, 3),
                          study_steps=6, study_retrieval=(), spec_overrides=TINY)
    chosen = RunResult({"task": "udpos", "aggregations": ["dlfa"], "fusion_layers": [2], "learning_rate": 1e-3},
                       COMPLETED, dev_score=80.0)
    write_results(out / "select/udpos", JobResult({"task": "udpos"}, COMPLETED, (chosen,)))  # the plan's choice
    write_results(out / "select/udpos-layers", JobResult({"task": "udpos"}, COMPLETED, ()))
    ran = []
    assert run_plan(config, out, ("study",), log=ran.append) == COMPLETED
    assert [line.split(":")[0] for line in ran] == ["study/arm-1", "study/arm-3", "study/udpos-control",
                                                   "study/udpos-arm-0", "study/udpos-arm-1", "study/udpos-arm-3"]
    arm = read_job_results(out / "study/arm-3/results.json")
    assert {run.intermediate_budget["steps"] for run in arm.runs} == {6}
    assert set(arm.runs[0].intermediate_dev) == {"qnli", "boolq", "mrpc"}
    target = read_job_results(out / "study/udpos-arm-3/results.json")
    assert len(target.completed_runs) == 6 and target.spec["init_from"] == str(out / "study/arm-3")
    again = []
    assert run_plan(config, out, ("study",), log=again.append) == COMPLETED and again == []  # nothing reruns

    save_record(out, doc.parent / "reproduction")
    assert json.loads((doc.parent / "reproduction" / DESIGN_FILE).read_text())["intermediate_steps"] == 6
    write_report(doc.parent / "reproduction", doc, "python -m dlfa reproduce run --parts study")
    section = doc.read_text().split("## 3. ")[1].split("## 4. ")[0]
    assert "**Budget.** Every arm with a finished run spent the same intermediate budget: 6 optimizer steps." in section
    assert "| arm-3 | boolq |" in section and "| control (udpos) | udpos |" in section
    assert "### POS tagging (UD-POS), last" in section and "### POS tagging (UD-POS), dlfa" in section


def test_a_study_whose_arms_have_not_finished_reports_its_design_and_says_so(tmp_path):
    record, doc = tmp_path / "reproduction", tmp_path / "REPRODUCTION.md"
    (record / "study").mkdir(parents=True)  # the design only: e.g. the first arm is rerun
    (record / DESIGN_FILE).write_text((Path(__file__).parents[1] / "docs/reproduction" / DESIGN_FILE).read_text())
    write_report(record, doc, "python -m dlfa reproduce run --parts study")
    section = doc.read_text().split("## 3. ")[1].split("## 4. ")[0]
    assert "Design (`study/design.json`" in section and "600" in section
    assert "**Budget.** No arm's intermediate training has finished yet." in section
    assert "**What this can conclude.**" in section


def test_a_fresh_output_root_trains_again_the_arms_a_job_still_starts_from(tmp_path):
    record, fresh = tmp_path / "record", tmp_path / "fresh"
    design = StudyDesign((StudyTarget("udpos", ("de",), 2, None, *STUDY_CAPS["udpos"], 2.0),),
                         named_subsets((0, 1, 3), ["sst2", "qnli", "mrpc"]), retrieval_languages=())
    (record / "study").mkdir(parents=True)
    (record / DESIGN_FILE).write_text(json.dumps(design.to_dict()))
    run = RunResult({"task": "intermediate", "eval_languages": ["en"], "seeds": [1]}, COMPLETED)
    finished = JobResult(run.spec, COMPLETED, (run,))
    for job in ("study/arm-1", "study/arm-3", "study/udpos-arm-1"):  # arm 3's target has not run yet
        write_results(record / job, finished)
    assert arms_to_retrain(record) == {"study/arm-3"}  # its saved encoders are not in the record
    restore_record(record, fresh)
    assert (fresh / "study/arm-1/results.json").is_file() and (fresh / "study/udpos-arm-1/results.json").is_file()
    assert not (fresh / "study/arm-3").exists()  # so the plan trains it again before its target

    write_results(record / "study/udpos-arm-3", finished)
    assert arms_to_retrain(record) == set()
