"""The house rules, checked: the layer contracts of pyproject.toml hold (import-linter), no module grows past
400 lines without saying why, and nothing edits sys.path or PYTHONPATH to find the package."""
import re
from pathlib import Path

from importlinter.cli import lint_imports

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 400


def test_import_contracts_are_kept(monkeypatch):
    monkeypatch.chdir(REPO)  # import-linter reads pyproject.toml from the working folder
    assert lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True) == 0, "run `.venv/bin/lint-imports` for details"


def test_a_long_module_says_why_at_its_top():
    unexplained = []
    for path in sorted((REPO / "dlfa").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines > MAX_LINES and "Longer than 400 lines because" not in text[:2000]:
            unexplained.append(f"{path.relative_to(REPO)} ({lines} lines)")
    assert not unexplained, "modules over 400 lines without a reason at their top: " + ", ".join(unexplained)


def test_nothing_edits_the_import_path():
    offenders = []
    for folder in ("dlfa", "bench", "pages"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if path.name == Path(__file__).name:
                continue
            if re.search(r"sys\.path\.(insert|append)|PYTHONPATH", path.read_text(encoding="utf-8")):
                offenders.append(str(path.relative_to(REPO)))
    assert not offenders, "the package is installed (pip install -e .); these edit the import path: " + ", ".join(offenders)
