"""What a traced forward pass exposes: cluster codes, centroids, the shared sparse pattern,
per-group values and attention outputs, and for the dense model each layer's embeddings.

Everything is a detached CPU copy for batch item 0. Attention rows are recomputed on demand,
exactly as the forward pass computed them, from the stored embeddings: a trace never holds
an N x N matrix, yet any query of the image can be inspected.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import torch
import torch.nn.functional as F
from torch import Tensor

from ..attention.lsp import SharedPattern
from ..attention.windows import key_slots, mix_rounds, slot_softmax, windowed


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
    def from_pattern(cls, pattern: SharedPattern, centroids: Tensor, group: int) -> PatternTrace:
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

    @cached_property
    def rank(self) -> Tensor:
        """(R, N) int64: where each position sits in the sorted sequence (inverse of ``order``)."""
        return torch.argsort(self.order, dim=-1)

    def window_of(self, position: int, round: int = 0) -> int:
        """Which window of the sorted sequence a position falls in."""
        return int(self.rank[round, position]) // self.window

    @cached_property
    def slots(self) -> tuple[Tensor, Tensor]:
        """:func:`key_slots` of this pattern: index (nW, 3W) into the sorted sequence, valid (nW, 3W)."""
        return key_slots(self.n, self.window)

    def keys_of(self, position: int, round: int = 0) -> Tensor:
        """Positions (original order) that ``position`` attends to in this round: (M,) int64, M <= 3W."""
        index, valid = self.slots
        win = self.window_of(position, round)
        return self.order[round][index[win][valid[win]]]

    def slot_rows(self, positions: Tensor, round: int = 0) -> tuple[Tensor, Tensor, Tensor]:
        """One round's attention of many queries over their key slots, by the forward pass's rule
        (:func:`slot_softmax`): key positions (Q, 3W) int64, weights (Q, 3W) (0 on invalid slots),
        log-sum-exp (Q,)."""
        keys, valid = self.key_positions(positions, round)
        scores = (self.key[keys] @ self.query[positions][:, :, None])[..., 0]
        weights, lse = slot_softmax(scores, valid=valid, with_lse=True)
        return keys, weights, lse

    def attention_rows(self, positions: Tensor) -> Tensor:
        """Sparse attention of many queries as full rows: (Q, N), rounds merged by log-sum-exp."""
        rows = torch.zeros(len(positions), self.n)
        parts = [self.slot_rows(positions, r) for r in range(self.rounds)]
        mix = mix_rounds(torch.stack([lse for *_, lse in parts]), dim=0)  # (R, Q)
        for (keys, w, _), m in zip(parts, mix):
            rows.scatter_add_(1, keys, m[:, None] * w)
        return rows

    def attention(self, position: int) -> tuple[Tensor, Tensor]:
        """Sparse attention row of one query, all rounds merged: (key positions (M,), weights (M,))."""
        row = self.attention_rows(torch.tensor([position]))[0]
        keys = torch.nonzero(row > 0)[:, 0]
        return keys, row[keys]

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

    def key_positions(self, positions: Tensor, round: int = 0) -> tuple[Tensor, Tensor]:
        """Keys of many queries at once: positions (Q, 3W) int64 in original order and
        valid (Q, 3W) bool (False for slots off either end of the sorted sequence)."""
        index, valid = self.slots
        win = self.rank[round][positions] // self.window
        return self.order[round][index[win]], valid[win]

    def recall_many(self, positions: Tensor, chunk: int = 256) -> Tensor:
        """:meth:`recall` of many queries, (Q,) in [0, 1]; works on ``chunk`` x N at a time."""
        out = []
        for start in range(0, len(positions), chunk):
            pos = positions[start:start + chunk]
            dense = torch.softmax(self.query[pos] @ self.key.T, dim=-1)  # (q, N)
            mask = torch.zeros_like(dense, dtype=torch.bool)
            rows = torch.arange(len(pos))[:, None]
            for r in range(self.rounds):
                keys, valid = self.key_positions(pos, r)
                mask[rows.expand_as(keys)[valid], keys[valid]] = True
            out.append((dense * mask).sum(-1))
        return torch.cat(out) if out else torch.zeros(0)

    def band(self, start: int = 0, stop: int | None = None, bins: int = 512,
             round: int = 0) -> tuple[Tensor, Tensor]:
        """The sparse attention matrix of one round in cluster-sorted order, rows and columns
        ``start:stop`` of the sorted sequence, averaged over blocks to at most ``bins`` x ``bins``.

        Entry (i, j) of the unbinned matrix is the weight of sorted query i on sorted key j:
        non-zero only within the band of a window and its two neighbours. Returns
        (matrix (B, B) of block means, edges (B + 1,) sorted indices where the blocks start);
        with ``stop - start <= bins`` every block is one entry (exact). Never builds N x N.
        """
        stop = self.n if stop is None else stop
        if not 0 <= start < stop <= self.n:
            raise ValueError(f"band range {start}:{stop} is not inside 0:{self.n}")
        length = stop - start
        nb = min(bins, length)
        edges = start + torch.arange(nb + 1) * length // nb
        bin_of = torch.bucketize(torch.arange(start, stop), edges[1:], right=True)  # (length,)
        sums = torch.zeros(nb, nb, dtype=torch.float64)
        order, w = self.order[round][None], self.window
        queries, slots = windowed(self.query[None], order, w)[0], windowed(self.key[None], order, w, slots=True)[0]
        valid = self.slots[1]
        for win in range(start // w, (stop - 1) // w + 1):
            weights, _ = slot_softmax(queries[win] @ slots[win].T, valid=valid[win])  # (W, 3W), as the forward
            # the window's queries and its valid key slots are contiguous ranges of the sorted sequence
            r0, r1 = max(win * w, start), min((win + 1) * w, self.n, stop)
            c0, c1 = max((win - 1) * w, 0, start), min((win + 2) * w, self.n, stop)
            if r0 >= r1 or c0 >= c1:
                continue
            block = weights[r0 - win * w:r1 - win * w, c0 - (win - 1) * w:c1 - (win - 1) * w]
            # block sums by two small one-hot products: the rows (columns) fall in a few consecutive bins
            rb, cb = bin_of[r0 - start:r1 - start], bin_of[c0 - start:c1 - start]
            rlo, clo = int(rb[0]), int(cb[0])
            rsum = F.one_hot(rb - rlo, int(rb[-1]) - rlo + 1).T.to(block.dtype)
            csum = F.one_hot(cb - clo, int(cb[-1]) - clo + 1).to(block.dtype)
            sums[rlo:int(rb[-1]) + 1, clo:int(cb[-1]) + 1] += (rsum @ block @ csum).double()
        counts = torch.bincount(bin_of, minlength=nb).double()
        matrix = sums / (counts[:, None] * counts[None, :])
        return matrix.float(), edges


@dataclass(frozen=True)
class GroupTrace:
    """One residual group: value projection (N, C) and attention output before scaling (N, C).

    For the dense model also this layer's own query / key embeddings (N, D).
    """

    value: Tensor
    attention_out: Tensor
    query: Tensor | None = None
    key: Tensor | None = None

    @cached_property
    def value_norm(self) -> Tensor:
        """(N,) L2 norm of each position's value vector."""
        return self.value.norm(dim=-1)


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

    def attention_rows(self, group: int, positions: Tensor) -> Tensor:
        """Attention rows of many queries at one group: (Q, N) (dense: one batched softmax)."""
        if self.kind == "dense":
            g = self.groups[group]
            return torch.softmax(g.query[positions] @ g.key.T, dim=-1)
        if self.kind != "lsp":
            raise ValueError("a model without attention has no attention rows")
        return self.pattern_for(group).attention_rows(positions)

    def contribution_row(self, group: int, position: int) -> Tensor:
        """How much each key adds to this query's attention output at this group: |w_j| * ||v_j||, (N,)."""
        return self.attention_row(group, position) * self.groups[group].value_norm

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
