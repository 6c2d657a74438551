"""Projector: parallel sentences (or tagged words) at any layer of an encoder, projected to 2-D and coloured by
language (or tag), translations joined by lines; the base encoder beside a fine-tuned run's encoder."""
import pandas as pd
import streamlit as st

from dlfa import charts
from dlfa.analysis import projector
from dlfa.app import cache, catalog, guard, inference, runs, session, widgets
from dlfa.app.exports import download_row

MODES = {"sentences": "Sentences (mean-pooled)", "words": "Words of UD-POS (by tag or language)"}


def main() -> None:
    st.title("Projector")
    st.caption("Each point is a sentence (or a word) at one layer of the encoder, projected to 2-D; lines join an "
               "English sentence and its translations. Move the layer slider to see at which layers translations "
               "come together — the base encoder beside a fine-tuned run's, with the same projection method.")
    settings = session.settings()
    source = session.resolve_source(settings.data_root)
    c1, c2, c3 = st.columns([2, 2, 1])
    mode = c1.radio("Points", list(MODES), format_func=MODES.get, key="pj_mode", horizontal=True)
    source_name = "udpos"
    if mode == "sentences":
        source_name = c2.selectbox("Parallel sentences", list(projector.SOURCES), format_func=projector.SOURCES.get,
                                   key="pj_source")
        options = catalog.sort_by_family(projector.available_languages(source_name, source))
    else:
        options = catalog.language_options("udpos", settings.data_root, include_english=True)
    c3.radio("Projection", projector.available_methods(), format_func=projector.METHODS.get, key="pj_method")
    if not options:
        st.info(f"The data source in use ({source.describe()}) has no such data: set a data root in the sidebar.")
        return
    defaults = [c for c in (("en", "de", "zh") if mode == "words" else ("de", "fr", "zh")) if c in options]
    if not set(st.session_state.get("pj_languages") or []) <= set(options):
        del st.session_state["pj_languages"]
    st.session_state.setdefault("pj_languages", defaults or options[:3])
    languages = st.multiselect("Languages" + (" besides English" if mode == "sentences" else ""), options,
                               key="pj_languages", format_func=catalog.language_label)
    c1, c2 = st.columns(2)
    count = c1.slider("Translation groups" if mode == "sentences" else "Sentences per language", 5, 300,
                      40 if mode == "sentences" else 10, step=5, key="pj_count",
                      help="Tatoeba: per language. A few hundred points take seconds on a CPU.")
    with c2:
        units = widgets.units_preselected_first(runs.all_units())
        beside = st.toggle("Beside it: a fine-tuned run's encoder", key="pj_beside", disabled=not units,
                           help=None if units else "No finished run with a saved model on this machine (recorded "
                                                   "runs keep no model)")
        unit = widgets.unit_picker("Run", units, key="pj_unit") if beside and units else None
    base_spec = unit.encoder if unit else settings.encoder
    st.caption(f"Base encoder: `{base_spec}`" + (" (the run's)" if unit else " (the sidebar's)"))
    if st.button("Compute", type="primary", icon=":material/scatter_plot:", key="pj_compute", disabled=not languages):
        st.session_state["pj_request"] = ((mode, source_name, tuple(languages), int(count), settings.data_root),
                                          base_spec, unit)
    if "pj_request" not in st.session_state:
        st.info("Choose the points and press Compute.")
        return
    show(*st.session_state["pj_request"])


def show(request: tuple, base_spec: str, unit: runs.Unit | None) -> None:
    mode = request[0]
    items, _ = inference.projector_items(request, base_spec)
    sides = inference.projector_states(request, base_spec, unit)
    layers = next(iter(sides.values())).shape[0] - 1
    layer = st.slider("Layer (0 = embeddings)", 0, layers, layers, key="pj_layer")
    color_by = "language"
    if mode == "words":
        color_by = st.radio("Colour by", ["tag", "language"], key="pj_color", horizontal=True)
    method = st.session_state.get("pj_method", "pca")
    frames, figures = [], []
    for column, (name, states) in zip(st.columns(len(sides)), sides.items()):
        points = projector.points_frame(items, cache.projection(name, states, layer, method))
        title = f"{name.split(' · ')[0]} · layer {layer} · {projector.METHODS[method]}"
        figure = charts.projector_scatter(points, color_by, catalog.short_label if color_by == "language" else None,
                                          title=title)
        column.plotly_chart(figure, key=f"pj_plot_{len(figures)}")
        column.caption(name)
        frames.append(points.assign(encoder=name, layer=layer))
        figures.append(figure)
    st.markdown(" · ".join(f"{catalog.short_label(lang)}: {n} points" for lang, n in
                           frames[0]["language"].value_counts(sort=False).items()))
    payload = {"layer": layer, "method": method, "request": list(request)}
    if mode == "sentences":
        ratios = [inference.translation_distances(states, items) for states in sides.values()]
        st.plotly_chart(charts.layer_line(ratios, layer, "translation ÷ other-sentence distance",
                                          "How close translations are, per layer (full space, lower = closer)",
                                          names=[n.split(" · ")[0] for n in sides]), key="pj_distance")
        payload["translation_distance"] = dict(zip(sides, ratios))
    download_row("pj", f"projector-layer{layer}", table=pd.concat(frames, ignore_index=True), payload=payload,
                 figure=figures[0])


guard.run_page(main)
