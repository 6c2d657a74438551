"""Session wrapper for the pinned code (run with cwd /work/repro): `python fp32.py ARGS` = `python -m dlfa ARGS` with
the rules of main's plan that the pinned checkout predates (pinned_rules.py), applied without touching a file under
dlfa/ (so the runs keep the pinned code version)."""
import runpy
import sys

sys.path.insert(0, "")
sys.path.insert(1, "/work/scratch")
import pinned_rules  # noqa: E402

pinned_rules.apply()
sys.argv = ["dlfa", *sys.argv[1:]]
runpy.run_module("dlfa", run_name="__main__", alter_sys=True)
