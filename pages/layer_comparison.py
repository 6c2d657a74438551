"""Layer comparison: two runs (or two fusion layers of one sweep) side by side on shared scales, and the
layer × language grid of a sweep with the best layer per language marked."""
import streamlit as st

from dlfa import charts
from dlfa.app import catalog, guard, inference, runs, widgets

DEFAULT_SENTENCE = "Die Katze schläft auf dem warmen Sofa ."


def main() -> None:
    st.title("Layer comparison")
    units = widgets.units_preselected_first(runs.all_units(with_model=False))
    if not units:
        st.info("No finished runs yet. A sweep over fusion layers (e.g. the classroom demo on Home) gives a "
                "layer × language grid here; so do the recorded reproduction's probe sweeps (open them on Home).")
        return
    grid_section()
    side_by_side(units)


def grid_section() -> None:
    sweeps = [job for job in runs.finished_jobs() if runs.job_results(job).grid]
    if not sweeps:
        st.caption("No sweep yet: launch a job with several fusion layers to see the layer × language grid.")
        return
    wanted = widgets.preselected_jobs()
    sweeps.sort(key=lambda job: job.id not in wanted)
    by_id = {job.id: job for job in sweeps}
    job_id = st.selectbox("Sweep", list(by_id), key="lc_sweep", format_func=lambda j: runs.job_label(by_id[j]))
    grid = runs.job_results(by_id[job_id]).grid
    st.subheader("Layer × language grid")
    st.plotly_chart(charts.layer_language_grid(grid, catalog.short_label), key="lc_grid")
    best = charts.best_per_language(grid)
    st.caption("★ best configuration per language: " + "; ".join(
        f"{catalog.short_label(lang)} → {b['config']} ({b['value']:.1f})" for lang, b in best.items()))


def side_by_side(units) -> None:
    st.subheader("Side by side")
    dlfa = [i for i, u in enumerate(units) if u.aggregation == "dlfa"]
    first = dlfa[0] if dlfa else 0
    second = dlfa[1] if len(dlfa) > 1 else (1 if len(units) > 1 else 0)
    columns = st.columns(2)
    chosen = []
    for column, default, key in zip(columns, (first, second), ("lc_left", "lc_right")):
        with column:
            chosen.append(widgets.unit_picker("Run", units, key=key, default_index=default))
    metrics = [u.metrics for u in chosen]
    values = [v for m in metrics for row in m.values() for v in (row.get("value"), row.get("ci_low"), row.get("ci_high"))]
    top = charts.shared_range(values, floor=0, ceiling=100)
    y_range = [0, top[1]] if top else None  # bars start at 0; one scale for both sides
    for i, (column, unit) in enumerate(zip(columns, chosen)):
        with column:
            fig = charts.language_bars({unit.label: unit.metrics}, catalog.family_of, catalog.short_label,
                                       metric=next(iter(unit.metrics.values()), {}).get("metric", ""),
                                       y_range=y_range, title=unit.label)
            st.plotly_chart(fig, key=f"lc_bars_{i}")
            if unit.exact_match:
                qa_scores(unit, i)

    with_weights = [u for u in chosen if u.aggregation == "dlfa" and u.has_model]
    if not with_weights:
        st.caption("Fusion weights appear here when a dlfa run is chosen.")
        return
    st.markdown("**Fusion weights on the same sentence** (same colour scale, 0…1)")
    task = with_weights[0].task
    text, pair = widgets.text_inputs(task, key="lc_text", default=DEFAULT_SENTENCE)
    if not text.strip():
        return
    weights = {}
    for i, unit in enumerate(chosen):
        if unit.aggregation == "dlfa" and unit.has_model and unit.task == task:
            weights[i] = inference.fusion_weights(unit, text.strip(), pair)
    per_token = charts.shared_range(*[w["per_token_mean"] for w in weights.values()], floor=0, ceiling=1)
    for i, (column, unit) in enumerate(zip(columns, chosen)):
        with column:
            w = weights.get(i)
            if w is None:
                st.caption(f"{unit.label}: no fusion weights (aggregation {unit.aggregation}).")
                continue
            st.plotly_chart(charts.fusion_heatmap(w["tokens"], w["weights"], title=f"W · {unit.label}"),
                            key=f"lc_heat_{i}")
            st.plotly_chart(charts.token_weight_bars(w["tokens"], w["per_token_mean"], y_range=per_token),
                            key=f"lc_tok_{i}")


def qa_scores(unit: runs.Unit, i: int) -> None:
    """A question answering run's F1 (the bars) with exact match beside it, per language with intervals."""
    table = runs.qa_scores_frame([unit]).drop(columns=["run"])
    st.dataframe(table, hide_index=True, key=f"lc_qa_{i}", column_config={
        c: st.column_config.NumberColumn(format="%.1f") for c in table.columns if c.startswith(("F1", "EM"))})


guard.run_page(main)
