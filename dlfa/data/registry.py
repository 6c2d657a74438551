"""The task registry: look a task up, find the data a source has for it per language and split, and load its
examples or its model-ready features (cached under cache/features/).

Where the pieces are: the sources (data root, classroom pack, hub) in dlfa.data.sources; the task table in
dlfa.data.tasks; the layouts per source in dlfa.data.file_layouts and dlfa.data.hub_layouts; the split logic
(file parts, the item split) in dlfa.data.splits; the caches in dlfa.data.feature_cache.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from dlfa.data.base import EncodedSplit, Example, TaskInfo, encode_examples
from dlfa.data.feature_cache import cached_count, code_version, load_features, save_features, tokenizer_fingerprint
from dlfa.data.hub_layouts import HubRows, HubSplit
from dlfa.data.sources import HUB_DATASET, DataSource, load_hub_split, pack_built, pack_dir
from dlfa.data.splits import SPLITS, ItemSplit, Layout, SplitData, digest
from dlfa.data.tasks import TASKS, TASKS_BY_NAME, TaskSpec
from dlfa.errors import DataError
from dlfa.paths import cache_subdir

__all__ = ["DataSource", "LanguageScan", "available_languages", "english_sizes", "get_task", "list_tasks",
           "load_encoded", "load_examples", "load_hub_split", "pack_built", "pack_dir", "scan_languages",
           "task_source"]


def list_tasks() -> list[TaskInfo]:
    """Every task, in the table's order (dlfa.data.tasks)."""
    return [spec.info for spec in TASKS]


def get_task(name: str | TaskInfo) -> TaskInfo:
    """The task named `name`; DataError naming the known tasks otherwise."""
    return _spec(name).info


def _spec(task: str | TaskInfo) -> TaskSpec:
    name = task.name if isinstance(task, TaskInfo) else task
    if name not in TASKS_BY_NAME:
        raise DataError(f"unknown task {name!r}; known tasks: {', '.join(TASKS_BY_NAME)}")
    return TASKS_BY_NAME[name]


def _layout(spec: TaskSpec, source: DataSource) -> Layout:
    if spec.classroom:
        root = source.root if source.kind == "pack" else pack_dir()
        return spec.files(root, spec.info) if pack_built(root) else {}
    if source.kind == "files":
        return spec.files(source.root, spec.info)
    if source.kind == "hub" and spec.hub is not None:
        return spec.hub(source.loader or load_hub_split)
    return {}


def _split_data(
    task: str | TaskInfo, language: str, split: str, source: DataSource | None
) -> tuple[TaskInfo, SplitData]:
    spec = _spec(task)
    source = source or DataSource.resolve()
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
    layout = _layout(spec, source)
    if not layout:
        hint = "build the classroom pack: python -m dlfa prepare" if spec.classroom else "give a data root that has it"
        raise DataError(f"task {spec.info.name} has no data in {source.describe()}; {hint}")
    if language not in layout:
        raise DataError(
            f"task {spec.info.name} has no language {language!r} in {source.describe()}; "
            f"languages available: {', '.join(_ordered(layout))}"
        )
    if split not in layout[language]:
        raise DataError(
            f"task {spec.info.name} has no {split!r} split for {language!r} in {source.describe()}; "
            f"it has: {', '.join(s for s in SPLITS if s in layout[language])}"
        )
    return spec.info, layout[language][split]


def _ordered(layout: Layout) -> list[str]:
    return sorted(layout, key=lambda language: (language != "en", language))


@dataclass(frozen=True)
class LanguageScan:
    """What a source has for one task: `available` language -> split -> number of examples (English first), and
    `broken` language -> why its data cannot be read (one line naming the file and, where known, the line)."""

    available: dict[str, dict[str, int]]
    broken: dict[str, str]


def scan_languages(task: str | TaskInfo, source: DataSource | None = None) -> LanguageScan:
    """Count every language's splits. A language with a file that cannot be read is left out of `available`, its
    reason kept in `broken`, so one bad file disables only its own language; from the hub, where a config may lack
    a split, a split that fails to load is left out and a language is broken only when all its splits fail (and
    when every language fails, the first failure is raised: one reason, e.g. no network). Empty splits are left out.
    """
    spec = _spec(task)
    source = source or DataSource.resolve()
    layout = _layout(spec, source)
    available: dict[str, dict[str, int]] = {}
    broken: dict[str, str] = {}
    errors = []
    for language in _ordered(layout):
        counts, failures = {}, []
        for split in SPLITS:
            if split in layout[language]:
                try:
                    counts[split] = cached_count(layout[language][split])
                except DataError as exc:
                    failures.append(exc)
        errors += failures
        if failures and (source.kind != "hub" or not counts):
            broken[language] = str(failures[0])
        elif any(counts.values()):
            available[language] = {split: count for split, count in counts.items() if count}
    if source.kind == "hub" and layout and not available and errors:
        raise errors[0]
    return LanguageScan(available, broken)


def _layout_source(layout: Layout, root: Path | None) -> str | None:
    """The hub dataset(s) of a layout, or the folder (under `root` where it is inside) that holds all its files."""
    paths, hubs = [], {}
    for splits in layout.values():
        for data in splits.values():
            files = [*data.english, *data.target] if isinstance(data, ItemSplit) else [data]
            for part in files:
                if isinstance(part, HubRows):
                    hubs[f"{part.dataset}{f' {part.config}' if part.config else ''}"] = True
                elif isinstance(part, HubSplit):
                    hubs[HUB_DATASET] = True
                elif getattr(part, "hub_name", None):  # other hub readers (Tatoeba, QA rows) name their dataset
                    hubs[part.hub_name] = True
                else:
                    paths += [path.parent for path in part.paths]
    if hubs or not paths:
        return f"hub {', '.join(sorted(hubs))}" if hubs else None
    folder = Path(os.path.commonpath(paths))
    return str(folder.relative_to(root)) if root and folder.is_relative_to(root) else str(folder)


def task_source(task: str | TaskInfo, source: DataSource | None = None) -> str:
    """Where a task's data comes from in `source`: the folder under the data root or pack that holds its files,
    or its hub dataset; with no data there, where the hub has it."""
    spec, source = _spec(task), source or DataSource.resolve()
    found = _layout_source(_layout(spec, source), source.root)
    if found:
        return found
    on_hub = _layout_source(spec.hub(lambda config, split: []), None) if spec.hub and not spec.classroom else None
    return f"none in {source.describe()}" + (f" ({on_hub} has it)" if on_hub else "")


def available_languages(task: str | TaskInfo, source: DataSource | None = None) -> dict[str, dict[str, int]]:
    """Language -> split -> number of examples, for the languages `source` can read (English first); see
    scan_languages for the languages left out and why."""
    return scan_languages(task, source).available


def english_sizes(task: str | TaskInfo, source: DataSource | None = None) -> dict[str, int]:
    """The number of English train / dev / test examples `source` has for a task (0 for a missing split); only
    the English files are read."""
    english = _layout(_spec(task), source or DataSource.resolve()).get("en", {})
    return {split: cached_count(english[split]) if split in english else 0 for split in SPLITS}


def load_examples(
    task: str | TaskInfo, language: str, split: str, source: DataSource | None = None, max_examples: int | None = None
) -> list[Example]:
    """The examples of one (task, language, split): "train" and "dev" are English; zero-shot languages have "test"."""
    _, data = _split_data(task, language, split, source)
    examples = data.load()
    return examples if max_examples is None else examples[:max_examples]


def load_encoded(
    task: str | TaskInfo,
    language: str,
    split: str,
    source: DataSource | None,
    tokenizer,
    max_length: int,
    max_examples: int | None = None,
) -> EncodedSplit:
    """Model-ready features of one (task, language, split), cached under cache/features/.

    The cache key covers the task and its labels, the data (file paths, mtimes and sizes; the examples' content for
    the hub), the tokenizer's full definition, max_length, max_examples and the reading/encoding code, so a changed
    input invalidates it; a hit skips reading and tokenization. Files are .npz (no pickle), written atomically.
    """
    info, data = _split_data(task, language, split, source)
    fingerprint = data.fingerprint()
    examples = None
    if fingerprint is None:
        examples = data.load()[:max_examples] if max_examples is not None else data.load()
        fingerprint = digest([asdict(example) for example in examples])
    key = digest(
        {
            "task": asdict(info),
            "where": [language, split, fingerprint],
            "tokenizer": tokenizer_fingerprint(tokenizer),
            "limits": [max_length, max_examples],
            "code": code_version(),
        }
    )
    path = cache_subdir("features") / f"{info.name}-{language}-{split}-{key[:24]}.npz"
    if path.is_file():
        try:
            return load_features(path, EncodedSplit(info.name, language, split), info.kind, len(info.labels))
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # unreadable: encode again
    if examples is None:
        examples = data.load()[:max_examples] if max_examples is not None else data.load()
    encoded = encode_examples(examples, info, tokenizer, max_length, language=language, split=split)
    save_features(path, encoded, info.kind)
    return encoded
