"""Batches for training: the length-grouped order (`BatchStream`, replayable from its state), and a batch's
backward pass in row slices of a bounded number of tokens (`backward_batch`), whose loss and gradients are the
whole batch's."""
from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch
from torch import nn

from dlfa.data.base import IGNORE_INDEX
from dlfa.engine.evaluate import autocast
from dlfa.engine.runtime import Runtime
from dlfa.errors import ConfigError
from dlfa.model.fusion import needed_layers, uses_batch_statistics
from dlfa.model.modeling import DlfaModel

MEGA_BATCH = 50  # length grouping: sort within windows of 50 batches


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
    if "labels" in batch:
        labelled = (batch["labels"] != IGNORE_INDEX).reshape(rows, -1).sum(1)
    else:  # question answering: every window has a gold span (the first token when it holds no answer)
        labelled = torch.ones(rows, dtype=torch.long)
    total = max(int(labelled.sum()), 1)
    slices = [(batch_rows(batch, start, end, width), int(labelled[start:end].sum()) / total)
              for start, end, width in bounds]
    return [(piece, weight) for piece, weight in slices if weight > 0] or [(batch, 1.0)]


def backward_whole_batch(model: DlfaModel, batch: dict, max_tokens: int, scale: float, runtime: Runtime) -> float:
    """The loss of `batch` (returned) and its gradients × scale (added to .grad), with the encoder run in row
    slices of about max_tokens tokens but the aggregation and the head run on the whole batch at once.

    Why: DLFA's batch norm normalizes each token with statistics over all real tokens of the batch, so an
    aggregation run per slice computes other outputs and gradients than for the batch it was given (and only
    DLFA is affected). Gathering the statistics in a first pass and normalizing the slices with them would
    still leave out the gradient that flows through the statistics. So the slicing stops at the encoder:
      1. each slice runs through the encoder, the first with its graph kept and the others without one; the
         hidden states the aggregation reads (fusion.needed_layers: layer k and the last, rows × width × E each)
         fill the whole batch's B × T × E (positions past a slice's width are padding: zeros, masked everywhere
         downstream); the others are not kept;
      2. aggregation + head run on the whole batch; backward gives the loss's gradient w.r.t. the hidden states
         and the aggregation's and head's parameters; the batch norm's running statistics are updated once;
      3. each slice back-propagates its rows of those gradients: the first through its kept graph, the others
         after running through the encoder again with the RNG state of step 1 (the same dropout masks).
    Loss and gradients equal the unsliced batch's up to float summation order; the price is one more encoder
    forward per slice but the first; the peak memory is one slice's graph beside the whole batch's aggregation
    and head (README "Benchmarks": 1.43 GB for the 1,000-sentence fine-tune)."""
    bounds = slice_bounds(batch, max_tokens)
    rows, length = batch["attention_mask"].shape

    def encode(start: int, end: int, width: int) -> tuple[torch.Tensor, ...]:
        part = batch_rows(batch, start, end, width)
        with autocast(runtime.device, runtime.amp_dtype):
            return model.encode(part["input_ids"], part["attention_mask"], part.get("token_type_ids"))

    read = needed_layers(model.config.aggregation, model.config.fusion_layer, model.num_layers)
    rng_states, layers = [], []
    for index, (start, end, width) in enumerate(bounds):
        rng_states.append(torch.get_rng_state())
        with torch.set_grad_enabled(index == 0):
            hidden = encode(start, end, width)
        if index == 0:
            first_slice = hidden
        layers = layers or [h.new_zeros(rows, length, h.shape[-1]) if i in read else None for i, h in enumerate(hidden)]
        for i in read:
            layers[i][start:end, :width] = hidden[i].detach()
    layers = [h.requires_grad_() if h is not None else None for h in layers]
    with autocast(runtime.device, runtime.amp_dtype):
        loss = model.classify(tuple(layers), batch["attention_mask"], batch["task"], batch.get("labels"),
                              batch.get("start_positions"), batch.get("end_positions")).loss
    (loss * scale).backward()
    used = [i for i in read if layers[i].grad is not None]
    for index, ((start, end, width), rng) in enumerate(zip(bounds, rng_states)):
        if index == 0:
            hidden = first_slice
        else:
            with torch.random.fork_rng(devices=[]):
                torch.set_rng_state(rng)
                hidden = encode(start, end, width)
        pairs = [(hidden[i], layers[i].grad[start:end, :width]) for i in used if hidden[i].requires_grad]
        torch.autograd.backward([h for h, _ in pairs], [g for _, g in pairs])
    return loss.item()


def backward_batch(net: nn.Module, model: DlfaModel, batch: dict, max_tokens: int | None, scale: float,
                   runtime: Runtime, sync: bool = True) -> float:
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

