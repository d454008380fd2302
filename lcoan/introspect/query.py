"""One query's attention, made readable: its weight on itself, its strongest matches, where its mass goes
(:mod:`.mass`), its recall, and which query of an image reaches farthest.

Works on a :class:`~.trace.Trace` of either attention kind (LSP: the shared pattern's row; dense: one
layer's own softmax), so LSP and dense attention can be compared on one query with the same numbers.
Never builds an N x N matrix: rows are computed for the queries asked for only.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .mass import MassSplit, mass_rows, mass_split
from .stats import sample_positions
from .trace import Trace

FAR_SAMPLES = 1024  # queries sampled when looking for the far-reaching one


@dataclass(frozen=True)
class QueryAttention:
    """The attention row of the query at ``position`` (raster order of the (H, W) LR map) at one group.

    row: (N,) weights summing to 1 (0 on keys an LSP query never sees); self_weight = row[position];
    top: (k,) key positions of the largest weights OTHER than the query itself, strongest first, and
    top_weights (k,); mass: the split over self / 3x3 / within / beyond the receptive field;
    keys: how many keys the query can see (non-zero weights for LSP, N for dense);
    recall: for LSP, the share of the dense softmax (same embeddings) on the keys the pattern gave
    it (None for dense).
    """

    kind: str
    group: int
    position: int
    lr_size: tuple[int, int]
    row: Tensor
    self_weight: float
    top: Tensor
    top_weights: Tensor
    mass: MassSplit
    keys: int
    recall: float | None

    @property
    def query(self) -> tuple[int, int]:
        """(row, col) of the query on the LR map."""
        return divmod(self.position, self.lr_size[1])

    def top_rc(self) -> list[tuple[int, int]]:
        """(row, col) of each top match, strongest first."""
        w = self.lr_size[1]
        return [divmod(int(p), w) for p in self.top]

    def distance(self, key: int) -> int:
        """Chebyshev distance in LR px between the query and a key position (the rings' metric)."""
        w = self.lr_size[1]
        (qy, qx), (ky, kx) = divmod(self.position, w), divmod(int(key), w)
        return max(abs(qy - ky), abs(qx - kx))

    def as_dict(self) -> dict:
        """Plain numbers (JSON-ready) without the row."""
        return {"kind": self.kind, "group": self.group, "query": list(self.query), "position": self.position,
                "self_weight": self.self_weight, "keys": self.keys, "recall": self.recall,
                "mass": self.mass.as_dict(), "radius": self.mass.radius,
                "top": [list(rc) for rc in self.top_rc()], "top_weights": [float(v) for v in self.top_weights],
                "top_distance": [self.distance(int(p)) for p in self.top]}


def query_attention(trace: Trace, position: int, radius: int, group: int = 0, top: int = 8) -> QueryAttention:
    """The attention of one query at one group (LSP: the shared pattern, identical at every group
    under CoA; dense: that layer's softmax), with its mass split for a receptive field of ``radius``."""
    if not 0 <= position < trace.n:
        raise IndexError(f"position {position} is outside the {trace.lr_size[0]}x{trace.lr_size[1]} map")
    pos = torch.tensor([position])
    row = trace.attention_rows(group, pos)[0]
    others = row.clone()
    others[position] = -1.0
    k = min(top, trace.n - 1)
    values, keys = torch.topk(others, k) if k > 0 else (torch.zeros(0), torch.zeros(0, dtype=torch.long))
    keep = values > 0
    recall = None
    if trace.kind == "lsp":
        recall = float(trace.pattern_for(group).recall_many(pos)[0])
    return QueryAttention(kind=trace.kind, group=group, position=position, lr_size=trace.lr_size, row=row,
                          self_weight=float(row[position]), top=keys[keep], top_weights=values[keep],
                          mass=mass_split(row[None], pos, trace.lr_size, radius),
                          keys=int((row > 0).sum()), recall=recall)


def mean_distance(rows: Tensor, positions: Tensor, lr_size: tuple[int, int]) -> Tensor:
    """(Q, N) attention rows of the queries at ``positions`` (Q,) -> (Q,) mean Chebyshev distance (LR px) of
    their mass from the query."""
    h, w = lr_size
    qy, qx = positions // w, positions % w
    ky, kx = torch.arange(h).repeat_interleave(w), torch.arange(w).repeat(h)
    d = torch.maximum((ky[None] - qy[:, None]).abs(), (kx[None] - qx[:, None]).abs())
    return (rows * d).sum(-1)


def far_reaching_query(trace: Trace, radius: int, group: int = 0, count: int = FAR_SAMPLES,
                       seed: int = 0, chunk: int = 256) -> int:
    """The position, among ``count`` sampled queries, whose attention at ``group`` puts the most mass
    beyond the receptive field (:func:`.mass.farthest_query`); on a map too small for anything to lie beyond
    it (or a tie), the one whose mass lies farthest on average. Rows are computed ``chunk`` at a time."""
    positions = sample_positions(trace.n, count, seed)
    best, best_key = int(positions[0]), (-1.0, -1.0)
    for start in range(0, len(positions), chunk):
        pos = positions[start:start + chunk]
        rows = trace.attention_rows(group, pos)
        beyond = mass_rows(rows, pos, trace.lr_size, radius)[:, 3]
        far = mean_distance(rows, pos, trace.lr_size)
        top = torch.nonzero(beyond >= beyond.max() - 1e-9)[:, 0]  # the chunk's most beyond (ties kept)
        i = int(top[far[top].argmax()])
        key = (float(beyond[i]), float(far[i]))
        if key > best_key:
            best, best_key = int(pos[i]), key
    return best


def weight_range(row: Tensor, exclude: int | None = None, decades: float = 3.0) -> tuple[float, float]:
    """A colour range (lo, hi) of log10 weights that fits one row: hi = the largest weight (the query's
    own weight left out when ``exclude`` is given, so a dominant self-weight does not wash out the
    other keys), lo = ``decades`` below hi but never below the smallest non-zero weight."""
    w = row.clone()
    if exclude is not None:
        w[exclude] = 0
    nz = w[w > 0]
    if nz.numel() == 0:
        return -1.0, 0.0
    hi = float(torch.log10(nz.max()))
    lo = max(float(torch.log10(nz.min())), hi - decades)
    return (lo, hi) if hi > lo else (hi - 1.0, hi)
