"""Jobs that ran outside the store (the reproduction record in docs/reproduction/, run folders copied from a
cluster), found by their results.json and read in place."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dlfa.engine.spec import JobSpec
from dlfa.errors import ConfigError, DataError
from dlfa.jobs.records import inside
from dlfa.results import RESULTS_FILE, read_job_results


@dataclass(frozen=True)
class RecordedJob:
    """A job folder's spec and how many of the spec's runs finished."""

    folder: Path
    spec: JobSpec
    finished: int
    total: int

    @property
    def complete(self) -> bool:
        return self.finished == self.total > 0

    @property
    def stamp(self) -> float:
        """When its results were written (the time the store records for it)."""
        return (self.folder / RESULTS_FILE).stat().st_mtime


def job_folders(root: Path) -> list[Path]:
    """The job folders under `root`, itself included: folders holding a results.json that lie inside no other
    such folder (a job's unit folders, each with its own results.json, are part of the job)."""
    found: list[Path] = []
    for path in sorted(root.rglob(RESULTS_FILE), key=lambda p: len(p.parts)):
        if not any(inside(path.parent, outer) for outer in found):
            found.append(path.parent)
    return sorted(found)


def read_recorded_job(folder: Path) -> RecordedJob:
    """The job whose results.json is in `folder`; DataError naming the file when it is missing or is not a
    job's results."""
    path = folder / RESULTS_FILE
    if not path.is_file():
        raise DataError(f"no {RESULTS_FILE}: not a job folder", path=str(folder))
    try:
        results = read_job_results(path)
        spec = JobSpec.from_dict(results.spec)
    except (DataError, ConfigError) as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        raise DataError(f"not a job's results (a JSON object with 'spec' and 'runs'): {reason}; nothing was imported",
                        path=str(path)) from exc
    return RecordedJob(folder, spec, results.finished_count, len(spec.units()))
