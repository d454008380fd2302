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

import math
import os
import time
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
DEFAULT_TILE_CAP = 384  # LR side: larger tiles recompute less overlap but hold more memory (~1 GiB, LCoAN S)
DEFAULT_PAD = 8  # LR pixels of edge replication: measured enough for the shipped S models (see module doc)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def reuse_freed_memory(limit_bytes: int = 2 * 1024**3) -> bool:
    """Keep freed buffers up to ``limit_bytes`` in the process heap (glibc ``mallopt``) instead of
    returning them to the system; returns whether it could (glibc only).

    By default glibc maps every allocation above 32 MiB afresh and unmaps it when freed, so every
    large activation of a pass (a 512 x 512 tile's feature maps, the attention weights) page-faults
    on first touch: measured here, that made a 528-px tile ~1.5x slower per pixel than a 128-px one
    for the no-attention network, and is why ``python -m lcoan.infer`` (tiles of 528 px) was slower
    than the same backbone in-process. Called by the entry points (``lcoan.infer``, the app,
    ``lcoan.bench``), not at import: it changes the whole process's allocator.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    limit = min(limit_bytes, 2**31 - 1)
    return bool(mallopt(m_mmap_threshold, min(limit, 2**30))) and bool(mallopt(m_trim_threshold, limit))


def own_cores() -> set[int]:
    """The CPUs this process may run on (its affinity; every CPU where that is unknown)."""
    try:
        return os.sched_getaffinity(0)
    except AttributeError:
        return set(range(os.cpu_count() or 1))


def cpu_times(path: str = "/proc/stat") -> dict[int, tuple[int, int]]:
    """Per-CPU (total, idle) jiffies since boot from Linux's /proc/stat (idle includes iowait)."""
    times = {}
    with open(path) as f:
        for line in f:
            name, *fields = line.split()
            if not (name.startswith("cpu") and name[3:].isdigit()):
                continue
            values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
            times[int(name[3:])] = (sum(values), values[3] + values[4])
    return times


def busy_cores(sample_s: float = 0.2, read: Callable[[], dict[int, tuple[int, int]]] = cpu_times) -> float:
    """How many of this process's cores other work keeps busy right now: the non-idle share of each
    core's time over ``sample_s`` seconds (this process sleeps meanwhile), summed. Falls back to the
    1-minute load average where /proc/stat is missing. The load average lags by a minute: right after
    another job (or the previous command) it still counts cores that are idle now."""
    try:
        before = read()
        time.sleep(sample_s)
        after = read()
        busy = 0.0
        for c in own_cores():
            total = after[c][0] - before[c][0]
            if total > 0:
                busy += 1 - (after[c][1] - before[c][1]) / total
        return busy
    except (OSError, ValueError, KeyError, IndexError):
        try:
            return os.getloadavg()[0]
        except (OSError, AttributeError):
            return 0.0


def idle_cores(busy: float | None = None) -> int:
    """Cores not already busy (:func:`busy_cores` unless given), at least 1: on a shared CPU more torch
    threads than idle cores make a pass slower, not faster (each parallel op waits for the busiest
    core; measured here: 2 threads 2x slower than 1 while other jobs held a core)."""
    cores = len(own_cores())
    busy = busy_cores() if busy is None else busy
    return max(1, min(cores, cores - round(busy)))


def estimate_bytes(model: LCoAN, h: int, w: int) -> int:
    """Rough peak memory of one no-grad forward pass on an h x w LR tile (activations + attention)."""
    cfg = model.cfg
    n = h * w
    act = 4 * n * cfg.num_feat * (6 + 2 * cfg.scale**2)
    if cfg.attention == "lsp":
        win = effective_window(n, cfg.window)
        # the shared weights (N x 3W, softmax in place over the scores) and, per round, the
        # log-sum-exp and the framed query / key / value buffers
        attn = 4 * n * 3 * win * cfg.rounds + 4 * n * (3 * cfg.match_dim + 2 * cfg.num_feat)
    elif cfg.attention == "dense":
        # SDPA's CPU/flash kernels work block-wise: memory linear in N (time stays quadratic).
        attn = 4 * n * (2 * cfg.match_dim + 2 * cfg.num_feat)
    else:
        attn = 0
    return act + attn


def tile_size_for(model: LCoAN, budget_bytes: int = DEFAULT_BUDGET_BYTES, cap: int = DEFAULT_TILE_CAP) -> int:
    """Largest square LR tile (multiple of 8, at most ``cap``) whose estimate fits the budget."""
    size = cap
    while size > 16 and estimate_bytes(model, size, size) > budget_bytes:
        size -= 8
    return size


def balanced_side(length: int, max_side: int, overlap: int) -> int:
    """The side of the tiles that cover ``length`` in the fewest tiles of at most ``max_side``, as
    small as that allows (never longer than ``length``): less overlap, fewer pixels computed twice."""
    if length <= max_side:
        return length
    n = math.ceil((length - overlap) / (max_side - overlap))
    return math.ceil((length - overlap) / n) + overlap


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


def _tile_shape(model: LCoAN, h: int, w: int, tile: int | tuple[int, int] | None, overlap: int,
                budget_bytes: int, pad: int = 0) -> tuple[int, int]:
    """(height, width) of the tiles: as given, or (None) the budget's largest square side, balanced
    on this h x w image so that no tile is larger than the image and the overlap is minimal.
    ``pad``: the edge padding already in h and w; the automatic side grows by it (within the budget),
    so an image of the cap's size still runs in one pass instead of four small tiles."""
    if isinstance(tile, (tuple, list)):
        return int(tile[0]), int(tile[1])
    if tile:
        return tile, tile
    side = tile_size_for(model, budget_bytes)
    if pad and estimate_bytes(model, side + 2 * pad, side + 2 * pad) <= budget_bytes:
        side += 2 * pad
    overlap = max(0, min(overlap, side // 2))
    return balanced_side(h, side, overlap), balanced_side(w, side, overlap)


# A sink takes (first super-resolved row, a finished band (1, 3, rows, sW) clamped to [0, 1]).
Sink = Callable[[int, Tensor], None]


def _bands(model: LCoAN, x: Tensor, tile_h: int, tile_w: int, overlap: int, progress: ProgressFn | None,
           sink: Sink) -> None:
    """Run the tiles of x (1, 3, H, W) row by row and hand each band of finished output rows to
    ``sink``: rows above the next tile row get no more tiles, so only one tile row of blending
    buffers is held (the memory is bounded by the tiling, not the image). Every pixel is blended
    with the same weights in the same order as one whole-image accumulator would."""
    device = x.device
    s = model.cfg.scale
    _, _, h, w = x.shape
    overlap = max(0, min(overlap, min(tile_h, tile_w) // 2))
    ys, xs = _starts(h, tile_h, overlap), _starts(w, tile_w, overlap)
    total = len(ys) * len(xs)
    if total == 1:
        sink(0, model(x).clamp_(0, 1))
        if progress:
            progress(1, 1)
        return
    done, top, acc, norm = 0, 0, None, None  # acc / norm: rows [top, top + acc.shape[2]) of the output
    for y0 in ys:
        th = min(tile_h, h - y0)
        if acc is not None and y0 * s > top:  # rows above this tile row are final
            cut = y0 * s - top
            sink(top, (acc[:, :, :cut] / norm[:, :, :cut]).clamp_(0, 1))
            acc, norm, top = acc[:, :, cut:], norm[:, :, cut:], y0 * s
        rows = (y0 + th) * s - top
        if acc is None or acc.shape[2] < rows:
            grown = torch.zeros(1, 3, rows, w * s, device=device), torch.zeros(1, 1, rows, w * s, device=device)
            if acc is not None:
                grown[0][:, :, :acc.shape[2]] = acc
                grown[1][:, :, :norm.shape[2]] = norm
            acc, norm = grown
        wy = _ramp(th * s, overlap * s, y0 == 0, y0 + th == h)
        for x0 in xs:
            tw = min(tile_w, w - x0)
            wx = _ramp(tw * s, overlap * s, x0 == 0, x0 + tw == w)
            weight = (wy[:, None] * wx[None, :]).to(device)[None, None]
            out = model(x[:, :, y0:y0 + th, x0:x0 + tw])
            r0 = y0 * s - top
            acc[:, :, r0:r0 + th * s, x0 * s:(x0 + tw) * s] += out * weight
            norm[:, :, r0:r0 + th * s, x0 * s:(x0 + tw) * s] += weight
            done += 1
            if progress:
                progress(done, total)
    sink(top, (acc / norm).clamp_(0, 1))


def _run(model: LCoAN, x: Tensor, sink: Sink, tile: int | tuple[int, int] | None, overlap: int,
         budget_bytes: int, progress: ProgressFn | None, pad: int) -> tuple[int, int]:
    """Validate, pad, tile and run x (1, 3, H, W); bands go to ``sink`` already cropped back to the
    unpadded output. Returns the output's (sH, sW)."""
    if x.ndim != 4 or x.shape[:2] != (1, 3):
        raise ValueError(f"expected a (1, 3, H, W) tensor, got {tuple(x.shape)}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    device = next(model.parameters()).device
    x = x.to(device=device, dtype=torch.float32)
    s = model.cfg.scale
    out_h, out_w = x.shape[2] * s, x.shape[3] * s
    if pad:  # tiles (given or automatic) grow with the padding: an input that fits one tile runs in one pass
        x = torch.nn.functional.pad(x, (pad, pad, pad, pad), mode="replicate")
        if tile:
            tile = tile + 2 * pad if isinstance(tile, int) else (tile[0] + 2 * pad, tile[1] + 2 * pad)
    tile_h, tile_w = _tile_shape(model, x.shape[2], x.shape[3], tile, overlap, budget_bytes, pad)
    p = pad * s

    def cropped(row: int, band: Tensor) -> None:
        lo, hi = max(row, p), min(row + band.shape[2], p + out_h)
        if hi > lo:
            sink(lo - p, band[:, :, lo - row:hi - row, p:p + out_w])

    _bands(model, x, tile_h, tile_w, overlap, progress, cropped if pad else sink)
    return out_h, out_w


@torch.inference_mode()
def sr_tensor(model: LCoAN, x: Tensor, tile: int | tuple[int, int] | None = None, overlap: int = DEFAULT_OVERLAP,
              budget_bytes: int = DEFAULT_BUDGET_BYTES, progress: ProgressFn | None = None,
              pad: int = 0) -> Tensor:
    """Super-resolve (1, 3, H, W) in [0, 1] -> (1, 3, sH, sW), clamped to [0, 1].

    ``tile`` (a side, or (height, width) for tiles that fit the image's shape with less overlap)
    None picks the largest square side within ``budget_bytes`` (at most :data:`DEFAULT_TILE_CAP`)
    and balances it on the image (:func:`balanced_side`); inputs no larger than the tile run in one
    pass. Tiles overlap by ``overlap`` LR pixels and are blended with linear ramps.
    ``pad`` > 0 replicates the border by that many LR pixels first and crops the result back, so the
    zero padding of the convolutions does not tint the borders (see the module docstring); ``tile``
    then grows by ``2 * pad``.
    """
    s = model.cfg.scale
    out = torch.empty(1, 3, x.shape[-2] * s, x.shape[-1] * s, device=next(model.parameters()).device)

    def sink(row: int, band: Tensor) -> None:
        out[:, :, row:row + band.shape[2]] = band

    _run(model, x, sink, tile, overlap, budget_bytes, progress, pad)
    return out


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


@torch.inference_mode()
def upscale_array(model: LCoAN, rgb: np.ndarray, **kwargs) -> np.ndarray:
    """HxWx3 array (uint8, uint16 or float in [0, 1]) -> sH x sW x 3 array of the same dtype.

    Keyword arguments as :func:`sr_tensor`. Finished bands of rows are converted straight into the
    result, so besides it only one tile row of float buffers is held (same numbers as
    ``from_tensor(sr_tensor(...))``).
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB array, got shape {rgb.shape}")
    s = model.cfg.scale
    out = np.empty((rgb.shape[0] * s, rgb.shape[1] * s, 3), dtype=rgb.dtype if rgb.dtype in (np.uint8, np.uint16)
                   else np.dtype(rgb.dtype))

    def sink(row: int, band: Tensor) -> None:
        out[row:row + band.shape[2]] = from_tensor(band, rgb.dtype)

    _run(model, to_tensor(rgb), sink, kwargs.pop("tile", None), kwargs.pop("overlap", DEFAULT_OVERLAP),
         kwargs.pop("budget_bytes", DEFAULT_BUDGET_BYTES), kwargs.pop("progress", None), kwargs.pop("pad", 0))
    if kwargs:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(kwargs)}")
    return out


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
