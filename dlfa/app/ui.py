"""Shared helpers of the Streamlit pages (app.py, pages/*.py): the sidebar settings kept in session_state,
the job store, finished runs and their units, cached model loading, result tables, labels, and one error
wrapper (`run_page`) so that a DlfaError shows as a message, never as a traceback.

Pages stay thin: they lay widgets out and call these helpers, dlfa.charts and the library.
"""
from __future__ import annotations

import functools
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd
import streamlit as st

from dlfa.app import serving
from dlfa.model.encoders import DEFAULT_ENCODER
from dlfa.errors import DlfaError
from dlfa.paths import cache_dir

# Session-state keys of the sidebar (app.py renders the widgets; pages only read them).
DATA_ROOT_KEY = "dlfa_data_root"
ENCODER_KEY = "dlfa_encoder"
DEVICE_KEY = "dlfa_device"
DEVICE_CHOICES = ("auto", "cpu", "cuda")
DEVICE_LABELS = {"auto": "auto", "cpu": "CPU", "cuda": "CUDA"}

PAGES = {  # page file -> (title, icon); app.py builds st.navigation from this, pages link by file
    "pages/home.py": ("Home", ":material/home:"),
    "pages/launch.py": ("Launch", ":material/rocket_launch:"),
    "pages/jobs.py": ("Jobs", ":material/list_alt:"),
    "pages/results.py": ("Results", ":material/bar_chart:"),
    "pages/fusion_weights.py": ("Fusion weights", ":material/grid_on:"),
    "pages/layer_comparison.py": ("Layer comparison", ":material/compare:"),
    "pages/layer_analysis.py": ("Layer analysis", ":material/stacked_line_chart:"),
    "pages/attribution.py": ("Attribution", ":material/highlight:"),
    "pages/intermediate_study.py": ("Intermediate tasks", ":material/science:"),
    "pages/byol.py": ("Bring your own language", ":material/upload_file:"),
}


# ----------------------------------------------------------------------------------------------------
# Errors


def ensure_navigation() -> None:
    """Make a deep link on a freshly started server go through app.py.

    Streamlit treats the first run of a server whose main script has a `pages/` folder beside it as a legacy
    multipage app (it runs pages/<name>.py alone: no sidebar settings, file names as the menu) until some run
    calls st.navigation. When a page finds itself run that way, it switches the server to st.navigation mode
    and reruns, so app.py (sidebar, navigation) runs and routes to this page by its URL.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def run_page(body: Callable[[], None]) -> None:
    """Run a page's body; a DlfaError (a problem the user can fix) is shown as st.error with its message."""
    ensure_navigation()
    try:
        body()
    except DlfaError as exc:
        st.error(str(exc), icon=":material/error:")


def guarded(func: Callable) -> Callable:
    """Wrap a callable (e.g. a fragment body) so that a DlfaError shows as st.error instead of escaping."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except DlfaError as exc:
            st.error(str(exc), icon=":material/error:")
            return None

    return wrapper


def field_error(problems: dict[str, str], *names: str) -> None:
    """Show the problem(s) of these spec fields right under the widget that sets them."""
    for name in names:
        if name in problems:
            st.error(problems[name], icon=":material/error:")


# ----------------------------------------------------------------------------------------------------
# Shared-server mode (dlfa.app.serving): on when the server is reachable from other machines

SESSION_KEY = "dlfa_session_id"
OPERATOR_KEY = "dlfa_operator"


def shared() -> bool:
    """Whether this server is shared (not bound to localhost only, or DLFA_SHARED=1)."""
    from streamlit import config

    return serving.shared_mode(config.get_option("server.address"))


def session_id() -> str:
    """This browser session's id, recorded with the jobs it submits."""
    return st.session_state.setdefault(SESSION_KEY, secrets.token_hex(8))


def may_control(job) -> bool:
    """Whether this session may cancel, resume or delete a job (always, unless the server is shared)."""
    return not shared() or serving.may_control(job, session_id(), bool(st.session_state.get(OPERATOR_KEY)))


def check_capacity(adding: int = 1) -> None:
    """On a shared server: DlfaError when `adding` more jobs would pass this session's limit."""
    if shared():
        serving.check_session_capacity(store().list(), session_id(), adding)


def operator_login() -> None:
    """On a shared server: a password field that lets the operator control every job in this session."""
    if not shared():
        return
    if st.session_state.get(OPERATOR_KEY):
        st.caption("Operator: you may cancel, resume and delete every job.")
        return

    def check() -> None:
        given = st.session_state.pop("dlfa_operator_password", "")
        st.session_state[OPERATOR_KEY] = serving.operator_password_matches(given)
        if not st.session_state[OPERATOR_KEY]:
            st.session_state["dlfa_operator_refused"] = True

    st.text_input("Operator password (to control other sessions' jobs)", type="password",
                  key="dlfa_operator_password", on_change=check)
    if st.session_state.pop("dlfa_operator_refused", False):
        st.error("Wrong operator password (or none is set on this server: DLFA_OPERATOR_PASSWORD).")


# ----------------------------------------------------------------------------------------------------
# Sidebar settings


@dataclass(frozen=True)
class Settings:
    data_root: str | None
    encoder: str
    device: str


def default_data_root() -> str:
    return os.environ.get("DLFA_DATA_DIR", "")


def settings() -> Settings:
    """The sidebar settings (defaults when a page runs without app.py, e.g. in AppTest). On a shared server a data
    root or encoder the operator did not allow is replaced by the default."""
    state = st.session_state
    root = (state.get(DATA_ROOT_KEY, default_data_root()) or "").strip()
    encoder = (state.get(ENCODER_KEY, DEFAULT_ENCODER) or "").strip() or DEFAULT_ENCODER
    device = state.get(DEVICE_KEY, "auto")
    if shared():
        root = root if root and str(Path(root).expanduser().resolve()) in serving.allowed_data_roots() else ""
        encoder = encoder if encoder in serving.allowed_encoders() else DEFAULT_ENCODER
    return Settings(data_root=root or None, encoder=encoder, device=device if device in DEVICE_CHOICES else "auto")


def init_settings() -> None:
    """Seed the sidebar's session_state keys once, so that they survive page switches."""
    st.session_state.setdefault(DATA_ROOT_KEY, "" if shared() else default_data_root())
    st.session_state.setdefault(ENCODER_KEY, DEFAULT_ENCODER)
    st.session_state.setdefault(DEVICE_KEY, "auto")
    # Widget state is dropped when a widget is not rendered; re-assigning keeps it across pages.
    for key in (DATA_ROOT_KEY, ENCODER_KEY, DEVICE_KEY):
        st.session_state[key] = st.session_state[key]


def resolve_source(data_root: str | None):
    """The DataSource for a data root (None: $DLFA_DATA_DIR, else the classroom pack, else the hub)."""
    from dlfa.data.registry import DataSource

    return DataSource.resolve(data_root)


def source_label(data_root: str | None) -> tuple[str, str]:
    """(kind label, description) of the data source in use: data root / classroom pack / hub."""
    source = resolve_source(data_root)
    kind = {"files": "data root", "pack": "classroom pack", "hub": "Hugging Face hub"}[source.kind]
    return kind, source.describe()


@st.cache_data(show_spinner=False, ttl=600)
def encoder_summary(spec: str, cache_folder: str = "") -> dict:
    """encoder_info as a dict (cached per spec and cache folder: no parameter starts with "_", which
    st.cache_* would leave out of the key); raises DlfaError with a readable message."""
    from dlfa.model.encoders import encoder_info

    return encoder_info(spec).to_dict()


def embedded_built() -> bool:
    return (cache_dir() / "models" / "e5-small" / "config.json").is_file()


def encoder_ready(spec: str) -> bool:
    """False for the embedded encoder before it is built (looking it up would build it, which takes a while)."""
    return not spec.startswith("embedded:") or embedded_built()


def check_encoder(spec: str) -> dict | None:
    """encoder facts, or None when the embedded encoder is not built yet. DlfaError on a bad spec."""
    if not encoder_ready(spec):
        return None
    return encoder_summary(spec, str(cache_dir()))


@st.cache_resource(show_spinner=False)
def gpu_info() -> dict:
    """{"available": bool, "count": int, "name": str}."""
    import torch

    if not torch.cuda.is_available():
        return {"available": False, "count": 0, "name": ""}
    return {"available": True, "count": torch.cuda.device_count(), "name": torch.cuda.get_device_name(0)}


# ----------------------------------------------------------------------------------------------------
# Tasks and languages


@st.cache_data(show_spinner=False, ttl=300)
def task_language_scan(task: str, data_root: str | None, cache_folder: str = ""):
    """dlfa.data.registry.LanguageScan of a task in the data source of `data_root` (cached)."""
    from dlfa.data.registry import scan_languages

    return scan_languages(task, resolve_source(data_root))


def task_languages_now(task: str, data_root: str | None) -> dict[str, dict[str, int]]:
    """language -> split -> count of the languages whose files read."""
    return task_language_scan(task, data_root, str(cache_dir())).available


def broken_languages(task: str, data_root: str | None) -> dict[str, str]:
    """language -> why its files cannot be read (that language alone is disabled)."""
    return task_language_scan(task, data_root, str(cache_dir())).broken


def task_infos() -> list:
    from dlfa.data.registry import list_tasks

    return list_tasks()


def why_not_runnable(task, data_root: str | None) -> str:
    """'' when the source can train `task` (a TaskInfo) as a target task (English training data and at least one
    other language with test data), else the reason, e.g. 'no English training data in the classroom pack …'.
    The hub is not probed (counting loads every split): its target tasks count as runnable."""
    try:
        source = resolve_source(data_root)
        if source.kind == "hub":
            return "an English-only task (used as an intermediate task)" if task.intermediate else ""
        languages = task_languages_now(task.name, data_root)
    except DlfaError as exc:
        return str(exc)
    where = source.describe()
    if "train" not in languages.get("en", {}):
        return f"no English training data in {where}"
    if not any("test" in splits for code, splits in languages.items() if code != "en"):
        return ("an English-only task (used as an intermediate task)" if task.intermediate
                else f"no target language with test data in {where}")
    return ""


def target_tasks(data_root: str | None) -> tuple[list, dict[str, str]]:
    """(the TaskInfos the source can train and evaluate as they stand, {other task: why not})."""
    runnable, unavailable = [], {}
    for task in task_infos():
        reason = why_not_runnable(task, data_root)
        if reason:
            unavailable[task.name] = reason
        else:
            runnable.append(task)
    return runnable, unavailable


def language_name(code: str) -> str:
    from dlfa.languages import LANGUAGE_NAMES

    return LANGUAGE_NAMES.get(code, code)


def family_of(code: str) -> str:
    from dlfa.languages import family_of as _family_of

    return _family_of(code)


def language_label(code: str, with_family: bool = True) -> str:
    """'German (de) · Germanic' (the family left out when unknown or not asked)."""
    from dlfa.languages import OTHER
    from dlfa.languages import language_label as _label

    family = family_of(code) if with_family else OTHER
    return f"{_label(code)} · {family}" if family != OTHER else _label(code)


def short_label(code: str) -> str:
    """'German (de)' for chart axes."""
    return language_label(code, with_family=False)


def sort_by_family(codes) -> list[str]:
    """Languages grouped by family (English's family first, 'Other' last), each family by name."""
    from dlfa.languages import group_by_family

    return [c for family in group_by_family(codes).values() for c in sorted(family, key=lambda c: (c != "en", language_name(c)))]


# ----------------------------------------------------------------------------------------------------
# Jobs, runs and units


@st.cache_resource(show_spinner=False)
def _store(path: str):
    from dlfa.jobs.store import JobStore

    return JobStore(path)


def store():
    """The job store of the current cache folder (one per cache folder and process)."""
    return _store(str(cache_dir().resolve() / "jobs.sqlite"))


def job_label(job) -> str:
    spec = job.spec
    name = job.name or f"{spec.task} · {'+'.join(spec.aggregations)}"
    return f"{name} · {job.id} ({job.status})"


@dataclass
class Unit:
    """One single run (aggregation × fusion layer × seed) of a job, with its results.json."""

    job_id: str
    name: str
    folder: Path
    results: dict = field(repr=False)

    @property
    def aggregation(self) -> str:
        return self.results["spec"]["aggregations"][0]

    @property
    def fusion_layer(self) -> int | None:
        layers = self.results["spec"].get("fusion_layers") or []
        return layers[0] if layers else None

    @property
    def model_dir(self) -> Path:
        return self.folder / self.results.get("model_dir", "model")

    @property
    def has_model(self) -> bool:
        return (self.model_dir / "dlfa_config.json").is_file()

    @property
    def label(self) -> str:
        layer = f" L{self.fusion_layer}" if self.fusion_layer is not None else ""
        return f"{self.aggregation}{layer} (seed {self.results['spec']['seeds'][0]})"


def job_results(job) -> dict | None:
    """A job's results.json content, None until it exists."""
    try:
        return json.loads(job.results_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise DlfaError(f"cannot read the results of job {job.id} ({job.results_path}): {exc}") from exc


def job_units(job, results: dict | None = None) -> list[Unit]:
    """The completed units of a job, read from its results.json (sweep order)."""
    from dlfa.engine.spec import JobSpec

    results = results if results is not None else job_results(job)
    units = []
    for run in (results or {}).get("runs", []):
        if run.get("status") != "complete":
            continue
        name = JobSpec.from_dict(run["spec"]).unit_name()
        units.append(Unit(job.id, name, job.out_dir / name, run))
    return units


def finished_jobs(with_units: bool = True) -> list:
    """Jobs that have results to show: completed ones, and others whose results.json has complete units."""
    jobs = []
    for job in store().list():
        if job.status == "completed" and job.results_path.is_file():
            jobs.append(job)
        elif with_units and job.status != "completed" and job.results_path.is_file():
            try:
                if job_units(job):
                    jobs.append(job)
            except DlfaError:
                continue
    return jobs


def all_units(aggregation: str | None = None, with_model: bool = True) -> list[Unit]:
    """Every completed unit of every finished job (optionally one aggregation, only those with a saved model)."""
    units = []
    for job in finished_jobs():
        for unit in job_units(job):
            if aggregation and unit.aggregation != aggregation:
                continue
            if with_model and not unit.has_model:
                continue
            units.append(unit)
    return units


def unit_label(unit: Unit) -> str:
    task = unit.results["spec"]["task"]
    return f"{unit.label} · {task} · job {unit.job_id}"


def preselected_jobs(key: str = "job") -> list[str]:
    """Job ids named in the URL (?job=ID, repeatable) or handed over in session_state by another page."""
    ids = list(st.query_params.get_all(key)) if key in st.query_params else []
    ids += st.session_state.get("dlfa_selected_jobs", [])
    return list(dict.fromkeys(ids))


def select_job(job_id: str) -> None:
    """Hand a job over to the Results page (and others) as the preselection."""
    st.session_state["dlfa_selected_jobs"] = [job_id]


# ----------------------------------------------------------------------------------------------------
# Models (inference in the app's process: typed sentences, attributions, small uploads)


def inference_device() -> str:
    device = settings().device
    if device == "cuda" or (device == "auto" and gpu_info()["available"]):
        return "cuda" if gpu_info()["available"] else "cpu"
    return "cpu"


@st.cache_resource(show_spinner="Loading the run's model…", max_entries=4)
def _load_model(model_dir: str, device: str, stamp: float):
    """A saved DlfaModel on `device` with its tokenizer, cached per (folder, device, stamp: when the weights were
    written), so a run retrained in place is loaded again. The encoder is copied from the cached one of its spec
    (reading a model folder and its tokenizer from disk costs far more than a copy in memory)."""
    import copy

    from dlfa.model.modeling import CONFIG_FILE, DlfaModel

    try:
        spec = json.loads((Path(model_dir) / CONFIG_FILE).read_text())["encoder"]
    except (OSError, ValueError, KeyError) as exc:
        raise DlfaError(f"{model_dir} holds no readable model config: {exc}") from exc
    loaded = loaded_encoder(spec)
    model = DlfaModel.from_pretrained(model_dir, encoder=copy.deepcopy(loaded.model))
    model.to(device).eval()
    return model, loaded.tokenizer


def model_stamp(unit: Unit) -> float:
    """When the unit's saved model was written (a cache key: a rerun replaces it); a clear error without one."""
    if not unit.has_model:
        raise DlfaError(f"run {unit.label} of job {unit.job_id} has no saved model in {unit.model_dir}")
    return (unit.model_dir / "model.safetensors").stat().st_mtime


def load_model(unit: Unit):
    """(DlfaModel, tokenizer) of a unit, cached per model folder and device."""
    return _load_model(str(unit.model_dir), inference_device(), model_stamp(unit))


# ----------------------------------------------------------------------------------------------------
# Tables


def metrics_frame(metrics: dict, run: str | None = None) -> pd.DataFrame:
    """Per-language table: language, family, metric, value, CI low/high, n (± the run's name)."""
    rows = []
    for lang in sort_by_family(metrics):
        m = metrics[lang]
        row = {"language": short_label(lang), "code": lang, "family": family_of(lang), "metric": m.get("metric"),
               "value": m.get("value"), "ci_low": m.get("ci_low"), "ci_high": m.get("ci_high"), "n": m.get("n")}
        if run is not None:
            row = {"run": run, **row}
        rows.append(row)
    return pd.DataFrame(rows)


def job_series(job, results: dict) -> dict[str, dict[str, dict]]:
    """{series name: {language: metrics}} of a job: its units (sweeps, several seeds) or its summary."""
    units = job_units(job, results)
    prefix = job.name or job.id
    if len(units) <= 1:
        metrics = results.get("metrics") or (units[0].results["metrics"] if units else {})
        return {prefix: metrics} if metrics else {}
    return {f"{prefix} · {unit.label}": unit.results["metrics"] for unit in units}


def grid_frame(grid: dict) -> pd.DataFrame:
    """A sweep's layer × language grid as a table (rows: configurations)."""
    rows = []
    for row in grid.get("rows", []):
        rounded = lambda v: None if v is None else round(float(v), 2)  # noqa: E731
        rows.append({"config": row.get("config"), "aggregation": row.get("aggregation"),
                     "fusion_layer": row.get("fusion_layer"), "dev": rounded(row.get("dev")),
                     **{short_label(lang): rounded(v) for lang, v in row.get("values", {}).items()},
                     "mean": rounded(row.get("mean"))})
    return pd.DataFrame(rows)


def page_link(page: str, label: str, query_params: dict | None = None, icon: str | None = None) -> None:
    """st.page_link, or a plain hint when the page is not registered (a page run alone, e.g. in AppTest)."""
    from streamlit.errors import StreamlitAPIException

    try:
        st.page_link(page, label=label, icon=icon, query_params=query_params)
    except (StreamlitAPIException, KeyError):
        st.markdown(f"→ **{label}** (open *{PAGES.get(page, (page,))[0]}* in the sidebar)")



# ----------------------------------------------------------------------------------------------------
# Readiness and the background `python -m dlfa prepare`


def readiness(data_root: str | None) -> dict:
    """What the Home page shows: encoder built, data root / classroom pack found, GPU."""
    from dlfa.data.registry import pack_built, pack_dir

    root = Path(data_root).expanduser() if data_root else None
    return {"encoder": embedded_built(), "encoder_dir": str(cache_dir() / "models" / "e5-small"),
            "data_root": bool(root and root.is_dir()), "data_root_path": str(root) if root else "",
            "pack": pack_built(), "pack_dir": str(pack_dir()), "gpu": gpu_info()}


def _prepare_files() -> tuple[Path, Path]:
    return cache_dir() / "prepare.pid", cache_dir() / "prepare.log"


def prepare_status() -> dict:
    """{"running": bool, "pid", "log": last lines} of the background `python -m dlfa prepare`."""
    from dlfa.jobs.store import pid_alive

    pid_file, log_file = _prepare_files()
    pid = None
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        pass
    running = bool(pid) and pid_alive(pid)
    try:
        lines = log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-12:]
    except OSError:
        lines = []
    return {"running": running, "pid": pid, "log": "\n".join(lines), "started": log_file.exists()}


def start_prepare() -> int:
    """Start `python -m dlfa prepare` in its own process group (it outlives the app); returns its pid."""
    import subprocess
    import sys

    from dlfa.paths import REPO_ROOT

    status = prepare_status()
    if status["running"]:
        return status["pid"]
    pid_file, log_file = _prepare_files()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    with open(log_file, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "dlfa", "prepare"], stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, cwd=str(REPO_ROOT), env=env, start_new_session=True)
    pid_file.write_text(str(process.pid))
    return process.pid


# ----------------------------------------------------------------------------------------------------
# The classroom demo

DEMO_NAME = "classroom demo"
DEMO_LANGUAGES = {"udpos": ("de", "es", "zh"), "pos-classroom": ("de", "es", "tr")}  # three families
DEMO_FUSION_LAYERS = (3, 6, 9)


def demo_spec(data_root: str | None, encoder: str = DEFAULT_ENCODER, device: str = "auto"):
    """A real, small job that finishes in a few minutes on 2 CPU cores: a probe-mode sweep on POS
    (udpos from a data root, else pos-classroom from the pack) with `last` and `dlfa` at three fusion layers."""
    from dlfa.engine.spec import JobSpec

    source = resolve_source(data_root)
    task = "udpos" if source.kind == "files" else "pos-classroom"
    if task == "udpos":
        available = task_languages_now(task, data_root)
        if "en" not in available or not available.get("en", {}).get("train"):
            task = "pos-classroom"
    available = task_languages_now(task, data_root if task == "udpos" else None)
    if not available:
        raise DlfaError("no POS data found for the demo: give a data root with UD-POS, or build the classroom "
                        "pack (the button above)")
    languages = tuple(lang for lang in DEMO_LANGUAGES[task] if lang in available)
    if not languages:
        languages = tuple(lang for lang in available if lang != "en")[:3]
    return JobSpec(task=task, eval_languages=languages, encoder=encoder, aggregations=("last", "dlfa"),
                   fusion_layers=DEMO_FUSION_LAYERS, seeds=(1,), probe=True,
                   data_root=str(source.root) if task == "udpos" and source.root else None,
                   max_train_examples=800, max_eval_examples=150, epochs=2, batch_size=32,
                   bootstrap_samples=200, device=device, name=DEMO_NAME)


def reproduction_record() -> Path:
    """The repository's record of the DLFA reproduction (docs/reproduction/): results of real jobs."""
    from dlfa.paths import REPO_ROOT
    from dlfa.reproduction.plan import DEFAULT_DOC, record_root

    return record_root(REPO_ROOT / DEFAULT_DOC)


RECORDED_BASE = "base encoder"


def recorded_layer_analyses() -> dict[str, dict]:
    """The reproduction's layer analyses (retrieval and CKA per layer): RECORDED_BASE, the base encoder's, then
    each analysed study run's fine-tuned encoder by its run (`study/<task>-<count>/<unit>`); {} without a record."""
    from dlfa.reproduction.plan import LAYER_ANALYSIS_FILE, TUNED_LAYERS_FILE

    found = {}
    for name in (LAYER_ANALYSIS_FILE, TUNED_LAYERS_FILE):
        path = reproduction_record() / name
        try:
            found[name] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        except (OSError, ValueError) as exc:
            raise DlfaError(f"cannot read the recorded layer analysis ({path}): {exc}") from exc
    if found[LAYER_ANALYSIS_FILE] is None:
        return {}
    return {RECORDED_BASE: found[LAYER_ANALYSIS_FILE], **(found[TUNED_LAYERS_FILE] or {}).get("runs", {})}


def submit(spec):
    """Submit a JobSpec through dlfa.jobs.launch.submit on this app's store, recording this session with it;
    returns the Job. On a shared server only allowed data roots and encoders, within the session's job limit."""
    from dlfa.jobs.launch import submit as launch_submit

    if shared():
        serving.check_allowed(spec)
    check_capacity()
    return launch_submit(spec, store(), options={serving.SESSION_OPTION: session_id()})


def evaluate_upload_in_job(unit: Unit, upload, bootstrap_samples: int = 500):
    """Start a job that evaluates a unit on an uploaded set (inference outside the app's process; it starts at
    once, beside a training job, as uploads are capped in size); returns the Job."""
    from dlfa.jobs.launch import launch
    from dlfa.engine.uploads import evaluation_options, evaluation_spec

    check_capacity()
    options = {**evaluation_options(unit.folder, upload, bootstrap_samples), serving.SESSION_OPTION: session_id()}
    job = store().submit(evaluation_spec(unit.folder, upload), options=options)
    return launch(job, store())


@st.cache_data(show_spinner=False, ttl=300)
def _intermediate_presets(data_root: str | None, exclude: tuple[str, ...], cache_folder: str) -> dict[int, tuple | str]:
    from dlfa.reproduction.study import INTERMEDIATE_PRESETS, preset_for

    source = resolve_source(data_root)
    presets = {}
    for count in INTERMEDIATE_PRESETS:
        try:
            presets[count] = tuple(preset_for(count, source, exclude))
        except DlfaError as exc:
            presets[count] = str(exc)  # not enough intermediate tasks with English data in this source
    return presets


def intermediate_presets(data_root: str | None, exclude: tuple[str, ...] = ()) -> dict[int, tuple[str, ...]]:
    """{count: intermediate tasks} presets (0 / 3 / 9) of dlfa.reproduction.study available in the source (cached)."""
    found = _intermediate_presets(data_root, tuple(exclude), str(cache_dir()))
    return {count: tasks for count, tasks in found.items() if isinstance(tasks, tuple)}


def unavailable_presets(data_root: str | None, exclude: tuple[str, ...] = ()) -> dict[int, str]:
    """{count: why the source cannot serve it} for the presets `intermediate_presets` leaves out."""
    found = _intermediate_presets(data_root, tuple(exclude), str(cache_dir()))
    return {count: reason for count, reason in found.items() if isinstance(reason, str)}


@st.cache_data(show_spinner=False, ttl=300)
def _intermediate_tasks(data_root: str | None, cache_folder: str) -> list[str]:
    from dlfa.reproduction.study import available_intermediate_tasks

    return list(available_intermediate_tasks(resolve_source(data_root)))


def intermediate_tasks(data_root: str | None) -> list[str]:
    """English intermediate tasks with English training data in the source, in dlfa.reproduction.study's order (cached)."""
    return _intermediate_tasks(data_root, str(cache_dir()))


def language_options(task: str, data_root: str | None, include_english: bool = False) -> list[str]:
    """Target languages the source has test data for, ordered by family (English left out unless asked)."""
    available = task_languages_now(task, data_root)
    codes = [c for c, splits in available.items() if "test" in splits and (include_english or c != "en")]
    return sort_by_family(codes)


def log_tail(job, lines: int = 30) -> str:
    """The last `lines` lines of a job's worker.log ('' when there is none yet)."""
    try:
        with open(job.log_path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def duration(job) -> str:
    import time

    start = job.started_at or job.launched_at
    if not start:
        return ""
    return elapsed((job.finished_at or time.time()) - start)


def elapsed(seconds: float) -> str:
    """'4 min 2 s' or '35 s'."""
    return f"{int(seconds // 60)} min {int(seconds % 60)} s" if seconds >= 60 else f"{seconds:.0f} s"


# ----------------------------------------------------------------------------------------------------
# Unit pickers and fusion weights


def unit_picker(label: str, units: list[Unit], key: str, default_index: int = 0) -> Unit | None:
    """A selectbox over units (preselected jobs' units first); None when there is none."""
    if not units:
        return None
    ids = [f"{u.job_id}/{u.name}" for u in units]
    by_id = dict(zip(ids, units))
    if st.session_state.get(key) not in by_id:
        st.session_state[key] = ids[min(default_index, len(ids) - 1)]
    chosen = st.selectbox(label, ids, key=key, format_func=lambda i: unit_label(by_id[i]))
    return by_id[chosen]


def units_preselected_first(units: list[Unit]) -> list[Unit]:
    wanted = preselected_jobs()
    return sorted(units, key=lambda u: (u.job_id not in wanted, wanted.index(u.job_id) if u.job_id in wanted else 0))


def task_kind(task: str) -> str:
    from dlfa.data.registry import get_task

    return get_task(task).kind


@st.cache_data(show_spinner=False, max_entries=64)
def _fusion_weights(model_dir: str, device: str, stamp: float, task: str, text, text_pair) -> dict:
    from dlfa.engine.evaluate import fusion_weights_for_text

    model, tokenizer = _load_model(model_dir, device, stamp)
    return fusion_weights_for_text(model, tokenizer, (text, text_pair) if text_pair is not None else text, task)


def fusion_weights(unit: Unit, text: str, text_pair: str | None = None) -> dict:
    """W of a dlfa unit on a typed text (cached): {"tokens", "weights" T×E, "per_token_mean", "mean_last"}."""
    if unit.aggregation != "dlfa":
        raise DlfaError(f"run {unit.label} uses '{unit.aggregation}': fusion weights exist only for dlfa runs")
    task = unit.results["spec"]["task"]
    return _fusion_weights(str(unit.model_dir), inference_device(), model_stamp(unit), task, text, text_pair)


def text_inputs(task: str, key: str, default: str = "", default_pair: str = "") -> tuple[str, str | None]:
    """One text box (two for a pair task); returns (text, text_pair or None)."""
    kind = task_kind(task)
    if kind == "pair":
        c1, c2 = st.columns(2)
        text = c1.text_input("Text", value=default, key=key)
        pair = c2.text_input("Second text (pair task)", value=default_pair, key=key + "_pair")
        return text, pair
    return st.text_input("Sentence (any language)", value=default, key=key,
                         help="Words are split on spaces for tagging tasks"), None


def require(module: str):
    """Import a dlfa module a page needs; a readable DlfaError when it is missing from this installation."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DlfaError(f"this page needs {module}, which cannot be imported here ({exc})") from exc


# ----------------------------------------------------------------------------------------------------
# Layer analysis, attributions (in-process inference; cached as plain dicts)


def _layer_analysis(loaded, name: str, languages: tuple[str, ...], max_pairs: int, data_root: str | None) -> dict:
    analysis = require("dlfa.analysis.layers")
    pairs = analysis.parallel_pairs(resolve_source(data_root), list(languages), max_pairs)
    return analysis.layer_analysis(name, pairs, max_pairs, loaded=loaded).to_dict()


@st.cache_data(show_spinner=False, max_entries=16)
def layer_analysis(encoder: str, languages: tuple[str, ...], max_pairs: int, data_root: str | None) -> dict:
    """dlfa.analysis.layers.layer_analysis of an encoder on parallel pairs of the data source, as a dict of plain lists."""
    return _layer_analysis(loaded_encoder(encoder), encoder, languages, max_pairs, data_root)


@st.cache_data(show_spinner=False, max_entries=16)
def _run_layer_analysis(model_dir: str, stamp: float, name: str, languages: tuple[str, ...], max_pairs: int,
                        data_root: str | None, encoder: str) -> dict:
    loaded = require("dlfa.analysis.layers").fine_tuned_encoder(model_dir, base=loaded_encoder(encoder))
    return _layer_analysis(loaded, name, languages, max_pairs, data_root)


def run_layer_analysis(unit: Unit, languages: tuple[str, ...], max_pairs: int, data_root: str | None) -> dict:
    """The layer analysis of a run's fine-tuned encoder (its saved model), like `layer_analysis`."""
    return _run_layer_analysis(str(unit.model_dir), model_stamp(unit), unit_label(unit), languages, max_pairs,
                               data_root, unit.results["spec"]["encoder"])


@st.cache_resource(show_spinner="Loading the encoder…", max_entries=2)
def loaded_encoder(spec: str):
    """dlfa.model.encoders.load_encoder, once per spec and process (inference only)."""
    from dlfa.model.encoders import load_encoder

    loaded = load_encoder(spec)
    loaded.model.eval()
    return loaded


@st.cache_data(show_spinner=False, max_entries=16)
def _tatoeba_analysis(encoder: str, model_dir: str, stamp: float, name: str, languages: tuple[str, ...],
                      max_pairs: int, data_root: str | None) -> dict:
    retrieval = require("dlfa.analysis.retrieval")
    loaded = loaded_encoder(encoder)
    if model_dir:
        loaded = require("dlfa.analysis.layers").fine_tuned_encoder(model_dir, base=loaded)
    source = resolve_source(data_root)
    pools = [retrieval.read_tatoeba(source, language, max_pairs) for language in languages]
    return retrieval.tatoeba_retrieval(name, loaded, pools, bootstrap_samples=200, source=str(source)).to_dict()


def tatoeba_analysis(encoder: str | None, languages: tuple[str, ...], max_pairs: int, data_root: str | None,
                     unit: Unit | None = None) -> dict:
    """dlfa.analysis.retrieval.tatoeba_retrieval (every layer, 200 bootstrap samples) of an encoder, or of a run's fine-tuned
    encoder when `unit` is given, as TatoebaResult.to_dict()."""
    if unit is None:
        return _tatoeba_analysis(encoder, "", 0.0, encoder, languages, max_pairs, data_root)
    return _tatoeba_analysis(unit.results["spec"]["encoder"], str(unit.model_dir), model_stamp(unit), unit_label(unit),
                             languages, max_pairs, data_root)


def tatoeba_languages(data_root: str | None) -> list[str]:
    return sort_by_family(require("dlfa.analysis.retrieval").available_tatoeba_languages(resolve_source(data_root)))


def parallel_languages(data_root: str | None) -> list[str]:
    analysis = require("dlfa.analysis.layers")
    return sort_by_family(analysis.available_parallel_languages(resolve_source(data_root)))


@st.cache_data(show_spinner=False, max_entries=64)
def _attribution(model_dir: str, device: str, stamp: float, task: str, text: str, text_pair, word_index) -> dict:
    from dataclasses import asdict, is_dataclass

    explain = require("dlfa.analysis.explain")
    model, tokenizer = _load_model(model_dir, device, stamp)
    kwargs = {"text_pair": text_pair} if text_pair is not None else {}
    if word_index is not None:
        kwargs["word_index"] = word_index
    result = explain.integrated_gradients(model, tokenizer, text, task=task, **kwargs)
    data = asdict(result) if is_dataclass(result) else dict(result)
    return {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in data.items()}


def attribution(unit: Unit, text: str, text_pair: str | None = None, word_index: int | None = None) -> dict:
    """Captum integrated gradients of one prediction of a unit's model (cached), as a dict."""
    return _attribution(str(unit.model_dir), inference_device(), model_stamp(unit), unit.results["spec"]["task"],
                        text, text_pair, word_index)
