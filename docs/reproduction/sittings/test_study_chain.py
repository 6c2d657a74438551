"""The sitting's study_chain.py on the pinned study code (copy into /work/study/tests/, run with main's venv, remove):
a chain per (arm, seed) on a tiny encoder; the job's runs of every seed kept across fresh output roots and in the
record; an arm run held by the record without its encoder trained again when its chain has a job left."""
import sys

sys.path.insert(0, "/work/scratch")
import study_chain  # noqa: E402

from dlfa.reproduction.plan import Reproduction
from dlfa.reproduction.record import restore_record, save_record
from dlfa.results import COMPLETED, STOPPED, JobResult, RunResult, read_job_results, write_results

TINY = {"max_steps": 3, "max_train_examples": 32, "max_eval_examples": 12, "batch_size": 8, "bootstrap_samples": 20,
        "checkpoint_every": 50, "eval_languages": ("de", "zh")}


def test_chains_keep_every_seed(tiny_encoder, data_root, tmp_path):
    config = Reproduction(str(data_root), tiny_encoder, tasks=("udpos",), seeds=(1, 2, 3), study_counts=(0, 1, 3),
                          study_steps=6, study_retrieval=(), spec_overrides=TINY)
    out, record = tmp_path / "a", tmp_path / "record"
    chosen = RunResult({"task": "udpos", "eval_languages": ["de"], "aggregations": ["dlfa"], "fusion_layers": [2],
                        "learning_rate": 1e-3},
                       COMPLETED, dev_score=80.0)
    for root in (out, tmp_path / "b"):
        write_results(root / "select/udpos", JobResult({"task": "udpos"}, COMPLETED, (chosen,)))
        write_results(root / "select/udpos-layers", JobResult({"task": "udpos"}, COMPLETED, ()))
    study_chain.COUNT, study_chain.SEED = 3, 2
    ran = []
    assert study_chain.run_chain(config, out, ("study",), log=ran.append) == COMPLETED
    assert [line.split(":")[0] for line in ran] == ["study/arm-3", "study/udpos-arm-3"]
    arm, target = (read_job_results(out / f"study/{job}/results.json") for job in ("arm-3", "udpos-arm-3"))
    assert arm.status == STOPPED and [r.seed for r in arm.completed_runs] == [2]
    assert target.status == STOPPED and sorted(r.seed for r in target.completed_runs) == [2, 2]
    assert target.spec["seeds"] == [1, 2, 3]
    save_record(out, record)

    fresh = tmp_path / "b"  # a fresh machine: the record's runs, no saved model
    restore_record(record, fresh)
    study_chain.SEED = 1
    ran = []
    assert study_chain.run_chain(config, fresh, ("study",), log=ran.append) == COMPLETED
    assert [line.split(":")[0] for line in ran] == ["study/arm-3", "study/udpos-arm-3"]
    target = read_job_results(fresh / "study/udpos-arm-3/results.json")
    assert sorted(r.seed for r in target.completed_runs) == [1, 1, 2, 2] and target.status == STOPPED
    save_record(fresh, record)
    assert sorted(r.seed for r in read_job_results(record / "study/udpos-arm-3/results.json").completed_runs) \
        == [1, 1, 2, 2]
    ran = []
    assert study_chain.run_chain(config, fresh, ("study",), log=ran.append) == COMPLETED and ran == []  # done
    again = tmp_path / "c"  # another fresh machine, where seed 2's UD-POS runs of arm 3 are still to run
    write_results(again / "select/udpos", JobResult({"task": "udpos"}, COMPLETED, (chosen,)))
    write_results(again / "select/udpos-layers", JobResult({"task": "udpos"}, COMPLETED, ()))
    restore_record(record, again)
    for unit in ("last-s2", "dlfa-L2-s2"):
        (again / "study/udpos-arm-3" / unit / "results.json").unlink()
    study_chain.SEED, ran = 2, []
    assert study_chain.run_chain(config, again, ("study",), log=ran.append) == COMPLETED
    assert [line.split(":")[0] for line in ran] == ["arm-3 s2", "study/arm-3", "study/udpos-arm-3"]  # its encoder
    assert (again / "study/arm-3/last-s2/model/dlfa_config.json").is_file()
    study_chain.COUNT, study_chain.SEED, ran = 0, 3, []
    assert study_chain.run_chain(config, fresh, ("study",), log=ran.append) == COMPLETED
    assert [line.split(":")[0] for line in ran] == ["study/udpos-arm-0"]
