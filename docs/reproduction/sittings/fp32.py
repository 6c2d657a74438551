"""Session wrapper for the pinned code (run with cwd /work/repro): `python fp32.py ARGS` = `python -m dlfa ARGS` with
two rules of main's plan that the pinned checkout predates, applied without touching a file under dlfa/ (so the
runs keep the pinned code version):
- precision "auto" resolves to fp32, as on the CPUs (without native bf16) the record was computed on;
- a mean-pooled setting is fine-tuned at its task's CLS setting's choices (main: plan.choices_setting)."""
import runpy
import sys

sys.path.insert(0, "")
import dlfa.engine.runtime as runtime  # noqa: E402
import dlfa.reproduction.plan as plan  # noqa: E402

assert plan.__file__.startswith("/work/repro/"), plan.__file__
runtime.cpu_has_bf16 = lambda: False
chosen_settings = plan.chosen_settings
plan.chosen_settings = lambda out_root, setting: chosen_settings(out_root, setting.replace("-mean", "-cls"))
sys.argv = ["dlfa", *sys.argv[1:]]
runpy.run_module("dlfa", run_name="__main__", alter_sys=True)
