"""Launch: build a JobSpec in a form (dlfa.app.launch_form's table of fields); problems appear under their fields
before anything starts."""
import streamlit as st

from dlfa.app import launch_form, session, widgets
from dlfa.app.guard import run_page
from dlfa.app.launch_form import K


def main() -> None:
    st.title("Launch a job")
    st.caption("One form → one JobSpec. Several aggregations, fusion layers or seeds make a sweep; the job runs in "
               "the background and appears on the Jobs page.")
    current = session.settings()
    problems: dict = st.session_state.get(K + "problems", {})
    ctx = launch_form.context(current, problems)
    if not ctx.tasks:
        source = session.source_label(current.data_root)[1]
        st.error(f"No task can be trained with {source}: "
                 + "; ".join(f"{n}: {why}" for n, why in ctx.unavailable.items()))
        st.info("Build the classroom pack on Home, or give a data root in the sidebar.")
        return
    under_widgets = launch_form.render(ctx)
    for name, message in problems.items():
        if name not in under_widgets:
            st.error(f"{name}: {message}" if name != "submit" else message)

    st.button("Submit job", type="primary", icon=":material/rocket_launch:", key=K + "submit",
              on_click=launch_form.on_submit)
    if problems:
        st.warning(f"Nothing was submitted: fix the {len(problems)} problem(s) shown above.")
    job_id = st.session_state.get(K + "submitted")
    if job_id:
        st.success(f"Submitted job `{job_id}`.", icon=":material/check_circle:")
        widgets.select_job(job_id)
        widgets.page_link("pages/jobs.py", "Follow it on the Jobs page", icon=":material/list_alt:")


run_page(main)
