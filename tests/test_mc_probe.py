"""Multiple-choice tasks in probe mode: every (example, choice) sequence is cached once, and the cached-feature
front end scores the choices as the full model does on its B × C × T batch."""
import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

from dlfa.data.base import EncodedSplit
from dlfa.engine import probe
from dlfa.engine.datasets import MultipleChoiceDataset
from dlfa.engine.job import run_job
from dlfa.engine.probe import (FeatureNet, HiddenStateDataset, MultipleChoiceHiddenStates, fit_standardization,
                               write_hidden_states)
from dlfa.engine.spec import JobSpec
from dlfa.model.modeling import WEIGHTS_FILE, DlfaConfig, DlfaModel, HeadConfig
from tests.test_model import tiny_bert


@pytest.fixture(autouse=True)
def features_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setattr(probe, "features_dir", lambda: tmp_path / "features")


def three_choice_questions() -> MultipleChoiceDataset:
    """Five made-up questions of three choices each, token ids of different lengths (so batches are padded)."""
    rng = np.random.default_rng(0)
    features = [{"input_ids": [[0, *rng.integers(5, 99, size=length), 2] for length in lengths], "labels": label}
                for lengths, label in [((3, 9, 4), 0), ((5, 5, 5), 0), ((12, 2, 6), 0), ((4, 7, 3), 1), ((6, 3, 8), 2)]]
    return MultipleChoiceDataset(EncodedSplit("mc3", "en", "train", features), pad_token_id=1)


def test_cached_choices_score_like_the_full_model(tmp_path):
    questions = three_choice_questions()
    torch.manual_seed(0)
    config = DlfaConfig("unused", {"mc3": HeadConfig("multiple_choice", ["A", "B", "C"])}, "dlfa", fusion_layer=1,
                        pooling="mean", standardize_features=True)
    model = DlfaModel(config, tiny_bert()).eval()
    folder = write_hidden_states(model, questions.sequences, tmp_path / "h", torch.device("cpu"), None, {})
    assert json.loads((folder / "meta.json").read_text())["examples"] == 15  # one cached sequence per choice
    cached = MultipleChoiceHiddenStates(questions, HiddenStateDataset(questions.sequences, folder, [1, 4]))
    assert len(cached) == 5 and cached.lengths.tolist() == [11, 7, 14, 9, 10]  # each question's longest choice
    fit_standardization(model, [cached])
    indices = np.array([2, 0, 4])
    batch = questions.collate(indices)  # B × C × T token ids
    features = cached.collate(indices)  # (B·C) × T × E hidden states
    width = batch["input_ids"].shape[2]
    assert features["attention_mask"].shape == (9, width) and features["labels"].tolist() == [0, 0, 2]
    assert features["hidden_states"][0] is None and features["hidden_states"][1].shape == (9, width, 32)
    with torch.inference_mode():
        direct = model(**batch)
        probed = FeatureNet(model)(**features)
    assert probed.logits.shape == direct.logits.shape == (3, 3)
    assert torch.allclose(probed.logits, direct.logits, atol=1e-2)  # fp16 cache: close, not equal
    assert torch.isclose(probed.loss, direct.loss, atol=1e-2)


@pytest.mark.integration
def test_a_multiple_choice_probe_trains_only_aggregation_and_head(tiny_encoder, fixture_root, tmp_path):
    spec = JobSpec(task="xcopa", eval_languages=("et", "tr"), encoder=tiny_encoder, data_root=str(fixture_root),
                   fusion_layers=(2,), probe=True, max_train_examples=24, max_eval_examples=20, batch_size=8,
                   max_steps=40, bootstrap_samples=50, pooling="mean")
    results = run_job(spec, tmp_path / "job")
    unit = json.loads((tmp_path / "job" / "dlfa-L2-s1" / "results.json").read_text())
    assert results["status"] == "completed" and set(unit["metrics"]) == {"et", "tr"}
    assert all(m["metric"] == "accuracy" and m["n"] == 20 for m in unit["metrics"].values())
    caches = {p.name.rsplit("-", 1)[0]: json.loads((p / "meta.json").read_text())["examples"]
              for p in probe.features_dir().iterdir() if not p.name.startswith(".")}
    assert caches == {"xcopa-en-train": 24 * 2, "xcopa-en-dev": 3 * 2, "xcopa-et-test": 20 * 2,
                      "xcopa-tr-test": 20 * 2}  # every split once, one sequence per (item, choice)
    losses = [loss for _, _, loss in unit["history"]["loss"]]
    assert losses[-1] < losses[0], losses  # the head learns on the cached features
    with safe_open(str(tmp_path / "job" / "dlfa-L2-s1" / "model" / WEIGHTS_FILE), "pt") as saved:
        assert saved.keys() and not [k for k in saved.keys() if k.startswith("encoder.")]  # the encoder is frozen
