"""Bring your own language: storing, validating and evaluating uploaded test sets."""
import pytest

from dlfa.errors import ConfigError, DataError
from dlfa.engine.spec import JobSpec
from dlfa.engine.job import run_job
from dlfa.results import read_job_results
from dlfa.engine.uploads import (
    MAX_EXAMPLES,
    MAX_UPLOAD_BYTES,
    MAX_WORDS_PER_EXAMPLE,
    evaluate_upload,
    list_uploads,
    load_uploaded_examples,
    sanitize_filename,
    save_upload,
)

CONLLU = """# sent_id = 1
# text = Der Hund bellt.
1\tDer\tder\tDET\t_\t_\t2\tdet\t_\t_
2\tHund\tHund\tNOUN\t_\t_\t3\tnsubj\t_\t_
3\tbellt\tbellen\tVERB\t_\t_\t0\troot\t_\tSpaceAfter=No
4\t.\t.\tPUNCT\t_\t_\t3\tpunct\t_\t_

# sent_id = 2
1\tKatzen\tKatze\tNOUN\t_\t_\t2\tnsubj\t_\t_
2\tschlafen\tschlafen\tVERB\t_\t_\t0\troot\t_\t_
"""


@pytest.fixture
def cache(tiny_encoder, monkeypatch, tmp_path):
    """An empty cache for uploads (requested after tiny_encoder, which needs the real cache's e5 tokenizer)."""
    monkeypatch.setenv("DLFA_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_conllu_round_trip(cache):
    upload = save_upload("german pos.conllu", CONLLU.encode(), "udpos", "de")
    assert upload.path == cache / "uploads" / "udpos" / "de" / "german_pos.conllu"
    assert upload.n_examples == 2 and upload.path.read_text() == CONLLU
    examples = load_uploaded_examples(upload)
    assert examples[0].words == ("Der", "Hund", "bellt", ".") and examples[1].tags == ("NOUN", "VERB")
    assert list_uploads() == [upload] and list_uploads("udpos") == [upload] and list_uploads("panx") == []


def test_pair_and_sentence_formats(cache):
    pawsx = save_upload("de.tsv", b"Ein Satz.\tEin Satz!\t1\nA.\tB.\t0\n", "pawsx", "de")
    assert [e.label for e in load_uploaded_examples(pawsx)] == ["paraphrase", "different"]
    sst = save_upload("x.jsonl", b'{"text": "Toll!", "label": "positive"}\n', "sst2", "de")
    assert load_uploaded_examples(sst)[0].text == "Toll!"


def test_malformed_file_names_file_and_line(cache):
    broken = CONLLU.replace("2\tschlafen\tschlafen\tVERB", "2\tschlafen\tschlafen\tVERBING")
    with pytest.raises(DataError, match=r"^broken\.conllu:10: UPOS tag 'VERBING' is not in the task's label set"):
        save_upload("broken.conllu", broken.encode(), "udpos", "de")
    with pytest.raises(DataError, match=r"^short\.conllu:3: expected 10 tab-separated"):
        save_upload("short.conllu", b"# sent_id = 1\n1\tDer\tder\tDET\t_\t_\t2\tdet\t_\t_\n2\tHund\n", "udpos", "de")
    with pytest.raises(DataError, match=r"^ner\.tsv:1: tag 'B-XYZ'"):
        save_upload("ner.tsv", b"Berlin\tB-XYZ\n", "panx", "de")
    with pytest.raises(DataError, match="takes .conllu, .tsv, .txt, .conll files, not .exe"):
        save_upload("model.exe", b"x", "udpos", "de")
    assert list_uploads() == [] and not any((cache / "uploads" / "udpos" / "de").iterdir())


def test_oversized_and_bad_names_are_refused(cache):
    with pytest.raises(DataError, match="limited to 20 MB"):
        save_upload("big.conllu", b"x" * (MAX_UPLOAD_BYTES + 1), "udpos", "de")
    with pytest.raises(ConfigError, match="language code"):
        save_upload("a.conllu", CONLLU.encode(), "udpos", "../../etc")
    with pytest.raises(DataError, match="unknown task"):
        save_upload("a.conllu", CONLLU.encode(), "../udpos", "de")


def test_a_huge_line_is_refused_at_once_before_parsing(cache):
    import time

    one_line = b"word " * 3_000_000 + b"\tpositive\n"  # 15 MB in one line: passes the 20 MB limit
    started = time.perf_counter()
    with pytest.raises(DataError, match=r"^big\.tsv:1: the line has 15,000,009 bytes; lines are limited to 10,000"):
        save_upload("big.tsv", one_line, "sst2", "de")
    assert time.perf_counter() - started < 2.0
    assert list_uploads() == []


def test_too_many_words_or_sentences_are_refused(cache):
    words = "\n".join(f"Wort{i}\tNOUN" for i in range(MAX_WORDS_PER_EXAMPLE + 1)) + "\n"
    with pytest.raises(DataError, match=rf"^long\.tsv:1: an example has {MAX_WORDS_PER_EXAMPLE + 1} words; uploads are "
                                        rf"limited to {MAX_WORDS_PER_EXAMPLE} words per sentence"):
        save_upload("long.tsv", words.encode(), "udpos", "de")
    pair_words = " ".join(["Wort"] * 200)
    with pytest.raises(DataError, match="an example has 400 words"):
        save_upload("pairs.tsv", f"{pair_words}\t{pair_words}\t1\n".encode(), "pawsx", "de")
    many = b"Gut.\tpositive\n" * (MAX_EXAMPLES + 1)
    with pytest.raises(DataError, match=r"^many\.tsv: the file holds 20,001 examples; uploads are limited to 20,000"):
        save_upload("many.tsv", many, "sst2", "de")
    assert list_uploads() == []
    assert save_upload("ok.tsv", b"Gut.\tpositive\n" * MAX_EXAMPLES, "sst2", "de").n_examples == MAX_EXAMPLES


def test_traversal_names_are_sanitized(cache):
    assert sanitize_filename("../../etc/passwd.conllu") == "passwd.conllu"
    assert sanitize_filename("C:\\Users\\me\\my file (1).tsv") == "my_file__1_.tsv"
    assert sanitize_filename("..") == "upload" and sanitize_filename(".hidden.tsv") == "hidden.tsv"
    upload = save_upload("../../../outside.conllu", CONLLU.encode(), "udpos", "de")
    assert upload.path.parent == cache / "uploads" / "udpos" / "de" and upload.name == "outside.conllu"
    assert not (cache.parent / "outside.conllu").exists()


@pytest.mark.integration
def test_evaluate_upload_on_a_tiny_run(tiny_encoder, fixture_root, tmp_path, monkeypatch):
    spec = JobSpec(task="udpos", eval_languages=("de",), encoder=tiny_encoder, data_root=str(fixture_root),
                   fusion_layers=(2,), max_train_examples=64, max_eval_examples=16, batch_size=8, max_steps=5,
                   learning_rate=1e-3, bootstrap_samples=50)
    run_job(spec, tmp_path / "job")
    (run,) = read_job_results(tmp_path / "job").runs
    unit_dir = tmp_path / "job" / JobSpec.from_dict(run.spec).unit_name()
    monkeypatch.setenv("DLFA_CACHE_DIR", str(tmp_path / "cache"))  # only now: the run reuses cached features
    upload = save_upload("de.conllu", CONLLU.encode(), "udpos", "de")
    metrics = evaluate_upload(unit_dir, upload, bootstrap_samples=50)
    assert metrics["metric"] == "accuracy" and metrics["n"] == 2 and 0 <= metrics["value"] <= 100
    assert metrics["ci_low"] <= metrics["value"] <= metrics["ci_high"]
    assert metrics["language"] == "de" and metrics["file"] == "de.conllu" and metrics["truncated"] == 0
    assert metrics["fusion"]["tokens"] > 0
    one = evaluate_upload(unit_dir, upload, max_examples=1, bootstrap_samples=0)
    assert one["n"] == 1 and one["ci_low"] is None
    wrong_task = save_upload("p.tsv", b"A.\tB.\t1\n", "pawsx", "de")
    with pytest.raises(ConfigError, match="no head for task pawsx"):
        evaluate_upload(unit_dir, wrong_task)
