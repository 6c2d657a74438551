"""Shared fixtures and the test tiers.

Data, by fixture:
- `fixture_root`: tests/fixtures/data, a tiny data root of made-up sentences in the real files' layout and
  formats (committed; written by tests/fixtures/make_data_root.py). Always present: the hermetic tiers use it.
- `data_root`: the real labeled data, ../shared/data beside the checkout or $DLFA_TEST_DATA_ROOT. A test that asks
  for it is skipped, with the reason printed, where it is absent (e.g. a user's fresh clone, or
  DLFA_TEST_DATA_ROOT=/nonexistent).
- `classroom_pack`: the checkout's built classroom pack (cache/pack), else one built for the session from PyPI's file
  host (as `python -m dlfa prepare` does); skipped, with the reason, where it can be neither found nor built.

Tiers, by marker (README "Tests and benchmarks"): a test that asks for `data_root` or `classroom_pack` is marked
`integration` here; `slow` and `browser` are set in the test files; everything else is the hermetic unit tier
(`make test-fast`). Per-test timeouts (pytest-timeout): pytest.ini's default for the unit tier, longer ones below
for the other tiers, so that a hang fails fast.
"""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURE_ROOT = Path(__file__).resolve().parent / "fixtures" / "data"
REAL_DATA_ROOT = Path(os.environ.get("DLFA_TEST_DATA_ROOT") or REPO.parent / "shared" / "data")
INTEGRATION_FIXTURES = ("data_root", "classroom_pack")
TIMEOUTS = {"integration": 900, "slow": 1800, "browser": 1800}  # seconds; the unit tier's is in pytest.ini


def real_data_present() -> bool:
    return (REAL_DATA_ROOT / "MANIFEST.md").is_file()


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real labeled data; the test is skipped (reason printed) where there is none."""
    if not real_data_present():
        pytest.skip(f"needs the real data root (its MANIFEST.md) at {REAL_DATA_ROOT}: not there; "
                    "set DLFA_TEST_DATA_ROOT to a copy to run it")
    return REAL_DATA_ROOT


@pytest.fixture(scope="session")
def fixture_root() -> Path:
    """The committed data root of made-up sentences: UD-POS (English train 80 and dev 12 sentences, Parallel UD
    en/de/fr/zh 40 each), PAN-X, PAWS-X and XNLI (en, de, fr, zh), COPA/XCOPA (en, et, tr), SST-2, RTE, Tatoeba
    (de, fr, zh) and XQuAD / MLQA (en, de: 24 paragraphs, 72 questions each)."""
    assert (FIXTURE_ROOT / "ud" / "UD_English-EWT" / "en_ewt-ud-train.conllu").is_file(), \
        f"the fixture data root is incomplete at {FIXTURE_ROOT}: run tests/fixtures/make_data_root.py"
    return FIXTURE_ROOT


@pytest.fixture(scope="session")
def classroom_pack(tmp_path_factory) -> Path:
    """The checkout's built classroom pack, or one built for this session; skipped where neither is possible."""
    from dlfa.data.registry import pack_built

    built = REPO / "cache" / "pack"
    if pack_built(built):
        return built
    from dlfa.data.classroom import build_pack
    from dlfa.errors import DataError

    root = tmp_path_factory.mktemp("classroom-pack")
    try:
        build_pack(root / "pack", downloads=root / "downloads")
    except (DataError, OSError) as error:
        pytest.skip(f"needs the classroom pack: none built in {built}, and building one failed ({error})")
    return root / "pack"


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


def pytest_collection_modifyitems(config, items):
    """Mark the tests that need the real data or the pack as `integration`; give each tier its timeout."""
    for item in items:
        if any(name in item.fixturenames for name in INTEGRATION_FIXTURES):
            item.add_marker(pytest.mark.integration)
        if item.get_closest_marker("timeout") is None:
            longest = max((seconds for marker, seconds in TIMEOUTS.items() if item.get_closest_marker(marker)),
                          default=None)
            if longest is not None:
                item.add_marker(pytest.mark.timeout(longest))


def pytest_report_header(config):
    where = REAL_DATA_ROOT if real_data_present() else f"none at {REAL_DATA_ROOT} (tests that need it are skipped)"
    return [f"real data root: {where}", f"fixture data root: {FIXTURE_ROOT}"]
