"""Checkpoint folders: ``model.safetensors`` + ``config.json`` + ``SHA256SUMS`` + ``README.md`` (card).

Loading never unpickles anything; a folder whose config or tensors do not match the network
they describe is refused with a :class:`CheckpointError` that says what is wrong. ``SHA256SUMS``
(the format of ``sha256sum``) covers the two files :func:`load` reads, ``model.safetensors`` and
``config.json``, so any change to them (scaled weights included) is refused too; the card and
``eval.json`` are regenerated text and are not covered. A folder without the manifest loads with a
warning (folders written before it existed). The manifest catches corrupted or edited files, not a
forger who rewrites it as well: it is a checksum, not a signature.

    python -m scripts.manifest checkpoints/*   # write the manifest of existing folders
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .config import ConfigError, LCoANConfig
from .imaging import atomic
from .network import LCoAN

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CARD = "README.md"
MANIFEST = "SHA256SUMS"
COVERED = (WEIGHTS, CONFIG)  # the files load() reads
FORMAT = "lcoan/1"


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be loaded (clear, user-facing message)."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically: never a half-written file."""
    atomic.write_bytes(path, data)


def atomic_save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """safetensors.save_file through a temporary file, fsync and an atomic rename."""
    with atomic.atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def save(model: LCoAN, folder: str | os.PathLike, card: str | None = None,
         info: dict[str, Any] | None = None) -> Path:
    """Write weights, config and model card. ``info`` (JSON-able) is stored in the weights' metadata."""
    folder = Path(folder)
    meta = {"format": FORMAT, "config": model.cfg.to_json(), "info": json.dumps(info or {})}
    atomic_save_tensors(model.state_dict(), folder / WEIGHTS, meta)
    atomic_write_bytes(folder / CONFIG, (model.cfg.to_json() + "\n").encode())
    if card is not None:
        atomic_write_bytes(folder / CARD, card.encode())
    write_manifest(folder)
    return folder


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(folder: str | os.PathLike) -> Path:
    """Write ``folder/SHA256SUMS`` for the files :func:`load` reads (``sha256sum -c`` checks it too)."""
    folder = Path(folder)
    text = "".join(f"{sha256(folder / name)}  {name}\n" for name in COVERED)
    atomic_write_bytes(folder / MANIFEST, text.encode())
    return folder / MANIFEST


def check_manifest(folder: Path) -> bool:
    """Compare the covered files with ``SHA256SUMS``: CheckpointError on any difference, a warning and
    ``False`` when the folder has no manifest, ``True`` when every covered file matches."""
    path = folder / MANIFEST
    if not path.is_file():
        warnings.warn(f"{folder} has no {MANIFEST}: the integrity of its files is not checked", stacklevel=3)
        return False
    listed: dict[str, str] = {}
    for line in path.read_text(errors="replace").splitlines():
        digest, _, name = line.partition("  ")
        listed[name.strip()] = digest.strip().lower()
    for name in COVERED:
        if name not in listed:
            raise CheckpointError(f"{path} does not list {name}")
        if sha256(folder / name) != listed[name]:
            raise CheckpointError(f"{folder / name} does not match its SHA-256 in {path}: modified or corrupted file")
    return True


def read_config(folder: str | os.PathLike) -> LCoANConfig:
    folder = Path(folder)
    path = folder / CONFIG
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {folder}")
    if not path.is_file():
        raise CheckpointError(f"{folder} has no {CONFIG}")
    try:
        return LCoANConfig.from_json(path.read_text())
    except (ConfigError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: {exc}") from None


def read_metadata(path: Path) -> dict[str, str]:
    """The metadata of a safetensors file without reading its tensors (clear error if unreadable)."""
    if not path.is_file():
        raise CheckpointError(f"missing weights file {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc}){_kind_hint(path)}") from None


def load_state(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file, with a clear error for anything unreadable."""
    metadata = read_metadata(path)
    try:
        return load_file(str(path)), metadata
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc}){_kind_hint(path)}") from None


def _kind_hint(path: Path) -> str:
    """Name the usual wrong file: a pickled PyTorch checkpoint renamed .safetensors (never unpickled here)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return ""
    if head.startswith(b"PK\x03\x04"):
        return ("; it is a zip archive, as torch.save writes: pickled checkpoints are refused, "
                "only safetensors is loaded")
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "; it is a Python pickle: pickled checkpoints are refused, only safetensors is loaded"
    return ""


def min_values(cfg: LCoANConfig) -> int:
    """A lower bound on the number of values in the weights of the network ``cfg`` describes.

    Every residual block has two C x C 3x3 convs, every group one more, plus conv_after_body; LSP adds
    at least one centroid bank. Used to refuse a config that claims a huge network before building it
    (building allocates and initialises every tensor): no legitimate weights file holds fewer values.
    """
    c = cfg.num_feat
    n = 9 * c * c * (cfg.num_groups * (2 * cfg.num_blocks + 1) + 1)
    if cfg.attention == "lsp":
        n += cfg.rounds * cfg.num_clusters * cfg.match_dim
    return n


def check_state(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Refuse missing, unexpected or mis-shaped tensors, naming them."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [f"{k}: file {tuple(state[k].shape)} {state[k].dtype}, model {tuple(v.shape)} {v.dtype}"
             for k, v in expected.items() if k in state and (state[k].shape != v.shape or state[k].dtype != v.dtype)]
    problems = []
    if missing:
        problems.append(f"missing tensors: {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
    if unexpected:
        problems.append(f"unexpected tensors: {', '.join(unexpected[:5])}" + (" ..." if len(unexpected) > 5 else ""))
    if wrong:
        problems.append("wrong shape or dtype: " + "; ".join(wrong[:5]))
    if problems:
        raise CheckpointError(f"{source} does not match its config: " + " | ".join(problems))
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{source} holds non-finite values in {', '.join(bad[:5])}")


def load(folder: str | os.PathLike, device: str | torch.device = "cpu") -> LCoAN:
    """Build the network a checkpoint folder describes and load its weights (eval mode)."""
    folder = Path(folder)
    cfg = read_config(folder)
    state, metadata = load_state(folder / WEIGHTS)
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{folder / WEIGHTS} is not an LCoAN checkpoint (format {metadata.get('format')!r})")
    try:
        embedded = LCoANConfig.from_json(metadata.get("config", ""))
    except ConfigError as exc:
        raise CheckpointError(f"{folder / WEIGHTS}: embedded config is invalid ({exc})") from None
    if embedded != cfg:
        diff = [k for k in cfg.to_dict() if cfg.to_dict()[k] != embedded.to_dict()[k]]
        raise CheckpointError(f"{folder / CONFIG} disagrees with the config stored in the weights on: "
                              f"{', '.join(diff)}")
    held = sum(v.numel() for v in state.values())
    if min_values(cfg) > held:
        raise CheckpointError(f"{folder / CONFIG} describes a network of at least {min_values(cfg):,} values but "
                              f"{folder / WEIGHTS} holds only {held:,}: tampered or mismatched checkpoint")
    model = LCoAN(cfg)
    check_state(model, state, str(folder / WEIGHTS))
    check_manifest(folder)  # after the structural checks, whose messages say more; catches the rest
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()


def load_info(folder: str | os.PathLike) -> dict[str, Any]:
    """The ``info`` dict saved with the weights (training command, iterations, ...)."""
    metadata = read_metadata(Path(folder) / WEIGHTS)
    try:
        return json.loads(metadata.get("info", "{}"))
    except json.JSONDecodeError:
        return {}


def training_stages(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The training stages behind a checkpoint's ``info``, oldest first: each ``--init-from`` adds one
    (e.g. x2 stage 1 -> x2 warm restart -> x4 fine-tune)."""
    chain = []
    while info:
        chain.append(info)
        info = info.get("init_from") or {}
    return chain[::-1]

