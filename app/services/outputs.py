"""Result files for download: lossless PNGs in a private temporary folder that cleans itself.

Each file gets its own random sub-folder (so two users' ``photo_x4_lcoan.png`` never collide and a
name can be kept readable); only the newest ``keep`` files are kept, and the whole folder is removed
when the service is closed or the interpreter exits. Gradio copies a returned file into its own
cache when it sends it, so a file only has to outlive the request that made it.
"""
from __future__ import annotations

import re
import secrets
import shutil
import tempfile
import threading
import weakref
from collections import deque
from pathlib import Path

import numpy as np

from lcoan.imaging.io import save_image

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_stem(name: str | None, default: str = "image") -> str:
    """A file-name stem with no path, no separators and no leading dots, at most 64 characters."""
    stem = Path(str(name or "")).name
    stem = Path(stem).stem if "." in stem else stem
    stem = _UNSAFE.sub("_", stem).strip("._")[:64]
    return stem or default


class OutputDir:
    def __init__(self, keep: int = 64, prefix: str = "lcoan-app-") -> None:
        self.keep = keep
        self.path = Path(tempfile.mkdtemp(prefix=prefix))
        self._files: deque[Path] = deque()
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.path), True)

    def _new_folder(self) -> Path:
        """A fresh random sub-folder; the oldest ones beyond ``keep`` are removed."""
        sub = self.path / secrets.token_hex(8)
        sub.mkdir()
        with self._lock:
            self._files.append(sub)
            while len(self._files) > self.keep:
                shutil.rmtree(self._files.popleft(), ignore_errors=True)
        return sub

    def save_png(self, stem: str, rgb: np.ndarray, alpha: np.ndarray | None = None, *,
                 grayscale: bool = False) -> Path:
        """Write ``rgb`` (and ``alpha``) with :func:`lcoan.imaging.io.save_image`; returns the file's path."""
        return save_image(self._new_folder() / f"{safe_stem(stem)}.png", rgb, alpha, grayscale=grayscale)

    def save_bytes(self, stem: str, suffix: str, data: bytes) -> Path:
        """Write ``data`` as ``<stem><suffix>`` (e.g. a trace zip), kept and rotated like the PNGs."""
        path = self._new_folder() / f"{safe_stem(stem)}{suffix}"
        path.write_bytes(data)
        return path

    def __len__(self) -> int:
        return len(self._files)

    def cleanup(self) -> None:
        """Delete the folder and everything in it (idempotent)."""
        self._finalizer()
