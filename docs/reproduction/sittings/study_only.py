"""Session wrapper for the pinned study code (run with cwd /work/study): `python study_only.py KEY... -- ARGS` =
`python -m dlfa ARGS` with the study's jobs restricted to the KEYs (study/udpos-arm-0, ...), in the order given,
without touching a file under dlfa/ (the runs keep the pinned code version). A fresh sitting machine has none of
the arms' saved encoders, so it runs the jobs that need none: arm 0's targets (the base encoder), the controls
(which train their own intermediate stage) and arm 0's Tatoeba job."""
import runpy
import sys

sys.path.insert(0, "")
import dlfa.reproduction.study_design as study_design  # noqa: E402

assert study_design.__file__.startswith("/work/study/"), study_design.__file__
separator = sys.argv.index("--")
keys, args = sys.argv[1:separator], sys.argv[separator + 1:]
all_job_fields = study_design.StudyDesign.job_fields


def only_these_jobs(design, root):
    jobs = dict(all_job_fields(design, root))
    unknown = [key for key in keys if key not in jobs]
    assert not unknown, f"not jobs of the study: {unknown}"
    return [(key, jobs[key]) for key in keys]


study_design.StudyDesign.job_fields = only_these_jobs
sys.argv = ["dlfa", *args]
runpy.run_module("dlfa", run_name="__main__", alter_sys=True)
