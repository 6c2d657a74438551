"""Tatoeba retrieval: both directions on hand-made cases with a known answer, the layer × language grid on a tiny
encoder, LASER's files and the hub's rows read alike, LASER ↔ project codes, one-line errors, the command line
(also on a fine-tuned run), and e5-small on the real data."""
import json
import re
from pathlib import Path

import pytest
import torch

from dlfa.code_version import code_version
from dlfa.model.encoders import load_encoder
from dlfa.errors import ConfigError, DataError
from dlfa.languages import LANGUAGE_NAMES, TATOEBA_LASER_CODES
from dlfa.analysis.retrieval import TatoebaResult, check_layers, layer_scores, parse_layers, tatoeba_retrieval
from dlfa.data.tatoeba import TatoebaPairs, available_tatoeba_languages, read_tatoeba, tatoeba_language
from dlfa.data.registry import DataSource

FIXTURES = Path(__file__).parent / "fixtures"
LASER_FILES = FIXTURES / "tatoeba"
HUB_FILES = FIXTURES / "tatoeba_hub"


def hub_source(tmp_path) -> DataSource:
    """The hub code path on local JSON lines with google/xtreme's tatoeba columns."""
    from datasets import load_dataset

    def loader(config, split):
        path = HUB_FILES / f"{config}.{split}.jsonl"
        if not path.is_file():
            raise FileNotFoundError(f"no {config} {split}")
        return load_dataset("json", data_files={split: str(path)}, split=split, cache_dir=str(tmp_path / "hf"))

    return DataSource.hub(loader)


# ----------------------------------------------------------------------------------------------------
# Directions and chance on hand-made embeddings


def test_directions_are_scored_separately_on_a_hand_made_case():
    english = torch.eye(3)
    other = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.2, 0.0], [0.0, 0.0, 1.0]])
    # other[1]'s nearest English sentence is english[0] (a miss); english[1]'s nearest other sentence is other[1]
    scores = layer_scores(other, english, bootstrap_samples=0)
    assert scores.xx_to_en.value == pytest.approx(200 / 3)
    assert scores.en_to_xx.value == pytest.approx(100.0)
    assert scores.average.value == pytest.approx(250 / 3)
    assert scores.average.ci_low is None and scores.average.ci_high is None


def test_identical_embeddings_score_100_and_shuffled_ones_score_their_fixed_points():
    generator = torch.Generator().manual_seed(0)
    english = torch.randn(200, 16, generator=generator)
    identical = layer_scores(english, english, bootstrap_samples=200)
    assert identical.xx_to_en.value == identical.en_to_xx.value == 100.0
    assert identical.average.ci_low == identical.average.ci_high == 100.0
    # rows shuffled: a pair is found exactly when the permutation leaves it in place, so accuracy is chance (1/N
    # expected)
    permutation = torch.randperm(200, generator=generator)
    fixed_points = int((permutation == torch.arange(200)).sum())
    shuffled = layer_scores(english[permutation], english, bootstrap_samples=200)
    assert shuffled.xx_to_en.value == shuffled.en_to_xx.value == pytest.approx(100 * fixed_points / 200)
    assert fixed_points < 10
    # unrelated random embeddings: near chance, and the interval covers the value
    unrelated = layer_scores(torch.randn(200, 16, generator=generator), english, bootstrap_samples=200)
    assert unrelated.average.value < 5.0
    assert unrelated.average.ci_low <= unrelated.average.value <= unrelated.average.ci_high


# ----------------------------------------------------------------------------------------------------
# The grid on a tiny encoder


def test_identical_sentences_retrieve_each_other_at_every_layer_and_the_grid_round_trips(tiny_encoder, tmp_path):
    loaded = load_encoder(tiny_encoder)
    files = DataSource.resolve(LASER_FILES)
    german, french = read_tatoeba(files, "de"), read_tatoeba(files, "fra")
    mirror = TatoebaPairs("nl", german.english, german.english, "the English side twice")
    result = tatoeba_retrieval(tiny_encoder, loaded, [german, mirror, french], bootstrap_samples=50, batch_size=3,
                               source=files.describe())
    assert result.num_layers == 4 and result.layers == [0, 1, 2, 3, 4]
    assert result.languages == ["de", "nl", "fr"] and result.n_sentences == {"de": 8, "nl": 8, "fr": 6}
    grid = result.grid()
    assert len(grid) == 5 and all(len(row) == 3 for row in grid)  # layers × languages
    assert [row[1] for row in grid] == [100.0] * 5
    for direction in ("xx_to_en", "en_to_xx", "average"):
        assert all(0.0 <= value <= 100.0 for row in result.grid(direction) for value in row)
    cell = result.scores["de"][4]
    assert cell.average.value == pytest.approx((cell.xx_to_en.value + cell.en_to_xx.value) / 2)
    assert cell.average.ci_low <= cell.average.value <= cell.average.ci_high
    assert result.mean_over_languages()[0] == pytest.approx(sum(grid[0]) / 3)

    result.write(tmp_path / "tatoeba.json")
    assert TatoebaResult.read(tmp_path / "tatoeba.json") == result
    assert result.code_version == code_version()  # the code that measured it is recorded

    chosen = tatoeba_retrieval(tiny_encoder, loaded, [german, mirror], layers=[0, 4], bootstrap_samples=50)
    assert chosen.layers == [0, 4] and len(chosen.grid()) == 2
    assert chosen.scores["de"] == [result.scores["de"][0], result.scores["de"][4]]


# ----------------------------------------------------------------------------------------------------
# Data and codes


def test_laser_and_project_codes_map_both_ways(data_root):
    assert len(TATOEBA_LASER_CODES) == 36 and len(set(TATOEBA_LASER_CODES.values())) == 36
    assert set(TATOEBA_LASER_CODES) <= set(LANGUAGE_NAMES)
    assert [tatoeba_language(code) for code in ("deu", "de", "CMN", "pes", "swh", "tgl")] == [
        "de", "de", "zh", "fa", "sw", "tl"]
    with pytest.raises(ConfigError, match=r"unknown Tatoeba language 'xx': choose from af \(afr\), ar \(ara\)"):
        tatoeba_language("xx")
    # the real folder holds 32 of XTREME's 36 languages (kor, hin, ind and tha are held back)
    real = available_tatoeba_languages(DataSource.resolve(data_root))
    assert len(real) == 32 and not {"ko", "hi", "id", "th"} & set(real) and "zh" in real


def test_laser_files_and_hub_rows_are_read_alike(tmp_path):
    files = DataSource.resolve(LASER_FILES)
    assert available_tatoeba_languages(files) == ["de", "fr"]
    from_files = read_tatoeba(files, "deu")
    assert from_files.english[0] == "The cat sleeps on the sofa." and from_files.other[0].startswith("Die Katze")
    assert len(from_files.english) == len(from_files.other) == 8
    from_hub = read_tatoeba(hub_source(tmp_path), "de")
    assert (from_hub.english, from_hub.other) == (from_files.english, from_files.other)
    assert from_hub.origin == "google/xtreme tatoeba.deu (validation)"
    assert read_tatoeba(files, "de", max_sentences=3).other == from_files.other[:3]


def test_malformed_data_gives_one_line_errors_naming_file_and_line(tmp_path):
    folder = tmp_path / "retrieval" / "tatoeba"
    folder.mkdir(parents=True)
    (folder / "tatoeba.deu-eng.deu").write_text("Eins.\nZwei.\nDrei.\n", encoding="utf-8")
    (folder / "tatoeba.deu-eng.eng").write_text("One.\nTwo.\n", encoding="utf-8")
    (folder / "tatoeba.fra-eng.fra").write_text("Un.\n\nTrois.\n", encoding="utf-8")
    (folder / "tatoeba.fra-eng.eng").write_text("One.\nTwo.\nThree.\n", encoding="utf-8")
    (folder / "tatoeba.ita-eng.eng").write_text("One.\nTwo.\n", encoding="utf-8")
    source = DataSource.resolve(tmp_path)
    where = re.escape(str(folder))
    cases = {
        "de": rf"^{where}/tatoeba.deu-eng.deu: 3 sentences but tatoeba.deu-eng.eng has 2: the files must align",
        "fr": rf"^{where}/tatoeba.fra-eng.fra:2: blank line",
        "it": rf"^{where}/tatoeba.ita-eng.ita: the Tatoeba file is missing$",
        "ru": r"no Tatoeba data for Russian \(ru\) in the data root .*: expected tatoeba.rus-eng.rus",
    }
    for language, message in cases.items():
        with pytest.raises(DataError, match=message) as caught:
            read_tatoeba(source, language)
        assert "\n" not in str(caught.value)
    with pytest.raises(DataError, match=r"cannot load google/xtreme tatoeba.fra \(validation\): no tatoeba.fra"):
        read_tatoeba(hub_source(tmp_path), "fr")
    broken = DataSource.hub(lambda config, split: [{"sentence": "a"}])
    with pytest.raises(DataError, match="does not have the expected columns .*row 1 lacks 'source_sentence'"):
        read_tatoeba(broken, "de")


def test_layers_are_parsed_and_checked():
    assert parse_layers("all") is None and check_layers(None, 12) == list(range(13))
    assert parse_layers("0-12") == list(range(13))
    assert parse_layers("12, 4,8,8") == [4, 8, 12] and parse_layers("0-2,12") == [0, 1, 2, 12]
    for bad in ("last", "5-3", "1.5"):
        with pytest.raises(ConfigError, match="bad --layers"):
            parse_layers(bad)
    with pytest.raises(ConfigError, match=r"layer 13 does not exist: the encoder has layers 0-12"):
        check_layers([0, 13], 12)


# ----------------------------------------------------------------------------------------------------
# Command line


@pytest.mark.integration
def test_cli_on_an_encoder_and_a_fine_tuned_run_with_one_line_errors(tiny_encoder, fixture_root, tmp_path, capsys):
    from dlfa.cli.main import main
    from dlfa.engine.spec import JobSpec
    from dlfa.engine.job import run_job

    def tatoeba(*argv) -> tuple[int, str, str]:
        code = main(["tatoeba", *argv])
        out, err = capsys.readouterr()
        return code, out, err

    common = ["--data-root", str(LASER_FILES), "--bootstrap-samples", "20"]
    code, out, _ = tatoeba("--encoder", tiny_encoder, "--langs", "deu,fr", "--layers", "0,4", *common, "--json",
                           "--out", str(tmp_path / "base.json"))
    base = TatoebaResult.from_dict(json.loads(out))
    assert code == 0 and base.languages == ["de", "fr"] and base.layers == [0, 4]
    assert base.n_sentences == {"de": 8, "fr": 6} and TatoebaResult.read(tmp_path / "base.json") == base
    code, out, _ = tatoeba("--encoder", tiny_encoder, "--max-sentences", "5", *common)
    lines = out.splitlines()
    assert code == 0 and "(sentence pairs: de 5, fr 5)" in lines[0]
    assert lines[2].split() == ["layer", "de", "fr", "mean"] and len(lines) == 3 + 5 + 2 + 2
    assert lines[-2].split()[0] == "de" and lines[-1].split()[0] == "fr"

    errors = {
        ("--langs", "de,xx"): "error: unknown Tatoeba language 'xx'",
        ("--langs", "ko"): "error: no Tatoeba data for Korean (ko) in the data root",
        ("--layers", "5"): "error: layer 5 does not exist: the encoder has layers 0-4",
        ("--layers", "top"): "error: bad --layers 'top'",
        ("--max-sentences", "1"): "error: --max-sentences must be at least 2",
        ("--out", str(tmp_path / "missing" / "x.json")): f"error: --out {tmp_path}/missing/x.json: the folder",
    }
    for argv, message in errors.items():
        code, _, err = tatoeba("--encoder", tiny_encoder, *argv, *common)
        error_lines = [line for line in err.splitlines() if line.startswith("error:")]  # not the loading bars
        assert code == 2 and len(error_lines) == 1 and error_lines[0].startswith(message), err

    spec = JobSpec(task="udpos", eval_languages=("de",), encoder=tiny_encoder, data_root=str(fixture_root),
                   aggregations=("last",), max_steps=5, max_train_examples=64, max_eval_examples=16, batch_size=8,
                   learning_rate=1e-3, bootstrap_samples=20)
    run_job(spec, tmp_path / "job")
    real = ["--data-root", str(fixture_root), "--langs", "de", "--max-sentences", "100", "--bootstrap-samples", "0"]
    code, out, _ = tatoeba("--run", str(tmp_path / "job" / "last-s1"), *real, "--json")
    tuned = TatoebaResult.from_dict(json.loads(out))
    code, out, _ = tatoeba("--encoder", tiny_encoder, *real, "--json")
    untuned = TatoebaResult.from_dict(json.loads(out))
    assert code == 0 and tuned.encoder.endswith("model") and tuned.layers == untuned.layers == [0, 1, 2, 3, 4]
    assert tuned.grid("xx_to_en") != untuned.grid("xx_to_en")  # the fine-tuned weights were measured
    code, _, err = tatoeba("--run", str(tmp_path / "job"), *real)
    assert code == 2 and "neither a run folder with a saved model nor a model folder" in err


@pytest.mark.slow
def test_e5_small_retrieves_real_translations_better_with_depth(data_root):
    source = DataSource.resolve(data_root)
    pools = [read_tatoeba(source, language, max_sentences=100) for language in ("deu", "fra")]
    result = tatoeba_retrieval("embedded:e5-small", load_encoder("embedded:e5-small"), pools, bootstrap_samples=200)
    assert result.num_layers == 12 and len(result.grid()) == 13 and result.n_sentences == {"de": 100, "fr": 100}
    for language in ("de", "fr"):
        first, last = result.scores[language][0], result.scores[language][-1]
        assert last.xx_to_en.value > 80 and last.en_to_xx.value > 80, last
        assert last.average.value > first.average.value + 20, (first, last)
