"""Regions and tiles of the LR image: the comparison region (:class:`Box`, :func:`region_box`) on which
the quadratic baselines run, and the tile side of the whole-image pass (:func:`balanced_tile`)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


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


def balanced_tiles(h: int, w: int, max_side: int, overlap: int) -> tuple[int, int]:
    """(height, width) of the tiles that cover h x w in the fewest tiles of at most ``max_side``,
    each side as small as that allows (less overlap, so fewer pixels computed twice)."""
    def side(length: int) -> int:
        if length <= max_side:
            return length
        n = math.ceil((length - overlap) / (max_side - overlap))
        return math.ceil((length - overlap) / n) + overlap
    return side(h), side(w)


def balanced_tile(h: int, w: int, max_side: int, overlap: int) -> int:
    """The smallest square tile (side <= ``max_side``) that covers h x w in as few tiles as ``max_side``.

    E.g. 192 x 192 with at most 96 and an overlap of 16 needs 3 tiles per axis either way, and
    tiles of 75 make each (quadratic) dense pass cheaper than tiles of 96.
    """
    sides = []
    for length in (h, w):
        if length <= max_side:
            sides.append(length)
        else:
            n = math.ceil((length - overlap) / (max_side - overlap))
            sides.append(math.ceil((length - overlap) / n) + overlap)
    return max(sides)
