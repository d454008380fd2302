"""A training run's folder on disk: the resume state, ``run.json`` and stale temporary files.

``OUT/resume/state.safetensors`` holds the model, the Adam moments and the RNG states as tensors,
and a JSON ``info`` metadata entry (config, command, step, machines, the learning-rate scheduler's
state, the optimizer's param groups). No pickle anywhere. :func:`read_info` is the one reader of
that metadata; ``run.json`` is the same info without the tensors, kept after a run finishes.

Format ``lcoan-resume/1`` has not changed since the first version: files written before the
scheduler was stored in them still resume (the schedule is rebuilt from their step).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import checkpoint
from ..config import LCoANConfig
from ..network import LCoAN
from .log import read_log

RUN_INFO = "run.json"
RESUME = "resume/state.safetensors"
FORMAT = "lcoan-resume/1"


def save_resume(path: Path, model: nn.Module, optim: torch.optim.Optimizer, step: int,
                gen: torch.Generator, meta: dict[str, Any]) -> None:
    """Model, Adam moments and RNG states in one safetensors file, written atomically.

    ``meta`` (JSON-able: config, command, machines, ``scheduler`` state ...) goes into the
    ``info`` metadata entry together with ``step`` and the optimizer's param groups.
    """
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    state = optim.state_dict()
    for idx, entry in state["state"].items():
        for name, value in entry.items():
            tensors[f"optim.{idx}.{name}"] = value if torch.is_tensor(value) else torch.tensor(value)
    tensors["rng.sampler"] = gen.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    info = dict(meta, step=step, param_groups=state["param_groups"])
    checkpoint.atomic_save_tensors(tensors, path, {"format": FORMAT, "info": json.dumps(info)})


def parse_info(path: Path, metadata: dict[str, str]) -> dict[str, Any]:
    """The ``info`` dict of a resume state's safetensors ``metadata``; CheckpointError if it is not one."""
    if metadata.get("format") != FORMAT:
        raise checkpoint.CheckpointError(f"{path} is not an LCoAN resume state")
    try:
        info = json.loads(metadata["info"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise checkpoint.CheckpointError(f"{path}: resume metadata is unreadable ({exc})") from None
    if not isinstance(info, dict) or "step" not in info or "config" not in info:
        raise checkpoint.CheckpointError(f"{path}: resume metadata lacks its step or config")
    return info


def read_info(path: Path) -> dict[str, Any]:
    """The metadata of the resume state at ``path`` without reading its tensors."""
    return parse_info(path, checkpoint.read_metadata(Path(path)))


def load_resume(path: Path, model: nn.Module, optim: torch.optim.Optimizer,
                gen: torch.Generator) -> dict[str, Any]:
    """Restore model, optimizer, sampler and torch RNG from ``path``; returns its info dict.

    The scheduler is not touched here: its state (absent in older files) is ``info["scheduler"]``.
    """
    tensors, metadata = checkpoint.load_state(Path(path))  # CheckpointError if unreadable
    info = parse_info(path, metadata)
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    checkpoint.check_state(model, model_state, str(path))
    model.load_state_dict(model_state, strict=True)
    per_param: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, idx, name = k.split(".", 2)
            per_param.setdefault(int(idx), {})[name] = v
    groups = [dict(g, betas=tuple(g["betas"])) if isinstance(g.get("betas"), list) else g
              for g in info["param_groups"]]  # JSON turned the betas tuple into a list
    optim.load_state_dict({"state": per_param, "param_groups": groups})
    gen.set_state(tensors["rng.sampler"])
    torch.set_rng_state(tensors["rng.torch"])
    return info


def model_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The model tensors (names without the ``model.`` prefix) and the info of a resume state."""
    tensors, metadata = checkpoint.load_state(Path(path))
    info = parse_info(path, metadata)
    return {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, info


def export_snapshot(run: Path, folder: Path) -> dict:
    """Write a checkpoint folder from a run's latest resume state (e.g. while it still trains)."""
    path = Path(run) / RESUME
    if not path.exists():
        raise checkpoint.CheckpointError(f"{run} has no resume state")
    state, info = model_weights(path)
    model = LCoAN(LCoANConfig.from_dict(info["config"]))
    checkpoint.check_state(model, state, str(path))
    model.load_state_dict(state)
    vals = [r for r in read_log(Path(run) / "log.csv", info["step"]) if r.get("val_psnr")]
    card_info = {k: info[k] for k in ("config", "command", "world_size", "train_seconds", "init_from", "segments",
                                      "sessions") if k in info}
    card_info.update(iterations=info["step"], snapshot=True,
                     machine=info.get("machine", "not recorded by this run; its command gives the threads"),
                     final_val_psnr=float(vals[-1]["val_psnr"]) if vals else None)
    checkpoint.save(model, folder, info=card_info)
    return card_info


def write_run_info(run: Path, info: dict[str, Any]) -> None:
    """``run/run.json``: the resume state's metadata without its tensors (config, command, step, time,
    machines, parent stages), small enough to keep in git after the heavy resume state is dropped."""
    checkpoint.atomic_write_bytes(Path(run) / RUN_INFO, (json.dumps(info, indent=1) + "\n").encode())


def read_run_info(run: Path) -> dict[str, Any]:
    """A run folder's info: its ``run.json``, else its resume state's metadata, else ``{}``."""
    run = Path(run)
    try:
        return json.loads((run / RUN_INFO).read_text())
    except FileNotFoundError:
        pass
    except (ValueError, OSError):
        return {}
    try:
        return read_info(run / RESUME)
    except checkpoint.CheckpointError:
        return {}


def finished_without_state(run: Path, iters: int) -> int | None:
    """The step a run reached, if its run.json says it finished and its resume state was dropped."""
    run = Path(run)
    if (run / RESUME).exists() or not (run / RUN_INFO).exists():
        return None
    try:
        step = int(read_run_info(run).get("step", 0))
    except (TypeError, ValueError):
        return None
    return step if step >= iters else None


def remove_stale_temp_files(out: Path) -> list[Path]:
    """Temporary files a killed run left behind (an atomic write interrupted before its rename).

    Only called at start-up by the process that owns the run folder: the complete files they
    were meant to replace are still in place, so these are garbage.
    """
    patterns = [(out / RESUME).parent.glob(f".{Path(RESUME).name}.*.tmp"), out.glob(".log.csv.*.tmp"),
                out.glob(f".{RUN_INFO}.*.tmp"), out.glob("log.tmp")]  # log.tmp: the name older versions used
    removed = []
    for found in patterns:
        for p in found:
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed
