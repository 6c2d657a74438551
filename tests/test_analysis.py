"""Layer analysis: the measures' defining properties, shapes on a tiny encoder, the real effect on e5-small, and
the command line on a fine-tuned run."""
import json

import pytest
import torch

from dlfa.analysis.layers import (
    LayerAnalysis,
    available_parallel_languages,
    layer_analysis,
    linear_cka,
    mean_pooled_states,
    parallel_pairs,
    retrieval_accuracy,
)
from dlfa.model.encoders import load_encoder
from dlfa.errors import DataError


def test_linear_cka_identity_orthogonal_and_scale_invariance():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(50, 16, generator=generator)
    rotation, _ = torch.linalg.qr(torch.randn(16, 16, generator=generator))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 3.5 * x @ rotation) == pytest.approx(1.0)
    assert linear_cka(x, x + 7.0) == pytest.approx(1.0)  # centering removes shifts
    assert linear_cka(x, torch.randn(50, 16, generator=generator)) < 0.6


def test_linear_cka_matches_hand_computation():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])  # already centered
    y = torch.tensor([[1.0], [0.0], [-1.0]])
    # YᵀX = [2, 1] -> 5; XᵀX = [[2, 1], [1, 2]] -> ‖·‖_F = √10; YᵀY = [2] -> 2
    assert linear_cka(x, y) == pytest.approx(5 / (2 * 10**0.5))


def test_retrieval_identical_and_shuffled():
    x = torch.randn(20, 8, generator=torch.Generator().manual_seed(1))
    assert retrieval_accuracy(x, x) == 1.0
    assert retrieval_accuracy(x, x.roll(1, dims=0)) == 0.0


def test_tiny_encoder_shapes_and_round_trip(tiny_encoder):
    loaded = load_encoder(tiny_encoder)
    pairs = {
        "de": [("The cat sleeps.", "Die Katze schläft."), ("I like tea.", "Ich mag Tee."), ("Hello.", "Hallo."),
               ("Hello.", "Hallo!")],  # a repeated English side is dropped
        "xx": [(f"sentence {i}", f"sentence {i}") for i in range(5)],
    }
    result = layer_analysis(tiny_encoder, pairs, max_pairs=4, batch_size=2, loaded=loaded)
    assert result.num_layers == 4 and result.languages == ["de", "xx"]
    assert result.n_pairs == {"de": 3, "xx": 4}
    for language in result.languages:
        assert len(result.retrieval[language]) == len(result.cka[language]) == 5
        assert all(0 <= v <= 1 for v in result.retrieval[language])
        assert all(-1e-9 <= v <= 1 + 1e-9 for v in result.cka[language])
    assert result.retrieval["xx"] == [1.0] * 5 and result.cka["xx"] == pytest.approx([1.0] * 5)
    assert LayerAnalysis.from_dict(result.to_dict()) == result
    # batching (sorted by length) does not change the embeddings
    texts = [en for en, _ in pairs["de"]]
    one_by_one = torch.cat([mean_pooled_states(loaded.model, loaded.tokenizer, [t]) for t in texts], dim=1)
    assert torch.allclose(mean_pooled_states(loaded.model, loaded.tokenizer, texts, batch_size=3), one_by_one,
                          atol=1e-5)


def test_too_few_pairs_is_refused_before_loading():
    with pytest.raises(DataError, match="at least 2"):
        layer_analysis("no/such/encoder", {"de": [("a", "b"), ("a", "c")]})


@pytest.mark.slow
def test_e5_separates_translations_with_depth(data_root):
    """Translation pairs separate from unrelated ones with depth, so retrieval improves."""
    assert "de" in available_parallel_languages(data_root)
    pairs = parallel_pairs(data_root, ["de"], max_pairs=100)
    assert len(pairs["de"]) == 100
    result = layer_analysis("embedded:e5-small", pairs, max_pairs=100)
    assert result.num_layers == 12
    retrieval = result.retrieval["de"]
    assert retrieval[-1] > retrieval[0] and retrieval[-1] > 0.8, retrieval


@pytest.mark.integration
def test_cli_analyses_a_fine_tuned_run_and_refuses_bad_input(tiny_encoder, fixture_root, tmp_path, capsys):
    from dlfa.cli.main import main
    from dlfa.engine.spec import JobSpec
    from dlfa.engine.job import run_job

    spec = JobSpec(task="udpos", eval_languages=("de",), encoder=tiny_encoder, data_root=str(fixture_root),
                   aggregations=("last",), max_steps=5, max_train_examples=64, max_eval_examples=16, batch_size=8,
                   learning_rate=1e-3, bootstrap_samples=20)
    run_job(spec, tmp_path / "job")
    common = ["--langs", "de,fr", "--pairs", "20", "--data-root", str(fixture_root)]

    def layers(*argv) -> tuple[int, str, str]:
        code = main(["layers", *argv])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = layers("--run", str(tmp_path / "job" / "last-s1"), *common, "--json")
    tuned = LayerAnalysis.from_dict(json.loads(out))
    assert code == 0 and tuned.languages == ["de", "fr"] and tuned.n_pairs == {"de": 20, "fr": 20}
    code, out, _ = layers("--encoder", tiny_encoder, *common, "--json")
    base = LayerAnalysis.from_dict(json.loads(out))
    assert base.cka["de"][-1] != tuned.cka["de"][-1]  # the fine-tuned weights were analysed, not the base ones
    code, out, _ = layers("--encoder", tiny_encoder, *common)
    assert code == 0 and out.splitlines()[1] == "layer  retrieval  CKA" and len(out.splitlines()) == 2 + 5

    code, _, err = layers("--encoder", tiny_encoder, "--langs", "de,xx", "--data-root", str(fixture_root))
    assert code == 2 and "no text parallel to English for xx" in err
    code, _, err = layers("--run", str(tmp_path / "job"), "--langs", "de", "--data-root", str(fixture_root))
    assert code == 2 and "neither a run folder with a saved model nor a model folder" in err
