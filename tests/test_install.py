"""The install: the Makefile's torch step (run for real, with a stub pip that records its calls) asks PyTorch's CPU
index on a machine without an NVIDIA GPU, falls back to pip's own indexes at once when that index cannot be
reached, takes PyPI's (CUDA) build where a GPU is, and prints the build installed; test-only packages stay out of
what `make app` installs."""
import functools
import http.server
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_ONLY = {"pytest", "pytest-timeout", "hypothesis", "playwright", "accelerate"}


def requirement_names(path: Path) -> set[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {re.split(r"[<>=!~\[ ;]", line)[0].lower() for line in lines if line and not line.startswith("-")}


def test_make_app_installs_no_test_only_package_and_make_test_adds_them():
    runtime = requirement_names(REPO / "requirements.txt")
    assert not runtime & TEST_ONLY and {"torch", "streamlit", "transformers"} <= runtime
    test_file = (REPO / "requirements-test.txt").read_text()
    assert "-r requirements.txt" in test_file and TEST_ONLY <= requirement_names(REPO / "requirements-test.txt")
    assert re.search(r"^streamlit>=1\.52\b", (REPO / "requirements.txt").read_text(), re.M)  # st.metric(delta_arrow=)
    app_recipe = subprocess.run(["make", "-n", "-B", "app", "VENV=/nonexistent/venv"], cwd=REPO, capture_output=True,
                                text=True).stdout
    assert "requirements.txt" in app_recipe and "requirements-test.txt" not in app_recipe
    test_recipe = subprocess.run(["make", "-n", "-B", "test", "VENV=/nonexistent/venv"], cwd=REPO,
                                 capture_output=True, text=True).stdout
    assert "pip install --quiet -r requirements-test.txt" in test_recipe


@pytest.fixture
def venv(tmp_path) -> Path:
    """A stand-in venv: `python` is this interpreter (so the step's probe and its torch report are real), `pip`
    only records its arguments in pip.log."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "pip").write_text(f'#!/bin/sh\necho "$@" >> "{tmp_path / "pip.log"}"\n')
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    return tmp_path / "venv"


def make_torch(venv: Path, *settings: str, gpu: bool = False) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run `make torch` against the stand-in venv on a machine with or without an NVIDIA GPU."""
    fake_smi = venv / "nvidia-smi"
    fake_smi.write_text("#!/bin/sh\n")
    fake_smi.chmod(0o755)
    machine = [f"NVIDIA_SMI={fake_smi if gpu else 'no-such-nvidia-smi'}", f"NVIDIA_DRIVER={venv / 'no-driver'}"]
    result = subprocess.run(["make", "torch", f"VENV={venv}", *machine, *settings], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    log = venv.parent / "pip.log"
    return result, log.read_text().splitlines() if log.is_file() else []


@pytest.fixture
def cpu_index(tmp_path):
    """PyTorch's CPU index, served locally: its URL."""
    (tmp_path / "served" / "whl" / "cpu" / "torch").mkdir(parents=True)
    (tmp_path / "served" / "whl" / "cpu" / "torch" / "index.html").write_text("<a>torch-2.13.0+cpu...</a>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "served"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/whl/cpu"
    server.shutdown()


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/whl/cpu"  # nothing listens there once closed


@pytest.mark.integration
def test_without_a_gpu_the_cpu_index_is_asked_first(venv, cpu_index):
    result, pip_calls = make_torch(venv, f"TORCH_CPU_INDEX={cpu_index}")
    assert result.returncode == 0, result.stderr
    assert pip_calls == [f"install --quiet --index-url {cpu_index} torch==2.13.0"]
    import torch

    assert f"installed torch {torch.__version__} - CUDA {torch.version.cuda or 'none (CPU build)'}" in result.stdout
    assert list(venv.glob("bin/.torch-*")) == [venv / "bin" / ".torch-cpu-2.13.0"]


@pytest.mark.integration
def test_an_unreachable_cpu_index_falls_back_to_pips_own_indexes_at_once(venv):
    unreachable = closed_port_url()
    started = time.monotonic()
    result, pip_calls = make_torch(venv, f"TORCH_CPU_INDEX={unreachable}")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 30
    assert f"{unreachable} cannot be reached; installing what pip's own indexes serve" in result.stdout
    assert pip_calls == ["install --quiet torch==2.13.0"]
    assert "installed torch" in result.stdout


@pytest.mark.integration
def test_with_a_gpu_pypis_cuda_build_and_switching_builds_reinstalls(venv, cpu_index):
    result, pip_calls = make_torch(venv, f"TORCH_CPU_INDEX={cpu_index}", gpu=True)
    assert result.returncode == 0 and "(TORCH_BUILD=cuda)" in result.stdout
    assert pip_calls == ["install --quiet torch==2.13.0"]
    result, pip_calls = make_torch(venv, f"TORCH_CPU_INDEX={cpu_index}", "TORCH_BUILD=cpu", gpu=True)
    assert result.returncode == 0
    assert pip_calls[1:] == ["uninstall --quiet -y torch", f"install --quiet --index-url {cpu_index} torch==2.13.0"]
    result, _ = make_torch(venv, "TORCH_BUILD=gpu")
    assert result.returncode != 0 and "TORCH_BUILD must be cpu, cuda or pypi, not 'gpu'" in result.stderr
