"""Shared fixtures: a tiny random encoder (session-wide), the real data root, probe caches kept out of cache/."""
import os
from pathlib import Path

import pytest

DATA_ROOT = Path(os.environ.get("DLFA_TEST_DATA_ROOT") or Path(__file__).resolve().parents[2] / "shared" / "data")


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real labeled data (../shared/data beside the checkout); tests that need it fail loudly without it."""
    assert (DATA_ROOT / "MANIFEST.md").is_file(), f"real data not found at {DATA_ROOT}; set DLFA_TEST_DATA_ROOT"
    return DATA_ROOT


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> str:
    """A local encoder spec: random BERT, hidden 32, 4 layers, with the e5-small tokenizer."""
    from dlfa.testing import build_tiny_encoder

    return str(build_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder")))


@pytest.fixture(scope="session", autouse=True)
def hidden_states_in_tmp(tmp_path_factory):
    """Probe runs in this process cache hidden states in a temporary folder, not in the checkout's cache/."""
    from dlfa.engine import probe

    folder = tmp_path_factory.mktemp("hidden-states")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(probe, "features_dir", lambda: folder)
        yield folder
