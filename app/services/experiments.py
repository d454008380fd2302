"""The Experiments tab's work, plain Python (no Gradio): the window / rounds sweep, the attention
ablation map, local attribution maps and trace files, on the user's picture with the shipped models.

Knobs, ablation and attribution run in degrade-then-restore so that PSNR exists: the picture is
the high-resolution reference, its centre crop (at most ``lr_side`` LR pixels a side) is
downscaled with the MATLAB-compatible :func:`lcoan.imaging.degrade.degrade` and restored. The trace file
is the traced pass of the "inside LCoA" tabs (the picture as the LR input, same region), so what
one downloads is what those tabs show. Results are cached in the model service's LRU cache.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lcoan.imaging.degrade import degrade
from lcoan.imaging.pixels import to_uint8
from lcoan.inference import to_tensor
from lcoan.introspect.knobs import SWEEP_WINDOWS, Ablation, Sweep, ablation, window_sweep
from lcoan.introspect.lam import STEPS, Attribution, Patch, attribute, mass_outside, receptive_radius
from lcoan.introspect.trace_files import trace_bytes

from .inspection import inspector_for
from .models import ModelService, ServiceError, image_key
from .outputs import safe_stem
from .region import REGION_MODES
from .superresolve import load_input

KNOB_SIDE = 96  # LR pixels a side for the sweep and the ablation (N = 9,216)
LAM_SIDE = 64  # LR pixels a side for attribution
MAX_SIDE = 128
MAX_WINDOW = MAX_SIDE * MAX_SIDE  # W >= N is dense over the same embeddings: larger W change nothing
LAM_KINDS = ("lcoan", "dense", "none")
MAX_STEPS = 64
FAR_LR = 8  # LR pixels: "far from the patch" in the attribution summary
ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True, eq=False)
class Pair:
    """A degrade-then-restore pair: ``hr`` (s*h, s*w, 3) uint8 reference, ``lr`` (h, w, 3) uint8."""

    key: str
    scale: int
    lr: np.ndarray
    hr: np.ndarray
    source_size: tuple[int, int]  # (h, w) of the picture
    offset: tuple[int, int]  # top-left of the crop in the picture

    @property
    def note(self) -> str:
        (sh, sw), (h, w) = self.source_size, self.hr.shape[:2]
        where = "the whole picture" if (h, w) == (sh, sw) else \
            f"the centre {w}x{h} of the {sw}x{sh} picture (x {self.offset[1]}, y {self.offset[0]})"
        return (f"Degrade then restore at x{self.scale}: reference = {where}, LR = its MATLAB-bicubic "
                f"downscale ({self.lr.shape[1]}x{self.lr.shape[0]}, "
                f"N = {self.lr.shape[0] * self.lr.shape[1]:,} positions).")


def check_int(value: Any, name: str, low: int, high: int) -> int:
    """An integer parameter from the UI or the API, within [low, high], else a ServiceError."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ServiceError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(number) or number != int(number) or not low <= number <= high:
        raise ServiceError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    return int(number)


class ExperimentService:
    """The Experiments tab's computations on the shipped models of a :class:`ModelService`."""

    def __init__(self, models: ModelService) -> None:
        self.models = models
        self._lock = threading.Lock()

    def scale(self, scale: Any) -> int:
        scales = self.models.scales()
        value = check_int(scale, "scale", 1, 8) if scale is not None else (scales[0] if scales else 2)
        if value not in scales:
            have = ", ".join(f"x{s}" for s in scales) or "none"
            raise ServiceError(f"no LCoAN checkpoint for x{value}; available: {have}")
        return value

    def pair(self, image: Any, scale: Any, lr_side: Any = KNOB_SIDE) -> Pair:
        """The picture's centre crop as HR reference and its LR (see the module docstring)."""
        s = self.scale(scale)
        side = check_int(lr_side, "crop side (LR pixels)", 16, MAX_SIDE)
        loaded = load_input(image, self.models.settings.max_upload_bytes)
        rgb = to_uint8(loaded.rgb)
        h, w = rgb.shape[:2]
        least = 16 * s
        if h < least or w < least:
            raise ServiceError(f"Degrade then restore at x{s} needs a picture of at least {least}x{least} pixels; "
                               f"this one is {w}x{h}.")
        ch, cw = min(h, side * s) // s * s, min(w, side * s) // s * s
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        hr = np.ascontiguousarray(rgb[y0:y0 + ch, x0:x0 + cw])
        return Pair(image_key(hr), s, degrade(hr, s), hr, (h, w), (y0, x0))

    def _cached(self, key: tuple, compute: Callable[[], Any]) -> Any:
        return self.models.cache.get_or_compute(("experiments",) + key, compute)

    def model(self, kind: str, scale: int):
        return self.models.get(kind, scale).model

    # ------------------------------------------------------------------ knobs
    def knobs(self, image: Any, scale: Any, rounds: Any = 1, lr_side: Any = KNOB_SIDE,
              progress: ProgressFn | None = None, window: Any = 0) -> tuple[Pair, Sweep]:
        """The window sweep (PSNR, recall, non-local time against W, and W >= N) on the picture.
        ``window`` > 0: the knob at that one W instead (with the trained W and W >= N beside it)."""
        pair = self.pair(image, scale, lr_side)
        r = check_int(rounds, "rounds", 1, 3)
        w = check_int(window if window is not None else 0, "window W", 0, MAX_WINDOW)
        model = self.model("lcoan", pair.scale)
        if model.cfg.attention != "lsp":
            raise ServiceError("the LCoAN checkpoint is not an LSP model")
        windows = (w,) if w else SWEEP_WINDOWS
        sweep = self._cached(("knobs", pair.key, pair.scale, r, windows),
                             lambda: window_sweep(model, pair.lr, pair.hr, windows=windows, rounds=r,
                                                  progress=progress))
        return pair, sweep

    # ------------------------------------------------------------------ ablation
    def ablation(self, image: Any, scale: Any, lr_side: Any = KNOB_SIDE) -> tuple[Pair, dict[str, Ablation]]:
        """|SR with attention - SR with the branch off| for LCoAN and dense (those with checkpoints)."""
        pair = self.pair(image, scale, lr_side)
        out = {}
        for kind in ("lcoan", "dense"):
            if self.models.has(kind, pair.scale):
                model = self.model(kind, pair.scale)
                out[kind] = self._cached(("ablation", kind, pair.key, pair.scale),
                                         lambda m=model: ablation(m, pair.lr, pair.hr))
        if not out:
            raise ServiceError(f"no LCoAN or dense checkpoint for x{pair.scale}")
        return pair, out

    # ------------------------------------------------------------------ attribution
    def patch(self, pair: Pair, row: Any, col: Any, size: Any) -> Patch:
        """The output patch: top-left (row, col) in the restored crop (-1: centred), side ``size``."""
        h, w = pair.hr.shape[:2]
        size = check_int(size, "patch size", 4, 64)
        row = check_int(row, "patch row", -1, h - 1)
        col = check_int(col, "patch col", -1, w - 1)
        row = (h - size) // 2 if row < 0 else row
        col = (w - size) // 2 if col < 0 else col
        return Patch(row, col, size).clip(h, w)

    def attribution(self, image: Any, scale: Any, row: Any = -1, col: Any = -1, size: Any = 16,
                    steps: Any = STEPS, kinds: tuple[str, ...] = LAM_KINDS,
                    on_result: Callable[[str, Attribution], None] | None = None) -> tuple[Pair, dict[str, Attribution]]:
        """LAM of each model in ``kinds`` that has a checkpoint, for one output patch of the
        64x64-LR crop. ``on_result(kind, attribution)`` is called as each finishes."""
        pair = self.pair(image, scale, LAM_SIDE)
        box = self.patch(pair, row, col, size)
        n = check_int(steps, "steps", 1, MAX_STEPS)
        unknown = [k for k in kinds if k not in LAM_KINDS]
        if unknown or not kinds:
            raise ServiceError(f"models must be some of {', '.join(LAM_KINDS)}, got {list(kinds)!r}")
        x = to_tensor(pair.lr)
        out: dict[str, Attribution] = {}
        for kind in kinds:
            if not self.models.has(kind, pair.scale):
                continue
            model = self.model(kind, pair.scale)
            out[kind] = self._cached(("lam", kind, pair.key, pair.scale, box, n),
                                     lambda m=model: attribute(m, x, box, steps=n))
            if on_result:
                on_result(kind, out[kind])
        if not out:
            raise ServiceError(f"no checkpoint of {', '.join(kinds)} for x{pair.scale}")
        return pair, out

    def beyond_reach(self, results: dict[str, Attribution], scale: int,
                     radius: int | None = None) -> tuple[dict[str, float], int]:
        """Per model, the share of its attribution more than ``radius`` LR pixels from the patch,
        and that radius. Default radius: the farthest any convolution of the backbone reaches
        (:func:`lcoan.introspect.lam.receptive_radius`), so only attention can put attribution beyond it."""
        if radius is None:
            cfg = self.model(next(iter(results)), scale).cfg
            radius = receptive_radius(cfg.num_groups, cfg.num_blocks, scale)
        return {k: mass_outside(r.magnitude, r.box, scale, radius) for k, r in results.items()}, radius

    # ------------------------------------------------------------------ trace
    def trace_file(self, image: Any, scale: Any, kind: str = "lcoan", region: str = "downscale",
                   name: str | None = None) -> tuple[Path, dict[str, Any]]:
        """A zip of the traced pass (:mod:`lcoan.introspect.trace_files`) of the LCoAN or dense model, as the
        inspect tabs trace it; returns its path and a short report."""
        if kind not in ("lcoan", "dense"):
            raise ServiceError(f"kind must be 'lcoan' or 'dense', got {kind!r}")
        if region not in REGION_MODES:
            raise ServiceError(f"region must be one of {', '.join(REGION_MODES)}, got {region!r}")
        insp = inspector_for(self.models).inspect(image, self.scale(scale), region)
        trace = insp.lcoan if kind == "lcoan" else insp.dense
        if trace is None:
            raise ServiceError(f"no dense checkpoint for x{insp.scale}")
        entry = self.models.get(kind, insp.scale)
        meta = {"checkpoint": entry.folder.name, "config": entry.model.cfg.to_dict(), "scale": insp.scale,
                "region": insp.region.note, "image": Path(str(name or "image")).name}
        data = trace_bytes(trace, meta)
        path = self.models.outputs.save_bytes(f"{safe_stem(name)}_x{insp.scale}_{kind}_trace", ".zip", data)
        report = {"kind": trace.kind, "lr_size": list(trace.lr_size), "positions": trace.n,
                  "groups": len(trace.groups), "patterns": len(trace.patterns), "bytes": len(data),
                  "region": insp.region.note, "checkpoint": entry.folder.name}
        return path, report


def experiments_for(service: ModelService) -> ExperimentService:
    """The one :class:`ExperimentService` of a :class:`ModelService` (:meth:`ModelService.helper`)."""
    return service.helper(ExperimentService)
