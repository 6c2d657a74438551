"""bench/mbert_shaped.py: the WordPiece vocabulary made from SentencePiece pieces for the GPU check's encoder of
mBERT-base's shape (word-start pieces keep their text, the rest get '##', single characters get both)."""
import importlib.util
import json
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("mbert_shaped", Path(__file__).parents[1] / "bench" / "mbert_shaped.py")
mbert_shaped = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mbert_shaped)


def sentencepiece_file(tmp_path: Path, pieces: list[tuple[str, float]]) -> Path:
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps({"model": {"type": "Unigram", "vocab": [list(piece) for piece in pieces]}}))
    return path


def test_pieces_become_wordpieces_best_scored_first(tmp_path):
    path = sentencepiece_file(tmp_path, [("<s>", 0.0), ("▁", -1.0), ("ing", -3.0), ("▁the", -2.0), (".", -2.5),
                                         ("▁walk", -4.0), ("<unk>", 0.0)])
    assert mbert_shaped.wordpiece_vocabulary(path, 10) == [
        *mbert_shaped.SPECIAL, "the", ".", "##.", "##ing", "walk"]
    assert mbert_shaped.wordpiece_vocabulary(path, 7) == [*mbert_shaped.SPECIAL, "the", "."]


def test_too_few_pieces_for_the_size_is_an_error(tmp_path):
    path = sentencepiece_file(tmp_path, [("▁a", -1.0)])
    with pytest.raises(ValueError, match="too few pieces"):
        mbert_shaped.wordpiece_vocabulary(path, 10)
