"""Tiny random checkpoints for the app's tests: lcoan-tiny-x2 (LSP, window 16) and dense-tiny-x2."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import lcoan

KINDS = (("lcoan", "lsp"), ("dense", "dense"))


def make_checkpoints(folder: Path, scales: tuple[int, ...] = (2,), seed: int = 0,
                     kinds: tuple[tuple[str, str], ...] = KINDS) -> Path:
    """Write tiny checkpoints (preset "tiny": 3 groups, K = 8, W = 16) into ``folder``: by default
    LCoAN and dense; add ``("none", "none")`` to ``kinds`` for the no-attention model."""
    torch.manual_seed(seed)
    for scale in scales:
        for kind, attention in kinds:
            lcoan.save(lcoan.create_model(lcoan.preset("tiny", scale=scale, attention=attention)),
                       folder / f"{kind}-tiny-x{scale}")
    return folder


def textured(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A uint8 test picture with structure (stripes, a gradient, noise): (h, w, 3)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    r = 127 + 100 * np.sin(x / 2.0)
    g = 255 * y / max(h - 1, 1)
    b = 127 + 100 * np.cos((x + y) / 3.0)
    img = np.stack([r, g, b], -1) + rng.normal(0, 10, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)
