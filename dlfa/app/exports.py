"""The download row the three inspection views (Examples, Projector, Attention) share: a table as CSV, the
view's data as JSON, and a figure as PNG (rendered on demand: kaleido starts a browser)."""
from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from dlfa.png_render import figure_png


def download_row(key: str, name: str, table: pd.DataFrame | None = None, payload: dict | None = None,
                 figure=None) -> None:
    """Buttons for `name`.csv (the table), `name`.json (the payload) and `name`.png (the figure), as given."""
    columns = iter(st.columns(3))
    if table is not None:
        next(columns).download_button("Table (CSV)", table.to_csv(index=False), f"{name}.csv", "text/csv",
                                      key=f"{key}_csv")
    if payload is not None:
        next(columns).download_button("Data (JSON)", json.dumps(payload, indent=1, default=str), f"{name}.json",
                                      "application/json", key=f"{key}_json")
    if figure is not None:
        with next(columns):
            if st.button("Make PNG", key=f"{key}_make_png", help="Renders the chart with kaleido and Chromium"):
                st.session_state[f"{key}_png"] = figure_png(figure)
            png, why = st.session_state.get(f"{key}_png", (None, ""))
            if png:
                st.download_button("Chart (PNG)", png, f"{name}.png", "image/png", key=f"{key}_png_download")
            elif why:
                st.info(why)
