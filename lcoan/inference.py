"""Inference on whole images: overlapping tiles with blended seams under a memory budget.

Borders: the network's convolutions pad with zeros, and zero is the dataset's mean colour after the
mean shift, so the outer ~8 LR pixels of every output are pulled towards grey-brown; on inputs of a
few pixels that is the whole image (a 1x1 (200, 10, 10) came back as (115, 104, 89) at x4).
``pad`` LR pixels of edge replication around the input (cropped off again afterwards) remove that:
a constant image then stays constant within 1/255 from 1x1 up (tests/test_app_colours.py).
The user-facing paths (:func:`upscale_image`, :func:`upscale`, the app, ``lcoan.infer``) use
:data:`DEFAULT_PAD`; :func:`sr_tensor` and :func:`upscale_array` default to 0, the raw network,
which is what :mod:`lcoan.evaluate` scores (the recorded benchmark numbers stay reproducible).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .attention.lsp import effective_window
from .imaging.degrade import bicubic_upscale
from .imaging.io import LoadedImage, load_image, to_pil
from .network import LCoAN

ProgressFn = Callable[[int, int], None]
DEFAULT_BUDGET_BYTES = 2 * 1024**3
DEFAULT_OVERLAP = 16
DEFAULT_PAD = 8  # LR pixels of edge replication: measured enough for the shipped S models (see module doc)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def estimate_bytes(model: LCoAN, h: int, w: int) -> int:
    """Rough peak memory of one no-grad forward pass on an h x w LR tile (activations + attention)."""
    cfg = model.cfg
    n = h * w
    act = 4 * n * cfg.num_feat * (6 + 2 * cfg.scale**2)
    if cfg.attention == "lsp":
        win = effective_window(n, cfg.window)
        attn = 4 * n * 3 * win * cfg.rounds * 3
    elif cfg.attention == "dense":
        # SDPA's CPU/flash kernels work block-wise: memory linear in N (time stays quadratic).
        attn = 4 * n * (2 * cfg.match_dim + 2 * cfg.num_feat)
    else:
        attn = 0
    return act + attn


def tile_size_for(model: LCoAN, budget_bytes: int = DEFAULT_BUDGET_BYTES, cap: int = 512) -> int:
    """Largest square LR tile (multiple of 8, at most ``cap``) whose estimate fits the budget."""
    size = cap
    while size > 16 and estimate_bytes(model, size, size) > budget_bytes:
        size -= 8
    return size


def _ramp(length: int, overlap: int, start_edge: bool, end_edge: bool) -> Tensor:
    """1-D blending weights: linear ramps over the overlap, except at the image border."""
    i = torch.arange(length, dtype=torch.float32) + 0.5
    w = torch.ones(length)
    if overlap > 0:
        if not start_edge:
            w = torch.minimum(w, i / overlap)
        if not end_edge:
            w = torch.minimum(w, (length - i) / overlap)
    return w


def _starts(total: int, tile: int, overlap: int) -> list[int]:
    if total <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, total - tile, step)) + [total - tile]
    return sorted(set(starts))


@torch.inference_mode()
def sr_tensor(model: LCoAN, x: Tensor, tile: int | tuple[int, int] | None = None, overlap: int = DEFAULT_OVERLAP,
              budget_bytes: int = DEFAULT_BUDGET_BYTES, progress: ProgressFn | None = None,
              pad: int = 0) -> Tensor:
    """Super-resolve (1, 3, H, W) in [0, 1] -> (1, 3, sH, sW), clamped to [0, 1].

    ``tile`` (a side, or (height, width) for tiles that fit the image's shape with less overlap)
    None picks the largest square tile within ``budget_bytes``; inputs no larger than the tile
    run in one pass. Tiles overlap by ``overlap`` LR pixels and are blended with linear ramps.
    ``pad`` > 0 replicates the border by that many LR pixels first and crops the result back, so the
    zero padding of the convolutions does not tint the borders (see the module docstring); ``tile``
    then grows by ``2 * pad``.
    """
    if x.ndim != 4 or x.shape[:2] != (1, 3):
        raise ValueError(f"expected a (1, 3, H, W) tensor, got {tuple(x.shape)}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    device = next(model.parameters()).device
    x = x.to(device=device, dtype=torch.float32)
    s = model.cfg.scale
    if pad:  # tiles grow with the padding, so an input that fits one tile still runs in one pass
        out = sr_tensor(model, torch.nn.functional.pad(x, (pad, pad, pad, pad), mode="replicate"),
                        tile=None if not tile else (tile + 2 * pad if isinstance(tile, int)
                                                    else (tile[0] + 2 * pad, tile[1] + 2 * pad)),
                        overlap=overlap, budget_bytes=budget_bytes, progress=progress)
        return out[:, :, pad * s:out.shape[2] - pad * s, pad * s:out.shape[3] - pad * s].contiguous()
    _, _, h, w = x.shape
    tile = tile or tile_size_for(model, budget_bytes)
    tile_h, tile_w = (tile, tile) if isinstance(tile, int) else (int(tile[0]), int(tile[1]))
    overlap = max(0, min(overlap, min(tile_h, tile_w) // 2))
    ys, xs = _starts(h, tile_h, overlap), _starts(w, tile_w, overlap)
    total = len(ys) * len(xs)
    if total == 1:
        out = model(x).clamp_(0, 1)
        if progress:
            progress(1, 1)
        return out
    acc = torch.zeros(1, 3, h * s, w * s, device=device)
    norm = torch.zeros(1, 1, h * s, w * s, device=device)
    done = 0
    for y0 in ys:
        th = min(tile_h, h - y0)
        wy = _ramp(th * s, overlap * s, y0 == 0, y0 + th == h)
        for x0 in xs:
            tw = min(tile_w, w - x0)
            wx = _ramp(tw * s, overlap * s, x0 == 0, x0 + tw == w)
            weight = (wy[:, None] * wx[None, :]).to(device)[None, None]
            out = model(x[:, :, y0:y0 + th, x0:x0 + tw])
            acc[:, :, y0 * s:(y0 + th) * s, x0 * s:(x0 + tw) * s] += out * weight
            norm[:, :, y0 * s:(y0 + th) * s, x0 * s:(x0 + tw) * s] += weight
            done += 1
            if progress:
                progress(done, total)
    return (acc / norm).clamp_(0, 1)


def to_tensor(rgb: np.ndarray) -> Tensor:
    """HxWx3 uint8 / uint16 / float in [0, 1] -> (1, 3, H, W) float32."""
    if rgb.dtype == np.uint8:
        arr = rgb.astype(np.float32) / 255.0
    elif rgb.dtype == np.uint16:
        arr = rgb.astype(np.float32) / 65535.0
    else:
        arr = rgb.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None]


def from_tensor(x: Tensor, dtype: np.dtype) -> np.ndarray:
    """(1, 3, H, W) in [0, 1] -> HxWx3 of ``dtype`` (uint8 / uint16 rounded, float as is)."""
    arr = x[0].permute(1, 2, 0).float().cpu().numpy()
    if dtype == np.uint8:
        return np.round(arr * 255.0).astype(np.uint8)
    if dtype == np.uint16:
        return np.round(arr * 65535.0).astype(np.uint16)
    return arr.astype(dtype)


def upscale_array(model: LCoAN, rgb: np.ndarray, **kwargs) -> np.ndarray:
    """HxWx3 array (uint8, uint16 or float in [0, 1]) -> sH x sW x 3 array of the same dtype."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB array, got shape {rgb.shape}")
    return from_tensor(sr_tensor(model, to_tensor(rgb), **kwargs), rgb.dtype)


def upscale_image(model: LCoAN | None, image: LoadedImage, scale: int | None = None,
                  **kwargs) -> tuple[np.ndarray, np.ndarray | None]:
    """Super-resolve a loaded image (``model`` None: MATLAB bicubic at ``scale``).

    Returns (rgb, alpha) at the source bit depth; alpha, when present, is upscaled with bicubic.
    Keyword arguments go to :func:`sr_tensor`; ``pad`` defaults to :data:`DEFAULT_PAD` here.
    """
    kwargs.setdefault("pad", DEFAULT_PAD)
    scale = model.cfg.scale if model is not None else scale
    if scale is None:
        raise ValueError("bicubic upscaling needs a scale")
    if model is None:
        rgb = bicubic_upscale(image.rgb, scale)
    else:
        rgb = upscale_array(model, image.rgb, **kwargs)
    alpha = None if image.alpha is None else bicubic_upscale(image.alpha, scale)
    return rgb, alpha


def upscale(model: LCoAN, image: Image.Image | np.ndarray, **kwargs) -> Image.Image | np.ndarray:
    """Super-resolve a PIL image or an image array; returns the same kind.

    Arrays: HxWx3 (uint8, uint16 or float in [0, 1]) -> same dtype. PIL images go through
    :func:`lcoan.imaging.io.load_image` (orientation, modes, alpha) and come back as 8-bit RGB / RGBA.
    Keyword arguments go to :func:`sr_tensor` (tile, overlap, budget_bytes, progress, pad: default
    :data:`DEFAULT_PAD`).
    """
    kwargs.setdefault("pad", DEFAULT_PAD)
    if isinstance(image, np.ndarray):
        return upscale_array(model, image, **kwargs)
    if not isinstance(image, Image.Image):
        raise TypeError(f"upscale takes a PIL image or a numpy array, not {type(image).__name__}")
    rgb, alpha = upscale_image(model, load_image(image), **kwargs)
    return to_pil(rgb, alpha)
