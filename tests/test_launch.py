"""Launchers with real worker processes running a fast stand-in engine (tests/jobs_fake_engine.py): local
(outliving its launcher), cancel, the queue, SIGTERM, submitit's local executor, SIGKILL then resume, the
command line; and the real engine under torchrun with 2 CPU processes (gloo)."""
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from dlfa.jobs import launch
from dlfa.engine.spec import JobSpec
from dlfa.jobs.records import pid_alive
from dlfa.jobs.store import STALE_MESSAGE, JobStore
from dlfa.jobs.worker import run_worker
from dlfa.paths import REPO_ROOT
from dlfa.results import read_job_results

TESTS = Path(__file__).resolve().parent
SPEC = JobSpec(task="pos", eval_languages=("de", "fr"), aggregations=("last",), max_steps=10, checkpoint_every=5)


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A store whose workers run the fake engine (tests/jobs_fake_engine.py), one job at a time."""
    monkeypatch.setenv("DLFA_JOB_RUNNER", "jobs_fake_engine:run_job")
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    monkeypatch.setenv("DLFA_FAKE_STEP_S", "0.01")
    monkeypatch.setenv("DLFA_MAX_CONCURRENT_JOBS", "1")
    monkeypatch.setenv("DLFA_CACHE_DIR", str(tmp_path / "cache"))
    store = JobStore(tmp_path / "jobs.sqlite")
    yield store
    for job in store.list(("queued", "running")):  # a failed test leaves no worker behind
        launch.hard_stop(job)


def wait_for(store, job_id, condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = store.get(job_id)
        if condition(job):
            return job
        time.sleep(0.05)
    job = store.get(job_id)
    log = job.log_path.read_text() if job.log_path.is_file() else "(no log)"
    raise AssertionError(f"job {job_id} stuck at {job.status} {job.progress_text!r}; log:\n{log}")


def exits(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not pid_alive(pid)


def finished(job) -> bool:
    return not job.active


@pytest.mark.integration
def test_local_job_outlives_the_process_that_launched_it(store):
    script = ("import sys; from dlfa.jobs.launch import submit; from dlfa.engine.spec import JobSpec; "
              "from dlfa.jobs.store import JobStore; spec = JobSpec.from_json(sys.argv[2]); "
              "print(submit(spec, JobStore(sys.argv[1])).id)")
    env = {**os.environ, "DLFA_FAKE_STEP_S": "0.2", "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(TESTS)])}
    launcher = subprocess.run([sys.executable, "-c", script, str(store.path), SPEC.to_json()], env=env,
                              capture_output=True, text=True, check=True, timeout=60)
    job_id = launcher.stdout.strip()
    assert store.get(job_id).active  # the launcher is gone, the job is not
    job = wait_for(store, job_id, finished)
    assert job.status == "completed" and job.progress == 1.0 and job.error is None
    assert {row["language"] for row in store.metrics(job_id)} == {"de", "fr"}
    assert store.results(job_id).status == "completed"
    log = job.log_path.read_text()
    assert "starting at step 0" in log and log.rstrip().endswith("worker finished: completed")


@pytest.mark.integration
def test_cancel_stops_the_worker_at_a_checkpoint(store, monkeypatch):
    monkeypatch.setenv("DLFA_FAKE_STEP_S", "0.05")
    job = launch.submit(replace(SPEC, max_steps=300), store)
    wait_for(store, job.id, lambda j: j.progress > 0)
    cancelled = launch.cancel(job.id, store, grace_s=20)
    assert cancelled.status == "cancelled" and cancelled.resumable and cancelled.cancel_requested_at
    assert "worker finished: cancelled" in cancelled.log_path.read_text()
    assert exits(cancelled.pid)


@pytest.mark.integration
def test_cancel_terminates_a_worker_that_does_not_stop(store, monkeypatch):
    monkeypatch.setattr(launch, "KILL_WAIT_S", 1.0)
    monkeypatch.setenv("DLFA_FAKE_STEP_S", "0.05")
    job = launch.submit(replace(SPEC, max_steps=2000), store)
    wait_for(store, job.id, lambda j: j.progress > 0)
    os.kill(store.get(job.id).pid, signal.SIGSTOP)  # frozen: it can neither poll nor handle SIGTERM
    cancelled = launch.cancel(job.id, store, grace_s=0.5)
    assert cancelled.status == "cancelled"
    assert exits(cancelled.pid)


@pytest.mark.integration
def test_queue_with_limit_one_runs_jobs_in_order(store):
    jobs = [launch.submit(replace(SPEC, name=f"job{i}"), store) for i in range(3)]
    assert [j.status for j in jobs] == ["queued"] * 3 and jobs[0].launched_at and not jobs[1].launched_at
    most_active = 0
    deadline = time.monotonic() + 60
    while any(store.get(j.id).active for j in jobs) and time.monotonic() < deadline:
        most_active = max(most_active, len(store.list("running")))
        time.sleep(0.02)
    done = [store.get(j.id) for j in jobs]  # the finishing workers drained the queue by themselves
    assert [j.status for j in done] == ["completed"] * 3 and most_active == 1
    assert done[0].finished_at <= done[1].started_at and done[1].finished_at <= done[2].started_at


def test_local_cpu_jobs_get_their_share_of_the_cores_only_when_several_run_at_once(store, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(launch, "available_cores", lambda: 4)
    cpu, gpu = store.submit(replace(SPEC, device="cpu")), store.submit(replace(SPEC, device="cuda"))
    torchrun = store.submit(replace(SPEC, device="cpu", backend="torchrun", num_processes=2))
    assert "OMP_NUM_THREADS" not in launch.worker_env(cpu)  # one slot: torch takes every core
    monkeypatch.setenv("DLFA_MAX_CONCURRENT_JOBS", "2")
    assert launch.worker_env(cpu)["OMP_NUM_THREADS"] == "2"
    assert "OMP_NUM_THREADS" not in launch.worker_env(gpu) and "OMP_NUM_THREADS" not in launch.worker_env(torchrun)
    monkeypatch.setenv("DLFA_MAX_CONCURRENT_JOBS", "8")
    assert launch.worker_env(cpu)["OMP_NUM_THREADS"] == "1"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's choice wins
    assert launch.worker_env(cpu)["OMP_NUM_THREADS"] == "3"


@pytest.mark.integration
def test_two_cpu_jobs_at_once_split_the_cores_between_their_workers(store, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("DLFA_MAX_CONCURRENT_JOBS", "2")
    monkeypatch.setenv("DLFA_FAKE_STEP_S", "0.1")
    jobs = [launch.submit(replace(SPEC, name=f"job{i}", device="cpu"), store) for i in range(2)]
    assert all(j.launched_at for j in jobs)  # two slots: both start at once
    for job in jobs:
        wait_for(store, job.id, lambda j: j.status == "completed")
    share = str(max(1, launch.available_cores() // 2))
    for job in jobs:
        runs = read_job_results(store.get(job.id).out_dir).runs
        assert [run.extra["omp_num_threads"] for run in runs] == [share] * len(runs)


def test_sigterm_stops_a_job_cleanly_as_resumable(store, monkeypatch):
    monkeypatch.setenv("DLFA_FAKE_STEP_S", "0.05")
    job = launch.launch(store.submit(replace(SPEC, max_steps=300)), store)
    assert job.launched_at and launch.launch(job, store).attempts == 1  # started once only
    running = wait_for(store, job.id, lambda j: j.progress > 0)
    os.kill(running.pid, signal.SIGTERM)  # e.g. a SLURM time limit
    stopped = wait_for(store, job.id, finished)
    assert stopped.status == "stopped" and stopped.resumable and stopped.error is None


@pytest.mark.integration
def test_real_engine_under_torchrun_with_two_cpu_processes(store, monkeypatch, tiny_encoder, fixture_root):
    """The real dlfa.engine.job.run_job on a tiny encoder, 2 gloo processes; only rank 0 writes to the store."""
    monkeypatch.delenv("DLFA_JOB_RUNNER")
    spec = JobSpec(task="pawsx", eval_languages=("de",), encoder=tiny_encoder, aggregations=("dlfa",),
                   fusion_layers=(2,),
                   data_root=str(fixture_root), max_train_examples=32, max_eval_examples=32, max_steps=4, batch_size=8,
                   bootstrap_samples=10, checkpoint_every=2, backend="torchrun", num_processes=2).validate()
    job = launch.submit(spec, store)
    done = wait_for(store, job.id, finished, timeout=120)
    assert done.status == "completed", done.error
    (row,) = store.metrics(job.id)
    assert (row["unit"], row["language"], row["metric"], row["n"]) == ("dlfa-L2-s1", "de", "accuracy", 32)
    results = store.results(job.id)
    assert results.status == "completed" and results.runs[0].extra["world_size"] == 2
    assert results.metrics["de"].value == row["value"]
    assert done.log_path.read_text().count("started job") == 1  # rank 1 stayed away from the store


@pytest.mark.integration
def test_slurm_backend_through_submitit_local_executor(store, monkeypatch):
    monkeypatch.setenv("DLFA_SLURM_CLUSTER", "local")
    job = launch.submit(replace(SPEC, backend="slurm"), store, options={"timeout_min": 5})
    assert job.external_id and job.options["cluster"] == "local"
    done = wait_for(store, job.id, finished, timeout=60)
    assert done.status == "completed", done.error
    assert {row["language"] for row in store.metrics(job.id)} == {"de", "fr"}


def test_slurm_backend_without_a_cluster_fails_with_a_clear_message(store, monkeypatch):
    monkeypatch.delenv("DLFA_SLURM_CLUSTER", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")  # no sbatch
    job = launch.submit(replace(SPEC, backend="slurm"), store)
    assert job.status == "failed" and "SLURM is not available" in job.error


@pytest.mark.integration
def test_sigkill_mid_run_then_resume_finishes(store, monkeypatch):
    monkeypatch.setenv("DLFA_FAKE_STEP_S", "0.05")
    job = launch.submit(replace(SPEC, max_steps=200, aggregations=("last", "scalar-mix")), store)
    wait_for(store, job.id, lambda j: store.artifacts(j.id, "checkpoint"))
    os.killpg(store.get(job.id).pgid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not store.refresh_stale() and time.monotonic() < deadline:
        time.sleep(0.05)
    failed = store.get(job.id)
    assert failed.status == "failed" and failed.error == STALE_MESSAGE and failed.resumable
    monkeypatch.setenv("DLFA_FAKE_STEP_S", "0.0005")
    launch.resume(job.id, store)
    done = wait_for(store, job.id, finished, timeout=60)
    assert done.status == "completed"
    assert [r["unit"] for r in store.metrics(job.id)] == ["last-s1"] * 2 + ["scalar-mix-s1"] * 2
    starts = (job.out_dir / "last-s1" / "starts.txt").read_text().split()
    assert len(starts) == 2 and int(starts[1]) >= 5


@pytest.mark.parametrize("task, error", [("fail", "the fake engine was asked to fail"),
                                         ("crash", "RuntimeError: the fake engine crashed")])
def test_worker_reports_engine_errors(store, task, error):
    job = store.submit(replace(SPEC, task=task))
    assert run_worker(job.id, store) == 1  # in this process: the worker's own error handling
    failed = store.get(job.id)
    assert (failed.status, failed.error, failed.resumable) == ("failed", error, False)
    assert ("Traceback" in failed.log_path.read_text()) == (task == "crash")


@pytest.mark.parametrize("task, outcome", [("pos", "completed"), ("fail", "failed")])
def test_the_worker_writes_its_last_log_line_before_it_marks_the_job_ended(store, monkeypatch, task, outcome):
    """Whoever sees the job end (jobs logs --follow stops there) must find the whole log written."""
    log_when_marked = []
    for mark in ("mark_completed", "mark_failed"):
        original = getattr(store, mark)

        def remember_log_then_mark(job_id, *args, original=original):
            log_when_marked.append(store.get(job_id).log_path.read_text())
            return original(job_id, *args)

        monkeypatch.setattr(store, mark, remember_log_then_mark)
    job = store.submit(replace(SPEC, task=task))
    run_worker(job.id, store)
    assert store.get(job.id).status == outcome
    assert len(log_when_marked) == 1 and log_when_marked[0].rstrip().endswith(f"worker finished: {outcome}")


def test_a_job_whose_last_log_line_cannot_be_written_is_still_marked_completed(store, monkeypatch):
    from dlfa.jobs.runner import StoreCallback

    write = StoreCallback.log

    def disk_full_at_the_end(callback, message):
        if message.startswith("worker finished"):
            raise OSError(28, "No space left on device")
        write(callback, message)

    monkeypatch.setattr(StoreCallback, "log", disk_full_at_the_end)
    job = store.submit(SPEC)
    assert run_worker(job.id, store) == 0 and store.get(job.id).status == "completed"


@pytest.mark.integration
def test_a_hung_worker_whose_heartbeat_lives_is_shown_stalled_and_can_be_cancelled(store, monkeypatch, capsys):
    monkeypatch.setenv("DLFA_STALL_AFTER_S", "1.5")
    job = launch.submit(replace(SPEC, task="hang"), store)
    running = wait_for(store, job.id, lambda j: j.status == "running" and j.progress > 0)
    assert running.state == "running" and running.progress_at is not None
    stalled = wait_for(store, job.id, lambda j: j.heartbeat_at - j.progress_at > 2, timeout=20)  # heartbeat lives
    launch.refresh(store)  # the heartbeat is fresh: not taken for a dead worker
    assert (stalled.status, stalled.state) == ("running", "stalled") and store.get(job.id).status == "running"
    assert stalled.stalled_for() > 1.5 and stalled.to_dict()["state"] == "stalled"
    code, out, _ = cli(capsys, "jobs", "--store", str(store.path), "list")
    assert f"{job.id}  stalled" in out
    code, out, _ = cli(capsys, "jobs", "--store", str(store.path), "show", job.id)
    assert "status    stalled: no step has finished for 0 min although the worker is alive" in out
    assert launch.cancel(job.id, store, grace_s=1).status == "cancelled"  # its loop never polls: killed
    assert exits(stalled.pid)


@pytest.mark.integration
def test_a_nan_loss_ends_the_run_with_a_clear_message_and_keeps_the_last_good_checkpoint(
    store, monkeypatch, tiny_encoder, fixture_root
):
    from dlfa.engine.checkpoint import latest_checkpoint
    from dlfa.engine.train import UnitTrainer

    monkeypatch.delenv("DLFA_JOB_RUNNER")  # the real engine, in this process
    train_step = UnitTrainer.train_step

    def nan_from_step_5(self, stage_index, stage, streams, step, *args):
        loss = train_step(self, stage_index, stage, streams, step, *args)
        return float("nan") if step + 1 >= 5 else loss

    monkeypatch.setattr(UnitTrainer, "train_step", nan_from_step_5)
    spec = JobSpec(task="udpos", eval_languages=("de",), encoder=tiny_encoder, data_root=str(fixture_root),
                   aggregations=("last",), max_train_examples=64, max_eval_examples=16, batch_size=8, max_steps=8,
                   checkpoint_every=3, bootstrap_samples=20)
    job = store.submit(spec)
    assert run_worker(job.id, store) == 1
    failed = store.get(job.id)
    unit_dir = failed.out_dir / "last-s1"
    kept = latest_checkpoint(unit_dir)
    assert kept is not None and kept.name == "stage0-step0000003"
    assert failed.status == "failed" and failed.resumable
    assert failed.error == f"loss became NaN at stage udpos step 5; the last good checkpoint is kept at {kept} " \
                           "(a lower learning rate may help)"
    assert not (unit_dir / "results.json").exists()


# ----------------------------------------------------------------------------------------------------
# The command line


def cli(capsys, *argv) -> tuple[int, str, str]:
    from dlfa.cli.main import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def spec_flags(tiny_encoder, data_root, *extra) -> list[str]:
    return ["--task", "pawsx", "--encoder", tiny_encoder, "--eval-langs", "de,fr", "--data-root", str(data_root),
            "--max-steps", "10", *extra]


def test_spec_from_args_builds_sweeps_and_absolute_paths(tiny_encoder, fixture_root, monkeypatch):
    from dlfa.cli.main import build_parser
    from dlfa.cli.jobs import spec_from_args

    monkeypatch.chdir(fixture_root.parent)
    args = build_parser().parse_args([
        "jobs", "submit", "--task", "pawsx", "--encoder", tiny_encoder, "--eval-langs", "de, fr",
        "--data-root", "./data", "--aggregations", "last,dlfa", "--fusion-layers", "1-3", "--seeds", "1,2",
        "--intermediate", "sst2", "--epochs", "2", "--lr", "3e-5", "--backend", "torchrun", "--nproc", "2",
        "--name", "grid"])
    spec = spec_from_args(args)
    assert (spec.aggregations, spec.fusion_layers, spec.seeds) == (("last", "dlfa"), (1, 2, 3), (1, 2))
    assert spec.eval_languages == ("de", "fr") and spec.intermediate_tasks == ("sst2",)
    assert spec.data_root == str(fixture_root) and (spec.epochs, spec.learning_rate) == (2.0, 3e-5)
    assert (spec.backend, spec.num_processes, spec.name, len(spec.units())) == ("torchrun", 2, "grid", 8)
    single = spec_from_args(build_parser().parse_args(["train", *spec_flags(tiny_encoder, fixture_root), "--seed", "4",
                                                       "--aggregation", "last", "--precision", "fp32",
                                                       "--compile", "--out", "run"]))
    assert (single.aggregations, single.seeds, single.max_steps, single.precision) == (("last",), (4,), 10, "fp32")
    assert (spec.precision, spec.compile_model, single.compile_model) == ("auto", False, True)


def test_spec_file_reruns_a_recorded_job_with_the_flags_given_on_top(tiny_encoder, fixture_root, tmp_path, capsys):
    from dlfa.cli.main import build_parser
    from dlfa.cli.jobs import spec_from_args
    from dlfa.engine.spec import JobSpec

    recorded = JobSpec(task="pawsx", eval_languages=("de", "fr"), encoder=tiny_encoder, data_root=str(fixture_root),
                       aggregations=("last", "dlfa"), fusion_layers=(1, 2), seeds=(1, 2), intermediate_tasks=("sst2",),
                       max_steps=10, probe=True, max_eval_examples=12, name="recorded")
    results = tmp_path / "results.json"  # a job's results.json records its spec beside its runs
    results.write_text(json.dumps({"spec": recorded.to_dict(), "status": "completed", "runs": []}))

    def parsed(*argv):
        return spec_from_args(build_parser().parse_args([*argv, "--out", str(tmp_path / "out")]))

    assert parsed("sweep", "--spec", str(results)) == recorded
    one = parsed("train", "--spec", str(results), "--aggregation", "dlfa", "--fusion-layer", "2", "--seed", "2")
    assert len(one.units()) == 1 and (one.aggregations, one.fusion_layers, one.seeds) == (("dlfa",), (2,), (2,))
    assert (one.probe, one.intermediate_tasks, one.max_eval_examples, one.max_steps) == (True, ("sst2",), 12, 10)
    longer = parsed("sweep", "--spec", str(results), "--epochs", "2", "--intermediate", "", "--eval-langs", "de")
    grid = tmp_path / "grid.json"  # a selection job: a learning-rate grid; --lr picks one rate of it
    grid.write_text(json.dumps({"spec": replace(recorded, learning_rates=(2e-5, 1e-4)).to_dict(), "status": "completed",
                                "runs": []}))
    assert len(parsed("train", "--spec", str(grid), "--aggregation", "last", "--seed", "1").units()) == 2
    picked = parsed("train", "--spec", str(grid), "--aggregation", "last", "--seed", "1", "--lr", "1e-4")
    assert [(unit.learning_rate, unit.learning_rates) for unit in picked.units()] == [(1e-4, ())]
    assert (longer.epochs, longer.max_steps, longer.intermediate_tasks, longer.eval_languages) == (2, None, (), ("de",))

    code, out, err = cli(capsys, "train", "--spec", str(results), "--out", str(tmp_path / "out"))
    assert code == 2 and err.startswith("error: the spec holds 6 runs: run them all with `python -m dlfa sweep`")
    assert not (tmp_path / "out").exists()
    (tmp_path / "broken.json").write_text('{"task": "pawsx", ')
    for path, message in ((tmp_path / "missing.json", "cannot read the job spec"),
                          (tmp_path / "broken.json", "is not valid JSON"),
                          (fixture_root, "cannot read the job spec")):
        code, _, err = cli(capsys, "sweep", "--spec", str(path), "--out", str(tmp_path / "out"))
        assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1
    (tmp_path / "list.json").write_text("[1, 2]")
    code, _, err = cli(capsys, "sweep", "--spec", str(tmp_path / "list.json"), "--out", str(tmp_path / "out"))
    assert code == 2 and "holds no job spec" in err
    code, _, err = cli(capsys, "sweep", "--task", "pawsx", "--out", str(tmp_path / "out"))
    assert code == 2 and err.startswith("error: --eval-langs is required (or start from a recorded job with --spec")


def test_cli_refuses_a_bad_spec_in_one_line(store, capsys, tiny_encoder, fixture_root):
    code, out, err = cli(capsys, "jobs", "--store", str(store.path), "submit",
                         *spec_flags(tiny_encoder, fixture_root, "--aggregations", "dlfa", "--fusion-layers", "3,7"))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("error: invalid job spec: fusion_layers: fusion layer(s) 7 out of range")
    code, _, err = cli(capsys, "jobs", "--store", str(store.path), "show", "../../etc")
    assert code == 2 and "is not a job id" in err
    assert store.list() == []


def test_cli_submit_wait_list_show_logs_delete(store, capsys, tiny_encoder, fixture_root):
    code, out, _ = cli(capsys, "jobs", "--store", str(store.path), "submit", *spec_flags(tiny_encoder, fixture_root),
                       "--aggregation", "last", "--wait")
    job_id = out.splitlines()[0]
    assert code == 0 and store.get(job_id).status == "completed"
    words = " ".join(out.split())
    assert "status completed" in words and "last-s1 de accuracy 50.00 [40.00, 60.00] 100" in words
    code, out, _ = cli(capsys, "jobs", "--store", str(store.path), "list", "--json")
    assert [job["id"] for job in json.loads(out)] == [job_id]
    code, out, _ = cli(capsys, "jobs", "--store", str(store.path), "list")
    assert job_id in out and "completed" in out
    code, out, _ = cli(capsys, "jobs", "--store", str(store.path), "show", job_id, "--json")
    shown = json.loads(out)
    assert shown["job"]["status"] == "completed" and len(shown["metrics"]) == 2
    assert shown["results"]["status"] == "completed"
    code, out, _ = cli(capsys, "jobs", "--store", str(store.path), "logs", job_id)
    assert "worker finished: completed" in out
    code, out, _ = cli(capsys, "jobs", "--store", str(store.path), "delete", job_id)
    assert code == 0 and out.startswith(f"deleted {job_id}") and store.list() == []


@pytest.mark.integration
def test_cli_cancel_resume_and_follow_logs(store, capsys, monkeypatch, tiny_encoder, fixture_root):
    monkeypatch.setenv("DLFA_FAKE_STEP_S", "0.05")
    code, out, _ = cli(capsys, "jobs", "--store", str(store.path), "submit",
                       *spec_flags(tiny_encoder, fixture_root, "--aggregation", "last", "--max-steps", "300"))
    job_id = out.strip()
    wait_for(store, job_id, lambda j: j.progress > 0)
    code, out, _ = cli(capsys, "jobs", "--store", str(store.path), "cancel", job_id, "--grace", "20")
    assert code == 0 and out.startswith(f"{job_id} cancelled  (resumable")
    monkeypatch.setenv("DLFA_FAKE_STEP_S", "0.0005")
    code, out, _ = cli(capsys, "jobs", "--store", str(store.path), "resume", job_id)
    assert out.strip() == f"{job_id} queued"
    code, out, _ = cli(capsys, "jobs", "--store", str(store.path), "logs", job_id, "--follow")
    assert code == 0 and out.count("worker finished") == 2 and out.rstrip().endswith("worker finished: completed")
    starts = (store.get(job_id).out_dir / "last-s1" / "starts.txt").read_text().split()
    assert starts[0] == "0" and int(starts[1]) > 0  # the second attempt went on from the checkpoint


def test_cli_import_records_the_reproduction_in_place(store, capsys):
    from dlfa.jobs.recorded import job_folders

    record = REPO_ROOT / "docs" / "reproduction"
    folders = job_folders(record / "select")  # the record's learning-rate and layer selections
    code, out, err = cli(capsys, "jobs", "--store", str(store.path), "import", str(record / "select"))
    assert code == 0 and len(out.splitlines()) == len(folders) >= 4 and f"imported {len(folders)} job(s)" in err
    assert {job.out_dir for job in store.list()} == set(folders)
    code, out, err = cli(capsys, "jobs", "--store", str(store.path), "import", str(folders[0]))
    assert code == 0 and "already in the store" in out and "imported 0 job(s)" in err
    code, out, err = cli(capsys, "jobs", "--store", str(store.path), "import", str(record / "layers"))
    assert code == 2 and err.startswith("error: ") and "no job folder here" in err and err.count("\n") == 1
