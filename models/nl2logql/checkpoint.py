"""Training checkpoints as safetensors and JSON: adapter, optimizer, RNG, progress.

Why not ``torch.save``: a checkpoint is a file someone may hand us, and pickle runs code on
load. Everything here is tensors (safetensors) or plain data (JSON). A checkpoint is written
into a temporary directory and renamed into place, then ``latest.json`` is replaced
atomically, so an interrupted run resumes from the last complete checkpoint.

Layout of ``<out>/checkpoints/step-<N>/``: ``adapter.safetensors`` (the LoRA weights),
``optimizer.safetensors`` (AdamW's per-parameter tensors), ``state.json`` (step, losses,
optimizer hyper-parameters, scheduler, config), ``rng.safetensors`` (torch's CPU and CUDA
generator states).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from logpipe.errors import ModelError

__all__ = ["Checkpoint", "latest_checkpoint", "load_checkpoint", "save_checkpoint"]

LATEST = "latest.json"


@dataclass
class Checkpoint:
    """What a run needs to go on exactly where it stopped."""

    step: int
    adapter: dict[str, torch.Tensor]
    optimizer: dict[str, Any]  # torch.optim state_dict
    state: dict[str, Any]  # JSON-able: losses, config, scheduler
    rng: dict[str, torch.Tensor]


def _flatten_optimizer(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], Any]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, per_param in state_dict["state"].items():
        for key, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: Any) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, tensor in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = tensor
    for index, values in meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(out_dir: Path, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` under ``out_dir/checkpoints`` and point ``latest.json`` at it."""
    root = out_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{checkpoint.step}"
    tmp = root / f".step-{checkpoint.step}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    adapter = {k: v.detach().cpu().contiguous() for k, v in checkpoint.adapter.items()}
    save_file(adapter, str(tmp / "adapter.safetensors"))
    tensors, meta = _flatten_optimizer(checkpoint.optimizer)
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    save_file({k: v.contiguous() for k, v in checkpoint.rng.items()}, str(tmp / "rng.safetensors"))
    state = {"step": checkpoint.step, "optimizer_meta": meta, **checkpoint.state}
    (tmp / "state.json").write_text(json.dumps(state, indent=1), "utf-8")
    for path in tmp.iterdir():
        with path.open("rb") as fh:
            os.fsync(fh.fileno())
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    pointer = root / f".{LATEST}.tmp-{os.getpid()}"
    pointer.write_text(json.dumps({"step": checkpoint.step, "path": final.name}), "utf-8")
    pointer.replace(root / LATEST)
    return final


def latest_checkpoint(out_dir: Path) -> Path | None:
    """The directory ``latest.json`` points at, if any."""
    pointer = out_dir / "checkpoints" / LATEST
    if not pointer.is_file():
        return None
    try:
        name = json.loads(pointer.read_text("utf-8"))["path"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{pointer} is damaged ({exc}); remove it to start over") from None
    path = pointer.parent / str(name)
    if not path.is_dir():
        raise ModelError(f"{pointer} points at {path}, which is missing")
    return path


def load_checkpoint(path: Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`."""
    try:
        state = json.loads((path / "state.json").read_text("utf-8"))
        adapter = load_file(str(path / "adapter.safetensors"))
        tensors = load_file(str(path / "optimizer.safetensors"))
        rng = load_file(str(path / "rng.safetensors"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read the checkpoint {path}: {exc}") from None
    optimizer = _unflatten_optimizer(tensors, state.pop("optimizer_meta"))
    return Checkpoint(int(state.pop("step")), adapter, optimizer, state, rng)
