"""The input of a comparison: the LR image the methods receive and, in *degrade* mode, the reference
it came from (:func:`prepare`); see :mod:`app.services.superresolve`."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lcoan.imaging.degrade import degrade, imresize_to
from lcoan.imaging.io import LoadedImage, to_uint8
from lcoan.imaging.metrics import SSIM_WIN

from .models import ServiceError, image_key

MODES = {"upscale": "Upscale: the input is the low-resolution image",
         "degrade": "Degrade then restore: the input is the high-resolution reference (PSNR/SSIM)"}


@dataclass(frozen=True, eq=False)
class Prepared:
    """What the methods receive: the LR image and, in degrade mode, the reference it came from."""

    key: tuple
    mode: str
    scale: int
    source_size: tuple[int, int]  # (h, w) of the upload
    lr: np.ndarray  # h x w x 3 uint8 / uint16
    alpha: np.ndarray | None
    hr: np.ndarray | None  # degrade mode: sh x sw x 3 uint8, the reference
    grayscale: bool
    notes: tuple[str, ...] = ()

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.lr, self.alpha, self.hr) if a is not None)


def _shrink(rgb: np.ndarray, alpha: np.ndarray | None, longest: int) -> tuple[np.ndarray, np.ndarray | None]:
    h, w = rgb.shape[:2]
    f = longest / max(h, w)
    size = (max(1, round(h * f)), max(1, round(w * f)))
    return imresize_to(rgb, size), None if alpha is None else imresize_to(alpha, size)


def prepare(image: LoadedImage, scale: int, mode: str, max_output_pixels: int, downscale_to: int = 0) -> Prepared:
    """Build the LR input (and the reference in degrade mode), downscaling first when asked
    (``downscale_to``: longest side in pixels, 0 = no) or when the output would exceed the limit."""
    if mode not in MODES:
        raise ServiceError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    scale, downscale_to = int(scale), int(downscale_to or 0)
    if downscale_to < 0:
        raise ServiceError(f"downscale_to must be 0 (off) or a longest side in pixels, got {downscale_to}")
    h, w = image.rgb.shape[:2]
    notes = list(image.notes)
    key = (image_key(image.rgb), None if image.alpha is None else image_key(image.alpha), scale, mode, downscale_to)
    rgb, alpha = image.rgb, image.alpha
    if downscale_to and max(h, w) > downscale_to:
        rgb, alpha = _shrink(rgb, alpha, downscale_to)
        notes.append(f"downscaled first (MATLAB bicubic) from {w}x{h} to {rgb.shape[1]}x{rgb.shape[0]}, as asked")
    out_pixels = rgb.shape[0] * rgb.shape[1] * (scale * scale if mode == "upscale" else 1)
    if out_pixels > max_output_pixels:
        f = math.sqrt(max_output_pixels / out_pixels)
        before = rgb.shape[:2]
        rgb, alpha = _shrink(rgb, alpha, max(1, math.floor(max(before) * f)))
        notes.append(f"downscaled first from {before[1]}x{before[0]} to {rgb.shape[1]}x{rgb.shape[0]}: the "
                     f"result would have had more than {max_output_pixels:,} pixels (the server's memory limit)")
    if mode == "upscale":
        return Prepared(key, mode, scale, (h, w), rgb, alpha, None, image.grayscale, tuple(notes))
    rh, rw = rgb.shape[:2]
    least = scale * math.ceil((SSIM_WIN + 2 * scale) / scale)
    if rh < least or rw < least:
        raise ServiceError(f"Degrade then restore at x{scale} needs an image of at least {least}x{least} pixels "
                           f"(PSNR/SSIM shave {scale} pixels per border and use an {SSIM_WIN}x{SSIM_WIN} window); "
                           f"this one is {rw}x{rh}. Use Upscale for small images.")
    lh, lw = rh // scale, rw // scale
    if rgb.dtype == np.uint16:
        notes.append("16-bit input scored at 8 bits, as lcoan.evaluate does")
    if alpha is not None:
        notes.append("alpha channel not used in Degrade then restore (scores are on colour)")
    if rh % scale or rw % scale:
        notes.append(f"reference cropped to {lw * scale}x{lh * scale} (a multiple of the scale)")
    rgb8 = to_uint8(rgb)  # the loader's one 16 -> 8-bit converter, as lcoan.evaluate scores
    hr = np.ascontiguousarray(rgb8[: lh * scale, : lw * scale])
    return Prepared(key, mode, scale, (h, w), degrade(hr, scale), None, hr, image.grayscale, tuple(notes))
