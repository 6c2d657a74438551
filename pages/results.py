"""Results: per-language tables (value, CI, n) and bar charts with CI error bars grouped by language family,
several finished jobs side by side, each job's training curves and convergence, downloads (CSV, JSON, HTML, PNG)."""
import json

import pandas as pd
import streamlit as st

from dlfa import charts
from dlfa.app import catalog, guard, runs, widgets
from dlfa.png_render import figure_png
from dlfa.results import metrics_to_dict


def main() -> None:
    st.title("Results")
    jobs = runs.finished_jobs()
    if not jobs:
        st.info("No finished runs yet. Start the classroom demo on Home or a job on Launch, or open the recorded "
                "reproduction's jobs on Home.")
        widgets.page_link("pages/home.py", "Home", icon=":material/home:")
        return
    by_id = {job.id: job for job in jobs}
    preselected = [j for j in widgets.preselected_jobs() if j in by_id] or [jobs[0].id]
    if "results_jobs" not in st.session_state or st.session_state.get("results_pre") != preselected:
        st.session_state["results_jobs"] = preselected
        st.session_state["results_pre"] = preselected
    st.session_state["results_jobs"] = [j for j in st.session_state["results_jobs"] if j in by_id]
    chosen = st.multiselect("Finished jobs (several: compared side by side)", list(by_id), key="results_jobs",
                            format_func=lambda j: runs.job_label(by_id[j]))
    if not chosen:
        st.info("Choose at least one job.")
        return

    series: dict[str, dict] = {}
    frames, read = [], {}
    metric_names = set()
    for job_id in chosen:
        job = by_id[job_id]
        results = runs.job_results(job)
        read[job_id] = results
        for name, metrics in runs.job_series(job, results).items():
            series[name] = metrics
            frames.append(runs.metrics_frame(metrics, run=name))
            metric_names |= {m.get("metric") for m in metrics.values()}
    if not series:
        st.warning("These jobs have no per-language metrics yet.")
        return
    table = pd.concat(frames, ignore_index=True)
    metric = " / ".join(sorted(filter(None, metric_names)))

    fig = charts.language_bars(series, family_of=catalog.family_of, label_of=catalog.short_label, metric=metric,
                               title="Zero-shot transfer per target language (95% CI)")
    st.plotly_chart(fig, key="results_bars")
    st.caption("Error bars: 95% bootstrap confidence intervals over test examples (over seeds when a job has "
               "several). Languages are grouped by family.")

    st.subheader("Per-language table")
    st.dataframe(table, hide_index=True, column_config={
        "value": st.column_config.NumberColumn(format="%.2f"), "ci_low": st.column_config.NumberColumn(format="%.2f"),
        "ci_high": st.column_config.NumberColumn(format="%.2f")})

    question_answering(chosen, by_id, read)

    for job_id in chosen:
        show_retrieval(by_id[job_id], read[job_id])
    for job_id in chosen:
        show_training(by_id[job_id], read[job_id])
    for job_id in chosen:
        grid = read[job_id].grid
        if grid:
            st.subheader(f"Sweep grid of {by_id[job_id].name or job_id}")
            st.dataframe(runs.grid_frame(grid), hide_index=True)
            best = charts.best_per_language(grid)
            st.caption("Best configuration per language: " + "; ".join(
                f"{catalog.short_label(lang)}: {b['config']} ({b['value']:.1f})" for lang, b in best.items()))
            widgets.page_link("pages/layer_comparison.py", "Compare its layers side by side",
                         query_params={"job": job_id}, icon=":material/compare:")

    st.subheader("Downloads")
    c1, c2, c3, c4 = st.columns(4)
    c1.download_button("Table (CSV)", table.to_csv(index=False), "dlfa-results.csv", "text/csv", key="dl_csv")
    payload = {"series": series, "jobs": {j: {"spec": read[j].spec, "metrics": metrics_to_dict(read[j].metrics) or None,
                                              "grid": read[j].grid} for j in chosen}}
    c2.download_button("Tables (JSON)", json.dumps(payload, indent=2, default=str), "dlfa-results.json",
                       "application/json", key="dl_json")
    c3.download_button("Chart (HTML)", fig.to_html(include_plotlyjs="cdn"), "dlfa-results.html", "text/html",
                       key="dl_html")
    with c4:
        if st.button("Make PNG", key="make_png", help="Renders the chart with kaleido and Chromium"):
            png, why = figure_png(fig)
            st.session_state["results_png"] = (png, why)
        png, why = st.session_state.get("results_png", (None, ""))
        if png:
            st.download_button("Chart (PNG)", png, "dlfa-results.png", "image/png", key="dl_png")
        elif why:
            st.info(why)


def show_training(job, results) -> None:
    """How each run of a job trained: loss and English dev curves, and where each run's dev score peaked."""
    curves = runs.training_curves(job, results)
    if not curves:
        return
    st.subheader(f"Training of {job.name or job.id}")
    st.plotly_chart(charts.training_curves(curves, catalog.task_metric(job.spec.task)), key=f"curves_{job.id}")
    st.dataframe(runs.convergence_frame(runs.job_units(job, results)), hide_index=True, key=f"convergence_{job.id}",
                 column_config={"English dev": st.column_config.NumberColumn(format="%.2f")})
    st.caption("A run trained with patience stops once English dev has not improved for that many evaluations; one "
               "that ends at its epoch cap while still improving may not have converged. The zero-shot results "
               "above are those of each run's best-dev state (★).")


def show_retrieval(job, results) -> None:
    """A Tatoeba job: its layer × language grid and, per language, both directions at the job's layer."""
    view = runs.retrieval_view(results)
    if view is None:
        return
    st.subheader(f"Tatoeba retrieval of {job.name or job.id}")
    st.caption(f"{view['encoder']}: accuracy (%) of the nearest English neighbour, mean of both directions, per "
               f"layer (0 = embeddings{'; dlfa = the run’s fused representation' if 'dlfa' in view['rows'] else ''})"
               f". The job's metrics are layer {view['chosen']} (◆).")
    st.plotly_chart(charts.retrieval_heatmap(view["rows"], view["languages"], view["values"], view["chosen"],
                                             label_of=catalog.short_label), key=f"retrieval_grid_{job.id}")
    st.dataframe(view["table"], hide_index=True, column_config={
        name: st.column_config.NumberColumn(format="%.1f") for name in ("xx→en", "en→xx", "mean", "ci_low", "ci_high")})


def question_answering(chosen: list[str], by_id: dict, read: dict) -> None:
    """QA jobs: exact match beside F1 (the metric above) per run and language, with intervals, and EM's chart."""
    units = [unit for job_id in chosen for unit in runs.job_units(by_id[job_id], read[job_id]) if unit.exact_match]
    if not units:
        return
    st.subheader("Question answering: F1 and exact match")
    table = runs.qa_scores_frame(units)
    st.dataframe(table, hide_index=True, key="results_qa", column_config={
        c: st.column_config.NumberColumn(format="%.2f") for c in table.columns if c.startswith(("F1", "EM"))})
    series = {f"{unit.job_id} · {unit.label}": unit.exact_match for unit in units}
    st.plotly_chart(charts.language_bars(series, family_of=catalog.family_of, label_of=catalog.short_label,
                                         metric="exact_match", title="Exact match per target language (95% CI)"),
                    key="results_qa_em")
    st.caption("F1: bag-of-tokens overlap with the best gold answer; exact match: the normalised answer equals "
               "a gold one. Intervals: 95% bootstrap over questions.")


guard.run_page(main)
