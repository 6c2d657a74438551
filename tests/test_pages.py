"""Every page of the app under streamlit.testing.v1.AppTest: (a) with an empty job store, (b) with a store that
holds a real finished run (a tiny encoder trained a few steps on real UD-POS data: `last` and `dlfa` at two
fusion layers, evaluated on German and French).

Each test points DLFA_CACHE_DIR at its own folder; the built embedded encoder and classroom pack of the
checkout's cache are linked in (read only) so that nothing is rebuilt.
"""
from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dlfa.app import catalog, runs, session
from dlfa.testing import link_built

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
PAGES = sorted(p.name for p in (REPO / "pages").glob("*.py"))
TIMEOUT = 60


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, fixture_root):
    """A cache folder whose store holds two completed jobs with real results (and their model folders): the tiny
    sweep (last, dlfa L1, dlfa L2; seed 1) and a `last` run of seed 2."""
    from dlfa.engine.spec import JobSpec
    from dlfa.jobs.store import JobStore
    from dlfa.testing import build_tiny_encoder
    from dlfa.engine.job import run_job

    cache = link_built(tmp_path_factory.mktemp("cache-run"))
    old = os.environ.get("DLFA_CACHE_DIR")
    os.environ["DLFA_CACHE_DIR"] = str(cache)
    try:
        encoder = str(build_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder-pages")))
        spec = JobSpec(task="udpos", eval_languages=("de", "fr"), encoder=encoder, data_root=str(fixture_root),
                       aggregations=("last", "dlfa"), fusion_layers=(1, 2), max_steps=5, max_train_examples=64,
                       max_eval_examples=32, batch_size=8, learning_rate=1e-3, bootstrap_samples=50,
                       name="tiny sweep")
        store = JobStore(cache / "jobs.sqlite")
        finished = {}
        for one in (spec, replace(spec, aggregations=("last",), fusion_layers=(), seeds=(2,), name="tiny last")):
            job = store.submit(one)
            assert store.claim_job(job.id) and store.mark_running(job.id)
            results = run_job(one, job.out_dir)
            assert store.mark_completed(job.id)
            finished[one.name] = (job.id, results)
    finally:
        if old is None:
            os.environ.pop("DLFA_CACHE_DIR", None)
        else:
            os.environ["DLFA_CACHE_DIR"] = old
    (job_id, results), (other_id, other_results) = finished["tiny sweep"], finished["tiny last"]
    return {"cache": cache, "job_id": job_id, "encoder": encoder, "results": results,
            "other_job_id": other_id, "other_results": other_results}


@pytest.fixture
def empty_cache(tmp_path, monkeypatch, fixture_root):
    cache = link_built(tmp_path / "cache")
    monkeypatch.setenv("DLFA_CACHE_DIR", str(cache))
    monkeypatch.setenv("DLFA_DATA_DIR", str(fixture_root))
    return cache


@pytest.fixture
def run_cache(finished_run, monkeypatch, fixture_root):
    monkeypatch.setenv("DLFA_CACHE_DIR", str(finished_run["cache"]))
    monkeypatch.setenv("DLFA_DATA_DIR", str(fixture_root))
    return finished_run


def page(name: str, timeout: float = TIMEOUT, **state) -> AppTest:
    at = AppTest.from_file(str(REPO / "pages" / name), default_timeout=timeout)
    for key, value in state.items():
        at.session_state[key] = value
    return at


def recorded_job(jobs, name: str):
    """The recorded reproduction's job `name` (its folder under docs/reproduction, e.g. `select/xnli-cls`) among
    the imported `jobs`."""
    return next(j for j in jobs if j.out_dir.relative_to(runs.reproduction_record()).as_posix() == name)


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def plotly_specs(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def x_categories(spec: dict) -> set[str]:
    found = set()
    for trace in spec["data"]:
        x = trace.get("x") or []
        if len(x) == 2 and all(isinstance(part, list) for part in x):
            x = x[1]
        found.update(map(str, x))
    return found


# ----------------------------------------------------------------------------------------------------
# (a) every page renders with an empty store


EMPTY_STORE = {  # page -> (its title, the start of what it says with no finished job; None: it needs none)
    "attention.py": ("Attention", None),
    "attribution.py": ("Attribution", "This page needs a finished `last` run and a finished `dlfa` run"),
    "byol.py": ("Bring your own language", "No saved evaluation files yet."),
    "examples.py": ("Examples", "No finished run yet."),
    "fusion_weights.py": ("Fusion weights", "No finished DLFA run yet"),
    "home.py": ("DLFA Explorer", None),
    "intermediate_study.py": ("Intermediate tasks", "No finished study yet"),
    "jobs.py": ("Jobs", "No jobs yet"),
    "launch.py": ("Launch a job", None),
    "layer_analysis.py": ("Layer analysis", "Choose languages and press Compute"),
    "layer_comparison.py": ("Layer comparison", "No finished runs yet."),
    "projector.py": ("Projector", "Choose the points and press Compute."),
    "results.py": ("Results", "No finished runs yet."),
}


def test_every_page_is_checked_with_an_empty_store():
    assert sorted(EMPTY_STORE) == PAGES


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_with_an_empty_store(name, empty_cache):
    at = page(name).run()
    no_errors(at)
    title, empty = EMPTY_STORE[name]
    assert [t.value for t in at.title] == [title]
    if empty:
        assert any(i.value.startswith(empty) for i in at.info), [i.value for i in at.info]


def test_jobs_says_how_many_jobs_run_at_once_and_their_share_of_the_cores(empty_cache, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("DLFA_MAX_CONCURRENT_JOBS", "1")
    assert any("One job runs at a time" in c.value for c in page("jobs.py").run().caption)
    monkeypatch.setenv("DLFA_MAX_CONCURRENT_JOBS", "2")
    from dlfa.jobs.launch import available_cores

    cores = available_cores()
    expected = f"2 jobs run at once (DLFA_MAX_CONCURRENT_JOBS); the others wait queued and start by themselves; " \
               f"a CPU job uses {max(1, cores // 2)} of this machine's {cores} cores."
    assert any(c.value.endswith(expected) for c in page("jobs.py").run().caption)
    monkeypatch.setenv("DLFA_MAX_CONCURRENT_JOBS", "two")
    at = page("jobs.py").run()
    assert not at.exception
    assert [e.value for e in at.error] == ["DLFA_MAX_CONCURRENT_JOBS must be a whole number, got 'two'"]


def test_app_entry_renders_sidebar_and_home(empty_cache):
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.sidebar.text_input(key=session.ENCODER_KEY).value == "embedded:e5-small"
    assert any("data root" in c.value for c in at.sidebar.caption)
    # AppTest re-runs only the page after the first run, not app.py: give the bad spec before a fresh first run.
    bad = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT)
    bad.session_state[session.ENCODER_KEY] = "no-such-scheme://x"
    bad.run()
    assert any("unknown encoder scheme" in e.value for e in bad.sidebar.error)


# ----------------------------------------------------------------------------------------------------
# (b) with a finished run selected


@pytest.mark.integration
def test_results_shows_chart_with_languages_and_table(run_cache):
    at = page("results.py", dlfa_selected_jobs=[run_cache["job_id"]]).run()
    no_errors(at)
    specs = plotly_specs(at)
    assert specs and any(len(x_categories(s)) >= 2 for s in specs)
    assert len(at.dataframe) >= 1
    assert {"dl_csv", "dl_json", "dl_html"} <= {b.key for b in at.get("download_button")}
    at.button(key="make_png").click().run()  # kaleido with Debian's chromium (installed by make test)
    no_errors(at)
    png, why = at.session_state["results_png"]
    assert why == "" and png.startswith(b"\x89PNG\r\n\x1a\n") and not at.info
    assert "dl_png" in {b.key for b in at.get("download_button")}


@pytest.mark.integration
def test_jobs_lists_the_run_with_its_controls(run_cache):
    job_id = run_cache["job_id"]
    at = page("jobs.py").run()
    no_errors(at)
    assert any(f"**tiny sweep** `{job_id}` — **completed**" in m.value for m in at.markdown)
    buttons = {b.key for b in at.button}
    assert {f"results_{job_id}", f"delete_{job_id}"} <= buttons  # a finished job: no cancel, no resume
    assert not {f"cancel_{job_id}", f"resume_{job_id}"} & buttons
    assert at.button(key=f"delete_{job_id}").disabled  # deleting needs the confirmation first
    at.checkbox(key=f"confirm_{job_id}").check().run()
    assert not at.button(key=f"delete_{job_id}").disabled


@pytest.mark.integration
def test_jobs_and_results_draw_each_runs_loss_and_english_dev_curves(run_cache):
    names = {"last-s1", "dlfa-L1-s1", "dlfa-L2-s1"}

    at = page("jobs.py").run()
    no_errors(at)
    assert any(e.label == "training curves" for e in at.expander)
    curves = next(c for c in plotly_specs(at) if any(t.get("name") == "last-s1 dev" for t in c["data"]))
    traces = {t["name"]: t for t in curves["data"] if t.get("name")}
    assert set(traces) >= names | {f"{name} dev" for name in names}
    for run in run_cache["results"]["runs"]:
        name = ("last-s1" if run["spec"]["aggregations"] == ["last"]
                else f"dlfa-L{run['spec']['fusion_layers'][0]}-s1")
        assert traces[name]["y"] == pytest.approx([loss for _, _, loss in run["history"]["loss"]])
        assert traces[f"{name} dev"]["y"] == pytest.approx([score for _, score in run["history"]["dev"]])
    assert "English dev accuracy" in json.dumps(curves["layout"])

    at = page("results.py", dlfa_selected_jobs=[run_cache["job_id"]]).run()
    no_errors(at)
    assert "Training of tiny sweep" in [s.value for s in at.subheader]
    table = next(d.value for d in at.dataframe if "training" in d.value.columns)
    assert set(table["run"]) == names
    assert set(table["training"]) == {"best dev at step 5 of 5"}  # a fixed budget: no patience, no cap to reach
    dev = dict(zip(table["run"], table["English dev"]))
    assert dev["last-s1"] == pytest.approx(next(r["dev_score"] for r in run_cache["results"]["runs"]
                                                 if r["spec"]["aggregations"] == ["last"]))


@pytest.mark.integration
def test_launch_bad_fusion_layer_shows_message_next_to_field_and_submits_nothing(run_cache):
    from dlfa.jobs.store import JobStore

    before = len(JobStore().list())
    at = page("launch.py").run()
    no_errors(at)
    at.text_input(key="launch_fusion_layers").input("99").run()
    at.button(key="launch_submit").click().run()
    errors = [e.value for e in at.error]
    assert any("fusion layer" in e and "out of range" in e for e in errors), errors
    assert len(JobStore().list()) == before
    assert at.session_state["launch_problems"].keys() == {"fusion_layers"}


@pytest.mark.integration
def test_fusion_weights_heatmap_after_typing_a_sentence(run_cache):
    at = page("fusion_weights.py", dlfa_selected_jobs=[run_cache["job_id"]]).run()
    no_errors(at)
    at.text_input(key="fw_text").input("Das ist ein kleiner Test.").run()
    no_errors(at)
    kinds = {trace["type"] for spec in plotly_specs(at) for trace in spec["data"]}
    assert "heatmap" in kinds


@pytest.mark.integration
def test_layer_comparison_shows_the_grid_heatmap(run_cache):
    at = page("layer_comparison.py", dlfa_selected_jobs=[run_cache["job_id"]]).run()
    no_errors(at)
    specs = plotly_specs(at)
    grid = [s for s in specs if any(t["type"] == "heatmap" for t in s["data"]) and
            any(t.get("name") == "best per language" for t in s["data"])]
    assert grid, "no layer × language grid"
    assert len(specs) >= 3  # two side-by-side result charts and the grid


WITH_THE_RUN = {  # page -> what it shows with the finished runs in the store
    "home.py": lambda at, run: {m.label: m.value for m in at.metric}["Data"] == "data root",
    "byol.py": lambda at, run: (at.selectbox(key="byol_task").value == "udpos"
                                and not [o for o in at.selectbox(key="byol_task").options  # no QA/retrieval uploads
                                         if o.startswith(("xquad ", "tatoeba "))]
                                and any(s.value == "Evaluate a run on it" for s in at.subheader)),
    "layer_analysis.py": lambda at, run: (not at.button(key="la_compute").disabled
                                          and {"de", "fr"} <= set(at.multiselect(key="la_languages").value)),
}


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(WITH_THE_RUN))
def test_other_pages_render_with_the_run(name, run_cache):
    at = page(name, dlfa_selected_jobs=[run_cache["job_id"]]).run()
    no_errors(at)
    assert WITH_THE_RUN[name](at, run_cache)


@pytest.mark.integration
def test_layer_analysis_computes_curves_on_parallel_data(run_cache):
    at = page("layer_analysis.py", la_encoder=run_cache["encoder"], la_languages=["de", "fr"]).run()
    no_errors(at)
    at.slider(key="la_pairs").set_value(40).run()
    at.button(key="la_compute").click().run()
    no_errors(at)
    specs = plotly_specs(at)
    assert len(specs) == 2 and all({t["name"] for t in s["data"]} == {"German (de)", "French (fr)"} for s in specs)


@pytest.mark.integration
def test_layer_analysis_of_a_fine_tuned_run_shows_what_fine_tuning_changed(run_cache):
    at = page("layer_analysis.py", la_languages=["de", "fr"], dlfa_selected_jobs=[run_cache["job_id"]]).run()
    at.radio(key="la_source").set_value("a fine-tuned run").run()
    at.slider(key="la_pairs").set_value(40).run()
    at.button(key="la_compute").click().run()
    no_errors(at)
    assert any(s.value == "What fine-tuning changed" for s in at.subheader)
    per_language, _, retrieval_change, cka_change = plotly_specs(at)
    assert {t["name"] for t in per_language["data"]} == {"German (de)", "French (fr)"}
    base, tuned = (t["y"] for t in cka_change["data"])
    assert base != tuned  # the run's fine-tuned encoder was analysed, not the base encoder again
    assert any("Last layer, mean over the 2 languages" in c.value for c in at.caption)


@pytest.mark.integration
def test_attribution_side_by_side_with_delta(run_cache):
    at = page("attribution.py", dlfa_selected_jobs=[run_cache["job_id"]]).run()
    no_errors(at)
    labels = [m.label for m in at.metric]
    assert labels.count("Predicted") == 2 and labels.count("Convergence delta") == 2
    specs = plotly_specs(at)
    assert len(specs) == 2 and all(s["data"][0]["type"] == "bar" for s in specs)
    assert specs[0]["layout"]["yaxis"]["range"] == specs[1]["layout"]["yaxis"]["range"]  # one shared scale


@pytest.mark.integration
def test_byol_saves_a_file_and_evaluates_the_run_on_it(run_cache, data_root, tmp_path):
    source = next((data_root / "ud").glob("UD_Marathi-UFAL/*-test.conllu"))
    small = tmp_path / "mr-small.conllu"
    small.write_text("\n\n".join(source.read_text(encoding="utf-8").split("\n\n")[:20]) + "\n\n", encoding="utf-8")
    at = page("byol.py", dlfa_selected_jobs=[run_cache["job_id"]]).run()
    no_errors(at)
    at.text_input(key="byol_language").input("mr").run()
    at.radio(key="byol_source").set_value("path on this machine").run()
    at.text_input(key="byol_path").input(str(small)).run()
    at.button(key="byol_save").click().run()
    no_errors(at)
    assert any("Saved mr-small.conllu" in s.value for s in at.success)
    at.button(key="byol_evaluate").click().run()
    no_errors(at)
    job_id = at.session_state["byol_job"][0]
    assert any(f"Evaluating in job `{job_id}`" in i.value for i in at.info)  # not in this process
    job = wait_until_done(job_id)
    assert job.status == "completed", job.error
    at.run()
    no_errors(at)
    assert at.metric and at.metric[0].label.startswith("accuracy on udpos")
    from dlfa.engine.uploads import evaluation_result

    result = evaluation_result(job)
    assert at.metric[0].value == f"{result['value']:.2f}" and result["n"] == 20 and result["language"] == "mr"


# ----------------------------------------------------------------------------------------------------
# (c) the repository's record of the reproduction, opened from Home


@pytest.mark.parametrize("version", [None, {"sources_sha256": "ab" * 32, "git_commit": None, "git_dirty": None}])
def test_home_warns_that_a_record_whose_runs_predate_code_versions_is_provisional(version, empty_cache, monkeypatch,
                                                                                  tmp_path):
    run = {"spec": {"task": "xnli", "eval_languages": ["de"], "aggregations": ["last"], "seeds": [1]},
           "status": "completed", "metrics": {"de": {"metric": "accuracy", "value": 60.0}},
           **({"code_version": version} if version else {})}
    job = tmp_path / "record/finetune/xnli-cls-last"
    job.mkdir(parents=True)
    (job / "results.json").write_text(json.dumps({"spec": run["spec"], "status": "completed", "runs": [run]}))
    monkeypatch.setattr(runs, "reproduction_record", lambda: tmp_path / "record")
    at = page("home.py").run()
    no_errors(at)
    assert any(s.value == "The recorded reproduction" for s in at.subheader)
    assert any("So far: layer sweeps (probe): not run yet; learning-rate and layer choices: not run yet; fine-tuning "
               "over seeds: 1 run; the English intermediate-task study: not run yet." in m.value for m in at.markdown)
    warned = [w.value for w in at.warning if w.value.startswith("Provisional: these runs predate code versions")]
    assert len(warned) == (0 if version else 1)


def test_home_opens_the_recorded_reproduction_for_the_other_pages(empty_cache):
    from dlfa.jobs.recorded import job_folders
    from dlfa.jobs.store import JobStore

    at = page("home.py").run()
    no_errors(at)
    assert any("So far: layer sweeps (probe): 84 runs;" in m.value for m in at.markdown)  # 6 settings x 14
    at.button(key="open_record").click().run()
    no_errors(at)
    folders = job_folders(runs.reproduction_record())
    assert any(s.value.startswith(f"{len(folders)} recorded jobs added") for s in at.success)
    jobs = {job.out_dir.relative_to(runs.reproduction_record()).as_posix(): job for job in JobStore().list()}
    assert set(jobs) == {f.relative_to(runs.reproduction_record()).as_posix() for f in folders}

    at = page("jobs.py").run()
    no_errors(at)
    assert sum("read in place" in c.value for c in at.caption) == len(folders)

    xnli = recorded_job(jobs.values(), "select/xnli-cls")  # last, DLFA, scalar-mix at 3 rates each
    at = page("results.py", dlfa_selected_jobs=[xnli.id]).run()
    no_errors(at)
    assert any("Sweep grid" in s.value for s in at.subheader)
    bars = plotly_specs(at)[0]
    assert len(x_categories(bars)) == 14 and {"German (de)", "Swahili (sw)"} <= x_categories(bars)
    assert len(bars["data"]) == len(runs.job_results(xnli).runs) == 9  # one series per run, rates told apart
    assert any(trace["name"].endswith("scalar-mix lr 5e-05 (seed 1)") for trace in bars["data"])

    at = page("fusion_weights.py", dlfa_selected_jobs=[xnli.id]).run()
    no_errors(at)
    assert any("not on this machine" in i.value for i in at.info)
    by_language = plotly_specs(at)[0]
    assert len(x_categories(by_language)) == 14  # the recorded fusion statistics of the 14 XNLI languages

    at = page("layer_analysis.py").run()
    at.button(key="la_recorded").click().run()
    no_errors(at)
    specs = plotly_specs(at)
    assert len(specs) == 2 and all(len(s["data"]) == 14 for s in specs)
    assert any("Recorded by the reproduction (docs/REPRODUCTION.md): embedded:e5-small" in c.value for c in at.caption)


def test_layer_analysis_shows_a_recorded_fine_tuned_encoder_against_the_base(empty_cache, monkeypatch):
    """A record's analysis of a fine-tuned encoder (layers/tuned.json; here one run of the earlier record's study)
    is drawn beside the base encoder's, with what fine-tuning changed per layer."""
    record = FIXTURES / "recorded_layers"
    monkeypatch.setattr(runs, "reproduction_record", lambda: record)
    tuned = json.loads((record / "layers" / "tuned.json").read_text())["runs"]["study/xnli-3/dlfa-L0-s1"]
    at = page("layer_analysis.py").run()
    assert at.selectbox(key="la_recorded_which").options == [runs.RECORDED_BASE, "study/xnli-3/dlfa-L0-s1"]
    at.selectbox(key="la_recorded_which").set_value("study/xnli-3/dlfa-L0-s1").run()
    at.button(key="la_recorded").click().run()
    no_errors(at)
    assert any(s.value == "What fine-tuning changed" for s in at.subheader)
    per_language, _, retrieval_change, _ = plotly_specs(at)
    german = next(t for t in per_language["data"] if t["name"] == "German (de)")
    assert list(german["y"]) == pytest.approx(tuned["retrieval"]["de"])  # the tuned encoder's curve, not the base's
    assert len(retrieval_change["data"]) == 2  # base and fine-tuned side by side


def test_every_cached_function_is_in_one_module_and_keys_all_its_parameters():
    """st.cache_* skips parameters whose names start with "_" when it builds the key: none of ours may; and no
    module of the app but dlfa/app/cache.py caches (so that one module shows what every key holds)."""
    import ast

    tree = ast.parse((REPO / "dlfa" / "app" / "cache.py").read_text())
    cached = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
              and any("cache_" in ast.unparse(d) for d in f.decorator_list)]
    assert len(cached) >= 20
    hidden = {f.name: [a.arg for a in f.args.args + f.args.kwonlyargs if a.arg.startswith("_")] for f in cached}
    assert not any(hidden.values()), hidden
    modules = [REPO / "app.py", *(REPO / "pages").glob("*.py"), *(REPO / "dlfa").rglob("*.py")]
    elsewhere = [p.relative_to(REPO).as_posix() for p in modules if p != REPO / "dlfa" / "app" / "cache.py"
                 and any(call in p.read_text() for call in ("st.cache_", "cache_data(", "cache_resource("))]
    assert elsewhere == []


@pytest.mark.integration
def test_fusion_weights_page_shows_a_run_retrained_in_place(finished_run, tmp_path, monkeypatch, fixture_root):
    """A run's model replaced in its folder (a rerun) is loaded again: the page's W changes with the weights."""
    import shutil

    from safetensors.torch import load_file, save_file

    from dlfa.jobs.store import JobStore

    folder = shutil.copytree(finished_run["cache"] / "runs" / finished_run["job_id"], tmp_path / "job")
    cache = link_built(tmp_path / "cache")
    monkeypatch.setenv("DLFA_CACHE_DIR", str(cache))
    monkeypatch.setenv("DLFA_DATA_DIR", str(fixture_root))
    (job,), _ = JobStore(cache / "jobs.sqlite").add_finished_under(folder)

    def mean_w() -> str:
        at = page("fusion_weights.py", dlfa_selected_jobs=[job.id], fw_unit=f"{job.id}/dlfa-L1-s1").run()
        at.text_input(key="fw_text").input("Das ist ein kleiner Test.").run()
        no_errors(at)
        return next(m.value for m in at.metric if m.label.startswith("Mean W"))

    before = mean_w()
    weights_file = folder / "dlfa-L1-s1" / "model" / "model.safetensors"
    weights = load_file(weights_file)
    for branch in ("local", "global"):
        weights[f"aggregation.{branch}_branch.expand.bias"].fill_(20.0)  # W = sigmoid(local + global) → 1
    save_file(weights, weights_file, metadata={"format": "pt"})  # same size, same name: only its content changed
    after = mean_w()
    assert before != "1.000" and after == "1.000", (before, after)


@pytest.fixture
def pack_cache(classroom_pack, tmp_path, monkeypatch):
    """No data root: the classroom pack is the source; submitted jobs run the fast stand-in engine."""
    cache = link_built(tmp_path / "cache")
    if not (cache / "pack").exists():
        (cache / "pack").symlink_to(classroom_pack, target_is_directory=True)
    assert (cache / "pack" / "MANIFEST.json").is_file()
    monkeypatch.setenv("DLFA_CACHE_DIR", str(cache))
    monkeypatch.delenv("DLFA_DATA_DIR", raising=False)
    monkeypatch.setenv("DLFA_JOB_RUNNER", "jobs_fake_engine:run_job")
    monkeypatch.setenv("PYTHONPATH", str(REPO / "tests"))
    monkeypatch.setenv("DLFA_FAKE_STEP_S", "0.01")
    return cache


def wait_until_done(job_id: str, timeout: float = 60.0):
    import time

    from dlfa.jobs.launch import refresh
    from dlfa.jobs.store import JobStore

    store = JobStore()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        refresh(store)
        job = store.get(job_id)
        if not job.active:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {store.get(job_id).status} after {timeout} s")


def test_launch_with_the_classroom_pack_opens_on_a_runnable_task_and_says_why_others_are_not(pack_cache):
    at = page("launch.py").run()
    no_errors(at)
    task = at.selectbox(key="launch_task")
    assert task.value == "pos-classroom"
    assert [o.split(" — ")[0] for o in task.options] == ["pos-classroom", "sentiment-classroom"]
    assert at.multiselect(key="launch_languages").value == ["de", "es"]
    why = at.expander[0].markdown[0].value
    assert "- **udpos**: no English training data in the classroom pack" in why
    assert "- **sst2**: no English training data" in why
    assert at.radio(key="launch_preset").options == ["0 tasks"]
    assert any(c.value.startswith("3 tasks: unavailable, 3 intermediate tasks asked for, but the classroom pack")
               and "has only 1 with English training data: sentiment-classroom" in c.value for c in at.caption)

    at.button(key="launch_submit").click().run()
    no_errors(at)
    job_id = at.session_state["launch_submitted"]
    job = wait_until_done(job_id)
    assert job.status == "completed" and job.spec.task == "pos-classroom" and job.spec.eval_languages == ("de", "es")


def test_launch_offers_udpos_first_with_a_data_root(empty_cache):
    at = page("launch.py").run()
    no_errors(at)
    assert at.selectbox(key="launch_task").value == "udpos"
    offered = [o.split(" — ")[0] for o in at.selectbox(key="launch_task").options]
    assert {"udpos", "panx", "xnli", "pawsx"} <= set(offered) and "sst2" not in offered  # sst2: English only
    assert "- **sst2**: an English-only task (used as an intermediate task)" in at.expander[0].markdown[0].value


def test_launch_form_turns_tensorboard_tracking_on(pack_cache):
    at = page("launch.py").run()
    at.checkbox(key="launch_tensorboard").check().run()
    at.button(key="launch_submit").click().run()
    no_errors(at)
    job = wait_until_done(at.session_state["launch_submitted"])
    assert job.spec.tensorboard is True


# ----------------------------------------------------------------------------------------------------
# Shared-server mode (dlfa.app.serving): DLFA_SHARED=1 stands for a server bound to the network


@pytest.fixture
def stop_jobs_after():
    yield
    from dlfa.jobs import launch
    from dlfa.jobs.store import JobStore

    for job in JobStore().list(("queued", "running")):  # no worker outlives the test
        launch.hard_stop(job)


def test_shared_server_byol_takes_uploads_only(empty_cache, monkeypatch):
    local = page("byol.py").run()
    assert local.radio(key="byol_source").options == ["upload", "path on this machine"]
    monkeypatch.setenv("DLFA_SHARED", "1")
    at = page("byol.py", byol_source="path on this machine", byol_path="/etc/passwd", byol_language="de").run()
    no_errors(at)
    assert [r.key for r in at.radio] == [] and "byol_path" not in [t.key for t in at.text_input]
    assert len(at.get("file_uploader")) == 1 and at.button(key="byol_save").disabled


def test_shared_server_sidebar_offers_only_the_operators_data_roots_and_encoders(empty_cache, fixture_root, monkeypatch):
    monkeypatch.setenv("DLFA_SHARED", "1")
    monkeypatch.setenv("DLFA_ALLOWED_DATA_ROOTS", str(fixture_root))
    monkeypatch.setenv("DLFA_ALLOWED_ENCODERS", "bert-base-multilingual-cased")
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT)
    at.session_state[session.DATA_ROOT_KEY] = "/etc"
    at.session_state[session.ENCODER_KEY] = "/root/secret-model"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.key for t in at.sidebar.text_input] == []  # no free paths
    data = at.sidebar.selectbox(key=session.DATA_ROOT_KEY)
    assert data.options == ["the server's data source", str(fixture_root.resolve())] and data.value == ""
    encoder = at.sidebar.selectbox(key=session.ENCODER_KEY)
    assert encoder.options == ["embedded:e5-small", "bert-base-multilingual-cased"]
    assert encoder.value == "embedded:e5-small"
    assert any(c.value.startswith("Shared server:") for c in at.sidebar.caption)


def test_shared_server_caps_the_jobs_of_a_session(pack_cache, monkeypatch, stop_jobs_after):
    from dlfa.jobs.store import JobStore

    monkeypatch.setenv("DLFA_SHARED", "1")
    monkeypatch.setenv("DLFA_SESSION_JOB_LIMIT", "1")
    monkeypatch.setenv("DLFA_FAKE_STEP_S", "2")  # the first job is still running at the second submit
    at = page("launch.py").run()
    assert at.selectbox(key="launch_encoder").options == ["embedded:e5-small"]  # no free encoder path
    at.button(key="launch_submit").click().run()
    first = at.session_state["launch_submitted"]
    at.button(key="launch_submit").click().run()
    message = "this session has 1 queued or running job(s) and may have at most 1 on this shared server"
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    jobs = JobStore().list()
    assert [job.id for job in jobs] == [first]
    assert jobs[0].options["session"] == at.session_state[session.SESSION_KEY]


def test_shared_server_jobs_of_other_sessions_need_the_operator_password(pack_cache, monkeypatch, stop_jobs_after):
    from dlfa.engine.spec import JobSpec
    from dlfa.jobs.store import JobStore

    monkeypatch.setenv("DLFA_SHARED", "1")
    monkeypatch.setenv("DLFA_OPERATOR_PASSWORD", "s3cret")
    monkeypatch.setenv("DLFA_FAKE_STEP_S", "2")
    store = JobStore()
    spec = JobSpec(task="pos-classroom", eval_languages=("de",))
    mine = store.submit(spec, options={"session": "me"})
    theirs = store.submit(spec, options={"session": "you"})
    at = page("jobs.py", **{session.SESSION_KEY: "me"}).run()
    no_errors(at)
    buttons = {b.key for b in at.button}
    assert f"cancel_{mine.id}" in buttons or f"delete_{mine.id}" in buttons
    assert not {f"cancel_{theirs.id}", f"delete_{theirs.id}", f"resume_{theirs.id}"} & buttons
    assert any(c.value == "Another session's job" for c in at.caption)

    at.text_input(key="dlfa_operator_password").input("guess").run()
    assert any(e.value.startswith("Wrong operator password") for e in at.error)
    at.text_input(key="dlfa_operator_password").input("s3cret").run()
    no_errors(at)
    buttons = {b.key for b in at.button}
    assert f"cancel_{theirs.id}" in buttons or f"delete_{theirs.id}" in buttons
    assert any(c.value.startswith("Operator: you may cancel") for c in at.caption)


def test_launch_refuses_a_negative_seed_next_to_its_field(empty_cache):
    from dlfa.jobs.store import JobStore

    at = page("launch.py").run()
    at.text_input(key="launch_seeds").input("1,-1").run()
    at.button(key="launch_submit").click().run()
    assert at.session_state["launch_problems"] == {"seeds": "each must be a whole number in 0…4294967295, got [-1]"}
    assert any(e.value == "each must be a whole number in 0…4294967295, got [-1]" for e in at.error)
    assert JobStore().list() == []


def test_launch_tasks_from_the_hub_are_not_probed(monkeypatch):
    """Counting the hub's examples loads every split: its target tasks are offered without a look."""
    from dlfa.data.registry import DataSource

    monkeypatch.setattr(catalog, "resolve_source", lambda data_root: DataSource.hub())
    monkeypatch.setattr(catalog, "task_languages_now", lambda *a: pytest.fail("the hub was probed"))
    runnable, unavailable = catalog.target_tasks(None)
    assert {"udpos", "panx", "xnli", "pawsx"} <= {t.name for t in runnable}
    assert unavailable["sst2"] == "an English-only task (used as an intermediate task)"


def test_jobs_shows_a_running_job_without_finished_steps_as_stalled(empty_cache, monkeypatch):
    import sqlite3
    import time

    from dlfa.engine.spec import JobSpec
    from dlfa.jobs.store import JobStore

    store = JobStore()
    job = store.submit(JobSpec(task="pos-classroom", eval_languages=("de",), name="hung worker"))
    assert store.claim_job(job.id) and store.mark_running(job.id, pid=os.getpid())
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE jobs SET progress_at = ? WHERE id = ?", (time.time() - 900, job.id))
    store.heartbeat(job.id)  # the worker's heartbeat thread lives on
    monkeypatch.setenv("DLFA_STALL_AFTER_S", "600")
    at = page("jobs.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(f"`{job.id}` — **stalled**" in m.value for m in at.markdown)
    assert any("No training step has finished for 15 min" in w.value for w in at.warning)
    monkeypatch.setenv("DLFA_STALL_AFTER_S", "soon")
    at = page("jobs.py").run()
    assert not at.exception
    assert any("DLFA_STALL_AFTER_S must be a positive number of seconds, got 'soon'" in e.value for e in at.error)


def test_launch_says_which_language_a_broken_file_disables(tmp_path, monkeypatch):
    sentence = "1\tHallo\thallo\tINTJ\t_\t_\t0\troot\t_\t_\n2\twelt\twelt\tNOUN\t_\t_\t1\tobj\t_\t_\n\n"
    root = tmp_path / "data"
    for language, split, text in [("en", "train", sentence), ("en", "dev", sentence), ("en", "test", sentence),
                                  ("it", "test", sentence), ("de", "test", "")]:
        folder = root / "ud" / f"UD_{language}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{language}_pud-ud-{split}.conllu").write_text(text, encoding="utf-8")
    monkeypatch.setenv("DLFA_CACHE_DIR", str(link_built(tmp_path / "cache")))
    monkeypatch.setenv("DLFA_DATA_DIR", str(root))
    at = page("launch.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="launch_task").value == "udpos"
    assert at.multiselect(key="launch_languages").options == [catalog.language_label("it")]
    warning = " ".join(w.value for w in at.warning)
    assert "1 language(s) of udpos disabled" in warning and "de_pud-ud-test.conllu" in warning


@pytest.mark.integration
def test_layer_analysis_offers_tatoeba_retrieval_per_layer_and_language(run_cache, tmp_path, monkeypatch):
    root = tmp_path / "data"
    (root / "retrieval").mkdir(parents=True)
    (root / "retrieval" / "tatoeba").symlink_to(REPO / "tests" / "fixtures" / "tatoeba")
    monkeypatch.setenv("DLFA_DATA_DIR", str(root))
    at = page("layer_analysis.py", la_encoder=run_cache["encoder"]).run()
    at.radio(key="la_data").set_value("Tatoeba (XTREME)").run()
    no_errors(at)
    assert at.multiselect(key="la_languages").value == ["de", "fr"]
    at.button(key="la_compute").click().run()
    no_errors(at)
    (curves,) = plotly_specs(at)
    assert {t["name"] for t in curves["data"]} == {"German (de)", "French (fr)"}
    assert all(len(t["y"]) == 5 and all(0 <= y <= 1 for y in t["y"]) for t in curves["data"])  # layers 0-4
    table = at.dataframe[0].value
    assert list(table[""]) == ["best layer", "last layer"] * 2 and set(table["layer"]) <= set(range(5))
    assert any("German (de) 8 pairs, French (fr) 6 pairs" in c.value for c in at.caption)
