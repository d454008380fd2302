"""Paired bootstrap intervals over held-out images and the tiles within them: the uncertainty of a
mean difference (a drop, a gain) when both images and tiles are samples."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A mean with its two-sided bootstrap percentile interval; ``n_images`` and ``n_tiles`` say what was
    resampled."""

    mean: float
    lo: float
    hi: float
    n_images: int
    n_tiles: int

    @property
    def clear_of_zero(self) -> bool:
        return self.lo > 0 or self.hi < 0

    def as_dict(self) -> dict:
        return {"mean": self.mean, "lo": self.lo, "hi": self.hi, "n_images": self.n_images, "n_tiles": self.n_tiles}

    def text(self, digits: int = 3) -> str:
        return f"{self.mean:+.{digits}f} [{self.lo:+.{digits}f}, {self.hi:+.{digits}f}]"


def image_mean(groups: list[np.ndarray]) -> float:
    """Mean of the per-image means (each image weighs the same, whatever its number of tiles)."""
    return float(np.mean([g.mean() for g in groups]))


def paired_bootstrap(groups: list[np.ndarray], reps: int = 2000, level: float = 0.95, seed: int = 0) -> Interval:
    """Two-stage bootstrap of :func:`image_mean`: resample the images with replacement, then the tiles within
    each drawn image. ``groups``: one 1-D array of paired per-tile differences per image."""
    groups = [np.asarray(g, dtype=np.float64).ravel() for g in groups if np.size(g)]
    if not groups:
        raise ValueError("no paired differences to bootstrap")
    rng = np.random.default_rng(seed)
    n = len(groups)
    stats = np.empty(reps)
    for r in range(reps):
        picks = rng.integers(n, size=n)
        stats[r] = np.mean([groups[i][rng.integers(len(groups[i]), size=len(groups[i]))].mean() for i in picks])
    alpha = (1 - level) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return Interval(image_mean(groups), float(lo), float(hi), n, sum(len(g) for g in groups))
