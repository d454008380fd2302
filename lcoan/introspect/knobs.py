"""Inference-time knobs of a trained LCoAN: the window W, the number of k-means rounds, and the
attention branch on / off; measured on one image in degrade-then-restore.

Nothing is monkey-patched: every variant is a new network built from the trained one's weights
under a changed config (:func:`lcoan.network.reconfigured`), the original stays untouched.

- ``window``: any W >= 1 keeps every tensor's shape. W >= N puts all N positions in one window,
  which is dense softmax attention over the SAME embeddings (query = raw match embedding, key =
  its unit vector); :func:`dense_pattern_forward` computes that setting with the fused dense
  kernel instead of a (N, 3N) score matrix, and the tests show both give the same output.
- ``rounds``: the centroid buffer is (R, K, D), so more rounds than were trained need centroids
  that training never produced. :func:`with_rounds` keeps the trained rounds and gives each extra
  round centroids from spherical k-means on THIS image's match embeddings: no longer the trained
  model, and the app says so. Fewer rounds keep the first trained ones.
- A K knob is not offered: the trained centroids are the K points the match embedding was
  trained against; re-clustering to another K would measure a different model, not "more or
  fewer clusters" of this one.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from ..attention.dense import dense_attention
from ..attention.embed import query_key
from ..attention.kmeans import cluster_sums, spherical_kmeans
from ..attention.lsp import LearnableSparsePattern
from ..bench.timing import medians, round_robin, warm_up
from ..bench.workload import attention_input, nonlocal_part
from ..imaging.metrics import psnr_y
from ..inference import from_tensor, to_tensor
from ..network import LCoAN, reconfigured
from .stats import sample_positions

DENSE_WINDOW = "W >= N"
SWEEP_WINDOWS: tuple[int, ...] = (64, 128, 256, 384, 512, 1024, 2048)


def with_window(model: LCoAN, window: int) -> LCoAN:
    """The same trained network with window ``window`` (shapes unchanged, so it is exact)."""
    return reconfigured(model, window=int(window))


def ablated(model: LCoAN) -> LCoAN:
    """The same network with its attention branch switched off (``attn_res_scale = 0``)."""
    return reconfigured(model, attn_res_scale=0.0)


@torch.no_grad()
def with_rounds(model: LCoAN, rounds: int, keys: list[Tensor] | None = None, iters: int = 10,
                seed: int = 0) -> LCoAN:
    """The network with ``rounds`` k-means rounds, merged by log-sum-exp as LSP does.

    rounds <= trained: the first ``rounds`` trained centroid sets (still the trained model when
    equal). rounds > trained: the trained sets, then one set per extra round from spherical
    k-means (``iters`` iterations, seeded) on ``keys[i]`` (N, D), the unit match embeddings of
    pattern i on the image at hand (``Trace.patterns[i].key``): NOT a trained model any more.
    """
    cfg = model.cfg
    if cfg.attention != "lsp":
        raise ValueError("only an LSP (LCoAN) model has k-means rounds")
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    names = [k[: -len("centroids")] for k in state if k.endswith("clusters.centroids")]
    if rounds > cfg.rounds and (keys is None or len(keys) < len(names)):
        raise ValueError(f"{rounds - cfg.rounds} extra round(s) need the image's embeddings of {len(names)} pattern(s)")
    gen = torch.Generator().manual_seed(seed)
    for i, prefix in enumerate(names):
        cents, sizes = state[prefix + "centroids"], state[prefix + "cluster_size"]
        if rounds <= cfg.rounds:
            state[prefix + "centroids"], state[prefix + "cluster_size"] = cents[:rounds], sizes[:rounds]
            continue
        emb = keys[i].reshape(-1, cents.shape[-1]).float()
        extra = [spherical_kmeans(emb, cents.shape[1], iters, gen) for _ in range(rounds - cfg.rounds)]
        counts = [cluster_sums(emb, (emb @ c.T).argmax(-1), cents.shape[1])[1] for c in extra]
        state[prefix + "centroids"] = torch.cat([cents, torch.stack(extra).to(cents)])
        state[prefix + "cluster_size"] = torch.cat([sizes, torch.stack(counts).to(sizes)])
    clone = LCoAN(cfg.replace(rounds=rounds)).to(next(model.parameters()).device)
    clone.load_state_dict(state, strict=True)
    return clone.train(model.training)


@dataclass
class DensePattern:
    """W >= N as one dense softmax over the model's own embeddings, with the fused kernel (no
    (N, 3N) score matrix). q: (B, N, D) raw query, k: (B, N, D) unit key."""

    q: Tensor
    k: Tensor

    def apply(self, value: Tensor) -> Tensor:
        """value: (B, N, C) -> (B, N, C)."""
        return dense_attention(self.q, self.k, value)


def dense_pattern(maker: LearnableSparsePattern, features: Tensor) -> DensePattern:
    """The pattern maker's match embedding (and logit scale) on ``features`` (B, C, H, W), dense."""
    return DensePattern(*query_key(maker.match, maker.log_scale, features))


def dense_pattern_forward(model: LCoAN, x: Tensor) -> Tensor:
    """An LSP model with W >= N, computed as dense attention: (B, 3, H, W) -> (B, 3, sH, sW).

    With one window holding all N positions, LSP's weights are softmax(q k_hat^T) over every key;
    the network runs unchanged (per-group values, under CoA the first group's weights for all)
    with :class:`DensePattern` in place of the sparse one.
    """
    if model.cfg.attention != "lsp":
        raise ValueError("dense_pattern_forward needs an LSP (LCoAN) model")
    return model(x, make_pattern=dense_pattern)


def interleaved_medians(fns: dict[str, Callable[[], object]], repeats: int,
                        budget_s: float | None = None) -> dict[str, dict]:
    """Median wall time of each callable, timed round robin (:mod:`lcoan.bench.timing`, so load
    changes hit all alike).

    Each first call is a warm-up (allocations, kernel choice), dropped when shorter than 0.5 s;
    a long first call is dominated by compute and counts. Rounds go on until each callable has
    ``repeats`` samples; once ``budget_s`` seconds have passed, only callables faster than a tenth
    of the budget still get their remaining runs (every callable keeps at least one sample).
    Returns name -> {"seconds": median, "runs": samples}.
    """
    start = time.perf_counter()
    samples = round_robin(fns, repeats, warm_up(fns, keep_s=0.5), budget_s=budget_s, started=start)
    return {n: {"seconds": s, "runs": len(samples[n])} for n, s in medians(samples).items()}


@torch.inference_mode()
def nonlocal_seconds(model: LCoAN, features: Tensor, dense: bool = False, repeats: int = 3) -> float:
    """Median time of the non-local part of one pass (pattern once + every group's values and
    aggregation, as CoA runs it: :func:`lcoan.bench.workload.nonlocal_part`, the bench's own) on
    ``features`` (1, C, h, w) = :func:`attention_input`. ``dense``: the W >= N setting through the
    fused dense kernel."""
    maker = model.patterns[0]
    assemblies = [g.attention for g in model.groups]

    def full() -> None:
        q, k = query_key(maker.match, maker.log_scale, features)
        for a in assemblies:
            dense_attention(q, k, a.project(features))

    fn = full if dense else nonlocal_part(model, "lsp+coa", features)
    return interleaved_medians({"nonlocal": fn}, repeats)["nonlocal"]["seconds"]


@dataclass
class SweepPoint:
    """One setting of the window sweep on one image."""

    window: int | str  # W, or DENSE_WINDOW
    effective: int  # W actually used (min(W, N))
    psnr: float
    recall: float  # mean attention-mass recall over the sampled queries (1.0 for W >= N)
    seconds: float  # median non-local time of one pass
    trained: bool = False


@dataclass
class Sweep:
    """The window sweep of one model on one (LR, HR) pair."""

    lr_size: tuple[int, int]
    trained_window: int
    rounds: int
    trained_rounds: int
    queries: int
    points: list[SweepPoint] = field(default_factory=list)

    @property
    def n(self) -> int:
        return self.lr_size[0] * self.lr_size[1]

    def first_window_with_recall(self, level: float = 0.9) -> SweepPoint | None:
        """The smallest W whose mean recall reaches ``level`` (None if none does)."""
        return next((p for p in self.points if p.recall >= level), None)


def restore_psnr(model: LCoAN | Callable[[Tensor], Tensor], lr: np.ndarray, hr: np.ndarray,
                 scale: int) -> tuple[float, Tensor]:
    """Y-PSNR of the model's restoration of ``lr`` (h, w, 3) uint8 against ``hr`` (sh, sw, 3) uint8,
    and the SR output (1, 3, sh, sw) clamped to [0, 1]."""
    with torch.inference_mode():
        sr = model(to_tensor(lr)).clamp(0, 1)
    return psnr_y(from_tensor(sr, np.uint8), hr, scale), sr


@torch.inference_mode()
def window_sweep(model: LCoAN, lr: np.ndarray, hr: np.ndarray, windows: tuple[int, ...] = SWEEP_WINDOWS,
                 rounds: int | None = None, queries: int = 256, repeats: int = 3, seed: int = 0,
                 progress: Callable[[float, str], None] | None = None) -> Sweep:
    """PSNR, attention-mass recall and non-local time of an LSP model at each W, plus W >= N.

    lr: (h, w, 3) uint8 made from hr (sh, sw, 3) uint8 by :func:`lcoan.imaging.degrade.degrade`.
    ``rounds`` other than the trained number goes through :func:`with_rounds` (k-means on this
    image for extra rounds). Recall: over ``queries`` sampled positions, the share of the dense
    softmax mass (same embeddings) on the keys the pattern gives (``PatternTrace.recall_many``).
    """
    cfg = model.cfg
    x = to_tensor(lr)
    _, base = model.forward_with_trace(x)
    rounds = cfg.rounds if rounds is None else int(rounds)
    if rounds != cfg.rounds:
        model = with_rounds(model, rounds, [p.key[None] for p in base.patterns], seed=seed)
    n = base.n
    positions = sample_positions(n, queries, seed)
    features = attention_input(model, x)
    sweep = Sweep(lr_size=base.lr_size, trained_window=cfg.window, rounds=rounds, trained_rounds=cfg.rounds,
                  queries=len(positions))
    todo = sorted({int(w) for w in windows if int(w) < n} | ({cfg.window} if cfg.window < n else set()))
    for i, w in enumerate(todo):
        if progress:
            progress(i / (len(todo) + 1), f"W = {w}")
        variant = with_window(model, w).eval()
        sr, trace = variant.forward_with_trace(x)
        psnr = psnr_y(from_tensor(sr.clamp(0, 1), np.uint8), hr, cfg.scale)
        recall = float(trace.patterns[0].recall_many(positions).mean())
        sweep.points.append(SweepPoint(w, min(w, n), psnr, recall, nonlocal_seconds(variant, features, repeats=repeats),
                                       trained=w == cfg.window and rounds == cfg.rounds))
    if progress:
        progress(len(todo) / (len(todo) + 1), DENSE_WINDOW)
    psnr, _ = restore_psnr(lambda t: dense_pattern_forward(model, t), lr, hr, cfg.scale)
    seconds = nonlocal_seconds(model, features, dense=True, repeats=repeats)
    trained = cfg.window >= n and rounds == cfg.rounds
    sweep.points.append(SweepPoint(DENSE_WINDOW, n, psnr, 1.0, seconds, trained=trained))
    return sweep


@dataclass
class Ablation:
    """|SR with attention - SR with the branch off| of one model on one image."""

    diff: np.ndarray  # (sh, sw) float32: mean over RGB of the absolute difference, in 8-bit levels
    psnr_on: float
    psnr_off: float

    @property
    def drop(self) -> float:
        """PSNR lost when the branch is switched off (positive: attention helps)."""
        return self.psnr_on - self.psnr_off


def ablation(model: LCoAN, lr: np.ndarray, hr: np.ndarray) -> Ablation:
    """The ablation map and both PSNRs of ``model`` in degrade-then-restore (uint8 lr / hr).

    The difference is taken before rounding to 8 bits, so a branch that is already off (or a
    model without attention) gives exactly zero.
    """
    psnr_on, on = restore_psnr(model, lr, hr, model.cfg.scale)
    if model.cfg.attention == "none":
        psnr_off, off = psnr_on, on
    else:
        psnr_off, off = restore_psnr(ablated(model).eval(), lr, hr, model.cfg.scale)
    diff = ((on - off).abs().mean(1)[0] * 255.0).numpy().astype(np.float32)
    return Ablation(diff=diff, psnr_on=psnr_on, psnr_off=psnr_off)
