"""dlfa.io: a write that fails leaves the old file or folder untouched and no temporary file behind."""
import pytest

from dlfa import io


def test_write_json_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "results.json"
    io.write_json(target, {"a": 1})
    io.write_json(target, {"a": 2})
    assert target.read_text() == '{\n  "a": 2\n}'
    assert [p.name for p in target.parent.iterdir()] == ["results.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "results.json"
    io.write_json(target, {"a": 1})
    with pytest.raises(ValueError):
        io.write_json(target, {"a": float("nan")})
    assert target.read_text() == '{\n  "a": 1\n}'
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_a_failed_folder_write_keeps_the_old_folder(tmp_path):
    target = tmp_path / "model"
    with io.atomic_folder(target) as staging:
        (staging / "weights").write_text("old")
    with pytest.raises(RuntimeError):
        with io.atomic_folder(target) as staging:
            (staging / "weights").write_text("new")
            raise RuntimeError("killed")
    assert (target / "weights").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    with io.atomic_folder(target) as staging:
        (staging / "weights").write_text("new")
    assert (target / "weights").read_text() == "new"


def test_written_files_get_the_usual_permissions_not_owner_only(tmp_path):
    import os

    umask = os.umask(0o022)
    os.umask(umask)
    io.write_text(tmp_path / "report.md", "x")
    with io.atomic_folder(tmp_path / "model") as staging:
        (staging / "weights").write_text("w")
    assert (tmp_path / "report.md").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "model").stat().st_mode & 0o777 == 0o777 & ~umask
