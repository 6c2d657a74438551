"""A plotly figure as PNG bytes, rendered by kaleido and Chromium in a child process with a time limit.

Kaleido can wait forever on a Chromium that has gone (seen while a report was written on a busy machine: 40 minutes
in kaleido's join, its own timeout never fired). A report or a page must not wait with it, so each figure is rendered
by `python -m dlfa.png_render WIDTH HEIGHT` (the figure's JSON on stdin, the PNG on stdout) in its own process
group, which is killed, browser and all, when the time limit passes; one retry follows, then a clear reason.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

RENDERER_COMMAND = [sys.executable, "-m", "dlfa.png_render"]
TIME_LIMIT_S = 120.0  # a figure takes seconds; on a 2-core machine busy training, under a minute
FAILURE_PREFIX = "dlfa-png: "  # the child's one line on stderr when it cannot render
TIMED_OUT = "the PNG renderer (kaleido with Chromium) did not answer within"


def figure_png(fig, width: int = 1100, height: int = 550,
               time_limit_s: float = TIME_LIMIT_S) -> tuple[bytes | None, str]:
    """PNG bytes of a plotly figure, or (None, why not). A renderer that does not answer within `time_limit_s` is
    stopped and tried once more."""
    figure_json = fig.to_json().encode()
    for _ in range(2):  # a renderer that was stopped gets one more try; any other failure is final
        png, why = _render_in_child(figure_json, width, height, time_limit_s)
        if not why.startswith(TIMED_OUT):
            break
    return png, why


def _render_in_child(figure_json: bytes, width: int, height: int, time_limit_s: float) -> tuple[bytes | None, str]:
    with subprocess.Popen([*RENDERER_COMMAND, str(width), str(height)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=_browser_env(), start_new_session=True) as child:
        try:
            png, errors = child.communicate(figure_json, timeout=time_limit_s)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)  # the child leads its own group: its browser goes with it
            child.wait()
            return None, f"{TIMED_OUT} {time_limit_s:g} s and was stopped"
    if child.returncode == 0 and png:
        return png, ""
    lines = [line for line in errors.decode(errors="replace").splitlines() if line.startswith(FAILURE_PREFIX)]
    reason = lines[-1][len(FAILURE_PREFIX):] if lines else f"the renderer exited with code {child.returncode}"
    return None, f"PNG export needs kaleido with a Chrome/Chromium browser ({reason})"


def _browser_env() -> dict[str, str]:
    """The environment with BROWSER_PATH pointing kaleido at Debian's Chromium where it is installed."""
    env = dict(os.environ)
    for candidate in ("/usr/bin/chromium", "/usr/bin/chromium-browser", shutil.which("chromium") or ""):
        if candidate and os.path.exists(candidate):
            env.setdefault("BROWSER_PATH", candidate)
            break
    return env


def _render(figure_json: str, width: int, height: int) -> bytes:
    import plotly.io as pio

    fig = pio.from_json(figure_json)
    for pause_s in (1, 2):  # on a busy machine kaleido's page sometimes runs before its scripts are defined
        try:
            return fig.to_image(format="png", width=width, height=height, scale=1)
        except Exception as exc:  # noqa: BLE001  (kaleido raises many kinds)
            if "is not defined" not in str(exc):
                raise
            time.sleep(pause_s)
    return fig.to_image(format="png", width=width, height=height, scale=1)  # the last try: its error is reported


def main() -> int:
    width, height = (int(arg) for arg in sys.argv[1:3])
    try:
        png = _render(sys.stdin.read(), width, height)
    except Exception as exc:  # noqa: BLE001  (one line for the parent, never a traceback)
        message = " ".join(f"{type(exc).__name__}: {exc}".split())
        print(f"{FAILURE_PREFIX}{message}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
