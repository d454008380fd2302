"""Does a network use its attention? Ablation PSNR, softmax sharpness, LSP recall and cluster usage.

    python -m lcoan.introspect.report --checkpoint checkpoints/lcoan-s-x2 checkpoints/dense-s-x2 \
        --data data/heldout/structure --lr-size 128 --json docs/results/attention-x2.json

Every HR image of ``--data`` is degraded (MATLAB-compatible bicubic) and cut into ``--lr-size`` LR tiles
that cover it (evenly spaced, overlapping where the size does not divide); on every tile and for every
checkpoint it measures:

- Y-PSNR with the attention branch on, and off (the same weights with ``attn_res_scale = 0``); the
  drop's 95% interval is a paired two-stage bootstrap over the images and the tiles within them;
- where the attention mass goes (:mod:`lcoan.introspect.mass`): on the query itself, its 3x3
  neighbours, within the convolutions' receptive field, beyond it;
- per attention layer (the shared pattern of LCoAN, each group of dense), over sampled queries,
  the dense softmax of the model's own embeddings: entropy / log N (1 = uniform) and the share of
  its mass on the top 1% of keys (0.01 = uniform);
- LSP attention-mass recall: the share of that dense mass that falls on the 3W keys the sparse
  pattern gives each query (flat level 3W / N);
- clusters occupied (share of the K centroids with a member) and the perplexity of the cluster
  sizes (exp of their entropy: how many equally-used clusters the sizes amount to);
- |q|: the length of the (scaled) query embeddings.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .. import checkpoint
from ..imaging.metrics import psnr_y
from ..inference import from_tensor, to_tensor
from ..network import LCoAN, reconfigured
from ..training.data import centre_crop, list_images, make_pair
from .intervals import paired_bootstrap
from .mass import RINGS, mass_rows, receptive_radius
from .stats import entropy, sample_positions
from .trace import Trace

TOP_SHARE = 0.01  # "top 1% of keys"


# ---------------------------------------------------------------- pure statistics (tested)

def normalised_entropy(rows: Tensor) -> Tensor:
    """Entropy of each probability row divided by log N: (Q, N) -> (Q,), 1 for a uniform row."""
    n = rows.shape[-1]
    if n < 2:
        return torch.zeros(rows.shape[:-1])
    return entropy(rows) / math.log(n)


def top_share(rows: Tensor, fraction: float = TOP_SHARE) -> Tensor:
    """Share of each row's mass on its largest ceil(fraction * N) entries: (Q, N) -> (Q,)."""
    k = max(1, math.ceil(fraction * rows.shape[-1]))
    return rows.topk(k, dim=-1).values.sum(-1)


def perplexity(counts: Tensor) -> float:
    """exp(entropy) of a count vector: the number of equally-sized groups it amounts to."""
    return float(torch.exp(entropy(counts.double() / counts.sum().clamp_min(1))))


# ---------------------------------------------------------------- per image

@dataclass
class LayerStats:
    """Softmax sharpness of one attention layer on one image (means over sampled queries)."""

    entropy: float
    top1: float
    q_mean: float
    q_p05: float
    q_p95: float


@dataclass
class ImageStats:
    """Everything measured on one tile (``name``: image#tile) of one held-out image (``image``)."""

    name: str
    lr_size: tuple[int, int]
    psnr_on: float
    psnr_off: float
    image: str = ""
    layers: list[LayerStats] = field(default_factory=list)
    mass: list[float] | None = None  # mean attention mass per ring (RINGS order), over layers and queries
    recall: float | None = None
    flat_recall: float | None = None
    clusters_used: float | None = None
    cluster_perplexity: float | None = None

    @property
    def drop(self) -> float:
        """PSNR lost when the attention is switched off (positive: the attention helps)."""
        return self.psnr_on - self.psnr_off


def layer_stats(query: Tensor, key: Tensor, positions: Tensor) -> LayerStats:
    """query, key: (N, D) -> :class:`LayerStats` over the sampled query positions."""
    rows = torch.softmax(query[positions] @ key.T, dim=-1)
    qn = query.norm(dim=-1)
    return LayerStats(entropy=float(normalised_entropy(rows).mean()), top1=float(top_share(rows).mean()),
                      q_mean=float(qn.mean()), q_p05=float(qn.quantile(0.05)), q_p95=float(qn.quantile(0.95)))


def trace_mass(trace: Trace, positions: Tensor, radius: int) -> list[float] | None:
    """Mean attention mass per ring (RINGS order) of the sampled queries, over the attention layers."""
    if trace.kind not in ("lsp", "dense"):
        return None
    layers = range(1) if trace.kind == "lsp" and len(trace.patterns) == 1 else range(len(trace.groups))
    per = torch.stack([mass_rows(trace.attention_rows(g, positions), positions, trace.lr_size, radius)
                       .double().mean(0) for g in layers]).mean(0)
    return [float(v) for v in per / per.sum().clamp_min(1e-12)]


def trace_stats(trace: Trace, queries: int, seed: int = 0, radius: int | None = None) -> dict:
    """The attention statistics of one traced pass (no PSNR); ``radius``: the receptive field's, for the
    mass split (None: no split)."""
    positions = sample_positions(trace.n, queries, seed)
    out: dict = {"layers": []}
    if radius is not None:
        out["mass"] = trace_mass(trace, positions, radius)
    if trace.kind == "lsp":
        for pat in trace.patterns:
            out["layers"].append(layer_stats(pat.query, pat.key, positions))
        pat = trace.patterns[0]
        out["recall"] = float(pat.recall_many(positions).mean())
        out["flat_recall"] = min(1.0, 3 * pat.window / pat.n)
        sizes = pat.cluster_sizes(0)
        out["clusters_used"] = float((sizes > 0).double().mean())
        out["cluster_perplexity"] = perplexity(sizes)
    elif trace.kind == "dense":
        for g in trace.groups:
            out["layers"].append(layer_stats(g.query, g.key, positions))
    return out


@torch.no_grad()
def image_stats(model: LCoAN, ablated: LCoAN, name: str, lr: np.ndarray, hr: np.ndarray,
                queries: int = 512, seed: int = 0, image: str = "") -> ImageStats:
    """Everything the report measures for one model on one (LR, HR) pair of uint8 arrays."""
    scale = model.cfg.scale
    device = next(model.parameters()).device
    x = to_tensor(lr).to(device)
    sr, trace = model.forward_with_trace(x)
    psnr_on = psnr_y(from_tensor(sr.clamp(0, 1), np.uint8), hr, scale)
    psnr_off = psnr_on if model.cfg.attention == "none" else \
        psnr_y(from_tensor(ablated(x).clamp(0, 1), np.uint8), hr, scale)
    return ImageStats(name=name, lr_size=tuple(lr.shape[:2]), psnr_on=psnr_on, psnr_off=psnr_off,
                      image=image or name.split("#")[0],
                      **trace_stats(trace, queries, seed, receptive_radius(model.cfg)))


# ---------------------------------------------------------------- per checkpoint

def by_image(tiles: list, value) -> list[np.ndarray]:
    """Per-image arrays of ``value(tile)`` (tiles grouped by their source image, in order)."""
    groups: dict[str, list[float]] = {}
    for t in tiles:
        groups.setdefault(t["image"] if isinstance(t, dict) else t.image, []).append(value(t))
    return [np.asarray(v) for v in groups.values()]


def image_mean(tiles: list[ImageStats], value) -> float | None:
    """Mean over images of the mean over each image's tiles (None when a value is missing)."""
    if any(value(t) is None for t in tiles):
        return None
    return float(np.mean([g.mean() for g in by_image(tiles, value)]))


def summarise(images: list[ImageStats]) -> dict:
    """Means over the images (each the mean of its tiles); per-layer entropy and top-1% share are
    averaged over layers too; the drop with its paired bootstrap interval."""
    def mean(values: list) -> float | None:
        values = [v for v in values if v is not None]
        return float(np.mean(values)) if values else None

    layers = [layer for im in images for layer in im.layers]
    has_mass = bool(images) and images[0].mass is not None
    drop_ci = paired_bootstrap(by_image(images, lambda t: t.drop)).as_dict() \
        if images and any(t.psnr_on != t.psnr_off for t in images) else None
    return {
        "images": len({im.image for im in images}),
        "tiles": len(images),
        "psnr_on": image_mean(images, lambda t: t.psnr_on),
        "psnr_off": image_mean(images, lambda t: t.psnr_off),
        "drop": image_mean(images, lambda t: t.drop),
        "drop_ci": drop_ci,
        **{f"mass_{ring}": image_mean(images, lambda t, i=i: t.mass[i]) if has_mass else None
           for i, ring in enumerate(RINGS)},
        "entropy": mean([la.entropy for la in layers]),
        "entropy_per_layer": [mean([im.layers[i].entropy for im in images]) for i in range(len(images[0].layers))]
        if images and images[0].layers else [],
        "top1": mean([la.top1 for la in layers]),
        "q_mean": mean([la.q_mean for la in layers]),
        "q_p05": mean([la.q_p05 for la in layers]),
        "q_p95": mean([la.q_p95 for la in layers]),
        "recall": mean([im.recall for im in images]),
        "flat_recall": mean([im.flat_recall for im in images]),
        "clusters_used": mean([im.clusters_used for im in images]),
        "cluster_perplexity": mean([im.cluster_perplexity for im in images]),
    }


def tile_starts(length: int, size: int) -> list[int]:
    """Starts of the fewest ``size`` tiles covering ``length``, evenly spaced (overlapping when needed)."""
    if length <= size:
        return [0]
    n = -(-length // size)
    return [round(i * (length - size) / (n - 1)) for i in range(n)]


def load_pairs(folder: str | Path, scale: int, lr_size: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name ``image#tile``, LR, HR) of the ``lr_size`` LR tiles covering every image of a folder
    (an image smaller than a tile is one tile of its own size)."""
    out = []
    for path in list_images(folder):
        pair = centre_crop(make_pair(path, scale), scale, 1 << 30)  # the whole image, aligned
        h, w = pair.lr.shape[:2]
        tiles = [(y, x) for y in tile_starts(h, lr_size) for x in tile_starts(w, lr_size)]
        for i, (y, x) in enumerate(tiles):
            ch, cw = min(lr_size, h), min(lr_size, w)
            out.append((f"{path.stem}#{i}", pair.lr[y:y + ch, x:x + cw],
                        pair.hr[y * scale:(y + ch) * scale, x * scale:(x + cw) * scale]))
    return out


def gain_interval(mine: dict, base: dict, key: str = "psnr_on") -> dict | None:
    """Paired bootstrap of ``mine`` minus ``base`` (two report results on the same data and tiles)
    per tile -> Interval as a dict, or None when the tiles do not pair up."""
    theirs = {t["name"]: t[key] for t in base.get("per_tile", [])}
    tiles = [dict(t, diff=t[key] - theirs[t["name"]]) for t in mine.get("per_tile", []) if t["name"] in theirs]
    if not tiles or len(tiles) != len(theirs):
        return None
    return paired_bootstrap(by_image(tiles, lambda t: t["diff"])).as_dict()


def report(folder: str | Path, data: str | Path, lr_size: int = 128, queries: int = 512,
           pairs: list | None = None, device: str = "cpu") -> dict:
    """Load one checkpoint and measure it on every tile of every image of ``data``."""
    model = checkpoint.load(folder).eval().to(device)
    ablated = reconfigured(model, attn_res_scale=0.0).eval().to(device)
    pairs = pairs if pairs is not None else load_pairs(data, model.cfg.scale, lr_size)
    images = [image_stats(model, ablated, name, lr, hr, queries) for name, lr, hr in pairs]
    return {"checkpoint": Path(folder).name, "kind": model.cfg.attention, "scale": model.cfg.scale,
            "config": model.cfg.to_dict(), "data": Path(data).name, "lr_size": lr_size,
            "receptive_radius": receptive_radius(model.cfg),
            "summary": summarise(images), "per_tile": [dict(asdict(im), drop=im.drop) for im in images]}


def fmt(value: float | None, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def interval(ci: dict | None, digits: int = 3) -> str:
    """``+0.123 [+0.050, +0.190]`` from an Interval dict."""
    if not ci:
        return "–"
    return f"{ci['mean']:+.{digits}f} [{ci['lo']:+.{digits}f}, {ci['hi']:+.{digits}f}]"


def add_gains(results: list[dict]) -> list[dict]:
    """Set ``summary.gain_ci`` of every attention result to its paired interval over the ``none`` result
    of the same scale and data (when there is one); returns ``results``."""
    base = {(r["scale"], r["data"]): r for r in results if r["kind"] == "none"}
    for r in results:
        b = base.get((r["scale"], r["data"]))
        if r["kind"] != "none" and b is not None:
            r["summary"]["gain_ci"] = gain_interval(r, b)
    return results


def markdown(results: list[dict]) -> str:
    """One row per (checkpoint, data) result."""
    lines = ["| checkpoint | data | images (tiles) | PSNR on / off | drop (dB) [95% CI] | gain over none [95% CI] | "
             "self mass | beyond RF | entropy / log N | top-1% mass | LSP recall (flat) | clusters used | "
             "cluster perplexity | abs(q) mean (p5-p95) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        s = r["summary"]
        drop = interval(s.get("drop_ci")) if s.get("drop_ci") else fmt(s["drop"], signed=True)
        tiles = f"{s['images']} ({s['tiles']})" if s.get("tiles") else f"{s['images']}"
        recall = "–" if s["recall"] is None else f"{s['recall']:.3f} ({s['flat_recall']:.3f})"
        used = "–" if s["clusters_used"] is None else f"{100 * s['clusters_used']:.0f}%"
        q = "–" if s["q_mean"] is None else f"{s['q_mean']:.2f} ({s['q_p05']:.2f}-{s['q_p95']:.2f})"
        lines.append(f"| {r['checkpoint']} | {r['data']} | {tiles} | "
                     f"{fmt(s['psnr_on'])} / {fmt(s['psnr_off'])} | {drop} | {interval(s.get('gain_ci'))} | "
                     f"{fmt(s.get('mass_self'))} | "
                     f"{fmt(s.get('mass_beyond_rf'))} | {fmt(s['entropy'])} | {fmt(s['top1'])} | {recall} | {used} | "
                     f"{fmt(s['cluster_perplexity'], 1)} | {q} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lcoan.introspect.report", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", nargs="+", required=True, help="checkpoint folder(s)")
    p.add_argument("--data", nargs="+", required=True, help="folder(s) of HR images")
    p.add_argument("--lr-size", type=int, default=128, help="tile side, LR pixels (default 128)")
    p.add_argument("--queries", type=int, default=512, help="sampled query positions per image")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--json", help="write the full results (per tile too) here")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    try:
        for data in args.data:
            for folder in args.checkpoint:
                results.append(report(folder, data, args.lr_size, args.queries, device=args.device))
                print(markdown(results[-1:]).splitlines()[-1], flush=True)
    except (checkpoint.CheckpointError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(markdown(results))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
