"""The reproduction plan (its jobs, choices and compute estimate) and its report: on synthetic results, on the
committed record of docs/reproduction, and end to end on a tiny encoder with tiny budgets on the real data."""
import json
import re
from pathlib import Path

import numpy as np
import pytest

from dlfa.cli.main import main
from dlfa.cli.reproduce import REPORT_COMMAND
from dlfa.errors import ConfigError
from dlfa.reproduction.choices import best_dev_layer, choose, finetune_layers
from dlfa.reproduction.plan import (DEFAULT_PARTS, LEARNING_RATES, SEEDS, SMALL_FILES, STUDY_CAPS, TASK_PLANS,
                                    Reproduction, estimated_hours, plan_jobs, record_root, study_hours)
from dlfa.reproduction.study_design import DESIGN_FILE, INTERMEDIATE_PRESETS, StudyDesign, StudyTarget, named_subsets
from dlfa.reproduction.record import restore_record, save_record
from dlfa.reproduction.report import write_report
from dlfa.reproduction.rules import lower_layers_retrieve_better, tied_layers
from dlfa.reproduction.runner import run_plan
from dlfa.data.registry import DataSource, english_sizes, get_task, load_encoded
from dlfa.engine.spec import JobSpec
from dlfa.model.encoders import load_tokenizer
from dlfa.results import COMPLETED, STOPPED, JobResult, LanguageMetric, RunResult, read_job_results, write_results

TINY = {"max_steps": 3, "max_train_examples": 32, "max_eval_examples": 12, "batch_size": 8, "bootstrap_samples": 20,
        "checkpoint_every": 50}
RECORD = Path(__file__).resolve().parents[1] / "docs" / "reproduction"


def test_finetune_layers_are_the_best_and_two_others():
    assert finetune_layers(6, 12) == (6, 3, 9)
    assert finetune_layers(3, 12) == (3, 6, 9)
    assert finetune_layers(11, 12) == (11, 3, 6)


def sweep(rows: list[dict]) -> JobResult:
    """A probe sweep's results with these grid rows."""
    return JobResult({"task": "xnli"}, COMPLETED, grid={"rows": rows})


def test_best_layer_is_chosen_on_english_dev_not_on_test_languages():
    rows = [{"aggregation": "last", "fusion_layer": None, "dev": 99.0},
            {"aggregation": "dlfa", "fusion_layer": 5, "dev": 70.0, "mean": 90.0},
            {"aggregation": "dlfa", "fusion_layer": 2, "dev": 80.0, "mean": 10.0}]
    assert best_dev_layer(sweep(rows)) == 2
    with pytest.raises(ConfigError, match="probe"):
        best_dev_layer(sweep(rows[:1]))
    tied = sweep([{"aggregation": "dlfa", "fusion_layer": 9, "dev": 80.0}, *rows])
    assert best_dev_layer(tied) == 2  # the lowest tied layer, whatever the sweep order
    assert tied_layers(tied, 2) == (" (tied on English dev with layer 9: by rule the lowest tied layer is taken, "
                                    "and no claim rests on the choice)")
    assert tied_layers(sweep(rows), 2) == ""


@pytest.mark.parametrize("retrieval, agrees", [
    ([0.3, 0.9, 0.95, 0.6, 0.5], True),  # a peak in the middle, the top clearly lower
    ([0.3, 0.9, 0.95, 0.96, 0.97], False),  # the top is best
    ([0.3, 0.9, 0.95, 0.94, 0.94], False),  # the peak is lower, but the top is within 2 points of it
    ([0.3, 0.5, 0.6, 0.9, 0.2], False),  # the peak is one below the top: not "lower layers"
])
def test_lower_layers_retrieve_better(retrieval, agrees):
    assert lower_layers_retrieve_better(retrieval) is agrees


def selection_run(aggregation: str, rate: float, dev: float, layer: int | None = None,
                  target: float = 70.0) -> RunResult:
    spec = {"task": "xnli", "eval_languages": ["de", "zh"], "aggregations": [aggregation],
            "fusion_layers": [] if layer is None else [layer], "seeds": [1], "learning_rate": rate}
    metrics = {lang: LanguageMetric("accuracy", target, majority=56.6) for lang in ("de", "zh")}
    return RunResult(spec, COMPLETED, metrics, dev_score=dev)


def test_choices_take_the_best_dev_then_the_smaller_rate_then_the_lower_layer_and_never_look_at_test_languages():
    runs = [selection_run("last", 1e-4, 80.0), selection_run("last", 2e-5, 80.0), selection_run("last", 5e-5, 79.0),
            selection_run("dlfa", 5e-5, 75.0, 6), selection_run("dlfa", 5e-5, 75.0, 3)]
    assert choose(runs, "last").spec["learning_rate"] == 2e-5
    assert choose(runs, "dlfa").spec["fusion_layers"] == [3]
    # a tie on English dev whose smaller rate leaves the target languages at the majority class: the rule holds
    tie = [selection_run("dlfa", 1e-4, 77.4, 11, target=66.5), selection_run("dlfa", 5e-5, 77.4, 11, target=57.6)]
    assert choose(tie, "dlfa") is tie[1]
    assert choose([*runs, selection_run("dlfa", 1e-4, 90.0, 9, target=57.0)], "dlfa").fusion_layer == 9
    with pytest.raises(ConfigError, match="no finished dlfa run"):
        choose(runs[:3], "dlfa")


def write_job(out: Path, job: str, runs: list[RunResult] = (), grid: dict | None = None) -> None:
    """A finished job's results.json under out."""
    write_results(out / job, JobResult({"task": "xnli"}, COMPLETED, tuple(runs), grid=grid))


def test_plan_chooses_rates_and_layer_on_seed_1_then_runs_5_seeds_of_each_aggregation(tiny_encoder, data_root,
                                                                                         tmp_path):
    config = Reproduction(str(data_root), tiny_encoder, tasks=("udpos", "pawsx"))
    jobs = dict(plan_jobs(config, tmp_path, ("layers", "probe")))
    assert list(jobs) == ["layers", "probe/udpos", "probe/pawsx-cls", "probe/pawsx-mean"]
    probe = jobs["probe/pawsx-mean"]
    assert probe["probe"] and probe["seeds"] == [1] and probe["fusion_layers"] == [0, 1, 2, 3]
    assert probe["pooling"] == "mean" and "pooling" not in jobs["probe/udpos"]  # a token task has no pooling
    with pytest.raises(ConfigError, match=r"takes its choices from probe/udpos, which has not finished yet"):
        list(plan_jobs(config, tmp_path, ("select",)))

    grid = {"rows": [{"aggregation": "dlfa", "fusion_layer": k, "dev": dev} for k, dev in enumerate((60, 70, 75, 72))]}
    for setting in ("udpos", "pawsx-cls", "pawsx-mean"):
        write_job(tmp_path, f"probe/{setting}", grid=grid)
    select = plan_jobs(config, tmp_path, ("select",))  # run_plan runs each job before the next is planned
    job, grid_job = next(select)
    assert job == "select/udpos"
    with pytest.raises(ConfigError, match="the fusion-layer choice takes its choices from select/udpos, which has not"):
        next(select)  # the layers are chosen at the learning rate the grid chose
    assert grid_job["learning_rates"] == list(LEARNING_RATES) == [2e-5, 5e-5, 1e-4]
    assert grid_job["aggregations"] == ["last", "dlfa", "scalar-mix"] and grid_job["fusion_layers"] == [2]
    assert grid_job["seeds"] == [1] and grid_job["patience"] == 3 and grid_job["max_epochs"] == 3
    assert grid_job["max_train_examples"] == 4000  # today's cap on token-task training sentences
    assert grid_job["eval_every"] == 4000 // 32 // 2  # English dev twice per epoch
    for setting in ("udpos", "pawsx-cls"):
        write_job(tmp_path, f"select/{setting}", [
            *(selection_run("last", rate, dev) for rate, dev in ((2e-5, 70), (5e-5, 74), (1e-4, 72))),
            *(selection_run("dlfa", rate, dev, 2) for rate, dev in ((2e-5, 71), (5e-5, 73), (1e-4, 76))),
            *(selection_run("scalar-mix", rate, 70) for rate in LEARNING_RATES)])
    select_jobs = dict(plan_jobs(config, tmp_path, ("select",)))  # pawsx-mean takes pawsx-cls's choices
    assert list(select_jobs) == ["select/udpos", "select/udpos-layers", "select/pawsx-cls", "select/pawsx-cls-layers"]
    layers = select_jobs["select/pawsx-cls-layers"]
    assert layers["aggregations"] == ["dlfa"] and layers["fusion_layers"] == [1, 3] and layers["learning_rate"] == 1e-4
    assert layers["pooling"] == "cls" and layers["eval_every"] == 19 and layers["max_epochs"] == 4  # 38 steps an epoch
    for setting in ("udpos", "pawsx-cls"):
        write_job(tmp_path, f"select/{setting}-layers", [selection_run("dlfa", 1e-4, 78, 3),
                                                         selection_run("dlfa", 1e-4, 60, 1)])
    finetune = dict(plan_jobs(config, tmp_path, ("finetune",)))
    assert list(finetune)[:3] == ["finetune/udpos-last", "finetune/udpos-dlfa", "finetune/udpos-scalar-mix"]
    assert len(finetune) == 9 and all(job["seeds"] == list(SEEDS) == [1, 2, 3, 4, 5] for job in finetune.values())
    dlfa = finetune["finetune/pawsx-mean-dlfa"]  # at pawsx-cls's choices: only the pooling differs
    assert dlfa["fusion_layers"] == [3] and dlfa["learning_rate"] == 1e-4 and dlfa["pooling"] == "mean"
    assert {**dlfa, "pooling": "cls", "name": ""} == {**finetune["finetune/pawsx-cls-dlfa"], "name": ""}
    assert finetune["finetune/udpos-last"]["learning_rate"] == 5e-5
    assert finetune["finetune/udpos-scalar-mix"]["learning_rate"] == 2e-5  # a tie: the smaller rate


def test_the_compute_estimate_adds_up_about_32_hours_of_fp32_on_a_2_core_cpu(data_root):
    source = DataSource.resolve(data_root)
    hours = estimated_hours(Reproduction(str(data_root)), {t: english_sizes(t, source)["train"] for t in TASK_PLANS})
    assert list(hours) == ["udpos", "panx", "xnli-cls", "xnli-mean", "pawsx-cls", "pawsx-mean", "total"]
    assert {k: round(v, 1) for k, v in hours.items()} == {"udpos": 5.4, "panx": 2.4, "xnli-cls": 10.1,
                                                          "xnli-mean": 7.1, "pawsx-cls": 3.9, "pawsx-mean": 2.7,
                                                          "total": 32.3}  # the plan docstring's figures
    assert "study" not in DEFAULT_PARTS  # the optional study is outside the estimate


def test_the_study_part_plans_the_design_at_the_chosen_settings_and_its_hours(data_root, tmp_path):
    config = Reproduction(str(data_root), tasks=("udpos", "xnli"))
    with pytest.raises(ConfigError, match="the intermediate-task study takes its choices from select/udpos, which"):
        list(plan_jobs(config, tmp_path, ("study",)))
    for setting, layer, rate in (("udpos", 4, 5e-5), ("xnli-cls", 0, 2e-5)):  # the choices, not fine-tuning itself
        chosen = RunResult({"task": setting.split("-")[0], "aggregations": ["dlfa"], "fusion_layers": [layer],
                            "learning_rate": rate, "pooling": "cls"}, COMPLETED, dev_score=75.0)
        write_job(tmp_path, f"select/{setting}", [selection_run("dlfa", 1e-4, 70.0, 6), chosen])
        write_job(tmp_path, f"select/{setting}-layers", [selection_run("dlfa", rate, 75.0, 9)])  # a tie: lower layer
    jobs = dict(plan_jobs(config, tmp_path, ("study",)))
    assert list(jobs)[:4] == ["study/arm-1", "study/arm-3", "study/arm-9", "study/udpos-control"]
    assert jobs["study/arm-9"]["intermediate_tasks"] == list(INTERMEDIATE_PRESETS[9])  # named, in order of preference
    assert {job.get("intermediate_steps") for key, job in jobs.items() if job.get("intermediate_tasks")} == {600}
    udpos, xnli = jobs["study/udpos-arm-3"], jobs["study/xnli-arm-3"]
    assert udpos["fusion_layers"] == [4] and udpos["learning_rate"] == 5e-5 and "pooling" not in udpos
    assert xnli["fusion_layers"] == [0] and xnli["learning_rate"] == 2e-5 and xnli["pooling"] == "cls"
    assert xnli["init_from"] == str(tmp_path / "study/arm-3") and xnli["seeds"] == [1, 2, 3]
    assert (udpos["max_train_examples"], udpos["max_eval_examples"]) == (2000, 500)  # the study's caps, sized to
    assert (xnli["max_train_examples"], xnli["max_eval_examples"]) == (3000, 300)  # sized for its hours
    assert jobs["study/tatoeba-arm-1-s1"]["eval_languages"] == ["de", "fr", "ru", "zh", "sw"]
    design = StudyDesign.from_dict(json.loads((tmp_path / DESIGN_FILE).read_text()))  # saved with the jobs
    assert design == config.study_design(tmp_path) and DESIGN_FILE in SMALL_FILES  # and kept in the record
    source = DataSource.resolve(data_root)
    hours = study_hours(design, {t: english_sizes(t, source)["train"] for t in ("udpos", "xnli")})
    assert {k: round(v, 1) for k, v in hours.items()} == {"arms": 7.2, "udpos": 3.7, "xnli": 5.8, "tatoeba": 0.2,
                                                          "total": 17.0}  # the design docstring's sizing


def test_the_record_keeps_a_finished_retrieval_job_which_has_no_runs(tmp_path):
    out, record = tmp_path / "out", tmp_path / "record"
    measured = JobResult({"task": "tatoeba", "seeds": [1]}, COMPLETED, (), {"de": LanguageMetric("retrieval_accuracy",
                                                                                               91.0)})
    write_results(out / "study/tatoeba-arm-0-s1", measured)
    save_record(out, record)
    assert read_job_results(record / "study/tatoeba-arm-0-s1/results.json").metrics["de"].value == 91.0
    restore_record(record, tmp_path / "fresh")  # and a fresh clone finds it finished
    assert (tmp_path / "fresh/study/tatoeba-arm-0-s1/results.json").is_file()


def test_a_record_is_provisional_per_experiment_when_its_runs_predate_code_versions(tmp_path):
    from dlfa.reproduction.record import provisional

    def job(code_version):
        run = RunResult({"task": "xnli", "seeds": [1]}, COMPLETED, {"de": LanguageMetric("accuracy", 60.0)},
                        code_version=code_version)
        return JobResult({"task": "xnli"}, COMPLETED, (run,))

    write_results(tmp_path / "finetune/xnli-cls", job(None))
    write_results(tmp_path / "study/xnli-arm-0-s1", job({"sources_sha256": "ab" * 32}))
    assert provisional(tmp_path) and not provisional(tmp_path, study=True)
    write_results(tmp_path / "finetune/xnli-cls", job({"sources_sha256": "cd" * 32}))
    assert not provisional(tmp_path)


@pytest.fixture(scope="module")
def committed_report(tmp_path_factory) -> Path:
    """The report regenerated from the committed record as `python -m dlfa reproduce report` writes it, into a
    temporary folder (its figures beside it), never over docs/."""
    doc = tmp_path_factory.mktemp("regenerated") / "docs" / "REPRODUCTION.md"
    write_report(RECORD, doc, REPORT_COMMAND)
    return doc


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


@pytest.mark.integration
def test_the_report_regenerates_byte_identically_from_the_committed_record(committed_report):
    committed = RECORD.parent / "REPRODUCTION.md"
    assert committed_report.read_bytes() == committed.read_bytes()
    figures = {path.name: png_size(path) for path in (committed_report.parent / "figures").iterdir()}
    assert figures == {path.name: png_size(path) for path in (RECORD.parent / "figures").iterdir()}


@pytest.mark.integration
def test_the_committed_record_reports_under_the_rules(committed_report):
    """The committed record (the pinned rerun, growing sitting by sitting): one code version, every task's English
    sizes, and no verdict stronger than its numbers: probes and single seeds decide nothing, and a fine-tuning gain
    whose interval contains 0 is inconclusive."""
    text = committed_report.read_text()
    assert re.search(r"Code version of every run of sections 1 and 2: `[0-9a-f]{12}` \(the hash of dlfa/", text)
    assert "sizes not recorded" not in text and "provisional" not in text
    assert "English data: train 6,000, dev 600, test 900 examples" in text  # XNLI's item split
    assert "English data: train 1,201, dev 133, test 666 examples" in text  # all the labeled English PAWS-X here
    claims = text.split("## 4. Against the paper's claims")[1].split("## Appendix")[0]
    rows = [line.split(" | ") for line in claims.splitlines() if "DLFA > last" in line]
    assert len(rows) == 6  # UD-POS, PAN-X, and XNLI and PAWS-X with each pooling
    for row in rows:
        ours, verdict = row[2], row[-1]
        interval = re.search(r"\[([+-]?[\d.]+), ([+-]?[\d.]+)\]", ours)
        if "probe" in ours or "1 seed" in ours or ours == "–":
            assert verdict.startswith("not decided"), row
        else:
            assert interval, row  # a fine-tuning gain over seeds comes with its interval
            if float(interval[1]) <= 0 <= float(interval[2]):
                assert verdict.startswith("inconclusive"), row
    pawsx = text.split("#### pawsx-cls")[1].split("####")[0]  # dev majority 51.1 (68 of 133 pairs): 57.1 learned
    assert "English dev less than 1 point above the majority class's 51.1), left out of the means and of every " \
           "claim: `scalar-mix-s1`." in pawsx  # the probe's; its target languages decide nothing
    assert "| scalar-mix-lr2e-05-s1 (English dev at the majority class) | 2e-05 | 51.1 |" in pawsx
    assert "multilingual-e5-small was trained contrastively on its mean-pooled last layer" in text
    assert "over languages" not in claims  # no spread over languages passed off as an interval
    tatoeba = text.split("<code>study/tatoeba-arm-0-s1</code>")[1].split("</details>")[0]
    assert "Ran on: not recorded (a job without runs: it records job-level metrics only)." in tatoeba


def test_a_run_of_some_tasks_keeps_the_sizes_recorded_for_the_others(fixture_root, tmp_path):
    from dlfa.reproduction.runner import record_sizes

    record_sizes(Reproduction(str(fixture_root), tasks=("udpos", "pawsx")), tmp_path)
    record_sizes(Reproduction(str(fixture_root), tasks=("pawsx",)), tmp_path)  # e.g. reproduce run --tasks pawsx
    source = DataSource.resolve(str(fixture_root))
    assert json.loads((tmp_path / "data/sizes.json").read_text()) == {
        "udpos": english_sizes("udpos", source), "pawsx": english_sizes("pawsx", source)}


def test_the_english_dev_majority_is_recorded_per_task_on_the_runs_dev_set(tiny_encoder, fixture_root, tmp_path):
    from dlfa.reproduction.runner import record_dev_majority

    config = Reproduction(str(fixture_root), tiny_encoder, tasks=("udpos", "pawsx"))
    record_dev_majority(config, tmp_path)
    recorded = json.loads((tmp_path / "data/dev_majority.json").read_text())
    assert set(recorded) == {"udpos", "pawsx"}
    for task, pooling in (("udpos", None), ("pawsx", "cls")):
        spec = JobSpec.from_dict(config.base_fields(task, pooling))
        dev = load_encoded(task, "en", "dev", DataSource.resolve(str(fixture_root)), load_tokenizer(spec.encoder),
                           spec.max_length, max_examples=spec.max_eval_examples)
        info = get_task(task)
        gold = dev.gold()
        assert recorded[task]["examples"] == len(dev) == len(gold)
        if info.kind == "token":
            assert all(isinstance(labels, list) and -100 not in labels for labels in gold)
        counts = np.bincount(np.concatenate([np.ravel(g) for g in gold]).astype(int), minlength=len(info.labels))
        assert recorded[task]["dev_majority"] == pytest.approx(100 * counts.max() / counts.sum())  # accuracy


def test_two_processes_adding_timings_to_one_record_lose_nothing(tmp_path):
    from dlfa.reproduction.record import Timings

    first, second = Timings(tmp_path), Timings(tmp_path)  # e.g. reproduce run --tasks xnli beside --tasks pawsx
    first.add("select/xnli-cls", 10.0, False)
    second.add("select/pawsx-cls", 5.0, True)
    first.add("select/xnli-cls", 1.5, True)
    assert json.loads((tmp_path / "timings.json").read_text()) == {
        "select/xnli-cls": {"seconds": 11.5, "sittings": 2, "complete": True},
        "select/pawsx-cls": {"seconds": 5.0, "sittings": 1, "complete": True}}


def test_finetuning_before_its_choices_is_refused(tiny_encoder, fixture_root, tmp_path):
    config = Reproduction(str(fixture_root), tiny_encoder, tasks=("pawsx",))
    with pytest.raises(ConfigError, match="fine-tuning takes its choices from select/pawsx-cls, which has not finished"):
        list(plan_jobs(config, tmp_path, ("finetune",)))


def test_plan_runs_resumes_and_reports(tiny_encoder, data_root, tmp_path):
    out, doc = tmp_path / "reproduction", tmp_path / "docs" / "REPRODUCTION.md"
    tiny = {**TINY, "max_epochs": 2, "eval_languages": ("de", "zh")}
    config = Reproduction(str(data_root), tiny_encoder, tasks=("udpos", "pawsx"), seeds=(1, 2), layer_pairs=20,
                          learning_rates=(5e-5, 1e-4), study_counts=(0, 2), spec_overrides=tiny)
    assert run_plan(config, out, DEFAULT_PARTS, log=lambda _: None) == COMPLETED
    finetune = read_job_results(out / "finetune/pawsx-cls-dlfa")
    chosen = choose(read_job_results(out / "select/pawsx-cls").runs
                    + read_job_results(out / "select/pawsx-cls-layers").runs, "dlfa")
    assert finetune.spec["fusion_layers"] == chosen.spec["fusion_layers"]
    assert finetune.spec["learning_rate"] == chosen.spec["learning_rate"] and finetune.spec["seeds"] == [1, 2]
    assert finetune.spec["pooling"] == "cls" and finetune.spec["patience"] == 3 and len(finetune.runs) == 2
    assert all(run.code_version for run in finetune.runs)
    taken = finetune.runs[0]  # seed 1: the selection run of the same settings, copied, not trained again
    assert taken.metrics == chosen.metrics and taken.extra["history"] == chosen.extra["history"]
    assert taken.spec["name"] == chosen.spec["name"] != finetune.spec["name"] and taken.spec["learning_rates"] == []
    assert finetune.runs[1].spec["name"] == finetune.spec["name"] and finetune.runs[1].metrics != chosen.metrics
    mean = read_job_results(out / "finetune/pawsx-mean-dlfa")  # at pawsx-cls's choices, every seed trained
    assert not (out / "select/pawsx-mean").exists() and mean.spec["pooling"] == "mean"
    assert (mean.spec["learning_rate"], mean.spec["fusion_layers"]) == (chosen.spec["learning_rate"],
                                                                        chosen.spec["fusion_layers"])
    assert [run.spec["name"] for run in mean.runs] == [mean.spec["name"]] * 2
    sizes = json.loads((out / "data/sizes.json").read_text())
    assert sizes["pawsx"] == {"train": 1201, "dev": 133, "test": 666}
    timings = json.loads((out / "timings.json").read_text())
    assert {"probe/udpos", "select/udpos", "select/udpos-layers", "finetune/udpos-dlfa", "probe/pawsx-mean",
            "finetune/pawsx-cls-scalar-mix", "layers", "tuned-layers"} <= set(timings)
    tuned = json.loads((out / "layers/tuned.json").read_text())["runs"]
    layer = read_job_results(out / "finetune/udpos-dlfa").fusion_layer
    assert sorted(tuned) == sorted(f"finetune/udpos-{job}/{unit}-s{s}" for job, unit in (
        ("last", "last"), ("dlfa", f"dlfa-L{layer}"), ("scalar-mix", "scalar-mix")) for s in (1, 2))  # every one

    again = []
    run_plan(config, out, DEFAULT_PARTS, log=again.append)
    assert again == [] and json.loads((out / "timings.json").read_text()) == timings  # nothing reruns

    record = record_root(doc)
    save_record(out, record)
    fresh = tmp_path / "fresh-clone"  # a new machine: only the record, in the repository
    restore_record(record, fresh)
    again = []
    run_plan(config, fresh, DEFAULT_PARTS, log=again.append)
    assert again == []  # the record's finished runs (and their analyses) are not run again

    stale = doc.parent / "figures" / "grid-xnli.png"  # drawn by a record of another plan
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"\x89PNG")
    write_report(record, doc, "python -m dlfa reproduce run --data-root DATA")
    assert not stale.exists()
    text = doc.read_text()
    assert "Baseline vs DLFA (fine-tuning, `finetune/pawsx-mean-last`" in text and "#### pawsx-mean" in text
    assert "English data: train 1,201, dev 133, test 666 examples; only the English dev set" in text
    assert "Choices on seed 1 and English dev (`select/pawsx-cls`" in text and "**chosen**" in text
    assert "No choices of its own: its fine-tuning takes those of `pawsx-cls`" in text.split("#### pawsx-mean")[1]
    assert "Convergence: `last-s1` best dev at step" in text
    assert re.search(r"Seed 1 is the selection run of the same settings \(the choices above\), taken over rather than "
                     r"trained twice: `last-s1`, `dlfa-L\d+-s1`, `scalar-mix-s1`\.", text)
    assert re.search(r"Code version of every run of sections 1 and 2: `[0-9a-f]{12}", text)
    assert "| … and after fine-tuning (the plain fine-tuned encoders, section 2) | yes | retrieval peaks at" in text
    for figure in ("grid-udpos.png", "grid-pawsx-cls.png", "layers-retrieval.png"):
        assert (doc.parent / "figures" / figure).read_bytes()[:4] == b"\x89PNG"
    rerun = ["sweep", "--spec", str(record / "finetune/udpos-last/results.json"), "--data-root", str(data_root)]
    assert main([*rerun, "--out", str(out / "finetune/udpos-last")]) == 0  # the recorded runs are found, not redone


def test_report_without_results_is_a_clear_error(tmp_path, capsys):
    assert main(["reproduce", "report", "--out", str(tmp_path / "none"), "--doc", str(tmp_path / "r.md")]) == 2
    assert "no reproduction results" in capsys.readouterr().err


def test_the_status_counts_each_steps_runs_and_prices_the_rest_at_the_measured_median_pace(data_root, tmp_path):
    from dlfa.io import write_json
    from dlfa.reproduction.plan import model_run_seconds
    from dlfa.reproduction.status import plan_status, status_text

    def run(seconds: float) -> RunResult:
        return RunResult({"task": "udpos"}, COMPLETED, extra={"train_seconds": seconds - 100, "eval_seconds": 100})

    paused = run(6000.0)  # wall time: its sitting ended mid-run and the next one finished it
    write_results(tmp_path / "select/udpos", JobResult({"task": "udpos"}, COMPLETED, (run(500.0), paused, run(600.0))))
    probe_runs = tuple(run(60.0) for _ in range(14))
    write_results(tmp_path / "probe/udpos", JobResult({"task": "udpos"}, COMPLETED, probe_runs))
    write_json(tmp_path / "timings.json", {"probe/udpos": {"seconds": 3600.0, "sittings": 1, "complete": True},
                                           "select/udpos": {"seconds": 1200.0, "sittings": 1, "complete": False}})
    config = Reproduction(str(data_root), tasks=("udpos", "xnli"))
    sizes = {"udpos": 12543, "xnli": 6000}
    udpos, xnli_cls, xnli_mean = plan_status(config, tmp_path, sizes, num_layers=12)
    assert (udpos.done, udpos.planned) == ({"probe": 14, "select": 3, "finetune": 0},
                                           {"probe": 14, "select": 11, "finetune": 15})
    assert udpos.measured and udpos.run_seconds == 600.0 and udpos.seconds_left == (8 + 12) * 600.0  # the median
    assert not xnli_cls.measured and xnli_cls.run_seconds == model_run_seconds("xnli", 6000)
    assert udpos.taken_over == 3  # seed 1 of each fine-tuning job: its selection run, copied, not priced
    assert xnli_cls.seconds_left == 23 * xnli_cls.run_seconds + 3600.0  # its probe sweep at the measured one's pace
    assert xnli_mean.planned["select"] == 0 and xnli_mean.taken_over == 0  # at xnli-cls's choices, seed 1 trained
    assert xnli_mean.seconds_left == 15 * xnli_cls.run_seconds + 3600.0
    text = status_text([udpos, xnli_cls, xnli_mean], tmp_path)
    assert "| udpos | 14/14 | 3/11 | 0/15 | 10.0 | 3.3 |" in text and "| xnli-cls | 0/14 | 0/11 | 0/15 |" in text
    assert "| xnli-mean | 0/14 | – | 0/15 |" in text
    hours = (udpos.seconds_left + xnli_cls.seconds_left + xnli_mean.seconds_left) / 3600
    assert (f"92 of 109 runs left (6 of them seed 1 of fine-tuning, taken over from the selection), about "
            f"{hours:.1f} h (the layer analyses add minutes); 1.3 h spent so far") in text
    assert "A setting with no selection (–) is fine-tuned at its task's CLS choices." in text
    assert "* no fine-tuning run of the task has finished here yet: the timing model's minutes" in text


def test_the_status_prices_seed_1_of_a_study_task_as_trained_where_its_selection_model_is_not_here(data_root,
                                                                                                   tmp_path):
    from dlfa.engine.spec import JobSpec
    from dlfa.model.modeling import CONFIG_FILE
    from dlfa.reproduction.status import plan_status

    grid = [selection_run("last", 1e-4, 80.0), selection_run("dlfa", 1e-4, 75.0, 6),
            selection_run("scalar-mix", 1e-4, 70.0)]
    write_job(tmp_path, "select/udpos", grid)
    write_job(tmp_path, "select/udpos-layers")
    config, sizes = Reproduction(str(data_root), tasks=("udpos",)), {"udpos": 12543}
    assert plan_status(config, tmp_path, sizes, num_layers=12)[0].taken_over == 0  # e.g. restored from the record
    saved = tmp_path / "select/udpos" / JobSpec.from_dict(grid[0].spec).unit_name() / "model" / CONFIG_FILE
    saved.parent.mkdir(parents=True)
    saved.write_text("{}")  # last's chosen selection run saved its model on this machine
    assert plan_status(config, tmp_path, sizes, num_layers=12)[0].taken_over == 1
    write_job(tmp_path, "finetune/udpos-last", [selection_run("last", 1e-4, 80.0)])  # its seed 1 is there already
    assert plan_status(config, tmp_path, sizes, num_layers=12)[0].taken_over == 0


def test_the_status_command_prints_the_table_of_an_output_root(data_root, tiny_encoder, tmp_path, capsys):
    write_results(tmp_path / "select/udpos", JobResult({"task": "udpos"}, COMPLETED, (
        RunResult({"task": "udpos"}, COMPLETED, extra={"train_seconds": 540.0, "eval_seconds": 60.0}),)))
    assert main(["reproduce", "status", "--data-root", str(data_root), "--encoder", tiny_encoder,
                 "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "| udpos | 0/6 | 1/11 | 0/15 | 10.0 |" in printed  # the tiny encoder's 4 layers: 6 probe runs
    assert "| xnli-cls | 0/6 | 0/11 | 0/15 |" in printed and "runs left (12 of them seed 1 of fine-tuning" in printed
    assert "Study" not in printed  # none in this output root

    design = StudyDesign((StudyTarget("udpos", ("de",), 2, None, *STUDY_CAPS["udpos"], 2.0),),
                         named_subsets((0, 1), ["sst2"]), retrieval_languages=())
    arm_runs = tuple(RunResult({"task": "intermediate"}, COMPLETED) for _ in design.seeds)
    write_results(tmp_path / "study/arm-1", JobResult({"task": "intermediate"}, COMPLETED, arm_runs))
    # a target job whose first seed's runs finished (a chain of arm 0, seed 1): "stopped" until every seed's are in
    seed_1 = tuple(RunResult({"task": "udpos"}, COMPLETED) for _ in ("last", "dlfa"))
    write_results(tmp_path / "study/udpos-arm-0", JobResult({"task": "udpos"}, STOPPED, seed_1))
    (tmp_path / DESIGN_FILE).write_text(json.dumps(design.to_dict()))
    assert main(["reproduce", "status", "--data-root", str(data_root), "--encoder", tiny_encoder,
                 "--out", str(tmp_path)]) == 0
    hours = study_hours(design, {"udpos": english_sizes("udpos", DataSource.resolve(data_root))["train"]})["total"]
    planned = sum(len(spec.units()) for _, spec in design.jobs(tmp_path))
    printed = capsys.readouterr().out  # 4 jobs: arm-1, the control, the targets from arms 0 and 1
    assert (f"Study (`study/design.json`): 1 of 4 jobs finished, {len(arm_runs) + 2} of {planned} runs; the timing "
            f"model puts the whole study at {hours:.1f} h" in printed)
