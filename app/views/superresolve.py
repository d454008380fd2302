"""Views of a :class:`app.services.superresolve.Comparison`: the region in every method, the slider pair, and a
display-size preview of the whole result with the region outlined.

Pure functions from arrays to PIL images (8-bit, for display only; downloads keep the full depth).
The region is the comparison's :class:`app.services.superresolve.Box` (LR pixels); views show its
super-resolved pixels, magnified with nearest neighbour.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from lcoan.imaging.io import to_pil

from ..services.superresolve import LABELS, Comparison

BOX_COLOUR = (255, 214, 0)
PREVIEW_SIDE = 1600  # longest side of the whole-result preview sent to the browser


def _magnify(img: Image.Image, size: int) -> Image.Image:
    f = max(1, size // max(img.width, img.height))
    return img.resize((img.width * f, img.height * f), Image.NEAREST) if f > 1 else img


def view_names(comparison: Comparison) -> list[tuple[str, str]]:
    """(label, name) of every view of a comparison, in display order."""
    names = [("Input (LR, nearest)", "input")] + [(LABELS[m], m) for m in comparison.results]
    if comparison.prepared.hr is not None:
        names.append(("Reference (HR)", "reference"))
    return names


def method_crop(comparison: Comparison, name: str, display: int = 384) -> Image.Image:
    """The region in one view: a method, ``"input"`` (LR, nearest neighbour) or ``"reference"``."""
    p, s, b = comparison.prepared, comparison.scale, comparison.box
    if name == "input":
        lr = p.lr[b.y0:b.y0 + b.h, b.x0:b.x0 + b.w]
        alpha = None if p.alpha is None else p.alpha[b.y0:b.y0 + b.h, b.x0:b.x0 + b.w]
        img = to_pil(lr, alpha)
        return _magnify(img.resize((img.width * s, img.height * s), Image.NEAREST), display)
    if name == "reference":
        ref = comparison.region_reference()
        if ref is None:
            raise KeyError("no reference in upscale mode")
        return _magnify(to_pil(ref), display)
    rgb, alpha = comparison.region(name)
    return _magnify(to_pil(rgb, alpha), display)


def crops(comparison: Comparison, display: int = 384) -> list[tuple[Image.Image, str]]:
    """The region in every view with short captions (method · time · region PSNR)."""
    out = []
    for label, name in view_names(comparison):
        caption = label
        r = comparison.results.get(name)
        if r is not None:
            caption += f" · {r.seconds:.1f} s"
            psnr, _ = comparison.region_scores(name)
            if psnr is not None:
                caption += f" · {psnr:.2f} dB"
        out.append((method_crop(comparison, name, display), caption))
    return out


def preview_factor(comparison: Comparison, side: int = PREVIEW_SIDE) -> float:
    """Display pixels per SR pixel of the preview (<= 1: large results are shown reduced)."""
    w, h = comparison.output_size
    return min(1.0, side / max(w, h))


def preview(comparison: Comparison, method: str, side: int = PREVIEW_SIDE) -> Image.Image:
    """The whole result of ``method`` (at most ``side`` px a side, 8-bit) with the region outlined."""
    r = comparison.results[method]
    img = to_pil(r.rgb, r.alpha)
    f = preview_factor(comparison, side)
    if f < 1:
        img = img.resize((max(1, round(img.width * f)), max(1, round(img.height * f))), Image.BILINEAR)
    draw = ImageDraw.Draw(img)
    width = max(2, min(img.width, img.height) // 200)
    x0, y0, x1, y1 = (v * f for v in comparison.box.sr(comparison.scale))
    draw.rectangle((x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)),
                   outline=BOX_COLOUR + ((255,) if img.mode == "RGBA" else ()), width=width)
    return img


def with_box(rgb: np.ndarray, alpha: np.ndarray | None, box: tuple[int, int, int, int]) -> Image.Image:
    """A full-size image (8-bit for display) with a box (x0, y0, x1, y1) outlined."""
    img = to_pil(rgb, alpha)
    draw = ImageDraw.Draw(img)
    width = max(2, min(img.width, img.height) // 200)
    x0, y0, x1, y1 = box
    draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=BOX_COLOUR + ((255,) if img.mode == "RGBA" else ()),
                   width=width)
    return img
