"""Spherical k-means on unit vectors: pure helpers plus the one module that owns centroid state.

All state lives in buffers (centroids, initted, cluster_size) so it is saved with the weights.
Centroids move by k-means statistics (EMA of per-cluster means), never by gradients.

Under DistributedDataParallel (any initialised process group of more than one rank) the statistics
are those of the union of the ranks' batches: per-cluster sums and counts are all-reduced, the
k-means initialisation runs on the gathered embeddings on rank 0 and is broadcast, and re-seeding
is decided from the reduced sizes and broadcast from rank 0. So every rank holds the same centroids,
equal (up to float summation order) to one process training on the whole batch. Every rank must
then run the same training forward passes (as DDP does).
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

SIZE_DECAY = 0.99  # EMA decay of the running cluster sizes (at most the centroids' decay)


def assign(x: Tensor, centroids: Tensor) -> Tensor:
    """Nearest centroid by cosine similarity.

    x: (B, N, D) unit vectors; centroids: (R, K, D) unit vectors -> codes (B, R, N) int64.
    """
    sim = torch.einsum("bnd,rkd->brnk", x, centroids)
    return sim.argmax(dim=-1)


def cluster_sums(x: Tensor, codes: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Per-cluster sum and count of members. x: (M, D), codes: (M,) -> sums (K, D), counts (K,)."""
    sums = x.new_zeros(k, x.shape[-1]).index_add_(0, codes, x)
    counts = x.new_zeros(k).index_add_(0, codes, torch.ones_like(codes, dtype=x.dtype))
    return sums, counts


def world_size() -> int:
    """Ranks of the initialised process group (1 when torch.distributed is unused)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def all_sum(*tensors: Tensor) -> None:
    """Sum each tensor over the ranks, in place (nothing in a single process)."""
    if world_size() > 1:
        for t in tensors:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)


def gather_rows(x: Tensor) -> Tensor:
    """The rows of x: (M, D) of every rank concatenated in rank order (M may differ between ranks)."""
    world = world_size()
    if world == 1:
        return x
    sizes = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([x.shape[0]], device=x.device))
    rows = [int(n) for n in sizes]
    padded = x.new_zeros(max(rows), x.shape[1])
    padded[: x.shape[0]] = x
    out = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(out, padded)
    return torch.cat([o[:n] for o, n in zip(out, rows)])


def broadcast(*tensors: Tensor) -> None:
    """Copy rank 0's values of each tensor to every rank, in place."""
    if world_size() > 1:
        for t in tensors:
            dist.broadcast(t, src=0)


def kmeans_step(x: Tensor, centroids: Tensor) -> Tensor:
    """One spherical k-means iteration; an empty cluster keeps its old centroid.

    x: (M, D) unit vectors, centroids: (K, D) -> new centroids (K, D).
    """
    codes = (x @ centroids.t()).argmax(dim=-1)
    sums, counts = cluster_sums(x, codes, centroids.shape[0])
    new = F.normalize(sums, dim=-1)
    return torch.where(counts[:, None] > 0, new, centroids)


def spherical_kmeans(x: Tensor, k: int, iters: int, generator: torch.Generator | None = None) -> Tensor:
    """Spherical k-means from k distinct random samples. x: (M, D) unit vectors -> (K, D).

    With fewer samples than clusters, samples are reused with a little noise so centroids differ.
    """
    m = x.shape[0]
    if m >= k:
        idx = torch.randperm(m, generator=generator, device="cpu")[:k].to(x.device)
        centroids = x[idx]
    else:
        idx = torch.randint(m, (k,), generator=generator, device="cpu").to(x.device)
        noise = torch.randn(k, x.shape[1], generator=generator, device="cpu").to(x)
        centroids = F.normalize(x[idx] + 0.01 * noise, dim=-1)
    for _ in range(iters):
        centroids = kmeans_step(x, centroids)
    return centroids


class CentroidBank(nn.Module):
    """K centroids per hashing round, initialised by k-means on the first training batch and
    then moved by an EMA of the per-cluster means of each training batch. Eval mode changes
    nothing; ``frozen`` keeps the first-batch centroids (the reference code's behaviour).
    ``reseed_dead`` (not in the paper): a centroid whose running cluster size (``cluster_size``, an
    EMA of its member count per batch, decay ``SIZE_DECAY``) falls below ``dead_fraction`` of the mean is moved onto a
    random embedding of the current batch, so every cluster keeps members.

    forward(x: (B, N, D) unit vectors) -> codes (B, R, N).
    """

    def __init__(self, rounds: int, num_clusters: int, dim: int, decay: float = 0.999,
                 frozen: bool = False, init_iters: int = 10, init_samples: int = 16384,
                 reseed_dead: bool = False, dead_fraction: float = 0.03) -> None:
        super().__init__()
        self.decay = decay
        self.reseed_dead = reseed_dead
        self.dead_fraction = dead_fraction
        self.frozen = frozen
        self.init_iters = init_iters
        self.init_samples = init_samples
        self.register_buffer("centroids", F.normalize(torch.randn(rounds, num_clusters, dim), dim=-1))
        self.register_buffer("initted", torch.zeros((), dtype=torch.bool))
        self.register_buffer("cluster_size", torch.zeros(rounds, num_clusters))

    @property
    def num_clusters(self) -> int:
        return self.centroids.shape[1]

    @torch.no_grad()
    def initialise(self, x: Tensor) -> None:
        """k-means on (a sample of) x: (B, N, D), gathered from every rank; one independent run per round.

        Computed on rank 0 and broadcast, so all ranks start from the same centroids.
        """
        flat = gather_rows(x.reshape(-1, x.shape[-1]).float())
        if world_size() == 1 or dist.get_rank() == 0:
            for r in range(self.centroids.shape[0]):
                if flat.shape[0] > self.init_samples:
                    sample = flat[torch.randperm(flat.shape[0], device="cpu")[: self.init_samples].to(flat.device)]
                else:
                    sample = flat
                self.centroids[r] = spherical_kmeans(sample, self.num_clusters, self.init_iters).to(self.centroids)
                # start the running sizes at this batch's counts (not at 0, which would read as "all dead")
                codes = (flat @ self.centroids[r].t().to(flat)).argmax(dim=-1)
                self.cluster_size[r] = cluster_sums(flat, codes, self.num_clusters)[1].to(self.cluster_size)
        broadcast(self.centroids, self.cluster_size)
        self.initted.fill_(True)

    @torch.no_grad()
    def ema_update(self, x: Tensor, codes: Tensor) -> None:
        """centroid <- decay * centroid + (1 - decay) * batch mean of its members (then renormalised).

        Clusters with no member in the batch are left unchanged. The batch is the union of all
        ranks' batches: sums and counts (K, D) and (K,) are all-reduced before use.
        """
        flat = x.reshape(-1, x.shape[-1]).float()
        for r in range(self.centroids.shape[0]):
            sums, counts = cluster_sums(flat, codes[:, r].reshape(-1), self.num_clusters)
            all_sum(sums, counts)
            present = counts > 0
            means = sums / counts.clamp(min=1)[:, None]
            updated = F.normalize(torch.lerp(self.centroids[r], means.to(self.centroids), 1.0 - self.decay), dim=-1)
            self.centroids[r] = torch.where(present[:, None], updated, self.centroids[r])
            # a shorter memory than the centroids' (about 100 batches), so a cluster that lost its
            # members is noticed within a short fine-tune
            self.cluster_size[r].lerp_(counts.to(self.cluster_size), 1.0 - min(self.decay, SIZE_DECAY))
            if self.reseed_dead:
                self.reseed(flat, r)

    @torch.no_grad()
    def reseed(self, flat: Tensor, r: int) -> Tensor:
        """Move round r's dead centroids onto random rows of flat (M, D); returns their indices.

        The sizes are the same on every rank (reduced counts), so all ranks find the same dead
        centroids; rank 0's replacements are broadcast.
        """
        size = self.cluster_size[r]
        dead = torch.nonzero(size < self.dead_fraction * size.mean().clamp(min=1e-12))[:, 0]
        if len(dead):
            pick = torch.randint(flat.shape[0], (len(dead),), device="cpu").to(flat.device)
            self.centroids[r, dead] = F.normalize(flat[pick], dim=-1).to(self.centroids)
            self.cluster_size[r, dead] = size.mean()  # a grace period to gather members
            round_centroids = self.centroids[r].clone()
            broadcast(round_centroids)
            self.centroids[r] = round_centroids
        return dead

    def forward(self, x: Tensor) -> Tensor:
        x = x.detach()
        if self.training and not bool(self.initted):
            self.initialise(x)
        codes = assign(x, self.centroids.to(x.dtype))
        if self.training and not self.frozen:
            self.ema_update(x, codes)
        return codes
