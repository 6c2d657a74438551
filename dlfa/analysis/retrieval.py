"""Tatoeba sentence retrieval with XTREME's protocol, no training.

Each sentence is mean-pooled over its real tokens (padding excluded) at a layer
(`dlfa.analysis.layers.mean_pooled_states`, 0 = embedding output); every sentence of one language looks up its cosine
nearest neighbour among the English sentences of that language's pool, and every English sentence among the other
language's. A hit is the sentence on
the same line (XTREME's gold alignment, so a duplicated sentence elsewhere in the pool counts as a miss). Accuracy is
reported per direction (xx→en, which XTREME publishes, and en→xx) and averaged, per layer and language, in points
with a 95% percentile bootstrap interval over the sentence pairs (`dlfa.engine.metrics`).

The encoder is any encoder spec or a fine-tuned run's encoder (`dlfa.analysis.layers.fine_tuned_encoder`), so the
same grid shows what fine-tuning did to retrieval. Data: a data root's `retrieval/tatoeba/` (LASER's files
`tatoeba.deu-eng.deu` / `tatoeba.deu-eng.eng`, line i translates line i), or google/xtreme's `tatoeba.deu`
configurations from the hub (split `validation`, columns source_sentence = the language, target_sentence = English).
From the command line (dlfa.cli.analysis):
`python -m dlfa tatoeba --encoder SPEC | --run RUN_FOLDER --langs de,fr --layers all`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from dlfa.analysis.layers import mean_pooled_states, nearest_neighbour_hits
from dlfa.code_version import code_version
from dlfa.data.sources import HUB_DATASET
from dlfa.errors import ConfigError, DataError
from dlfa.io import write_text
from dlfa.languages import LASER_TO_PROJECT, TATOEBA_LASER_CODES, language_label
from dlfa.engine.metrics import score_with_interval

TATOEBA_SUBFOLDER = Path("retrieval") / "tatoeba"
HUB_SPLIT = "validation"
HIT_LABELS = ["miss", "hit"]  # a retrieval outcome as a two-class "prediction" whose gold is always a hit


# ----------------------------------------------------------------------------------------------------
# Languages and data


def tatoeba_language(code: str) -> str:
    """The project code of a Tatoeba language given as a project code ("de") or a LASER code ("deu")."""
    code = code.strip().lower()
    if code in TATOEBA_LASER_CODES:
        return code
    if code in LASER_TO_PROJECT:
        return LASER_TO_PROJECT[code]
    choices = ", ".join(f"{project} ({laser})" for project, laser in TATOEBA_LASER_CODES.items())
    raise ConfigError(f"unknown Tatoeba language {code!r}: choose from {choices}")


@dataclass(frozen=True)
class TatoebaPairs:
    """One language's retrieval pool: other[i] translates english[i]."""

    language: str  # project code
    english: list[str]
    other: list[str]
    origin: str  # where the sentences were read from


def tatoeba_folder(root: Path) -> Path:
    """The folder holding LASER's Tatoeba files: `root/retrieval/tatoeba/`, or `root` itself when it holds them."""
    nested = root / TATOEBA_SUBFOLDER
    return nested if nested.is_dir() else root


def _files(folder: Path, language: str) -> tuple[Path, Path]:
    """(other language's file, English file) of `language` in LASER's naming."""
    laser = TATOEBA_LASER_CODES[language]
    return folder / f"tatoeba.{laser}-eng.{laser}", folder / f"tatoeba.{laser}-eng.eng"


def available_tatoeba_languages(source) -> list[str]:
    """Project codes of the Tatoeba languages `source` (a dlfa.data.sources.DataSource) holds: the hub has all
    of XTREME's; a data root or the pack those whose two files exist."""
    if source.kind == "hub":
        return list(TATOEBA_LASER_CODES)
    folder = tatoeba_folder(source.root)
    return [language for language in TATOEBA_LASER_CODES if all(path.is_file() for path in _files(folder, language))]


def _read_lines(path: Path) -> list[str]:
    """The file's lines; a blank line is an error naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError("the Tatoeba file is missing", str(path)) from None
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", str(path)) from None
    lines = [line.rstrip("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise DataError("blank line: every line must hold one sentence", str(path), number)
    return lines


def _read_hub(source, language: str) -> tuple[list[str], list[str], str]:
    where = f"{HUB_DATASET} tatoeba.{TATOEBA_LASER_CODES[language]} ({HUB_SPLIT})"
    try:
        rows = source.loader(f"tatoeba.{TATOEBA_LASER_CODES[language]}", HUB_SPLIT)
    except DataError:
        raise
    except Exception as exc:  # network, missing config, bad files: all reach the user as DataError
        raise DataError(f"cannot load {where}: {exc}") from exc
    english, other = [], []
    for number, row in enumerate(rows, start=1):
        try:
            sentence, translation = row["source_sentence"], row["target_sentence"]
        except (KeyError, TypeError) as exc:
            raise DataError(f"{where} does not have the expected columns (source_sentence, target_sentence): "
                            f"row {number} lacks {exc}") from None
        if not (isinstance(sentence, str) and sentence.strip() and isinstance(translation, str)
                and translation.strip()):
            raise DataError(f"{where}: row {number} has an empty sentence")
        other.append(sentence.rstrip("\r\n"))  # the hub's rows keep the files' line ends
        english.append(translation.rstrip("\r\n"))
    return english, other, where


def read_tatoeba(source, language: str, max_sentences: int | None = None) -> TatoebaPairs:
    """The first `max_sentences` (all when None) pairs of one language (project or LASER code) from `source`, a
    dlfa.data.sources.DataSource: a data root or the pack (LASER's files) or the hub (google/xtreme)."""
    language = tatoeba_language(language)
    if source.kind == "hub":
        english, other, origin = _read_hub(source, language)
    else:
        other_path, english_path = _files(tatoeba_folder(source.root), language)
        if not other_path.is_file() and not english_path.is_file():
            raise DataError(f"no Tatoeba data for {language_label(language)} in {source}: expected "
                            f"{other_path.name} and {english_path.name} in {other_path.parent}")
        other, english = _read_lines(other_path), _read_lines(english_path)
        if len(other) != len(english):
            raise DataError(f"{len(other)} sentences but {english_path.name} has {len(english)}: the files must "
                            "align line by line", str(other_path))
        origin = str(other_path)
    if len(english) < 2:
        raise DataError(f"retrieval needs at least 2 sentence pairs, {origin} has {len(english)}")
    return TatoebaPairs(language, english[:max_sentences], other[:max_sentences], origin)


# ----------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Accuracy:
    """Retrieval accuracy in points (0–100) with its 95% bootstrap interval over sentence pairs (None: no
    resampling)."""

    value: float
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class LayerScores:
    """One (language, layer) cell: each direction and their average."""

    xx_to_en: Accuracy
    en_to_xx: Accuracy
    average: Accuracy


DIRECTIONS = ("xx_to_en", "en_to_xx", "average")


@dataclass
class TatoebaResult:
    """scores[language][k] is the cell of layer `layers[k]` (0 = embedding output)."""

    encoder: str
    source: str
    num_layers: int
    layers: list[int]
    languages: list[str]
    n_sentences: dict[str, int]
    bootstrap_samples: int
    scores: dict[str, list[LayerScores]]
    code_version: dict | None = None  # dlfa.code_version.code_version() of the process that measured it

    def grid(self, direction: str = "average") -> list[list[float]]:
        """len(layers) × len(languages) accuracies in points."""
        return [[getattr(self.scores[language][k], direction).value for language in self.languages]
                for k in range(len(self.layers))]

    def mean_over_languages(self, direction: str = "average") -> list[float]:
        """One mean accuracy per entry of `layers`."""
        return [sum(row) / len(row) for row in self.grid(direction)]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TatoebaResult:
        scores = {
            language: [LayerScores(**{d: Accuracy(**cell[d]) for d in DIRECTIONS}) for cell in cells]
            for language, cells in data["scores"].items()
        }
        return cls(**{**data, "scores": scores})

    def write(self, path: str | Path) -> None:
        write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def read(cls, path: str | Path) -> TatoebaResult:
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise DataError("no such Tatoeba result file", str(path)) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"not a Tatoeba result ({exc})", str(path)) from None


# ----------------------------------------------------------------------------------------------------
# Measure


def layer_scores(other: torch.Tensor, english: torch.Tensor, bootstrap_samples: int, seed: int = 0) -> LayerScores:
    """other, english: N × E pooled states, row i of `other` translates row i of `english`."""
    xx_to_en, en_to_xx = (hits.long().tolist() for hits in nearest_neighbour_hits(other, english))

    def accuracy(gold: list, pred: list) -> Accuracy:
        scored = score_with_interval("accuracy", gold, pred, HIT_LABELS, bootstrap_samples, seed)
        return Accuracy(scored["value"], scored["ci_low"], scored["ci_high"])

    n = len(xx_to_en)
    both = [[a, b] for a, b in zip(xx_to_en, en_to_xx)]  # a pair is resampled with both its directions
    return LayerScores(accuracy([1] * n, xx_to_en), accuracy([1] * n, en_to_xx), accuracy([[1, 1]] * n, both))


def parse_layers(text: str) -> list[int] | None:
    """'all' -> None; '0-12' / '4,8,12' / '0-3,12' -> sorted distinct layers (range checked by `check_layers`)."""
    if text.strip().lower() == "all":
        return None
    layers: set[int] = set()
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            low, _, high = part.partition("-")
            layers.update(range(int(low), int(high or low) + 1))
    except ValueError:
        raise ConfigError(f"bad --layers {text!r}: write all, a range like 0-12 or a list like 4,8,12") from None
    if not layers:
        raise ConfigError(f"bad --layers {text!r}: no layer given (a range must go upwards, like 0-12)")
    return sorted(layers)


def check_layers(layers: list[int] | None, num_layers: int) -> list[int]:
    """`layers` (None = all) within 0…num_layers."""
    if layers is None:
        return list(range(num_layers + 1))
    outside = [layer for layer in layers if not 0 <= layer <= num_layers]
    if outside:
        raise ConfigError(f"layer {outside[0]} does not exist: the encoder has layers 0-{num_layers} "
                          "(0 = embedding output)")
    return layers


def tatoeba_retrieval(
    encoder_name: str,
    loaded,
    pools: list[TatoebaPairs],
    layers: list[int] | None = None,
    bootstrap_samples: int = 1000,
    batch_size: int = 32,
    source: str = "",
) -> TatoebaResult:
    """The layer × language grid of retrieval accuracies of `loaded` (a dlfa.model.encoders.LoadedEncoder) on `pools`.

    layers: None = every layer 0…L."""
    num_layers = loaded.model.config.num_hidden_layers
    layers = check_layers(layers, num_layers)
    result = TatoebaResult(encoder_name, source, num_layers, layers, [], {}, bootstrap_samples, {}, code_version())
    for pool in pools:
        english = mean_pooled_states(loaded.model, loaded.tokenizer, pool.english, batch_size)  # (L + 1) × N × E
        other = mean_pooled_states(loaded.model, loaded.tokenizer, pool.other, batch_size)
        result.languages.append(pool.language)
        result.n_sentences[pool.language] = len(pool.english)
        result.scores[pool.language] = [layer_scores(other[k], english[k], bootstrap_samples) for k in layers]
    return result
