"""One inspection: the traces of one (image, scale, region) and the quantities derived from them."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lcoan.introspect.trace import Trace

from .memo import Memo
from .region import Region


def trace_bytes(trace: Trace | None) -> int:
    """Bytes held by a trace's tensors (0 for None)."""
    if trace is None:
        return 0
    tensors = [x for p in trace.patterns for x in (p.codes, p.order, p.centroids, p.query, p.key)]
    tensors += [x for g in trace.groups for x in (g.value, g.attention_out, g.query, g.key) if x is not None]
    return sum(x.numel() * x.element_size() for x in tensors)


@dataclass
class Inspection:
    """Traces of one (image, scale, region). ``lcoan`` is traced at once; the dense model's trace
    (its N x N attention makes it the slow one) on first use of :attr:`dense`."""

    image: np.ndarray  # (h, w, 3) float32 in [0, 1]: the traced LR region
    region: Region
    scale: int
    lcoan: Trace
    labels: dict[str, str]
    seconds: dict[str, float]
    _dense: Callable[[], Trace] | None = field(default=None, repr=False)
    _memo: Memo = field(default_factory=Memo, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        return self.region.size

    @property
    def n(self) -> int:
        return self.size[0] * self.size[1]

    @property
    def nbytes(self) -> int:
        """Approximate memory held: traced tensors (the dense trace once made) and the image."""
        return int(self.image.nbytes) + trace_bytes(self.lcoan) + trace_bytes(self._memo.peek("dense"))

    @property
    def has_dense(self) -> bool:
        return self._dense is not None

    @property
    def dense(self) -> Trace | None:
        """The dense-NLA model's trace of the same region (traced once, on first use), or None."""
        return None if self._dense is None else self.memo("dense", self._dense)

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """Compute a derived quantity once per inspection (views re-render from it); concurrent
        requests for the same key wait for the first instead of computing it again."""
        return self._memo.get(key, compute)

    def sample(self, count: int, seed: int = 0) -> Tensor:
        """Up to ``count`` distinct positions, seeded, in increasing order: (S,) int64."""
        if count >= self.n:
            return torch.arange(self.n)
        g = torch.Generator().manual_seed(seed)
        return torch.randperm(self.n, generator=g)[:count].sort().values
