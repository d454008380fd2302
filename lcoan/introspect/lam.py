"""Local attribution maps (LAM): which input pixels does a super-resolution network use to produce
one output patch? After J. Gu and C. Dong, "Interpreting Super-Resolution Networks with Local
Attribution Maps", CVPR 2021 (written from the paper's description, not from its code).

- The patch's output is summarised by a local feature detector D: the summed gradient magnitude
  of the SR output inside the patch (edges and textures are what SR has to create).
- The attribution is integrated gradients along a path from a blurred baseline to the input:
  gamma(a) = blur(x, sigma = (1 - a) * sigma_max), a from 0 (baseline) to 1 (the input), so the
  path adds detail progressively instead of fading in brightness. Midpoint rule with ``steps``
  points: attribution = sum_i grad D(gamma(m_i)) * (gamma(e_(i+1)) - gamma(e_i)), which sums to
  D(x) - D(baseline) up to the rule's error (completeness, checked by the tests).
- The diffusion index (DI) is (1 - Gini) * 100 of the per-pixel attribution magnitude: near 0
  when a few pixels carry everything, large when the network draws on a wide area.

LSP attention re-clusters along the path (cluster codes jump), so its D is piecewise smooth and
the completeness gap can be larger than for dense attention or none: :class:`Attribution` reports it.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

SIGMA_MAX = 3.0  # LR pixels: the baseline's Gaussian blur
STEPS = 8


def gaussian_kernel(sigma: float) -> Tensor:
    """Normalised 1-D Gaussian of radius ceil(3 sigma): (2r + 1,) float32; [1.] for sigma <= 0."""
    if sigma <= 0:
        return torch.ones(1)
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (B, C, H, W) with edge replication; the identity for sigma <= 0."""
    k = gaussian_kernel(sigma).to(x)
    if k.numel() == 1:
        return x
    r, c = k.numel() // 2, x.shape[1]
    y = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def blur_path(x: Tensor, alphas: Tensor, sigma_max: float = SIGMA_MAX) -> Tensor:
    """Points of the progressive-blur path: x (1, C, H, W), alphas (S,) in [0, 1] -> (S, C, H, W)."""
    return torch.cat([blur(x, (1.0 - float(a)) * sigma_max) for a in alphas])


@dataclass(frozen=True)
class Patch:
    """An output patch: rows [top, top + size) and cols [left, left + size) of the SR image."""

    top: int
    left: int
    size: int

    def clip(self, height: int, width: int) -> Patch:
        """The same size (at most the image's), moved inside an (height, width) image."""
        size = max(2, min(self.size, height, width))
        return Patch(min(max(0, self.top), height - size), min(max(0, self.left), width - size), size)


def detector(sr: Tensor, box: Patch) -> Tensor:
    """LAM's D: summed gradient magnitude of the SR output inside the patch. (B, 3, H, W) -> (B,).

    Forward differences of the patch and one extra row / column, summed over colour channels.
    """
    b0, b1 = box.top, box.left
    patch = sr[:, :, b0:b0 + box.size + 1, b1:b1 + box.size + 1]
    dy = patch[:, :, 1:, :-1] - patch[:, :, :-1, :-1]
    dx = patch[:, :, :-1, 1:] - patch[:, :, :-1, :-1]
    return torch.sqrt(dx * dx + dy * dy + 1e-8).sum(dim=(1, 2, 3))


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (any shape): 0 when all are equal, near 1 when
    one value holds everything."""
    v = np.sort(np.abs(np.asarray(values, dtype=np.float64)).ravel())
    n, total = v.size, v.sum()
    if n == 0 or total <= 0:
        return 0.0
    index = np.arange(1, n + 1)
    return float(((2 * index - n - 1) * v).sum() / (n * total))


def diffusion_index(attribution: np.ndarray) -> float:
    """DI = (1 - Gini) * 100 of a per-pixel attribution magnitude map (h, w)."""
    return (1.0 - gini(attribution)) * 100.0


@dataclass
class Attribution:
    """The LAM of one model for one output patch.

    attribution: (3, h, w) float32 integrated gradients per LR input value;
    target / baseline: D of the input's and of the baseline's SR output; steps: path points.
    """

    attribution: np.ndarray
    box: Patch
    target: float
    baseline: float
    steps: int
    sigma_max: float
    seconds: float = 0.0

    @property
    def magnitude(self) -> np.ndarray:
        """(h, w): |attribution| summed over colour channels."""
        return np.abs(self.attribution).sum(0)

    @property
    def total(self) -> float:
        """Sum of all attributions (completeness: about target - baseline)."""
        return float(self.attribution.sum())

    @property
    def gap(self) -> float:
        """Completeness gap |total - (target - baseline)| relative to |target - baseline|."""
        diff = self.target - self.baseline
        return abs(self.total - diff) / max(abs(diff), 1e-12)

    @property
    def diffusion_index(self) -> float:
        return diffusion_index(self.magnitude)


def attribute(model: Callable[[Tensor], Tensor], x: Tensor, box: Patch, steps: int = STEPS,
              sigma_max: float = SIGMA_MAX, batch: int = 4) -> Attribution:
    """Integrated gradients of D(model(.)) on ``box`` along the blur path, for x (1, 3, h, w).

    ``batch`` path points go through the network together (memory grows with it). The model is
    used as given (eval mode expected) and not modified: gradients are taken with respect to the
    path points only (``torch.autograd.grad``), so parameters get no ``.grad``.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    start = time.perf_counter()
    x = x.detach()
    edges = torch.linspace(0, 1, steps + 1)
    mids = (edges[1:] + edges[:-1]) / 2
    total = torch.zeros_like(x[0])
    for i in range(0, steps, batch):
        points = blur_path(x, mids[i:i + batch], sigma_max).requires_grad_(True)
        grad, = torch.autograd.grad(detector(model(points), box).sum(), points)
        ends = blur_path(x, edges[i:i + batch + 1], sigma_max)
        total += (grad * (ends[1:] - ends[:-1])).sum(0)
    with torch.no_grad():
        ends = detector(model(torch.cat([blur(x, sigma_max), x])), box)
    return Attribution(attribution=total.numpy(), box=box, target=float(ends[1]), baseline=float(ends[0]),
                       steps=steps, sigma_max=sigma_max, seconds=time.perf_counter() - start)


def mass_outside(magnitude: np.ndarray, box: Patch, scale: int, radius: int) -> float:
    """Share of an (h, w) attribution magnitude map lying more than ``radius`` LR pixels (Chebyshev)
    from the LR footprint of the output patch ``box`` (SR pixels at ``scale``)."""
    h, w = magnitude.shape
    y0, x0 = box.top // scale - radius, box.left // scale - radius
    y1, x1 = (box.top + box.size - 1) // scale + radius + 1, (box.left + box.size - 1) // scale + radius + 1
    far = np.ones((h, w), dtype=bool)
    far[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = False
    total = float(magnitude.astype(np.float64).sum())
    return float(magnitude[far].astype(np.float64).sum() / total) if total > 0 else 0.0


def receptive_radius(num_groups: int, num_blocks: int, scale: int) -> int:
    """LR pixels an output pixel of a network WITHOUT attention can depend on, in each direction:
    one 3x3 conv per head / block conv / group conv / body conv / upsampler step at LR, the last
    3x3 conv at HR (rounded up to LR pixels), and one HR pixel of the detector's differences."""
    lr_convs = 1 + num_groups * (2 * num_blocks + 1) + 1 + (2 if scale == 4 else 1)
    return lr_convs + 2
