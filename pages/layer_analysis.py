"""Layer analysis (no training): per-layer retrieval accuracy and CKA of parallel sentences vs. English, of an
encoder or of a fine-tuned run's encoder (then with what fine-tuning changed), or the reproduction's record; or
XTREME's Tatoeba retrieval per layer and language."""
import pandas as pd
import streamlit as st

from dlfa import charts
from dlfa.app import catalog, guard, inference, runs, serving, session, widgets

PARALLEL_UD, TATOEBA = "Parallel UD", "Tatoeba (XTREME)"


def main() -> None:
    st.title("Layer analysis")
    st.caption("Which layers of the encoder align languages? For parallel sentences (English ↔ another "
               "language), each layer's mean-pooled representations are compared: retrieval accuracy (is the "
               "translation the nearest neighbour?) and linear CKA. No training: one inference pass.")
    settings = session.settings()
    tatoeba = st.radio("Parallel sentences", (PARALLEL_UD, TATOEBA), key="la_data", horizontal=True,
                       help="Tatoeba: XTREME's retrieval protocol, accuracy xx→en and en→xx with 95% bootstrap "
                            "intervals over sentence pairs") == TATOEBA
    languages = (inference.tatoeba_languages if tatoeba else inference.parallel_languages)(settings.data_root)
    if not languages:
        st.info("No Tatoeba data found: set a data root with retrieval/tatoeba/ (LASER's files)." if tatoeba else
                "No parallel data found: set a data root with Parallel UD (PUD) test sets, or build the classroom "
                "pack on Home.")
        return
    c1, c2 = st.columns([2, 1])
    with c1:
        kept = [c for c in st.session_state.get("la_languages", []) if c in languages]  # across data choices
        st.session_state["la_languages"] = kept or [c for c in ("de", "fr", "zh", "ja") if c in languages] or languages[:3]
        chosen = st.multiselect("Languages with parallel data", languages, key="la_languages",
                                format_func=catalog.language_label)
    with c2:
        of_run = st.radio("Representations of", ("an encoder", "a fine-tuned run"), key="la_source",
                          horizontal=True) == "a fine-tuned run"
        unit = None
        if of_run:
            unit = widgets.unit_picker("Run (with its saved model)", widgets.units_preselected_first(runs.all_units()),
                                  key="la_unit")
            if unit is None:
                st.info("No finished run with a saved model yet.")
        else:
            st.session_state.setdefault("la_encoder", settings.encoder)
            if session.shared():  # only the operator's encoders
                if st.session_state["la_encoder"] not in serving.allowed_encoders():
                    st.session_state["la_encoder"] = settings.encoder
                encoder = st.selectbox("Encoder", serving.allowed_encoders(), key="la_encoder")
            else:
                encoder = st.text_input("Encoder", key="la_encoder")
        max_pairs = st.slider("Sentence pairs per language", 20, 1000, 200, step=20, key="la_pairs")
    c1, c2 = st.columns([1, 3])
    if c1.button("Compute", type="primary", icon=":material/calculate:", key="la_compute",
                 disabled=not chosen or (of_run and unit is None)):
        with st.spinner("Encoding the parallel sentences layer by layer…"):
            args = (tuple(chosen), int(max_pairs), settings.data_root)
            if tatoeba:
                st.session_state["la_result"] = inference.tatoeba_analysis(None if unit else encoder.strip(), *args,
                                                                    unit=unit)
                st.session_state["la_base"] = None
            elif unit:
                st.session_state["la_result"] = inference.run_layer_analysis(unit, *args)
                st.session_state["la_base"] = inference.layer_analysis(unit.encoder, *args)
            else:
                st.session_state["la_result"] = inference.layer_analysis(encoder.strip(), *args)
                st.session_state["la_base"] = None
    recorded = runs.recorded_layer_analyses()
    if recorded:
        with c2:
            r1, r2 = st.columns([3, 2])
            which = r1.selectbox("Recorded by the reproduction", list(recorded), key="la_recorded_which",
                                 label_visibility="collapsed",
                                 help="docs/REPRODUCTION.md, section 2: the base encoder and the fine-tuned encoders "
                                      "the plan analyses, all Parallel UD languages")
            if r2.button("Show the reproduction's analysis", icon=":material/history:", key="la_recorded"):
                st.session_state["la_result"] = recorded[which]
                st.session_state["la_base"] = None if which == runs.RECORDED_BASE else recorded[runs.RECORDED_BASE]
    result = st.session_state.get("la_result")
    if not result:
        st.info("Choose languages and press Compute (a few seconds on the embedded encoder).")
        return
    if "scores" in result:  # a Tatoeba result
        tatoeba_view(result)
        return
    if result in recorded.values():
        pairs = recorded[runs.RECORDED_BASE]["settings"]["max_pairs"]
        st.caption(f"Recorded by the reproduction (docs/REPRODUCTION.md): {result['encoder']}, up to {pairs} "
                   "sentence pairs per language.")
    else:
        st.caption(f"Representations of {result['encoder']}.")
    c1, c2 = st.columns(2)
    with c1:
        st.plotly_chart(charts.layer_curves(result["retrieval"], catalog.short_label, "retrieval accuracy",
                                            y_range=[0, 1.02], title="Translation retrieval vs. English"),
                        key="la_retrieval")
    with c2:
        st.plotly_chart(charts.layer_curves(result["cka"], catalog.short_label, "linear CKA", y_range=[0, 1.02],
                                            title="CKA similarity vs. English"), key="la_cka")
    best = {lang: max(range(len(v)), key=v.__getitem__) for lang, v in result["retrieval"].items() if v}
    st.caption("Best retrieval layer: " + "; ".join(f"{catalog.short_label(l)} → layer {k}" for l, k in best.items()))
    base = st.session_state.get("la_base")
    if base:
        fine_tuning_change(base, result)


def tatoeba_view(result: dict) -> None:
    """A dlfa.analysis.retrieval.TatoebaResult (as a dict): accuracy per layer and language, and each language's best and
    last layer in both directions."""
    layers, languages = result["layers"], result["languages"]
    st.caption(f"Tatoeba retrieval with {result['encoder']}: "
               + ", ".join(f"{catalog.short_label(l)} {result['n_sentences'][l]} pairs" for l in languages)
               + ". Mean of both directions per layer; a hit is the translation on the same line.")
    curves = {language: [cell["average"]["value"] / 100 for cell in result["scores"][language]] for language in languages}
    st.plotly_chart(charts.layer_curves(curves, catalog.short_label, "retrieval accuracy", y_range=[0, 1.02],
                                        title="Tatoeba retrieval (mean of xx→en and en→xx)"), key="la_tatoeba")

    def cell(accuracy: dict) -> str:
        interval = f" [{accuracy['ci_low']:.1f}, {accuracy['ci_high']:.1f}]" if accuracy["ci_low"] is not None else ""
        return f"{accuracy['value']:.1f}{interval}"

    rows = []
    for language in languages:
        cells = result["scores"][language]
        best = max(range(len(layers)), key=lambda k: cells[k]["average"]["value"])
        for what, k in (("best layer", best), ("last layer", len(layers) - 1)):
            rows.append({"language": catalog.language_label(language), "": what, "layer": layers[k],
                         "xx→en": cell(cells[k]["xx_to_en"]), "en→xx": cell(cells[k]["en_to_xx"]),
                         "mean": cell(cells[k]["average"])})
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="la_tatoeba_table")


def fine_tuning_change(base: dict, tuned: dict) -> None:
    """The mean over the languages per layer, before and after fine-tuning."""
    from dlfa.analysis.layers import mean_over_languages

    st.subheader("What fine-tuning changed")
    curves = {measure: {"base encoder": mean_over_languages(base[measure]),
                        "fine-tuned": mean_over_languages(tuned[measure])} for measure in ("retrieval", "cka")}
    c1, c2 = st.columns(2)
    for column, measure, title in ((c1, "retrieval", "retrieval accuracy"), (c2, "cka", "linear CKA")):
        with column:
            st.plotly_chart(charts.layer_curves(curves[measure], y_title=title, y_range=[0, 1.02],
                                                title=f"Mean {title} over the languages"), key=f"la_change_{measure}")
    last = {measure: (values["base encoder"][-1], values["fine-tuned"][-1]) for measure, values in curves.items()}
    st.caption(f"Last layer, mean over the {len(tuned['languages'])} languages: retrieval "
               f"{last['retrieval'][0]:.2f} → {last['retrieval'][1]:.2f}, CKA {last['cka'][0]:.2f} → "
               f"{last['cka'][1]:.2f}.")


guard.run_page(main)
