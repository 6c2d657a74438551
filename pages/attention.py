"""Attention: the attention maps of any layer and head on a sentence (or a sentence and its translation) as a
heatmap and a bertviz-like line view, head averages, the entropy of every head; for a DLFA run, the fusion
weight W per token beside the attention of the fused layer and of the last layer."""
import math

import pandas as pd
import streamlit as st

from dlfa import charts
from dlfa.analysis import attention
from dlfa.app import guard, inference, runs, session, widgets
from dlfa.app.exports import download_row

AVERAGE = "mean over heads"


def main() -> None:
    st.title("Attention")
    st.caption("Who attends to whom, layer by layer and head by head. With a translation, both sentences are "
               "encoded as one pair: the off-diagonal blocks show how each side attends to the other.")
    c1, c2 = st.columns([1, 2])
    of_run = c1.radio("Attention of", ("the encoder", "a fine-tuned run"), key="at_source") == "a fine-tuned run"
    unit = None
    with c2:
        if of_run:
            units = widgets.units_preselected_first(runs.all_units())
            if not units:
                st.info("No finished run with a saved model on this machine (recorded runs keep no model): "
                        "run the classroom demo on Home, or look at the encoder's attention.")
                return
            unit = widgets.unit_picker("Run (with its saved model)", units, key="at_unit")
            spec = unit.encoder
        else:
            spec = session.settings().encoder
        st.caption(f"Encoder: `{spec}`" + (f" fine-tuned by {unit.label}" if unit else " (the sidebar's)"))
    c1, c2 = st.columns(2)
    text = c1.text_input("Sentence", "The old man reads a book in the garden.", key="at_text")
    pair = c2.text_input("Its translation (optional)", "", key="at_pair").strip() or None
    if not text.strip():
        st.info("Type a sentence to see its attention.")
        return
    view = inference.attention_view(spec, text.strip(), pair, unit)
    maps = view["maps"]
    if maps.truncated:
        st.warning(f"The input is longer than {attention.MAX_TOKENS} tokens: only the first {attention.MAX_TOKENS} "
                   "are shown.")
    c1, c2, c3 = st.columns(3)
    layer = c1.slider("Layer", 1, maps.num_layers, maps.num_layers, key="at_layer")
    head_choice = c2.selectbox("Head", [AVERAGE, *range(maps.num_heads)], key="at_head")
    threshold = c3.slider("Line view: hide attention below", 0.0, 0.5, 0.1, 0.05, key="at_threshold")
    head = None if head_choice == AVERAGE else int(head_choice)
    matrix = maps.matrix(layer, head)
    name = f"layer {layer}, {'mean over heads' if head is None else f'head {head}'}"
    heatmap = charts.attention_heatmap(maps.tokens, matrix, title=f"Attention · {name}")
    c1, c2 = st.columns([3, 2])
    c1.plotly_chart(heatmap, key="at_heatmap")
    c2.plotly_chart(charts.attention_lines(maps.tokens, matrix, threshold, title="Line view"), key="at_lines")

    entropy = maps.entropy()
    st.subheader("Attention entropy per layer and head")
    st.caption("Bits, averaged over attending tokens: 0 = each token attends to one token, "
               f"{math.log2(len(maps.tokens)):.1f} = uniform over the {len(maps.tokens)} tokens.")
    st.plotly_chart(charts.entropy_heatmap(entropy), key="at_entropy")
    if "weights" in view:
        fusion_beside_attention(view, maps)
    table = pd.DataFrame(matrix, index=charts.token_labels(maps.tokens), columns=charts.token_labels(maps.tokens))
    download_row("at", f"attention-layer{layer}-{'mean' if head is None else f'head{head}'}",
                 table=table.reset_index(names="attending token"),
                 payload={"tokens": maps.tokens, "layer": layer, "head": head, "attention": matrix.tolist(),
                          "entropy_bits": entropy.tolist(), "fusion_weights": view.get("weights")},
                 figure=heatmap)


def fusion_beside_attention(view: dict, maps: attention.AttentionMaps) -> None:
    layer = view["fusion_layer"]
    st.subheader(f"Fusion weight W beside the attention of layer {layer} and of the last layer")
    st.caption("W is the last layer's share per token (channel mean); 1 − W goes to the fusion layer. "
               "Attention: the mean over heads.")
    st.plotly_chart(charts.token_weight_bars(maps.tokens, view["weights"], title="W per token"), key="at_w")
    c1, c2 = st.columns(2)
    if view["fused"] is None:
        c1.info("The fusion layer is layer 0, the embeddings: it has no attention.")
    else:
        c1.plotly_chart(charts.attention_heatmap(maps.tokens, view["fused"], title=f"Fused layer {layer}"),
                        key="at_fused")
    c2.plotly_chart(charts.attention_heatmap(maps.tokens, view["last"], title=f"Last layer {maps.num_layers}"),
                    key="at_last")


guard.run_page(main)
