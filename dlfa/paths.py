"""Where generated files live: `cache/` beside the package, or `$DLFA_CACHE_DIR`."""
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """The cache root (created on demand)."""
    root = Path(os.environ.get("DLFA_CACHE_DIR") or REPO_ROOT / "cache")
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_subdir(*parts: str) -> Path:
    """A folder under the cache root, created on demand."""
    path = cache_dir().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
