"""Checkpoints of an unfinished training run, and the small JSON files beside them.

``<out>/checkpoints/run.json`` says what must match to resume (recipe, base, data, settings);
``step-<n>/`` holds what trains (``weights.safetensors``), the optimizer (``optimizer.pt``, read
with ``torch.load(weights_only=True)``), the random states (``rng.safetensors``, Python's in
``state.json``) and the losses so far. Each is written in a temporary sibling and renamed, and
only the newest is kept.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from retriever.errors import InputError

__all__ = ["check_identity", "latest", "load_checkpoint", "read_json", "save_checkpoint",
           "write_json"]


def latest(run_dir: Path) -> Path | None:
    steps = sorted(run_dir.glob("step-*")) if run_dir.is_dir() else []
    return steps[-1] if steps else None


def check_identity(saved: dict, current: dict, out: Path) -> None:
    differ = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
    if differ:
        raise InputError(f"The unfinished run in {out} was started with other {', '.join(differ)}"
                         "; resume it with the same data, base model and settings, or choose "
                         "another output folder.")


def save_checkpoint(run_dir: Path, step: int, params: dict, optimizer, losses: list) -> None:
    final = run_dir / f"step-{step:08d}"
    temporary = run_dir / f".{final.name}.tmp"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    save_file({n: p.detach().cpu().clone().contiguous() for n, p in params.items()},
              str(temporary / "weights.safetensors"))
    torch.save(optimizer.state_dict(), temporary / "optimizer.pt")
    states = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        states.update({f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    save_file(states, str(temporary / "rng.safetensors"))
    write_json(temporary / "state.json",
                {"step": step, "losses": losses, "python_random": random.getstate()})
    os.replace(temporary, final)
    for older in run_dir.glob("step-*"):  # the newest alone is needed to resume
        if older != final:
            shutil.rmtree(older, ignore_errors=True)


def load_checkpoint(folder: Path, params: dict, optimizer) -> tuple[int, list[float]]:
    try:
        weights = load_file(str(folder / "weights.safetensors"))
        optimizer_state = torch.load(folder / "optimizer.pt", weights_only=True)
        states = load_file(str(folder / "rng.safetensors"))
        state = read_json(folder / "state.json")
    except (OSError, ValueError, RuntimeError) as exc:
        raise InputError(f"The checkpoint {folder} cannot be read ({exc}); delete it to "
                         "resume from the one before, or start again.") from exc
    if set(weights) != set(params):
        raise InputError(f"The checkpoint {folder} does not hold this run's weights; start "
                         "again in a new output folder.")
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(weights[name].to(param.device))
    optimizer.load_state_dict(optimizer_state)
    torch.set_rng_state(states["cpu"])
    if torch.cuda.is_available():
        cuda = [states[f"cuda{i}"] for i in range(torch.cuda.device_count())
                if f"cuda{i}" in states]
        if cuda:
            torch.cuda.set_rng_state_all(cuda)
    version, internal, gauss = state["python_random"]
    random.setstate((version, tuple(internal), gauss))
    return int(state["step"]), [float(x) for x in state["losses"]]


def read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path} cannot be read ({exc}); start again in a new output "
                         "folder.") from exc
    if not isinstance(value, dict):
        raise InputError(f"{path} is not a JSON object; start again in a new output folder.")
    return value


def write_json(path: Path, value: dict) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n",
                         encoding="utf-8")
    os.replace(temporary, path)
