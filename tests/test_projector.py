"""dlfa.analysis.projector: parallel sentences of the three sources, states per layer (cached), 2-D projections."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dlfa.analysis import projector
from dlfa.errors import ConfigError, DataError
from dlfa.data.registry import DataSource


@pytest.fixture(scope="module")
def source(fixture_root):
    return DataSource.resolve(fixture_root)


@pytest.mark.parametrize("name", list(projector.SOURCES))
def test_parallel_sentences_group_english_with_its_translations(name, source):
    assert {"de", "fr", "zh"} <= set(projector.available_languages(name, source))
    items = projector.parallel_sentences(name, source, ["de", "zh"], 12)
    groups = np.array(items.groups)
    languages = np.array(items.languages)
    per_group = 2 if name == "tatoeba" else 3  # Tatoeba pairs each language with its own English sentences
    assert len(set(groups)) == (24 if name == "tatoeba" else 12) and len(items.texts) == len(set(groups)) * per_group
    for group in set(groups):
        members = languages[groups == group]
        assert members[0] == "en" and len(members) == per_group  # English first, then its translations
    assert len(set(items.texts)) > len(items.texts) * 0.9  # real sentences, not a repeated placeholder


def test_tatoeba_lines_translate_each_other(source):
    items = projector.parallel_sentences("tatoeba", source, ["de"], 3)
    folder = source.root / "retrieval" / "tatoeba"
    english = (folder / "tatoeba.deu-eng.eng").read_text().splitlines()[:3]
    german = (folder / "tatoeba.deu-eng.deu").read_text().splitlines()[:3]
    assert items.texts == [t for pair in zip(english, german) for t in pair]


def test_unknown_source_and_empty_choice_are_refused(source):
    with pytest.raises(ConfigError, match="unknown sentence source"):
        projector.parallel_sentences("wiki", source, ["de"], 3)
    with pytest.raises(ConfigError, match="at least one language"):
        projector.parallel_sentences("xnli", source, [], 3)


def test_pca_projection_keeps_its_side_across_calls_and_needs_three_points():
    rng = np.random.default_rng(0)
    states = torch.from_numpy(rng.normal(size=(40, 16)))
    coordinates = projector.project(states)
    assert coordinates.shape == (40, 2) and (coordinates[0] >= 0).all()
    assert np.allclose(projector.project(-states), coordinates)  # a flipped space gives the same picture
    variance = np.var(coordinates, axis=0)
    assert variance[0] >= variance[1]  # first axis: the direction of most variance
    with pytest.raises(DataError, match="at least 3 points"):
        projector.project(states[:2])
    with pytest.raises(ConfigError, match="not available"):
        projector.project(states, "isomap")


def test_states_per_layer_are_cached_and_words_keep_their_tags(tiny_encoder, source, tmp_path):
    from dlfa.model.encoders import load_encoder

    loaded = load_encoder(tiny_encoder)
    items = projector.parallel_sentences("parallel-ud", source, ["de"], 5)
    states = projector.layer_states(loaded, "tiny", items, tmp_path)
    assert states.shape == (5, 10, 32) and len(list(tmp_path.glob("*.safetensors"))) == 1
    assert torch.equal(projector.layer_states(None, "tiny", items, tmp_path), states)  # read back, no model needed
    sentences = projector.tagged_sentences(source, ["en", "de"], 3)
    words = projector.word_items(loaded.tokenizer, sentences)
    word_states = projector.layer_states(loaded, "tiny", sentences, tmp_path)
    assert word_states.shape == (5, len(words.texts), 32)
    assert words.tags[: len(sentences[0][2])] == list(sentences[0][2])
    assert projector.translation_distance(states[2], items) > 0
