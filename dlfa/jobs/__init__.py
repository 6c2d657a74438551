"""Jobs: the job store (`store`: the SQLite table in `table`, one row a `records.Job`, jobs recorded elsewhere
in `recorded`), the launchers for a local process, torchrun and SLURM (`launch`), the code that runs a stored
job (`runner`) and the worker process on top (`worker`). The `train` / `sweep` / `jobs` commands: dlfa.cli.jobs.

    spec = JobSpec(task="pawsx", eval_languages=("de", "fr")).validate()
    job = launch.submit(spec)          # recorded in cache/jobs.sqlite, started when a slot is free
    launch.refresh()                   # the app's refresh: dead workers, overdue cancels, the queue
    JobStore().get(job.id).progress    # 0…1, with progress_text; results() (dlfa.results.JobResult), log_path
"""
from dlfa.engine.spec import JobSpec
from dlfa.jobs.records import Job
from dlfa.jobs.store import JobStore

__all__ = ["Job", "JobSpec", "JobStore"]
