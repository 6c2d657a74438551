"""Jobs: the queue with live progress and training curves (a fragment refreshes every 2 s), log tails, cancel,
resume, delete."""
import streamlit as st

from dlfa import charts
from dlfa.app import background, catalog, guard, runs, session, widgets
from dlfa.errors import DlfaError

STATUS_ICONS = {"queued": ":material/schedule:", "running": ":material/autorenew:",
                "completed": ":material/check_circle:", "failed": ":material/error:",
                "cancelled": ":material/cancel:", "stopped": ":material/pause_circle:",
                "stalled": ":material/hourglass_disabled:"}


def refused(job_id: str) -> bool:
    """True (with a message) when this session may not control the job: a shared server's other session's job."""
    if background.may_control(runs.store().get(job_id)):
        return False
    st.session_state["jobs_message"] = ("error", f"Job {job_id} was submitted by another session: only that session "
                                                 "or the operator may cancel, resume or delete it.")
    return True


def cancel(job_id: str) -> None:
    from dlfa.jobs.launch import cancel as launch_cancel

    if refused(job_id):
        return
    try:
        launch_cancel(job_id, runs.store(), wait=False)  # never block: refresh() stops it after the grace period
        st.session_state["jobs_message"] = ("info", f"Cancel requested for {job_id}: it stops at its next step.")
    except DlfaError as exc:
        st.session_state["jobs_message"] = ("error", str(exc))


def resume(job_id: str) -> None:
    from dlfa.jobs.launch import resume as launch_resume

    if refused(job_id):
        return
    try:
        launch_resume(job_id, runs.store())
        st.session_state["jobs_message"] = ("info", f"Job {job_id} re-queued: it resumes from its last checkpoint.")
    except DlfaError as exc:
        st.session_state["jobs_message"] = ("error", str(exc))


def delete(job_id: str) -> None:
    if not st.session_state.get(f"confirm_{job_id}"):
        st.session_state["jobs_message"] = ("warning", "Tick “confirm delete” first.")
        return
    if refused(job_id):
        return
    try:
        runs.store().delete(job_id)
        st.session_state["jobs_message"] = ("info", f"Deleted job {job_id}.")
    except DlfaError as exc:
        st.session_state["jobs_message"] = ("error", str(exc))


def main() -> None:
    st.title("Jobs")
    from dlfa.jobs.launch import concurrency_summary

    st.caption("Jobs run in their own processes and outlive this page; this view refreshes every 2 seconds. "
               + concurrency_summary())
    if session.shared():
        st.caption("Shared server: you can cancel, resume and delete the jobs this browser session submitted.")
        widgets.operator_login()
    jobs_view()


@st.fragment(run_every=2)
@guard.guarded
def jobs_view() -> None:
    from dlfa.jobs.launch import refresh

    store = runs.store()
    refresh(store)
    message = st.session_state.pop("jobs_message", None)
    if message:
        getattr(st, message[0])(message[1])
    jobs = store.list()
    if not jobs:
        st.info("No jobs yet: start one on the Launch page, or the classroom demo on Home.")
        widgets.page_link("pages/launch.py", "Launch a job", icon=":material/rocket_launch:")
        return
    counts = {}
    for job in jobs:
        counts[job.state] = counts.get(job.state, 0) + 1
    st.caption(" · ".join(f"{n} {status}" for status, n in counts.items()))
    for job in jobs:
        job_card(job)


def job_card(job) -> None:
    spec = job.spec
    with st.container(border=True):
        c1, c2 = st.columns([3, 1])
        with c1:
            st.markdown(f"{STATUS_ICONS.get(job.state, '')} **{job.name or spec.task}** `{job.id}` — "
                        f"**{job.state}** · {job.backend} · {background.duration(job)}")
            units = len(spec.units())
            st.caption(f"{spec.task} · {', '.join(spec.aggregations)} · fusion layers "
                       f"{', '.join(map(str, spec.fusion_layers)) or '–'} · {units} unit(s) · languages "
                       f"{', '.join(spec.eval_languages)}{' · probe' if spec.probe else ''}")
            if job.imported:
                st.caption(f"Recorded elsewhere, read in place from `{job.out_dir}`")
            st.progress(float(job.progress), text=job.progress_text or job.status)
            if job.error:
                st.error(job.error)
            if job.state == "stalled":
                st.warning(f"No training step has finished for {background.elapsed(job.stalled_for())} although "
                           "the worker is alive: it may hang. Cancel it and resume it from its last checkpoint.")
            if job.cancel_requested_at and job.active:
                st.warning("Cancel requested: stopping at the next step.")
        with c2:
            control = background.may_control(job)  # on a shared server: this session's jobs, or the operator
            if not control:
                st.caption("Another session's job")
            elif job.active:
                st.button("Cancel", key=f"cancel_{job.id}", on_click=cancel, args=(job.id,),
                          icon=":material/stop:", disabled=job.cancel_requested_at is not None)
            if job.status in ("failed", "cancelled", "stopped") and not job.imported and control:
                st.button("Resume", key=f"resume_{job.id}", on_click=resume, args=(job.id,),
                          icon=":material/replay:")
            if job.status == "completed":
                if st.button("Results", key=f"results_{job.id}", icon=":material/bar_chart:"):
                    widgets.select_job(job.id)
                    st.switch_page("pages/results.py")
            if (not job.active or job.launched_at is None) and control:
                st.checkbox("confirm delete", key=f"confirm_{job.id}")
                st.button("Delete", key=f"delete_{job.id}", on_click=delete, args=(job.id,),
                          icon=":material/delete:", disabled=not st.session_state.get(f"confirm_{job.id}"))
        with st.expander("log (last 30 lines)", expanded=job.status == "running"):
            tail = background.log_tail(job)
            st.code(tail or "(no log yet)", language=None)
        curves = runs.training_curves(job)
        if curves:
            with st.expander("training curves", expanded=job.status == "running"):
                st.plotly_chart(charts.training_curves(curves, catalog.task_metric(spec.task)),
                                key=f"curves_{job.id}")
                st.caption("Loss: the mean over the steps since the previous point, per stage (an intermediate "
                           "task, then the target). English dev: each evaluation; ★ the best, whose state is "
                           "evaluated zero-shot.")


guard.run_page(main)
