"""What the data source in use offers: the tasks it can train (and why not the others), their languages with
the readable labels and family order the pages show, and the intermediate tasks and presets of the study."""
from __future__ import annotations

from dlfa.app import cache
from dlfa.app.session import resolve_source, source_key
from dlfa.errors import DlfaError


def task_infos() -> list:
    from dlfa.data.registry import list_tasks

    return list_tasks()


def task_kind(task: str) -> str:
    from dlfa.data.registry import get_task

    return get_task(task).kind


def task_metric(task: str) -> str:
    """The task's metric ("accuracy", "f1", ...), as its English dev score is measured."""
    from dlfa.data.registry import get_task

    return get_task(task).metric


def task_languages_now(task: str, data_root: str | None) -> dict[str, dict[str, int]]:
    """language -> split -> count of the languages whose files read."""
    return cache.language_scan(task, source_key(data_root)).available


def broken_languages(task: str, data_root: str | None) -> dict[str, str]:
    """language -> why its files cannot be read (that language alone is disabled)."""
    return cache.language_scan(task, source_key(data_root)).broken


def why_not_runnable(task, data_root: str | None) -> str:
    """'' when the source can train `task` (a TaskInfo) as a target task (English training data, except for a
    retrieval task, and at least one other language with test data), else the reason, e.g. 'no English training data in the classroom pack …'.
    The hub is not probed (counting loads every split): its target tasks count as runnable."""
    try:
        source = resolve_source(data_root)
        if source.kind == "hub":
            return "an English-only task (used as an intermediate task)" if task.intermediate else ""
        languages = task_languages_now(task.name, data_root)
    except DlfaError as exc:
        return str(exc)
    where = source.describe()
    if "train" not in languages.get("en", {}) and task.kind != "retrieval":  # retrieval trains nothing
        return f"no English training data in {where}"
    if not any("test" in splits for code, splits in languages.items() if code != "en"):
        return ("an English-only task (used as an intermediate task)" if task.intermediate
                else f"no target language with test data in {where}")
    return ""


def target_tasks(data_root: str | None) -> tuple[list, dict[str, str]]:
    """(the TaskInfos the source can train and evaluate as they stand, {other task: why not})."""
    runnable, unavailable = [], {}
    for task in task_infos():
        reason = why_not_runnable(task, data_root)
        if reason:
            unavailable[task.name] = reason
        else:
            runnable.append(task)
    return runnable, unavailable


def language_name(code: str) -> str:
    from dlfa.languages import LANGUAGE_NAMES

    return LANGUAGE_NAMES.get(code, code)


def family_of(code: str) -> str:
    from dlfa.languages import family_of as language_family

    return language_family(code)


def language_label(code: str, with_family: bool = True) -> str:
    """'German (de) · Germanic' (the family left out when unknown or not asked)."""
    from dlfa.languages import OTHER
    from dlfa.languages import language_label as name_and_code

    family = family_of(code) if with_family else OTHER
    return f"{name_and_code(code)} · {family}" if family != OTHER else name_and_code(code)


def short_label(code: str) -> str:
    """'German (de)' for chart axes."""
    return language_label(code, with_family=False)


def sort_by_family(codes) -> list[str]:
    """Languages grouped by family (English's family first, 'Other' last), each family by name."""
    from dlfa.languages import group_by_family

    return [c for family in group_by_family(codes).values()
            for c in sorted(family, key=lambda c: (c != "en", language_name(c)))]


def language_options(task: str, data_root: str | None, include_english: bool = False) -> list[str]:
    """Target languages the source has test data for, ordered by family (English left out unless asked)."""
    available = task_languages_now(task, data_root)
    codes = [c for c, splits in available.items() if "test" in splits and (include_english or c != "en")]
    return sort_by_family(codes)


def intermediate_presets(data_root: str | None, exclude: tuple[str, ...] = ()) -> dict[int, tuple[str, ...]]:
    """{count: intermediate tasks} presets (0 / 3 / 9) of dlfa.reproduction.study_design available in the source."""
    found = cache.intermediate_presets(source_key(data_root), tuple(exclude))
    return {count: tasks for count, tasks in found.items() if isinstance(tasks, tuple)}


def unavailable_presets(data_root: str | None, exclude: tuple[str, ...] = ()) -> dict[int, str]:
    """{count: why the source cannot serve it} for the presets `intermediate_presets` leaves out."""
    found = cache.intermediate_presets(source_key(data_root), tuple(exclude))
    return {count: reason for count, reason in found.items() if isinstance(reason, str)}


def intermediate_tasks(data_root: str | None) -> list[str]:
    """English intermediate tasks with English training data in the source, in dlfa.reproduction.study_design's order."""
    return cache.intermediate_tasks(source_key(data_root))
