"""Inspection of the shipped models for the "inside LCoA" tabs, split by job:

- :mod:`.region`: which part of a large input is traced (bicubic downscale or centre crop);
- :mod:`.memo` / :mod:`.inspection`: one inspection's traces and its compute-once derived quantities;
- :mod:`.stats`: entropy, Jensen-Shannon divergence, layer x layer redundancy;
- :mod:`.projection`: PCA / UMAP of the match embeddings;
- :mod:`.timing`: the Efficiency tab's non-local timing;
- :mod:`.service`: :class:`InspectService`, cached traces per (image, scale, region).
"""
from __future__ import annotations

from ..service import KINDS, ServiceError
from .inspection import Inspection
from .region import MAX_POSITIONS, REGION_MODES, Region, choose_region, extract_region
from .service import InspectService, inspector_for
from .stats import entropy, js_divergence
from .timing import interleaved_medians

__all__ = ["InspectService", "Inspection", "Region", "choose_region", "extract_region", "entropy", "js_divergence",
           "interleaved_medians", "inspector_for", "MAX_POSITIONS", "REGION_MODES", "KINDS", "ServiceError"]
