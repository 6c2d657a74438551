"""The Launch page's pooling choice, early stopping and compiling (streamlit.testing.v1.AppTest, the real data
pack)."""
from pathlib import Path
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

from dlfa.testing import link_built

REPO = Path(__file__).resolve().parents[1]
CONSTANT_WARNING = "cls pooling with fusion layer 0 fuses a constant"


@pytest.fixture
def launch_page(tmp_path, monkeypatch, fixture_root) -> AppTest:
    monkeypatch.setenv("DLFA_CACHE_DIR", str(link_built(tmp_path / "cache")))
    monkeypatch.setenv("DLFA_DATA_DIR", str(fixture_root))
    at = AppTest.from_file(str(REPO / "pages" / "launch.py"), default_timeout=60)
    at.session_state["launch_task"] = "xnli"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def warnings(at: AppTest) -> list[str]:
    return [w.value for w in at.warning]


def test_cls_pooling_with_fusion_layer_0_is_warned_about_and_mean_pooling_is_not(launch_page):
    at = launch_page
    assert at.radio(key="launch_pooling").value == "cls" and not any(CONSTANT_WARNING in w for w in warnings(at))
    at.text_input(key="launch_fusion_layers").input("0,6").run()
    assert any(CONSTANT_WARNING in w and "mean pooling" in w for w in warnings(at)), warnings(at)
    at.radio(key="launch_pooling").set_value("mean").run()
    assert not any(CONSTANT_WARNING in w for w in warnings(at))
    at.multiselect(key="launch_aggregations").set_value(["last"]).run()  # nothing fused: nothing to warn about
    at.radio(key="launch_pooling").set_value("cls").run()
    assert not any(CONSTANT_WARNING in w for w in warnings(at))


def test_the_form_submits_pooling_early_stopping_and_compiling_in_the_spec(launch_page, monkeypatch):
    from dlfa.app import background

    submitted = []
    monkeypatch.setattr(background, "submit", lambda spec: submitted.append(spec) or SimpleNamespace(id="job-1"))
    at = launch_page
    at.radio(key="launch_pooling").set_value("mean").run()
    at.number_input(key="launch_patience").set_value(2).run()
    at.number_input(key="launch_epochs").set_value(5.0).run()
    assert at.checkbox(key="launch_compile_model").label == "Compile the encoder (torch.compile; meant for GPUs)"
    at.button(key="launch_submit").click().run()
    at.checkbox(key="launch_compile_model").check().run()
    at.button(key="launch_submit").click().run()
    assert [s.value for s in at.success] == ["Submitted job `job-1`."], [e.value for e in at.error]
    first, second = submitted
    assert (first.task, first.pooling, first.patience, first.max_epochs) == ("xnli", "mean", 2, 5.0)
    assert (first.compile_model, second.compile_model) == (False, True)


def test_the_pooling_choice_is_not_offered_for_token_tasks(launch_page):
    at = launch_page
    at.selectbox(key="launch_task").set_value("udpos").run()
    assert not [r for r in at.radio if r.key == "launch_pooling"]
