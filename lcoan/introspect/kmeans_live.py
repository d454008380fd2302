"""Watch LSP's k-means learn on one image: the spherical k-means with the EMA update used in training
(:class:`lcoan.attention.kmeans.CentroidBank`, reused as is), run on the match embeddings of one traced
image, one frame per step.

"Learnable" in LSP means the centroids are learned from data, not by gradients: training starts them with
a few spherical k-means iterations on the first batch (:func:`~lcoan.attention.kmeans.spherical_kmeans`,
:func:`~lcoan.attention.kmeans.kmeans_step`), then every training batch moves each centroid a step
(1 - decay) towards the mean of the embeddings assigned to it (:meth:`CentroidBank.ema_update`), while the
match conv that makes the embeddings is trained by gradients. Here the embeddings are fixed (one image)
and each step draws a batch of ``batch`` positions from it.

Start "trained": the checkpoint's centroids, then EMA steps. Start "fresh": K random embeddings, the
k-means initialisation iterations (``init_iters`` frames), then EMA steps, as in training.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..attention.kmeans import CentroidBank, assign, cluster_sums, kmeans_step, spherical_kmeans

STARTS = ("trained", "fresh")


@dataclass(frozen=True)
class Frame:
    """The clustering after one step. codes (N,) int64 of every position of the image; occupancy (K,)
    member count per cluster; objective: mean cosine of each embedding to its centroid (what k-means
    maximises); moved: mean angle (degrees) the centroids turned in this step; changed: share of
    positions whose cluster changed in this step; reseeded: dead centroids moved onto embeddings."""

    step: int
    phase: str  # "start", "init" (k-means iteration) or "ema"
    codes: Tensor
    occupancy: Tensor
    objective: float
    moved: float
    changed: float
    reseeded: int

    @property
    def occupied(self) -> int:
        return int((self.occupancy > 0).sum())

    def as_dict(self) -> dict:
        return {"step": self.step, "phase": self.phase, "objective": self.objective, "moved_deg": self.moved,
                "changed": self.changed, "occupied": self.occupied, "reseeded": self.reseeded,
                "largest_cluster": int(self.occupancy.max())}


@dataclass(frozen=True)
class KMeansRun:
    """All frames of one run on an (H, W) map of N = H * W embeddings of D channels, K centroids."""

    lr_size: tuple[int, int]
    start: str
    decay: float
    batch: int
    init_iters: int
    reseed_dead: bool
    frames: tuple[Frame, ...]
    centroids: Tensor  # (K, D) after the last step

    @property
    def num_clusters(self) -> int:
        return self.centroids.shape[0]

    def occupancy(self) -> Tensor:
        """(T, K) members per cluster at every frame."""
        return torch.stack([f.occupancy for f in self.frames])

    def summary(self) -> dict:
        first, last = self.frames[0], self.frames[-1]
        return {"start": self.start, "decay": self.decay, "batch": self.batch, "init_iters": self.init_iters,
                "reseed_dead": self.reseed_dead, "clusters": self.num_clusters, "positions": int(first.codes.numel()),
                "steps": len(self.frames) - 1, "objective": [first.objective, last.objective],
                "occupied": [first.occupied, last.occupied], "frames": [f.as_dict() for f in self.frames]}


def _frame(step: int, phase: str, keys: Tensor, centroids: Tensor, before: Tensor | None,
           previous: Frame | None, reseeded: int = 0) -> Frame:
    codes = assign(keys[None], centroids[None])[0, 0]
    cos = (keys * centroids[codes]).sum(-1)
    occupancy = torch.bincount(codes, minlength=centroids.shape[0])
    moved = 0.0
    if before is not None:
        turn = (F.normalize(before, dim=-1) * centroids).sum(-1).clamp(-1, 1)
        moved = float(torch.rad2deg(torch.acos(turn)).mean())
    changed = 0.0 if previous is None else float((codes != previous.codes).float().mean())
    return Frame(step=step, phase=phase, codes=codes, occupancy=occupancy, objective=float(cos.mean()),
                 moved=moved, changed=changed, reseeded=reseeded)


def kmeans_live(keys: Tensor, lr_size: tuple[int, int], trained: Tensor | None = None, start: str = "trained",
                steps: int = 12, batch: int = 4096, decay: float = 0.9, init_iters: int = 10,
                reseed_dead: bool = False, seed: int = 0) -> KMeansRun:
    """Run LSP's k-means on one image's unit embeddings ``keys`` (N, D).

    trained: the checkpoint's centroids (K, D) (for start "trained"; for "fresh" only K is taken from
    it). Each EMA step samples ``batch`` positions and calls the training update with ``decay``
    (training uses 0.999 over thousands of batches; one step at 0.9 moves a centroid about as far as
    ~105 steps at 0.999 on the same data). ``reseed_dead``: the training option that moves centroids
    whose running size falls near zero onto embeddings of the batch. Deterministic for a ``seed``;
    the global random state is left as it was.
    """
    if start not in STARTS:
        raise ValueError(f"start must be one of {STARTS}, got {start!r}")
    if trained is None:
        raise ValueError("kmeans_live needs the trained centroids (K, D), or at least their shape")
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"decay must be in [0, 1), got {decay}")
    if steps < 0 or batch < 1 or init_iters < 0:
        raise ValueError("steps and init_iters must be >= 0 and batch >= 1")
    keys = F.normalize(keys.float(), dim=-1)
    n = keys.shape[0]
    k, d = trained.shape
    gen = torch.Generator().manual_seed(seed)

    def draw() -> Tensor:
        return keys[torch.randperm(n, generator=gen)[:batch]]

    frames: list[Frame] = []
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)  # the bank's own draws (its random start, re-seeding) are seeded too
        # re-seeding is called below, right after the update, as ema_update does with reseed_dead (so it is counted)
        bank = CentroidBank(1, k, d, decay=decay, init_iters=init_iters, reseed_dead=False).train()
        if start == "trained":
            centroids = F.normalize(trained.float(), dim=-1)
            frames.append(_frame(0, "start", keys, centroids, None, None))
            first = draw()
            bank.cluster_size[0] = cluster_sums(first, assign(first[None], centroids[None])[0, 0], k)[1]
        else:
            first = draw()
            centroids = spherical_kmeans(first, k, 0, generator=gen)  # K random embeddings of the first batch
            frames.append(_frame(0, "start", keys, centroids, None, None))
            for _ in range(init_iters):  # the initialisation on the first batch, one frame per iteration
                before, centroids = centroids, kmeans_step(first, centroids)
                frames.append(_frame(len(frames), "init", keys, centroids, before, frames[-1]))
            bank.cluster_size[0] = cluster_sums(first, assign(first[None], centroids[None])[0, 0], k)[1]
        bank.centroids[0] = centroids
        bank.initted.fill_(True)
        for _ in range(steps):
            before, x = bank.centroids[0].clone(), draw()
            bank(x[None])  # assign + the training EMA update, as in training
            reseeded = len(bank.reseed(x, 0)) if reseed_dead else 0
            frames.append(_frame(len(frames), "ema", keys, bank.centroids[0].clone(), before, frames[-1], reseeded))
    return KMeansRun(lr_size=tuple(lr_size), start=start, decay=decay, batch=min(batch, n), init_iters=init_iters
                     if start == "fresh" else 0, reseed_dead=reseed_dead, frames=tuple(frames),
                     centroids=bank.centroids[0].clone())

