"""The record of the reproduction: the small files of the plan's output root (every job's results.json, the
layer analyses, the sizes, timings.json), kept in `reproduction/` beside the report so that the report regenerates
on a fresh clone and a sitting there continues where the last one stopped; and the code versions and precisions
of its runs, which are never mixed."""
from __future__ import annotations

from pathlib import Path

from dlfa.engine.spec import JobSpec
from dlfa.errors import ConfigError
from dlfa.io import locked, write_bytes, write_json
from dlfa.reproduction.plan import SMALL_FILES, TIMINGS_FILE, read_json, read_results
from dlfa.reproduction.study_design import DESIGN_FILE, StudyDesign
from dlfa.results import COMPLETED, RESULTS_FILE, JobResult, RunResult, write_results


def complete_runs(results: JobResult | None) -> int:
    """How many finished runs a job holds (JobResult.finished_count; 0 without results)."""
    return results.finished_count if results else 0


def save_record(out_root: Path, record: Path) -> None:
    """Copy the small result files of out_root into the record, as they are; a job's file only when it holds at
    least as many finished runs as the recorded one (an older output root never overwrites newer results)."""
    for name in SMALL_FILES:
        if (out_root / name).is_file():
            write_bytes(record / name, (out_root / name).read_bytes())
    for path in out_root.glob(f"*/*/{RESULTS_FILE}"):  # <part>/<job>/results.json
        finished, target = complete_runs(read_results(path)), record / path.relative_to(out_root)
        if finished >= complete_runs(read_results(target)) and finished > 0:
            write_bytes(target, path.read_bytes())


def arms_to_retrain(record: Path) -> set[str]:
    """The study's arm jobs (`study/arm-<n>`) whose trained encoders a job of the study's design that has not
    finished in the record starts from. Saved models are not part of the record, so an output root restored from
    it (another machine) must train these arms again before those jobs can run."""
    saved = read_json(record / DESIGN_FILE)
    if saved is None:
        return set()
    arms = set()
    for key, fields in StudyDesign.from_dict(saved).job_fields(record):
        done = read_results(record / key / RESULTS_FILE)
        if fields.get("init_from") and (done is None or done.status != COMPLETED):
            arms.add(Path(fields["init_from"]).relative_to(record).parts[:2])
    return {"/".join(arm) for arm in arms}


def restore_record(record: Path, out_root: Path) -> None:
    """Put the record's files, and each finished run's results.json in its unit folder, into an output root
    that lacks them, so that running the plan skips what the record already holds; but not the study's arms
    that are still to start a job (arms_to_retrain): those train again, and their encoders are saved."""
    for name in SMALL_FILES:
        if (record / name).is_file() and not (out_root / name).is_file():
            write_bytes(out_root / name, (record / name).read_bytes())
    retrain = arms_to_retrain(record)
    for path in record.glob(f"*/*/{RESULTS_FILE}"):
        if path.parent.relative_to(record).as_posix() in retrain:
            continue
        job_dir = out_root / path.parent.relative_to(record)
        results = read_results(path)
        if complete_runs(read_results(job_dir / RESULTS_FILE)) >= complete_runs(results):
            continue
        write_bytes(job_dir / RESULTS_FILE, path.read_bytes())
        for run in results.completed_runs:
            unit_dir = job_dir / JobSpec.from_dict(run.spec).unit_name()
            if not (unit_dir / RESULTS_FILE).is_file():
                write_results(unit_dir, run)


def code_version_key(run: RunResult) -> str:
    """A run's code version as a short string: the hash of the sources that can change a number, or "not
    recorded" for runs of code that did not record it. Runs of two commits that differ only outside those
    sources (docs, tests, the app's views) share it, so such commits between sittings do not split a record."""
    version = run.code_version
    return str(version.get("sources_sha256"))[:12] if version else "not recorded"


STUDY_PART = "study"  # the intermediate-task study: an experiment of its own, which may run on later code
PROVISIONAL = ("these runs predate code versions in results.json, and they were made before DLFA's batch norm saw "
               "the whole batch on the CPU, where it saw slices of a few rows, which biased DLFA alone, and before "
               "fine-tuning trained to convergence: read them as provisional until a rerun of the plan under the "
               "current code replaces them")  # what a record without code versions is, in the report and the app


RECORD_PARTS = {"probe": "layer sweeps (probe)", "select": "learning-rate and layer choices",
                "finetune": "fine-tuning over seeds", STUDY_PART: "the English intermediate-task study"}


def record_contents(root: Path) -> dict[str, int]:
    """part -> the complete runs the record under root holds, for each part of RECORD_PARTS (0: not run yet)."""
    counts = dict.fromkeys(RECORD_PARTS, 0)
    for path in root.glob(f"*/*/{RESULTS_FILE}"):
        if path.parent.parent.name in counts:
            counts[path.parent.parent.name] += complete_runs(read_results(path))
    return counts


def _complete_runs_by_job(root: Path, study: bool):
    """(job `<part>/<job>`, its complete runs) under root: the plan's comparison parts, or (study) the
    intermediate-task study's jobs."""
    for path in sorted(root.glob(f"*/*/{RESULTS_FILE}")):
        if (path.parent.parent.name == STUDY_PART) == study:
            yield path.parent.relative_to(root).as_posix(), read_results(path).completed_runs


def precision_key(run: RunResult) -> str:
    """The precision a run computed in ("fp32", "bf16"), or "not recorded"."""
    return str(run.extra.get("precision") or "not recorded")


def _jobs_by(root: Path, study: bool, key) -> dict[str, list[str]]:
    """key(run) -> the jobs under root that hold complete runs with it (the comparison parts, or the study)."""
    found: dict[str, list[str]] = {}
    for job, runs in _complete_runs_by_job(root, study):
        for value in sorted({key(run) for run in runs}):
            found.setdefault(value, []).append(job)
    return found


def code_versions(root: Path, study: bool = False) -> dict[str, list[str]]:
    """code version -> the jobs under root that hold complete runs of it (the comparison parts, or the study)."""
    return _jobs_by(root, study, code_version_key)


def precisions(root: Path, study: bool = False) -> dict[str, list[str]]:
    """precision -> the jobs under root that hold complete runs computed in it."""
    return _jobs_by(root, study, precision_key)


def provisional(root: Path, study: bool = False) -> bool:
    """Whether the comparison runs (or the study's) under root predate code versions (PROVISIONAL says what that
    means)."""
    return list(code_versions(root, study)) == ["not recorded"]


def git_commits(root: Path, study: bool = False) -> list[str]:
    """The git commits (10 characters, "+changes" when dlfa/ differed from it) the complete runs were made
    from (the comparison parts, or the study), in order; commits are not recorded without git."""
    commits = set()
    for _, runs in _complete_runs_by_job(root, study):
        for version in (run.code_version or {} for run in runs):
            if version.get("git_commit"):
                commits.add(version["git_commit"][:10] + ("+changes" if version.get("git_dirty") else ""))
    return sorted(commits)


def refuse_mixed_runs(root: Path) -> None:
    """ConfigError when the runs of the plan's comparison parts under root come from more than one code
    version or precision, or those of the study do: their numbers must not be compared (an older record is
    removed before the plan is rerun with new code; a sitting keeps the record's precision). The study is one
    experiment of its own and may have a version and a precision of its own."""
    for study in (False, True):
        where = " in the study" if study else ""
        versions, computed_in = code_versions(root, study), precisions(root, study)
        if len(versions) > 1:
            listed = "; ".join(f"{key}: {', '.join(jobs)}" for key, jobs in versions.items())
            raise ConfigError(f"{root} mixes runs of {len(versions)} code versions{where} ({listed}): keep the runs "
                              "of one version only (move the older record away, e.g. `git rm -r` it, and rerun its "
                              "jobs)")
        if len(computed_in) > 1:
            listed = "; ".join(f"{key}: {', '.join(jobs)}" for key, jobs in computed_in.items())
            raise ConfigError(f"{root} mixes runs of {len(computed_in)} precisions{where} ({listed}): rerun the "
                              "jobs of the other precision with the record's `--precision`")


class Timings:
    """Seconds each job of the plan took, added up over sittings, in out_root/timings.json. Several processes
    may share one record (`reproduce run --tasks ...` twice at once): each addition is made to the file as it is
    then, under a lock, so none is lost."""

    def __init__(self, out_root: Path):
        self.path = out_root / TIMINGS_FILE

    def add(self, job: str, seconds: float, complete: bool) -> None:
        with locked(self.path):
            timings = read_json(self.path) or {}
            entry = timings.setdefault(job, {"seconds": 0.0, "sittings": 0})
            entry["seconds"] += seconds
            entry["sittings"] += 1
            entry["complete"] = complete
            write_json(self.path, timings)
