"""The top-level command line: errors that are not DlfaErrors still end in one line naming what and where (a
corrupted encoder file, an output folder that cannot be written, any OSError), and a closed pipe
ends the command quietly."""
import shutil
import subprocess
import sys
from pathlib import Path

from dlfa.cli.main import main
from dlfa.engine.spec import JobSpec
from dlfa.jobs.store import JobStore

REPO = Path(__file__).resolve().parents[1]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    return err[0]


def train_args(encoder: str, data_root: Path, out: Path) -> list[str]:
    return ["train", "--task", "udpos", "--encoder", encoder, "--eval-langs", "de", "--data-root", str(data_root),
            "--fusion-layer", "2", "--max-steps", "1", "--max-train-examples", "16", "--out", str(out)]


def test_a_corrupted_encoder_file_is_one_line_naming_the_encoder(tiny_encoder, fixture_root, tmp_path, capsys):
    encoder = tmp_path / "encoder"
    shutil.copytree(tiny_encoder, encoder)
    weights = encoder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    assert main(train_args(str(encoder), fixture_root, tmp_path / "out")) == 2
    line = one_line_error(capsys)
    assert f"the weights of encoder '{encoder}' in {encoder} cannot be read" in line and "truncated" in line


def test_an_output_folder_that_cannot_be_written_is_one_line(tiny_encoder, fixture_root, tmp_path, capsys):
    (tmp_path / "a-file").write_text("x")
    out = tmp_path / "a-file" / "run"
    assert main(train_args(tiny_encoder, fixture_root, out)) == 2
    assert one_line_error(capsys) == f"error: --out {out}: cannot create or write this folder: Not a directory"


def test_any_os_error_is_one_line_naming_its_file(monkeypatch, capsys):
    def denied(spec):
        raise PermissionError(13, "Permission denied", "/srv/models/config.json")

    monkeypatch.setattr("dlfa.model.encoders.encoder_info", denied)
    assert main(["info", "--encoder", "/srv/models"]) == 2
    assert one_line_error(capsys) == "error: /srv/models/config.json: Permission denied"

    def disk_full(spec):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("dlfa.model.encoders.encoder_info", disk_full)
    assert main(["info", "--encoder", "/srv/models"]) == 2
    assert one_line_error(capsys) == "error: No space left on device"


def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite")
    for _ in range(60):  # more JSON than a pipe holds, so the writer meets the closed pipe
        store.request_cancel(store.submit(JobSpec(task="pos", eval_languages=("de",))).id)
    command = [sys.executable, "-m", "dlfa", "jobs", "--store", str(store.path), "list", "--json"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first_line = process.stdout.readline()  # like `| head -1`
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141 and first_line == b"[\n" and stderr == ""
