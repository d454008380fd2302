"""Shared helpers of the views: cluster palette, display scaling, colour maps."""
from __future__ import annotations

import functools

import numpy as np
from matplotlib import colormaps
from PIL import Image
from skimage.color import rgb2lab

DISPLAY_TARGET = 640  # longer side of the overlays, display pixels (the tabs show them 640 high)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB in 0..255 -> (..., 3) CIELAB (D65, 2 degree observer), for perceptual colour distances."""
    return rgb2lab(np.asarray(rgb, dtype=np.float64) / 255.0)


@functools.lru_cache(maxsize=8)
def _palette(k: int) -> np.ndarray:
    grid = np.arange(0, 256, 17)
    cand = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), -1).reshape(-1, 3)
    lab = srgb_to_lab(cand)
    keep = (lab[:, 0] > 30) & (lab[:, 0] < 88)  # neither too dark nor too light to read over a photo
    cand, lab = cand[keep], lab[keep]
    chosen = [int(np.argmax(np.hypot(lab[:, 1], lab[:, 2])))]
    dist = np.linalg.norm(lab - lab[chosen[0]], axis=1)
    for _ in range(k - 1):
        i = int(np.argmax(dist))
        chosen.append(i)
        dist = np.minimum(dist, np.linalg.norm(lab - lab[i], axis=1))
    out = cand[chosen].astype(np.uint8)
    out.setflags(write=False)
    return out


def palette(k: int) -> np.ndarray:
    """(K, 3) uint8 colours for cluster ids 0..K-1, as far apart as possible.

    Greedy farthest-point selection in CIELAB among mid-lightness sRGB colours: colour i is the
    candidate farthest from colours 0..i-1, so no two ids share a colour and every pair differs
    by at least ~16 Delta-E for K = 128 (ids next to each other by ~20). Cluster ids carry no
    order (a centroid's index is arbitrary), so every pair, not only consecutive ids, must be
    distinguishable: clusters that meet in the image have unrelated ids.
    """
    return _palette(int(k))


def rgb_css(c: np.ndarray) -> str:
    return f"rgb({int(c[0])},{int(c[1])},{int(c[2])})"


def display_uint8(image: np.ndarray) -> np.ndarray:
    """(h, w, 3) float in [0, 1] or uint8 -> uint8 for display: values outside [0, 1] are clipped, never
    refused (an image file's bit depth goes through :func:`lcoan.imaging.pixels.to_uint8` instead)."""
    if image.dtype == np.uint8:
        return image
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)


def display_factor(size: tuple[int, int], target: int = DISPLAY_TARGET) -> int:
    """Integer upscaling so the longer side of an (h, w) map is about ``target`` display pixels."""
    return max(1, target // max(size))


def enlarge(rgb: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling by an integer factor: each LR position becomes a factor x factor block."""
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)


def display_to_position(x: float, y: float, size: tuple[int, int], factor: int | None = None) -> tuple[int, int]:
    """A click at display pixel (x, y) of an image made by :func:`enlarge` -> LR position (row, col)."""
    h, w = size
    f = display_factor(size) if factor is None else factor
    return min(h - 1, max(0, int(y) // f)), min(w - 1, max(0, int(x) // f))


def colormap(values: np.ndarray, name: str = "inferno") -> np.ndarray:
    """Values in [0, 1] (any shape) -> uint8 RGB (..., 3)."""
    rgba = colormaps[name](np.clip(values, 0, 1))
    return np.round(rgba[..., :3] * 255).astype(np.uint8)


def mark(rgb: np.ndarray, row: int, col: int, factor: int, colour=(0, 255, 255), pad: int | None = None) -> np.ndarray:
    """Outline LR position (row, col) on an enlarged image: a box around its factor x factor block,
    ``pad`` display pixels outside it (default: enough to stay visible when positions are small)."""
    out = rgb.copy()
    h, w = out.shape[:2]
    pad = (max(1, 8 - factor) if factor < 8 else 0) if pad is None else pad
    y0, x0 = max(0, row * factor - pad), max(0, col * factor - pad)
    y1, x1 = min(h, (row + 1) * factor + pad) - 1, min(w, (col + 1) * factor + pad) - 1
    t = max(1, factor // 8)
    out[y0:y0 + t, x0:x1 + 1] = colour
    out[y1 - t + 1:y1 + 1, x0:x1 + 1] = colour
    out[y0:y1 + 1, x0:x0 + t] = colour
    out[y0:y1 + 1, x1 - t + 1:x1 + 1] = colour
    return out


def pil(rgb: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(rgb))
