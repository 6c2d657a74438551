"""The intermediate-task study at hub scale and with a question answering target: the data root `hub`, the order
of preference (Phang et al.'s best first on the hub, today's local subsets unchanged), the hub-scale design and
its one command built from local parquet files with the hub datasets' columns (nothing downloaded, nothing
trained), and XQuAD as a study target: its jobs on the fixture root, the analysis and report of QA results
(F1, exact match beside it), and why it stays out of the CPU plan's study (plan.study_hours)."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_hub_intermediate import squad_rows
from test_registry import HUB_ROWS

from dlfa.cli.main import main
from dlfa.data.hub_layouts import HUB_UDPOS_CONFIGS, HUB_XNLI_LANGUAGES, HUB_XQUAD_LANGUAGES
from dlfa.data.sources import HUB_ROOT, DataSource
from dlfa.data.tatoeba import TATOEBA_LASER_CODES
from dlfa.engine.runtime import native_precision
from dlfa.engine.spec import JobSpec
from dlfa.errors import ConfigError
from dlfa.io import write_json
from dlfa.reproduction.plan import STUDY_CAPS, Reproduction, study_hours
from dlfa.reproduction.report_study import arm_cells, conclusion, write_study_report
from dlfa.reproduction.study import arm_table, excluded_note
from dlfa.reproduction.study_design import (DESIGN_FILE, HUB_INTERMEDIATE_STEPS, HUB_NAME, LOCAL_PREFERENCE,
                                            StudyDesign, StudyTarget, available_intermediate_tasks, hub_design,
                                            named_subsets, preset_for, target_for)
from dlfa.results import COMPLETED, JobResult, LanguageMetric, RunResult, read_job_results, write_results

# ../shared/data's intermediate tasks in order of preference, as before the hub's tasks joined PREFERENCE: the CPU
# study's arms (1, 3, 9 tasks) are the first 1, 3 and 9 of these
LOCAL_ORDER = ["qnli", "boolq", "mrpc", "sst2", "commonsenseqa", "xcopa", "rte", "conll-ner", "cola", "cosmosqa", "wic",
               "cb"]
HUB_NINE = ("mnli", "squad", "hellaswag", "qqp", "qnli", "boolq", "mrpc", "sst2", "commonsenseqa")


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """(a hub source, the (config, split) pairs its loader was asked for): every intermediate task's hub dataset
    as local parquet files of its columns (test_registry.HUB_ROWS, 6 distinct training rows and 2 validation
    rows each; SQuAD 10 training paragraphs, so that its 90/10 cut has a dev part), read with pyarrow; no classroom
    pack (a cache folder of its own)."""
    monkeypatch.setenv("DLFA_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "hub"
    files = {}
    for config, row, _ in HUB_ROWS.values():
        test_split = "validation_matched" if config.endswith("mnli") else "validation"
        for split, count in (("train", 6), (test_split, 2)):
            files[config, split] = [{**row, "idx": i, **({"id": f"q{i}"} if "id" in row else {})} for i in range(count)]
    files.update({("rajpurkar/squad:", split): squad_rows(count, split) for split, count in (("train", 10),
                                                                                              ("validation", 2))})
    for (config, split), rows in files.items():
        (folder / config).mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), folder / config / f"{split}.parquet")
    asked = []

    def loader(config, split):
        asked.append((config, split))
        path = folder / config / f"{split}.parquet"
        if not path.is_file():
            raise FileNotFoundError(f"no {config} {split} here (the test downloads nothing)")
        return pq.read_table(path).to_pylist()

    return DataSource.hub(loader), asked


def test_the_data_root_hub_names_the_hub_whatever_data_root_is_set(monkeypatch, fixture_root):
    monkeypatch.setenv("DLFA_DATA_DIR", str(fixture_root))
    assert DataSource.resolve().kind == "files" and DataSource.resolve(HUB_ROOT).kind == "hub"
    monkeypatch.setenv("DLFA_DATA_DIR", HUB_ROOT)
    assert DataSource.resolve() == DataSource.hub()


def test_the_local_order_of_preference_is_unchanged(fixture_root):
    assert list(LOCAL_PREFERENCE[:len(LOCAL_ORDER)]) == LOCAL_ORDER
    # the fixture root's, in that order (then the classroom tasks, where the pack is built)
    assert available_intermediate_tasks(fixture_root)[:3] == ["sst2", "xcopa", "rte"]


def test_todays_local_subsets_are_pinned(data_root):
    found = available_intermediate_tasks(data_root)  # no hub-only task, the same order (then the classroom tasks)
    assert found[:len(LOCAL_ORDER)] == LOCAL_ORDER and not set(found) & {"mnli", "squad", "hellaswag", "qqp"}
    assert preset_for(9, data_root) == tuple(LOCAL_ORDER[:9]) and preset_for(3, data_root) == ("qnli", "boolq", "mrpc")
    assert named_subsets((0, 1, 3, 9), found)[3] == tuple(LOCAL_ORDER[:9])


def test_on_the_hub_phangs_most_helpful_tasks_come_first(hub):
    source, asked = hub
    found = available_intermediate_tasks(source)
    assert tuple(found[:9]) == HUB_NINE  # MNLI, SQuAD and HellaSwag first, then QQP, then the local order
    assert found[9:] == ["xcopa", "rte", "cola", "cosmosqa", "wic", "cb", "siqa"]  # conll-ner: no hub source; siqa,
    # not one of the ordered tasks, comes last
    assert preset_for(3, source) == ("mnli", "squad", "hellaswag")
    assert {("nyu-mll/glue:mnli", "train"), ("rajpurkar/squad:", "train"), ("Rowan/hellaswag:", "train")} <= set(asked)


def test_the_hub_scale_design_from_local_files_of_the_hubs_format(hub, tiny_encoder):
    source, asked = hub
    design = hub_design(source, encoder=tiny_encoder, device="cuda")
    assert design.problems() == [] and design.name == HUB_NAME and design.data_root == HUB_ROOT == "hub"
    assert design.subsets == ((), HUB_NINE[:1], HUB_NINE[:3], HUB_NINE) and design.subset_rule == "named"
    assert (design.intermediate_steps, design.mode, design.control, design.seeds) == (5000, "mixture", True, (1, 2, 3))
    assert design.intermediate_steps == HUB_INTERMEDIATE_STEPS and design.intermediate_learning_rate == 2e-5
    assert design.retrieval_languages == tuple(TATOEBA_LASER_CODES) and design.retrieval_sentences is None
    targets = {t.task: t for t in design.targets}
    assert list(targets) == ["udpos", "xnli", "xquad"]
    assert targets["udpos"].eval_languages == tuple(c for c in HUB_UDPOS_CONFIGS if c != "en")
    assert targets["xnli"].eval_languages == tuple(c for c in HUB_XNLI_LANGUAGES if c != "en")
    assert targets["xquad"].eval_languages == tuple(c for c in HUB_XQUAD_LANGUAGES if c != "en")
    for target in targets.values():  # whole training and test sets, 2 epochs, DLFA at the middle layer (4 // 2)
        assert (target.max_train_examples, target.max_eval_examples, target.epochs, target.fusion_layer,
                target.learning_rate) == (None, None, 2.0, 2, 2e-5)
    assert (targets["xnli"].pooling, targets["udpos"].pooling, targets["xquad"].pooling) == ("cls", None, None)
    assert (targets["xquad"].max_length, targets["xnli"].max_length) == (256, 128)
    # targets are not read to plan; rajpurkar/squad is, as the intermediate task squad
    assert not [c for c, _ in asked if c.startswith("google/xtreme")]
    assert {s for c, s in asked if c.startswith("rajpurkar")} == {"train", "validation"}

    jobs = dict(design.job_fields("/out"))
    assert len(jobs) == 3 + 3 * 5 + 1 + 3 * 3  # arms; per target its control and 4 arms; Tatoeba per encoder
    arm = jobs["study/arm-9"]
    assert arm["intermediate_tasks"] == list(HUB_NINE) and arm["data_root"] == "hub" and arm["device"] == "cuda"
    assert design.precision == native_precision("cuda")  # what "auto" would compute in there, pinned in every job
    assert {fields["precision"] for fields in jobs.values()} == {design.precision}
    assert hub_design(source, encoder=tiny_encoder, precision="bf16").precision == "bf16"
    assert arm["intermediate_steps"] == 5000 and arm["seeds"] == [1, 2, 3]
    # squad trains in arms 3 and 9: every arm reads SQuAD's 256-token windows (the targets keep their own lengths)
    assert design.arm_max_length == 256 and {jobs[f"study/arm-{n}"]["max_length"] for n in (1, 3, 9)} == {256}
    assert jobs["study/xnli-arm-3"]["max_length"] == 128 and jobs["study/tatoeba-arm-3-s1"].get("max_length") is None
    without_squad = DataSource.hub(lambda config, split: [] if config.startswith("rajpurkar") else
                                   source.loader(config, split))
    assert hub_design(without_squad, encoder=tiny_encoder).arm_max_length is None
    qa = jobs["study/xquad-arm-3"]
    assert qa["init_from"] == "/out/study/arm-3" and qa["max_length"] == 256 and "pooling" not in qa
    assert qa["max_train_examples"] is None and qa["aggregations"] == ["last", "dlfa"] and qa["fusion_layers"] == [2]
    assert jobs["study/xquad-control"]["intermediate_tasks"] == ["xquad"]
    assert jobs["study/xnli-arm-0"]["pooling"] == "cls" and jobs["study/xnli-arm-0"]["init_from"] is None
    assert jobs["study/tatoeba-arm-9-s2"]["eval_languages"] == list(TATOEBA_LASER_CODES)
    assert StudyDesign.from_dict(design.to_dict()) == design
    said = conclusion(design)  # the report's closing paragraph names the hub's caveats
    assert said.startswith(f"These arms train {tiny_encoder} on the hub's English training sets (5,000 intermediate")
    assert "an arm with MNLI trains on far more English NLI than the XNLI target stage itself" in said
    assert "an arm with the intermediate task squad trains on before the XQuAD target stage too" in said


def test_one_command_shows_the_hub_scale_study_without_a_network(hub, tiny_encoder, monkeypatch, capsys, tmp_path):
    source, asked = hub
    monkeypatch.setattr("dlfa.data.sources.load_hub_split", source.loader)  # what DataSource.hub() reads
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr("dlfa.hub.hub_reachable", lambda timeout=3.0: False)
    out = tmp_path / "hub-study"
    assert main(["reproduce", "hub-study", "--out", str(out)]) == 2  # offline: one line, before anything starts
    assert capsys.readouterr().err.strip().endswith("the hub-scale study reads the Hugging Face hub, which this "
                                                    "machine cannot reach: run it where there is a network, or with "
                                                    "HF_HUB_OFFLINE=1 once its datasets and encoder are in the "
                                                    "Hugging Face cache")
    monkeypatch.setattr("dlfa.hub.hub_reachable", lambda timeout=3.0: True)
    assert main(["reproduce", "hub-study", "--encoder", tiny_encoder, "--device", "cuda", "--out", str(out),
                 "--dry-run"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("Every arm with intermediate tasks spends the same intermediate budget of 5,000 "
                                 "optimizer steps (batch 32)")
    assert "9: mnli, squad, hellaswag, qqp, qnli, boolq, mrpc, sst2, commonsenseqa" in printed[0]
    assert "xquad (DLFA layer 2, 2 epochs of all training examples, learning rate 2e-05, 256 tokens, 10 target " \
           "languages)" in printed[0]
    assert printed[1] == "study/arm-1: intermediate, 3 seed(s), intermediate mnli"
    assert f"study/xquad-arm-9: xquad, 3 seed(s), from {out}/study/arm-9" in printed
    assert asked and not out.exists()  # planned from the local hub files; nothing written, nothing trained
    with pytest.raises(ConfigError, match="unknown study preset 'gpu': choose from plan, hub"):
        Reproduction(HUB_ROOT, tiny_encoder, study_preset="gpu").study_design(out)
    design = Reproduction(HUB_ROOT, tiny_encoder, study_preset="hub").study_design(out)  # what the command runs
    assert design == hub_design(encoder=tiny_encoder)
    for key, fields in design.arm_fields():  # the arms' specs hold against the hub's (here: local) datasets
        assert JobSpec.from_dict(fields).problems() == {}, key

    # a later sitting takes the design its first one saved: no planning read, the same arms if the hub hiccups
    write_json(out / DESIGN_FILE, design.to_dict())
    asked.clear()
    monkeypatch.setattr("dlfa.data.sources.load_hub_split", lambda config, split: [])  # every dataset "gone"
    again = Reproduction(HUB_ROOT, tiny_encoder, device="cuda", study_preset="hub").study_design(out)
    assert again.subsets == design.subsets and again.device == "cuda" and asked == []
    saved, other = design.precision, "bf16" if design.precision == "fp32" else "fp32"
    assert again.precision == saved  # on any hardware
    with pytest.raises(ConfigError, match=rf"holds a study computed in {saved}: resume it in {saved} \(leave out "
                                          rf"--precision\), or give a study in {other} a folder of its own \(--out\)"):
        Reproduction(HUB_ROOT, tiny_encoder, precision=other, study_preset="hub").study_design(out)
    with pytest.raises(ConfigError, match=r"holds another study \(hub-scale study, encoder .*\): give the "
                                          r"hub-scale study of xlm-roberta-base a folder of its own \(--out\)"):
        Reproduction(HUB_ROOT, "xlm-roberta-base", study_preset="hub").study_design(out)


# ----------------------------------------------------------------------------------------------------
# Question answering as a study target


def test_a_tiny_study_with_a_qa_target_builds_valid_jobs_on_the_fixture_root(fixture_root, tiny_encoder):
    xquad = target_for("xquad", ("de",), fusion_layer=2, max_train_examples=64, max_eval_examples=16)
    assert (xquad.max_length, xquad.pooling) == (256, None)
    assert target_for("xnli", ("de",), pooling="cls").max_length == 128
    pool = available_intermediate_tasks(fixture_root)
    design = StudyDesign((xquad,), named_subsets((0, 1, 3), pool), intermediate_steps=4, encoder=tiny_encoder,
                         data_root=str(fixture_root), retrieval_languages=("de",), retrieval_sentences=10).check()
    jobs = design.jobs("/out")
    assert [key for key, _ in jobs] == ["study/arm-1", "study/arm-3", "study/xquad-control", "study/xquad-arm-0",
                                        "study/xquad-arm-1", "study/xquad-arm-3", "study/tatoeba-arm-0-s1",
                                        *(f"study/tatoeba-arm-{n}-s{s}" for n in (1, 3) for s in (1, 2, 3))]
    for key, spec in jobs:  # init_from is checked when a job starts (its arm has not run yet)
        assert {k: v for k, v in spec.problems().items() if k != "init_from"} == {}, key
    specs = dict(jobs)
    assert specs["study/xquad-arm-3"].max_length == 256 and specs["study/xquad-arm-3"].task == "xquad"
    assert specs["study/xquad-control"].head_tasks() == {"xquad:intermediate": "xquad", "xquad": "xquad"}
    assert specs["study/arm-3"].max_length == JobSpec.max_length  # the arms keep the default


@pytest.mark.integration  # trains 12 tiny units end to end: about a minute
def test_a_tiny_qa_study_runs_and_its_analysis_reads_f1_and_exact_match(fixture_root, tiny_encoder, tmp_path):
    from dlfa.engine.job import run_job

    tiny = {"max_steps": 2, "max_train_examples": 16, "max_eval_examples": 8, "batch_size": 4,
            "bootstrap_samples": 10, "checkpoint_every": 50}
    design = StudyDesign((target_for("xquad", ("de",), fusion_layer=2),), ((), ("sst2",)), intermediate_steps=2,
                         aggregations=("last",), encoder=tiny_encoder, data_root=str(fixture_root),
                         retrieval_languages=(), spec_overrides=tiny).check()

    def run(key: str, fields: dict) -> str:  # as the plan runs a job: validated, into its folder
        run_job(JobSpec.from_dict(fields).validate(), tmp_path / key)
        return str(tmp_path / key)

    folders = design.launch(run)
    results = {key: read_job_results(tmp_path / key / "results.json") for key in folders}
    run = results["study/xquad-arm-1"].completed_runs[0]
    assert run.dev_metric == "span_f1" and run.spec["max_length"] == 256 and set(run.extra["exact_match"]) == {"de"}
    rows = {row.arm: row for row in arm_table(results, "xquad", "last")}
    assert list(rows) == ["arm-0", "arm-1", "control"] and rows["arm-1"].tasks == ("sst2",)
    for row in rows.values():  # every run is scored; one that learned nothing (English dev F1 < 1) is named
        assert len(row.runs) == 3 and all(0 <= r.target <= 100 and r.exact_match is not None for r in row.runs)
        assert row.excluded == [r.name for r in row.runs if r.english < 1.0]
    control = results["study/xquad-control"].completed_runs[0]
    assert control.intermediate_dev["xquad"]["metric"] == "span_f1" and control.intermediate_budget["steps"] == 2


def qa_run(seed: int, aggregation: str, english: float, f1: dict[str, float], em: dict[str, float]) -> RunResult:
    spec = {"task": "xquad", "eval_languages": list(f1), "aggregations": [aggregation],
            "fusion_layers": [2] if aggregation == "dlfa" else [], "seeds": [seed], "max_length": 256}
    return RunResult(spec, COMPLETED, {lang: LanguageMetric("span_f1", value, n=354) for lang, value in f1.items()},
                     dev_score=english, dev_metric="span_f1",
                     extra={"exact_match": {lang: LanguageMetric("exact_match", value, n=354).to_dict()
                                            for lang, value in em.items()}})


def qa_study_results() -> dict[str, JobResult]:
    """A finished XQuAD study made up: arm 1's runs gain 3.5, 4 and 4.5 F1 points on the target languages over arm
    0's, exact match 1, 2 and 3; the control's one run learned nothing (English dev F1 0.5)."""
    jobs = {
        "study/xquad-arm-0": [qa_run(s, "last", 60.0, {"de": 40.0 + s, "zh": 30.0 + s}, {"de": 25.0, "zh": 20.0})
                              for s in (1, 2, 3)],
        "study/xquad-arm-1": [qa_run(s, "last", 61.0, {"de": 43.0 + 1.5 * s, "zh": 33.0 + 1.5 * s},
                                     {"de": 25.0 + s, "zh": 20.0 + s}) for s in (1, 2, 3)],
        "study/xquad-control": [qa_run(1, "last", 0.5, {"de": 0.2, "zh": 0.1}, {"de": 0.0, "zh": 0.0})]}
    return {key: JobResult({"task": "xquad", "eval_languages": ["de", "zh"]}, COMPLETED, tuple(runs))
            for key, runs in jobs.items()}


def test_the_analysis_of_qa_results_gives_the_per_arm_table_with_f1_and_exact_match(tmp_path):
    out = tmp_path / "study-root"
    jobs = qa_study_results()
    for key, job in jobs.items():
        write_results(out / key, job)
    results = {key: read_job_results(out / key / "results.json") for key in jobs}  # as written by dlfa.results
    rows = {row.arm: row for row in arm_table(results, "xquad", "last")}
    assert list(rows) == ["arm-0", "arm-1", "control"]
    assert rows["arm-0"].means["target"][0] == pytest.approx(37.0) and rows["arm-0"].means["english"][0] == 60.0
    assert rows["arm-1"].means["exact_match"][0] == pytest.approx(24.5)  # (25 + s + 20 + s) / 2 over s = 1, 2, 3
    change = rows["arm-1"].changes["arm-0"]["target"]
    assert (change.value, change.pairs, change.verdict()) == (pytest.approx(4.0), 3, "above 0")
    assert rows["arm-1"].changes["arm-0"]["exact_match"].value == pytest.approx(2.0)
    assert rows["control"].excluded == ["study/xquad-control/last-s1"]  # English dev F1 0.5: learned nothing
    assert excluded_note(list(rows.values())) == (
        "Left out of every mean and pair: study/xquad-control/last-s1 (English dev less than 1 point above 0 F1 "
        "(question answering has no majority class): the target task was not learned).")
    cells = {row["arm"]: row for row in arm_cells(list(rows.values()))}
    assert cells["1 task"]["target mean"] == "41.0 [37.3, 44.7]" and cells["1 task"]["target exact match"].startswith(
        "24.5 [")
    assert cells["control (the target task itself)"]["runs"] == "0 (+1 left out)"

    design = StudyDesign((target_for("xquad", ("de", "zh"), fusion_layer=2),), ((), ("sst2",)), intermediate_steps=8,
                         retrieval_languages=())
    write_json(out / DESIGN_FILE, design.to_dict())
    text = write_study_report(out, out / "STUDY.md").read_text()
    assert text.startswith("# English intermediate tasks at hub scale")
    assert "### Question answering (XQuAD), last" in text and "Scores are F1 (English dev and the target" in text
    assert "| 1 task | – | 3 | 61.0 [61.0, 61.0] | 41.0 [37.3, 44.7] |" in text  # arm 1's tasks: no arm job here
    assert "target mean +4.0 [" in text and "256 tokens" in text


def test_the_qa_target_more_than_triples_the_cpu_study():
    udpos = StudyTarget("udpos", ("de",) * 8, 6, None, *STUDY_CAPS["udpos"], 2.0)
    xnli = StudyTarget("xnli", ("de",) * 14, 6, "cls", *STUDY_CAPS["xnli"], 2.0)
    xquad = target_for("xquad", ("de",) * 9, fusion_layer=6, max_train_examples=4000, max_eval_examples=500)
    cpu = StudyDesign((udpos, xnli), named_subsets((0, 1, 3, 9), LOCAL_ORDER))
    sizes = {"udpos": 12543, "xnli": 6000, "xquad": 716}  # ../shared/data's English training sets
    hours = study_hours(cpu, sizes)
    assert hours["total"] == pytest.approx(17.0, abs=0.1)  # the README's sizing
    with_qa = study_hours(StudyDesign((udpos, xnli, xquad), cpu.subsets), sizes)
    assert with_qa["xquad"] > 35 and with_qa["total"] > 45  # 26 s per step: the control arm alone is 26 h
