"""Where a query's attention mass goes: on itself, its 3x3 neighbourhood, elsewhere within the
convolutions' receptive field, and beyond it (the matches only non-local attention can make)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..config import LCoANConfig

RINGS = ("self", "neighbours", "within_rf", "beyond_rf")


def receptive_radius(cfg: LCoANConfig) -> int:
    """Half-width, in LR px, of what the stacked 3x3 convolutions before the upsampler see: the head conv,
    two per residual block plus one per group, and the conv after the body (S: 38, so 77 px across)."""
    return 2 + cfg.num_groups * (2 * cfg.num_blocks + 1)


@dataclass(frozen=True)
class MassSplit:
    """Shares of attention mass (each in [0, 1], summing to 1) by Chebyshev distance d from the query:
    self (d = 0), neighbours (d = 1), within_rf (2 <= d <= radius), beyond_rf (d > radius)."""

    self: float
    neighbours: float
    within_rf: float
    beyond_rf: float
    radius: int

    def as_dict(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in RINGS}


def ring_of_keys(positions: Tensor, lr_size: tuple[int, int], radius: int) -> Tensor:
    """(Q,) query positions -> (Q, N) int64 ring index of every key (0 self, 1 neighbours, 2 within the
    receptive field, 3 beyond it)."""
    h, w = lr_size
    qy, qx = positions // w, positions % w
    ky = torch.arange(h).repeat_interleave(w)
    kx = torch.arange(w).repeat(h)
    d = torch.maximum((ky[None] - qy[:, None]).abs(), (kx[None] - qx[:, None]).abs())
    ring = torch.full_like(d, 3)
    ring[d <= radius] = 2
    ring[d <= 1] = 1
    ring[d == 0] = 0
    return ring


def mass_rows(rows: Tensor, positions: Tensor, lr_size: tuple[int, int], radius: int) -> Tensor:
    """Attention rows (Q, N) of the queries at ``positions`` (Q,) -> (Q, 4) mass per ring (RINGS order)."""
    ring = ring_of_keys(positions, lr_size, radius)
    out = torch.zeros(rows.shape[0], len(RINGS), dtype=rows.dtype)
    return out.scatter_add_(1, ring, rows)


def mass_split(rows: Tensor, positions: Tensor, lr_size: tuple[int, int], radius: int) -> MassSplit:
    """Mean over the queries of :func:`mass_rows`, normalised to sum to 1."""
    per = mass_rows(rows, positions, lr_size, radius).double().mean(0)
    per = per / per.sum().clamp_min(1e-12)
    return MassSplit(*(float(v) for v in per), radius=radius)


def farthest_query(rows: Tensor, positions: Tensor, lr_size: tuple[int, int], radius: int) -> int:
    """The position among ``positions`` whose attention puts the most mass beyond the receptive field."""
    return int(positions[mass_rows(rows, positions, lr_size, radius)[:, 3].argmax()])
