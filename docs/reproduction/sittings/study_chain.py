"""Session wrapper for the pinned study code (run with cwd /work/study): `python study_chain.py COUNT SEED -- ARGS` =
`python -m dlfa ARGS` (a `reproduce run --parts study ...`) running ONE CHAIN of the study instead of its jobs in
order: the arm of COUNT intermediate tasks for seed SEED (none for 0), then that seed's units of the arm's UD-POS and
XNLI target jobs, then its Tatoeba job. A sitting machine keeps an arm's saved encoders only while it lives, and a
chain needs them from the arm's run to its last target: the whole chain runs in one sitting.

Each job runs with its spec restricted to SEED; its results.json is then written for the design's whole job (the
finished runs of every seed found in its unit folders, which `reproduce run` restores from the record), "completed"
only when every seed's runs are there ("stopped" until then), so that saving the record never replaces another
seed's runs and the plain `reproduce run --parts study` later sees which runs are left. An arm run that the record
holds but whose saved encoder is not on this machine (another sitting's) is trained again when a job of its chain
is still to run (its results.json moved aside as results.without-encoder.json). Two streams may run chains
of two different arms in one output root (their jobs differ; timings.json is added to under a lock). No file
under dlfa/ is touched: the runs keep the pinned code version. Tested by test_study_chain.py (tiny encoder)."""
import fcntl
import runpy
import sys
import time
from pathlib import Path

sys.path.insert(0, "")
import dlfa.cli.reproduce as reproduce_cli  # noqa: E402
from dlfa.engine.job import summarize  # noqa: E402
from dlfa.engine.spec import JobSpec  # noqa: E402
from dlfa.errors import DlfaError  # noqa: E402
from dlfa.io import write_json  # noqa: E402
from dlfa.jobs.runner import spec_runner  # noqa: E402
from dlfa.model.modeling import CONFIG_FILE  # noqa: E402
from dlfa.reproduction.plan import read_json, read_results  # noqa: E402
from dlfa.reproduction.record import Timings  # noqa: E402
from dlfa.reproduction.study_design import DESIGN_FILE, PREFIX  # noqa: E402
from dlfa.results import COMPLETED, RESULTS_FILE, STOPPED, read_run_results, write_results  # noqa: E402

COUNT, SEED = 0, 1  # the chain: set from the command line


def chain_jobs(design, out_root: Path) -> list[tuple[str, dict, dict]]:
    """(key, the design's fields, the fields restricted to SEED) of the chain's jobs, in running order."""
    jobs = dict(design.job_fields(out_root))
    keys = ([f"{PREFIX}arm-{COUNT}"] if COUNT else []) + [f"{PREFIX}{target.task}-arm-{COUNT}"
                                                         for target in design.targets]
    missing = [key for key in keys if key not in jobs]
    assert not missing and SEED in design.seeds, f"not jobs of the study: {missing} (seeds {design.seeds})"
    keys += [key for key in (f"{PREFIX}tatoeba-arm-{COUNT}-s{SEED}",) if key in jobs]  # arm 0: seed 1's only
    return [(key, jobs[key], {**jobs[key], "seeds": [SEED]}) for key in keys]


def finished_runs(job_dir: Path, spec: JobSpec) -> list:
    runs = []
    for unit in spec.units():
        try:
            run = read_run_results(job_dir / unit.unit_name() / RESULTS_FILE)
        except (DlfaError, OSError):
            continue
        if run.completed:
            runs.append(run)
    return runs


def done(key: str, job_dir: Path, spec: JobSpec) -> bool:
    if key.startswith(f"{PREFIX}tatoeba-"):  # one measurement of one seed's encoder, no unit folders
        return getattr(read_results(job_dir / RESULTS_FILE), "status", None) == COMPLETED
    return len(finished_runs(job_dir, spec)) == len(spec.units())


def drop_arm_run_without_encoder(arm_dir: Path, spec: JobSpec, log) -> None:
    """Move aside the finished arm run of SEED when its saved encoder is not here, so that it trains again."""
    unit_dir = arm_dir / spec.units()[0].unit_name()
    for run in finished_runs(arm_dir, spec):
        if not (unit_dir / (run.model_dir or "model") / CONFIG_FILE).is_file():
            log(f"{arm_dir.name} s{SEED}: finished in the record, but its encoder is not on this machine: trained again")
            (unit_dir / RESULTS_FILE).rename(unit_dir / "results.without-encoder.json")


def run_chain(config, out_root: Path, parts, callbacks=(), log=print) -> str:
    """The chain, in place of dlfa.reproduction.runner.run_plan: COMPLETED, or STOPPED when a callback asked."""
    assert tuple(parts) == ("study",), "a chain runs the study part alone: --parts study"
    design = config.study_design(out_root).check()
    if read_json(out_root / DESIGN_FILE) != design.to_dict():
        write_json(out_root / DESIGN_FILE, design.to_dict())
    chain = chain_jobs(design, out_root)
    if COUNT and not all(done(key, out_root / key, JobSpec.from_dict(fields)) for key, _, fields in chain[1:]):
        drop_arm_run_without_encoder(out_root / chain[0][0], JobSpec.from_dict(chain[0][2]), log)
    for key, fields, restricted in chain:
        full, spec, job_dir = JobSpec.from_dict(fields), JobSpec.from_dict(restricted), out_root / key
        retrieval = key.startswith(f"{PREFIX}tatoeba-")
        if done(key, job_dir, spec):
            continue
        log(f"{key}: seed {SEED}'s {len(spec.units())} run(s) (chain arm-{COUNT} s{SEED})")
        started = time.perf_counter()
        spec_runner(spec)(spec.validate(), job_dir, callbacks)
        seconds = time.perf_counter() - started
        finished = done(key, job_dir, spec)
        if retrieval:
            status = read_results(job_dir / RESULTS_FILE).status
        else:
            runs = finished_runs(job_dir, full)
            status = COMPLETED if len(runs) == len(full.units()) else STOPPED
            write_results(job_dir, summarize(full, runs, status, seconds))
        with open(out_root / "timings.lock", "w") as lock:  # the other stream's chain adds to the same file
            fcntl.flock(lock, fcntl.LOCK_EX)
            Timings(out_root).add(key, seconds, status == COMPLETED)
        if not finished:
            return STOPPED
    return COMPLETED


if __name__ == "__main__":
    assert reproduce_cli.__file__.startswith("/work/study/"), reproduce_cli.__file__
    separator = sys.argv.index("--")
    COUNT, SEED = (int(value) for value in sys.argv[1:separator])
    reproduce_cli.run_plan = run_chain
    sys.argv = ["dlfa", *sys.argv[separator + 1:]]
    runpy.run_module("dlfa", run_name="__main__", alter_sys=True)
