"""Probing: the hidden-state cache equals the encoder's output, is written once, and a probe sweep trains
only the aggregation and the head."""
import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

from dlfa.engine import probe
from dlfa.model.encoders import load_tokenizer
from dlfa.engine.spec import JobSpec
from dlfa.model.modeling import WEIGHTS_FILE, DlfaConfig, DlfaModel, HeadConfig
from dlfa.engine.probe import (FeatureNet, HiddenStateDataset, fit_standardization, hidden_state_dataset,
                        write_hidden_states)
from dlfa.data.base import Example, TaskInfo, encode_examples
from dlfa.engine.datasets import EncodedDataset
from dlfa.engine.job import run_job
from dlfa.engine.runtime import Runtime

POS = TaskInfo("udpos", "token", ("NOUN", "VERB", "PUNCT"), "accuracy")
CPU = Runtime(torch.device("cpu"), None)


@pytest.fixture(autouse=True)
def features_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setattr(probe, "features_dir", lambda: tmp_path / "features")


@pytest.fixture(scope="module")
def tiny(tiny_encoder):
    tokenizer = load_tokenizer(tiny_encoder)
    words = ["Der Hund schläft .", "我 喜欢 北京 。", "A much longer sentence with many words in it ."] * 3
    examples = [Example(words=tuple(w.split()), tags=("NOUN",) * len(w.split())) for w in words]
    encoded = EncodedDataset(encode_examples(examples, POS, tokenizer, 64, "en", "train"), tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = DlfaModel.from_encoder_spec(DlfaConfig(tiny_encoder, {"udpos": HeadConfig("token", list(POS.labels))},
                                                   "dlfa", fusion_layer=1)).eval()
    return model, encoded


def test_cached_hidden_states_equal_the_encoder_output(tiny, tmp_path, monkeypatch):
    model, encoded = tiny
    monkeypatch.setattr(probe, "SHARD_EXAMPLES", 4)  # several shards
    directory = write_hidden_states(model, encoded, tmp_path / "h", torch.device("cpu"), None, {})
    assert len(json.loads((directory / "meta.json").read_text())["shards"]) == 3
    dataset = HiddenStateDataset(encoded, directory, list(range(model.num_layers + 1)))
    indices = np.array([7, 2, 0])
    batch = encoded.collate(indices)
    with torch.inference_mode():
        expected = model.encode(batch["input_ids"], batch["attention_mask"])
        cached = dataset.collate(indices)
        mask = batch["attention_mask"].bool()
        for layer, states in enumerate(expected):
            assert torch.allclose(cached["hidden_states"][layer][mask], states[mask], atol=2e-3, rtol=2e-3), layer
        direct = model(**batch).logits
        probed = FeatureNet(model)(**cached).logits
    assert torch.allclose(probed[mask], direct[mask], atol=1e-2)


def test_probe_standardizes_features_with_the_training_statistics_and_saves_them(tiny, tiny_encoder, tmp_path):
    trained, encoded = tiny
    config = DlfaConfig(**{**trained.config.to_dict(), "heads": trained.config.heads, "standardize_features": True})
    model = DlfaModel(config, trained.encoder).eval()
    directory = write_hidden_states(model, encoded, tmp_path / "h", torch.device("cpu"), None, {})
    dataset = HiddenStateDataset(encoded, directory, [1, model.num_layers])
    fit_standardization(model, [dataset])
    for layer in (1, model.num_layers):
        standardized = (dataset.layers[layer].float() - model.feature_mean[layer]) / model.feature_std[layer]
        assert torch.allclose(standardized.mean(0), torch.zeros(()), atol=1e-4)
        assert torch.allclose(standardized.std(0), torch.ones(()), atol=1e-3)
    assert model.feature_std[0].eq(1).all()  # a layer the probe does not read stays as it is
    indices = np.arange(len(encoded))
    batch = encoded.collate(indices)
    mask = batch["attention_mask"].bool()
    reloaded = DlfaModel.from_pretrained(model.save_pretrained(tmp_path / "model"), trained.encoder).eval()
    with torch.inference_mode():  # the saved probe standardizes the encoder's own output the same way
        probed = FeatureNet(model)(**dataset.collate(indices)).logits
        direct = reloaded(**batch).logits
    assert torch.allclose(probed[mask], direct[mask], atol=1e-2)


def test_cache_is_written_once_per_split_and_keyed_by_its_settings(tiny, tiny_encoder):
    model, encoded = tiny
    spec = JobSpec(task="udpos", eval_languages=("de",), encoder=tiny_encoder, fusion_layers=(1,), probe=True)
    first = hidden_state_dataset(model, encoded, spec, CPU)
    (cache,) = [p for p in probe.features_dir().iterdir() if not p.name.startswith(".")]
    stamp = (cache / "meta.json").stat().st_mtime_ns
    hidden_state_dataset(model, encoded, JobSpec(**{**spec.to_dict(), "fusion_layers": (2,)}), CPU)
    assert (cache / "meta.json").stat().st_mtime_ns == stamp  # another layer: the same cache
    assert [i for i, layer in enumerate(first.layers) if layer is not None] == [1, model.num_layers]
    hidden_state_dataset(model, encoded, JobSpec(**{**spec.to_dict(), "max_length": 32}), CPU)
    assert len([p for p in probe.features_dir().iterdir() if not p.name.startswith(".")]) == 2


@pytest.mark.integration
def test_probe_sweep_trains_only_aggregation_and_head(tiny_encoder, fixture_root, tmp_path):
    spec = JobSpec(task="udpos", eval_languages=("de", "zh"), encoder=tiny_encoder, data_root=str(fixture_root),
                   aggregations=("dlfa", "last"), fusion_layers=(0, 2), probe=True, max_train_examples=48,
                   max_eval_examples=16, batch_size=8, max_steps=6, bootstrap_samples=20)
    results = run_job(spec, tmp_path / "job")
    assert [row["config"] for row in results["grid"]["rows"]] == ["dlfa-L0", "dlfa-L2", "last"]
    caches = sorted(p.name.rsplit("-", 1)[0] for p in probe.features_dir().iterdir() if not p.name.startswith("."))
    assert caches == ["udpos-de-test", "udpos-en-dev", "udpos-en-train", "udpos-zh-test"]  # once per split
    with safe_open(str(tmp_path / "job" / "dlfa-L2-s1" / "model" / WEIGHTS_FILE), "pt") as saved:
        assert saved.keys() and not [k for k in saved.keys() if k.startswith("encoder.")]  # the encoder is untouched
    assert results["runs"][0]["fusion_stats"]["languages"]["de"]["tokens"] > 0
    saved = DlfaModel.from_pretrained(tmp_path / "job" / "last-s1" / "model")
    assert saved.config.standardize_features and not saved.feature_std[saved.num_layers].eq(1).all()
