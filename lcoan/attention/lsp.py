"""Learnable Sparse Pattern (LSP): k-means clustered, windowed sparse attention.

Positions are assigned to learned centroids, stably sorted by cluster id, and cut into windows
of W positions; each window's queries attend to the keys of the window itself and of its
previous and next window (no wrap-around). The result is a :class:`SharedPattern`, which CoA
computes once per forward pass and every residual group applies to its own values.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import LCoANConfig
from .kmeans import CentroidBank


def effective_window(n: int, window: int) -> int:
    """Window actually used for N positions: a window never exceeds N (so N < W needs no padding)."""
    return max(1, min(window, n))


def num_windows(n: int, window: int) -> int:
    return -(-n // effective_window(n, window))


def pad_to_windows(x: Tensor, window: int) -> Tensor:
    """(B, N, C) -> (B, nW, W, C), padding the tail by repeating the last position."""
    b, n, c = x.shape
    w = effective_window(n, window)
    nw = -(-n // w)
    pad = nw * w - n
    if pad:
        x = torch.cat([x, x[:, -1:].expand(b, pad, c)], dim=1)
    return x.reshape(b, nw, w, c)


def with_neighbours(x: Tensor) -> Tensor:
    """(B, nW, W, C) -> (B, nW, 3W, C): previous window, the window, next window (zeros off the ends)."""
    zeros = torch.zeros_like(x[:, :1])
    prev = torch.cat([zeros, x[:, :-1]], dim=1)
    nxt = torch.cat([x[:, 1:], zeros], dim=1)
    return torch.cat([prev, x, nxt], dim=2)


def key_slots(n: int, window: int, device: torch.device | None = None) -> tuple[Tensor, Tensor]:
    """Sorted-sequence index of each key slot and whether it is real.

    Returns index (nW, 3W) int64 into the sorted sequence (clamped where invalid) and
    valid (nW, 3W) bool: False for slots off either end or in the tail padding.
    """
    w = effective_window(n, window)
    nw = -(-n // w)
    win = torch.arange(nw, device=device)[:, None]
    slot = torch.arange(3 * w, device=device)[None, :]
    src = win - 1 + slot // w
    pos = src * w + slot % w
    valid = (src >= 0) & (src < nw) & (pos < n)
    return pos.clamp(0, n - 1), valid


def gather_positions(x: Tensor, index: Tensor) -> Tensor:
    """x: (B, N, C), index: (B, M) -> (B, M, C)."""
    return torch.gather(x, 1, index[..., None].expand(-1, -1, x.shape[-1]))


@dataclass(frozen=True)
class SharedPattern:
    """The sparse pattern and softmax weights of one LSP call, reused by every group under CoA.

    codes:   (B, R, N) cluster id of each position in each round
    order:   (B, R, N) stable sort of positions by cluster (sorted[i] = x[order[i]])
    inverse: (B, R, N) inverse permutation of ``order``
    weights: R tensors (B, nW, W, 3W): softmax of each sorted query over its 3W key slots
             (0 where masked); one tensor per round, so autograd never slices a stacked copy
    lse:     (B, R, N) log-sum-exp of each query's scores, in position order (merges rounds;
             zeros when R = 1, where it is not needed)
    query, key: (B, N, D) the match embedding (raw) and its L2-normalised version
    """

    codes: Tensor
    order: Tensor
    inverse: Tensor
    weights: tuple[Tensor, ...]
    lse: Tensor
    query: Tensor
    key: Tensor
    window: int

    @property
    def rounds(self) -> int:
        return self.codes.shape[1]

    @property
    def round_weights(self) -> Tensor | None:
        """(B, R, N) mixing weights of the rounds (softmax of their log-sum-exp), None for R = 1."""
        return None if self.rounds == 1 else torch.softmax(self.lse, dim=1)

    def apply(self, value: Tensor) -> Tensor:
        """Aggregate values with the shared weights. value: (B, N, C) -> (B, N, C)."""
        b, n, c = value.shape
        outs = []
        for r in range(self.rounds):
            v = pad_to_windows(gather_positions(value, self.order[:, r]), self.window)
            out = self.weights[r] @ with_neighbours(v)  # (B, nW, W, C)
            outs.append(gather_positions(out.reshape(b, -1, c), self.inverse[:, r]))
        if self.rounds == 1:
            return outs[0]
        mix = self.round_weights
        return sum(mix[:, r, :, None] * o for r, o in enumerate(outs))


def slot_bias(n: int, window: int, device: torch.device | None = None) -> Tensor:
    """(nW, 1, 3W) additive score bias: 0 for real key slots, -inf off the ends and on tail padding."""
    _, valid = key_slots(n, window, device=device)
    return torch.zeros(valid.shape, device=device).masked_fill_(~valid, float("-inf"))[:, None, :]


def build_pattern(query: Tensor, key: Tensor, codes: Tensor, window: int) -> SharedPattern:
    """Sort by cluster, window, and compute the softmax weights.

    query: (B, N, D) raw match embedding, key: (B, N, D) normalised, codes: (B, R, N).
    Scores are query . key without extra scaling, softmax over the 3W neighbouring keys.
    """
    b, n, _ = query.shape
    w = effective_window(n, window)
    bias = slot_bias(n, w, device=query.device).to(query.dtype)
    order = torch.sort(codes, dim=-1, stable=True).indices
    inverse = torch.argsort(order, dim=-1)
    weights, lses = [], []
    for r in range(codes.shape[1]):
        q = pad_to_windows(gather_positions(query, order[:, r]), w)
        k = with_neighbours(pad_to_windows(gather_positions(key, order[:, r]), w))
        scores = (q @ k.transpose(-1, -2)).add_(bias)  # (B, nW, W, 3W); in place: no extra copy in backward
        weights.append(torch.softmax(scores, dim=-1))
        if codes.shape[1] > 1:  # only needed to merge rounds
            lse = torch.logsumexp(scores, dim=-1)
            lses.append(gather_positions(lse.reshape(b, -1, 1), inverse[:, r])[..., 0])
    lse = torch.stack(lses, 1) if lses else query.new_zeros(b, 1, n)
    return SharedPattern(codes=codes, order=order, inverse=inverse, weights=tuple(weights),
                         lse=lse, query=query, key=key, window=w)


class LearnableSparsePattern(nn.Module):
    """LSP: match embedding (3x3 conv, C -> C/r) + centroid assignment -> :class:`SharedPattern`.

    forward(x: (B, C, H, W)) -> SharedPattern over the N = H * W positions.
    """

    def __init__(self, cfg: LCoANConfig) -> None:
        super().__init__()
        self.window = cfg.window
        self.match = nn.Conv2d(cfg.num_feat, cfg.match_dim, 3, padding=1)
        self.clusters = CentroidBank(cfg.rounds, cfg.num_clusters, cfg.match_dim, decay=cfg.ema_decay,
                                     frozen=cfg.freeze_centroids, init_iters=cfg.kmeans_init_iters)

    def forward(self, x: Tensor) -> SharedPattern:
        query = self.match(x).flatten(2).transpose(1, 2)
        key = F.normalize(query, dim=-1)
        codes = self.clusters(key)
        return build_pattern(query, key, codes, self.window)


class Assembly(nn.Module):
    """A group's own value ("assembly") projection (1x1 conv, C -> C), the only attention
    parameters a group owns under CoA; the network aggregates it with the shared pattern."""

    def __init__(self, num_feat: int) -> None:
        super().__init__()
        self.value = nn.Conv2d(num_feat, num_feat, 1)

    def project(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> values (B, N, C)."""
        return self.value(x).flatten(2).transpose(1, 2)
