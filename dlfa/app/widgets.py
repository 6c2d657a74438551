"""Widgets several pages share: the page registry and links, the jobs a page opens with (from the URL or
another page), run pickers, the text boxes of a task, and the operator's login on a shared server."""
from __future__ import annotations

import streamlit as st

from dlfa.app import serving
from dlfa.app.catalog import task_kind
from dlfa.app.runs import Unit, unit_label
from dlfa.app.session import OPERATOR_KEY, shared

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
SELECTED_JOBS_KEY = "dlfa_selected_jobs"


def page_link(page: str, label: str, query_params: dict | None = None, icon: str | None = None) -> None:
    """st.page_link, or a plain hint when the page is not registered (a page run alone, e.g. in AppTest)."""
    from streamlit.errors import StreamlitAPIException

    try:
        st.page_link(page, label=label, icon=icon, query_params=query_params)
    except (StreamlitAPIException, KeyError):
        st.markdown(f"→ **{label}** (open *{PAGES.get(page, (page,))[0]}* in the sidebar)")


def preselected_jobs(key: str = "job") -> list[str]:
    """Job ids named in the URL (?job=ID, repeatable) or handed over in session_state by another page."""
    ids = list(st.query_params.get_all(key)) if key in st.query_params else []
    ids += st.session_state.get(SELECTED_JOBS_KEY, [])
    return list(dict.fromkeys(ids))


def select_job(job_id: str) -> None:
    """Hand a job over to the Results page (and others) as the preselection."""
    st.session_state[SELECTED_JOBS_KEY] = [job_id]


def units_preselected_first(units: list[Unit]) -> list[Unit]:
    wanted = preselected_jobs()
    return sorted(units, key=lambda u: (u.job_id not in wanted, wanted.index(u.job_id) if u.job_id in wanted else 0))


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


QA_EXAMPLE = ("Where did the letter arrive?",
              "The letter was written by Anna Berg in Vienna in 1920. It arrived in Paris a year later, "
              "long after she had left the city.")


def text_inputs(task: str, key: str, default: str = "", default_pair: str = "") -> tuple[str, str | None]:
    """One text box (two for a pair task; a question and its context for question answering, prefilled with
    QA_EXAMPLE); returns (text, text_pair or None): for question answering (question, context)."""
    if task_kind(task) == "qa":  # prefilled through session_state, so that a page may put a test question there
        st.session_state.setdefault(key, QA_EXAMPLE[0])
        st.session_state.setdefault(key + "_pair", QA_EXAMPLE[1])
        question = st.text_input("Question", key=key)
        context = st.text_area("Context (the answer is a span of it)", key=key + "_pair")
        return question, context
    if task_kind(task) == "pair":
        c1, c2 = st.columns(2)
        text = c1.text_input("Text", value=default, key=key)
        pair = c2.text_input("Second text (pair task)", value=default_pair, key=key + "_pair")
        return text, pair
    return st.text_input("Sentence (any language)", value=default, key=key,
                         help="Words are split on spaces for tagging tasks"), None


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
