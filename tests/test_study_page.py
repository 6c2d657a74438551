"""The Intermediate tasks page under AppTest: designing a study (its jobs previewed in running order), a bad
design refused line by line, the launch (arms first, the others pointed at the arms' folders), and a finished
study's tables and answer."""
from __future__ import annotations

import json
from dataclasses import replace

from test_pages import empty_cache, no_errors, page  # noqa: F401  (empty_cache: a fixture)
from test_hub_study import qa_study_results
from test_study import design, study_results

from dlfa.app import runs
from dlfa.engine.spec import JobSpec
from dlfa.io import write_json
from dlfa.jobs.store import JobStore
from dlfa.paths import cache_subdir
from dlfa.reproduction.study_design import DESIGN_FILE, StudyDesign
from dlfa.results import write_results

NAME = "study 2026-12-02 10:00:00"
def table_with(at, column: str):
    """The page's (first) table that has this column, as a DataFrame."""
    return next(frame.value for frame in at.dataframe if column in frame.value.columns)


SMALL = {"is_counts": "0,1,3", "is_targets": ["udpos", "xnli"], "is_tatoeba": ["de", "fr"]}


def test_the_page_designs_a_study_and_previews_its_jobs_in_running_order(empty_cache):
    at = page("intermediate_study.py", **SMALL).run()
    no_errors(at)
    assert [t.value for t in at.title] == ["Intermediate tasks"]
    preview = table_with(at, "starts from")
    assert list(preview["job"]) == [
        "study/arm-1", "study/arm-3", "study/udpos-control", "study/udpos-arm-0", "study/udpos-arm-1",
        "study/udpos-arm-3", "study/xnli-control", "study/xnli-arm-0", "study/xnli-arm-1", "study/xnli-arm-3",
        "study/tatoeba-arm-0-s1", *(f"study/tatoeba-arm-{n}-s{s}" for n in (1, 3) for s in (1, 2, 3))]
    rows = preview.set_index("job")
    assert rows.loc["study/arm-3", "intermediate tasks"] == "sst2, xcopa, rte"  # the fixture root's, named in order
    assert rows.loc["study/udpos-arm-3", "starts from"] == "study/arm-3"
    assert rows.loc["study/tatoeba-arm-3-s2", "starts from"] == "study/arm-3/last-s2"
    assert rows.loc["study/udpos-arm-0", "starts from"] == "the base encoder"
    assert rows.loc["study/xnli-control", "intermediate tasks"] == "xnli"
    assert any(c.value.startswith("17 jobs: 2 arm job(s) first, then the jobs that start from their encoders; about ")
               and " h in fp32 on a 2-core CPU (the reproduction's timing model)" in c.value for c in at.caption)
    assert any(i.value.startswith("No finished study yet") for i in at.info)

    at.radio(key="is_rule").set_value("drawn").run()  # a seeded draw: another order, recorded by its seed
    drawn = table_with(at, "starts from").set_index("job").loc["study/arm-3", "intermediate tasks"]
    assert drawn != "sst2, xcopa, rte" and len(drawn.split(", ")) == 3


def test_a_bad_design_is_refused_line_by_line_and_nothing_is_submitted(empty_cache):
    at = page("intermediate_study.py", **{**SMALL, "is_counts": "0,1,12"}).run()
    (error,) = at.error  # the fixture root's three, and the classroom pack's two where it is built
    assert error.value.startswith("12 intermediate tasks asked for, but only ")
    assert "have English training data: sst2, xcopa, rte" in error.value
    at = page("intermediate_study.py", **{**SMALL, "is_seeds": "1,2"}).run()
    at.button(key="is_launch").click().run()
    assert any(e.value.startswith("seeds: at least 3 distinct seeds") for e in at.error)
    assert not any(e.value.startswith("Submitted") for e in at.success)
    assert JobStore().list() == []


def test_the_launch_submits_the_arms_first_and_the_others_start_from_their_folders(empty_cache, monkeypatch):
    monkeypatch.setenv("DLFA_MAX_CONCURRENT_JOBS", "1")
    monkeypatch.setattr("dlfa.jobs.launch.dispatch_queued", lambda store=None: [])  # queue only: nothing runs here
    at = page("intermediate_study.py", **SMALL).run()
    at.button(key="is_launch").click().run()
    no_errors(at)
    assert any(s.value.startswith("Submitted 17 jobs of `study ") for s in at.success)
    jobs = sorted(JobStore().list(), key=lambda job: job.created_at)
    keys = [job.spec.name.split(": ")[1] for job in jobs]
    assert keys[:2] == ["study/arm-1", "study/arm-3"] and len(keys) == 17
    by_key = {key: job for key, job in zip(keys, jobs)}
    assert by_key["study/xnli-arm-3"].spec.init_from == str(by_key["study/arm-3"].out_dir)
    assert str(by_key["study/arm-3"].out_dir).endswith("study/arm-3")  # a failure there names the arm
    design = json.loads((by_key["study/arm-3"].out_dir.parent / "design.json").read_text())
    assert StudyDesign.from_dict(design).counts == (0, 1, 3)


def test_the_page_shows_a_finished_studys_tables_and_answer(empty_cache):
    store = JobStore()
    root = cache_subdir("studies") / "a-study"
    for key, results in study_results().items():
        spec = JobSpec(task="xnli", eval_languages=("de", "sw"), name=f"{NAME}: {key}")
        job = store.submit(spec, out_dir=root / key)
        write_results(job.out_dir, results)
        assert store.claim_job(job.id) and store.mark_running(job.id) and store.mark_completed(job.id)
    at = page("intermediate_study.py").run()
    no_errors(at)
    assert at.selectbox(key="is_study").options == [NAME]
    budget = table_with(at, "intermediate steps")
    assert list(budget["arm"]) == ["arm-3", "control (xnli)"] and list(budget["intermediate steps"]) == ["600", "–"]
    assert any(m.value.startswith("Every arm with a finished run spent the same intermediate budget: 600 optimizer "
                                  "steps") for m in at.markdown)
    learning = table_with(at, "learned (runs)").set_index("task")
    assert learning.loc["boolq", "learned (runs)"] == "1 of 3: did not learn"
    assert any(w.value == "Did not learn in at least one run: boolq." for w in at.warning)
    arms = table_with(at, "target mean vs 0 tasks").set_index("arm")
    assert arms.loc["3 tasks", "runs"] == "2 (+1 left out)" and arms.loc["3 tasks", "English dev"].startswith("72.0 [")
    assert arms.loc["3 tasks", "target mean vs 0 tasks"] == "+1.0 [+1.0, +1.0] (above 0)"
    assert arms.loc["control (the target task itself)", "target mean vs 0 tasks"].endswith("(inconclusive)")
    assert any(w.value.startswith("Left out of every mean and pair: study/xnli-arm-3/dlfa-L0-s2") for w in at.warning)
    answers = [m.value for m in at.markdown if m.value.startswith("**Against")]
    assert answers[0].startswith("**Against 0 tasks: 3 tasks: target mean +1.0 [+1.0, +1.0] (above 0), transfer gap")
    assert answers[1].startswith("**Against control: 0 tasks: target mean -1.0 [")


def test_with_no_study_here_the_page_opens_the_recorded_one_in_place(empty_cache, monkeypatch, tmp_path):
    """The record as it stands while a study runs: an arm's encoders trained, no target job yet."""
    record = tmp_path / "record"
    arm = study_results()["study/arm-3"]
    spec = {**arm.spec, "eval_languages": ["en"], "name": "reproduction: study: study/arm-3"}
    write_results(record / "study/arm-3", replace(arm, spec=spec))
    write_json(record / DESIGN_FILE, design(subsets=((), ("qnli", "boolq", "mrpc"))).to_dict())
    monkeypatch.setattr(runs, "reproduction_record", lambda: record)
    at = page("intermediate_study.py").run()
    no_errors(at)
    (info,) = at.info
    assert info.value.startswith("No finished study yet among the jobs here. The repository's reproduction holds one "
                                 "(`docs/reproduction/study`, 1 job(s) with finished runs so far)")
    at.button(key="is_open_record").click().run()
    no_errors(at)
    assert at.selectbox(key="is_study").options == ["reproduction: study"]
    assert list(table_with(at, "intermediate steps")["arm"]) == ["arm-3"]
    assert table_with(at, "learned (runs)").set_index("task").loc["boolq", "learned (runs)"] == "1 of 3: did not learn"
    assert "**Progress.** Under way: 1 of 11 jobs complete, 3 of 43 runs; no target job has a finished run yet, so " \
           "there is no answer on zero-shot transfer yet." in [m.value for m in at.markdown]
    assert [job.out_dir for job in JobStore().list()] == [record / "study/arm-3"]  # read where it is


def test_the_page_offers_xquad_as_a_target_and_lists_its_jobs_at_256_tokens(empty_cache):
    at = page("intermediate_study.py", is_counts="0,1", is_targets=["xquad"], is_tatoeba=[]).run()
    no_errors(at)
    assert "xquad" in at.multiselect(key="is_targets").options
    assert at.multiselect(key="is_languages_xquad").value == ["de"]  # the fixture root's XQuAD: English and German
    preview = table_with(at, "starts from").set_index("job")
    assert list(preview.index) == ["study/arm-1", "study/xquad-control", "study/xquad-arm-0", "study/xquad-arm-1"]
    assert list(preview["task"]) == ["intermediate", "xquad", "xquad", "xquad"]
    assert list(preview["max length"]) == [128, 256, 256, 256]  # a QA target reads 256-token windows
    assert preview.loc["study/xquad-control", "intermediate tasks"] == "xquad"
    assert preview.loc["study/xquad-arm-1", "starts from"] == "study/arm-1"
    estimate = next(c.value for c in at.caption if c.value.startswith("4 jobs: 1 arm job(s) first"))
    assert float(estimate.split("about ")[1].split(" h")[0]) > 26  # the control: 6 runs x 600 XQuAD steps x 26 s


def test_a_finished_qa_study_shows_f1_with_exact_match_beside_it(empty_cache):
    store = JobStore()
    for key, results in qa_study_results().items():
        job = store.submit(JobSpec(task="xquad", eval_languages=("de",), name=f"{NAME}: {key}"),
                           out_dir=cache_subdir("studies") / "qa-study" / key)
        write_results(job.out_dir, results)
        assert store.claim_job(job.id) and store.mark_running(job.id) and store.mark_completed(job.id)
    at = page("intermediate_study.py").run()
    no_errors(at)
    assert [s.value for s in at.subheader if s.value.startswith("xquad")] == ["xquad, last"]
    arms = table_with(at, "target exact match").set_index("arm")
    assert arms.loc["1 task", "target mean"] == "41.0 [37.3, 44.7]" and arms.loc["1 task", "target exact match"] \
        .startswith("24.5 [")
    assert arms.loc["1 task", "target mean vs 0 tasks"] == "+4.0 [+2.8, +5.2] (above 0)"
    assert any(c.value.startswith("Scores are F1 (English dev and the target languages)") for c in at.caption)
    assert any(w.value.startswith("Left out of every mean and pair: study/xquad-control/last-s1") for w in at.warning)
