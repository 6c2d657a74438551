"""The three inspection pages in a real browser (Debian's chromium driven by Playwright), with a screenshot of
each in test-artifacts/: Examples on a real finished job (a tiny encoder on UD-POS, last vs dlfa L2) and on a
recorded run, the Projector and the Attention view on the embedded encoder (a few sentences).
Run with `pytest -m browser tests/test_browser_views.py`."""
from __future__ import annotations

from pathlib import Path

import pytest
from test_browser import REPO, browser_page, serving_app, settle, shot  # noqa: F401 (browser_page: a fixture)
from test_pages import recorded_job

from dlfa.testing import link_built

pytestmark = pytest.mark.browser


def prepared_cache(cache: Path, data_root: Path, encoder_dir: Path) -> dict:
    """A store with one finished tiny job (with predictions) and the imported recorded reproduction."""
    from dlfa.app import runs
    from dlfa.engine.spec import JobSpec
    from dlfa.jobs.store import JobStore
    from dlfa.testing import build_tiny_encoder
    from dlfa.engine.job import run_job

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DLFA_CACHE_DIR", str(cache))
        spec = JobSpec(task="udpos", eval_languages=("de", "fr"), encoder=str(build_tiny_encoder(encoder_dir)),
                       data_root=str(data_root), aggregations=("last", "dlfa"), fusion_layers=(2,), max_steps=5,
                       max_train_examples=64, max_eval_examples=30, batch_size=8, bootstrap_samples=50,
                       name="tiny browser views")
        store = JobStore(cache / "jobs.sqlite")
        job = store.submit(spec)
        assert store.claim_job(job.id) and store.mark_running(job.id)
        run_job(spec, job.out_dir)
        assert store.mark_completed(job.id)
        recorded, _ = store.add_finished_under(runs.reproduction_record())
    xnli = recorded_job(recorded, "select/xnli-cls")
    return {"job": job.id, "recorded_xnli": xnli.id,
            "recorded_xnli_spec": (xnli.out_dir / "results.json").relative_to(REPO).as_posix()}


@pytest.fixture(scope="module")
def server(tmp_path_factory, fixture_root):
    cache = link_built(tmp_path_factory.mktemp("browser-views-cache"))
    jobs = prepared_cache(cache, fixture_root, tmp_path_factory.mktemp("tiny-encoder-browser"))
    with serving_app(cache, fixture_root) as url:
        yield {"url": url, **jobs}


def open_page(page, url: str, title: str) -> None:
    page.goto(url)
    page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)
    settle(page, 180_000)


def no_exception(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0, \
        page.locator("[data-testid='stException']").first.inner_text()


def plot_traces(page) -> list[dict]:
    """Per plotly chart: its title and, per marker trace, the trace's name and number of points."""
    return page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(el => ({
        title: (el.layout && el.layout.title && el.layout.title.text) || '',
        points: Object.fromEntries((el.data || []).filter(t => (t.mode || '').includes('markers'))
                                   .map(t => [t.name, (t.x || []).length]))}))""")


def test_examples_browse_compare_and_recorded_run(server, browser_page):
    page, url = browser_page, server["url"]
    open_page(page, f"{url}/examples?job={server['job']}", "Examples")
    page.get_by_text("of 30 examples").first.wait_for(timeout=60_000)
    page.wait_for_selector(".js-plotly-plot", timeout=60_000)
    no_exception(page)
    shot(page, "views-01-examples")
    page.get_by_role("tab", name="Compare two runs").click()
    page.get_by_text("McNemar exact").first.wait_for(timeout=60_000)
    settle(page)
    no_exception(page)
    shot(page, "views-02-examples-paired")

    open_page(page, f"{url}/examples?job={server['recorded_xnli']}", "Examples")
    page.get_by_text("To get its per-example predictions").wait_for(timeout=60_000)
    assert page.get_by_text(f"python -m dlfa train --spec {server['recorded_xnli_spec']}").count() == 1
    shot(page, "views-03-examples-recorded")


def test_projector_with_the_embedded_encoder(server, browser_page):
    page, url = browser_page, server["url"]
    open_page(page, f"{url}/projector", "Projector")
    page.get_by_role("button", name="Compute").click()
    page.wait_for_selector(".js-plotly-plot", timeout=240_000)
    settle(page, 240_000)
    no_exception(page)
    scatter = plot_traces(page)[0]
    assert "layer 12" in scatter["title"]  # e5-small: 12 layers, the last one shown first
    assert scatter["points"] == {"English (en)": 40, "German (de)": 40, "French (fr)": 40, "Chinese (zh)": 40}
    shot(page, "views-04-projector-last-layer")
    slider = page.locator("[data-testid='stSlider']").filter(has_text="Layer (0 = embeddings)").get_by_role("slider")
    slider.focus()
    slider.press("Home")
    page.wait_for_function("() => document.querySelector('.js-plotly-plot').layout.title.text.includes('layer 0 ')",
                           timeout=60_000)
    settle(page, 60_000)
    no_exception(page)
    shot(page, "views-05-projector-layer-0")


def test_attention_with_the_embedded_encoder(server, browser_page):
    page, url = browser_page, server["url"]
    open_page(page, f"{url}/attention", "Attention")
    page.wait_for_selector(".js-plotly-plot", timeout=120_000)
    settle(page, 120_000)
    no_exception(page)
    titles = [chart["title"] for chart in plot_traces(page)]
    assert "Attention · layer 12, mean over heads" in titles[0] and any("Line view" in t for t in titles)
    shot(page, "views-06-attention")
