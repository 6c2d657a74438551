"""The app in a real browser: `streamlit run app.py` on a free port, driven by Playwright with Debian's chromium.

Clicks the classroom demo on Home, waits for the real job to finish (≤ 4 min), opens Results through the link,
checks a plotly chart with ≥ 2 languages, visits every page and saves a screenshot of each to test-artifacts/.
Run with `pytest -m browser tests/test_browser.py`.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dlfa.testing import link_built

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
DEMO_TIMEOUT_S = 240


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def stop_workers(cache: Path) -> None:
    """Terminate the process groups of jobs this test started (they run in their own sessions)."""
    if not (cache / "jobs.sqlite").is_file():
        return
    os.environ["DLFA_CACHE_DIR"] = str(cache)
    try:
        from dlfa.jobs.store import JobStore

        for job in JobStore(cache / "jobs.sqlite").list(("queued", "running")):
            if job.pgid and job.pgid != os.getpgrp():
                try:
                    os.killpg(job.pgid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
    finally:
        os.environ.pop("DLFA_CACHE_DIR", None)


@contextlib.contextmanager
def serving_app(cache: Path, data_root: Path):
    """`streamlit run app.py` on a free port with this cache and data root; yields its URL once healthy, then
    stops it and the job workers it started."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: apt-get install -y chromium (make browser-deps)")
    port = free_port()
    env = dict(os.environ, DLFA_CACHE_DIR=str(cache), DLFA_DATA_DIR=str(data_root), PYTHONUNBUFFERED="1")
    log = open(cache / "streamlit.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless=true", f"--server.port={port}",
         "--browser.gatherUsageStats=false"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("streamlit did not start:\n" + (cache / "streamlit.log").read_text()[-3000:])
            time.sleep(0.5)
        yield url
    finally:
        stop_workers(cache)
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, fixture_root):
    cache = link_built(tmp_path_factory.mktemp("browser-cache"))
    with serving_app(cache, fixture_root) as url:
        yield {"url": url, "cache": cache}


@pytest.fixture(scope="module")
def browser_page(server):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        try:
            yield page
        finally:
            browser.close()


def settle(page, timeout_ms: int = 60_000) -> None:
    """Wait until Streamlit has finished running the script (no 'Running…' status widget)."""
    page.wait_for_timeout(500)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"stApp\"]')?.dataset.testScriptState === 'notRunning'", timeout=timeout_ms)
    page.wait_for_timeout(300)


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def plot_languages(page) -> list[list[str]]:
    """Per plotly chart on the page: the category labels of its x axis (leaf labels of grouped axes)."""
    return page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(el => {
        const found = new Set();
        for (const trace of (el.data || [])) {
            let x = trace.x || [];
            if (x.length === 2 && Array.isArray(x[0])) x = x[1];
            for (const v of x) found.add(String(v));
        }
        return [...found];
    })""")


def test_classroom_demo_end_to_end(server, browser_page):
    page, url = browser_page, server["url"]
    page.goto(url)
    page.get_by_text("Run the classroom demo").wait_for(timeout=60_000)
    settle(page)
    shot(page, "01-home")
    started = time.monotonic()
    page.get_by_role("button", name="Run the classroom demo").click()
    page.get_by_text("Demo job").wait_for(timeout=30_000)
    page.wait_for_timeout(4000)
    shot(page, "02-home-demo-running")
    page.get_by_text("The demo finished.").wait_for(timeout=DEMO_TIMEOUT_S * 1000)
    elapsed = time.monotonic() - started
    print(f"classroom demo finished in {elapsed:.0f} s")
    (ARTIFACTS / "demo-seconds.txt").write_text(f"{elapsed:.1f}\n")
    shot(page, "03-home-demo-finished")

    page.get_by_role("link", name="See the results").click()
    page.wait_for_selector(".js-plotly-plot", timeout=60_000)
    settle(page)
    charts = plot_languages(page)
    assert any(len(langs) >= 2 for langs in charts), charts
    shot(page, "04-results")

    page.goto(f"{url}/jobs")  # the demo job's loss and English dev curves, as they were drawn while it ran
    page.get_by_text("training curves").first.click()
    page.wait_for_selector(".js-plotly-plot", timeout=60_000)
    settle(page)
    assert page.get_by_text("training loss").first.is_visible() and page.get_by_text("English dev").first.is_visible()
    shot(page, "04b-jobs-training-curves")


def test_every_page_renders(server, browser_page):
    page, url = browser_page, server["url"]
    visits = [("05-launch", "launch", "Launch a job"), ("06-jobs", "jobs", "Jobs"),
              ("07-fusion-weights", "fusion_weights", "Fusion weights"),
              ("08-layer-comparison", "layer_comparison", "Layer comparison"),
              ("09-layer-analysis", "layer_analysis", "Layer analysis"),
              ("10-attribution", "attribution", "Attribution"),
              ("11-intermediate-study", "intermediate_study", "Intermediate tasks"),
              ("12-byol", "byol", "Bring your own language")]
    for name, path, title in visits:
        page.goto(f"{url}/{path}")
        page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)
        settle(page, 120_000)
        if path == "fusion_weights":
            box = page.get_by_role("textbox", name="Sentence (any language)", exact=True).first
            box.fill("Der schnelle braune Fuchs springt über den faulen Hund .")
            box.press("Enter")
            page.wait_for_selector(".js-plotly-plot", timeout=120_000)
            settle(page, 120_000)
        if path == "layer_analysis":
            page.get_by_role("button", name="Compute").click()
            page.wait_for_selector(".js-plotly-plot", timeout=180_000)
            settle(page, 180_000)
        exceptions = page.locator("[data-testid='stException']").count()
        shot(page, name)
        assert exceptions == 0, f"{path}: {page.locator('[data-testid=stException]').first.inner_text()}"


def test_recorded_reproduction_opens_from_home(server, browser_page):
    page, url = browser_page, server["url"]
    page.goto(url)
    page.get_by_role("button", name="Open the recorded jobs").wait_for(timeout=60_000)
    settle(page)
    page.get_by_role("button", name="Open the recorded jobs").click()
    page.get_by_text("recorded jobs added to the job store").wait_for(timeout=30_000)
    shot(page, "13-home-record-opened")

    page.goto(f"{url}/layer_analysis")
    page.get_by_role("button", name="Show the reproduction's analysis").click()
    page.wait_for_selector(".js-plotly-plot", timeout=60_000)
    settle(page)
    assert page.get_by_text("Recorded by the reproduction (docs/REPRODUCTION.md): embedded:e5-small").count() == 1
    assert page.locator("[data-testid='stException']").count() == 0
    shot(page, "15-layer-analysis-recorded")
