"""Regions of the LR image, both kinds in LR pixels:

- the comparison region (:class:`Box`, :func:`region_box`) on which the quadratic baselines run,
  and the tile sizes of the whole-image pass (:func:`balanced_tiles`);
- the inspection region (:class:`Region`, :func:`choose_region`): which part of an LR input the
  "inside LCoA" tabs trace (whole, bicubic downscale or centre crop).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lcoan.imaging.degrade import imresize_to

from .models import ServiceError

MAX_POSITIONS = 128 * 128
REGION_MODES = ("downscale", "crop")


@dataclass(frozen=True)
class Region:
    """Which part of the LR input was traced. mode: "full", "downscale" or "crop"."""

    source: tuple[int, int]  # (h, w) of the LR input
    size: tuple[int, int]  # (h, w) traced
    mode: str
    offset: tuple[int, int] = (0, 0)  # top-left of a crop in the source

    @property
    def note(self) -> str:
        (sh, sw), (h, w) = self.source, self.size
        if self.mode == "full":
            return f"Traced on the whole {sw}x{sh} input ({h * w:,} LR positions)."
        why = (f"inputs above {MAX_POSITIONS:,} LR positions are reduced: dense attention and the "
               "per-query rows grow with N")
        if self.mode == "downscale":
            return f"Traced on a bicubic downscale of the whole {sw}x{sh} input to {w}x{h} ({why})."
        y0, x0 = self.offset
        return (f"Traced on the centre {w}x{h} crop (x {x0}..{x0 + w - 1}, y {y0}..{y0 + h - 1}) "
                f"of the {sw}x{sh} input, at native resolution ({why}).")


def choose_region(h: int, w: int, mode: str = "downscale", max_positions: int = MAX_POSITIONS) -> Region:
    """The region to trace for an (h, w) LR input: the whole input when it fits in ``max_positions``."""
    if mode not in REGION_MODES:
        raise ServiceError(f"region mode must be one of {REGION_MODES}, got {mode!r}")
    if h * w <= max_positions:
        return Region((h, w), (h, w), "full")
    if mode == "downscale":
        f = math.sqrt(max_positions / (h * w))
        th, tw = max(1, min(h, math.floor(h * f))), max(1, min(w, math.floor(w * f)))
        return Region((h, w), (th, tw), "downscale")
    side = math.isqrt(max_positions)
    th = min(h, side) if w >= side else min(h, max_positions // w)
    tw = min(w, max_positions // th)
    return Region((h, w), (th, tw), "crop", ((h - th) // 2, (w - tw) // 2))


def extract_region(rgb: np.ndarray, region: Region) -> np.ndarray:
    """HxWx3 float32 in [0, 1] -> the traced region (h, w, 3) float32 in [0, 1]."""
    if region.mode == "downscale":
        return np.clip(imresize_to(rgb, region.size), 0.0, 1.0).astype(np.float32)
    (y0, x0), (h, w) = region.offset, region.size
    return np.ascontiguousarray(rgb[y0:y0 + h, x0:x0 + w])


@dataclass(frozen=True)
class Box:
    """A region of the LR image, in LR pixels."""

    x0: int
    y0: int
    w: int
    h: int

    def sr(self, s: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) in super-resolved pixels."""
        return self.x0 * s, self.y0 * s, (self.x0 + self.w) * s, (self.y0 + self.h) * s

    def grown(self, margin: int, lh: int, lw: int) -> Box:
        """This box with ``margin`` pixels more on every side, clamped to an lh x lw image."""
        x0, y0 = max(0, self.x0 - margin), max(0, self.y0 - margin)
        x1, y1 = min(lw, self.x0 + self.w + margin), min(lh, self.y0 + self.h + margin)
        return Box(x0, y0, x1 - x0, y1 - y0)


def region_box(lh: int, lw: int, cx: float | None, cy: float | None, side: int) -> Box:
    """A box of ``side`` LR pixels (clamped to the image) centred near LR pixel (cx, cy) (None: centre)."""
    w, h = min(int(side), lw), min(int(side), lh)
    cx = lw / 2 if cx is None else float(cx)
    cy = lh / 2 if cy is None else float(cy)
    x0 = int(np.clip(round(cx - w / 2), 0, lw - w))
    y0 = int(np.clip(round(cy - h / 2), 0, lh - h))
    return Box(x0, y0, w, h)


def textured_box(lr: np.ndarray, side: int, stride: int = 4) -> Box:
    """The default comparison region: the ``side``-pixel box (clamped to the image) with the most detail,
    i.e. the largest sum of luminance gradient magnitude, so a sky-heavy photo is not compared on plain
    sky; among boxes within 10 % of the best, the one nearest the centre. ``lr``: (h, w, 3) or (h, w),
    any dtype. Candidates on a grid of ``stride`` px (integral image: cheap for any size)."""
    img = np.asarray(lr, dtype=np.float32)
    lum = img @ np.array([0.299, 0.587, 0.114], np.float32) if img.ndim == 3 else img
    lh, lw = lum.shape
    w, h = min(int(side), lw), min(int(side), lh)
    grad = np.zeros_like(lum)
    grad[:, 1:] += np.abs(np.diff(lum, axis=1))
    grad[1:, :] += np.abs(np.diff(lum, axis=0))
    integral = np.pad(grad.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    ys = np.unique(np.r_[np.arange(0, lh - h + 1, stride), lh - h])
    xs = np.unique(np.r_[np.arange(0, lw - w + 1, stride), lw - w])
    y0, x0 = np.meshgrid(ys, xs, indexing="ij")
    energy = integral[y0 + h, x0 + w] - integral[y0, x0 + w] - integral[y0 + h, x0] + integral[y0, x0]
    if float(energy.max()) <= 0:  # a flat image: the centre
        return region_box(lh, lw, None, None, side)
    near = energy >= 0.9 * energy.max()
    dist = np.hypot(y0 + h / 2 - lh / 2, x0 + w / 2 - lw / 2)
    i = np.unravel_index(np.argmin(np.where(near, dist, np.inf)), dist.shape)
    return Box(int(x0[i]), int(y0[i]), w, h)


def balanced_tiles(h: int, w: int, max_side: int, overlap: int) -> tuple[int, int]:
    """(height, width) of the tiles that cover h x w in the fewest tiles of at most ``max_side``,
    each side as small as that allows (less overlap, so fewer pixels computed twice)."""
    def side(length: int) -> int:
        if length <= max_side:
            return length
        n = math.ceil((length - overlap) / (max_side - overlap))
        return math.ceil((length - overlap) / n) + overlap
    return side(h), side(w)
