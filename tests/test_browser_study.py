"""The Intermediate tasks page in a real browser (Debian's chromium driven by Playwright), with screenshots in
test-artifacts/: a finished study's tables and answer (its jobs' results made up as in tests/test_study.py), and
designing a study (arms, seeds) with its jobs previewed and a bad design refused.
Run with `pytest -m browser tests/test_browser_study.py`."""
from __future__ import annotations

import pytest
from test_browser import browser_page, serving_app, settle, shot  # noqa: F401 (browser_page: a fixture)
from test_study import study_results

from dlfa.testing import link_built

pytestmark = pytest.mark.browser
NAME = "study 2026-12-02 10:00:00"


@pytest.fixture(scope="module")
def server(tmp_path_factory, fixture_root):
    from dlfa.engine.spec import JobSpec
    from dlfa.jobs.store import JobStore
    from dlfa.results import write_results

    cache = link_built(tmp_path_factory.mktemp("browser-study-cache"))
    store = JobStore(cache / "jobs.sqlite")
    for key, results in study_results().items():
        job = store.submit(JobSpec(task="xnli", eval_languages=("de", "sw"), name=f"{NAME}: {key}"),
                           out_dir=cache / "studies" / "a-study" / key)
        write_results(job.out_dir, results)
        assert store.claim_job(job.id) and store.mark_running(job.id) and store.mark_completed(job.id)
    with serving_app(cache, fixture_root) as url:
        yield {"url": url, "cache": cache}


def no_exception(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0, \
        page.locator("[data-testid='stException']").first.inner_text()


def test_the_study_page_shows_the_answer_and_designs_a_study(server, browser_page):
    page = browser_page
    page.goto(f"{server['url']}/intermediate_study")
    page.get_by_role("heading", name="Intermediate tasks").first.wait_for(timeout=60_000)
    settle(page, 120_000)
    no_exception(page)
    assert page.get_by_text("Did not learn in at least one run: boolq.").count() == 1
    assert page.get_by_text("Left out of every mean and pair: study/xnli-arm-3/dlfa-L0-s2").count() == 1
    assert page.get_by_text("Against 0 tasks: 3 tasks: target mean +1.0 [+1.0, +1.0] (above 0)").count() == 1
    budget = "Every arm with a finished run spent the same intermediate budget: 600 optimizer steps"
    assert page.get_by_text(budget).count() == 1
    shot(page, "15-intermediate-study-results")

    page.get_by_text("Design and launch a study").click()
    arms = page.get_by_role("textbox", name="Arms: numbers of intermediate tasks")
    arms.fill("0,2")
    arms.press("Enter")
    settle(page)
    assert page.get_by_text("jobs: 1 arm job(s) first, then the jobs that start from their encoders").count() == 1
    seeds = page.get_by_role("textbox", name="Seeds (≥ 3)")
    seeds.fill("1,2")
    seeds.press("Enter")
    settle(page)
    page.get_by_role("button", name="Launch the study").click()
    settle(page)
    assert page.get_by_text("seeds: at least 3 distinct seeds").count() == 1  # refused, nothing submitted
    no_exception(page)
    shot(page, "16-intermediate-study-design")
