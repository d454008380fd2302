"""Statistics of attention rows (entropy, Jensen-Shannon divergence, layer x layer redundancy) and the
one sampler of query positions; the attention report, the knobs and the app all use these."""
from __future__ import annotations

import torch
from torch import Tensor


def sample_positions(n: int, count: int, seed: int = 0) -> Tensor:
    """``count`` distinct query positions out of N, seeded, in increasing order: (S,) int64 (all N
    positions when N <= count)."""
    if n <= count:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:count].sort().values


def entropy(p: Tensor) -> Tensor:
    """Shannon entropy (nats) of rows: (..., N) -> (...)."""
    return -torch.special.xlogy(p, p).sum(-1)


def js_divergence(p: Tensor, q: Tensor, hp: Tensor | None = None, hq: Tensor | None = None) -> Tensor:
    """Jensen-Shannon divergence (nats, in [0, ln 2]) between rows: (..., N) -> (...).
    ``hp``, ``hq``: the rows' entropies when already known."""
    hp = entropy(p) if hp is None else hp
    hq = entropy(q) if hq is None else hq
    return (entropy(0.5 * (p + q)) - 0.5 * (hp + hq)).clamp_min(0)


def layer_redundancy(rows: list[Tensor]) -> tuple[Tensor, Tensor]:
    """How alike G layers' attention rows of the same S queries are: G tensors (S, N) ->
    (mean Jensen-Shannon divergence (G, G), mean Pearson correlation (G, G)), means over the queries.

    A query whose row is constant in some layer has no defined correlation there; it counts as 0.
    """
    g = len(rows)
    ent = [entropy(r) for r in rows]
    js = torch.zeros(g, g)
    for a in range(g):
        for b in range(a + 1, g):
            js[a, b] = js[b, a] = float(js_divergence(rows[a], rows[b], ent[a], ent[b]).mean())
    per_query = torch.stack(rows, dim=1)  # (S, G, N)
    corr = torch.stack([torch.corrcoef(layers) for layers in per_query]).nan_to_num_(0.0).mean(0)
    corr.fill_diagonal_(1.0)
    return js, corr
