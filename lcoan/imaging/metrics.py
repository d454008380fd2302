"""Super-resolution evaluation metrics on the Y channel (the protocol of the SR literature).

Protocol: convert SR and HR to Y of YCbCr (ITU-R BT.601, studio range 16-235), shave ``scale``
pixels from every border, then PSNR (peak 255) and SSIM (Wang et al. 2004: 11x11 Gaussian
window, sigma 1.5, population covariances, K1 = 0.01, K2 = 0.03) on Y.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import structural_similarity

__all__ = ["rgb_to_y", "shave", "psnr_y", "ssim_y", "SSIM_SIGMA", "SSIM_WIN"]

SSIM_SIGMA = 1.5
# skimage uses truncate=3.5 when gaussian_weights=True: radius int(3.5*1.5 + 0.5) = 5, i.e. an
# 11x11 window (2*5+1), matching Wang et al.'s fspecial('gaussian', 11, 1.5).
SSIM_WIN = 2 * int(3.5 * SSIM_SIGMA + 0.5) + 1

_Y_COEFFS = np.array([65.481, 128.553, 24.966], dtype=np.float64)


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 luma, HxWx3 (or HxW) in [0, 255] -> HxW float64 in [16, 235], not rounded.

    ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255``. A grayscale HxW (or HxWx1) image is
    first replicated to 3 equal channels (as the benchmark protocol does for Set14's mode-L
    image), so it maps to ``16 + 219/255 * v`` -- one rule for every image.
    """
    x = np.asarray(img)
    if x.ndim == 3 and x.shape[2] == 1:
        x = x[:, :, 0]
    if x.ndim == 2:
        x = np.repeat(x[:, :, None], 3, axis=2)
    if x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB or HxW grayscale image, got shape {x.shape}")
    x = x.astype(np.float64, copy=False)
    return 16.0 + (x @ _Y_COEFFS) / 255.0


def shave(img: np.ndarray, border: int) -> np.ndarray:
    """Drop ``border`` pixels from each side: HxW[xC] -> (H-2b)x(W-2b)[xC] (a view)."""
    b = int(border)
    if b < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    if b == 0:
        return img
    h, w = img.shape[:2]
    if 2 * b >= h or 2 * b >= w:
        raise ValueError(f"cannot shave {b} pixels from each border of a {h}x{w} image")
    return img[b : h - b, b : w - b]


def _y_pair(sr: np.ndarray, hr: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    sr = np.asarray(sr)
    hr = np.asarray(hr)
    if sr.shape != hr.shape:
        raise ValueError(f"SR and HR sizes differ: {sr.shape} vs {hr.shape}")
    return shave(rgb_to_y(sr), scale), shave(rgb_to_y(hr), scale)


def psnr_y(sr: np.ndarray, hr: np.ndarray, scale: int) -> float:
    """Y-channel PSNR in dB (peak 255) of two same-size HxWx3 (or HxW) images in [0, 255].

    ``scale`` pixels are shaved from each border first; identical images give ``inf``.
    """
    ys, yh = _y_pair(sr, hr, scale)
    mse = float(np.mean((ys - yh) ** 2))
    if mse == 0.0:
        return float("inf")
    return 10.0 * math.log10(255.0**2 / mse)


def ssim_y(sr: np.ndarray, hr: np.ndarray, scale: int) -> float:
    """Y-channel SSIM (Wang et al. 2004) of two same-size HxWx3 (or HxW) images in [0, 255].

    ``scale`` pixels are shaved first; then ``skimage.metrics.structural_similarity`` with
    gaussian_weights=True, sigma=1.5 (skimage truncates at 3.5 sigma -> radius 5, the 11x11
    window), use_sample_covariance=False, data_range=255; the SSIM map is averaged over the
    positions where the whole window fits (skimage crops the 5-pixel filter border).
    """
    ys, yh = _y_pair(sr, hr, scale)
    if min(ys.shape) < SSIM_WIN:
        raise ValueError(f"image {ys.shape} (after shaving) is smaller than the {SSIM_WIN}x{SSIM_WIN} SSIM window")
    return float(
        structural_similarity(
            ys,
            yh,
            gaussian_weights=True,
            sigma=SSIM_SIGMA,
            use_sample_covariance=False,
            data_range=255.0,
        )
    )
