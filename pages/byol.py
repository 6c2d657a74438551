"""Bring your own language: upload (or, on a local server, point to) a labeled evaluation file in a new language,
then evaluate a finished run on it (inference in a job, outside the app's process)."""
from pathlib import Path

import pandas as pd
import streamlit as st

from dlfa.app import background, catalog, guard, runs, session, widgets
from dlfa.errors import DlfaError

FORMATS = {"token": "CoNLL-U (.conllu), token<TAB>tag (.tsv/.txt) or CoNLL NER columns (.conll)",
           "pair": "text<TAB>text_pair<TAB>label (.tsv/.txt) or JSONL {text, text_pair, label}",
           "sentence": "text<TAB>label (.tsv/.txt) or JSONL {text, label}",
           "multiple_choice": "JSONL {text, text_pair (optional question), choices: [...], label: a choice's name}"}


def save_section(uploads) -> None:
    infos = {t.name: t for t in catalog.task_infos() if t.kind in FORMATS}  # no uploads of QA or retrieval files yet
    names = list(infos)
    c1, c2 = st.columns(2)
    task = c1.selectbox("Task of the file", names, key="byol_task",
                        index=names.index("udpos") if "udpos" in names else 0,
                        format_func=lambda n: f"{n} — {infos[n].kind}, labels: {', '.join(infos[n].labels[:6])}"
                                              f"{'…' if len(infos[n].labels) > 6 else ''}")
    language = c2.text_input("Language code (ISO 639, e.g. fo, gsw, yue)", key="byol_language").strip()
    limit_mb = uploads.MAX_UPLOAD_BYTES / 2**20
    st.caption(f"Format for {task}: {FORMATS[infos[task].kind]}. Tags and labels must be the task's.")
    # a shared server reads no server paths for the browser: uploads only
    source = "upload" if session.shared() else st.radio("From", ["upload", "path on this machine"], key="byol_source",
                                                   horizontal=True)
    name, data = None, None
    if source == "upload":
        file = st.file_uploader(f"Evaluation file (≤ {limit_mb:.0f} MB)", key="byol_file")
        if file is not None:
            name, data = file.name, file.getvalue()
    else:
        path = st.text_input("File path", key="byol_path").strip()
        if path:
            p = Path(path).expanduser()
            if not p.is_file():
                st.error(f"{p} is not a file")
            elif p.stat().st_size > uploads.MAX_UPLOAD_BYTES:
                st.error(f"{p} is larger than {limit_mb:.0f} MB")
            else:
                name, data = p.name, p.read_bytes()
    if st.button("Save", key="byol_save", icon=":material/save:", disabled=not (name and language)):
        try:
            upload = uploads.save_upload(name, data, task, language)
        except DlfaError as exc:
            st.error(str(exc))
            return
        st.success(f"Saved {upload.name}: {upload.n_examples} examples of {task} in "
                   f"{catalog.language_label(language)}.")
        st.session_state["byol_upload"] = str(upload.path)
    if not language:
        st.caption("Give the language code to save the file.")


def upload_label(upload) -> str:
    return f"{upload.task} · {catalog.short_label(upload.language)} · {upload.name} ({upload.n_examples} examples)"


def evaluate_section(uploads) -> None:
    saved = {str(u.path): u for u in uploads.list_uploads()}
    if not saved:
        st.info("No saved evaluation files yet.")
        return
    if st.session_state.get("byol_upload") not in saved:
        st.session_state["byol_upload"] = next(iter(saved))
    key = st.selectbox("Evaluation file", list(saved), key="byol_upload", format_func=lambda k: upload_label(saved[k]))
    upload = saved[key]
    units = [u for u in widgets.units_preselected_first(runs.all_units()) if u.task == upload.task]
    if not units:
        st.info(f"No finished run for task {upload.task} yet: train one (Launch) and come back.")
        return
    unit = widgets.unit_picker("Run to evaluate", units, key="byol_unit")
    if st.button("Evaluate", type="primary", key="byol_evaluate", icon=":material/play_arrow:"):
        job = background.evaluate_upload_in_job(unit, upload)
        st.session_state["byol_job"] = (job.id, runs.unit_label(unit), upload_label(upload))
    if not st.session_state.get("byol_job"):
        return
    job = runs.store().get(st.session_state["byol_job"][0])
    if job.active:
        evaluation_progress(job.id)
    else:
        evaluation_view(uploads, units, job)


@st.fragment(run_every=1)
@guard.guarded
def evaluation_progress(job_id: str) -> None:
    """The evaluation job's state, refreshed every second; the page reruns to show the result once it ends."""
    from dlfa.jobs.launch import refresh

    refresh(runs.store())
    job = runs.store().get(job_id)
    if not job.active:
        st.rerun()
    st.info(f"Evaluating in job `{job_id}` ({job.status}, inference only)…", icon=":material/hourglass_top:")


def evaluation_view(uploads, units, job) -> None:
    """The finished evaluation job's result next to the run's own languages (or why there is none)."""
    _, label, file_label = st.session_state["byol_job"]
    if job.status == "failed":
        st.error(f"The evaluation failed: {job.error}")
        return
    r = uploads.evaluation_result(job)
    if r is None:
        st.warning(f"Job `{job.id}` ended ({job.status}) without a result.")
        return
    st.metric(f"{r['metric']} on {file_label}", f"{r['value']:.2f}",
              f"95% CI [{r['ci_low']:.2f}, {r['ci_high']:.2f}] · n = {r['n']}" if r.get("ci_low") is not None else None,
              delta_color="off", delta_arrow="off")
    st.caption(f"Run: {label}" + (f" · {r['truncated']} example(s) truncated" if r.get("truncated") else ""))
    fusion = r.get("fusion")
    if fusion:
        st.caption(f"Mean fusion weight on the last layer: {fusion['mean_last']:.3f} (lower layer "
                   f"{fusion['mean_low']:.3f})")
    unit_metrics = None
    for unit_ in units:
        if runs.unit_label(unit_) == label:
            unit_metrics = unit_.metrics
    if unit_metrics:
        rows = [{"language": catalog.short_label(lang), "value": m["value"], "ci_low": m.get("ci_low"),
                 "ci_high": m.get("ci_high"), "n": m.get("n")} for lang, m in unit_metrics.items()]
        rows.append({"language": f"{catalog.short_label(r['language'])} (your file)", "value": r["value"],
                     "ci_low": r.get("ci_low"), "ci_high": r.get("ci_high"), "n": r.get("n")})
        st.dataframe(pd.DataFrame(rows), hide_index=True)


def main() -> None:
    st.title("Bring your own language")
    st.caption("Evaluate a trained run zero-shot on a language of your own: save a small labeled file for the "
               "run's task, then evaluate. Files stay on this machine (in the cache folder).")
    uploads = guard.require("dlfa.engine.uploads")
    save_section(uploads)
    st.subheader("Evaluate a run on it")
    evaluate_section(uploads)


guard.run_page(main)
