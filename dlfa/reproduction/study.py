"""The intermediate-task study: does training on 0, 3 or 9 English intermediate tasks before the target task
change zero-shot transfer, per language (Phang et al. 2020, arXiv 2005.13013)?

`study_specs` builds one job per count with the same seeds and the same budget for every stage (so the target
stage trains identically in every job), and `find_study` finds such jobs among finished ones; `compare` turns
the jobs' results into per-language changes against the job without intermediate tasks, with 95% intervals:
- "paired-t": seeds shared by both jobs (≥ 2): Student-t interval of the mean per-seed difference;
- "welch-t": ≥ 2 seeds on each side but fewer than 2 shared: Welch's unpaired interval;
- "bootstrap-sum": one seed each: each run's 95% bootstrap interval (over test examples) is turned into
  distances below and above its value, and the change's interval adds them (lower = change − (below of the
  study run + above of the reference)). Both runs are scored on the same examples, whose errors are positively
  correlated, so this is wider than the true interval: conservative, and it ignores seed variance;
- "none": no interval can be given (a run without bootstrap interval), or the row is the reference itself.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from dlfa.errors import DlfaError
from dlfa.engine.spec import JobSpec
from dlfa.engine.metrics import MIN_ABOVE_MAJORITY, at_majority, mean_interval
from dlfa.results import COMPLETED

FINISHED = (COMPLETED, "complete")  # a finished run: the results contract's word, and that of schema-0 files

# Ordered by preference: Phang et al.'s most helpful kinds first (NLI, QA, paraphrase, sentiment), then analogues
# of their other tasks (CommonsenseQA, HellaSwag -> COPA, ANLI -> RTE, CCG tagging -> CoNLL NER) and CoLA.
_PREFERENCE = (
    "qnli", "boolq", "mrpc", "sst2", "commonsenseqa", "xcopa", "rte", "conll-ner", "cola",
    "wic", "cb", "sentiment-classroom", "pos-classroom",
)  # fmt: skip
INTERMEDIATE_PRESETS: dict[int, tuple[str, ...]] = {0: (), 3: _PREFERENCE[:3], 9: _PREFERENCE[:9]}
CI_KINDS = {
    "paired-t": "95% Student-t interval of the per-seed differences (paired over shared seeds)",
    "welch-t": "95% Welch interval (unpaired: the jobs share fewer than 2 seeds)",
    "bootstrap-sum": "single seed: the two runs' 95% bootstrap intervals added (conservative; seed variance "
                     "not included)",
    "none": "no interval",
}


def _source(source):
    from dlfa.data.registry import DataSource

    return source if isinstance(source, DataSource) else DataSource.resolve(source)


def available_intermediate_tasks(source=None, exclude: tuple[str, ...] = ()) -> list[str]:
    """The registry's intermediate tasks with English training data in `source`, in order of preference."""
    from dlfa.data.registry import available_languages, list_tasks

    source = _source(source)
    names = [info.name for info in list_tasks() if info.intermediate and info.name not in exclude]
    ordered = [n for n in _PREFERENCE if n in names] + [n for n in names if n not in _PREFERENCE]
    found = []
    for name in ordered:
        try:
            if "train" in available_languages(name, source).get("en", {}):
                found.append(name)
        except DlfaError:
            continue  # a task whose files are broken counts as missing here; training it would raise
    return found


def preset_for(count: int, source=None, exclude: tuple[str, ...] = ()) -> tuple[str, ...]:
    """`count` intermediate tasks available in `source`: the first available in order of preference, so the
    presets nest (the 3 are the first 3 of the 9) and equal INTERMEDIATE_PRESETS with the full data root."""
    if count < 0:
        raise DlfaError(f"the number of intermediate tasks must be ≥ 0, got {count}")
    if count == 0:
        return ()
    available = available_intermediate_tasks(source, exclude)
    if len(available) < count:
        raise DlfaError(
            f"{count} intermediate tasks asked for, but {_source(source)} has only {len(available)} with English "
            f"training data: {', '.join(available) or 'none'}"
        )
    return tuple(available[:count])


def stage_steps(base: JobSpec, source=None) -> int:
    """Optimizer steps of the target stage of `base`: max_steps, else its epochs over the training examples."""
    from dlfa.data.registry import available_languages
    from dlfa.engine.train import plan_stages

    if base.max_steps:
        return base.max_steps
    counts = available_languages(base.task, _source(source)).get(base.train_language, {})
    if "train" not in counts:
        raise DlfaError(f"task {base.task} has no {base.train_language!r} training data in {_source(source)}")
    n = min(counts["train"], base.max_train_examples or counts["train"])
    return plan_stages(replace(base, intermediate_tasks=()), {base.task: n})[-1].steps


def study_specs(base: JobSpec, counts=(0, 3, 9), source=None) -> dict[int, JobSpec]:
    """count -> a JobSpec training `count` intermediate tasks, then `base.task`. Every stage of every job gets the
    target stage's budget (`max_steps`, computed from `base.epochs` when unset) and the jobs share `base`'s seeds."""
    source = _source(source if source is not None else base.data_root)
    steps = stage_steps(base, source)
    return {
        count: replace(base, intermediate_tasks=preset_for(count, source, exclude=(base.task,)), max_steps=steps,
                       name=f"study: {base.task} +{count}")
        for count in counts
    }


def same_study(a: JobSpec, b: JobSpec) -> bool:
    """Whether two jobs differ only in their intermediate tasks (and names), as the jobs of one study do."""
    return replace(a, intermediate_tasks=(), name="") == replace(b, intermediate_tasks=(), name="")


def find_study(jobs: list, counts=(0, 3, 9)) -> dict[int, object]:
    """count -> job: the jobs of the most complete study among `jobs` (store Jobs, newest first), built on the
    newest 0-task job that has the most partners of the other counts; {} without a 0-task job."""
    specs = [(job, job.spec) for job in jobs]
    best: dict[int, object] = {}
    for base, base_spec in specs:
        if base_spec.intermediate_tasks:
            continue
        found = {0: base}
        for count in (c for c in counts if c):
            partner = next((job for job, spec in specs if len(spec.intermediate_tasks) == count
                            and same_study(base_spec, spec)), None)
            if partner:
                found[count] = partner
        if len(found) > len(best):
            best = found
    return best


# ----------------------------------------------------------------------------------------------------
# Comparing the jobs' results


def _per_seed(results: dict) -> dict[str, dict[int, dict]]:
    """language -> seed -> {"value", "ci_low", "ci_high"} from a job's complete runs (units of one seed averaged)."""
    grouped: dict[str, dict[int, list[dict]]] = {}
    for run in results.get("runs", []):
        if run.get("status") not in FINISHED:
            continue
        seed = run["spec"]["seeds"][0]
        for language, metric in run["metrics"].items():
            grouped.setdefault(language, {}).setdefault(seed, []).append(metric)
    return {
        language: {seed: {key: _mean([m[key] for m in metrics]) for key in ("value", "ci_low", "ci_high")}
                   for seed, metrics in seeds.items()}
        for language, seeds in grouped.items()
    }


def _mean(values: list) -> float | None:
    return None if any(v is None for v in values) else float(np.mean(values))


def _welch(a: list[float], b: list[float], confidence: float = 0.95) -> tuple[float, float]:
    from scipy import stats

    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    diff = float(np.mean(a) - np.mean(b))
    se = math.sqrt(va + vb)
    if se == 0:
        return diff, diff
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf((1 + confidence) / 2, df)) * se
    return diff - half, diff + half


def _change_interval(study: dict[int, dict], reference: dict[int, dict]) -> tuple[float | None, float | None, str]:
    """(low, high, ci_kind) of mean(study) − mean(reference); both map seed -> {"value", "ci_low", "ci_high"}."""
    shared = sorted(set(study) & set(reference))
    if len(shared) >= 2:
        _, low, high = mean_interval([study[s]["value"] - reference[s]["value"] for s in shared])
        return low, high, "paired-t"
    if len(study) >= 2 and len(reference) >= 2:
        low, high = _welch([r["value"] for r in study.values()], [r["value"] for r in reference.values()])
        return low, high, "welch-t"
    if len(study) == 1 and len(reference) == 1:
        (s,), (r,) = study.values(), reference.values()
        if None not in (s["ci_low"], s["ci_high"], r["ci_low"], r["ci_high"]):
            change = s["value"] - r["value"]
            below = (s["value"] - s["ci_low"]) + (r["ci_high"] - r["value"])
            above = (s["ci_high"] - s["value"]) + (r["value"] - r["ci_low"])
            return change - below, change + above, "bootstrap-sum"
    return None, None, "none"


def compare(results_by_count: dict[int, dict]) -> list[dict]:
    """Rows per (language, count) from job results.json dicts (count -> results with per-seed "runs").

    Each row: language, count, intermediate_tasks, metric, value (mean over seeds), seeds (how many),
    reference (the count compared against: 0, else the smallest), change (value − reference's value), ci_low,
    ci_high (95% interval of the change) and ci_kind (see CI_KINDS). Languages in first-seen order, counts
    ascending; a language missing from the reference job gets no change.
    """
    if not results_by_count:
        return []
    reference = 0 if 0 in results_by_count else min(results_by_count)
    per_count = {count: _per_seed(results) for count, results in results_by_count.items()}
    languages = list(dict.fromkeys(language for count in sorted(per_count) for language in per_count[count]))
    rows = []
    for language in languages:
        base = per_count[reference].get(language)
        for count in sorted(per_count):
            seeds = per_count[count].get(language)
            if not seeds:
                continue
            results = results_by_count[count]
            metric = next(r["metrics"][language]["metric"] for r in results["runs"]
                          if r.get("status") in FINISHED and language in r["metrics"])
            value = float(np.mean([s["value"] for s in seeds.values()]))
            row = {"language": language, "count": count,
                   "intermediate_tasks": list(results.get("spec", {}).get("intermediate_tasks", [])),
                   "metric": metric, "value": value, "seeds": len(seeds), "reference": reference,
                   "change": None, "ci_low": None, "ci_high": None, "ci_kind": "none"}
            if base is not None:
                row["change"] = value - float(np.mean([s["value"] for s in base.values()]))
                if count != reference:
                    row["ci_low"], row["ci_high"], row["ci_kind"] = _change_interval(seeds, base)
            rows.append(row)
    return rows


def summarize(results_by_count: dict[int, dict]) -> list[dict]:
    """One row per count (ascending) for the mean over the target languages every job evaluated.

    Each row: count, intermediate_tasks, seeds, value (mean over seeds of the per-seed language mean),
    english_dev (mean English dev score of the target task, None when unknown), majority (the majority-class
    score on the same test sets, None when unknown), at_majority (value within MIN_ABOVE_MAJORITY of it: the
    target task was not learned in a way that transfers) and changes: a list of
    {"against", "change", "ci_low", "ci_high", "ci_kind"} against the reference count (0, else the smallest) and
    against the previous count. Intervals are those of `compare` computed on the per-seed language means, so a
    single seed on either side gets none: the spread over languages is not an uncertainty of the mean.
    """
    per_count = {count: _per_seed(results) for count, results in sorted(results_by_count.items())}
    shared = set.intersection(*(set(languages) for languages in per_count.values())) if per_count else set()
    languages = [language for language in next(iter(per_count.values()), {}) if language in shared]
    if not languages:
        return []
    means = {count: {seed: {"value": float(np.mean([per_language[lang][seed]["value"] for lang in languages])),
                            "ci_low": None, "ci_high": None}
                     for seed in set.intersection(*(set(per_language[lang]) for lang in languages))}
             for count, per_language in per_count.items()}
    values = {count: float(np.mean([entry["value"] for entry in by_seed.values()])) for count, by_seed in means.items()}
    counts = list(means)
    rows = []
    for previous, count in zip([None, *counts], counts):
        changes = []
        for fewer in dict.fromkeys((counts[0], previous)):
            if fewer is None or fewer == count:
                continue
            low, high, kind = _change_interval(means[count], means[fewer])
            changes.append({"against": fewer, "ci_low": low, "ci_high": high, "ci_kind": kind,
                            "change": values[count] - values[fewer]})
        results = results_by_count[count]
        complete = [run for run in results["runs"] if run.get("status") in FINISHED]
        devs = [run["dev_score"] for run in complete if run.get("dev_score") is not None]
        majority = [complete[0]["metrics"][lang].get("majority") for lang in languages]  # the same test sets
        value = values[count]
        majority_mean = None if None in majority else float(np.mean(majority))
        rows.append({"count": count, "intermediate_tasks": list(results.get("spec", {}).get("intermediate_tasks", [])),
                     "seeds": len(means[count]), "languages": languages, "value": value,
                     "english_dev": float(np.mean(devs)) if devs else None, "majority": majority_mean,
                     "at_majority": majority_mean is not None and at_majority(value, majority_mean),
                     "changes": changes})
    return rows


def change_in_words(count: int, change: dict) -> str:
    """What the change of the language mean from change["against"] to `count` tasks says, e.g.
    '9 tasks transfer worse than 3: -7.4 [-9.8, -4.9] points (paired-t)'."""
    fewer, value, low, high = change["against"], change["change"], change["ci_low"], change["ci_high"]
    if low is None or high is None:
        return f"{count} vs {fewer} tasks: {value:+.1f} points (no interval: one side has a single seed)"
    if low > 0:
        answer = f"{count} tasks transfer better than {fewer}"
    elif high < 0:
        answer = f"{count} tasks transfer worse than {fewer}"
    else:
        answer = f"no clear difference between {count} and {fewer} tasks"
    return f"{answer}: {value:+.1f} [{low:+.1f}, {high:+.1f}] points ({change['ci_kind']})"


def not_learned_note(row: dict) -> str:
    """'' or, for a `summarize` row at the majority class, a note saying that its target task was not learned."""
    if not row.get("at_majority"):
        return ""
    return (f"; with {row['count']} tasks the target mean ({row['value']:.1f}) stays within {MIN_ABOVE_MAJORITY:.0f} "
            f"point of the majority class ({row['majority']:.1f}): the target task was not learned")
