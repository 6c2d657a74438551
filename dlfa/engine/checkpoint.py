"""Checkpoints of a unit, so that a resumed run replays the same batches with the same dropout masks:

    <unit>/checkpoints/<name>/    model.safetensors, optimizer.safetensors, best.safetensors (the best dev
                                  state), state.json (the training state, the RNG states, the optimizer's
                                  param groups)
    <unit>/checkpoints/latest.json  {"name": the newest complete checkpoint}

Tensors are safetensors and the rest JSON: nothing is pickled."""
from __future__ import annotations

import base64
import json
import math
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dlfa.engine.runtime import Runtime
from dlfa.errors import DlfaError
from dlfa.io import atomic_folder, write_json
from dlfa.model.modeling import WEIGHTS_FILE, DlfaModel

STATE_FILE = "state.json"
LATEST_FILE = "latest.json"


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


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The parameters and buffers training can change (frozen encoder parameters left out), detached clones."""
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k not in frozen}


def save_checkpoint(unit_dir: Path, name: str, model: DlfaModel, state: dict,
                    optimizer: torch.optim.Optimizer | None, best: dict[str, torch.Tensor] | None) -> Path:
    """Write checkpoint `name` (`state`: JSON) as a whole folder, point latest.json at it, remove the older ones."""
    from safetensors.torch import save_file

    root = unit_dir / "checkpoints"
    final = root / name
    with atomic_folder(final) as staging:
        model.save_pretrained(staging)
        if optimizer is not None:
            saved = optimizer.state_dict()
            tensors = {f"{i}.{k}": v.detach().contiguous().cpu()
                       for i, s in saved["state"].items() for k, v in s.items()}
            save_file(tensors, str(staging / "optimizer.safetensors"))
            state = {**state, "optimizer_groups": saved["param_groups"]}
        if best is not None:
            save_file({k: v.contiguous().cpu() for k, v in best.items()}, str(staging / "best.safetensors"))
        write_json(staging / STATE_FILE, state, indent=1)
    write_json(root / LATEST_FILE, {"name": name})
    for old in root.iterdir():
        if old.is_dir() and old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(unit_dir: Path) -> Path | None:
    """The newest complete checkpoint of a unit, or None."""
    pointer = unit_dir / "checkpoints" / LATEST_FILE
    if not pointer.is_file():
        return None
    path = pointer.parent / json.loads(pointer.read_text())["name"]
    return path if (path / STATE_FILE).is_file() else None


def check_loss_finite(loss: float, stage: str, step: int, unit_dir: Path) -> None:
    """Raise DlfaError when the loss is NaN or infinite: training cannot recover from it, so the run ends before
    a checkpoint of the broken weights replaces the last good one."""
    if math.isfinite(loss):
        return
    latest = latest_checkpoint(unit_dir)
    kept = f"the last good checkpoint is kept at {latest}" if latest else "no checkpoint had been written yet"
    raise DlfaError(f"loss became {'NaN' if math.isnan(loss) else 'infinite'} at stage {stage} step {step}; {kept} "
                    "(a lower learning rate may help)")


def load_checkpoint(path: Path, model: DlfaModel, device: torch.device) -> tuple[dict, dict[str, torch.Tensor] | None]:
    """Load checkpoint `path`'s weights into `model`; returns its state.json content and its best state."""
    saved = json.loads((path / STATE_FILE).read_text())
    missing, unexpected = model.load_state_dict(load_tensors(path / WEIGHTS_FILE, device), strict=False)
    if unexpected or any(p.requires_grad for n, p in model.named_parameters() if n in missing):
        raise DlfaError(f"checkpoint {path} does not match this job's model; delete {path.parent.parent} to start over")
    best = load_tensors(path / "best.safetensors") if (path / "best.safetensors").is_file() else None
    return saved, best


def load_tensors(path: Path, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path), device=str(device))


def load_optimizer(optimizer: torch.optim.Optimizer, path: Path, groups: list[dict], device: torch.device) -> None:
    """Checkpoint `path`'s optimizer state (tensors on `device`, the step counts on the CPU) and param `groups`."""
    state: dict[int, dict] = {}
    for key, tensor in load_tensors(path / "optimizer.safetensors", device).items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = tensor.cpu() if name == "step" else tensor
    optimizer.load_state_dict({"state": state, "param_groups": groups})

