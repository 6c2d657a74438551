"""dlfa.engine.runtime: which precision a job computes in ("auto" is bf16 only where the device computes it
natively, so a job never runs emulated bf16; an explicit precision is kept), deterministic kernels on a GPU, and
when a CPU step gives the heap back."""
import os

import pytest
import torch

from dlfa.engine import runtime
from dlfa.engine.spec import JobSpec


@pytest.fixture
def machine(monkeypatch):
    """Sets what this process sees: a GPU (with or without bf16) and whether the CPU has native bf16."""
    def set_machine(gpu: bool, gpu_bf16: bool, cpu_bf16: bool) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: gpu_bf16)
        monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: cpu_bf16)
    return set_machine


def test_auto_is_bf16_only_where_the_device_computes_it_natively(machine):
    machine(gpu=False, gpu_bf16=False, cpu_bf16=True)
    assert [runtime.native_precision(d) for d in ("auto", "cpu", "cuda")] == ["bf16", "bf16", "fp32"]
    machine(gpu=False, gpu_bf16=False, cpu_bf16=False)
    assert [runtime.native_precision(d) for d in ("auto", "cpu")] == ["fp32", "fp32"]
    machine(gpu=True, gpu_bf16=True, cpu_bf16=False)
    assert [runtime.native_precision(d) for d in ("auto", "cpu", "cuda")] == ["bf16", "fp32", "bf16"]
    machine(gpu=True, gpu_bf16=False, cpu_bf16=True)
    assert runtime.native_precision("auto") == "fp32"  # an old GPU: fp32 on it, whatever the CPU does


@pytest.mark.parametrize("precision, cpu_bf16, expected", [
    ("auto", True, "bf16"), ("auto", False, "fp32"), ("fp32", True, "fp32"), ("bf16", False, "bf16")])
def test_a_cpu_job_computes_in_its_specs_precision_or_the_native_one(machine, precision, cpu_bf16, expected):
    machine(gpu=False, gpu_bf16=False, cpu_bf16=cpu_bf16)
    spec = JobSpec(task="udpos", eval_languages=("de",), device="cpu", precision=precision)
    assert runtime.setup_runtime(spec).precision == expected


def test_a_gpu_job_uses_deterministic_kernels_and_a_cpu_job_does_not(machine, monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    machine(gpu=False, gpu_bf16=False, cpu_bf16=False)
    runtime.setup_runtime(JobSpec(task="udpos", eval_languages=("de",), device="cpu"))
    assert not torch.are_deterministic_algorithms_enabled() and "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    machine(gpu=True, gpu_bf16=True, cpu_bf16=False)
    try:
        assert runtime.setup_runtime(JobSpec(task="udpos", eval_languages=("de",), device="cuda")).device.type == "cuda"
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.is_deterministic_algorithms_warn_only_enabled()  # warn_only leaves attention's backward as is
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(False)


class RecordingLibc:
    """Stands in for glibc: a heap holding `free` bytes free, and the malloc_trim calls made."""

    def __init__(self, free: int):
        self.free, self.trims = free, 0

    def mallinfo2(self):
        return runtime._MallInfo2(fordblks=self.free)

    def malloc_trim(self, pad: int) -> int:
        self.trims += 1
        return 1


def test_a_training_step_gives_the_heap_back_only_past_the_threshold(monkeypatch):
    libc = RecordingLibc(free=runtime.STEP_TRIM_FREE_BYTES - 1)
    monkeypatch.setattr(runtime, "_LIBC", libc)
    runtime.release_memory(after_step=True)
    assert libc.trims == 0  # below the threshold: the next batch reuses the heap without faulting pages in
    runtime.release_memory()
    assert libc.trims == 1  # after evaluations and loading: always
    libc.free = runtime.STEP_TRIM_FREE_BYTES
    runtime.release_memory(after_step=True)
    assert libc.trims == 2

