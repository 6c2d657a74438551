"""Where data comes from (`DataSource.resolve`): an explicit data root, else `$DLFA_DATA_DIR`, else the classroom
pack in `cache/pack/` when built, else the Hugging Face hub (`google/xtreme` and the intermediate tasks' datasets);
the data root `hub` (HUB_ROOT) asks for the hub by name, so a job can read it on a machine with a pack or a data root.

A data root is laid out like `../shared/data` (see its MANIFEST.md and dlfa.data.file_layouts); classroom tasks
always read the pack, whatever the source.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dlfa.errors import DataError
from dlfa.paths import cache_dir

HUB_DATASET = "google/xtreme"
HUB_ROOT = "hub"  # the data root that names the hub itself, whatever DLFA_DATA_DIR or classroom pack is set
PARQUET_EXPORT = "refs/convert/parquet"  # the hub's own Parquet copy of a dataset still served by a loading script


def pack_dir() -> Path:
    """Where the classroom pack lives (`cache/pack`)."""
    return cache_dir() / "pack"


def pack_built(path: Path | None = None) -> bool:
    """Whether a classroom pack is built at `path` (default: pack_dir())."""
    return ((path or pack_dir()) / "MANIFEST.json").is_file()


def hub_config(dataset: str, config: str | None) -> str:
    """The loader's config argument for a hub dataset other than google/xtreme: `<dataset>:<config>`."""
    return f"{dataset}:{config or ''}"


def load_hub_split(config: str, split: str):
    """The default hub loader: one split of one google/xtreme config (or of another dataset, for a config
    written `<dataset>:<config>` by hub_config) as a `datasets.Dataset`."""
    from datasets import load_dataset

    from dlfa.hub import hub_reachable

    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")  # then datasets reads its cache
    if not offline and not hub_reachable():
        raise DataError("the Hugging Face hub cannot be reached, and no data root or classroom pack is set: "
                        "run `python -m dlfa prepare` for the classroom pack, or pass --data-root "
                        "(DLFA_DATA_DIR) a folder laid out like the project's data", HUB_DATASET)
    dataset, _, name = config.rpartition(":") if ":" in config else (HUB_DATASET, "", config)
    try:
        return load_dataset(dataset, name or None, split=split)
    except RuntimeError as error:  # datasets 4+ runs no loading script; the hub keeps a Parquet export of such data
        if "Dataset scripts are no longer supported" not in str(error):
            raise
        return load_dataset(dataset, name or None, split=split, revision=PARQUET_EXPORT)


@dataclass(frozen=True)
class DataSource:
    """Where data comes from: a data root ("files"), the classroom pack ("pack") or the hub ("hub").

    `loader(config, split)` returns the rows of one google/xtreme split (a `datasets.Dataset` or any sequence of
    dicts); inject one to read local files written with the hub's schema.
    """

    kind: Literal["files", "pack", "hub"]
    root: Path | None = None
    loader: Callable[[str, str], Any] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def resolve(cls, data_root: str | Path | None = None) -> DataSource:
        """Explicit data root, else $DLFA_DATA_DIR, else the classroom pack if built, else the hub; the data root
        HUB_ROOT ("hub"; a folder of that name is "./hub") is the hub."""
        root = data_root or os.environ.get("DLFA_DATA_DIR")
        if root == HUB_ROOT:
            return cls.hub()
        if root:
            path = Path(root).expanduser()
            if not path.is_dir():
                raise DataError("the data root does not exist or is not a folder", str(path))
            return cls("files", path.resolve())
        if pack_built():
            return cls("pack", pack_dir())
        return cls.hub()

    @classmethod
    def hub(cls, loader: Callable[[str, str], Any] | None = None) -> DataSource:
        return cls("hub", None, loader or load_hub_split)

    def describe(self) -> str:
        if self.kind == "hub":
            return f"the hub ({HUB_DATASET} and the intermediate tasks' datasets)"
        return f"{'the data root' if self.kind == 'files' else 'the classroom pack'} {self.root}"

    __str__ = describe

