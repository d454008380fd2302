"""Result files for download: lossless PNGs in a private temporary folder that cleans itself.

Each file gets its own random sub-folder (so two users' ``photo_x4_lcoan.png`` never collide and a
name can be kept readable); only the newest ``keep`` files are kept, and the whole folder is removed
when the service is closed or the interpreter exits. Gradio copies a returned file into its own
cache when it sends it, so a file only has to outlive the request that made it.

Every file is written under a temporary name in its folder and renamed into place when complete
(:mod:`lcoan.imaging.atomic`), so a path handed to Gradio never names half a file. Pictures for the
page (:meth:`OutputDir.save_view`) are files too, not PIL images: Gradio rewrites its cached copy of a
PIL image in place (truncate, then write) each time a streaming event yields it again, and a browser
still fetching the earlier copy got a short file ("Too much data for declared Content-Length" in the
server log). A path is copied into Gradio's cache under a temporary name and only when new.
"""
from __future__ import annotations

import hashlib
import io
import re
import secrets
import shutil
import tempfile
import threading
import weakref
from collections import OrderedDict, deque
from pathlib import Path

import numpy as np
from PIL import Image

from lcoan.imaging import atomic
from lcoan.imaging.io import save_image

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_stem(name: str | None, default: str = "image") -> str:
    """A file-name stem with no path, no separators and no leading dots, at most 64 characters."""
    stem = Path(str(name or "")).name
    stem = Path(stem).stem if "." in stem else stem
    stem = _UNSAFE.sub("_", stem).strip("._")[:64]
    return stem or default


class OutputDir:
    def __init__(self, keep: int = 64, prefix: str = "lcoan-app-", keep_views: int = 256) -> None:
        self.keep = keep
        self.keep_views = keep_views
        self.path = Path(tempfile.mkdtemp(prefix=prefix))
        self._files: deque[Path] = deque()
        self._views: OrderedDict[Path, None] = OrderedDict()  # content-addressed folders, least recent first
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
        atomic.write_bytes(path, data)
        return path

    def save_view(self, img: Image.Image, name: str = "image") -> str:
        """A picture for the page as a PNG path to hand to Gradio instead of the PIL image.

        Content-addressed (the same pixels give the same path) and written once, under a temporary name
        then renamed: an existing file is never rewritten, so a browser fetching it never reads a file
        being written. The newest ``keep_views`` pictures are kept.
        """
        buf = io.BytesIO()
        img.save(buf, format="PNG", compress_level=1)  # small pictures: speed over size
        data = buf.getvalue()
        folder = self.path / "views" / hashlib.sha256(data).hexdigest()[:32]
        path = folder / f"{safe_stem(name)}.png"
        with self._lock:
            self._views[folder] = None
            self._views.move_to_end(folder)
            while len(self._views) > self.keep_views:
                old, _ = self._views.popitem(last=False)
                shutil.rmtree(old, ignore_errors=True)
        if not path.exists():
            atomic.write_bytes(path, data)
        return str(path)

    def __len__(self) -> int:
        return len(self._files)

    def cleanup(self) -> None:
        """Delete the folder and everything in it (idempotent)."""
        self._finalizer()
