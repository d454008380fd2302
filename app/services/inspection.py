"""Inspection: the traces of one (image, scale, region) (:class:`Inspection`) and the service that
makes them (:class:`InspectService`): one traced forward pass per (image, scale, region) for the LCoAN model and
for the dense-NLA model, cached, plus the derived quantities the "inside LCoA" views need.

Plain Python, no Gradio: the tabs call it and tests call it directly. Requests never touch the
models' state (eval mode, inference only). Large inputs are traced on a region of at most
``MAX_POSITIONS`` LR positions (:mod:`.region`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lcoan.bench.timing import timed_call
from lcoan.imaging.io import ImageError, load_image
from lcoan.inference import to_tensor
from lcoan.introspect.stats import layer_redundancy, sample_positions
from lcoan.introspect.trace import Trace

from .efficiency import time_nonlocal
from .memo import Memo
from .models import LRUCache, ModelEntry, ModelService, ServiceError, image_key
from .projection import check_method, project
from .region import MAX_POSITIONS, Region, choose_region, extract_region


def trace_bytes(trace: Trace | None) -> int:
    """Bytes held by a trace's tensors (0 for None)."""
    if trace is None:
        return 0
    tensors = [x for p in trace.patterns for x in (p.codes, p.order, p.centroids, p.query, p.key)]
    tensors += [x for g in trace.groups for x in (g.value, g.attention_out, g.query, g.key) if x is not None]
    return sum(x.numel() * x.element_size() for x in tensors)


@dataclass
class Inspection:
    """Traces of one (image, scale, region). ``lcoan`` is traced at once; the dense model's trace
    (its N x N attention makes it the slow one) on first use of :attr:`dense`."""

    image: np.ndarray  # (h, w, 3) float32 in [0, 1]: the traced LR region
    region: Region
    scale: int
    lcoan: Trace
    labels: dict[str, str]
    seconds: dict[str, float]
    _dense: Callable[[], Trace] | None = field(default=None, repr=False)
    _memo: Memo = field(default_factory=Memo, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        return self.region.size

    @property
    def n(self) -> int:
        return self.size[0] * self.size[1]

    @property
    def nbytes(self) -> int:
        """Approximate memory held: traced tensors (the dense trace once made) and the image."""
        return int(self.image.nbytes) + trace_bytes(self.lcoan) + trace_bytes(self._memo.peek("dense"))

    @property
    def has_dense(self) -> bool:
        return self._dense is not None

    @property
    def dense(self) -> Trace | None:
        """The dense-NLA model's trace of the same region (traced once, on first use), or None."""
        return None if self._dense is None else self.memo("dense", self._dense)

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """Compute a derived quantity once per inspection (views re-render from it); concurrent
        requests for the same key wait for the first instead of computing it again."""
        return self._memo.get(key, compute)

    def sample(self, count: int, seed: int = 0) -> Tensor:
        """Up to ``count`` distinct positions, seeded, in increasing order: (S,) int64."""
        return sample_positions(self.n, count, seed)


RECALL_SAMPLES = 256
SIMILARITY_SAMPLES = 64
PROJECTION_SAMPLES = 2000


class InspectService:
    """Traced forward passes of the shipped LCoAN and dense-NLA checkpoints, cached per image."""

    def __init__(self, models: ModelService, max_positions: int = MAX_POSITIONS, capacity: int = 6) -> None:
        self.models = models
        self.max_positions = max_positions
        self.cache = LRUCache(capacity=capacity)
        self._memo = Memo(self.cache)

    def scales(self) -> list[int]:
        return self.models.scales()

    @staticmethod
    def load(image: Any) -> np.ndarray:
        """A path / array / PIL image -> HxWx3 float32 in [0, 1] through the project's one loader."""
        if image is None:
            raise ServiceError("no image: upload one or pick an example")
        try:
            loaded = load_image(image)
        except ImageError as exc:
            raise ServiceError(str(exc)) from None
        return loaded.to_float()

    def inspect(self, image: Any, scale: int, mode: str = "downscale") -> Inspection:
        """The cached inspection of ``image`` (path, array or PIL) at ``scale``."""
        rgb = self.load(image)
        scale = int(scale)
        region = choose_region(rgb.shape[0], rgb.shape[1], mode, self.max_positions)
        key = (image_key(rgb), scale, region)
        return self._memo.get(key, lambda: self._trace(rgb, scale, region))  # one trace per key at once

    def _trace(self, rgb: np.ndarray, scale: int, region: Region) -> Inspection:
        entry = self.models.get("lcoan", scale)
        if entry.model.cfg.attention != "lsp":
            raise ServiceError(f"{entry.folder} is not an LSP (LCoAN) checkpoint")
        crop = extract_region(rgb, region)
        x = to_tensor(crop)
        seconds: dict[str, float] = {}
        labels = {"lcoan": entry.label}

        @torch.inference_mode()
        def run(e: ModelEntry, kind: str) -> Trace:
            (_, trace), seconds[kind] = timed_call(lambda: e.model.forward_with_trace(x))
            return trace

        dense = None
        if self.models.has("dense", scale):
            d = self.models.get("dense", scale)
            labels["dense"] = d.label

            def dense() -> Trace:
                return run(d, "dense")
        return Inspection(image=crop, region=region, scale=scale, lcoan=run(entry, "lcoan"), labels=labels,
                          seconds=seconds, _dense=dense)

    # ----------------------------------------------------------------- derived, memoised
    def recall_stats(self, insp: Inspection, count: int = RECALL_SAMPLES) -> dict[str, Any]:
        """Attention-mass recall of LSP over ``count`` sampled queries (LCoAN's own embeddings)."""
        def compute() -> dict[str, Any]:
            p = insp.lcoan.patterns[0]
            pos = insp.sample(count, seed=1)
            values = p.recall_many(pos)
            return {"positions": pos, "values": values, "mean": float(values.mean()),
                    "median": float(values.median()), "min": float(values.min()),
                    "samples": len(pos), "keys_share": min(1.0, 3 * p.window / p.n),
                    "query_norm": float(p.query.norm(dim=-1).mean())}
        return insp.memo(("recall", count), compute)

    def band(self, insp: Inspection, start: int = 0, stop: int | None = None, bins: int = 384) -> tuple[Tensor, Tensor]:
        stop = insp.n if stop is None else stop
        return insp.memo(("band", start, stop, bins), lambda: insp.lcoan.patterns[0].band(start, stop, bins))

    def sampled_maps(self, insp: Inspection, count: int = SIMILARITY_SAMPLES) -> dict[str, Any]:
        """Attention among a sample of positions: LCoAN's shared matrix and each dense layer's,
        restricted to the sampled rows and columns (rows normalised over ALL N keys first)."""
        def compute() -> dict[str, Any]:
            pos = insp.sample(count, seed=2)
            lcoan = insp.lcoan.attention_rows(0, pos)[:, pos]
            trace = insp.dense
            dense = [] if trace is None else [trace.attention_rows(g, pos)[:, pos] for g in range(len(trace.groups))]
            return {"positions": pos, "lcoan": lcoan, "dense": dense}
        return insp.memo(("maps", count), compute)

    def redundancy(self, insp: Inspection, count: int = RECALL_SAMPLES) -> dict[str, Any] | None:
        """Layer x layer mean Jensen-Shannon divergence and mean Pearson correlation of the dense
        model's attention rows over ``count`` sampled queries; None without a dense checkpoint."""
        if not insp.has_dense:
            return None

        def compute() -> dict[str, Any]:
            pos = insp.sample(count, seed=3)
            trace = insp.dense
            js, corr = layer_redundancy([trace.attention_rows(i, pos) for i in range(len(trace.groups))])
            return {"js": js, "corr": corr, "samples": len(pos)}
        return insp.memo(("redundancy", count), compute)

    def projection(self, insp: Inspection, method: str = "pca", count: int = PROJECTION_SAMPLES,
                   progress: Callable[[float, str], None] | None = None) -> dict[str, Any]:
        """2-D projection of sampled (normalised) match embeddings and the K centroids.

        method "pca" (scikit-learn, fast) or "umap" (umap-learn, imported here only: slow the
        first time in a process). Returns points (S, 2), centroids (K, 2), codes (S,), positions (S,).
        """
        method = check_method(method)

        def compute() -> dict[str, Any]:
            p = insp.lcoan.patterns[0]
            pos = insp.sample(count, seed=4)
            points, centroids, note = project(p.key[pos].numpy(), p.centroids[0].numpy(), method, progress)
            return {"points": points, "centroids": centroids, "codes": p.codes[0][pos].numpy(),
                    "positions": pos.numpy(), "note": note}
        return insp.memo(("projection", method, count), compute)

    # ----------------------------------------------------------------- efficiency
    def time_nonlocal(self, image: Any, scale: int, repeats: int = 3, budget_s: float = 12.0,
                      max_positions: int = MAX_POSITIONS) -> dict[str, Any]:
        """The non-local part of one forward pass on this image (see :func:`.efficiency.time_nonlocal`)."""
        return time_nonlocal(self.models, self.load(image), int(scale), repeats, budget_s, max_positions)


def inspector_for(service: ModelService | InspectService) -> InspectService:
    """The one :class:`InspectService` of a :class:`ModelService` (:meth:`ModelService.helper`), so
    every tab shares its cache."""
    if isinstance(service, InspectService):
        return service
    return service.helper(InspectService)


__all__ = ["PROJECTION_SAMPLES", "RECALL_SAMPLES", "SIMILARITY_SAMPLES", "InspectService", "inspector_for"]
