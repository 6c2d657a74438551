"""Bring your own language: upload a labeled test set for a task and evaluate a trained run on it (in a job of
the job store, not in the app's process: `evaluation_options` marks such a job, the worker runs it with
`evaluation_runner`).

An upload is stored as `cache/uploads/<task>/<language>/<sanitized name>` with a sidecar `.<name>.json`
({"task", "language", "filename", "n_examples"}). It is parsed with the registry's readers, chosen by the task's
kind and the extension, so errors name the file and the line:

    token tasks     .conllu (UPOS tasks) -> read_conllu;  .tsv/.txt token<TAB>tag -> read_token_tag;
                    .conll (NER, CoNLL-2002/2003 columns) -> read_conll_ner
    pair tasks      .tsv/.txt text<TAB>text_pair<TAB>label (XNLI layout; PAWS-X's 0/1 for pawsx) -> read_tsv;
                    .jsonl {"text", "text_pair", "label"} -> read_jsonl
    sentence tasks  .tsv/.txt text<TAB>label -> read_tsv;  .jsonl {"text", "label"} -> read_jsonl
Tags and labels must be in the task's label set.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from dlfa.errors import ConfigError, DataError
from dlfa.io import atomic_file, write_json
from dlfa.paths import cache_subdir
from dlfa.results import COMPLETED, CONFIG_FILE, MODEL_DIR, read_run_results
from dlfa.data import readers
from dlfa.data.base import Example, TaskInfo

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
EVALUATION_OPTION = "evaluate_upload"  # the job option that makes a job an upload evaluation
EVALUATION_FILE = "upload_evaluation.json"  # its result, in the job's folder
# Caps that keep one upload from stalling the app (a one-line 15 MB file took 67 s and 2.7 GB to evaluate):
# checked at upload time, the line length before parsing.
MAX_LINE_BYTES = 10_000
MAX_WORDS_PER_EXAMPLE = 300  # words of a sentence (token tasks) or of text + text_pair
MAX_EXAMPLES = 20_000
EXTENSIONS = {
    "token": (".conllu", ".tsv", ".txt", ".conll"),
    "pair": (".tsv", ".txt", ".jsonl"),
    "sentence": (".tsv", ".txt", ".jsonl"),
    "multiple_choice": (".jsonl",),
}
_LANGUAGE = re.compile(r"[a-z]{2,3}([-_][A-Za-z0-9]{2,8})?")
_SENTENCE_TSV = readers.TsvFormat(text=0, label=1, columns=2)


@dataclass(frozen=True)
class UploadedSet:
    """A stored, validated upload."""

    task: str
    language: str
    path: Path
    n_examples: int

    @property
    def name(self) -> str:
        return self.path.name

    def to_dict(self) -> dict:
        return {"task": self.task, "language": self.language, "path": str(self.path), "n_examples": self.n_examples}


def uploads_dir() -> Path:
    return cache_subdir("uploads")


def sanitize_filename(filename: str) -> str:
    """The file's own name (any folder part dropped), with characters outside [A-Za-z0-9._-] replaced by "_"
    and no leading dot: "../../etc/passwd" -> "passwd", "C:\\x\\my file.tsv" -> "my_file.tsv"."""
    name = re.split(r"[\\/]", filename)[-1]
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip("._")[:120]
    return name or "upload"


def _read(path: Path, info: TaskInfo, language: str, extension: str | None = None) -> list[Example]:
    """Parse a stored upload with the reader its task kind and extension (default: the path's) call for
    (DataError when none fits)."""
    extension = (path.suffix if extension is None else extension).lower()
    if extension not in EXTENSIONS[info.kind]:
        raise DataError(
            f"a {info.kind} task ({info.name}) takes {', '.join(EXTENSIONS[info.kind])} files, "
            f"not {extension or 'no extension'}",
            path.name,
        )
    if info.kind == "token":
        if extension == ".conllu":
            if set(info.labels) != set(readers.UPOS_TAGS):
                raise DataError(f"CoNLL-U files carry UPOS tags; {info.name} needs token<TAB>tag (.tsv)", path.name)
            return readers.read_conllu(path, labels=info.labels)
        if extension == ".conll":
            return readers.read_conll_ner(path, labels=info.labels, fallback_encoding="latin-1")
        return readers.read_token_tag(path, labels=info.labels, language=language)
    if extension == ".jsonl":
        convert = {"sentence": "sentence", "multiple_choice": "choices"}.get(info.kind) or readers.json_pair(
            "text", "text_pair")
        examples = readers.read_jsonl(path, convert, labels=info.labels)
        for example in examples:
            if info.kind == "multiple_choice" and len(example.choices) != len(info.labels):
                raise DataError(f"{len(example.choices)} choices; {info.name} has {len(info.labels)} "
                                f"({', '.join(info.labels)})", path.name, int(example.source.rpartition(":")[2]))
        return examples
    fmt = _SENTENCE_TSV if info.kind == "sentence" else ("pawsx" if info.name == "pawsx" else "xnli")
    return readers.read_tsv(path, fmt, labels=info.labels)


def _check_line_lengths(data: bytes, name: str) -> None:
    """DataError naming the first line longer than MAX_LINE_BYTES (before any parsing)."""
    for number, line in enumerate(data.split(b"\n"), 1):
        if len(line) > MAX_LINE_BYTES:
            raise DataError(f"the line has {len(line):,} bytes; lines are limited to {MAX_LINE_BYTES:,} bytes "
                            "(one sentence or one token per line)", name, number)


def _check_sizes(examples: list[Example], name: str) -> None:
    """DataError when the file holds too many examples or an example with too many words."""
    if len(examples) > MAX_EXAMPLES:
        raise DataError(f"the file holds {len(examples):,} examples; uploads are limited to {MAX_EXAMPLES:,}", name)
    for example in examples:
        words = len(example.words) or sum(len(text.split()) for text in (example.text, example.text_pair or "",
                                                                         *example.choices))
        if words > MAX_WORDS_PER_EXAMPLE:
            line = example.source.rpartition(":")[2]
            raise DataError(f"an example has {words:,} words; uploads are limited to {MAX_WORDS_PER_EXAMPLE} words "
                            "per sentence (or sentence pair)", name, int(line) if line.isdigit() else None)


def _reason(exc: DataError) -> str:
    """A DataError's message without its "path:line: " prefix."""
    text = str(exc)
    prefix = f"{exc.path}:{exc.line}: " if exc.path and exc.line else (f"{exc.path}: " if exc.path else "")
    return text.removeprefix(prefix)


def _check_language(language: str) -> None:
    if not _LANGUAGE.fullmatch(language):
        raise ConfigError(f"{language!r} is not a language code such as 'de', 'gsw' or 'pt-BR'")


def save_upload(filename: str, data: bytes, task: str, language: str) -> UploadedSet:
    """Validate and store an uploaded file for (task, language). Raises DataError (unknown task, too large, wrong
    extension, malformed: naming the uploaded file and the line) or ConfigError (not a language code); a refused
    upload leaves nothing behind and replaces nothing."""
    from dlfa.data.registry import get_task

    info = get_task(task)
    _check_language(language)
    name = sanitize_filename(filename)
    if len(data) > MAX_UPLOAD_BYTES:
        raise DataError(f"the file has {len(data) / 2**20:.1f} MB; uploads are limited to "
                        f"{MAX_UPLOAD_BYTES // 2**20} MB", name)
    _check_line_lengths(data, name)
    folder = uploads_dir() / info.name / language
    path = folder / name
    with atomic_file(path) as staging:  # in place only once it reads
        staging.write_bytes(data)
        try:
            examples = _read(staging, info, language, extension=path.suffix)
            _check_sizes(examples, name)
        except DataError as exc:
            raise DataError(_reason(exc), name, exc.line) from None
    meta = {"task": info.name, "language": language, "filename": filename, "n_examples": len(examples)}
    write_json(folder / f".{name}.json", meta)
    return UploadedSet(info.name, language, path, len(examples))


def list_uploads(task: str | None = None) -> list[UploadedSet]:
    """Stored uploads (of one task, or all), ordered by task, language and name."""
    from dlfa.data.registry import get_task

    pattern = f"{get_task(task).name}/*/.*.json" if task else "*/*/.*.json"
    found = []
    for meta_path in sorted(uploads_dir().glob(pattern)):
        path = meta_path.with_name(meta_path.name[1 : -len(".json")])
        if not path.is_file():
            continue
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            found.append(UploadedSet(meta["task"], meta["language"], path, int(meta["n_examples"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a sidecar being written or damaged: not listed
    return found


def load_uploaded_examples(upload: UploadedSet) -> list[Example]:
    """The upload's examples, read again through the same reader."""
    from dlfa.data.registry import get_task

    return _read(upload.path, get_task(upload.task), upload.language)


def evaluate_upload(
    run_unit_dir: str | Path, upload: UploadedSet, max_examples: int | None = None, bootstrap_samples: int = 1000,
) -> dict:
    """Evaluate one trained unit (`<unit>/model`, as written by dlfa.engine.train) on an upload.

    Returns the task metric with its 95% bootstrap interval {"metric", "value", "ci_low", "ci_high", "n"} plus
    "task", "language", "file", "truncated" (examples cut at the run's max_length) and "fusion" (DLFA fusion
    statistics, else None).
    """
    from dlfa.model.encoders import load_tokenizer
    from dlfa.engine.evaluate import evaluate_dataset
    from dlfa.model.modeling import DlfaModel
    from dlfa.data.base import encode_examples
    from dlfa.data.registry import get_task
    from dlfa.engine.datasets import serve

    unit = Path(run_unit_dir)
    heads = _saved_heads(unit / MODEL_DIR / CONFIG_FILE)
    if upload.task not in heads:
        raise ConfigError(f"this run has no head for task {upload.task} (heads: {', '.join(heads)})")
    model = DlfaModel.from_pretrained(unit / MODEL_DIR)
    try:
        max_length = read_run_results(unit).spec.get("max_length", 128)
    except DataError:
        max_length = 128  # the JobSpec default
    device = next(model.parameters()).device
    info = get_task(upload.task)
    tokenizer = load_tokenizer(model.config.encoder)
    examples = load_uploaded_examples(upload)[:max_examples]
    encoded = encode_examples(examples, info, tokenizer, max_length, language=upload.language, split="upload")
    dataset = serve(encoded, tokenizer.pad_token_id, info.kind)
    metrics, fusion = evaluate_dataset(model, dataset, info, device, bootstrap_samples=bootstrap_samples,
                                       with_fusion=model.config.aggregation == "dlfa")
    return {**metrics, "task": info.name, "language": upload.language, "file": upload.name,
            "truncated": encoded.truncated, "fusion": fusion}


def _saved_heads(config_path: Path) -> dict:
    try:
        return json.loads(config_path.read_text(encoding="utf-8"))["heads"]
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{config_path.parent} holds no saved model: {exc}") from exc


# ----------------------------------------------------------------------------------------------------
# Evaluation as a job


def evaluation_spec(run_unit_dir: str | Path, upload: UploadedSet):
    """The JobSpec recorded with an upload evaluation: the unit's own spec, evaluated on the upload's language."""
    from dataclasses import replace

    from dlfa.engine.spec import JobSpec

    unit = Path(run_unit_dir)
    try:
        spec = JobSpec.from_dict(read_run_results(unit).spec)
    except DataError as exc:
        raise ConfigError(f"{unit} holds no readable results of a finished run: {exc}") from exc
    return replace(spec, eval_languages=(upload.language,), backend="local", num_processes=1, tensorboard=False,
                   name=f"evaluate {upload.name} with {unit.name}")


def evaluation_options(run_unit_dir: str | Path, upload: UploadedSet, bootstrap_samples: int = 1000) -> dict:
    """The job options that make the worker evaluate a unit on an upload (see `evaluation_runner`)."""
    return {EVALUATION_OPTION: {"unit_dir": str(Path(run_unit_dir).resolve()), **upload.to_dict(),
                                "bootstrap_samples": bootstrap_samples}}


def evaluation_runner(request: dict):
    """A runner with run_job's signature for the worker: evaluates the request's unit on its upload and writes
    the result (`evaluate_upload`'s dict) to <job folder>/upload_evaluation.json."""
    from dlfa.engine.callbacks import CallbackList, Progress

    def run(spec, out_dir, callbacks=(), resume=True) -> dict:
        callbacks = CallbackList(list(callbacks))
        upload = UploadedSet(request["task"], request["language"], Path(request["path"]), request["n_examples"])
        callbacks.on_log(f"evaluating {request['unit_dir']} on {upload.path}")
        result = evaluate_upload(request["unit_dir"], upload, bootstrap_samples=request["bootstrap_samples"])
        write_json(Path(out_dir) / EVALUATION_FILE, result)
        callbacks.on_progress(Progress(1, 1, Path(request["unit_dir"]).name, "eval", 1, 1, None, 1.0))
        return {"status": COMPLETED}

    return run


def evaluation_result(job) -> dict | None:
    """The result an upload evaluation job wrote (None before it finished)."""
    try:
        return json.loads((job.out_dir / EVALUATION_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the evaluation result: {exc}", str(job.out_dir / EVALUATION_FILE)) from exc
