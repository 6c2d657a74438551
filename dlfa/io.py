"""Writing files so that a reader never sees half of one: everything is written beside its target and then
renamed over it (os.replace is atomic within a file system), so a killed process or a full disk leaves either the
old file or the new one, never a torn one. The one place in the library that does this; and `locked`, which
serializes the processes that build or update one path."""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def locked(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock (fcntl.flock on `.<name>.lock` beside `path`) for the block: processes that build
    or update `path` this way take turns (a second one waits)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _staging_name(path: Path) -> Path:
    """A fresh name beside `path` (created with the usual permissions, unlike mkstemp's owner-only files)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` (its folder created when needed); when the block ends without an
    exception, rename it over `path`; otherwise remove it and leave `path` as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = _staging_name(path)
    try:
        yield staging
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)


@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; when the block ends without an exception, put it in place of
    `path` (an existing folder there is removed first); otherwise remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = _staging_name(path)
    staging.mkdir()
    try:
        yield staging
        if path.is_dir():
            shutil.rmtree(path)
        os.replace(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 text to `path` atomically."""
    with atomic_file(path) as staging:
        staging.write_text(text, encoding="utf-8")


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write bytes to `path` atomically."""
    with atomic_file(path) as staging:
        staging.write_bytes(data)


def write_json(path: str | Path, data, indent: int = 2) -> None:
    """Write `data` as JSON atomically; NaN and infinity are refused (they are not JSON)."""
    write_text(path, json.dumps(data, indent=indent, allow_nan=False))
