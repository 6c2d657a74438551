"""The app's figure builders (dlfa.charts): plain data in, plotly figures out, no Streamlit."""
import json

import pytest

from dlfa import charts
from dlfa.curves import run_history_rows

FAMILIES = {"en": "Germanic", "de": "Germanic", "nl": "Germanic", "es": "Romance", "fr": "Romance", "zh": "Sino-Tibetan"}
METRICS = {
    "de": {"metric": "accuracy", "value": 80.0, "ci_low": 77.5, "ci_high": 82.0, "n": 300},
    "zh": {"metric": "accuracy", "value": 60.0, "ci_low": 56.0, "ci_high": 63.0, "n": 300},
    "es": {"metric": "accuracy", "value": 79.0, "ci_low": 76.0, "ci_high": 81.0, "n": 300},
    "nl": {"metric": "accuracy", "value": 81.0, "ci_low": None, "ci_high": None, "n": 300},
}


def test_language_bars_groups_by_family_with_asymmetric_ci_error_bars():
    fig = charts.language_bars({"run A": METRICS, "run B": {"de": METRICS["de"]}}, family_of=FAMILIES.get,
                               label_of=str.upper, metric="accuracy", y_range=[0, 100])
    assert len(fig.data) == 2
    a = fig.data[0]
    families, languages = a.x
    assert list(languages) == ["DE", "NL", "ES", "ZH"]  # families together, in a stable order
    assert list(families) == ["Germanic", "Germanic", "Romance", "Sino-Tibetan"]
    assert a.error_y.array[0] == pytest.approx(2.0) and a.error_y.arrayminus[0] == pytest.approx(2.5)
    assert a.error_y.array[1] is None  # no CI: no error bar, no crash
    b = fig.data[1]
    assert list(b.y) == [80.0, None, None, None]  # missing languages leave gaps, bars stay aligned
    assert list(fig.layout.yaxis.range) == [0, 100]
    json.loads(fig.to_json())  # serialisable (what st.plotly_chart sends)


def test_language_bars_without_families_uses_flat_axis():
    fig = charts.language_bars({"r": METRICS})
    assert list(fig.data[0].x) == ["de", "zh", "es", "nl"]


def test_shared_range_covers_all_series_and_clips():
    assert charts.shared_range([1, 2], [3, None, float("nan")], pad=0) == [1, 3]
    low, high = charts.shared_range([50, 90], pad=0.1, ceiling=92)
    assert low == pytest.approx(46) and high == 92
    assert charts.shared_range([], [None]) is None
    assert charts.shared_range([5], pad=0.1) == pytest.approx([4.5, 5.5])


def test_fusion_heatmap_has_fixed_scale_and_unique_token_rows():
    tokens = ["<s>", "▁the", "▁the", "</s>"]
    weights = [[0.1, 0.9], [0.5, 0.5], [0.4, 0.6], [0.2, 0.3]]
    fig = charts.fusion_heatmap(tokens, weights)
    heat = fig.data[0]
    assert heat.type == "heatmap" and heat.zmin == 0 and heat.zmax == 1
    assert len(set(heat.y)) == 4  # repeated tokens stay separate rows
    assert heat.y[0] == "0:&lt;s&gt;"  # not swallowed as HTML markup
    bars = charts.token_weight_bars(tokens, [0.5, 0.5, 0.5, 0.25], y_range=[0, 1])
    assert list(bars.layout.yaxis.range) == [0, 1]


GRID = {"languages": ["de", "zh"], "rows": [
    {"config": "last", "aggregation": "last", "fusion_layer": None, "values": {"de": 70.0, "zh": 50.0}},
    {"config": "dlfa-L6", "aggregation": "dlfa", "fusion_layer": 6, "values": {"de": 75.0, "zh": 49.0}},
    {"config": "dlfa-L3", "aggregation": "dlfa", "fusion_layer": 3, "values": {"de": 72.0, "zh": 55.0}},
]}


def test_layer_language_grid_marks_the_best_configuration_per_language():
    fig = charts.layer_language_grid(GRID, zmin=0, zmax=100)
    heat, stars = fig.data
    assert list(heat.y) == ["last", "dlfa L3", "dlfa L6"]  # baseline first, then by layer
    assert heat.zmin == 0 and heat.zmax == 100
    assert dict(zip(stars.x, stars.y)) == {"de": "dlfa L6", "zh": "dlfa L3"}
    assert heat.text[2][0] == "75.0 ★" and heat.text[0][0] == "70.0"
    assert charts.best_per_language(GRID)["zh"]["fusion_layer"] == 3


def test_fusion_statistics_figures():
    stats = {"de": {"mean_last": 0.6, "mean_low": 0.4, "per_position": [0.5, 0.7], "per_tag": {"NOUN": 0.7}},
             "zh": {"mean_last": 0.3, "mean_low": 0.7, "per_position": [0.2], "per_tag": {"VERB": 0.2}}}
    by_language = charts.fusion_by_language(stats)
    assert by_language.layout.barmode == "stack" and list(by_language.data[1].y) == [0.4, 0.7]
    by_position = charts.fusion_by_position(stats)
    assert [len(t.y) for t in by_position.data] == [2, 1]
    by_tag = charts.fusion_by_tag(stats)
    assert list(by_tag.data[0].x) == ["NOUN", "VERB"] and list(by_tag.data[0].y) == [0.7, None]


def test_layer_curves_and_attribution_bars():
    fig = charts.layer_curves({"de": [0.1, 0.5, 0.9], "zh": [0.0, 0.2, 0.6]}, y_range=[0, 1])
    assert [t.name for t in fig.data] == ["de", "zh"] and list(fig.data[0].x) == [0, 1, 2]
    bars = charts.attribution_bars(["a", "b"], [0.5, -0.2])
    assert bars.data[0].marker.color[0] != bars.data[0].marker.color[1]


def test_training_curves_draw_each_units_loss_per_stage_and_its_dev_with_the_best_point_starred():
    rows = [*run_history_rows("last-s1", {"loss": [["sst2", 10, 0.9], ["udpos", 10, 2.0], ["udpos", 20, 1.5]],
                                          "dev": [[10, 50.0], [20, 61.0]]}),
            *run_history_rows("dlfa-L2-s1", {"loss": [["udpos", 10, 2.5]], "dev": [[10, 55.0], [20, 52.0]]})]
    fig = charts.training_curves(rows, dev_metric="accuracy")
    traces = {trace.name: trace for trace in fig.data if trace.name}
    assert set(traces) == {"last-s1 · sst2", "last-s1 · udpos", "last-s1 dev", "dlfa-L2-s1", "dlfa-L2-s1 dev"}
    assert list(traces["last-s1 · udpos"].y) == [2.0, 1.5] and traces["last-s1 · udpos"].xaxis == "x"
    assert traces["dlfa-L2-s1"].mode == "lines+markers"  # one point: a line alone would not show it
    assert list(traces["dlfa-L2-s1 dev"].y) == [55.0, 52.0] and traces["dlfa-L2-s1 dev"].xaxis == "x2"
    stars = [(tuple(t.x), tuple(t.y)) for t in fig.data if t.marker.symbol == "star"]
    assert stars == [((20,), (61.0,)), ((10,), (55.0,))]  # each unit's best dev
    assert traces["last-s1 dev"].line.color == traces["last-s1 · udpos"].line.color != traces["dlfa-L2-s1"].line.color
    assert fig.layout.annotations[1].text == "English dev accuracy"
