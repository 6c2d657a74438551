"""Rules of main's plan that the pinned checkout (29d6c7f) predates, applied to its modules in the sitting's
processes without touching a file under dlfa/ (so the runs keep the pinned code version). `apply()` before use:
- precision "auto" resolves to fp32, as on the CPUs (without native bf16) the record was computed on;
- a mean-pooled setting is fine-tuned at its task's CLS setting's choices (main: plan.choices_setting);
- choices are made on English dev alone (main: choices.choose since 4 Dec 2026): the pinned `choose` passed over
  runs whose target mean stays at the majority class, so test languages could decide a tie;
- with SITTING_FIRST_POOLING_ONLY set (a `--parts select` step), only a task's first pooling is planned: main's
  plan makes its choices on that setting alone (plan.choices_setting), where the pinned plan had a selection for
  each pooling;
- with SITTING_POOLINGS set (comma-separated, e.g. `mean`), a pooled task plans only those poolings: two streams
  split one task's fine-tuning (PAWS-X CLS and mean pooling) between two out roots;
- the report's figures are rendered by main's timed renderer (dlfa/png_render.py since 5 Dec 2026's sixth sitting:
  kaleido once waited 40 minutes on a Chromium that had gone); presentation only, the numbers are untouched."""
import dataclasses
import importlib.util
import os
import sys

import dlfa.charts as charts
import dlfa.engine.runtime as runtime
import dlfa.reproduction.plan as plan
from dlfa.errors import ConfigError


def choose_on_english_dev(runs, aggregation):
    """main's dlfa.reproduction.choices.choose: the best English dev score; ties to the smaller rate, then the
    lower fusion layer."""
    candidates = [r for r in runs if r.completed and r.aggregation == aggregation and r.dev_score is not None]
    if not candidates:
        raise ConfigError(f"no finished {aggregation} run with an English dev score to choose from")
    return min(candidates, key=lambda r: (-r.dev_score, r.spec["learning_rate"], r.fusion_layer or 0))


def apply() -> None:
    assert plan.__file__.startswith("/work/repro/"), plan.__file__
    runtime.cpu_has_bf16 = lambda: False
    charts.figure_png = main_timed_renderer().figure_png
    chosen_settings = plan.chosen_settings
    plan.chosen_settings = lambda out_root, setting: chosen_settings(out_root, setting.replace("-mean", "-cls"))
    plan.choose = choose_on_english_dev
    if os.environ.get("SITTING_FIRST_POOLING_ONLY"):
        for task, task_plan in list(plan.TASK_PLANS.items()):
            plan.TASK_PLANS[task] = dataclasses.replace(task_plan, poolings=task_plan.poolings[:1])
    only = os.environ.get("SITTING_POOLINGS")
    if only:
        for task, task_plan in list(plan.TASK_PLANS.items()):
            if task_plan.poolings != (None,):
                kept = tuple(p for p in task_plan.poolings if p in only.split(","))
                assert kept, f"SITTING_POOLINGS={only}: none of {task}'s poolings {task_plan.poolings}"
                plan.TASK_PLANS[task] = dataclasses.replace(task_plan, poolings=kept)


MAIN = "/work/main"


def main_timed_renderer():
    """main's dlfa/png_render.py, loaded by path; its child runs main's module (the pinned dlfa has none)."""
    spec = importlib.util.spec_from_file_location("main_png_render", f"{MAIN}/dlfa/png_render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.RENDERER_COMMAND = [sys.executable, "-c", f"import sys; sys.path.insert(0, {MAIN!r}); "
                               "from dlfa.png_render import main; sys.exit(main())"]
    return module
