"""Super-resolve and compare: bicubic and LCoAN on the whole image, no-attention and dense NLA on a
region, timed, with PSNR/SSIM in *degrade* mode.

Plain Python, no Gradio: the super-resolve tab and the API endpoints call :func:`compare_steps` /
:func:`compare`, tests call them directly. Two modes:

* ``"upscale"``: the input is the low-resolution (LR) image; alpha and 16-bit depth are kept
  (alpha is upscaled with bicubic, as :func:`lcoan.inference.upscale_image` does).
* ``"degrade"``: the input is the high-resolution reference. As in :mod:`lcoan.evaluate`, it is
  taken at 8 bits, cropped to a multiple of the scale and downscaled with the MATLAB-compatible
  :func:`lcoan.imaging.degrade.degrade`; every method restores that LR image and is scored against the
  reference with :func:`lcoan.imaging.metrics.psnr_y` / :func:`lcoan.imaging.metrics.ssim_y` (Y channel, ``scale``
  pixels shaved). An alpha channel is not used in this mode.

Any size the loader accepts is served: bicubic and LCoAN run over the **whole** image (LCoAN in
overlapping tiles, with progress); the baselines that are there to explain LCoAN, *no attention*
and the quadratic *dense NLA*, run on a **region** of at most ``settings.dense_tile`` LR pixels a
side (plus a margin of context that is cropped off), which the user picks. Region scores compare
all four methods on the same pixels; whole-image scores exist for bicubic and LCoAN. An output above
``settings.max_output_pixels`` (memory) is avoided by downscaling the input first, said in the notes;
the user can also ask for a downscale first. Every result is cached in the service's LRU, so moving
the region recomputes only the region methods.
"""
from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lcoan.bench.timing import timed_call
from lcoan.imaging.io import ImageError, LoadedImage, load_image
from lcoan.imaging.metrics import SSIM_WIN, psnr_y, ssim_y
from lcoan.inference import DEFAULT_PAD, upscale_image

from .models import ModelService, ServiceError, image_key
from .prepared import MODES, Prepared, prepare  # noqa: F401 (MODES: re-exported for the tab and the API)
from .region import Box, balanced_tiles, region_box, textured_box

METHODS = ("bicubic", "lcoan", "none", "dense")
# The order the methods run in: bicubic on the region (a preview, not cached) and the region methods
# first, a second or so in all, so the page shows a first result at once; then LCoAN over the whole image
# (tiles, with an ETA), then the whole-image bicubic (MATLAB-exact imresize: 5-40 s on a large photo).
RUN_ORDER = ("none", "dense", "lcoan", "bicubic")
WHOLE = ("bicubic", "lcoan")  # run on the whole image
REGION = ("none", "dense")  # run on the chosen region only
LABELS = {"bicubic": "Bicubic", "lcoan": "LCoAN", "none": "No attention", "dense": "Dense NLA"}
CONTEXT = 8  # LR pixels of real image around the region fed to the region methods, cropped off after
_COST = {"bicubic": 0.03, "lcoan": 0.8, "none": 0.05, "dense": 0.12}  # share of one progress bar

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


@dataclass(frozen=True, eq=False)
class MethodResult:
    method: str
    rgb: np.ndarray  # the whole SR image, or the region's SR pixels when ``box`` is set
    alpha: np.ndarray | None
    seconds: float
    tiles: int  # 1: one pass
    tile: tuple[int, int] | None  # (height, width) of the LR tiles (edge padding included) when tiled
    note: str
    box: Box | None = None  # None: whole image
    psnr: float | None = None  # whole image (degrade mode, whole-image methods)
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
    box: Box  # the region (LR pixels)
    skipped: dict[str, str] = field(default_factory=dict)  # method -> why it did not run
    cached: bool = False
    pending: tuple[str, ...] = ()  # methods still to come (streaming)

    @property
    def key(self) -> tuple:
        """Enough to find this comparison again in the cache (see :func:`lookup`)."""
        return (*self.prepared.key, tuple(self.results), (self.box.x0, self.box.y0, self.box.w, self.box.h))

    @property
    def scale(self) -> int:
        return self.prepared.scale

    @property
    def output_size(self) -> tuple[int, int]:
        """(width, height) of the whole super-resolved image."""
        return self.prepared.lr.shape[1] * self.scale, self.prepared.lr.shape[0] * self.scale

    def region(self, method: str) -> tuple[np.ndarray, np.ndarray | None]:
        """The region's SR pixels (rgb, alpha) of a method, whole-image or region one."""
        r = self.results[method]
        if r.box is not None:
            return r.rgb, r.alpha
        x0, y0, x1, y1 = self.box.sr(self.scale)
        return r.rgb[y0:y1, x0:x1], None if r.alpha is None else r.alpha[y0:y1, x0:x1]

    def region_reference(self) -> np.ndarray | None:
        if self.prepared.hr is None:
            return None
        x0, y0, x1, y1 = self.box.sr(self.scale)
        return self.prepared.hr[y0:y1, x0:x1]

    def region_scores(self, method: str) -> tuple[float | None, float | None]:
        """PSNR/SSIM (Y, shaved) of a method on the region, in degrade mode; (None, None) otherwise."""
        ref = self.region_reference()
        if ref is None or method not in self.results:
            return None, None
        s = self.scale
        if min(ref.shape[:2]) - 2 * s < SSIM_WIN:
            return psnr_y(self.region(method)[0], ref, s), None
        rgb = self.region(method)[0]
        return psnr_y(rgb, ref, s), ssim_y(rgb, ref, s)

    def rows(self) -> list[list[Any]]:
        """The metrics table: method, ran on, time (s), region PSNR/SSIM, whole PSNR, how it ran."""
        rows = []
        for r in self.results.values():
            psnr, ssim = self.region_scores(r.method)
            rows.append([r.label, "region" if r.box else "whole image", round(r.seconds, 3), _fmt(psnr, 2),
                         _fmt(ssim, 4), _fmt(r.psnr, 2), r.note])
        for method in self.pending:
            if method in self.results:  # a region preview is shown; its whole image is still to come
                continue
            rows.append([LABELS[method], "region" if method in REGION else "whole image", None, None, None, None,
                         "running…"])
        for method, why in self.skipped.items():
            rows.append([LABELS[method], "-", None, None, None, None, f"not run: {why}"])
        return rows

    def report(self) -> dict[str, Any]:
        """JSON-ready summary (the API's report): sizes, notes, region, per-method time, metrics, tiling."""
        p = self.prepared
        out_w, out_h = self.output_size
        methods = {}
        for m, r in self.results.items():
            rp, rs = self.region_scores(m)
            methods[m] = {"seconds": round(r.seconds, 4), "ran_on": "region" if r.box else "whole",
                          "psnr": _json_float(r.psnr), "ssim": _json_float(r.ssim),
                          "region_psnr": _json_float(rp), "region_ssim": _json_float(rs),
                          "tiles": r.tiles, "tile": r.tile, "note": r.note}
        return {
            "mode": p.mode, "scale": p.scale,
            "input_size": [p.source_size[1], p.source_size[0]],
            "lr_size": [p.lr.shape[1], p.lr.shape[0]],
            "output_size": [out_w, out_h],
            "region_lr": {"x": self.box.x0, "y": self.box.y0, "width": self.box.w, "height": self.box.h},
            "bit_depth": 16 if p.lr.dtype == np.uint16 else 8,
            "alpha": p.alpha is not None,
            "grayscale": p.grayscale,
            "notes": list(p.notes),
            "cached": self.cached,
            "methods": methods,
            "skipped": dict(self.skipped),
        }


def _fmt(value: float | None, digits: int) -> float | str | None:
    if value is None:
        return None
    return "inf" if math.isinf(value) else round(value, digits)


def _json_float(value: float | None) -> float | str | None:
    return "inf" if value is not None and math.isinf(value) else value


def _image(rgb: np.ndarray, alpha: np.ndarray | None, grayscale: bool) -> LoadedImage:
    return LoadedImage(rgb=rgb, alpha=alpha, source_mode="RGB", format=None, grayscale=grayscale)


def run_whole(service: ModelService, prepared: Prepared, method: str,
              progress: Callable[[int, int], None] | None = None) -> MethodResult:
    """Bicubic or LCoAN over the whole LR image (LCoAN tiled above ``settings.lcoan_tile``); not cached."""
    s, settings = prepared.scale, service.settings
    h, w = prepared.lr.shape[:2]
    if method not in WHOLE:
        raise ServiceError(f"{method!r} does not run on the whole image; choose from {', '.join(WHOLE)}")
    tiles = {"n": 1}

    def on_tile(done: int, total: int) -> None:
        tiles["n"] = total
        if progress:
            progress(done, total)

    model, tile, kwargs = None, None, {}
    if method == "lcoan":
        model = service.get("lcoan", s).model
        # tiles chosen on the padded image (sr_tensor pads by DEFAULT_PAD, then grows each tile by 2 pads)
        th, tw = balanced_tiles(h + 2 * DEFAULT_PAD, w + 2 * DEFAULT_PAD, settings.lcoan_tile, settings.tile_overlap)
        tile = (th - 2 * DEFAULT_PAD, tw - 2 * DEFAULT_PAD)
        kwargs = {"tile": tile, "overlap": settings.tile_overlap, "progress": on_tile}
    (rgb, alpha), seconds = timed_call(
        lambda: upscale_image(model, _image(prepared.lr, prepared.alpha, prepared.grayscale), scale=s, **kwargs))
    if progress and model is None:
        progress(1, 1)
    n = tiles["n"]
    if model is None:
        note = "MATLAB-style bicubic (imresize)"
    elif n == 1:
        note = f"one pass over {w}x{h} LR"
    else:
        note = f"{n} tiles of {tw}x{th} LR ({settings.tile_overlap} px overlap, blended)"
    psnr = ssim = None
    if prepared.hr is not None:
        psnr, ssim = psnr_y(rgb, prepared.hr, s), ssim_y(rgb, prepared.hr, s)
    return MethodResult(method, rgb, alpha, seconds, n, (th, tw) if model is not None and n > 1 else None, note, None,
                        psnr, ssim)


def run_region(service: ModelService, prepared: Prepared, method: str, box: Box) -> MethodResult:
    """No-attention or dense NLA on ``box`` (one pass, with CONTEXT LR pixels of real image around it);
    "bicubic": its region preview (the same pixels as the whole-image bicubic: the cubic kernel reaches
    2 LR pixels, the context 8)."""
    if method == "bicubic":
        return _bicubic_region(prepared, box)
    if method not in REGION:
        raise ServiceError(f"{method!r} does not run on a region; choose from {', '.join(REGION)}")
    s = prepared.scale
    lh, lw = prepared.lr.shape[:2]
    ctx = box.grown(CONTEXT, lh, lw)
    crop = prepared.lr[ctx.y0:ctx.y0 + ctx.h, ctx.x0:ctx.x0 + ctx.w]
    alpha = None if prepared.alpha is None else prepared.alpha[ctx.y0:ctx.y0 + ctx.h, ctx.x0:ctx.x0 + ctx.w]
    model = service.get(method, s).model
    (rgb, a), seconds = timed_call(
        lambda: upscale_image(model, _image(np.ascontiguousarray(crop), alpha, prepared.grayscale),
                              tile=max(ctx.h, ctx.w)))
    oy, ox = (box.y0 - ctx.y0) * s, (box.x0 - ctx.x0) * s
    rgb = np.ascontiguousarray(rgb[oy:oy + box.h * s, ox:ox + box.w * s])
    a = None if a is None else np.ascontiguousarray(a[oy:oy + box.h * s, ox:ox + box.w * s])
    note = f"one pass on the region + {CONTEXT} px context"
    if method == "dense":
        note += " (quadratic: region only)"
    return MethodResult(method, rgb, a, seconds, 1, None, note, box)


def _bicubic_region(prepared: Prepared, box: Box) -> MethodResult:
    s = prepared.scale
    lh, lw = prepared.lr.shape[:2]
    ctx = box.grown(CONTEXT, lh, lw)
    crop = np.ascontiguousarray(prepared.lr[ctx.y0:ctx.y0 + ctx.h, ctx.x0:ctx.x0 + ctx.w])
    (rgb, _), seconds = timed_call(lambda: upscale_image(None, _image(crop, None, prepared.grayscale), scale=s))
    oy, ox = (box.y0 - ctx.y0) * s, (box.x0 - ctx.x0) * s
    rgb = np.ascontiguousarray(rgb[oy:oy + box.h * s, ox:ox + box.w * s])
    return MethodResult("bicubic", rgb, None, seconds, 1, None, "MATLAB-style bicubic on the region first; the "
                        "whole image follows", box)


def _check(service: ModelService, scale: Any, methods: tuple[str, ...]) -> tuple[int, tuple[str, ...]]:
    try:
        scale = int(scale)
    except (TypeError, ValueError):
        raise ServiceError(f"scale must be a whole number, got {scale!r}") from None
    available = service.scales()
    if not available:
        raise ServiceError("No LCoAN checkpoints are loaded on this server: export some into its checkpoint "
                           "folder (see README) or point LCOAN_CHECKPOINTS at a folder of them.")
    if scale not in available:
        raise ServiceError(f"No LCoAN checkpoint for x{scale}; available: {', '.join(f'x{s}' for s in available)}.")
    if isinstance(methods, str) or not methods or not set(methods) <= set(METHODS):
        raise ServiceError(f"methods must be a non-empty subset of {', '.join(METHODS)}, got {methods!r}")
    return scale, tuple(m for m in METHODS if m in methods)


def result_key(prepared: Prepared, method: str, box: Box) -> tuple:
    """The cache key of one method's result (a region method's depends on the region too)."""
    return ("result", *prepared.key, method) + ((box,) if method in REGION else ())


def compare_steps(service: ModelService, image: LoadedImage, scale: Any, mode: str = "upscale",
                  methods: tuple[str, ...] = METHODS, progress: ProgressFn | None = None,
                  centre: tuple[float, float] | None = None, region_side: int | None = None,
                  downscale_to: int = 0) -> Iterator[Comparison]:
    """Run ``methods`` and yield the comparison after each one, in :data:`RUN_ORDER` (bicubic, the region
    methods, then LCoAN on the whole image, whose progress says the tile and the time left).

    ``centre``: (x, y) of the region's centre as fractions of the image's width and height (None:
    the centre), so a click on the input or on the result maps the same way; ``region_side``:
    LR pixels (default and maximum ``settings.dense_tile``). Cached per image, scale, mode, method
    and region. A scale without an LCoAN checkpoint is a ServiceError; a missing no-attention or
    dense checkpoint only skips that method (said in ``skipped``).
    """
    scale, methods = _check(service, scale, methods)
    settings = service.settings
    side = settings.dense_tile if region_side is None else int(region_side)
    if not 8 <= side <= settings.dense_tile:
        raise ServiceError(f"the region side must be between 8 and {settings.dense_tile} LR pixels, got {side}")
    prep_key = ("prepared", image_key(image.rgb), None if image.alpha is None else image_key(image.alpha),
                scale, mode, int(downscale_to or 0))
    prepared = service.cache.get_or_compute(
        prep_key, lambda: prepare(image, scale, mode, settings.max_output_pixels, downscale_to))
    lh, lw = prepared.lr.shape[:2]
    if centre is None:  # the most detailed box, not plain sky in the middle of a landscape (issue 27)
        box = textured_box(prepared.lr, side)
    else:
        fx, fy = (min(max(float(v), 0.0), 1.0) for v in centre)
        box = region_box(lh, lw, fx * lw, fy * lh, side)
    skipped = {m: f"no {LABELS[m]} checkpoint for x{scale} on this server" for m in methods
               if m != "bicubic" and not service.has(m, scale)}
    todo = [m for m in RUN_ORDER if m in methods and m not in skipped]
    total_cost = sum(_COST[m] for m in todo) or 1.0
    results: dict[str, MethodResult] = {}
    all_cached, done_cost = True, 0.0
    if "bicubic" in todo and service.cache.get(result_key(prepared, "bicubic", box)) is None:
        results["bicubic"] = _bicubic_region(prepared, box)  # a preview until the whole image's arrives
        yield Comparison(prepared, dict(results), box, skipped, cached=False, pending=tuple(todo))
    for i, m in enumerate(todo):
        key = result_key(prepared, m, box)
        hit = service.cache.get(key)
        if hit is None:
            all_cached = False
            started = time.perf_counter()

            def tick(done: int, total: int, m: str = m, base: float = done_cost, started: float = started) -> None:
                if progress:
                    what = LABELS[m]
                    if total > 1:
                        left = (time.perf_counter() - started) / max(done, 1) * (total - done)
                        what += f": tile {done}/{total}" + (f", about {eta(left)} left" if done < total else "")
                    progress(min((base + _COST[m] * done / max(total, 1)) / total_cost, 1.0), what)

            if progress:
                progress(done_cost / total_cost, f"{LABELS[m]}…")
            hit = run_whole(service, prepared, m, tick) if m in WHOLE else run_region(service, prepared, m, box)
            service.cache.put(key, hit)
        results[m] = hit
        done_cost += _COST[m]
        if progress:
            progress(min(done_cost / total_cost, 1.0), f"{LABELS[m]} done")
        ordered = {k: results[k] for k in METHODS if k in results}
        yield Comparison(prepared, ordered, box, skipped, cached=all_cached, pending=tuple(todo[i + 1:]))
    if not todo:
        yield Comparison(prepared, {}, box, skipped, cached=True)


def eta(seconds: float) -> str:
    """A remaining time as the progress line says it: "12 s", "3 min 05 s"."""
    seconds = max(0, round(seconds))
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s"


def compare(service: ModelService, image: LoadedImage, scale: Any, mode: str = "upscale",
            methods: tuple[str, ...] = METHODS, progress: ProgressFn | None = None, **kwargs) -> Comparison:
    """The finished comparison (the last step of :func:`compare_steps`, which always yields at least
    once; same keyword arguments)."""
    return deque(compare_steps(service, image, scale, mode, methods, progress, **kwargs), maxlen=1)[0]


def lookup(service: ModelService, key: tuple) -> Comparison | None:
    """A comparison made earlier, from the cache only (None when any part was evicted)."""
    try:
        *pkey, methods, (x0, y0, w, h) = key
        prepared = service.cache.get(("prepared", *pkey))
    except (TypeError, ValueError):
        return None
    if prepared is None:
        return None
    box, results = Box(x0, y0, w, h), {}
    for m in methods:
        hit = service.cache.get(result_key(prepared, m, box))
        if hit is None:
            return None
        results[m] = hit
    return Comparison(prepared, results, box, cached=True)


def save_result(service: ModelService, comparison: Comparison, method: str, name: str | None) -> Path:
    """The method's result as a lossless PNG in the service's output folder (alpha, 16-bit, grey kept);
    a region method's file holds its region only (the name says so)."""
    r = comparison.results[method]
    p = comparison.prepared
    stem = f"{Path(str(name or 'image')).stem}_x{p.scale}_{method}" + ("_region" if r.box else "")
    return service.outputs.save_png(stem, r.rgb, r.alpha, grayscale=p.grayscale)
