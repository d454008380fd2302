"""MATLAB-compatible bicubic resizing and the standard SR degradation.

A port of MATLAB's ``imresize(img, scale, 'bicubic')`` (Image Processing Toolbox):

* cubic convolution kernel with a = -0.5 (Keys 1981), support 4;
* when downscaling with antialiasing (MATLAB's default), the kernel is stretched by
  ``1/scale`` and scaled by ``scale`` (``h(x) = scale * cubic(scale * x)``, width ``4/scale``);
* output pixel ``x`` (1-based) maps to input coordinate ``u = x/scale + 0.5*(1 - 1/scale)``;
  the taps are ``floor(u - width/2) + (0 .. ceil(width)+1)``, the weights are normalised to
  sum to one per output pixel, and taps falling outside the image are clamped to the nearest
  edge pixel (replicated border, ``min(max(1, indices), n)`` in MATLAB's ``contributions``);
* tap columns whose weight is zero for every output pixel are dropped (MATLAB's ``kill``);
* the image is resized one dimension at a time, the dimension with the smaller scale first
  (MATLAB sorts the scales stably, so rows go first when both scales are equal);
* for integer images every pass is computed in float64 and then rounded half away from zero
  and saturated to the input type, like MATLAB's ``imresizemex`` (so the intermediate result
  after the first pass is also integer). Float images stay float, unclipped.

The output size for a scale factor is ``ceil(scale * size)`` per dimension, as in MATLAB.

Checked against the MATLAB-made LR files of Set5 and Set14 (x2, x3, x4; tests/test_degrade.py):
``degrade(HR)`` reproduces all 57 of them bit-exactly. A symmetric-mirror border (the
``[1..n, n..1]`` index table some ports use) agrees in the interior but differs on the outer
1-3 LR pixels (up to 11 grey levels); skipping the integer rounding between the two passes
changes ~14% of all pixels by one level. Both were measured and rejected.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["imresize", "imresize_to", "degrade", "bicubic_upscale", "cubic_kernel"]

_KERNEL_WIDTH = 4.0
_INT_RANGES = {np.dtype(np.uint8): (0, 255), np.dtype(np.uint16): (0, 65535)}
_FLOAT_TYPES = (np.dtype(np.float32), np.dtype(np.float64))


def cubic_kernel(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``); same shape as ``x``."""
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1) + (
        -0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0
    ) * ((ax > 1) & (ax <= 2))


def _contributions(
    in_length: int, out_length: int, scale: float, antialiasing: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Weights (out_length x P, float64) and 0-based input indices (out_length x P) for one axis."""
    if scale < 1 and antialiasing:
        width = _KERNEL_WIDTH / scale

        def h(v: np.ndarray) -> np.ndarray:
            return scale * cubic_kernel(scale * v)

    else:
        width = _KERNEL_WIDTH
        h = cubic_kernel

    x = np.arange(1, out_length + 1, dtype=np.float64)[:, None]
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    indices = left + np.arange(taps, dtype=np.float64)[None, :]  # 1-based, may be out of range
    weights = h(u - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)

    # Boundary: out-of-range taps are clamped to the edge (MATLAB: "Clamp out-of-range
    # indices; has the effect of replicating end-points"). Mirroring the taps instead
    # ([1..n, n..1] repeated) does NOT reproduce the benchmark LR files (see module doc).
    idx = np.clip(indices.astype(np.int64) - 1, 0, in_length - 1)

    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], idx[:, keep]


def _resize_axis(x: np.ndarray, axis: int, weights: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Resize float64 array ``x`` along ``axis`` with per-output weights/indices (out x P)."""
    shape = [1] * x.ndim
    shape[axis] = weights.shape[0]
    out = np.take(x, idx[:, 0], axis=axis)
    out *= weights[:, 0].reshape(shape)
    for j in range(1, weights.shape[1]):  # same summation order as imresizemex
        term = np.take(x, idx[:, j], axis=axis)
        term *= weights[:, j].reshape(shape)
        out += term
    return out


def _round_saturate(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    lo, hi = _INT_RANGES[dtype]
    # round half away from zero (values are clipped to >= 0 anyway, but keep MATLAB's rule)
    r = np.sign(x) * np.floor(np.abs(x) + 0.5)
    return np.clip(r, lo, hi).astype(dtype)


def _check_image(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim not in (2, 3):
        raise ValueError(f"expected an HxW or HxWxC image, got shape {img.shape}")
    if img.dtype not in _INT_RANGES and img.dtype not in _FLOAT_TYPES:
        raise TypeError(
            f"unsupported dtype {img.dtype}: use uint8, uint16, float32 or float64"
        )
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"empty image of shape {img.shape}")
    return img


def _resize(
    img: np.ndarray, scales: Sequence[float], out_hw: Sequence[int]
) -> np.ndarray:
    """Core of imresize: per-dimension scales (h, w) and output size (h, w)."""
    img = _check_image(img)
    out_hw = tuple(int(v) for v in out_hw)
    if min(out_hw) < 1:
        raise ValueError(
            f"output size {out_hw} for input {img.shape[:2]} has a zero dimension; "
            "use a larger scale or output size"
        )
    dtype = img.dtype
    order = sorted(range(2), key=lambda d: scales[d])  # stable: rows first on ties
    out = img
    for d in order:
        w, idx = _contributions(img.shape[d], out_hw[d], float(scales[d]))
        res = _resize_axis(out.astype(np.float64, copy=False), d, w, idx)
        out = _round_saturate(res, dtype) if dtype in _INT_RANGES else res
    if dtype in _FLOAT_TYPES:
        out = out.astype(dtype, copy=False)
    return out


def imresize(img: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB ``imresize(img, scale, 'bicubic')``: HxW[xC] -> ceil(H*scale) x ceil(W*scale)[xC].

    uint8/uint16 in -> same dtype out (rounded, saturated); float32/float64 in -> same dtype out.
    """
    scale = float(scale)
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a positive finite number, got {scale}")
    img = _check_image(img)
    out_hw = tuple(int(math.ceil(scale * n)) for n in img.shape[:2])
    if min(out_hw) < 1:
        raise ValueError(
            f"scale {scale} turns input size {img.shape[:2]} into {out_hw}, which has a zero dimension"
        )
    return _resize(img, (scale, scale), out_hw)


def imresize_to(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """MATLAB ``imresize(img, [out_h out_w], 'bicubic')``: HxW[xC] -> out_h x out_w[xC].

    Each dimension uses scale = out/in (as MATLAB does); dtype rules as in :func:`imresize`.
    """
    img = _check_image(img)
    if len(size) != 2:
        raise ValueError(f"size must be (out_h, out_w), got {size!r}")
    out_h, out_w = int(size[0]), int(size[1])
    if out_h < 1 or out_w < 1:
        raise ValueError(f"output size must be at least 1x1, got {(out_h, out_w)}")
    scales = (out_h / img.shape[0], out_w / img.shape[1])
    return _resize(img, scales, (out_h, out_w))


def degrade(hr: np.ndarray, scale: int) -> np.ndarray:
    """Make the LR image of the SR benchmarks: HxW[xC] -> (H//s) x (W//s)[xC].

    ``hr`` is cropped top-left aligned to ``(H - H % s, W - W % s)`` and then downscaled with
    MATLAB ``imresize(hr, 1/s, 'bicubic')`` (antialiased). Same dtype as ``hr``.
    """
    if isinstance(scale, bool) or int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    s = int(scale)
    hr = _check_image(hr)
    h, w = hr.shape[0] - hr.shape[0] % s, hr.shape[1] - hr.shape[1] % s
    if h == 0 or w == 0:
        raise ValueError(f"image of size {hr.shape[:2]} is smaller than the scale {s}")
    hr = hr[:h, :w]
    # MATLAB uses the scale 1/s itself in the coordinate mapping; the output size
    # ceil(n/s) equals n//s here because n is a multiple of s.
    return _resize(hr, (1.0 / s, 1.0 / s), (h // s, w // s))


def bicubic_upscale(lr: np.ndarray, scale: float) -> np.ndarray:
    """Bicubic upscaling baseline, MATLAB ``imresize(lr, scale)``: HxW[xC] -> sH x sW[xC]."""
    return imresize(lr, scale)
