"""Model service for the app: loads the shipped checkpoints once and caches results per image.

Plain Python, no Gradio: the tabs call it, and tests call it directly. Requests never mutate
the models (they stay in eval mode; centroids only move in training), so concurrent requests
can share them.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable

import numpy as np
import torch

from lcoan.checkpoint import CheckpointError, load, load_info
from lcoan.network import LCoAN

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / "checkpoints"
KINDS = {"lcoan": "LCoAN (LSP + CoA)", "dense": "Dense NLA baseline", "none": "No attention"}


class ServiceError(ValueError):
    """A request the service cannot serve (missing checkpoint, bad input): user-facing message."""


@dataclass(frozen=True)
class ModelEntry:
    kind: str  # "lcoan" | "dense" | "none"
    scale: int
    folder: Path
    model: LCoAN
    info: dict

    @property
    def label(self) -> str:
        return f"{KINDS.get(self.kind, self.kind)} x{self.scale}"


def image_key(rgb: np.ndarray) -> str:
    """Content hash of an image array (shape, dtype and bytes)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{rgb.shape}{rgb.dtype}".encode())
    h.update(np.ascontiguousarray(rgb).tobytes())
    return h.hexdigest()


class LRUCache:
    """Thread-safe LRU of computed results; ``get_or_compute`` computes outside the lock."""

    def __init__(self, capacity: int = 16) -> None:
        self.capacity = capacity
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        return None

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.capacity:
                self._data.popitem(last=False)

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        value = self.get(key)
        if value is None:
            value = compute()
            self.put(key, value)
        return value

    def __len__(self) -> int:
        return len(self._data)


class ModelService:
    """The shipped checkpoints, loaded once, by (kind, scale)."""

    def __init__(self, folder: Path = CHECKPOINTS, threads: int | None = None) -> None:
        if threads:
            torch.set_num_threads(threads)
        self.folder = folder
        self.entries: dict[tuple[str, int], ModelEntry] = {}
        self.problems: list[str] = []
        for sub in sorted(folder.glob("*-x[234]")) if folder.is_dir() else []:
            kind = sub.name.split("-")[0]
            try:
                model = load(sub)
                self.entries[(kind, model.cfg.scale)] = ModelEntry(kind, model.cfg.scale, sub, model, load_info(sub))
            except CheckpointError as exc:
                self.problems.append(str(exc))
        self.cache = LRUCache(capacity=24)

    def scales(self) -> list[int]:
        return sorted({scale for kind, scale in self.entries if kind == "lcoan"})

    def has(self, kind: str, scale: int) -> bool:
        return (kind, scale) in self.entries

    def get(self, kind: str, scale: int) -> ModelEntry:
        try:
            return self.entries[(kind, scale)]
        except KeyError:
            raise ServiceError(f"no {KINDS.get(kind, kind)} checkpoint for x{scale} in {self.folder}") from None
