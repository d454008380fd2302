"""Model service for the app: loads the shipped checkpoints once and caches results per image.

Plain Python, no Gradio: the tabs call it, and tests call it directly. Requests never mutate
the models (they stay in eval mode; centroids only move in training), so concurrent requests
can share them.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import cachetools
import numpy as np
import torch

from lcoan.checkpoint import CheckpointError, load, load_info
from lcoan.network import LCoAN

from ..settings import Settings
from .outputs import OutputDir

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINTS = ROOT / "checkpoints"
T = TypeVar("T")
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


def _nbytes(value: Any) -> int:
    """Memory held by a cached value: its ``nbytes`` (arrays, result objects) or 0 when unknown."""
    return int(getattr(value, "nbytes", 0) or 0)


class LRUCache:
    """Thread-safe LRU of computed results on :class:`cachetools.LRUCache`; ``get_or_compute``
    computes outside the lock.

    Bounded by ``capacity`` entries and, when ``max_bytes`` is given, by the summed ``nbytes`` of
    the values; a value larger than the whole byte budget is returned by ``get_or_compute`` but
    not kept.
    """

    def __init__(self, capacity: int = 16, max_bytes: int | None = None) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        if max_bytes is None:
            self._data: cachetools.LRUCache = cachetools.LRUCache(maxsize=capacity)
        else:
            self._data = cachetools.LRUCache(maxsize=max_bytes, getsizeof=lambda v: max(1, _nbytes(v)))
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            return self._data.get(key)  # a hit becomes the most recently used

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            try:
                self._data[key] = value
            except ValueError:  # larger than the whole budget: not kept (an older value is dropped)
                self._data.pop(key, None)
            while len(self._data) > self.capacity:
                self._data.popitem()

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(_nbytes(v) for v in self._data.values())

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        value = self.get(key)
        if value is None:
            value = compute()
            self.put(key, value)
        return value

    def __len__(self) -> int:
        return len(self._data)


class ModelService:
    """The shipped checkpoints, loaded once, by (kind, scale).

    ``settings`` (app limits, see :mod:`app.settings`) defaults to the built-in defaults; result
    files for download go to ``outputs``, a private temporary folder removed at exit.
    """

    def __init__(self, folder: Path = CHECKPOINTS, threads: int | None = None,
                 settings: Settings | None = None) -> None:
        if threads:
            torch.set_num_threads(threads)
        folder = Path(folder)
        self.settings = settings or Settings(checkpoints=folder)
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
                logging.getLogger("lcoan.app").warning("checkpoint not loaded: %s", exc)
        self.cache = LRUCache(capacity=64, max_bytes=self.settings.cache_mb * 1024 * 1024)
        self._outputs: OutputDir | None = None
        self._outputs_lock = threading.Lock()
        self._helpers: dict[Callable[[ModelService], Any], Any] = {}
        self._helpers_lock = threading.RLock()  # a helper's constructor may ask for another helper

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelService:
        return cls(settings.checkpoints, threads=settings.threads, settings=settings)

    @property
    def outputs(self) -> OutputDir:
        """Where result files are written for download (created on first use)."""
        with self._outputs_lock:
            if self._outputs is None:
                self._outputs = OutputDir()
            return self._outputs

    def helper(self, factory: Callable[[ModelService], T]) -> T:
        """The one ``factory(self)`` of this service, made on first use: the registry of the services
        built on this one (inspection, experiments), so every tab shares one of each and its cache."""
        with self._helpers_lock:
            if factory not in self._helpers:
                self._helpers[factory] = factory(self)
            return self._helpers[factory]

    def close(self) -> None:
        """Remove the result files now (they are removed at interpreter exit anyway)."""
        with self._outputs_lock:
            if self._outputs is not None:
                self._outputs.cleanup()
                self._outputs = None

    def missing(self, kinds: tuple[str, ...] = ("lcoan", "none", "dense"),
                scales: tuple[int, ...] = (2, 4)) -> list[str]:
        """Folder names of the expected checkpoints that are not loaded, e.g. ``["dense-*-x4"]``."""
        return [f"{kind}-*-x{scale}" for kind in kinds for scale in scales if (kind, scale) not in self.entries]

    def status(self) -> str:
        """One paragraph for the UI: which models are loaded, which are missing, load problems."""
        loaded = ", ".join(f"{e.label} (`{e.folder.name}`)" for e in self.entries.values()) or "none"
        text = f"Models loaded: {loaded}."
        missing = self.missing()
        if missing:
            text += (f" Missing: {', '.join(f'`{m}`' for m in missing)} (the comparisons that need them are "
                     "skipped; export checkpoints into the checkpoint folder or set LCOAN_CHECKPOINTS).")
        if self.problems:  # names only: the page never shows the server's folders
            text += f" {len(self.problems)} checkpoint folder(s) could not be loaded (see the server log)."
        return text

    def scales(self) -> list[int]:
        return sorted({scale for kind, scale in self.entries if kind == "lcoan"})

    def has(self, kind: str, scale: int) -> bool:
        return (kind, scale) in self.entries

    def get(self, kind: str, scale: int) -> ModelEntry:
        try:
            return self.entries[(kind, scale)]
        except KeyError:
            raise ServiceError(f"no {KINDS.get(kind, kind)} checkpoint for x{scale} on this server") from None
