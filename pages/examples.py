"""Examples: one run's test examples per language (gold and predicted labels, filters, a confusion matrix and
the worst labels; for question answering each question's context with the gold and predicted spans marked),
and two runs on the same test set compared example by example with a paired test."""
import html

import streamlit as st

from dlfa import charts
from dlfa.analysis import examples, qa_examples
from dlfa.app import catalog, guard, inference, runs, session, widgets
from dlfa.app.exports import download_row

SHOWN_SENTENCES = 25  # coloured sentences drawn at once (the table holds them all)


def main() -> None:
    st.title("Examples")
    st.caption("A run's zero-shot test predictions example by example, and two runs on the same test set compared "
               "item by item (which examples the second run fixes and which it breaks, with a paired test).")
    units = widgets.units_preselected_first(runs.all_units(with_model=False))
    if not units:
        st.info("No finished run yet. Start the classroom demo on Home or a job on Launch.")
        return
    unit = widgets.unit_picker("Run", units, key="ex_unit")
    languages = examples.prediction_languages(unit.folder)
    if not languages:
        st.info(examples.missing_predictions_message(unit.result, unit.folder, session.settings().data_root))
        return
    language = st.selectbox("Language", catalog.sort_by_family(languages), key="ex_language",
                            format_func=catalog.language_label)
    data = inference.predictions(unit, language)
    if not data.with_text:
        st.warning("The test examples cannot be read from the data source in use: showing labels only. Set the "
                   "data root the run was evaluated on in the sidebar to see the text.")
    browse, compare = st.tabs(["Browse", "Compare two runs"])
    with browse:
        browse_questions(data) if data.kind == "qa" else browse_examples(data)
    with compare:
        compare_runs(unit, data, [u for u in units if u is not unit])


def browse_examples(data: examples.LanguagePredictions) -> None:
    c1, c2, c3 = st.columns(3)
    which = c1.radio("Examples", ["all", "correct", "with an error"], key="ex_correct", horizontal=True)
    gold_label = c2.selectbox("Gold tag or class", ["any", *data.labels], key="ex_gold")
    longest = max(int(data.table["length"].max()), 1)
    length = c3.slider("Length in words", 0, longest, (0, longest), key="ex_length")
    shown = examples.filter_examples(data, {"all": None, "correct": True, "with an error": False}[which],
                                     None if gold_label == "any" else gold_label, length)
    st.markdown(f"**{len(shown)} of {len(data.table)} examples** ({catalog.language_label(data.language)})")
    columns = ["index", "text", "gold", "pred", "errors"] + (["confidence"] if data.kind != "token" else [])
    if data.kind == "token":
        for _, row in shown.head(SHOWN_SENTENCES).iterrows():
            st.markdown(tagged_sentence(row), unsafe_allow_html=True)
        if len(shown) > SHOWN_SENTENCES:
            st.caption(f"The first {SHOWN_SENTENCES} shown; the table below holds all {len(shown)}.")
    st.dataframe(shown[columns], hide_index=True, key="ex_table")

    st.subheader("Confusion matrix and worst labels")
    matrix = examples.confusion_matrix(data)
    scores = examples.label_scores(data)
    c1, c2 = st.columns([3, 2])
    unit_of_count = "words" if data.kind == "token" else "examples"
    confusion = charts.confusion_heatmap(matrix, title=f"{catalog.short_label(data.language)}: gold × predicted "
                                                       f"({unit_of_count})")
    c1.plotly_chart(confusion, key="ex_confusion")
    c2.plotly_chart(charts.label_score_bars(scores.head(10), title="Worst labels (F1)"), key="ex_worst")
    c2.dataframe(scores, hide_index=True, key="ex_scores")
    download_row("ex", f"examples-{data.task}-{data.language}", table=shown[columns],
                 payload={"confusion": matrix.to_dict(), "labels": scores.to_dict("records")}, figure=confusion)


def browse_questions(data: examples.LanguagePredictions) -> None:
    """Question answering: questions filtered by outcome, each with its context, gold and predicted spans."""
    c1, c2 = st.columns(2)
    which = c1.radio("Questions", ["all", *qa_examples.OUTCOMES], key="ex_outcome", horizontal=True,
                     help="exact: exact match; partial: no exact match but shared tokens (F1 > 0); wrong: F1 0")
    longest = max(int(data.table["length"].max()), 1)
    length = c2.slider("Context length in words", 0, longest, (0, longest), key="ex_length")
    shown = examples.filter_examples(data, length=length, outcome=None if which == "all" else which)
    counts = data.table["outcome"].value_counts()
    st.markdown(f"**{len(shown)} of {len(data.table)} questions** ({catalog.language_label(data.language)}): "
                + ", ".join(f"{counts.get(o, 0)} {o}" for o in qa_examples.OUTCOMES))
    st.caption("In the context: gold answers underlined in green, the predicted span highlighted (green when it "
               "is an exact match, amber when partial, red when wrong).")
    for _, row in shown.head(SHOWN_SENTENCES).iterrows():
        st.markdown(answered_question(row), unsafe_allow_html=True)
    if len(shown) > SHOWN_SENTENCES:
        st.caption(f"The first {SHOWN_SENTENCES} shown; the table below holds all {len(shown)}.")
    columns = ["index", "id", "text", "gold", "pred", "pred_start", "pred_end", "exact_match", "f1", "outcome"]
    st.dataframe(shown[columns].rename(columns={"text": "question"}), hide_index=True, key="ex_table",
                 column_config={"f1": st.column_config.NumberColumn(format="%.1f")})
    download_row("ex", f"examples-{data.task}-{data.language}", table=shown[columns],
                 payload={"outcomes": {o: int(counts.get(o, 0)) for o in qa_examples.OUTCOMES}})


OUTCOME_COLOURS = {"exact": "#c8e6c9", "partial": "#ffe0b2", "wrong": "#ffcdd2"}


def answered_question(row) -> str:
    """A question and its context as HTML, gold spans underlined and the predicted span highlighted."""
    parts = []
    for text, gold, predicted in qa_examples.row_pieces(row):
        style = ("border-bottom:2px solid #2e7d32;" if gold else "") + (
            f"background:{OUTCOME_COLOURS[row['outcome']]};" if predicted else "")
        parts.append(f"<span style='{style}'>{html.escape(text)}</span>" if style else html.escape(text))
    context = "".join(parts) if row["context"] else "<i>(context not readable here)</i>"
    answers = " | ".join(html.escape(g) for g in row["gold"])
    return (f"<div><b>#{row['index']} {html.escape(row['text'])}</b> — predicted <b>{html.escape(row['pred'])}"
            f"</b> ({row['outcome']}, F1 {row['f1']:.0f}); gold: {answers}<br>{context}</div>")


def tagged_sentence(row) -> str:
    """A sentence as HTML: correct words in green, wrong ones in red with their predicted and gold tags."""
    parts = []
    for word, gold, pred in zip(row["words"], row["gold"], row["pred"]):
        word = html.escape(word)
        if gold == pred:
            parts.append(f"<span style='color:#2e7d32' title='{gold}'>{word}</span>")
        else:
            parts.append(f"<span style='color:#c62828;font-weight:600'>{word}<sub>{html.escape(pred)}≠"
                         f"{html.escape(gold)}</sub></span>")
    return f"<div>#{row['index']}: {' '.join(parts)}</div>"


def compare_runs(unit: runs.Unit, data: examples.LanguagePredictions, others: list[runs.Unit]) -> None:
    same_test = [u for u in others if u.task == data.task
                 and data.language in examples.prediction_languages(u.folder)]
    if not same_test:
        st.info(f"No other run kept predictions on the {data.task} test set in "
                f"{catalog.language_label(data.language)}: "
                "train another configuration (e.g. last vs dlfa) to compare them here.")
        return
    other = widgets.unit_picker("Run B (compared with the run above, A)", same_test, key="ex_other")
    languages = [lang for lang in examples.prediction_languages(unit.folder)
                 if lang in examples.prediction_languages(other.folder)]
    comparisons, per_language = [], {}
    for language in catalog.sort_by_family(languages):
        a = inference.predictions(unit, language)
        b = inference.predictions(other, language)
        comparisons.extend(examples.compare_languages(a, b))
        per_language[language] = (a, b)
    table = examples.comparison_frame(comparisons)
    tests = "; ".join(dict.fromkeys(f"{c.metric}: {c.test}" for c in comparisons))
    st.markdown(f"**B = {other.label}** against **A = {unit.label}**: per language, the examples B fixes (fewer "
                f"errors than A) and breaks (more errors); p-values on the same items ({tests}), the interval of "
                "B − A from a paired bootstrap over examples.")
    st.dataframe(table, hide_index=True, key="ex_paired", column_config={
        c: st.column_config.NumberColumn(format="%.2f") for c in ("A", "B", "B − A", "low", "high")} | {
        "p": st.column_config.NumberColumn(format="%.4f")})
    which = st.radio("Show the examples B", ["fixed", "broken"], key="ex_which", horizontal=True)
    changed = examples.changed_examples(*per_language[data.language], which)
    st.markdown(f"**{len(changed)} examples {which}** in {catalog.language_label(data.language)}")
    st.dataframe(changed, hide_index=True, key="ex_changed")
    download_row("ex_pair", f"paired-{data.task}", table=table,
                 payload={"a": unit.label, "b": other.label, "per_language": table.to_dict("records"),
                          which: changed.to_dict("records")})


guard.run_page(main)
