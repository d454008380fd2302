"""Inspection service: one traced forward pass per (image, scale, region) for the LCoAN model and
for the dense-NLA model, cached, plus the derived quantities the "inside LCoA" views need.

Plain Python, no Gradio: the tabs call it and tests call it directly. Requests never touch
the models' state (eval mode, inference only). Large inputs are traced on a region of at most
``MAX_POSITIONS`` LR positions (128 x 128), either a bicubic downscale of the whole image or a
centre crop at native resolution: the dense model's per-layer N x N attention and the views'
per-query rows grow with N, and the region note says which was done.
"""
from __future__ import annotations

import math
import statistics
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from lcoan.degrade import imresize_to
from lcoan.inference import to_tensor
from lcoan.io import ImageError, load_image
from lcoan.trace import Trace

from .service import KINDS, LRUCache, ModelEntry, ModelService, ServiceError, image_key

MAX_POSITIONS = 128 * 128
REGION_MODES = ("downscale", "crop")
RECALL_SAMPLES = 256
SIMILARITY_SAMPLES = 64
PROJECTION_SAMPLES = 2000


@dataclass(frozen=True)
class Region:
    """Which part of the LR input was traced. mode: "full", "downscale" or "crop"."""

    source: tuple[int, int]  # (h, w) of the LR input
    size: tuple[int, int]  # (h, w) traced
    mode: str
    offset: tuple[int, int] = (0, 0)  # top-left of a crop in the source

    @property
    def note(self) -> str:
        (sh, sw), (h, w) = self.source, self.size
        if self.mode == "full":
            return f"Traced on the whole {sw}x{sh} input ({h * w:,} LR positions)."
        why = (f"inputs above {MAX_POSITIONS:,} LR positions are reduced: dense attention and the "
               "per-query rows grow with N")
        if self.mode == "downscale":
            return f"Traced on a bicubic downscale of the whole {sw}x{sh} input to {w}x{h} ({why})."
        y0, x0 = self.offset
        return (f"Traced on the centre {w}x{h} crop (x {x0}..{x0 + w - 1}, y {y0}..{y0 + h - 1}) "
                f"of the {sw}x{sh} input, at native resolution ({why}).")


def choose_region(h: int, w: int, mode: str = "downscale", max_positions: int = MAX_POSITIONS) -> Region:
    """The region to trace for an (h, w) LR input: the whole input when it fits in ``max_positions``."""
    if mode not in REGION_MODES:
        raise ServiceError(f"region mode must be one of {REGION_MODES}, got {mode!r}")
    if h * w <= max_positions:
        return Region((h, w), (h, w), "full")
    if mode == "downscale":
        f = math.sqrt(max_positions / (h * w))
        th, tw = max(1, min(h, math.floor(h * f))), max(1, min(w, math.floor(w * f)))
        return Region((h, w), (th, tw), "downscale")
    side = math.isqrt(max_positions)
    th = min(h, side) if w >= side else min(h, max_positions // w)
    tw = min(w, max_positions // th)
    return Region((h, w), (th, tw), "crop", ((h - th) // 2, (w - tw) // 2))


def extract_region(rgb: np.ndarray, region: Region) -> np.ndarray:
    """HxWx3 float32 in [0, 1] -> the traced region (h, w, 3) float32 in [0, 1]."""
    if region.mode == "downscale":
        return np.clip(imresize_to(rgb, region.size), 0.0, 1.0).astype(np.float32)
    (y0, x0), (h, w) = region.offset, region.size
    return np.ascontiguousarray(rgb[y0:y0 + h, x0:x0 + w])


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
    _memo: dict[Any, Any] = field(default_factory=dict, repr=False)
    _locks: dict[Any, threading.Lock] = field(default_factory=dict, repr=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        return self.region.size

    @property
    def n(self) -> int:
        return self.size[0] * self.size[1]

    @property
    def nbytes(self) -> int:
        """Approximate memory held: traced tensors (the dense trace once made) and the image."""
        def trace_bytes(t: Trace | None) -> int:
            if t is None:
                return 0
            tensors = [x for p in t.patterns for x in (p.codes, p.order, p.centroids, p.query, p.key)]
            tensors += [x for g in t.groups for x in (g.value, g.attention_out, g.query, g.key) if x is not None]
            return sum(x.numel() * x.element_size() for x in tensors)
        return int(self.image.nbytes) + trace_bytes(self.lcoan) + trace_bytes(self._memo.get("dense"))

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
        with self._guard:
            if key in self._memo:
                return self._memo[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                if key in self._memo:
                    return self._memo[key]
            value = compute()
            with self._guard:
                self._memo[key] = value
            return value

    def sample(self, count: int, seed: int = 0) -> Tensor:
        """Up to ``count`` distinct positions, seeded, in increasing order: (S,) int64."""
        if count >= self.n:
            return torch.arange(self.n)
        g = torch.Generator().manual_seed(seed)
        return torch.randperm(self.n, generator=g)[:count].sort().values


def entropy(p: Tensor) -> Tensor:
    """Shannon entropy (nats) of rows: (..., N) -> (...)."""
    return -torch.special.xlogy(p, p).sum(-1)


def js_divergence(p: Tensor, q: Tensor) -> Tensor:
    """Jensen-Shannon divergence (nats, in [0, ln 2]) between rows: (..., N) -> (...)."""
    return (entropy(0.5 * (p + q)) - 0.5 * (entropy(p) + entropy(q))).clamp_min(0)


def interleaved_medians(fns: dict[str, Callable[[], Any]], repeats: int, budget_s: float) -> dict[str, dict]:
    """Median wall time of each callable, timed round robin (so load changes hit all alike).

    Each first call is a warm-up (allocations, kernel choice), dropped when shorter than 0.5 s;
    a long first call is dominated by compute and counts. Rounds go on until each callable has
    ``repeats`` samples; once ``budget_s`` seconds have passed, only callables faster than a tenth
    of the budget still get their remaining runs (every callable keeps at least one sample).
    """
    start = time.perf_counter()
    samples: dict[str, list[float]] = {}
    for name, fn in fns.items():
        t = time.perf_counter()
        fn()
        first = time.perf_counter() - t
        samples[name] = [first] if first >= 0.5 else []
    while True:
        todo = [n for n, v in samples.items() if len(v) < repeats]
        if time.perf_counter() - start >= budget_s:
            todo = [n for n in todo if not samples[n] or max(samples[n]) < budget_s / 10]
        if not todo:
            break
        for name in todo:
            t = time.perf_counter()
            fns[name]()
            samples[name].append(time.perf_counter() - t)
    return {n: {"seconds": statistics.median(v), "runs": len(v)} for n, v in samples.items()}


class InspectService:
    """Traced forward passes of the shipped LCoAN and dense-NLA checkpoints, cached per image."""

    def __init__(self, models: ModelService, max_positions: int = MAX_POSITIONS, capacity: int = 6) -> None:
        self.models = models
        self.max_positions = max_positions
        self.cache = LRUCache(capacity=capacity)
        self._locks: dict[Any, threading.Lock] = {}
        self._locks_guard = threading.Lock()

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
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        with self._locks_guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one trace per key even when several views ask at once
            hit = self.cache.get(key)
            if hit is None:
                hit = self._trace(rgb, scale, region)
                self.cache.put(key, hit)
        with self._locks_guard:
            self._locks.pop(key, None)
        return hit

    def _trace(self, rgb: np.ndarray, scale: int, region: Region) -> Inspection:
        entry = self.models.get("lcoan", scale)
        if entry.model.cfg.attention != "lsp":
            raise ServiceError(f"{entry.folder} is not an LSP (LCoAN) checkpoint")
        crop = extract_region(rgb, region)
        x = to_tensor(crop)
        seconds: dict[str, float] = {}
        labels = {"lcoan": entry.label}

        def run(e: ModelEntry, kind: str) -> Trace:
            t = time.perf_counter()
            with torch.inference_mode():
                _, trace = e.model.forward_with_trace(x)
            seconds[kind] = time.perf_counter() - t
            return trace

        dense = None
        if self.models.has("dense", scale):
            d = self.models.get("dense", scale)
            labels["dense"] = d.label
            dense = lambda: run(d, "dense")  # noqa: E731
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
                    "samples": int(len(pos)), "keys_share": min(1.0, 3 * p.window / p.n),
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
            g = len(trace.groups)
            rows = [trace.attention_rows(i, pos) for i in range(g)]  # G x (S, N)
            ent = [entropy(r) for r in rows]
            centred = [r - r.mean(-1, keepdim=True) for r in rows]
            norms = [c.norm(dim=-1).clamp_min(1e-30) for c in centred]
            js, corr = torch.zeros(g, g), torch.eye(g)
            for a in range(g):
                for b in range(a + 1, g):
                    d = (entropy(0.5 * (rows[a] + rows[b])) - 0.5 * (ent[a] + ent[b])).clamp_min(0)
                    js[a, b] = js[b, a] = float(d.mean())
                    c = (centred[a] * centred[b]).sum(-1) / (norms[a] * norms[b])
                    corr[a, b] = corr[b, a] = float(c.mean())
            return {"js": js, "corr": corr, "samples": int(len(pos))}
        return insp.memo(("redundancy", count), compute)

    def projection(self, insp: Inspection, method: str = "pca", count: int = PROJECTION_SAMPLES,
                   progress: Callable[[float, str], None] | None = None) -> dict[str, Any]:
        """2-D projection of sampled (normalised) match embeddings and the K centroids.

        method "pca" (scikit-learn, fast) or "umap" (umap-learn, imported here only: slow the
        first time in a process). Returns points (S, 2), centroids (K, 2), codes (S,), positions (S,).
        """
        method = method.lower()
        if method not in ("pca", "umap"):
            raise ServiceError(f"projection must be 'pca' or 'umap', got {method!r}")

        def compute() -> dict[str, Any]:
            p = insp.lcoan.patterns[0]
            pos = insp.sample(count, seed=4)
            emb = p.key[pos].numpy()
            cents = p.centroids[0].numpy()
            both = np.concatenate([emb, cents]).astype(np.float32)
            if method == "pca":
                from sklearn.decomposition import PCA
                pca = PCA(n_components=2, random_state=0).fit(emb if len(emb) >= 2 else both)
                xy = pca.transform(both)
                note = f"PCA (explained variance {pca.explained_variance_ratio_.sum():.0%})"
            else:
                if progress:
                    progress(0.05, "importing umap-learn (slow the first time)")
                import umap  # noqa: PLC0415 - opt-in, never at start-up
                if progress:
                    progress(0.3, f"fitting UMAP on {len(both)} points")
                reducer = umap.UMAP(n_components=2, n_neighbors=min(15, len(both) - 1), metric="cosine",
                                    random_state=0, n_jobs=1)
                xy = reducer.fit_transform(both)
                note = "UMAP (cosine metric)"
            if progress:
                progress(1.0, "done")
            return {"points": xy[:len(emb)], "centroids": xy[len(emb):], "codes": p.codes[0][pos].numpy(),
                    "positions": pos.numpy(), "note": note}
        return insp.memo(("projection", method, count), compute)

    # ----------------------------------------------------------------- efficiency
    @torch.inference_mode()
    def time_nonlocal(self, image: Any, scale: int, repeats: int = 3, budget_s: float = 12.0,
                      max_positions: int = MAX_POSITIONS) -> dict[str, Any]:
        """Measure the non-local part of one forward pass at this input's LR size (or a centre crop
        of at most ``max_positions`` positions): dense NLA (G dense blocks, fused SDPA), LSP
        recomputed in every group (no sharing) and LCoA (LSP once + CoA). Median of ``repeats`` runs
        (timed round robin; fewer runs once ``budget_s`` is spent). Features: this image's head features."""
        rgb = self.load(image)
        region = choose_region(rgb.shape[0], rgb.shape[1], "crop", max_positions)
        lcoan = self.models.get("lcoan", int(scale)).model
        x = to_tensor(extract_region(rgb, region))
        feat = lcoan.conv_first(x - lcoan.rgb_mean)
        g = lcoan.cfg.num_groups
        maker = lcoan.patterns[0]
        assemblies = [grp.attention for grp in lcoan.groups]

        def lcoa() -> None:
            shared = maker(feat)
            for a in assemblies:
                shared.apply(a.project(feat))

        def lsp_every_group() -> None:
            for a in assemblies:
                maker(feat).apply(a.project(feat))

        variants = {"LCoA (LSP once + CoA)": lcoa, "LSP in every group (no CoA)": lsp_every_group}
        dense_label = None
        if self.models.has("dense", int(scale)):
            dense = self.models.get("dense", int(scale)).model
            blocks = [grp.attention for grp in dense.groups]
            dfeat = dense.conv_first(x - dense.rgb_mean)
            dense_label = f"Dense NLA ({len(blocks)} blocks, fused SDPA)"

            def dense_nla() -> None:
                for b in blocks:
                    b(dfeat)

            variants = {dense_label: dense_nla, **variants}
        results = interleaved_medians(variants, repeats, budget_s)
        out = {"size": list(region.size), "positions": region.size[0] * region.size[1], "groups": g,
               "window": lcoan.cfg.window,
               "region": region.note.replace("Traced on", "Measured on", 1) if region.mode != "full" else "",
               "threads": torch.get_num_threads(), "results": results}
        if dense_label:
            out["saving"] = 1.0 - results["LCoA (LSP once + CoA)"]["seconds"] / results[dense_label]["seconds"]
        return out


_INSPECTORS: "weakref.WeakKeyDictionary[ModelService, InspectService]" = weakref.WeakKeyDictionary()
_INSPECTORS_LOCK = threading.Lock()


def inspector_for(service: "ModelService | InspectService") -> InspectService:
    """The one :class:`InspectService` of a :class:`ModelService` (so every tab shares its cache)."""
    if isinstance(service, InspectService):
        return service
    with _INSPECTORS_LOCK:
        if service not in _INSPECTORS:
            _INSPECTORS[service] = InspectService(service)
        return _INSPECTORS[service]


__all__ = ["InspectService", "Inspection", "Region", "choose_region", "extract_region", "entropy", "js_divergence",
           "interleaved_medians", "inspector_for", "MAX_POSITIONS", "REGION_MODES", "KINDS", "ServiceError"]
