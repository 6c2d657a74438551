"""Fusion weights of a DLFA run: the AIF weights W on a typed sentence (tokens × channels and per token; for a
pair or a question with its context, per part too), and the run's fusion statistics per language, position and
gold tag."""
import pandas as pd
import streamlit as st

from dlfa import charts
from dlfa.analysis import examples
from dlfa.app import catalog, guard, inference, runs, widgets


def main() -> None:
    st.title("Fusion weights")
    st.caption("W is the weight of the last layer per token and channel; 1 − W goes to the fusion (lower) layer. "
               "Red: the lower layer dominates; blue: the last layer dominates.")
    units = widgets.units_preselected_first(runs.all_units("dlfa", with_model=False))
    if not units:
        st.info("No finished DLFA run yet: fusion weights exist only for the dlfa aggregation. Run the classroom "
                "demo on Home, launch a job with the dlfa aggregation, or open the recorded reproduction's "
                "jobs on Home.")
        return
    unit = widgets.unit_picker("DLFA run", units, key="fw_unit")
    task = unit.task
    st.caption(f"Task {task} · fusion layer {unit.fusion_layer} · encoder {unit.encoder}")

    if not unit.has_model:
        st.info("This run's model is not on this machine (a recorded run, or its folder was cleaned): the fusion "
                "statistics it recorded on the test sets are below; typed sentences need the model.")
        fusion_statistics(unit)
        return
    if catalog.task_kind(task) == "qa":
        test_question_picker(unit)
    text, pair = widgets.text_inputs(task, key="fw_text")
    if text.strip():
        with st.spinner("Running the model…"):
            w = inference.fusion_weights(unit, text.strip(), pair)
        st.metric("Mean W on this text (last-layer share)", f"{w['mean_last']:.3f}")
        c1, c2 = st.columns([3, 2])
        with c1:
            st.plotly_chart(charts.fusion_heatmap(w["tokens"], w["weights"], title="W: tokens × channels"),
                            key="fw_heatmap")
        with c2:
            st.plotly_chart(charts.token_weight_bars(w["tokens"], w["per_token_mean"],
                                                     title="Channel-averaged W per token"), key="fw_tokens")
        if len(w.get("segment_means", {})) > 1:
            segments(w)
    else:
        st.info("Type a sentence in any language to see its fusion weights.")

    fusion_statistics(unit)


def test_question_picker(unit: runs.Unit) -> None:
    """For a QA run with predictions: put one of its test questions (and its context) in the text boxes."""
    languages = examples.prediction_languages(unit.folder)
    if not languages:
        return
    c1, c2 = st.columns([1, 3])
    language = c1.selectbox("Test language", catalog.sort_by_family(languages), key="fw_test_language",
                            format_func=catalog.language_label)
    table = inference.predictions(unit, language).table
    if not table["context"].any():
        c2.caption("The test contexts cannot be read from the data source in use: type a question and a context.")
        return

    def use_question() -> None:
        row = table.iloc[st.session_state["fw_test_question"]]
        st.session_state["fw_text"], st.session_state["fw_text_pair"] = row["text"], row["context"]

    c2.selectbox("Or start from a test question", range(len(table)), key="fw_test_question", index=None,
                 on_change=use_question, placeholder="a question of the run's test set",
                 format_func=lambda i: f"#{i} {table['text'].iloc[i]} ({table['outcome'].iloc[i]})")


def segments(w: dict) -> None:
    """W of the two parts of the input (question and context, or a pair's two texts) told apart."""
    st.subheader("W per part of the input")
    columns = st.columns(len(w["segment_means"]))
    for column, (name, mean) in zip(columns, w["segment_means"].items()):
        column.metric(f"Mean W over the {name} tokens", f"{mean:.3f}")
    table = pd.DataFrame({"position": range(len(w["tokens"])), "token": w["tokens"],
                          "part": [s or "special" for s in w["segments"]], "W": w["per_token_mean"]})
    shared = charts.shared_range(w["per_token_mean"], floor=0, ceiling=1)
    for i, name in enumerate(w["segment_means"]):
        part = table[table["part"] == name]
        st.plotly_chart(charts.token_weight_bars(list(part["token"]), list(part["W"]), y_range=shared,
                                                 title=f"W per {name} token"), key=f"fw_part_{i}")
    st.dataframe(table, hide_index=True, key="fw_parts", column_config={"W": st.column_config.NumberColumn(
        format="%.3f")})


def fusion_statistics(unit: runs.Unit) -> None:
    """The run's recorded mean fusion weights per language, token position and gold tag."""
    stats = unit.fusion_stats.get("languages") or {}
    st.subheader("Fusion statistics on the test sets")
    if not stats:
        st.info("This run recorded no fusion statistics.")
        return
    c1, c2 = st.columns(2)
    with c1:
        st.plotly_chart(charts.fusion_by_language(stats, catalog.short_label,
                                                  title="Mean weight: last vs. lower layer"), key="fw_lang")
    with c2:
        positions = [v for s in stats.values() for v in s.get("per_position", [])]
        st.plotly_chart(charts.fusion_by_position(stats, catalog.short_label, charts.shared_range(positions),
                                                  title="Mean W per token position"), key="fw_pos")
    if any(s.get("per_tag") for s in stats.values()):
        tags = [v for s in stats.values() for v in (s.get("per_tag") or {}).values()]
        st.plotly_chart(charts.fusion_by_tag(stats, catalog.short_label, charts.shared_range(tags),
                                             title="Mean W per gold tag"), key="fw_tag")


guard.run_page(main)
