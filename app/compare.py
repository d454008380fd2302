"""Super-resolve and compare: bicubic vs LCoAN vs dense NLA, timed, with PSNR/SSIM in *degrade* mode.

Plain Python, no Gradio: the super-resolve tab and the API endpoints call :func:`compare`, tests call
it directly. Two modes:

* ``"upscale"``: the input is the low-resolution (LR) image; alpha and 16-bit depth are kept
  (alpha is upscaled with bicubic, as :func:`lcoan.inference.upscale_image` does).
* ``"degrade"``: the input is the high-resolution reference. As in :mod:`lcoan.evaluate`, it is
  taken at 8 bits, cropped to a multiple of the scale and downscaled with the MATLAB-compatible
  :func:`lcoan.degrade.degrade`; every method restores that LR image and is scored against the
  reference with :func:`lcoan.metrics.psnr_y` / :func:`lcoan.metrics.ssim_y` (Y channel, ``scale``
  pixels shaved). An alpha channel is not used in this mode.

Results are cached in the service's LRU per (image, scale, mode) and per method, so a second call,
a different view of the same result or adding the dense baseline later recomputes nothing that was
already computed.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lcoan.degrade import degrade
from lcoan.inference import upscale_image
from lcoan.io import ImageError, LoadedImage, load_image
from lcoan.metrics import SSIM_WIN, psnr_y, ssim_y

from .service import ModelService, ServiceError, image_key

MODES = {"upscale": "Upscale: the input is the low-resolution image",
         "degrade": "Degrade then restore: the input is the high-resolution reference (PSNR/SSIM)"}
METHODS = ("bicubic", "lcoan", "dense")
LABELS = {"bicubic": "Bicubic", "lcoan": "LCoAN", "dense": "Dense NLA"}
# Rough share of the total time, to spread one progress bar over the methods.
_COST = {"bicubic": 0.05, "lcoan": 0.35, "dense": 0.6}

ProgressFn = Callable[[float, str], None]


def load_input(src: Any, max_bytes: int | None = None) -> LoadedImage:
    """An upload (path, Gradio file dict, bytes, PIL image or array) -> LoadedImage, or ServiceError."""
    if isinstance(src, dict):  # a Gradio FileData payload
        src = src.get("path")
    if src is None or (isinstance(src, str) and not src.strip()):
        raise ServiceError("No image: upload one or pick an example.")
    try:
        kwargs = {} if max_bytes is None else {"max_bytes": max_bytes}
        return load_image(Path(src) if isinstance(src, str) else src, **kwargs)
    except ImageError as exc:
        raise ServiceError(str(exc)) from None


def _to8(rgb: np.ndarray) -> np.ndarray:
    """8-bit RGB as lcoan.evaluate scores it (16-bit rounded to 8)."""
    return np.round(rgb / 257.0).astype(np.uint8) if rgb.dtype == np.uint16 else rgb


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


@dataclass(frozen=True, eq=False)
class MethodResult:
    method: str
    rgb: np.ndarray  # sh x sw x 3, dtype of the LR image
    alpha: np.ndarray | None
    seconds: float
    tiles: int  # 1: one pass over the whole image
    tile: int | None  # LR tile side when tiled
    note: str
    psnr: float | None = None
    ssim: float | None = None

    @property
    def label(self) -> str:
        return LABELS[self.method]

    @property
    def nbytes(self) -> int:
        return self.rgb.nbytes + (0 if self.alpha is None else self.alpha.nbytes)


@dataclass(frozen=True, eq=False)
class Comparison:
    prepared: Prepared
    results: dict[str, MethodResult]  # in METHODS order
    skipped: dict[str, str] = field(default_factory=dict)  # method -> why it did not run
    cached: bool = False

    @property
    def key(self) -> tuple:
        """Enough to find this comparison again in the cache (see :func:`lookup`)."""
        return (*self.prepared.key, tuple(self.results))

    @property
    def scale(self) -> int:
        return self.prepared.scale

    def rows(self) -> list[list[Any]]:
        """The metrics table: method, time (s), PSNR (dB), SSIM, how it ran."""
        rows = []
        for r in self.results.values():
            rows.append([r.label, round(r.seconds, 3), _fmt(r.psnr, 2), _fmt(r.ssim, 4), r.note])
        for method, why in self.skipped.items():
            rows.append([LABELS[method], None, None, None, f"not run: {why}"])
        return rows

    def report(self) -> dict[str, Any]:
        """JSON-ready summary (the API's report): sizes, notes, per-method time, metrics, tiling."""
        p = self.prepared
        out_h, out_w = p.lr.shape[0] * p.scale, p.lr.shape[1] * p.scale
        return {
            "mode": p.mode, "scale": p.scale,
            "input_size": [p.source_size[1], p.source_size[0]],
            "lr_size": [p.lr.shape[1], p.lr.shape[0]],
            "output_size": [out_w, out_h],
            "bit_depth": 16 if p.lr.dtype == np.uint16 else 8,
            "alpha": p.alpha is not None,
            "grayscale": p.grayscale,
            "notes": list(p.notes),
            "cached": self.cached,
            "methods": {m: {"seconds": round(r.seconds, 4), "psnr": _json_float(r.psnr), "ssim": _json_float(r.ssim),
                            "tiles": r.tiles, "tile": r.tile, "note": r.note} for m, r in self.results.items()},
            "skipped": dict(self.skipped),
        }


def _fmt(value: float | None, digits: int) -> float | str | None:
    if value is None:
        return None
    return "inf" if math.isinf(value) else round(value, digits)


def _json_float(value: float | None) -> float | str | None:
    return "inf" if value is not None and math.isinf(value) else value


def _too_large(what: str, h: int, w: int, limit: int) -> ServiceError:
    side = int(limit ** 0.5)
    return ServiceError(f"{what} is {w}x{h} = {h * w:,} pixels; this app runs the networks on at most {limit:,} "
                        f"low-resolution pixels (about {side}x{side}). Crop or downscale the image first, or run "
                        "`python -m lcoan.infer` locally, which tiles any size.")


def prepare(image: LoadedImage, scale: int, mode: str, max_lr_pixels: int) -> Prepared:
    """Check the size policy and build the LR input (and the reference in degrade mode)."""
    if mode not in MODES:
        raise ServiceError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    scale = int(scale)
    h, w = image.rgb.shape[:2]
    notes = list(image.notes)
    key = (image_key(image.rgb), None if image.alpha is None else image_key(image.alpha), scale, mode)
    if mode == "upscale":
        if h * w > max_lr_pixels:
            raise _too_large("The image", h, w, max_lr_pixels)
        return Prepared(key, mode, scale, (h, w), image.rgb, image.alpha, None, image.grayscale, tuple(notes))
    least = scale * math.ceil((SSIM_WIN + 2 * scale) / scale)
    if h < least or w < least:
        raise ServiceError(f"Degrade then restore at x{scale} needs an image of at least {least}x{least} pixels "
                           f"(PSNR/SSIM shave {scale} pixels per border and use an {SSIM_WIN}x{SSIM_WIN} window); "
                           f"this one is {w}x{h}. Use Upscale for small images.")
    lh, lw = h // scale, w // scale
    if lh * lw > max_lr_pixels:
        raise _too_large(f"After the x{scale} downscale the image", lh, lw, max_lr_pixels)
    if image.rgb.dtype == np.uint16:
        notes.append("16-bit input scored at 8 bits, as lcoan.evaluate does")
    if image.alpha is not None:
        notes.append("alpha channel not used in Degrade then restore (scores are on colour)")
    if h % scale or w % scale:
        notes.append(f"reference cropped to {lw * scale}x{lh * scale} (a multiple of the scale)")
    hr = _to8(image.rgb)[: lh * scale, : lw * scale]
    lr = degrade(hr, scale)
    return Prepared(key, mode, scale, (h, w), lr, None, np.ascontiguousarray(hr), image.grayscale, tuple(notes))


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


def method_tile(method: str, h: int, w: int, settings) -> int:
    """LR tile side of a network method for an h x w LR image (>= max(h, w): one pass).

    Dense NLA runs in one pass while the image has at most dense_tile² pixels, whatever its shape.
    """
    if method == "dense":
        if h * w <= settings.dense_tile ** 2:
            return max(h, w)
        return balanced_tile(h, w, settings.dense_tile, settings.tile_overlap)
    return balanced_tile(h, w, settings.lcoan_tile, settings.tile_overlap)


def run_method(service: ModelService, prepared: Prepared, method: str,
               progress: Callable[[int, int], None] | None = None) -> MethodResult:
    """Run one method on the prepared LR image (not cached; see :func:`compare`)."""
    s, settings = prepared.scale, service.settings
    h, w = prepared.lr.shape[:2]
    image = LoadedImage(rgb=prepared.lr, alpha=prepared.alpha, source_mode="RGB", format=None,
                        grayscale=prepared.grayscale)
    tiles = {"n": 1}

    def on_tile(done: int, total: int) -> None:
        tiles["n"] = total
        if progress:
            progress(done, total)

    kwargs: dict[str, Any] = {}
    model = None
    if method == "bicubic":
        tile = None
    elif method in ("lcoan", "dense"):
        model = service.get(method, s).model
        tile = method_tile(method, h, w, settings)
        kwargs = {"tile": tile, "overlap": settings.tile_overlap, "progress": on_tile}
    else:
        raise ServiceError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    start = time.perf_counter()
    rgb, alpha = upscale_image(model, image, scale=s, **kwargs)
    seconds = time.perf_counter() - start
    if progress and method == "bicubic":
        progress(1, 1)
    n = tiles["n"]
    if method == "bicubic":
        note = "MATLAB-style bicubic (imresize)"
    elif n == 1:
        note = f"one pass over the whole {w}x{h} LR image"
    else:
        note = f"{n} overlapping {tile}x{tile} LR tiles ({settings.tile_overlap} px overlap, blended)"
        if method == "dense":
            note += ("; attention sees one tile at a time: dense NLA is quadratic, a full pass at this size "
                     "would take far longer")
    psnr = ssim = None
    if prepared.hr is not None:
        psnr, ssim = psnr_y(rgb, prepared.hr, s), ssim_y(rgb, prepared.hr, s)
    return MethodResult(method, rgb, alpha, seconds, n, tile if n > 1 else None, note, psnr, ssim)


def compare(service: ModelService, image: LoadedImage, scale: int, mode: str = "upscale",
            methods: tuple[str, ...] = METHODS, progress: ProgressFn | None = None) -> Comparison:
    """Run ``methods`` (subset of METHODS) on ``image`` at ``scale``; cached per image and method.

    A scale without an LCoAN checkpoint is a ServiceError; a missing dense checkpoint only skips
    the dense method (said in ``skipped``).
    """
    try:
        scale = int(scale)
    except (TypeError, ValueError):
        raise ServiceError(f"scale must be a whole number, got {scale!r}") from None
    available = service.scales()
    if not available:
        raise ServiceError(f"No LCoAN checkpoints found in {service.folder}: export some there (see README) "
                           "or point LCOAN_CHECKPOINTS at a folder of them.")
    if scale not in available:
        raise ServiceError(f"No LCoAN checkpoint for x{scale}; available: "
                           f"{', '.join(f'x{s}' for s in available)}.")
    if isinstance(methods, str) or not methods or not set(methods) <= set(METHODS):
        raise ServiceError(f"methods must be a non-empty subset of {', '.join(METHODS)}, got {methods!r}")
    methods = tuple(m for m in METHODS if m in methods)
    settings = service.settings
    prep_key = ("prepared", image_key(image.rgb), None if image.alpha is None else image_key(image.alpha),
                scale, mode)
    prepared = service.cache.get_or_compute(prep_key, lambda: prepare(image, scale, mode, settings.max_lr_pixels))
    skipped: dict[str, str] = {}
    todo = []
    for m in methods:
        if m != "bicubic" and not service.has(m, scale):
            skipped[m] = f"no {LABELS[m]} checkpoint for x{scale} in {service.folder}"
        else:
            todo.append(m)
    total_cost = sum(_COST[m] for m in todo)
    results: dict[str, MethodResult] = {}
    all_cached = True
    done_cost = 0.0
    for m in todo:
        key = ("result", *prepared.key, m)
        hit = service.cache.get(key)
        if hit is None:
            all_cached = False

            def tick(done: int, total: int, m: str = m, base: float = done_cost) -> None:
                if progress:
                    frac = (base + _COST[m] * done / max(total, 1)) / total_cost
                    what = f"{LABELS[m]}: tile {done}/{total}" if total > 1 else LABELS[m]
                    progress(min(frac, 1.0), what)

            if progress:
                progress(done_cost / total_cost, f"{LABELS[m]}…")
            hit = run_method(service, prepared, m, tick)
            service.cache.put(key, hit)
        results[m] = hit
        done_cost += _COST[m]
    return Comparison(prepared, results, skipped, cached=all_cached)


def lookup(service: ModelService, key: tuple) -> Comparison | None:
    """A comparison made earlier, from the cache only (None when any part was evicted)."""
    try:
        *pkey, methods = key
        prepared = service.cache.get(("prepared", *pkey))
    except (TypeError, ValueError):
        return None
    if prepared is None:
        return None
    results = {}
    for m in methods:
        hit = service.cache.get(("result", *prepared.key, m))
        if hit is None:
            return None
        results[m] = hit
    return Comparison(prepared, results, cached=True)


def save_result(service: ModelService, comparison: Comparison, method: str, name: str | None) -> Path:
    """The method's result as a lossless PNG in the service's output folder (alpha, 16-bit, grey kept)."""
    r = comparison.results[method]
    p = comparison.prepared
    stem = f"{Path(str(name or 'image')).stem}_x{p.scale}_{method}"
    return service.outputs.save_png(stem, r.rgb, r.alpha, grayscale=p.grayscale)
