"""Views of a :class:`app.compare.Comparison`: the zoom region, linked crops, the slider pair.

Pure functions from arrays to PIL images (8-bit, for display only; downloads keep the full depth).
Boxes are ``(x0, y0, x1, y1)`` in super-resolved pixels, aligned to the scale so that the same
region of the LR input is a whole number of pixels.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from lcoan.io import to_pil

from ..compare import LABELS, Comparison

Box = tuple[int, int, int, int]
BOX_COLOUR = (255, 214, 0)


def zoom_box(comparison: Comparison, x: float | None, y: float | None, window_lr: int) -> Box:
    """A box of ``window_lr`` LR pixels (clamped to the image) centred near SR pixel (x, y).

    ``x``/``y`` None: the centre of the image.
    """
    s = comparison.scale
    lh, lw = comparison.prepared.lr.shape[:2]
    wl, hl = min(int(window_lr), lw), min(int(window_lr), lh)
    cx = lw * s / 2 if x is None else float(x)
    cy = lh * s / 2 if y is None else float(y)
    x0 = int(np.clip(round(cx / s - wl / 2), 0, lw - wl))
    y0 = int(np.clip(round(cy / s - hl / 2), 0, lh - hl))
    return x0 * s, y0 * s, (x0 + wl) * s, (y0 + hl) * s


def _magnify(img: Image.Image, size: int) -> Image.Image:
    f = max(1, size // max(img.width, img.height))
    return img.resize((img.width * f, img.height * f), Image.NEAREST) if f > 1 else img


def _crop(rgb: np.ndarray, alpha: np.ndarray | None, box: Box) -> Image.Image:
    x0, y0, x1, y1 = box
    return to_pil(rgb[y0:y1, x0:x1], None if alpha is None else alpha[y0:y1, x0:x1])


def method_crop(comparison: Comparison, name: str, box: Box, display: int = 320) -> Image.Image:
    """The region of one view: a method, ``"input"`` (LR, nearest neighbour) or ``"reference"``."""
    p, s = comparison.prepared, comparison.scale
    if name == "input":
        x0, y0, x1, y1 = (v // s for v in box)
        lr = _crop(p.lr, p.alpha, (x0, y0, x1, y1))
        return _magnify(lr.resize((lr.width * s, lr.height * s), Image.NEAREST), display)
    if name == "reference":
        if p.hr is None:
            raise KeyError("no reference in upscale mode")
        return _magnify(_crop(p.hr, None, box), display)
    r = comparison.results[name]
    return _magnify(_crop(r.rgb, r.alpha, box), display)


def view_names(comparison: Comparison) -> list[tuple[str, str]]:
    """(label, name) of every view of a comparison, in display order."""
    names = [("Input (LR, nearest)", "input")] + [(LABELS[m], m) for m in comparison.results]
    if comparison.prepared.hr is not None:
        names.append(("Reference (HR)", "reference"))
    return names


def crops(comparison: Comparison, box: Box, display: int = 320) -> list[tuple[Image.Image, str]]:
    """The same region of every view, magnified with nearest neighbour, with captions."""
    out = []
    for label, name in view_names(comparison):
        caption = label
        r = comparison.results.get(name)
        if r is not None:
            caption += f" · {r.seconds:.2f} s"
            if r.psnr is not None:
                caption += f" · {r.psnr:.2f} dB"
        out.append((method_crop(comparison, name, box, display), caption))
    return out


def with_box(rgb: np.ndarray, alpha: np.ndarray | None, box: Box) -> Image.Image:
    """The full image (8-bit for display) with the zoom region outlined."""
    img = to_pil(rgb, alpha)
    draw = ImageDraw.Draw(img)
    width = max(2, min(img.width, img.height) // 200)
    x0, y0, x1, y1 = box
    draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=BOX_COLOUR + ((255,) if img.mode == "RGBA" else ()),
                   width=width)
    return img
