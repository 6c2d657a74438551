"""Where a process trains: device, precision (bf16 detection), threads, the torchrun process group, seeds,
and the CPU memory helpers (glibc's malloc_trim, madvise on memory-mapped weights)."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import random
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dlfa.engine.spec import JobSpec
from dlfa.errors import ConfigError

ONEDNN_CACHE_CAPACITY = 16
MADV_RANDOM = 1  # <sys/mman.h>
STEP_TRIM_FREE_BYTES = 384 * 2**20  # a training step gives the heap back only when it holds this much free


@dataclass
class Runtime:
    """Where this process trains. amp_dtype: bf16 autocast or None (fp32)."""

    device: torch.device
    amp_dtype: torch.dtype | None
    rank: int = 0
    world: int = 1
    owns_process_group: bool = False  # joined by setup_runtime, so left by run_job

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def precision(self) -> str:
        return "bf16" if self.amp_dtype is not None else "fp32"


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_has_bf16() -> bool:
    """Whether the CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere bf16 is slower than fp32."""
    flags = _cpuinfo()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def hardware_name(device: torch.device) -> str:
    """What a run ran on (the process that finishes it), for its record: e.g. 'Intel(R) Xeon(R) Processor,
    2 threads, torch 2.13.0+cpu'. Processors differ in the last bits of their bf16 kernels, which training can
    amplify, so runs of one spec on different machines need not agree exactly."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        models = [line.split(":", 1)[1].strip() for line in _cpuinfo().splitlines() if line.startswith("model name")]
        threads = torch.get_num_threads()
        name = f"{models[0] if models else platform.processor() or 'unknown CPU'}, {threads} thread" + \
            ("s" if threads > 1 else "")
    return f"{name}, torch {torch.__version__}"


def uses_cuda(device: str) -> bool:
    """Whether a spec's device ("auto", "cpu", "cuda") trains on a GPU here."""
    return device == "cuda" or (device == "auto" and torch.cuda.is_available())


def native_precision(device: str = "auto") -> str:
    """What precision "auto" computes in on `device` ("auto", "cpu", "cuda") here: "bf16" where it is native (a
    GPU that supports it, a CPU with AVX512-BF16 or AMX), else "fp32"."""
    if uses_cuda(device):
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_bf16() else "fp32"


def setup_runtime(spec: JobSpec) -> Runtime:
    """Pick the device and precision; join the process group when torchrun started several processes."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = uses_cuda(spec.device)
    if use_cuda and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but torch sees no GPU; use --device cpu or auto")
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if not use_cuda:
        # oneDNN keeps a compiled kernel per matmul shape (1024 by default); with bf16 and batches of changing
        # shapes they hold ~200 MB. Read when oneDNN first runs, so this works in a fresh worker process.
        os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(ONEDNN_CACHE_CAPACITY))
    if use_cuda:
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        use_deterministic_cuda_kernels()
    joins = world > 1 and not torch.distributed.is_initialized()
    if joins:
        torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
    bf16 = spec.precision == "bf16" or (spec.precision == "auto" and native_precision(spec.device) == "bf16")
    return Runtime(device, torch.bfloat16 if bf16 else None, rank, world, joins)


def use_deterministic_cuda_kernels() -> None:
    """Deterministic GPU kernels, so that one spec run twice on one GPU gives identical metrics: the default
    kernels add in varying order (the word embeddings' backward, cuBLAS's split reductions), and two bf16 runs on
    an H200 differed by up to 0.15 points; with these they were identical (bench/gpu_check.sh). Strict: with
    warn_only, attention's fused backward (memory-efficient, cuDNN) stays non-deterministic and only warns; an
    operation with no deterministic kernel stops the job with torch's error naming it. cuBLAS reads its
    workspace setting when first used, which in a job's process is after this."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)


def free_heap_bytes() -> int | None:
    """Bytes the heap holds free (glibc's mallinfo2, over all arenas); None without glibc 2.33 or later."""
    if _LIBC is None or not hasattr(_LIBC, "mallinfo2"):
        return None
    return _LIBC.mallinfo2().fordblks


def release_memory(after_step: bool = False) -> None:
    """Give freed heap memory back to the OS (glibc's malloc_trim). Batches of changing shapes otherwise leave
    the CPU process holding free, fragmented heap, which raises its peak memory; but each trim makes the next
    batch fault its pages in again, so after a training step it trims only when the heap holds at least
    STEP_TRIM_FREE_BYTES free (after loading and evaluations: always)."""
    if _LIBC is None:
        return
    if after_step:
        free = free_heap_bytes()
        if free is not None and free < STEP_TRIM_FREE_BYTES:
            return
    _LIBC.malloc_trim(0)


def advise_random_access(tensor: torch.Tensor) -> None:
    """Tell the kernel that `tensor`'s pages are read at random (madvise MADV_RANDOM). The weights of a
    safetensors file are mapped from the file, and a lookup of one word-embedding row would otherwise read
    ahead its neighbours: within a few dozen batches the whole word-embedding matrix would sit in memory
    although training touches a few thousand rows."""
    if _LIBC is None:
        return
    page = os.sysconf("SC_PAGE_SIZE")
    start = tensor.data_ptr() // page * page
    _LIBC.madvise(ctypes.c_void_p(start), ctypes.c_size_t(tensor.data_ptr() + tensor.nbytes - start), MADV_RANDOM)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]


def _glibc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    if not hasattr(libc, "malloc_trim"):
        return None
    if hasattr(libc, "mallinfo2"):
        libc.mallinfo2.restype = _MallInfo2
    return libc


_LIBC = _glibc()


def broadcast_flag(flag: bool, runtime: Runtime) -> bool:
    """Rank 0's `flag` on every rank (a collective under DDP; the flag itself when alone)."""
    if runtime.world == 1:
        return flag
    tensor = torch.tensor([float(flag)], device=runtime.device if runtime.device.type == "cuda" else "cpu")
    torch.distributed.broadcast(tensor, 0)
    return bool(tensor.item())


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # all devices


def name_seed(seed: int, name: str) -> int:
    """A seed for what belongs to `name` (a task's head, its data order): the same whatever came before it."""
    return seed * 2**32 + zlib.crc32(name.encode())

