"""Layer analysis (no training): per-layer retrieval accuracy and CKA of parallel sentences vs. English."""
import streamlit as st

from dlfa import charts, ui


def main() -> None:
    st.title("Layer analysis")
    st.caption("Which layers of the encoder align languages? For parallel sentences (English ↔ another "
               "language), each layer's mean-pooled representations are compared: retrieval accuracy (is the "
               "translation the nearest neighbour?) and linear CKA. No training: one inference pass.")
    settings = ui.settings()
    languages = ui.parallel_languages(settings.data_root)
    if not languages:
        st.info("No parallel data found: set a data root with Parallel UD (PUD) test sets, or build the classroom "
                "pack on Home.")
        return
    c1, c2 = st.columns([2, 1])
    with c1:
        st.session_state.setdefault("la_languages", [c for c in ("de", "fr", "zh", "ja") if c in languages]
                                    or languages[:3])
        chosen = st.multiselect("Languages with parallel data", languages, key="la_languages",
                                format_func=ui.language_label)
    with c2:
        st.session_state.setdefault("la_encoder", settings.encoder)
        encoder = st.text_input("Encoder", key="la_encoder")
        max_pairs = st.slider("Sentence pairs per language", 20, 1000, 200, step=20, key="la_pairs")
    c1, c2 = st.columns([1, 3])
    if c1.button("Compute", type="primary", icon=":material/calculate:", key="la_compute", disabled=not chosen):
        with st.spinner("Encoding the parallel sentences layer by layer…"):
            st.session_state["la_result"] = ui.layer_analysis(encoder.strip(), tuple(chosen), int(max_pairs),
                                                              settings.data_root)
    recorded = ui.recorded_layer_analysis()
    if recorded and c2.button("Show the reproduction's analysis", icon=":material/history:", key="la_recorded",
                              help="the layer analysis recorded in docs/reproduction (all Parallel UD languages)"):
        st.session_state["la_result"] = recorded
    result = st.session_state.get("la_result")
    if not result:
        st.info("Choose languages and press Compute (a few seconds on the embedded encoder).")
        return
    if result == recorded:
        st.caption(f"Recorded by the reproduction (docs/REPRODUCTION.md, section 2): encoder {recorded['encoder']}, "
                   f"up to {recorded['settings']['max_pairs']} sentence pairs per language.")
    c1, c2 = st.columns(2)
    with c1:
        st.plotly_chart(charts.layer_curves(result["retrieval"], ui.short_label, "retrieval accuracy",
                                            y_range=[0, 1.02], title="Translation retrieval vs. English"),
                        key="la_retrieval")
    with c2:
        st.plotly_chart(charts.layer_curves(result["cka"], ui.short_label, "linear CKA", y_range=[0, 1.02],
                                            title="CKA similarity vs. English"), key="la_cka")
    best = {lang: max(range(len(v)), key=v.__getitem__) for lang, v in result["retrieval"].items() if v}
    st.caption("Best retrieval layer: " + "; ".join(f"{ui.short_label(l)} → layer {k}" for l, k in best.items()))


ui.run_page(main)
