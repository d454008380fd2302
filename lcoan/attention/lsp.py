"""Learnable Sparse Pattern (LSP): k-means clustered, windowed sparse attention.

Positions are assigned to learned centroids, stably sorted by cluster id, and cut into windows
of W positions; each window's queries attend to the keys of the window itself and of its
previous and next window (no wrap-around). The result is a :class:`SharedPattern`, which CoA
computes once per forward pass and every residual group applies to its own values. The window
math lives in :mod:`lcoan.attention.windows`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import LCoANConfig
from .embed import make_log_scale, query_key
from .kmeans import CentroidBank
from .windows import (
    effective_window,
    inverse_permutation,
    key_slots,
    mix_rounds,
    needs_autograd,
    window_aggregate,
    window_weights,
)

__all__ = ["Assembly", "LearnableSparsePattern", "SharedPattern", "build_pattern", "effective_window", "key_slots"]


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
    query, key: (B, N, D) the match embedding (times the logit scale, if any) and its L2-normalised version
    """

    codes: Tensor
    order: Tensor
    inverse: Tensor
    weights: tuple[Tensor, ...]
    lse: Tensor
    query: Tensor
    key: Tensor
    window: int
    _scratch: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # apply's buffers

    @property
    def rounds(self) -> int:
        return self.codes.shape[1]

    @property
    def round_weights(self) -> Tensor | None:
        """(B, R, N) mixing weights of the rounds (softmax of their log-sum-exp), None for R = 1."""
        return None if self.rounds == 1 else mix_rounds(self.lse, dim=1)

    def can_add_into(self, features: Tensor, value: Tensor) -> bool:
        """Whether :meth:`add_into` can run: one round, no autograd, channels-last features."""
        return (self.rounds == 1 and not needs_autograd(features, value, *self.weights)
                and features.is_contiguous(memory_format=torch.channels_last))

    def add_into(self, features: Tensor, value: Tensor, alpha: float) -> Tensor:
        """features + alpha * apply(value), written into the channels-last ``features`` (B, C, H, W):
        the un-sorted rows are added to the map's own (B, N, C) memory (see :meth:`can_add_into`)."""
        b, c = features.shape[:2]
        rows = features.permute(0, 2, 3, 1).view(b, -1, c)
        window_aggregate(self.weights[0], value, self.order[:, 0], self.inverse[:, 0], self._scratch,
                         add_to=rows, alpha=alpha)
        return features

    def apply(self, value: Tensor) -> Tensor:
        """Aggregate values with the shared weights. value: (B, N, C) -> (B, N, C)."""
        scratch = self._scratch if self.rounds == 1 else None
        outs = [window_aggregate(self.weights[r], value, self.order[:, r], self.inverse[:, r], scratch)
                for r in range(self.rounds)]
        if self.rounds == 1:
            return outs[0]
        mix = self.round_weights
        return sum(mix[:, r, :, None] * o for r, o in enumerate(outs))


def build_pattern(query: Tensor, key: Tensor, codes: Tensor, window: int) -> SharedPattern:
    """Sort by cluster, window, and compute the softmax weights of every round.

    query: (B, N, D) match embedding (as scaled by the embedding), key: (B, N, D) normalised,
    codes: (B, R, N). Scores are query . key, softmax over the 3W neighbouring key slots.
    """
    b, n, _ = query.shape
    w = effective_window(n, window)
    rounds = codes.shape[1]
    order = torch.sort(codes, dim=-1, stable=True).indices
    inverse = inverse_permutation(order)
    weights, lses = [], []
    for r in range(rounds):
        wr, lse = window_weights(query, key, order[:, r], w, with_lse=rounds > 1)
        weights.append(wr)
        if rounds > 1:  # only needed to merge rounds
            lses.append(torch.gather(lse.reshape(b, -1), 1, inverse[:, r]))
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
        self.log_scale = make_log_scale(cfg.logit_scale)
        self.clusters = CentroidBank(cfg.rounds, cfg.num_clusters, cfg.match_dim, decay=cfg.ema_decay,
                                     frozen=cfg.freeze_centroids, init_iters=cfg.kmeans_init_iters,
                                     reseed_dead=cfg.reseed_dead)

    def forward(self, x: Tensor) -> SharedPattern:
        query, key = query_key(self.match, self.log_scale, x)
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
        if needs_autograd(x, self.value.weight):
            return self.value(x).flatten(2).transpose(1, 2)
        # The same 1x1 conv as one GEMM whose output is already (B, N, C)-contiguous, as the gather wants.
        return F.linear(x.flatten(2).transpose(1, 2), self.value.weight.flatten(1), self.value.bias)
