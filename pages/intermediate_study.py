"""Intermediate-task study: does the NUMBER of English intermediate tasks (0 / 3 / 9) change zero-shot
transfer? Launch the three runs under one budget and seeds, or pick finished jobs; see the answer (each count
against the previous one), the mean over languages and the change vs. 0 per language."""
import pandas as pd
import streamlit as st

from dlfa import charts
from dlfa.app import background, catalog, guard, runs, session, widgets
from dlfa.errors import ConfigError
from dlfa.engine.spec import JobSpec, parse_int_list
from dlfa.results import JobResult

K = "is_"


def launch_section(study) -> None:
    settings = session.settings()
    targets = [t for t in catalog.task_infos() if not t.intermediate]
    names = [t.name for t in targets]
    c1, c2 = st.columns(2)
    with c1:
        task = st.selectbox("Target task", names, key=K + "task",
                            index=names.index("udpos") if "udpos" in names else 0)
    options = catalog.language_options(task, settings.data_root)
    with c2:
        if K + "languages" not in st.session_state:
            st.session_state[K + "languages"] = [c for c in ("de", "es", "zh") if c in options] or options[:3]
        st.session_state[K + "languages"] = [c for c in st.session_state[K + "languages"] if c in options]
        languages = st.multiselect("Target languages", options, key=K + "languages", format_func=catalog.language_label)
    c1, c2, c3, c4 = st.columns(4)
    seeds_text = c1.text_input("Seeds", "1,2,3", key=K + "seeds", help="the same seeds for every count")
    steps = c2.number_input("Steps per stage (equal budgets)", 1, 100000, 200, key=K + "steps")
    batch = c3.number_input("Batch size", 1, 1024, 32, key=K + "batch")
    max_train = c4.number_input("Max train examples per task", 0, 1000000, 2000, step=500, key=K + "max_train")
    probe = st.checkbox("Probe mode (frozen encoder)", value=False, key=K + "probe",
                        help="Intermediate tasks matter most when the encoder itself is fine-tuned")
    if not st.button("Launch the 0 / 3 / 9 runs", type="primary", key=K + "launch"):
        return
    try:
        seeds = parse_int_list(seeds_text, "seeds")
    except ConfigError as exc:
        st.error(str(exc))
        return
    base = JobSpec(task=task, eval_languages=tuple(languages), encoder=settings.encoder, data_root=settings.data_root,
                   aggregations=("last",), seeds=seeds or (1,), max_steps=int(steps), batch_size=int(batch),
                   max_train_examples=int(max_train) or None, probe=probe, device=settings.device)
    specs = study.study_specs(base, (0, 3, 9), session.resolve_source(settings.data_root))
    problems = {count: spec.problems() for count, spec in specs.items()}
    if any(problems.values()):
        for count, found in problems.items():
            for name, message in found.items():
                st.error(f"{count} tasks · {name}: {message}")
        return
    background.check_capacity(len(specs))
    submitted = {}
    for count, spec in specs.items():
        submitted[count] = background.submit(spec).id
    st.session_state[K + "jobs"] = submitted
    st.success("Submitted: " + ", ".join(f"{c} tasks → `{j}`" for c, j in submitted.items()))
    widgets.page_link("pages/jobs.py", "Follow them on the Jobs page", icon=":material/list_alt:")


def compare_section(study) -> None:
    jobs = runs.finished_jobs()
    if not jobs:
        st.info("No finished jobs yet: launch the three runs above and come back when they are done.")
        return
    by_id = {job.id: job for job in jobs}
    launched = st.session_state.get(K + "jobs", {})
    found = study.find_study(jobs)
    ids = [None] + list(by_id)
    columns = st.columns(3)
    results_by_count = {}
    for column, count in zip(columns, (0, 3, 9)):
        with column:
            key = f"{K}pick_{count}"
            if key not in st.session_state and launched.get(count) in by_id:
                st.session_state[key] = launched[count]
            elif key not in st.session_state:
                guess = found.get(count) or next((j for j in jobs if len(j.spec.intermediate_tasks) == count), None)
                st.session_state[key] = guess.id if guess else None
            job_id = st.selectbox(f"{count} intermediate tasks", ids, key=key,
                                  format_func=lambda j: "—" if j is None else runs.job_label(by_id[j]))
            if job_id:
                results_by_count[count] = runs.job_results(by_id[job_id])
    if 0 not in results_by_count or len(results_by_count) < 2:
        st.info("Pick the 0-task job and at least one other count.")
        return
    rows = study.compare(results_by_count)
    if not rows:
        st.warning("The chosen jobs share no target language.")
        return
    summary_section(study, results_by_count)
    chart_rows = [{**row, "series": f"{row['count']} tasks"} for row in rows
                  if row["count"] != row["reference"] and row["change"] is not None]
    if chart_rows:
        st.plotly_chart(charts.change_bars(chart_rows, catalog.family_of, catalog.short_label,
                                           title=f"Change vs. {rows[0]['reference']} intermediate tasks (95% CI)"),
                        key=K + "chart")
    table = pd.DataFrame([{**row, "language": catalog.short_label(row["language"]),
                           "intermediate_tasks": ", ".join(row["intermediate_tasks"])} for row in rows])
    st.dataframe(table, hide_index=True, column_config={
        c: st.column_config.NumberColumn(format="%.2f") for c in ("value", "change", "ci_low", "ci_high")})
    kinds = sorted({row["ci_kind"] for row in rows if row["ci_kind"] != "none"})
    for kind in kinds:
        st.caption(f"**{kind}**: {study.CI_KINDS[kind]}")


def summary_section(study, results_by_count: dict[int, JobResult]) -> None:
    """The answer in words and the mean over the shared target languages per count."""
    summary = study.summarize(results_by_count)
    if not summary:
        return
    for row in summary[1:]:
        st.markdown(f"**{study.change_in_words(row['count'], row['changes'][-1])}**{study.not_learned_note(row)}")
    table = []
    for row in summary:
        entry = {"intermediate tasks": row["count"], "seeds": row["seeds"], "English dev": row["english_dev"],
                 "target mean": row["value"], "majority class": row["majority"]}
        for change in row["changes"]:
            interval = "" if change["ci_low"] is None else f"[{change['ci_low']:+.2f}, {change['ci_high']:+.2f}]"
            entry[f"change vs {change['against']}"] = change["change"]
            entry[f"95% CI vs {change['against']}"] = interval
        table.append(entry)
    st.caption(f"Mean over the {len(summary[0]['languages'])} target languages every chosen job evaluated; "
               "intervals over seeds (paired where the jobs share them).")
    st.dataframe(pd.DataFrame(table), hide_index=True, column_config={
        c: st.column_config.NumberColumn(format="%.2f") for c in table[-1] if not c.startswith(("95%", "int", "seeds"))})


def main() -> None:
    st.title("Intermediate tasks: 0 vs. 3 vs. 9")
    st.caption("English intermediate-task training before the target task (Phang et al. 2020). Every count gets the "
               "same budget per stage and the same seeds. The answer compares each count with the previous one on "
               "the mean over the target languages; the chart shows the change vs. 0 tasks per language, with "
               "95% confidence intervals.")
    study = guard.require("dlfa.reproduction.study")
    with st.expander("Launch a study", expanded=not runs.finished_jobs()):
        launch_section(study)
    st.subheader("Compare")
    compare_section(study)


guard.run_page(main)
