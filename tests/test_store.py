"""The job store: round trips, several processes at once, dead workers, path safety, deletion, jobs recorded
elsewhere (the reproduction record) added in place."""
import json
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from dlfa.errors import ConfigError, DataError
from dlfa.engine.spec import JobSpec
from dlfa.jobs.recorded import job_folders
from dlfa.jobs.records import pid_alive
from dlfa.jobs.store import STALE_MESSAGE, STALE_MESSAGE_NO_CHECKPOINT, JobStore
from dlfa.jobs.table import SCHEMA
from dlfa.paths import REPO_ROOT
from dlfa.results import COMPLETED, JobResult, LanguageMetric, RunResult, write_results

TESTS = Path(__file__).resolve().parent
SPEC = JobSpec(task="pos", eval_languages=("de", "fr"), aggregations=("last",), max_steps=20, checkpoint_every=5)


@pytest.fixture
def store(tmp_path) -> JobStore:
    return JobStore(tmp_path / "jobs.sqlite")


def wait_until(condition, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_submit_get_list_round_trip(store):
    job = store.submit(replace(SPEC, name="first", eval_languages=("de",)))
    assert job.status == "queued" and job.spec.name == "first" and job.spec.eval_languages == ("de",)
    assert job.out_dir == store.runs_root / job.id and job.out_dir.is_dir()
    assert job.log_path == job.out_dir / "worker.log"
    second = store.submit(SPEC)
    assert [j.id for j in store.list()] == [second.id, job.id]
    assert store.list("completed") == [] and len(store.list(("queued", "running"))) == 2
    assert json.loads(json.dumps(job.to_dict()))["spec"]["task"] == "pos"
    with pytest.raises(ConfigError, match="unknown job status"):
        store.list("done")


def test_submit_refuses_an_invalid_spec(store):
    with pytest.raises(ConfigError, match="max_steps"):
        store.submit(JobSpec(task="pos", eval_languages=("de",), max_steps=0))


def test_worker_life_cycle_progress_and_results(store):
    job = store.submit(SPEC)
    assert store.claim(max_running=1)[0].id == job.id and store.claim(max_running=1) == []
    assert store.mark_running(job.id, pid=os.getpid())
    store.update_progress(job.id, 0.25, "unit 1/1 last-s1 · pos step 5/20")
    checkpoint = job.out_dir / "last-s1" / "checkpoint.json"
    checkpoint.parent.mkdir()
    checkpoint.write_text("{}")
    store.add_artifact(job.id, "checkpoint", checkpoint, unit="last-s1")
    assert store.results(job.id) is None  # until the engine writes them
    metric = LanguageMetric("accuracy", 61.0, 58.0, 64.0, 1000)
    run = RunResult(SPEC.units()[0].to_dict(), COMPLETED, {"de": metric})
    write_results(job.out_dir, JobResult(SPEC.to_dict(), COMPLETED, (run,), {"de": metric}))
    assert store.mark_completed(job.id)
    done = store.get(job.id)
    assert (done.status, done.progress, done.attempts, done.resumable) == ("completed", 1.0, 1, False)
    results = store.results(job.id)  # the store keeps the job's state; its results stay in results.json
    assert results.metrics["de"] == metric and results.runs[0].metrics == {"de": metric}
    assert store.metrics(job.id) == [{"unit": "last-s1", "language": "de", "metric": "accuracy", "value": 61.0,
                                      "ci_low": 58.0, "ci_high": 64.0, "n": 1000}]
    assert "metrics" not in {row[0] for row in sqlite3.connect(store.path).execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {a["kind"] for a in store.artifacts(job.id)} == {"checkpoint", "results"}
    assert not store.mark_failed(job.id, "late")  # a finished job keeps its status
    with pytest.raises(ConfigError, match="only failed, cancelled, stopped jobs can be resumed"):
        store.requeue(job.id)


def test_a_finished_run_in_results_json_makes_a_failed_job_resumable(store):
    sweep = replace(SPEC, aggregations=("last", "scalar-mix"))
    for finished in (False, True):
        job = store.submit(sweep)
        store.claim_job(job.id)
        store.mark_running(job.id)
        if finished:  # the first unit completed before the crash; no checkpoint is left
            run = RunResult(sweep.units()[0].to_dict(), COMPLETED, {"de": LanguageMetric("accuracy", 50.0, n=10)})
            write_results(job.out_dir, JobResult(sweep.to_dict(), "running", (run,)))
        assert not store.artifacts(job.id, "checkpoint")
        assert store.mark_failed(job.id, "crashed") and store.get(job.id).resumable == finished


def test_cancel_before_launch_is_immediate_and_requeue_keeps_the_folder(store):
    job = store.submit(SPEC)
    assert store.request_cancel(job.id).status == "cancelled"
    again = store.requeue(job.id)
    assert again.status == "queued" and again.out_dir == job.out_dir and again.cancel_requested_at is None
    store.claim(1)
    flagged = store.request_cancel(job.id)
    assert flagged.status == "queued" and flagged.cancel_requested_at is not None
    assert not store.mark_running(job.id)  # a worker starting now must not run it


HAMMER = """
import json, sys
from dlfa.engine.spec import JobSpec
from dlfa.jobs.store import JobStore
store, worker, ids = JobStore(sys.argv[1]), sys.argv[2], []
for i in range(25):
    job = store.submit(JobSpec(task="pos", eval_languages=("de",), name=f"w{worker}-{i}"))
    store.update_progress(job.id, 0.5, "half")
    store.set_process(job.id, external_id=f"w{worker}-{i}")
    ids.append(job.id)
claimed = [job.id for _ in range(25) for job in store.claim(max_running=3)]
print(json.dumps([ids, claimed]))
"""


@pytest.mark.integration
def test_two_processes_share_the_store(store):
    # Plain interpreters, not multiprocessing: spawn would re-run whatever __main__ is (AppTest swaps it).
    workers = [subprocess.Popen([sys.executable, "-c", HAMMER, str(store.path), str(w)], cwd=REPO_ROOT,
                                stdout=subprocess.PIPE, text=True) for w in range(2)]
    outcomes = []
    for worker in workers:
        stdout, _ = worker.communicate(timeout=120)
        assert worker.returncode == 0
        outcomes.append(json.loads(stdout))
    ids = [i for submitted, _ in outcomes for i in submitted]
    claimed = [i for _, taken in outcomes for i in taken]
    assert len(set(ids)) == 50 and len(store.list()) == 50
    assert len(claimed) == len(set(claimed)) == 3  # the limit holds across processes, no job taken twice
    assert [store.get(i).external_id for i in ids] == [f"w{w}-{i}" for w in range(2) for i in range(25)]
    assert sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _start_worker(store: JobStore, job_id: str, step_s: float) -> subprocess.Popen:
    env = {**os.environ, "DLFA_JOB_RUNNER": "jobs_fake_engine:run_job", "DLFA_FAKE_STEP_S": str(step_s),
           "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(TESTS)])}
    return subprocess.Popen([sys.executable, "-m", "dlfa.jobs.worker", job_id, "--store", str(store.path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_sigkilled_worker_is_detected_as_stale_and_resumable(store):
    job = store.submit(replace(SPEC, max_steps=500))
    store.claim_job(job.id)
    worker = _start_worker(store, job.id, step_s=0.02)
    store.set_process(job.id, pid=worker.pid, pgid=worker.pid)
    wait_until(lambda: store.artifacts(job.id, "checkpoint"), what="a checkpoint")
    assert store.refresh_stale(timeout_s=60) == []  # alive and heartbeating
    worker.kill()
    worker.wait()
    assert not pid_alive(worker.pid)
    (changed,) = store.refresh_stale(timeout_s=60)
    assert (changed.id, changed.status, changed.error, changed.resumable) == (job.id, "failed", STALE_MESSAGE, True)


def test_silent_worker_is_stale_after_the_heartbeat_timeout(store):
    job = store.submit(SPEC)
    store.claim_job(job.id)
    store.mark_running(job.id, pid=os.getpid())  # alive, but its heartbeat stops
    assert store.refresh_stale(timeout_s=60) == []
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE jobs SET heartbeat_at = ? WHERE id = ?", (time.time() - 120, job.id))
    (changed,) = store.refresh_stale(timeout_s=60)
    assert changed.error == STALE_MESSAGE_NO_CHECKPOINT and not changed.resumable


def test_a_store_from_before_progress_times_gains_the_column(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA.replace("    progress_at REAL,\n", ""))
    store = JobStore(path)
    job = store.submit(SPEC)
    store.claim_job(job.id)
    assert store.mark_running(job.id) and store.get(job.id).progress_at is not None


def test_stalled_is_shown_when_no_step_finished_for_the_configured_while(store, monkeypatch):
    job = store.submit(SPEC)
    store.claim_job(job.id)
    store.mark_running(job.id, pid=os.getpid())
    monkeypatch.setenv("DLFA_STALL_AFTER_S", "600")
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE jobs SET progress_at = ? WHERE id = ?", (time.time() - 601, job.id))
    store.heartbeat(job.id)  # the heartbeat alone is no progress
    assert store.get(job.id).state == "stalled" and store.refresh_stale(timeout_s=60) == []
    monkeypatch.setenv("DLFA_STALL_AFTER_S", "700")
    assert store.get(job.id).state == "running"
    monkeypatch.setenv("DLFA_STALL_AFTER_S", "600")
    store.update_progress(job.id, 0.5, "step 10/20")
    assert store.get(job.id).state == "running"
    monkeypatch.setenv("DLFA_STALL_AFTER_S", "soon")
    with pytest.raises(ConfigError, match="DLFA_STALL_AFTER_S must be a positive number of seconds, got 'soon'"):
        store.get(job.id).state


@pytest.mark.parametrize("bad_id", ["../../etc/passwd", "..", "20261124-221503-ab12cd/..", "/tmp/x", "", "x" * 22])
def test_ids_that_could_escape_are_refused(store, bad_id):
    for call in (store.get, store.delete, store.artifacts, store.results, store.metrics):
        with pytest.raises(ConfigError, match="is not a job id"):
            call(bad_id)


def test_output_folders_never_overlap_or_hold_the_store(store, tmp_path):
    named = store.submit(replace(SPEC, name="../../escape"))
    assert named.out_dir.parent == store.runs_root  # a name never becomes a path
    mine = store.submit(SPEC, out_dir=tmp_path / "mine")
    for folder, message in [(tmp_path / "mine", "overlaps"), (tmp_path / "mine" / "inner", "overlaps"),
                            (tmp_path, "holds the job store"), (store.runs_root / ".." / "runs", "holds the job store"),
                            (named.out_dir, "inside"), (store.runs_root / "20990101-000000-abcdef", "inside")]:
        with pytest.raises(ConfigError, match=message):
            store.submit(SPEC, out_dir=folder)
    with pytest.raises(ConfigError, match="outside the folder"):
        store.add_artifact(mine.id, "checkpoint", mine.out_dir / ".." / "elsewhere.json")
    assert len(store.list()) == 2


def test_delete_removes_only_its_own_folder(store, tmp_path):
    first, second = store.submit(SPEC), store.submit(SPEC)
    chosen = store.submit(SPEC, out_dir=tmp_path / "chosen")
    (first.out_dir / "worker.log").write_text("log")
    store.delete(first.id)
    assert not first.out_dir.exists() and second.out_dir.is_dir()
    with pytest.raises(ConfigError, match="no job"):
        store.get(first.id)
    store.delete(chosen.id)
    assert chosen.out_dir.is_dir()  # the user's folder stays
    victim = tmp_path / "victim"
    victim.mkdir()
    with sqlite3.connect(store.path) as conn:  # a tampered row pointing elsewhere
        conn.execute("UPDATE jobs SET out_dir = ? WHERE id = ?", (str(victim), second.id))
    store.delete(second.id)
    assert victim.is_dir() and store.list() == []


def test_an_active_job_cannot_be_deleted(store):
    job = store.submit(SPEC)
    store.claim(1)
    store.mark_running(job.id)
    with pytest.raises(ConfigError, match="cancel it first"):
        store.delete(job.id)


# ----------------------------------------------------------------------------------------------------
# Jobs recorded elsewhere


def write_first_record_job(folder: Path, task: str, intermediate: tuple[str, ...], finished_runs: int = 3) -> None:
    """A study job as the first reproduction record wrote it (no schema_version, status "complete"): 3 seeds, the
    first `finished_runs` of them recorded (fewer: the job was cut, "stopped")."""
    spec = {"task": task, "eval_languages": ["de"], "aggregations": ["dlfa"], "fusion_layers": [0], "seeds": [1, 2, 3],
            "intermediate_tasks": list(intermediate), "name": f"reproduction: study: {task} +{len(intermediate)}"}
    runs = [{"spec": {**spec, "seeds": [seed]}, "status": "complete",
             "metrics": {"de": {"metric": "accuracy", "value": 50.0 + seed, "ci_low": 45.0, "ci_high": 55.0, "n": 90}}}
            for seed in spec["seeds"][:finished_runs]]
    folder.mkdir(parents=True)
    status = "complete" if finished_runs == len(spec["seeds"]) else "stopped"
    (folder / "results.json").write_text(json.dumps({"spec": spec, "status": status, "runs": runs}))


@pytest.fixture
def recorded(tmp_path) -> Path:
    """Study jobs in the first record's format, one of them cut to its first finished run."""
    root = tmp_path / "record"
    write_first_record_job(root / "udpos-0", "udpos", ())
    write_first_record_job(root / "udpos-3", "udpos", ("qnli", "boolq", "mrpc"))
    write_first_record_job(root / "xnli-3", "xnli", ("qnli", "boolq", "mrpc"))
    nine = ("qnli", "boolq", "mrpc", "rte", "sst2", "cola", "wic", "cb", "copa")
    write_first_record_job(root / "xnli-9", "xnli", nine, finished_runs=1)
    (root / "xnli-9" / "dlfa-L0-s1").mkdir()  # a unit folder with its own results.json is part of the job
    first_run = json.loads((root / "xnli-9" / "results.json").read_text())["runs"][0]
    (root / "xnli-9" / "dlfa-L0-s1" / "results.json").write_text(json.dumps(first_run))
    return root


def test_recorded_jobs_are_added_in_place_once(store, recorded):
    assert [f.name for f in job_folders(recorded)] == ["udpos-0", "udpos-3", "xnli-3", "xnli-9"]
    added, present = store.add_finished_under(recorded)
    assert len(added) == 4 and present == []
    by_folder = {job.out_dir.name: job for job in added}
    full = by_folder["xnli-3"]
    assert full.status == "completed" and full.progress == 1 and full.name == "reproduction: study: xnli +3"
    assert full.spec.intermediate_tasks == ("qnli", "boolq", "mrpc") and full.out_dir == recorded / "xnli-3"
    assert store.results(full.id).status == "completed"  # the record's old word "complete", read
    cut = by_folder["xnli-9"]
    assert cut.status == "stopped" and cut.progress_text == "recorded with 1 of 3 runs finished"
    assert cut.progress == pytest.approx(1 / 3) and not cut.resumable
    with pytest.raises(ConfigError, match="was imported from .*xnli-9.*resume it there"):
        store.requeue(cut.id)  # rerunning in the record's folder would start over and replace its results
    again, present = store.add_finished_under(recorded)
    assert again == [] and sorted(job.id for job in present) == sorted(job.id for job in added)
    store.delete(full.id)
    assert (recorded / "xnli-3" / "results.json").is_file()  # forgetting a recorded job keeps its folder


def test_a_malformed_record_adds_nothing_and_names_the_file(store, recorded, tmp_path):
    (recorded / "udpos-3" / "results.json").write_text('{"spec": {"task": "udpos"}')
    with pytest.raises(DataError, match=r"udpos-3/results.json: not a job's results .*nothing was imported"):
        store.add_finished_under(recorded)
    (recorded / "udpos-3" / "results.json").write_text('{"spec": {"task": "udpos", "eval_languages": ["de"]}}')
    with pytest.raises(DataError, match=r"udpos-3/results.json: not a job's results .*field 'runs': missing"):
        store.add_finished_under(recorded)
    assert store.list() == []
    with pytest.raises(DataError, match="no job folder here"):
        store.add_finished_under(tmp_path / "empty")
