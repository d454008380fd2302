"""What a traced forward pass exposes: cluster codes, centroids, the shared sparse pattern,
per-group values and attention outputs, and for the dense model each layer's embeddings.

Everything is a detached CPU copy for batch item 0. Attention rows are recomputed on demand,
exactly as the forward pass computed them, from the stored embeddings: a trace never holds
an N x N matrix, yet any query of the image can be inspected.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from .attention.lsp import SharedPattern, effective_window, key_slots


def _cpu(x: Tensor) -> Tensor:
    return x[0].detach().float().cpu()


@dataclass(frozen=True)
class PatternTrace:
    """One LSP pattern (batch item 0).

    codes, order: (R, N) int64; centroids: (R, K, D); query, key: (N, D); window: W actually used.
    """

    codes: Tensor
    order: Tensor
    centroids: Tensor
    query: Tensor
    key: Tensor
    window: int
    group: int

    @classmethod
    def from_pattern(cls, pattern: SharedPattern, centroids: Tensor, group: int) -> "PatternTrace":
        return cls(codes=_cpu(pattern.codes).long(), order=_cpu(pattern.order).long(),
                   centroids=centroids.detach().float().cpu(), query=_cpu(pattern.query),
                   key=_cpu(pattern.key), window=pattern.window, group=group)

    @property
    def n(self) -> int:
        return self.codes.shape[-1]

    @property
    def rounds(self) -> int:
        return self.codes.shape[0]

    @property
    def num_windows(self) -> int:
        return -(-self.n // self.window)

    def window_of(self, position: int, round: int = 0) -> int:
        """Which window of the sorted sequence a position falls in."""
        rank = int(torch.nonzero(self.order[round] == position)[0, 0])
        return rank // self.window

    def keys_of(self, position: int, round: int = 0) -> Tensor:
        """Positions (original order) that ``position`` attends to in this round: (M,) int64, M <= 3W."""
        index, valid = key_slots(self.n, self.window)
        slots = index[self.window_of(position, round)][valid[self.window_of(position, round)]]
        return self.order[round][slots]

    def attention(self, position: int) -> tuple[Tensor, Tensor]:
        """Sparse attention row of one query, all rounds merged: (key positions (M,), weights (M,))."""
        rows, lses = [], []
        for r in range(self.rounds):
            keys = self.keys_of(position, r)
            scores = self.key[keys] @ self.query[position]
            rows.append((keys, torch.softmax(scores, 0)))
            lses.append(torch.logsumexp(scores, 0))
        mix = torch.softmax(torch.stack(lses), 0)
        weights = torch.zeros(self.n)
        for (keys, w), m in zip(rows, mix):
            weights.index_add_(0, keys, m * w)
        keys = torch.nonzero(weights > 0)[:, 0]
        return keys, weights[keys]

    def dense_attention(self, position: int) -> Tensor:
        """Softmax over ALL keys with the same embeddings, (N,): what dense attention would give."""
        return torch.softmax(self.key @ self.query[position], 0)

    def recall(self, position: int) -> float:
        """Share of the dense softmax mass of this query that falls on the keys the pattern gave it."""
        keys = torch.unique(torch.cat([self.keys_of(position, r) for r in range(self.rounds)]))
        return float(self.dense_attention(position)[keys].sum())

    def cluster_sizes(self, round: int = 0) -> Tensor:
        """(K,) number of positions per cluster."""
        return torch.bincount(self.codes[round], minlength=self.centroids.shape[1])


@dataclass(frozen=True)
class GroupTrace:
    """One residual group: value projection (N, C) and attention output before scaling (N, C).

    For the dense model also this layer's own query / key embeddings (N, D).
    """

    value: Tensor
    attention_out: Tensor
    query: Tensor | None = None
    key: Tensor | None = None


@dataclass
class Trace:
    """Internals of one forward pass of an LCoAN-family network on one image."""

    kind: str
    lr_size: tuple[int, int]
    attn_res_scale: float
    patterns: list[PatternTrace] = field(default_factory=list)
    groups: list[GroupTrace] = field(default_factory=list)

    @property
    def n(self) -> int:
        return self.lr_size[0] * self.lr_size[1]

    def position(self, y: int, x: int) -> int:
        h, w = self.lr_size
        if not (0 <= y < h and 0 <= x < w):
            raise IndexError(f"({y}, {x}) is outside the {h}x{w} feature map")
        return y * w + x

    def pattern_for(self, group: int) -> PatternTrace:
        """The pattern group ``group`` used (the single shared one under CoA)."""
        if not self.patterns:
            raise ValueError(f"a {self.kind!r} model has no sparse pattern")
        return self.patterns[0] if len(self.patterns) == 1 else self.patterns[group]

    def attention_row(self, group: int, position: int) -> Tensor:
        """Attention weights of one query over all N positions at one group: (N,)."""
        if self.kind == "lsp":
            keys, w = self.pattern_for(group).attention(position)
            row = torch.zeros(self.n)
            row[keys] = w
            return row
        if self.kind == "dense":
            g = self.groups[group]
            return torch.softmax(g.key @ g.query[position], 0)
        raise ValueError("a model without attention has no attention rows")

    def contribution_row(self, group: int, position: int) -> Tensor:
        """How much each key adds to this query's attention output at this group: |w_j| * ||v_j||, (N,)."""
        return self.attention_row(group, position) * self.groups[group].value.norm(dim=-1)

    def as_map(self, row: Tensor) -> Tensor:
        """(N,) -> (H, W)."""
        return row.reshape(self.lr_size)


class TraceBuilder:
    """Collects a :class:`Trace` during one forward pass; the network calls it only when tracing."""

    def __init__(self, kind: str, lr_size: tuple[int, int], attn_res_scale: float) -> None:
        self.trace = Trace(kind=kind, lr_size=lr_size, attn_res_scale=attn_res_scale)

    def pattern(self, pattern: SharedPattern, centroids: Tensor, group: int) -> None:
        self.trace.patterns.append(PatternTrace.from_pattern(pattern, centroids, group))

    def group(self, value: Tensor, attention_out: Tensor, query: Tensor | None = None,
              key: Tensor | None = None) -> None:
        """value (B, N, C), attention_out (B, C, H, W); query/key (B, N, D) for dense layers."""
        out = _cpu(attention_out.flatten(2).transpose(1, 2))
        self.trace.groups.append(GroupTrace(
            value=_cpu(value), attention_out=out,
            query=None if query is None else _cpu(query), key=None if key is None else _cpu(key)))
