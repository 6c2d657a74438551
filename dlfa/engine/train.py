"""One training entry point: `run_job(spec, out_dir)` trains and evaluates every unit of a JobSpec.

    for each unit (aggregation × fusion layer × learning rate × seed) of the spec → out_dir/<unit_name>/
        stages: intermediate tasks (English; one after another, or one mixture) then the target task,
                each with the same budget (max_steps, or epochs over max_train_examples)
        each step: gradient_accumulation micro-batches (one task each) → clip → AdamW, linear warm-up/decay
        target stage: English dev at each epoch end (or every eval_every steps), best state kept; with
                      patience, stops once dev has not improved for that many evaluations (max_epochs the cap)
        → zero-shot test metrics per language (bootstrap CI) of the best dev state, fusion-weight statistics,
          the convergence point, the code version, results.json
    out_dir/results.json: the spec, per-language metrics (mean over seeds), every run, a layer × language grid,
    the learning rate chosen per configuration when the spec holds a grid
    out_dir/<unit_name>/spec.json: the unit's settings; a folder holding another run's settings is refused

Fine-tuning feeds token ids through the encoder; probing (spec.probe, dlfa.engine.probe) feeds cached hidden
states to the aggregation + head. Both run through the same loop: a dataset gives batches, `net(**batch)`
gives a DlfaOutput.

Checkpoints (every checkpoint_every steps, when stopped, and after training) hold safetensors for the
model, the optimizer and the best state, and JSON for the rest (stage, step, data order, RNG states): a
resumed run replays the same batches with the same dropout masks. Nothing is pickled. Under torchrun
(WORLD_SIZE > 1) each global batch is split across ranks, DistributedDataParallel averages the gradients,
and rank 0 evaluates and writes every file. The command line (`python -m dlfa train`) and the job worker
(dlfa.jobs.worker, also under torchrun) call `run_job`.
"""
from __future__ import annotations

import base64
import ctypes
import ctypes.util
import gc
import json
import math
import os
import platform
import random
import shutil
import tempfile
import time
import zlib
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dlfa.engine.callbacks import Callback, CallbackList, Progress, TensorBoardCallback
from dlfa.code_version import code_version
from dlfa.errors import ConfigError, DlfaError
from dlfa.engine.evaluate import autocast, evaluate_dataset, predict_dataset, predictions_path, to_device
from dlfa.model.fusion import uses_batch_statistics
from dlfa.engine.spec import JobSpec
from dlfa.engine.metrics import mean_interval, score
from dlfa.model.modeling import WEIGHTS_FILE, DlfaConfig, DlfaModel, HeadConfig
from dlfa.data.base import IGNORE_INDEX, EncodedSplit, TaskInfo
from dlfa.results import (COMPLETED, RESULTS_FILE, RUNNING, STOPPED, JobResult, LanguageMetric, RunResult,
                          read_job_results, read_results, write_results)

MEGA_BATCH = 50  # length grouping: sort within windows of 50 batches
LOG_EVERY = 10  # steps between log lines and loss-history points
# On the CPU a micro-batch runs in slices of at most this many (padded) tokens, each cut to its longest row:
# the encoder's activations for backward grow with the tokens (about 0.6 MB each on e5-small), so a batch of 32
# long sentences would hold 2 GB of them. The loss and gradient are the batch's (an aggregation with batch
# statistics sees the whole batch: backward_whole_batch). 512 tokens keep a 1,000-sentence fine-tune under
# 1.5 GB; 256 would save ~100 MB and cost ~25% speed (more, smaller matmuls).
CPU_TOKENS_PER_SLICE = 512
ONEDNN_CACHE_CAPACITY = 16
MADV_RANDOM = 1  # <sys/mman.h>
UNIT_SPEC_FILE = "spec.json"  # in each unit folder: the settings its checkpoints and results belong to


# ----------------------------------------------------------------------------------------------------
# Runtime: device, precision, processes


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


def setup_runtime(spec: JobSpec) -> Runtime:
    """Pick the device and precision; join the process group when torchrun started several processes."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = spec.device == "cuda" or (spec.device == "auto" and torch.cuda.is_available())
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
    joins = world > 1 and not torch.distributed.is_initialized()
    if joins:
        torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
    native_bf16 = torch.cuda.is_bf16_supported() if use_cuda else cpu_has_bf16()
    bf16 = spec.precision == "bf16" or (spec.precision == "auto" and native_bf16)
    return Runtime(device, torch.bfloat16 if bf16 else None, rank, world, joins)


def release_memory() -> None:
    """Give freed heap memory back to the OS (glibc's malloc_trim). Batches of changing shapes otherwise leave
    the CPU process holding free, fragmented heap: hundreds of MB more peak RSS on e5-small."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def advise_random_access(tensor: torch.Tensor) -> None:
    """Tell the kernel that `tensor`'s pages are read at random (madvise MADV_RANDOM). The weights of a
    safetensors file are mapped from the file, and a lookup of one word-embedding row would otherwise read
    ahead its neighbours: within a few dozen batches the whole 384 MB matrix of the embedded encoder sits in
    memory although training touches a few thousand rows."""
    if _LIBC is None:
        return
    page = os.sysconf("SC_PAGE_SIZE")
    start = tensor.data_ptr() // page * page
    _LIBC.madvise(ctypes.c_void_p(start), ctypes.c_size_t(tensor.data_ptr() + tensor.nbytes - start), MADV_RANDOM)


def _glibc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _glibc()


def slice_bounds(batch: dict, max_tokens: int | None) -> list[tuple[int, int, int]]:
    """Row slices (start, end, width) of a batch of about `max_tokens` padded tokens each: at least 2 rows
    (the fusion module's sentence-level batch norm needs 2; a single leftover row joins the slice before it),
    each cut to its longest row. One slice, the whole batch, when it fits or max_tokens is None."""
    if batch["attention_mask"].dim() == 3:  # multiple choice, B × C × T: a question's choices share one softmax
        return [(0, *batch["attention_mask"].shape[::2])]
    rows, length = batch["attention_mask"].shape
    per_slice = max(2, (max_tokens or 0) // length)
    if max_tokens is None or per_slice >= rows:
        return [(0, rows, length)]
    starts = list(range(0, rows, per_slice))
    if rows - starts[-1] == 1:
        starts.pop()
    return [(start, end, int(batch["attention_mask"][start:end].sum(1).max()))
            for start, end in zip(starts, [*starts[1:], rows])]


def batch_rows(batch: dict, start: int, end: int, width: int) -> dict:
    """Rows start…end of a batch, its B × T tensors cut to the first `width` positions."""
    length = batch["attention_mask"].shape[1]

    def part(value):
        if isinstance(value, tuple):
            return tuple(part(v) for v in value)
        if not isinstance(value, torch.Tensor):
            return value
        rows_of_value = value[start:end]
        return rows_of_value[:, :width] if value.dim() >= 2 and value.shape[1] == length else rows_of_value

    return {key: part(value) for key, value in batch.items()}


def token_slices(batch: dict, max_tokens: int | None) -> list[tuple[dict, float]]:
    """The batch in row slices (slice_bounds), each with the weight of its share of the loss (its labelled
    items over the batch's), so that the weighted slice losses add up to the batch loss: [(slice, weight)];
    the batch itself with weight 1 when it fits. Slices with nothing labelled are dropped."""
    bounds = slice_bounds(batch, max_tokens)
    if len(bounds) == 1:
        return [(batch, 1.0)]
    rows = batch["attention_mask"].shape[0]
    labelled = (batch["labels"] != IGNORE_INDEX).reshape(rows, -1).sum(1)
    total = max(int(labelled.sum()), 1)
    slices = [(batch_rows(batch, start, end, width), int(labelled[start:end].sum()) / total)
              for start, end, width in bounds]
    return [(piece, weight) for piece, weight in slices if weight > 0] or [(batch, 1.0)]


def backward_whole_batch(model: DlfaModel, batch: dict, max_tokens: int, scale: float, runtime: "Runtime") -> float:
    """The loss of `batch` (returned) and its gradients × scale (added to .grad), with the encoder run in row
    slices of about max_tokens tokens but the aggregation and the head run on the whole batch at once.

    Why: DLFA's batch norm normalizes each token with statistics over all real tokens of the batch, so an
    aggregation run per slice computes other outputs and gradients than for the batch it was given (and only
    DLFA is affected). Gathering the statistics in a first pass and normalizing the slices with them would
    still leave out the gradient that flows through the statistics. So the slicing stops at the encoder:
      1. each slice runs through the encoder without a graph; its hidden states (L + 1 × rows × width × E)
         fill the whole batch's L + 1 × B × T × E (positions past a slice's width are padding: zeros, masked
         everywhere downstream);
      2. aggregation + head run on the whole batch; backward gives the loss's gradient w.r.t. the hidden states
         and the aggregation's and head's parameters; the batch norm's running statistics are updated once;
      3. each slice runs through the encoder again with the RNG state of step 1 (the same dropout masks) and
         back-propagates its rows of those gradients.
    Loss and gradients equal the unsliced batch's up to float summation order; the price is one more encoder
    forward (without a graph) per batch."""
    bounds = slice_bounds(batch, max_tokens)
    rows, length = batch["attention_mask"].shape

    def encode(start: int, end: int, width: int) -> tuple[torch.Tensor, ...]:
        part = batch_rows(batch, start, end, width)
        with autocast(runtime.device, runtime.amp_dtype):
            return model.encode(part["input_ids"], part["attention_mask"], part.get("token_type_ids"))

    rng_states, layers = [], []
    with torch.no_grad():
        for start, end, width in bounds:
            rng_states.append(torch.get_rng_state())
            hidden = encode(start, end, width)
            layers = layers or [h.new_zeros(rows, length, h.shape[-1]) for h in hidden]
            for whole, part in zip(layers, hidden):
                whole[start:end, :width] = part
    layers = [h.requires_grad_() for h in layers]
    with autocast(runtime.device, runtime.amp_dtype):
        loss = model.classify(tuple(layers), batch["attention_mask"], batch["task"], batch["labels"]).loss
    (loss * scale).backward()
    used = [i for i, h in enumerate(layers) if h.grad is not None]
    for (start, end, width), rng in zip(bounds, rng_states):
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(rng)
            hidden = encode(start, end, width)
        pairs = [(hidden[i], layers[i].grad[start:end, :width]) for i in used if hidden[i].requires_grad]
        torch.autograd.backward([h for h, _ in pairs], [g for _, g in pairs])
    return loss.item()


def backward_batch(net: nn.Module, model: DlfaModel, batch: dict, max_tokens: int | None, scale: float,
                   runtime: "Runtime", sync: bool = True) -> float:
    """The loss of `batch` (returned) and its gradients × scale (added to .grad), in token slices when
    max_tokens is set (slice_bounds): how the engine slices a batch changes neither. An aggregation with batch
    statistics sees the whole batch (backward_whole_batch); the others run per slice with weighted losses.
    Under DDP (`net` wrapped) the gradients are all-reduced with the last slice when `sync`; there each
    process's batch norm sees its share of the batch, per slice (as in DDP without SyncBatchNorm)."""
    if (runtime.world == 1 and max_tokens is not None and uses_batch_statistics(model.aggregation)
            and len(slice_bounds(batch, max_tokens)) > 1):
        return backward_whole_batch(model, batch, max_tokens, scale, runtime)
    slices = token_slices(batch, max_tokens)
    total = 0.0
    for index, (part, weight) in enumerate(slices):
        synced = runtime.world == 1 or (sync and index == len(slices) - 1)
        with net.no_sync() if not synced else nullcontext():
            with autocast(runtime.device, runtime.amp_dtype):
                loss = net(**part).loss
            (loss * weight * scale).backward()
        total += loss.item() * weight
    return total


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # all devices


def name_seed(seed: int, name: str) -> int:
    """A seed for what belongs to `name` (a task's head, its data order): the same whatever came before it."""
    return seed * 2**32 + zlib.crc32(name.encode())


def _gather_bytes(state: torch.Tensor, runtime: Runtime) -> list[str]:
    """Every rank's RNG state (a uint8 tensor of fixed size) as base64 strings, rank order."""
    if runtime.world == 1:
        return [base64.b64encode(state.numpy().tobytes()).decode()]
    local = state.to(runtime.device if runtime.device.type == "cuda" else "cpu")
    gathered = [torch.empty_like(local) for _ in range(runtime.world)]
    torch.distributed.all_gather(gathered, local)
    return [base64.b64encode(t.cpu().numpy().tobytes()).decode() for t in gathered]


def _bytes_tensor(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8)


def rng_state(runtime: Runtime) -> dict:
    """The RNG states as JSON: Python's and NumPy's (rank 0), torch's and CUDA's (per rank)."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": [version, list(internal), gauss], "numpy": [name, keys.tolist(), pos, has_gauss, cached],
             "torch": _gather_bytes(torch.get_rng_state(), runtime)}
    if runtime.device.type == "cuda":
        state["cuda"] = _gather_bytes(torch.cuda.get_rng_state(runtime.device), runtime)
    return state


def set_rng_state(state: dict, runtime: Runtime) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(_bytes_tensor(state["torch"][runtime.rank]))
    if runtime.device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(_bytes_tensor(state["cuda"][runtime.rank]), runtime.device)


# ----------------------------------------------------------------------------------------------------
# Data: padded batches of token ids, length-grouped order


class EncodedDataset:
    """An EncodedSplit stored flat (N_tokens ids + offsets) and served as dynamically padded batches.

    collate(indices) -> {input_ids B × T, attention_mask B × T, labels B (sentence, pair) or B × T (token),
    token_type_ids B × T when the tokenizer makes them, task}: the keyword arguments of DlfaModel.forward.
    """

    def __init__(self, split: EncodedSplit, pad_token_id: int):
        features = split.features
        self.task, self.language, self.split = split.task, split.language, split.split
        self.pad_token_id = pad_token_id
        self.truncated = split.truncated
        self.lengths = np.array([len(f["input_ids"]) for f in features], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        self.input_ids = np.fromiter((i for f in features for i in f["input_ids"]), np.int64, self.offsets[-1])
        self.token_level = bool(features) and isinstance(features[0]["labels"], list)
        if self.token_level:
            self.labels = np.fromiter((y for f in features for y in f["labels"]), np.int64, self.offsets[-1])
        else:
            self.labels = np.array([f["labels"] for f in features], dtype=np.int64)
        self.token_type_ids = (
            np.fromiter((t for f in features for t in f["token_type_ids"]), np.int64, self.offsets[-1])
            if features and "token_type_ids" in features[0] else None
        )

    def __len__(self) -> int:
        return len(self.lengths)

    def label_counts(self, num_labels: int) -> np.ndarray:
        """How often each label occurs (labeled sub-words for token tasks)."""
        return np.bincount(self.labels[self.labels != IGNORE_INDEX], minlength=num_labels)

    def _padded(self, flat: np.ndarray, indices: np.ndarray, width: int, fill: int) -> torch.Tensor:
        out = np.full((len(indices), width), fill, dtype=np.int64)
        for row, i in enumerate(indices):
            out[row, : self.lengths[i]] = flat[self.offsets[i] : self.offsets[i + 1]]
        return torch.from_numpy(out)

    def collate(self, indices: np.ndarray) -> dict:
        width = int(self.lengths[indices].max())
        batch = {
            "input_ids": self._padded(self.input_ids, indices, width, self.pad_token_id),
            "attention_mask": torch.from_numpy((np.arange(width)[None] < self.lengths[indices][:, None]).astype(np.int64)),
            "labels": self._padded(self.labels, indices, width, IGNORE_INDEX) if self.token_level
            else torch.from_numpy(self.labels[indices]),
            "task": self.task,
        }
        if self.token_type_ids is not None:
            batch["token_type_ids"] = self._padded(self.token_type_ids, indices, width, 0)
        return batch


class MultipleChoiceDataset:
    """A multiple-choice EncodedSplit (C sequences per example) served as B × C × T batches.

    collate(indices) -> {input_ids B × C × T, attention_mask B × C × T, token_type_ids B × C × T when the
    tokenizer makes them, labels B (the gold choice), task}; `lengths` (N,) is each example's longest choice.
    """

    def __init__(self, split: EncodedSplit, pad_token_id: int):
        self.choices = len(split.features[0]["input_ids"]) if split.features else 0
        sequences = [{key: feature[key][choice] for key in ("input_ids", "token_type_ids") if key in feature}
                     | {"labels": feature["labels"]}
                     for feature in split.features for choice in range(self.choices)]
        self.sequences = EncodedDataset(EncodedSplit(split.task, split.language, split.split, sequences,
                                                     split.truncated), pad_token_id)
        self.task, self.language, self.split = split.task, split.language, split.split
        self.truncated = split.truncated
        self.labels = np.array([f["labels"] for f in split.features], dtype=np.int64)
        self.lengths = (self.sequences.lengths.reshape(-1, self.choices).max(1) if self.choices
                        else np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.labels)

    def label_counts(self, num_labels: int) -> np.ndarray:
        """How often each choice is the gold one."""
        return np.bincount(self.labels, minlength=num_labels)

    def collate(self, indices: np.ndarray) -> dict:
        rows = (np.asarray(indices)[:, None] * self.choices + np.arange(self.choices)).ravel()
        flat = self.sequences.collate(rows)
        batch = {key: value.view(len(indices), self.choices, -1) for key, value in flat.items()
                 if key in ("input_ids", "attention_mask", "token_type_ids")}
        return batch | {"labels": torch.from_numpy(self.labels[indices]), "task": self.task}


def serve(split: EncodedSplit, pad_token_id: int, kind: str) -> "EncodedDataset | MultipleChoiceDataset":
    """The dataset that serves a split of a task of `kind` as batches."""
    return (MultipleChoiceDataset if kind == "multiple_choice" else EncodedDataset)(split, pad_token_id)


def length_grouped_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator,
                           min_size: int = 1) -> list[np.ndarray]:
    """Shuffle, cut into mega-batches of MEGA_BATCH × batch_size, sort each by length, cut into batches,
    shuffle the batches. Batches smaller than `min_size` (the tail, under DDP) are dropped."""
    order = rng.permutation(len(lengths))
    window = MEGA_BATCH * batch_size
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches += [b for b in np.array_split(chunk, range(batch_size, len(chunk), batch_size)) if len(b) >= min_size]
    return [batches[i] for i in rng.permutation(len(batches))]


class BatchStream:
    """Endless length-grouped batches over one dataset. Epoch e's order is a pure function of (seed, e), so
    the state {epoch, position} replays it exactly after a resume."""

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: list[int], min_size: int = 1,
                 epoch: int = 0, position: int = 0):
        self.lengths, self.batch_size, self.seed, self.min_size = lengths, batch_size, seed, min_size
        self.epoch, self.position = epoch, position
        self._batches = self._order()
        if not self._batches:
            raise ConfigError(f"{len(lengths)} training examples make no batch of {min_size}")

    def _order(self) -> list[np.ndarray]:
        rng = np.random.default_rng([*self.seed, self.epoch])
        return length_grouped_batches(self.lengths, self.batch_size, rng, self.min_size)

    def next(self) -> np.ndarray:
        if self.position == len(self._batches):
            self.epoch, self.position = self.epoch + 1, 0
            self._batches = self._order()
        self.position += 1
        return self._batches[self.position - 1]

    def state(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}


# ----------------------------------------------------------------------------------------------------
# Stages, optimizer, schedule


@dataclass
class Stage:
    """A training stage: one task, or a mixture of tasks (each batch from one task, drawn with `weights`)."""

    name: str
    tasks: tuple[str, ...]
    steps: int
    steps_per_epoch: int
    weights: tuple[float, ...] = (1.0,)


def plan_stages(spec: JobSpec, sizes: dict[str, int]) -> list[Stage]:
    """Intermediate stages (sequential: one per task; mixture: one over all) then the target task. Each stage
    trains max_steps, or epochs over its examples (a mixture: over all of its tasks' examples); with early
    stopping (spec.max_epochs) the target stage's cap is max_epochs instead."""
    per_step = spec.batch_size * spec.gradient_accumulation

    def stage(name: str, tasks: tuple[str, ...], weights: tuple[float, ...] = (1.0,), epochs: float | None = None) -> Stage:
        n = sum(sizes[t] for t in tasks)
        per_epoch = max(1, math.ceil(n / per_step))
        steps = max(1, math.ceil(epochs * n / per_step)) if epochs else \
            spec.max_steps or max(1, math.ceil(spec.epochs * n / per_step))
        return Stage(name, tasks, steps, per_epoch, weights)

    tasks = spec.intermediate_tasks
    if spec.intermediate_mode == "mixture" and len(tasks) > 1:
        counts = np.array([sizes[t] for t in tasks], dtype=np.float64)
        if spec.mixture_sampling == "temperature":
            counts = counts ** (1.0 / spec.mixture_temperature)
        intermediate = [stage("mixture:" + "+".join(tasks), tasks, tuple(counts / counts.sum()))]
    else:
        intermediate = [stage(t, (t,)) for t in tasks]
    return intermediate + [stage(spec.task, (spec.task,), epochs=spec.max_epochs)]


def build_optimizer(model: nn.Module, spec: JobSpec, learning_rate: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; no weight decay on biases and norm weights (1-D tensors)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": spec.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=learning_rate, fused=device.type in ("cpu", "cuda"))


def learning_rate_at(step: int, total: int, warmup: int, peak: float) -> float:
    """Linear warm-up over `warmup` steps, then linear decay to 0 at `total` (step counts from 0)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * max(0.0, (total - step) / max(1, total - warmup))


# ----------------------------------------------------------------------------------------------------
# Checkpoints: checkpoints/<name>/{model.safetensors, optimizer.safetensors, best.safetensors, state.json}
# and checkpoints/latest.json naming the newest complete one


def write_json(path: Path, data: dict) -> None:
    """Write JSON atomically (a temporary file, then os.replace), creating the folder when needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False))
    os.replace(tmp, path)


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The parameters and buffers training can change (frozen encoder parameters left out), detached clones."""
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k not in frozen}


def save_checkpoint(unit_dir: Path, name: str, model: DlfaModel, state: dict,
                    optimizer: torch.optim.Optimizer | None, best: dict[str, torch.Tensor] | None) -> Path:
    """Write a checkpoint into a temporary folder, rename it into place, then point latest.json at it."""
    from safetensors.torch import save_file

    root = unit_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    model.save_pretrained(staging)
    if optimizer is not None:
        saved = optimizer.state_dict()
        tensors = {f"{i}.{k}": v.detach().contiguous().cpu() for i, s in saved["state"].items() for k, v in s.items()}
        save_file(tensors, str(staging / "optimizer.safetensors"))
        state = {**state, "optimizer_groups": saved["param_groups"]}
    if best is not None:
        save_file({k: v.contiguous().cpu() for k, v in best.items()}, str(staging / "best.safetensors"))
    (staging / "state.json").write_text(json.dumps(state, indent=1, allow_nan=False))
    final = root / name
    shutil.rmtree(final, ignore_errors=True)
    os.replace(staging, final)
    write_json(root / "latest.json", {"name": name})
    for old in root.iterdir():
        if old.is_dir() and old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(unit_dir: Path) -> Path | None:
    pointer = unit_dir / "checkpoints" / "latest.json"
    if not pointer.is_file():
        return None
    path = pointer.parent / json.loads(pointer.read_text())["name"]
    return path if (path / "state.json").is_file() else None


def check_loss_finite(loss: float, stage: str, step: int, unit_dir: Path) -> None:
    """Raise DlfaError when the loss is NaN or infinite: training cannot recover from it, so the run ends before
    a checkpoint of the broken weights replaces the last good one."""
    if math.isfinite(loss):
        return
    latest = latest_checkpoint(unit_dir)
    kept = f"the last good checkpoint is kept at {latest}" if latest else "no checkpoint had been written yet"
    raise DlfaError(f"loss became {'NaN' if math.isnan(loss) else 'infinite'} at stage {stage} step {step}; {kept} "
                    "(a lower learning rate may help)")


def load_tensors(path: Path, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path), device=str(device))


def load_optimizer(optimizer: torch.optim.Optimizer, path: Path, groups: list[dict], device: torch.device) -> None:
    state: dict[int, dict] = {}
    for key, tensor in load_tensors(path / "optimizer.safetensors", device).items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = tensor.cpu() if name == "step" else tensor
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# ----------------------------------------------------------------------------------------------------
# One unit


@dataclass
class UnitData:
    """What a unit trains and evaluates on. train: task -> English training data of every stage's tasks;
    dev: the target task in the training language (None when there is none); test: language -> data."""

    tasks: dict[str, TaskInfo]
    train: dict[str, object]
    dev: object | None
    test: dict[str, object]
    majority: int  # the most frequent training label of the target task
    truncated: dict[str, int] = field(default_factory=dict)  # language -> test examples cut at max_length

    def map(self, to_dataset) -> "UnitData":
        """The same data with `to_dataset` applied to every dataset (e.g. EncodedDataset -> cached hidden states)."""
        return replace(self, train={name: to_dataset(d) for name, d in self.train.items()},
                       dev=to_dataset(self.dev) if self.dev is not None else None,
                       test={lang: to_dataset(d) for lang, d in self.test.items()})


def load_job_data(spec: JobSpec, tokenizer) -> UnitData:
    """Read and encode every split the units of a job need (the same for all of them) through the task registry."""
    from dlfa.data.registry import DataSource, available_languages, get_task, load_encoded

    source = DataSource.resolve(spec.data_root)

    def encoded(task: str, language: str, split: str, limit: int | None) -> EncodedDataset:
        data = load_encoded(task, language, split, source, tokenizer, spec.max_length, max_examples=limit)
        return serve(data, tokenizer.pad_token_id, get_task(task).kind)

    tasks = {name: get_task(name) for name in (*spec.intermediate_tasks, spec.task)}
    train = {name: encoded(name, "en" if name != spec.task else spec.train_language, "train", spec.max_train_examples)
             for name in tasks}
    has_dev = "dev" in available_languages(spec.task, source).get(spec.train_language, {})
    test = {lang: encoded(spec.task, lang, "test", spec.max_eval_examples) for lang in spec.eval_languages}
    return UnitData(
        tasks=tasks,
        train=train,
        dev=encoded(spec.task, spec.train_language, "dev", spec.max_eval_examples) if has_dev else None,
        test=test,
        majority=int(train[spec.task].label_counts(len(tasks[spec.task].labels)).argmax()),
        truncated={lang: data.truncated for lang, data in test.items()},
    )


def config_name(spec: JobSpec) -> str:
    """A unit's configuration without its seed: `dlfa-L6`, `last`."""
    return spec.unit_name().rsplit("-s", 1)[0]


class UnitTrainer:
    """Trains, selects and evaluates one unit. `net(**batch)` runs the model on a batch of the unit's data
    (the model itself, or the probe's cached-feature front end); `train_net` is `net`, DDP-wrapped when
    distributed."""

    def __init__(self, spec: JobSpec, unit_dir: Path, model: DlfaModel, net: nn.Module, data: UnitData,
                 runtime: Runtime, callbacks: CallbackList, position: tuple[int, int]):
        self.spec, self.unit_dir, self.model, self.net, self.data = spec, unit_dir, model, net, data
        self.runtime, self.callbacks = runtime, callbacks
        self.unit_index, self.units = position
        self.name = spec.unit_name()
        self.stages = plan_stages(spec, {t: len(d) for t, d in data.train.items()})
        self.learning_rate = spec.probe_learning_rate if spec.probe else spec.learning_rate
        self.train_net = net
        if runtime.world > 1:
            device_ids = [runtime.device.index] if runtime.device.type == "cuda" else None
            self.train_net = nn.parallel.DistributedDataParallel(
                net, device_ids=device_ids, find_unused_parameters=len(model.heads) > 1)
        if spec.patience and data.dev is None:
            raise ConfigError(f"early stopping (patience) needs an English dev set: task {spec.task} has no "
                              f"'{spec.train_language}' dev split")
        self.best: dict[str, torch.Tensor] | None = None
        # window: losses since the last log; evals_since_best: dev evaluations without improvement;
        # target_steps: steps the target stage trained (fewer than planned when it stopped early)
        self.state = {"stage": 0, "step": 0, "streams": {}, "best_score": None, "best_step": None,
                      "evals_since_best": 0, "target_steps": None, "train_seconds": 0.0,
                      "window": [], "history": {"loss": [], "dev": []}}

    # -- bookkeeping ---------------------------------------------------------------------------------
    def log(self, message: str) -> None:
        if self.runtime.is_main:
            self.callbacks.on_log(f"[{self.name}] {message}")

    def progress(self, stage: str, step: int, total: int, loss: float | None, fraction_of_unit: float) -> None:
        if self.runtime.is_main:
            self.callbacks.on_progress(Progress(self.unit_index + 1, self.units, self.name, stage, step, total, loss,
                                                (self.unit_index + fraction_of_unit) / self.units))

    def should_stop(self) -> bool:
        """Rank 0 asks the callbacks; under DDP every rank gets its answer."""
        stop = self.runtime.is_main and self.callbacks.should_stop()
        if self.runtime.world > 1:
            flag = torch.tensor([float(stop)], device=self.runtime.device if self.runtime.device.type == "cuda" else "cpu")
            torch.distributed.broadcast(flag, 0)
            stop = bool(flag.item())
        return stop

    def checkpoint(self, optimizer: torch.optim.Optimizer | None) -> None:
        rng = rng_state(self.runtime)  # a collective under DDP: every rank calls it
        if self.runtime.is_main:
            state = {**self.state, "rng": rng}
            name = f"stage{self.state['stage']}-step{self.state['step']:07d}"
            path = save_checkpoint(self.unit_dir, name, self.model, state, optimizer, self.best)
            self.callbacks.on_checkpoint(self.name, str(path))

    def restore(self) -> torch.optim.Optimizer | None:
        """Load the latest checkpoint, if any; returns the optimizer of an interrupted stage."""
        path = latest_checkpoint(self.unit_dir)
        if path is None:
            return None
        saved = json.loads((path / "state.json").read_text())
        missing, unexpected = self.model.load_state_dict(load_tensors(path / WEIGHTS_FILE, self.runtime.device), strict=False)
        if unexpected or any(p.requires_grad for n, p in self.model.named_parameters() if n in missing):
            raise DlfaError(f"checkpoint {path} does not match this job's model; delete {self.unit_dir} to start over")
        if (path / "best.safetensors").is_file():
            self.best = load_tensors(path / "best.safetensors")
        optimizer = None
        if (path / "optimizer.safetensors").is_file():
            optimizer = build_optimizer(self.model, self.spec, self.learning_rate, self.runtime.device)
            load_optimizer(optimizer, path, saved.pop("optimizer_groups"), self.runtime.device)
        set_rng_state(saved.pop("rng"), self.runtime)
        self.state = {**self.state, **saved}  # checkpoints written before a key existed keep its default
        self.log(f"resumed from {path.name}")
        return optimizer

    # -- training ------------------------------------------------------------------------------------
    def _micro_batch(self, stage_index: int, stage: Stage, streams: dict[str, BatchStream], step: int, micro: int) -> dict:
        task = stage.tasks[0]
        if len(stage.tasks) > 1:  # the mixture's draw is a pure function of (seed, stage, step, micro-batch)
            rng = np.random.default_rng([self.spec.seeds[0], stage_index, step, micro])
            task = stage.tasks[rng.choice(len(stage.tasks), p=stage.weights)]
        indices = streams[task].next()[self.runtime.rank :: self.runtime.world]
        return to_device(self.data.train[task].collate(indices), self.runtime.device)

    def train_step(self, stage_index: int, stage: Stage, streams: dict[str, BatchStream], step: int,
                   optimizer: torch.optim.Optimizer, params: list[nn.Parameter]) -> float:
        """One optimizer step over gradient_accumulation micro-batches; returns the mean loss."""
        self.net.train()
        accumulation = self.spec.gradient_accumulation
        total = 0.0
        # probes run no encoder backward, so there is no activation memory to save
        max_tokens = CPU_TOKENS_PER_SLICE if self.runtime.device.type == "cpu" and not self.spec.probe else None
        for micro in range(accumulation):
            batch = self._micro_batch(stage_index, stage, streams, step, micro)
            total += backward_batch(self.train_net, self.model, batch, max_tokens, 1 / accumulation, self.runtime,
                                    sync=micro == accumulation - 1)
        if self.spec.max_grad_norm > 0:
            nn.utils.clip_grad_norm_(params, self.spec.max_grad_norm)
        warmup = math.ceil(self.spec.warmup_ratio * stage.steps)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate_at(step, stage.steps, warmup, self.learning_rate)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        self.release_cpu_memory()
        return total / accumulation

    def release_cpu_memory(self) -> None:
        if self.runtime.device.type == "cpu":
            release_memory()

    def dev_score(self) -> float:
        target = self.data.tasks[self.spec.task]
        gold, pred = predict_dataset(self.net, self.data.dev, self.runtime.device, self.runtime.amp_dtype)
        self.release_cpu_memory()
        return score(target.metric, gold, pred, list(target.labels))

    def select(self, step: int) -> None:
        """Evaluate on the English dev set (rank 0) and keep the state if it is the best so far."""
        if not self.runtime.is_main or self.data.dev is None:
            return
        value = self.dev_score()
        self.state["history"]["dev"].append([step, value])
        best = self.state["best_score"]
        if best is None or value > best:
            self.state["best_score"], self.best = value, trainable_state(self.model)
            self.state["best_step"], self.state["evals_since_best"] = step, 0
        else:
            self.state["evals_since_best"] += 1
        self.log(f"dev {self.data.tasks[self.spec.task].metric} {value:.2f} at step {step}"
                 + (" (best)" if self.state["best_score"] == value else f" (best {self.state['best_score']:.2f})"))

    def converged(self) -> bool:
        """Whether the English dev score has not improved for `patience` evaluations (rank 0 decides; under
        DDP every rank gets its answer)."""
        done = bool(self.spec.patience) and self.runtime.is_main and \
            self.state["evals_since_best"] >= self.spec.patience
        if self.runtime.world > 1:
            flag = torch.tensor([float(done)], device=self.runtime.device if self.runtime.device.type == "cuda" else "cpu")
            torch.distributed.broadcast(flag, 0)
            done = bool(flag.item())
        return done

    def train(self) -> bool:
        """Run (or finish) every stage. Returns False when stopped by a callback."""
        optimizer = self.restore()
        if self.state["stage"] == len(self.stages):
            return True  # trained already; interrupted while evaluating
        params = [p for p in self.model.parameters() if p.requires_grad]
        total_steps = sum(s.steps for s in self.stages)
        for stage_index in range(self.state["stage"], len(self.stages)):
            stage = self.stages[stage_index]
            optimizer = optimizer or build_optimizer(self.model, self.spec, self.learning_rate, self.runtime.device)
            streams = {task: BatchStream(self.data.train[task].lengths, self.spec.batch_size,
                                         [name_seed(self.spec.seeds[0], task)], self.runtime.world,
                                         **self.state["streams"].get(task, {}))
                       for task in stage.tasks}
            is_target = stage_index == len(self.stages) - 1
            eval_every = self.spec.eval_every or stage.steps_per_epoch
            done_before = sum(s.steps for s in self.stages[:stage_index])
            for step in range(self.state["step"], stage.steps):
                started = time.perf_counter()
                loss = self.train_step(stage_index, stage, streams, step, optimizer, params)
                check_loss_finite(loss, stage.name, step + 1, self.unit_dir)
                self.state["train_seconds"] += time.perf_counter() - started
                self.state["step"] = step + 1
                self.state["streams"] = {task: s.state() for task, s in streams.items()}
                self.state["window"].append(loss)
                if (step + 1) % LOG_EVERY == 0 or step + 1 == stage.steps:
                    mean = sum(self.state["window"]) / len(self.state["window"])
                    self.state["history"]["loss"].append([stage.name, step + 1, mean])
                    self.log(f"{stage.name} step {step + 1}/{stage.steps} loss {mean:.4f} "
                             f"lr {optimizer.param_groups[0]['lr']:.2e}")
                    self.state["window"] = []
                converged = False
                if is_target and ((step + 1) % eval_every == 0 or step + 1 == stage.steps):
                    self.select(step + 1)
                    converged = self.converged()
                    self.state["target_steps"] = step + 1
                if converged:
                    self.log(f"English dev did not improve for {self.spec.patience} evaluations: stopped at step "
                             f"{step + 1} of {stage.steps}, best at step {self.state['best_step']}")
                    break
                self.progress(stage.name, step + 1, stage.steps, loss, 0.9 * (done_before + step + 1) / total_steps)
                stop = self.should_stop()
                if stop or (step + 1) % self.spec.checkpoint_every == 0:
                    self.checkpoint(optimizer)
                if stop:
                    self.log(f"stopped at {stage.name} step {step + 1}; resume to continue")
                    return False
            self.state.update(stage=stage_index + 1, step=0, streams={})
            optimizer = None
        self.checkpoint(None)
        return True

    # -- evaluation ----------------------------------------------------------------------------------
    def evaluate(self) -> tuple[dict, dict]:
        """Zero-shot metrics per language and fusion statistics, with the best dev state loaded."""
        if self.best is not None:
            self.model.load_state_dict({k: v.to(self.runtime.device) for k, v in self.best.items()}, strict=False)
        target = self.data.tasks[self.spec.task]
        aggregation = self.model.config.aggregation
        metrics, per_language = {}, {}
        for i, (language, dataset) in enumerate(self.data.test.items()):
            metrics[language], fusion = evaluate_dataset(
                self.net, dataset, target, self.runtime.device, self.runtime.amp_dtype,
                self.spec.bootstrap_samples, self.spec.seeds[0], self.data.majority, with_fusion=aggregation == "dlfa",
                predictions_file=predictions_path(self.unit_dir, language))
            if fusion is not None:
                per_language[language] = fusion
            self.release_cpu_memory()
            m = metrics[language]
            interval = f" [{m['ci_low']:.2f}, {m['ci_high']:.2f}]" if m["ci_low"] is not None else ""
            self.log(f"test {language}: {m['metric']} {m['value']:.2f}{interval} (n={m['n']}, "
                     f"majority {m['majority']:.2f})")
            self.progress("eval", i + 1, len(self.data.test), None, 0.9 + 0.1 * (i + 1) / len(self.data.test))
        if aggregation == "dlfa":
            fusion_stats = {"aggregation": aggregation, "fusion_layer": self.model.config.fusion_layer,
                            "languages": per_language}
        elif aggregation == "scalar-mix":
            fusion_stats = {"aggregation": aggregation,
                            "layer_weights": torch.softmax(self.model.aggregation.scalars.detach().float(), 0).tolist()}
        else:
            fusion_stats = {"aggregation": aggregation}
        return metrics, fusion_stats

    def steps_trained(self) -> int:
        """Optimizer steps over all stages (the target stage's fewer when it stopped early)."""
        target = self.state["target_steps"] or self.stages[-1].steps
        return sum(s.steps for s in self.stages[:-1]) + target

    def convergence(self) -> dict:
        """Where the target stage's English dev score peaked (the state evaluated) and how long it trained."""
        target = self.stages[-1]
        trained = self.state["target_steps"] or target.steps
        best = self.state["best_step"]
        return {"best_step": best, "best_epoch": best / target.steps_per_epoch if best is not None else None,
                "steps_trained": trained, "epochs_trained": trained / target.steps_per_epoch,
                "step_cap": target.steps, "stopped_early": trained < target.steps, "patience": self.spec.patience,
                "dev_curve": self.state["history"]["dev"]}

    def run(self) -> RunResult:
        """Train (or resume), evaluate, save the model; returns the unit's results (status stopped/completed)."""
        spec, version = self.spec.to_dict(), code_version()
        base = {"device": str(self.runtime.device), "precision": self.runtime.precision,
                "world_size": self.runtime.world, "hardware": hardware_name(self.runtime.device),
                "threads": torch.get_num_threads(),
                "stages": [{"name": s.name, "tasks": list(s.tasks), "steps": s.steps} for s in self.stages]}
        if not self.train():
            return RunResult(spec, STOPPED, code_version=version,
                             extra={**base, "stage": self.state["stage"], "steps_done": self.state["step"],
                                    "train_seconds": self.state["train_seconds"]})
        started = time.perf_counter()
        metrics, fusion_stats = self.evaluate() if self.runtime.is_main else ({}, {})
        results = RunResult(
            spec, COMPLETED, {language: LanguageMetric(**m) for language, m in metrics.items()},
            dev_score=self.state["best_score"], dev_metric=self.data.tasks[self.spec.task].metric, model_dir="model",
            code_version=version,
            extra={**base, "fusion_stats": fusion_stats, "train_seconds": self.state["train_seconds"],
                   "eval_seconds": time.perf_counter() - started, "truncated": self.data.truncated,
                   "steps": self.steps_trained(), "convergence": self.convergence(), "history": self.state["history"]})
        if self.runtime.is_main:
            self.model.save_pretrained(self.unit_dir / "model")
            write_results(self.unit_dir, results)
            shutil.rmtree(self.unit_dir / "checkpoints", ignore_errors=True)
        return results


class JobInputs:
    """What every unit of a job shares: the encoder, checked out by each unit with its original weights restored
    from a copy of the parameters training can change (frozen word embeddings never change and are not copied; a
    job of one fine-tuning unit keeps no copy), and the encoded data. The tokenizer is dropped once the data is
    encoded: a 250k-piece vocabulary holds ~350 MB that training does not need."""

    def __init__(self, spec: JobSpec, freeze_word_embeddings: bool, reused: bool):
        from dlfa.model.encoders import load_encoder

        loaded = load_encoder(spec.encoder)
        self.encoder = loaded.model
        embeddings = self.encoder.get_input_embeddings().weight
        advise_random_access(embeddings)
        self.data = load_job_data(spec, loaded.tokenizer)
        del loaded
        gc.collect()
        release_memory()
        self.original = {name: p.detach().clone() for name, p in self.encoder.named_parameters()
                         if reused and not (freeze_word_embeddings and p is embeddings)}

    @torch.no_grad()
    def checkout_encoder(self) -> nn.Module:
        """The encoder with its parameters as loaded and all trainable."""
        for name, p in self.encoder.named_parameters():
            if name in self.original:
                p.copy_(self.original[name])
            p.requires_grad_(True)
        return self.encoder


def freezes_word_embeddings(spec: JobSpec, runtime: Runtime) -> bool:
    """spec.freeze_word_embeddings, or by default: frozen on the CPU, trained on a GPU."""
    if spec.freeze_word_embeddings is not None:
        return spec.freeze_word_embeddings
    return runtime.device.type == "cpu"


def build_unit(spec: JobSpec, runtime: Runtime, inputs: JobInputs) -> tuple[DlfaModel, nn.Module, UnitData]:
    """The model, the net that runs it on batches (the model, or the probe's cached-feature front end), and
    the data of one unit."""
    from dlfa.data.registry import get_task

    heads = {name: HeadConfig(info.kind, list(info.labels))
             for name, info in ((n, get_task(n)) for n in (*spec.intermediate_tasks, spec.task))}
    config = DlfaConfig(encoder=spec.encoder, heads=heads, aggregation=spec.aggregations[0],
                        fusion_layer=spec.fusion_layers[0] if spec.fusion_layers else None,
                        reduction=spec.reduction, freeze_word_embeddings=freezes_word_embeddings(spec, runtime),
                        standardize_features=spec.probe, pooling=spec.pooling)
    set_seed(spec.seeds[0])
    model = DlfaModel(config, inputs.checkout_encoder())
    for task, head in model.heads.items():  # each head's start: the same whatever aggregation or heads came first
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(name_seed(spec.seeds[0], task))
            head.reset_parameters()
    model.to(runtime.device)
    set_seed(spec.seeds[0])  # dropout masks: the same stream for every aggregation
    if spec.probe:
        from dlfa.engine.probe import FeatureNet, fit_standardization, hidden_state_dataset

        model.encoder.requires_grad_(False)
        data = inputs.data.map(lambda d: hidden_state_dataset(model, d, spec, runtime))
        fit_standardization(model, data.train.values())
        return model, FeatureNet(model), data
    return model, model, inputs.data


# ----------------------------------------------------------------------------------------------------
# The job


def summarize(spec: JobSpec, runs: list[RunResult], status: str, seconds: float) -> JobResult:
    """The job's results: its runs, the job-level metrics (one config: its run, or the mean over seeds with a
    t-interval over seeds) and, for sweeps over several configs, a grid: one row per config with dev and
    per-language values."""
    complete = [r for r in runs if r.completed]
    configs: dict[str, list[RunResult]] = {}
    for run in complete:
        configs.setdefault(config_name(JobSpec.from_dict(run.spec)), []).append(run)
    metrics: dict[str, LanguageMetric] = {}
    grid, extra = None, {}
    if len(configs) == 1:
        (group,) = configs.values()
        if len(group) == 1:
            metrics = group[0].metrics
        else:
            for language in spec.eval_languages:
                values = [r.metrics[language].value for r in group]
                mean, low, high = mean_interval(values)
                metrics[language] = LanguageMetric(group[0].metrics[language].metric, mean, low, high, len(values),
                                                   ci_over="seeds")
    elif configs:
        rows = []
        for name, group in configs.items():
            unit = JobSpec.from_dict(group[0].spec)
            values = {lang: float(np.mean([r.metrics[lang].value for r in group])) for lang in spec.eval_languages}
            devs = [r.dev_score for r in group if r.dev_score is not None]
            rows.append({"config": name, "aggregation": unit.aggregations[0],
                         "fusion_layer": unit.fusion_layers[0] if unit.fusion_layers else None,
                         "learning_rate": unit.learning_rate, "seeds": len(group),
                         "dev": float(np.mean(devs)) if devs else None, "values": values,
                         "mean": float(np.mean(list(values.values())))})
        grid = {"languages": list(spec.eval_languages), "rows": rows}
    if spec.learning_rates:
        extra["learning_rate_choice"] = choose_learning_rates(complete)
    return JobResult(spec.to_dict(), status, tuple(runs), metrics, grid, code_version(), seconds, extra)


def choose_learning_rates(runs: list[RunResult]) -> list[dict]:
    """Per configuration (aggregation, fusion layer) of a learning-rate grid: the rate with the best mean
    English dev score over its seeds (ties: the smaller rate), and every candidate's score (None: no dev)."""
    scores: dict[tuple, dict[float, list[float]]] = {}
    for run in runs:
        unit = JobSpec.from_dict(run.spec)
        key = (unit.aggregations[0], unit.fusion_layers[0] if unit.fusion_layers else None)
        devs = scores.setdefault(key, {}).setdefault(unit.learning_rate, [])
        if run.dev_score is not None:
            devs.append(run.dev_score)
    choices = []
    for (aggregation, layer), by_rate in scores.items():
        candidates = [{"learning_rate": rate, "dev": float(np.mean(devs)) if devs else None}
                      for rate, devs in sorted(by_rate.items())]
        scored = [c for c in candidates if c["dev"] is not None]
        chosen = max(scored, key=lambda c: c["dev"])["learning_rate"] if scored else None  # max keeps the first
        choices.append({"aggregation": aggregation, "fusion_layer": layer, "learning_rate": chosen,
                        "candidates": candidates})
    return choices


def claim_unit_dir(unit: JobSpec, unit_dir: Path, write: bool = True) -> None:
    """Record the unit's spec in unit_dir/spec.json, or refuse a folder that holds a run with other settings
    (its results or checkpoints would otherwise be taken for this run's)."""
    recorded_path = unit_dir / UNIT_SPEC_FILE
    if recorded_path.is_file():
        recorded = json.loads(recorded_path.read_text())
    elif (unit_dir / RESULTS_FILE).is_file():  # written before units recorded their spec
        recorded = json.loads((unit_dir / RESULTS_FILE).read_text()).get("spec", {})
    else:
        recorded = None
    changed = unit.changed_settings(recorded) if recorded is not None else []
    if changed:
        raise ConfigError(f"{unit_dir} holds a run of {unit.unit_name()} with other settings "
                          f"({', '.join(changed)}): choose another output folder, or move that one away to start over")
    if write and not recorded_path.is_file():
        write_json(recorded_path, unit.to_dict())


def run_job(spec: JobSpec, out_dir: str | Path, callbacks: tuple[Callback, ...] | list[Callback] = (),
            resume: bool = True) -> dict:
    """Train and evaluate every unit of `spec` into out_dir/<unit_name>/; write out_dir/results.json (a
    dlfa.results.JobResult) and return its content: {"spec", "status", "metrics", "runs", ["grid"]}. Completed
    units are skipped and interrupted ones resumed unless resume=False. Only rank 0 writes files and returns the
    full results."""
    spec.validate(check_data=False, check_encoder=False)  # a bad field fails here, before anything is written
    out_dir = Path(out_dir)
    callbacks = CallbackList([*callbacks, *([TensorBoardCallback(out_dir)] if spec.tensorboard else [])])
    runtime = setup_runtime(spec)
    units = spec.units()
    runs: list[RunResult] = []
    inputs: JobInputs | None = None
    started = time.perf_counter()
    for index, unit in enumerate(units):
        unit_dir = out_dir / unit.unit_name()
        if not resume and runtime.is_main:
            shutil.rmtree(unit_dir, ignore_errors=True)
        if runtime.world > 1:
            torch.distributed.barrier()
        claim_unit_dir(unit, unit_dir, write=runtime.is_main)  # every rank refuses, so none waits alone
        done = read_results(unit_dir) if resume and (unit_dir / RESULTS_FILE).is_file() else None
        if isinstance(done, RunResult) and done.completed:
            results = done
        else:
            if runtime.is_main:
                unit_dir.mkdir(parents=True, exist_ok=True)
                callbacks.on_log(f"unit {index + 1}/{len(units)}: {unit.unit_name()} on {runtime.device} "
                                 f"({runtime.precision}, {runtime.world} process{'es' if runtime.world > 1 else ''})")
            inputs = inputs or JobInputs(spec, freezes_word_embeddings(spec, runtime),
                                         reused=index + 1 < len(units) and not spec.probe)
            model, net, data = build_unit(unit, runtime, inputs)
            results = UnitTrainer(unit, unit_dir, model, net, data, runtime, callbacks, (index, len(units))).run()
            del model, net, data
            if runtime.is_main and results.completed:
                callbacks.on_unit_end(unit.unit_name(), results.to_dict())
        runs.append(results)
        status = STOPPED if not results.completed else RUNNING if index + 1 < len(units) else COMPLETED
        if runtime.is_main:
            job = summarize(spec, runs, status, time.perf_counter() - started)
            write_results(out_dir, job)
        if not results.completed:
            break
    if runtime.world > 1:
        torch.distributed.barrier()
    if runtime.owns_process_group:
        torch.distributed.destroy_process_group()
    if not runtime.is_main:
        return {"spec": spec.to_dict(), "status": status, "rank": runtime.rank}
    return read_job_results(out_dir).to_dict()  # as written: JSON lists, not the spec's tuples
