"""The reproduction plan and its report, end to end on a tiny encoder with tiny budgets on the real data."""
import json
import re

import pytest

from dlfa.cli import main
from dlfa.errors import ConfigError
from dlfa.reproduce import (PARTS, Reproduction, best_dev_layer, finetune_layers, plan_jobs, record_root, restore_record,
                             run_plan, save_record)
from dlfa.report import Cell, gain_verdict, lower_layers_retrieve_better, tied_layers, write_report

TINY = {"max_steps": 3, "max_train_examples": 32, "max_eval_examples": 12, "batch_size": 8, "bootstrap_samples": 20,
        "checkpoint_every": 50}


def test_finetune_layers_are_the_best_and_two_others():
    assert finetune_layers(6, 12) == (6, 3, 9)
    assert finetune_layers(3, 12) == (3, 6, 9)
    assert finetune_layers(11, 12) == (11, 3, 6)


def test_best_layer_is_chosen_on_english_dev_not_on_test_languages():
    grid = {"rows": [{"aggregation": "last", "fusion_layer": None, "dev": 99.0},
                     {"aggregation": "dlfa", "fusion_layer": 2, "dev": 80.0, "mean": 10.0},
                     {"aggregation": "dlfa", "fusion_layer": 5, "dev": 70.0, "mean": 90.0}]}
    assert best_dev_layer({"grid": grid}) == 2
    with pytest.raises(ConfigError, match="probe"):
        best_dev_layer({"grid": {"rows": grid["rows"][:1]}})
    tied = {"grid": {"rows": [*grid["rows"], {"aggregation": "dlfa", "fusion_layer": 9, "dev": 80.0}]}}
    assert best_dev_layer(tied) == 2 and tied_layers(tied, 2) == " (tied with layer 9: the first is taken)"
    assert tied_layers({"grid": grid}, 2) == ""


@pytest.mark.parametrize("source, gain, above_majority, verdict", [
    ("probe", Cell(5.0, 4.0, 6.0, 1), 20.0, "not decided yet: probe only"),
    ("fine-tuning", Cell(5.0, 4.0, 6.0, 3), 0.4, "not decided: DLFA stays within 1 point of the majority class"),
    ("fine-tuning", Cell(1.5, 0.2, 2.8, 3), 20.0, "agrees: a gain, interval above 0"),
    ("fine-tuning", Cell(1.5, -0.2, 3.2, 3), None, "same direction, but the interval includes 0"),
    ("fine-tuning", Cell(-1.6, -3.2, -0.1, 3), 20.0, "does not agree: DLFA is worse, interval below 0"),
    ("fine-tuning", Cell(-1.6, -5.3, 2.1, 3), 20.0, "does not agree: no gain"),
])
def test_gain_verdicts(source, gain, above_majority, verdict):
    assert gain_verdict(source, gain, above_majority).startswith(verdict)


@pytest.mark.parametrize("retrieval, agrees", [
    ([0.3, 0.9, 0.95, 0.6, 0.5], True),  # a peak in the middle, the top clearly lower
    ([0.3, 0.9, 0.95, 0.96, 0.97], False),  # the top is best
    ([0.3, 0.9, 0.95, 0.94, 0.94], False),  # the peak is lower, but the top is within 2 points of it
    ([0.3, 0.5, 0.6, 0.9, 0.2], False),  # the peak is one below the top: not "lower layers"
])
def test_lower_layers_retrieve_better(retrieval, agrees):
    assert lower_layers_retrieve_better(retrieval) is agrees


def test_finetuning_before_the_probe_sweep_is_refused(tiny_encoder, data_root, tmp_path):
    config = Reproduction(str(data_root), tiny_encoder, tasks=("pawsx",))
    with pytest.raises(ConfigError, match="probe sweep, which has not finished yet"):
        list(plan_jobs(config, tmp_path, ("finetune",)))


def test_plan_runs_resumes_and_reports(tiny_encoder, data_root, tmp_path):
    out, doc = tmp_path / "reproduction", tmp_path / "docs" / "REPRODUCTION.md"
    config = Reproduction(str(data_root), tiny_encoder, tasks=("udpos", "pawsx"), seeds=(1, 2), layer_pairs=20,
                          study_counts=(0, 2), spec_overrides={**TINY, "eval_languages": ("de", "zh")})
    jobs = dict(plan_jobs(config, out, ("probe", "layers")))
    assert list(jobs) == ["layers", "probe/udpos", "probe/pawsx"]
    probe = jobs["probe/udpos"]
    assert probe.probe and probe.seeds == (1,) and probe.fusion_layers == (0, 1, 2, 3)
    assert len(probe.units()) == 6  # last, dlfa × 4 layers, scalar-mix

    assert run_plan(config, out, PARTS, log=lambda _: None) == "complete"
    finetune = json.loads((out / "finetune/pawsx/results.json").read_text())
    best = best_dev_layer(json.loads((out / "probe/pawsx/results.json").read_text()))
    assert finetune["spec"]["fusion_layers"][0] == best and len(finetune["runs"]) == 2 * (1 + 3 + 1)
    assert not finetune["spec"]["probe"] and finetune["spec"]["seeds"] == [1, 2]
    timings = json.loads((out / "timings.json").read_text())
    assert set(timings) == {"probe/udpos", "probe/pawsx", "layers", "finetune/udpos", "finetune/pawsx",
                            "study/udpos-0", "study/udpos-2", "tuned-layers"}  # the study covers udpos and xnli
    tuned = json.loads((out / "layers/tuned.json").read_text())["runs"]
    layer = best_dev_layer(json.loads((out / "probe/udpos/results.json").read_text()))
    assert sorted(tuned) == [f"study/udpos-{c}/dlfa-L{layer}-s{s}" for c in (0, 2) for s in (1, 2)]
    base = json.loads((out / "layers/analysis.json").read_text())
    some = next(iter(tuned.values()))
    assert some["languages"] == base["languages"] and some["retrieval"] != base["retrieval"]  # fine-tuned weights
    two = json.loads((out / "study/udpos-2/results.json").read_text())["spec"]
    assert len(two["intermediate_tasks"]) == 2 and two["aggregations"] == ["dlfa"] and two["max_steps"] == 3

    again = []
    run_plan(config, out, PARTS, log=again.append)
    assert again == [] and json.loads((out / "timings.json").read_text()) == timings  # nothing reruns

    record = record_root(doc)
    save_record(out, record)
    assert sorted(p.relative_to(record).as_posix() for p in record.rglob("*.json")) == [
        "finetune/pawsx/results.json", "finetune/udpos/results.json", "layers/analysis.json", "layers/tuned.json",
        "probe/pawsx/results.json", "probe/udpos/results.json", "study/udpos-0/results.json",
        "study/udpos-2/results.json", "timings.json"]  # no checkpoints, no models

    fresh = tmp_path / "fresh-clone"  # a new machine: only the record, in the repository
    restore_record(record, fresh)
    assert (fresh / "finetune/pawsx/last-s2/results.json").is_file()
    again = []
    run_plan(config, fresh, PARTS, log=again.append)
    assert again == []  # the record's finished runs (and their analyses) are not run again

    write_report(record, doc, "python -m dlfa reproduce run --data-root DATA")
    text = doc.read_text()
    assert "python -m dlfa reproduce run --data-root DATA" in text
    assert "Baseline vs best DLFA layer (fine-tuning, `finetune/pawsx`" in text
    majority = finetune["runs"][0]["metrics"]["de"]["majority"]
    assert "| Δ | scalar-mix | majority class |" in text and f"| {majority:.1f} |" in text
    assert "over seeds" in text and "Not run yet (`probe/panx`)" in text and "Not run yet (`probe/udpos`)" not in text
    assert "**XNLI**: not run yet (`study/xnli-*`)" in text and "**POS tagging (UD-POS)** (`study/udpos-0`" in text
    assert "| German (de) | 2 | 2 |" in text  # 2 intermediate tasks, 2 seeds
    assert "Mean over the 2 target languages" in text and "\n| 2 | 2 | " in text  # 2 tasks, 2 seeds
    assert "**Answer, POS tagging (UD-POS)**: " in text and "points (paired-t), English dev" in text
    assert "| lower layers are more cross-lingual | yes |" in text
    assert "| … and after fine-tuning (section 3: the study runs' encoders) | yes | retrieval peaks at layer" in text
    assert "How fine-tuning changed each layer (`layers/tuned.json`" in text and "| base encoder | – | – | – |" in text
    assert text.count("\n| 2 tasks | ") == 2  # one row per analysed seed
    for figure in ("grid-udpos.png", "grid-pawsx.png", "layers-retrieval.png", "layers-cka.png", "study-udpos.png",
                   "study-layers-udpos.png"):
        assert (doc.parent / "figures" / figure).read_bytes()[:4] == b"\x89PNG"
        assert f"(figures/{figure})" in text
    assert "<code>finetune/udpos</code>: complete, 10 run(s)" in text
    assert re.search(r"Ran on: [^;]+ threads?, torch [^;]+ \(10 runs\)\.", text)  # every run recorded its hardware
    rerun = "`python -m dlfa sweep --spec docs/reproduction/finetune/udpos/results.json --data-root ../shared/data"
    assert rerun in text
    rerun = ["sweep", "--spec", str(record / "finetune/udpos/results.json"), "--data-root", str(data_root)]
    assert main([*rerun, "--out", str(out / "finetune/udpos")]) == 0  # the recorded runs are found, not redone


def test_report_without_results_is_a_clear_error(tmp_path, capsys):
    assert main(["reproduce", "report", "--out", str(tmp_path / "none"), "--doc", str(tmp_path / "r.md")]) == 2
    assert "no reproduction results" in capsys.readouterr().err
