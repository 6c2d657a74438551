"""Longer than 400 lines because it is the one catalogue of the project's figures, shared by the app and the
reproduction report: one short, independent builder per chart, so that every view draws alike.

Plotly figure builders: plain functions of plain data (lists, dicts, DataFrames) that return
`plotly.graph_objects.Figure`s, so they are testable without Streamlit. Conventions: values are in points (0-100)
as the results store them; every figure that is meant to be shown beside another takes explicit ranges (`y_range`,
`zmin`/`zmax`) so that side-by-side views share one scale.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

FUSION_COLORSCALE = "RdBu"  # W: 1 = all on the last layer (blue), 0 = all on the lower layer (red)
VALUE_COLORSCALE = "Viridis"
PALETTE = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#FF9DA6", "#9D755D", "#BAB0AC",
           "#EECA3B")


def _finite(values: Iterable) -> list[float]:
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out.append(f)
    return out


def token_labels(tokens: Sequence[str]) -> list[str]:
    """Unique axis labels "i:token" with HTML-special characters escaped (plotly renders `<s>` as markup)."""
    import html

    return [f"{i}:{html.escape(str(t))}" for i, t in enumerate(tokens)]


def shared_range(*series: Iterable, pad: float = 0.05, floor: float | None = None,
                 ceiling: float | None = None) -> list[float] | None:
    """One [low, high] covering every finite value of every series (with `pad` of the span added), clipped to
    [floor, ceiling]; None when there is no value. Give the result to each figure shown side by side."""
    values = [v for s in series for v in _finite(s)]
    if not values:
        return None
    low, high = min(values), max(values)
    span = (high - low) or max(abs(high), 1.0)
    low, high = low - pad * span, high + pad * span
    if floor is not None:
        low = max(low, floor)
    if ceiling is not None:
        high = min(high, ceiling)
    return [low, high]


def _family_order(languages: Sequence[str], family_of: Callable[[str], str] | None) -> list[tuple[str, str]]:
    """(family, language) pairs, families in order of first appearance, English's family first."""
    family_of = family_of or (lambda _lang: "")
    families: dict[str, list[str]] = {}
    for lang in languages:
        families.setdefault(family_of(lang) or "Other", []).append(lang)
    english = family_of("en") if family_of is not None else ""
    order = sorted(families, key=lambda f: (f != english, f.lower() == "other", f))
    return [(family, lang) for family in order for lang in families[family]]


def language_bars(
    series: Mapping[str, Mapping[str, Mapping]],
    family_of: Callable[[str], str] | None = None,
    label_of: Callable[[str], str] | None = None,
    metric: str = "",
    y_range: Sequence[float] | None = None,
    title: str = "",
) -> go.Figure:
    """Grouped bars: one bar group per language (x grouped by language family), one bar per run/series, with
    95% CI error bars. series: {series name: {language: {"value", "ci_low", "ci_high", "n"}}}."""
    languages: list[str] = []
    for rows in series.values():
        languages += [lang for lang in rows if lang not in languages]
    ordered = _family_order(languages, family_of)
    label_of = label_of or (lambda lang: lang)
    x = [[family for family, _ in ordered], [label_of(lang) for _, lang in ordered]] if family_of else \
        [label_of(lang) for _, lang in ordered]
    fig = go.Figure()
    for i, (name, rows) in enumerate(series.items()):
        values, plus, minus, hover = [], [], [], []
        for _, lang in ordered:
            row = rows.get(lang) or {}
            value = row.get("value")
            values.append(value)
            low, high = row.get("ci_low"), row.get("ci_high")
            plus.append(high - value if value is not None and high is not None else None)
            minus.append(value - low if value is not None and low is not None else None)
            hover.append(f"n={row.get('n')}" if row.get("n") is not None else "")
        fig.add_bar(name=name, x=x, y=values, marker_color=PALETTE[i % len(PALETTE)], customdata=hover,
                    error_y=dict(type="data", symmetric=False, array=plus, arrayminus=minus, visible=True),
                    hovertemplate="%{x}: %{y:.2f} %{customdata}<extra>" + name + "</extra>")
    fig.update_layout(barmode="group", title=title or None, yaxis_title=metric or "score",
                      legend_title_text="run", margin=dict(t=50 if title else 20, b=40, l=50, r=20),
                      xaxis_title="target language (grouped by family)" if family_of else "target language")
    if y_range:
        fig.update_yaxes(range=list(y_range))
    return fig


def fusion_heatmap(tokens: Sequence[str], weights: Sequence[Sequence[float]], zmin: float = 0.0,
                   zmax: float = 1.0, title: str = "") -> go.Figure:
    """AIF weights W of one text: tokens (rows) × channels (columns). W is the share of the last layer;
    1 − W goes to the fusion layer. Fixed zmin/zmax so two heatmaps compare."""
    labels = token_labels(tokens)  # unique row labels even for repeated tokens
    fig = go.Figure(go.Heatmap(z=[list(map(float, row)) for row in weights], y=labels, zmin=zmin, zmax=zmax,
                               colorscale=FUSION_COLORSCALE, colorbar=dict(title="W (last)"),
                               hovertemplate="token %{y}<br>channel %{x}<br>W %{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title="token", type="category")
    fig.update_xaxes(title="channel")
    fig.update_layout(title=title or None, height=max(260, 22 * len(tokens) + 120),
                      margin=dict(t=50 if title else 20, b=40, l=10, r=10))
    return fig


def token_weight_bars(tokens: Sequence[str], per_token: Sequence[float], y_range: Sequence[float] | None = (0, 1),
                      title: str = "", reference: float | None = 0.5) -> go.Figure:
    """Channel-averaged W per token (share of the last layer)."""
    fig = _token_bars(tokens, per_token, PALETTE[0], "W %{y:.3f}", "mean W (last layer share)", y_range, title)
    if reference is not None:
        fig.add_hline(y=reference, line_dash="dot", line_color="gray")
    return fig


def _token_bars(tokens: Sequence[str], values: Sequence[float], colors, hover: str, y_title: str,
                y_range: Sequence[float] | None, title: str) -> go.Figure:
    """One bar per token (categorical x axis of unique "i:token" labels)."""
    fig = go.Figure(go.Bar(x=token_labels(tokens), y=list(map(float, values)), marker_color=colors,
                           hovertemplate="%{x}: " + hover + "<extra></extra>"))
    fig.update_layout(title=title or None, yaxis_title=y_title, xaxis_title="token",
                      margin=dict(t=50 if title else 20, b=40, l=50, r=10))
    fig.update_xaxes(type="category")
    if y_range:
        fig.update_yaxes(range=list(y_range))
    return fig


def layer_language_grid(grid: Mapping, label_of: Callable[[str], str] | None = None, zmin: float | None = None,
                        zmax: float | None = None, aggregation: str | None = None, title: str = "") -> go.Figure:
    """The layer × language grid of a sweep (results.json "grid": {"languages", "rows": [{"config",
    "aggregation", "fusion_layer", "values": {lang: v}}]}) as a heatmap, rows = configurations, with the best
    configuration per language marked ★. `aggregation` keeps only that aggregation's rows (and `last`)."""
    languages = list(grid.get("languages") or [])
    rows = [r for r in grid.get("rows", []) if aggregation is None or r.get("aggregation") in (aggregation, "last")]
    rows = sorted(rows, key=lambda r: (r.get("fusion_layer") is not None, r.get("fusion_layer") or 0,
                                       r.get("aggregation") or ""))
    label_of = label_of or (lambda lang: lang)
    y = [config_label(r) for r in rows]
    x = [label_of(lang) for lang in languages]
    z = [[r["values"].get(lang) for lang in languages] for r in rows]
    best: dict[int, int] = {}  # column -> row of the best value
    for j in range(len(languages)):
        column = [(row[j], i) for i, row in enumerate(z) if row[j] is not None]
        if column:
            best[j] = max(column)[1]
    text = [[("" if v is None else f"{v:.1f}" + (" ★" if best.get(j) == i else "")) for j, v in enumerate(row)]
            for i, row in enumerate(z)]
    fig = go.Figure(go.Heatmap(z=z, x=x, y=y, zmin=zmin, zmax=zmax, colorscale=VALUE_COLORSCALE, text=text,
                               texttemplate="%{text}", colorbar=dict(title="score"),
                               hovertemplate="%{y} · %{x}: %{z:.2f}<extra></extra>"))
    # the best cell of each column framed (an open marker keeps the value readable; hovering names it)
    fig.add_scatter(x=[x[j] for j in best], y=[y[i] for i in best.values()], mode="markers", name="best per language",
                    marker=dict(symbol="square-open", size=38, color="white", line=dict(color="white", width=3)),
                    hovertemplate="best for %{x}: %{y}<extra></extra>")
    fig.update_yaxes(type="category", title="configuration (fusion layer)")
    fig.update_xaxes(type="category", title="target language")
    fig.update_layout(title=title or None, height=max(280, 40 * len(rows) + 140), showlegend=False,
                      margin=dict(t=50 if title else 20, b=60, l=10, r=10))
    return fig


def config_label(row: Mapping) -> str:
    layer = row.get("fusion_layer")
    return f"{row.get('aggregation')} L{layer}" if layer is not None else str(row.get("aggregation") or row.get("config"))


def best_per_language(grid: Mapping) -> dict[str, dict]:
    """{language: {"config", "fusion_layer", "value"}} of the best grid row per language."""
    out = {}
    for lang in grid.get("languages", []):
        scored = [(r["values"].get(lang), r) for r in grid.get("rows", []) if r["values"].get(lang) is not None]
        if scored:
            value, row = max(scored, key=lambda vr: vr[0])
            out[lang] = {"config": config_label(row), "fusion_layer": row.get("fusion_layer"), "value": value}
    return out


def layer_curves(per_language: Mapping[str, Sequence[float]], label_of: Callable[[str], str] | None = None,
                 y_title: str = "", y_range: Sequence[float] | None = None, title: str = "") -> go.Figure:
    """One line per language over the layers (0 = embeddings), e.g. retrieval accuracy or CKA vs English."""
    label_of = label_of or (lambda lang: lang)
    fig = go.Figure()
    for i, (lang, values) in enumerate(per_language.items()):
        fig.add_scatter(x=list(range(len(values))), y=list(values), mode="lines+markers", name=label_of(lang),
                        line=dict(color=PALETTE[i % len(PALETTE)]))
    fig.update_layout(title=title or None, xaxis_title="layer (0 = embeddings)", yaxis_title=y_title,
                      margin=dict(t=50 if title else 20, b=40, l=50, r=10))
    fig.update_xaxes(dtick=1)
    if y_range:
        fig.update_yaxes(range=list(y_range))
    return fig


def fusion_by_language(stats: Mapping[str, Mapping], label_of: Callable[[str], str] | None = None,
                       title: str = "") -> go.Figure:
    """Stacked bars per language: mean W on the last layer and 1 − W on the fusion layer.
    stats: {language: {"mean_last", "mean_low", ...}} (results.json fusion_stats.languages)."""
    label_of = label_of or (lambda lang: lang)
    languages = list(stats)
    x = [label_of(lang) for lang in languages]
    fig = go.Figure()
    fig.add_bar(name="last layer (W)", x=x, y=[stats[lang].get("mean_last") for lang in languages],
                marker_color=PALETTE[0])
    fig.add_bar(name="fusion layer (1 − W)", x=x, y=[stats[lang].get("mean_low") for lang in languages],
                marker_color=PALETTE[1])
    fig.update_layout(barmode="stack", title=title or None, yaxis_title="mean weight", yaxis_range=[0, 1],
                      margin=dict(t=50 if title else 20, b=40, l=50, r=10))
    return fig


def fusion_by_position(stats: Mapping[str, Mapping], label_of: Callable[[str], str] | None = None,
                       y_range: Sequence[float] | None = None, title: str = "") -> go.Figure:
    """Mean W per token position, one line per language."""
    per = {lang: s.get("per_position") or [] for lang, s in stats.items()}
    fig = layer_curves(per, label_of, y_title="mean W (last layer share)", y_range=y_range, title=title)
    fig.update_xaxes(title="token position", dtick=None)
    return fig


def fusion_by_tag(stats: Mapping[str, Mapping], label_of: Callable[[str], str] | None = None,
                  y_range: Sequence[float] | None = None, title: str = "") -> go.Figure:
    """Mean W per gold tag (token tasks), one bar group per tag, one bar per language."""
    label_of = label_of or (lambda lang: lang)
    tags: list[str] = []
    for s in stats.values():
        tags += [t for t in (s.get("per_tag") or {}) if t not in tags]
    fig = go.Figure()
    for i, (lang, s) in enumerate(stats.items()):
        per_tag = s.get("per_tag") or {}
        fig.add_bar(name=label_of(lang), x=tags, y=[per_tag.get(t) for t in tags], marker_color=PALETTE[i % len(PALETTE)])
    fig.update_layout(barmode="group", title=title or None, yaxis_title="mean W (last layer share)",
                      xaxis_title="gold tag", margin=dict(t=50 if title else 20, b=40, l=50, r=10))
    if y_range:
        fig.update_yaxes(range=list(y_range))
    return fig


def attribution_bars(tokens: Sequence[str], scores: Sequence[float], y_range: Sequence[float] | None = None,
                     title: str = "") -> go.Figure:
    """Signed attribution per token (positive: towards the predicted label)."""
    colors = [PALETTE[0] if float(s) >= 0 else PALETTE[3] for s in scores]
    return _token_bars(tokens, scores, colors, "%{y:.3f}", "attribution", y_range, title)


# ----------------------------------------------------------------------------------------------------
# Per-example explorer, embedding projector, attention (issue 18)


def confusion_heatmap(matrix, title: str = "") -> go.Figure:
    """Counts of a confusion matrix (a DataFrame: gold rows × predicted columns), each row's share as colour so
    that rare labels stay readable; the count is written in each cell."""
    counts = matrix.to_numpy()
    totals = counts.sum(1, keepdims=True)
    shares = [[(c / t if t else 0.0) for c in row] for row, (t,) in zip(counts.tolist(), totals.tolist())]
    rows, columns = [str(v) for v in matrix.index], [str(v) for v in matrix.columns]
    fig = go.Figure(go.Heatmap(z=shares, x=columns, y=rows, zmin=0, zmax=1, colorscale="Blues", text=counts.tolist(),
                               texttemplate="%{text}", colorbar=dict(title="share of gold"),
                               hovertemplate="gold %{y} → predicted %{x}: %{text}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title="gold", type="category")
    fig.update_xaxes(title="predicted", type="category")
    fig.update_layout(title=title or None, height=max(320, 26 * len(rows) + 160),
                      margin=dict(t=50 if title else 20, b=40, l=10, r=10))
    return fig


def label_score_bars(scores, title: str = "") -> go.Figure:
    """Per-label F1 (points) as bars, worst first; `scores` has columns label, f1, support."""
    fig = go.Figure(go.Bar(x=list(scores["label"]), y=list(scores["f1"]), marker_color=PALETTE[3],
                           customdata=list(scores["support"]),
                           hovertemplate="%{x}: F1 %{y:.1f} (support %{customdata})<extra></extra>"))
    fig.update_xaxes(type="category", title="gold label")
    fig.update_yaxes(range=[0, 100], title="F1")
    fig.update_layout(title=title or None, margin=dict(t=50 if title else 20, b=40, l=50, r=10))
    return fig


def projector_scatter(points, color_by: str = "language", label_of: Callable[[str], str] | None = None,
                      x_range: Sequence[float] | None = None, y_range: Sequence[float] | None = None,
                      title: str = "") -> go.Figure:
    """2-D points (a DataFrame with x, y, language, group, text[, tag]) coloured by `color_by`, the members of
    each translation group (group ≥ 0) joined by grey lines. Pass the same ranges to figures shown side by side."""
    import html

    fig = go.Figure()
    linked = points[points["group"] >= 0]
    if len(linked):
        xs, ys = [], []
        for _, group in linked.groupby("group", sort=False):
            if len(group) > 1:
                xs += [*group["x"], None]
                ys += [*group["y"], None]
        fig.add_scatter(x=xs, y=ys, mode="lines", line=dict(color="rgba(120,120,120,0.35)", width=1),
                        name="translations", hoverinfo="skip")
    label_of = label_of or (lambda value: value)
    for index, (value, part) in enumerate(points.groupby(color_by, sort=False)):
        fig.add_scatter(x=list(part["x"]), y=list(part["y"]), mode="markers", name=label_of(str(value)),
                        marker=dict(size=7, color=PALETTE[index % len(PALETTE)], opacity=0.85),
                        text=[html.escape(t[:80]) for t in part["text"]],
                        hovertemplate="%{text}<extra>" + html.escape(label_of(str(value))) + "</extra>")
    fig.update_layout(title=title or None, height=520, legend=dict(itemsizing="constant"),
                      margin=dict(t=50 if title else 20, b=30, l=30, r=10))
    fig.update_xaxes(range=list(x_range) if x_range else None, zeroline=False)
    fig.update_yaxes(range=list(y_range) if y_range else None, zeroline=False)
    return fig


def layer_line(values: Sequence[float], current: int | None = None, y_title: str = "", title: str = "",
               names: Sequence[str] = ()) -> go.Figure:
    """One value per layer 0…L (one line per series when `values` is a list of lists), the current layer marked."""
    series = [values] if values and not isinstance(values[0], (list, tuple)) else list(values)
    fig = go.Figure()
    for index, line in enumerate(series):
        fig.add_scatter(x=list(range(len(line))), y=list(map(float, line)), mode="lines+markers",
                        name=names[index] if index < len(names) else f"series {index + 1}",
                        line=dict(color=PALETTE[index % len(PALETTE)]))
    if current is not None:
        fig.add_vline(x=current, line_dash="dot", line_color="gray")
    fig.update_layout(title=title or None, height=300, xaxis_title="layer", yaxis_title=y_title,
                      margin=dict(t=50 if title else 20, b=40, l=50, r=10))
    return fig


def attention_heatmap(tokens: Sequence[str], matrix, title: str = "") -> go.Figure:
    """T × T attention (rows: attending tokens, columns: attended tokens), 0…1 colour scale."""
    labels = token_labels(tokens)
    fig = go.Figure(go.Heatmap(z=[list(map(float, row)) for row in matrix], x=labels, y=labels, zmin=0, zmax=1,
                               colorscale="Blues", colorbar=dict(title="attention"),
                               hovertemplate="%{y} → %{x}: %{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category", title="attending token")
    fig.update_xaxes(type="category", title="attended token", tickangle=-60)
    size = max(360, 18 * len(tokens) + 160)
    fig.update_layout(title=title or None, height=size, margin=dict(t=50 if title else 20, b=40, l=10, r=10))
    return fig


def attention_lines(tokens: Sequence[str], matrix, threshold: float = 0.05, title: str = "") -> go.Figure:
    """bertviz-style view: tokens in two columns (attending left, attended right), a line per pair whose
    attention is at least `threshold`, darker and thicker as the attention grows."""
    import html

    n = len(tokens)
    fig = go.Figure()
    edges = [threshold, 0.2, 0.4, 0.6, 0.8, 1.01]  # lines binned by attention: one trace per bin, not per line
    for low, high in zip(edges, edges[1:]):
        xs, ys = [], []
        for i in range(n):
            for j in range(n):
                if low <= float(matrix[i][j]) < high:
                    xs += [0, 1, None]
                    ys += [i, j, None]
        if xs:
            strength = min(1.0, (low + min(high, 1.0)) / 2)
            fig.add_scatter(x=xs, y=ys, mode="lines", showlegend=False, hoverinfo="skip",
                            line=dict(color=f"rgba(76,120,168,{max(strength, 0.15):.2f})", width=1 + 3 * strength))
    names = [html.escape(str(t)) for t in tokens]
    for side in (0, 1):
        fig.add_scatter(x=[side] * n, y=list(range(n)), mode="markers+text", text=names, showlegend=False,
                        textposition=f"middle {'left' if side == 0 else 'right'}", marker=dict(size=5, color="#333"),
                        hovertemplate="%{text}<extra></extra>")
    fig.update_xaxes(visible=False, range=[-0.6, 1.6])
    fig.update_yaxes(visible=False, autorange="reversed")
    fig.update_layout(title=title or None, height=max(360, 20 * n + 80), margin=dict(t=50 if title else 20, b=10,
                                                                                    l=10, r=10))
    return fig


def entropy_heatmap(entropy, title: str = "") -> go.Figure:
    """L × H attention entropy (bits): layers as rows (1…L), heads as columns."""
    rows = [[float(v) for v in row] for row in entropy]
    fig = go.Figure(go.Heatmap(z=rows, x=[f"head {h}" for h in range(len(rows[0]))],
                               y=[f"layer {k}" for k in range(1, len(rows) + 1)], colorscale=VALUE_COLORSCALE,
                               colorbar=dict(title="bits"), texttemplate="%{z:.1f}",
                               hovertemplate="%{y}, %{x}: %{z:.2f} bits<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category")
    fig.update_layout(title=title or None, height=max(280, 26 * len(rows) + 120),
                      margin=dict(t=50 if title else 20, b=40, l=10, r=10))
    return fig


def retrieval_heatmap(rows: Sequence[str], languages: Sequence[str], values: Sequence[Sequence[float]],
                      chosen: str | None = None, label_of: Callable[[str], str] | None = None,
                      title: str = "") -> go.Figure:
    """A Tatoeba job's grid: retrieval accuracy in points (`values[i][j]`: row `rows[i]`, a layer such as "7" or
    "dlfa", language `languages[j]`) on a 0-100 scale, rows from the embeddings up; the row `chosen` (the job's
    metrics) is marked ◆ on its label."""
    label_of = label_of or (lambda lang: lang)
    y = [f"{row} ◆" if row == chosen else row for row in rows]
    text = [[f"{v:.1f}" for v in row] for row in values]
    fig = go.Figure(go.Heatmap(z=[list(row) for row in values], x=[label_of(lang) for lang in languages], y=y,
                               zmin=0, zmax=100, colorscale=VALUE_COLORSCALE, text=text, texttemplate="%{text}",
                               colorbar=dict(title="accuracy"),
                               hovertemplate="layer %{y} · %{x}: %{z:.1f}<extra></extra>"))
    fig.update_yaxes(type="category", title="layer (0 = embeddings)")
    fig.update_xaxes(type="category", title="language (paired with English)")
    fig.update_layout(title=title or None, height=max(280, 32 * len(rows) + 140),
                      margin=dict(t=50 if title else 20, b=60, l=10, r=10))
    return fig


def training_curves(rows: Sequence[Mapping], dev_metric: str = "score") -> go.Figure:
    """A job's training: the loss (left; one line per unit and stage, by step within the stage) and the English
    dev score (right; one line per unit, its best point starred). rows: dlfa.curves rows {"unit", "kind",
    "stage", "step", "value"}; one colour per unit in both panels."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss", f"English dev {dev_metric}"))
    units = list(dict.fromkeys(row["unit"] for row in rows))
    for index, unit in enumerate(units):
        color = PALETTE[index % len(PALETTE)]
        losses = [row for row in rows if row["unit"] == unit and row["kind"] == "loss"]
        stages = list(dict.fromkeys(row["stage"] for row in losses))
        for position, stage in enumerate(stages):
            points = [row for row in losses if row["stage"] == stage]
            mode = "lines+markers" if len(points) <= 20 else "lines"  # a short run's few points stay visible
            fig.add_scatter(x=[p["step"] for p in points], y=[p["value"] for p in points], mode=mode, row=1, col=1,
                            name=unit if len(stages) == 1 else f"{unit} · {stage}", legendgroup=unit,
                            line=dict(color=color, dash=("solid", "dot", "dash", "dashdot")[position % 4]))
        dev = [row for row in rows if row["unit"] == unit and row["kind"] == "dev"]
        if dev:
            fig.add_scatter(x=[p["step"] for p in dev], y=[p["value"] for p in dev], mode="lines+markers", row=1,
                            col=2, name=f"{unit} dev", legendgroup=unit, line=dict(color=color))
            best = max(dev, key=lambda p: p["value"])
            fig.add_scatter(x=[best["step"]], y=[best["value"]], mode="markers", row=1, col=2, showlegend=False,
                            legendgroup=unit, marker=dict(symbol="star", size=13, color=color),
                            hovertemplate=f"{unit}: best dev %{{y:.2f}} at step %{{x}}<extra></extra>")
    fig.update_xaxes(title_text="step")
    fig.update_layout(height=320, margin=dict(t=40, b=40, l=50, r=10))
    return fig
