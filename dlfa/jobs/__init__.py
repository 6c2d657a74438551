"""Jobs: the JobSpec (`spec`), the SQLite job store (`store`), the worker process (`worker`), the launchers
for a local process, torchrun and SLURM (`launch`) and the `train` / `sweep` / `jobs` commands (`cli`).

    spec = JobSpec(task="pawsx", eval_languages=("de", "fr")).validate()
    job = launch.submit(spec)          # recorded in cache/jobs.sqlite, started when a slot is free
    launch.refresh()                   # the app's refresh: dead workers, overdue cancels, the queue
    JobStore().get(job.id).progress    # 0…1, with progress_text; metrics(), results(), log_path()
"""
from dlfa.engine.spec import JobSpec
from dlfa.jobs.store import Job, JobStore

__all__ = ["Job", "JobSpec", "JobStore"]
