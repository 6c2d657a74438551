"""The PNG renderer runs in a child process with a time limit: one that never answers is stopped, browser and all."""
from __future__ import annotations

import io
import sys
import time

import plotly.graph_objects as go
import plotly.io as pio

from dlfa import png_render

# Stands in for kaleido waiting on a dead Chromium: counts its starts, starts a "browser" of its own (a grandchild
# that would outlive a plain kill of the child) and never answers.
HANGING_RENDERER = """
import pathlib, subprocess, sys, time
folder = pathlib.Path(sys.argv[1])
starts = len(list(folder.glob("start-*")))
browser = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
(folder / f"start-{starts}").write_text(str(browser.pid))
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][0] != "Z"  # a zombie has gone, only not yet reaped
    except FileNotFoundError:
        return False


def test_a_renderer_that_never_answers_is_stopped_with_its_browser_and_tried_once_more(tmp_path, monkeypatch):
    monkeypatch.setattr(png_render, "RENDERER_COMMAND", [sys.executable, "-c", HANGING_RENDERER, str(tmp_path)])
    started = time.monotonic()
    png, why = png_render.figure_png(go.Figure(go.Bar(x=["a"], y=[1])), time_limit_s=3)
    took = time.monotonic() - started

    assert png is None
    assert why == "the PNG renderer (kaleido with Chromium) did not answer within 3 s and was stopped"
    assert 6 <= took < 30  # two tries of 3 s each, not the renderer's 600 s
    starts = sorted(tmp_path.glob("start-*"))
    assert len(starts) == 2
    time.sleep(0.5)
    assert not any(_alive(int(start.read_text())) for start in starts)  # the "browsers" went with their renderers


def test_a_renderer_that_fails_is_not_retried_and_its_one_line_reason_is_given(tmp_path, monkeypatch):
    failing = (f"import pathlib, sys; pathlib.Path({str(tmp_path)!r}, 'started').open('a').write('x');"
               f"print('Traceback noise', file=sys.stderr);"
               f"print({png_render.FAILURE_PREFIX!r} + 'ChromeNotFoundError: no browser found', file=sys.stderr);"
               "sys.exit(1)")
    monkeypatch.setattr(png_render, "RENDERER_COMMAND", [sys.executable, "-c", failing])
    png, why = png_render.figure_png(go.Figure(), time_limit_s=30)

    assert png is None
    assert why == "PNG export needs kaleido with a Chrome/Chromium browser (ChromeNotFoundError: no browser found)"
    assert (tmp_path / "started").read_text() == "x"


def test_the_child_renderer_reads_the_figure_on_stdin_its_size_from_its_arguments_and_writes_the_png(
        monkeypatch, capsysbinary):
    drawn = {}

    def fake_render(figure_json, width, height):
        drawn.update(figure=pio.from_json(figure_json), width=width, height=height)
        return b"\x89PNG fake"

    monkeypatch.setattr(png_render, "_render", fake_render)
    monkeypatch.setattr(sys, "argv", ["dlfa.png_render", "640", "480"])
    monkeypatch.setattr(sys, "stdin", io.StringIO(go.Figure(go.Bar(x=["de", "fr"], y=[3, 4])).to_json()))

    assert png_render.main() == 0
    assert capsysbinary.readouterr().out == b"\x89PNG fake"
    assert (drawn["width"], drawn["height"]) == (640, 480)
    assert list(drawn["figure"].data[0].x) == ["de", "fr"]
