"""How the report writes its numbers: markdown tables, scores, a run's name and convergence point, and a job's
budget in words."""
from __future__ import annotations

from dlfa.curves import convergence_text
from dlfa.data.registry import get_task
from dlfa.engine.spec import JobSpec
from dlfa.results import COMPLETED, RunResult

# The appendix's word for a job's status, as the report has always printed it (dlfa.results says "completed")
STATUS_WORDS = {COMPLETED: "complete"}
TASK_TITLES = {"udpos": "POS tagging (UD-POS)", "panx": "NER (PAN-X / WikiANN)", "xnli": "XNLI", "pawsx": "PAWS-X"}
SIZE_NOTES = {
    "udpos": "UD English-EWT train/dev, English Parallel UD test; training capped by the plan (see the budgets)",
    "panx": "XTREME PAN-X English train/dev; no English test (XTREME removed the test labels: the other languages' "
            "dev sets are their test); training capped by the plan",
    "xnli": "the XNLI dev (2,490) and test (5,010, labels carried row-wise from a labeled copy) items pooled and "
            "split by item with a recorded seed: no test item's translation is trained on",
    "pawsx": "only the English dev set (2,000 pairs) is labeled here: no more labeled English PAWS-X data on this "
             "machine (XTREME's 49,401 training pairs are not staged), so train, dev and test are cut from it",
}


def run_name(run: RunResult) -> str:
    return JobSpec.from_dict(run.spec).unit_name()


def convergence(run: RunResult) -> str:
    """How the run's training ended (dlfa.curves.convergence_text), e.g. 'best dev at step 120 of 180, stopped by
    patience'."""
    return convergence_text(run.extra)


AGGREGATION_TITLES = {"dlfa": "DLFA"}  # how the report's tables name an aggregation, where not by its own name


def budget(spec: dict, sizes: dict | None, compared: list[dict] | None = None) -> str:
    """e.g. '4,000 of 12,544 English training examples, until English dev stops improving (...), batch 32, ...'.
    `compared`: the specs of the jobs a comparison rests on (one per aggregation), whose learning rates are each
    named where they differ."""
    available = f"{sizes['train']:,}" if sizes else "(size not recorded)"
    train = (f"{spec['max_train_examples']:,} of {available} English training examples" if spec["max_train_examples"]
             else f"all {available} English training examples" if sizes else "all English training examples "
             "(size not recorded)")
    if spec.get("patience"):
        steps = (f"until English dev stops improving (patience {spec['patience']} evaluations, at most "
                 f"{spec['max_epochs']:g} epochs, the best-dev state evaluated)")
    else:
        steps = f"{spec['max_steps']} steps" if spec["max_steps"] else f"{spec['epochs']:g} epoch(s)"
    rates = spec.get("learning_rates") or [spec["learning_rate"]]  # a selection grid's rates, or the one rate
    if spec.get("probe"):
        rate = ""
    elif len({job["learning_rate"] for job in compared or []}) > 1:
        rate = ", learning rates " + ", ".join(
            f"{job['learning_rate']:g} ({', '.join(AGGREGATION_TITLES.get(a, a) for a in job['aggregations'])})"
            for job in compared)
    else:
        rate = f", learning rate{'s' * (len(rates) > 1)} {', '.join(f'{r:g}' for r in rates)}"
    pools = spec.get("pooling") and get_task(spec["task"]).kind not in ("token", "qa")  # one vector per example
    pooling = f", {spec['pooling']} pooling" if pools else ""
    evaluate = f"at most {spec['max_eval_examples']}" if spec["max_eval_examples"] else "all"
    return f"{train}, {steps}, batch {spec['batch_size']}{rate}{pooling}, {evaluate} test examples per language"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value) -> str:
    return "–" if value is None else str(value)


def fmt_score(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"
