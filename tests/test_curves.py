"""The live training curves file (dlfa.curves): what the engine's CurvesCallback appends is read back in order,
a resumed run's repeated points replace the earlier ones, a half-written line is skipped; and how a run's
training ended, in words."""
import json

from dlfa.curves import CURVES_FILE, convergence_text, read_curves, run_history_rows, still_rising
from dlfa.engine.callbacks import CurvesCallback


def test_points_are_read_back_by_unit_and_stage_with_a_resumed_runs_repeats_replaced(tmp_path):
    curves = CurvesCallback(tmp_path)
    for point in (["sst2", 10, 0.9], ["sst2", 20, 0.7], ["udpos", 10, 2.0]):
        curves.on_history("last-s1", "loss", point)
    curves.on_history("last-s1", "dev", [10, 50.0])
    curves.on_history("dlfa-L2-s1", "loss", ["udpos", 10, 2.5])
    curves.on_history("last-s1", "loss", ["udpos", 10, 1.9])  # resumed from a checkpoint before step 10
    curves.on_history("last-s1", "loss", ["udpos", 20, 1.5])
    with open(tmp_path / CURVES_FILE, "a", encoding="utf-8") as file:
        file.write('{"unit": "last-s1", "kind": "grad", "point": [20, 1.0]}\n')  # not a kind of point
        file.write('{"unit": "last-s1", "kind": "dev", "point": [20')  # being written while read

    rows = [(r["unit"], r["kind"], r["stage"], r["step"], r["value"]) for r in read_curves(tmp_path)]
    assert rows == [("last-s1", "loss", "sst2", 10, 0.9), ("last-s1", "loss", "sst2", 20, 0.7),
                    ("last-s1", "loss", "udpos", 10, 1.9), ("last-s1", "loss", "udpos", 20, 1.5),
                    ("last-s1", "dev", None, 10, 50.0), ("dlfa-L2-s1", "loss", "udpos", 10, 2.5)]


def test_no_file_reads_as_no_points_and_a_history_gives_the_same_rows_as_the_file(tmp_path):
    assert read_curves(tmp_path) == []
    history = {"loss": [["udpos", 10, 2.0], ["udpos", 20, 1.5]], "dev": [[20, 61.0]]}
    lines = [{"unit": "last-s1", "kind": kind, "point": point} for kind in ("loss", "dev") for point in history[kind]]
    (tmp_path / CURVES_FILE).write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert read_curves(tmp_path) == run_history_rows("last-s1", history)


def test_convergence_says_how_training_ended():
    curve = [[60, 50.0], [120, 55.0], [180, 57.5]]
    capped = {"best_step": 180, "steps_trained": 180, "epochs_trained": 3.0, "stopped_early": False, "patience": 2,
              "dev_curve": curve}
    assert convergence_text({"convergence": capped}) == ("best dev at step 180 of 180, at its 3-epoch cap "
                                                         "(+2.5 dev over its last epoch)")
    uneven = {**capped, "epochs_trained": 563 / 188}  # a cap of 3 epochs of 187.5 steps, in whole steps
    assert "at its 3-epoch cap" in convergence_text({"convergence": uneven})
    stopped = {**capped, "best_step": 120, "stopped_early": True}
    assert convergence_text({"convergence": stopped}) == "best dev at step 120 of 180, stopped by patience"
    assert still_rising({"convergence": capped}) and not still_rising({"convergence": stopped})
    flat = {**capped, "dev_curve": [[60, 50.0], [120, 57.3], [180, 57.5]]}  # +0.2 over the last epoch
    assert not still_rising({"convergence": flat})
    assert convergence_text({"convergence": flat}).endswith("(+0.2 dev over its last epoch)")
    fixed_budget = {**capped, "patience": None}
    assert convergence_text({"convergence": fixed_budget}) == "best dev at step 180 of 180"
    assert convergence_text({"best_step": 5, "steps_trained": 9}) == "best dev at step 5 of 9"  # an older run
    assert convergence_text({}) == "not recorded"
