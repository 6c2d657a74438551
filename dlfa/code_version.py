"""The version of the code a result was produced with, recorded in every results.json so that results of
different code are never compared unknowingly.

    {"sources_sha256": hash of the dlfa/**/*.py that can change a number (path and content), always there, also
                       in a copy without git;
     "git_commit": HEAD's hash or None without git; "git_dirty": whether dlfa/ differs from HEAD, or None}

The modules that only show or export results (PRESENTATION_ONLY, and every module of PRESENTATION_PACKAGES) are
left out of the hash, so that work on the app's views between the sittings of a long reproduction does not split
its record into code versions.
"""
from __future__ import annotations

import functools
import hashlib
import subprocess
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
PRESENTATION_PACKAGES = ("app/",)  # the Streamlit glue: every module of it
PRESENTATION_ONLY = frozenset({"charts.py", "png_render.py", "reproduction/report.py",
                               "reproduction/report_baseline.py", "reproduction/report_analyses.py",
                               "reproduction/rules.py", "reproduction/tables.py", "reproduction/document.py",
                               "reproduction/status.py", "analysis/examples.py", "analysis/projector.py",
                               "analysis/attention.py", "analysis/explain.py"})


def presentation_only(relative: str) -> bool:
    """Whether a source (its path inside the package) only shows or exports results."""
    return relative in PRESENTATION_ONLY or relative.startswith(PRESENTATION_PACKAGES)


def sources_hash(package: Path = PACKAGE) -> str:
    """sha256 over the relative path and bytes of every Python source of the package but the presentation-only
    ones, in path order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in package.rglob("*.py") if not presentation_only(p.relative_to(package).as_posix())):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(PACKAGE), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def code_version() -> dict:
    """This process's code version (computed once: the sources it started with)."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".") if commit else None
    return {"sources_sha256": sources_hash(), "git_commit": commit,
            "git_dirty": None if status is None else bool(status)}
