"""Attribution: captum integrated gradients for one prediction of a baseline (`last`) run and a DLFA run,
side by side on the same input, with the convergence delta; for question answering, two rows per run: the
attributions of the predicted answer's start logit and of its end logit over question + context."""
import html

import streamlit as st

from dlfa import charts
from dlfa.app import catalog, guard, inference, runs, widgets


def colored_tokens(tokens, scores) -> str:
    """Tokens as HTML spans, blue for positive attribution, red for negative (scaled to the largest)."""
    top = max((abs(float(s)) for s in scores), default=0.0) or 1.0
    spans = []
    for token, score in zip(tokens, scores):
        alpha = min(abs(float(score)) / top, 1.0) * 0.85
        rgb = "76,120,168" if score >= 0 else "228,87,86"
        spans.append(f'<span title="{float(score):+.3f}" style="background: rgba({rgb},{alpha:.2f}); padding: 2px 3px; '
                     f'margin: 1px; border-radius: 3px; display: inline-block">{html.escape(str(token))}</span>')
    return "<div style='line-height: 2'>" + "".join(spans) + "</div>"


def main() -> None:
    st.title("Attribution")
    st.caption("Integrated gradients over the word embeddings (baseline: PAD tokens between the special tokens): "
               "how much each token pushed the model towards its prediction. A small convergence delta means the "
               "attributions add up to the change in the model's score.")
    dlfa_units = widgets.units_preselected_first(runs.all_units("dlfa"))
    last_units = widgets.units_preselected_first(runs.all_units("last"))
    if not dlfa_units or not last_units:
        st.info("This page needs a finished `last` run and a finished `dlfa` run (the classroom demo on Home "
                "trains both).")
        return
    c1, c2 = st.columns(2)
    with c2:
        dlfa_unit = widgets.unit_picker("DLFA run", dlfa_units, key="at_dlfa")
    task = dlfa_unit.task
    same_task = [u for u in last_units if u.task == task] or last_units
    same_job = [i for i, u in enumerate(same_task) if u.job_id == dlfa_unit.job_id]
    with c1:
        last_unit = widgets.unit_picker("Baseline run (last layer)", same_task, key="at_last",
                                   default_index=same_job[0] if same_job else 0)
    if last_unit.task != task:
        st.warning(f"No `last` run for task {task}: the baseline shown is for "
                   f"{last_unit.task}.")
    text, pair = widgets.text_inputs(task, key="at_text", default="The old man sat by the river .")
    if not text.strip():
        st.info("Type a question and its context." if catalog.task_kind(task) == "qa" else "Type a sentence.")
        return
    word_index = None
    if catalog.task_kind(task) == "token":
        words = text.split()
        word_index = st.selectbox("Explain the tag of word", range(len(words)), key="at_word",
                                  format_func=lambda i: f"{i}: {words[i]}")
    explained = {"last": last_unit, "dlfa": dlfa_unit}
    if catalog.task_kind(task) == "qa":  # a question and its context mean nothing to another task's baseline
        explained = {name: unit for name, unit in explained.items() if unit.task == task}
    results = {}
    with st.spinner("Integrated gradients…"):
        for name, unit in explained.items():
            results[name] = inference.attribution(unit, text.strip(), pair, word_index)
    if catalog.task_kind(task) == "qa":
        answer_spans(results, explained)
        return
    y_range = charts.shared_range(*[r["scores"] for r in results.values()])
    columns = st.columns(2)
    for column, (name, unit) in zip(columns, (("last", last_unit), ("dlfa", dlfa_unit))):
        r = results[name]
        with column:
            st.markdown(f"**{unit.label}**")
            label = r.get("label") or r.get("predicted_label") or r.get("predicted")
            probability = r.get("probability")
            m1, m2 = st.columns(2)
            m1.metric("Predicted", f"{label}", f"p = {probability:.2f}" if probability is not None else None,
                      delta_color="off", delta_arrow="off")
            delta = r.get("delta")
            m2.metric("Convergence delta", f"{float(delta):.4f}" if delta is not None else "–")
            st.html(colored_tokens(r["tokens"], r["scores"]))
            st.plotly_chart(charts.attribution_bars(r["tokens"], r["scores"], y_range=y_range), key=f"at_bars_{name}")


def answer_spans(results: dict, units: dict) -> None:
    """Per run: the predicted answer and two rows of token attributions, to its start and to its end logit."""
    y_range = charts.shared_range(*[r[side] for r in results.values() for side in ("start_scores", "end_scores")])
    for column, (name, r) in zip(st.columns(2), results.items()):
        with column:
            st.markdown(f"**{units[name].label}**")
            st.metric("Predicted answer", r["answer"] or "–",
                      f"characters {r['answer_start']}–{r['answer_end']} of the context", delta_color="off",
                      delta_arrow="off")
            if r["truncated"]:
                st.caption("The context was cut at the model's maximum length: only its first part is read.")
            question = [t for t, s in zip(r["tokens"], r["segments"]) if s == "question"]
            st.caption(f"Question tokens: {len(question)}; context tokens: {r['segments'].count('context')}.")
            for side, scores, position, delta in (("start", r["start_scores"], r["start_position"], r["start_delta"]),
                                                  ("end", r["end_scores"], r["end_position"], r["end_delta"])):
                st.markdown(f"*{side.capitalize()} of the answer* — token {position} `{r['tokens'][position]}`, "
                            f"convergence delta {delta:.4f}")
                st.html(colored_tokens(r["tokens"], scores))
                st.plotly_chart(charts.attribution_bars(r["tokens"], scores, y_range=y_range),
                                key=f"at_{side}_{name}")


guard.run_page(main)
