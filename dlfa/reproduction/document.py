"""The report's document: the state every section of the report writes to and reads from (dlfa.reproduction.report
puts the sections together)."""
from __future__ import annotations

from pathlib import Path

from dlfa.errors import DlfaError
from dlfa.io import write_bytes
from dlfa.png_render import figure_png
from dlfa.reproduction.choices import run_at_majority
from dlfa.reproduction.plan import DEV_MAJORITY_FILE, SIZES_FILE, TIMINGS_FILE, read_json, read_results
from dlfa.results import RESULTS_FILE, JobResult, RunResult

FIGURES = "figures"  # the figures' folder, beside the report


class ReportDocument:
    """The report as it is built: its markdown lines and figures (in `figures/` beside the report), the record it
    reads, and what the sections hand to the claims (the gains per setting, the layer findings)."""

    def __init__(self, out_root: Path, doc_path: Path):
        self.out_root, self.figures_dir = out_root, doc_path.parent / FIGURES
        self.record_shown = f"{doc_path.parent.name}/{out_root.name}"  # the record as seen from the repository root
        self.timings = read_json(out_root / TIMINGS_FILE) or {}
        self.sizes = read_json(out_root / SIZES_FILE) or {}
        self.dev_majority = {task: entry["dev_majority"]
                             for task, entry in (read_json(out_root / DEV_MAJORITY_FILE) or {}).items()}
        self.lines: list[str] = []
        self.gains: dict[str, dict] = {}  # setting -> task, source, gain, layer, tied, dlfa_at_majority
        # "layers" -> text; "plain_tuned" -> {key: retrieval per layer} of the plain fine-tuned encoders
        self.findings: dict = {}
        self.figure_names: list[str] = []  # the figures this report shows

    def add(self, *blocks: str) -> None:
        self.lines.extend(blocks)

    def figure(self, fig, name: str, alt: str, height: int = 550) -> None:
        png, why = figure_png(fig, height=height)
        if png is None:
            raise DlfaError(f"cannot write the figure {name}: {why}")
        write_bytes(self.figures_dir / name, png)
        self.figure_names.append(name)
        self.add(f"![{alt}]({FIGURES}/{name})", "")

    def drop_other_figures(self) -> None:
        """Remove the figures in `figures/` that this report does not show (a record of another plan drew them):
        the folder belongs to the report."""
        for path in self.figures_dir.glob("*.png"):
            if path.name not in self.figure_names:
                path.unlink()

    def took(self, job: str) -> str:
        entry = self.timings.get(job)
        if not entry:
            return ""
        state = "" if entry.get("complete") else ", not finished"
        return f" ({entry['seconds'] / 60:.1f} min over {entry['sittings']} sitting(s){state})"

    def job(self, job: str) -> JobResult | None:
        return read_results(self.out_root / job / RESULTS_FILE)

    def learned_nothing(self, run: RunResult) -> bool:
        """Whether a run's English dev score stayed at its task's majority class (choices.run_at_majority)."""
        return run_at_majority(run, self.dev_majority.get(run.spec["task"]))
