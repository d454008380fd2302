"""Timing for the Efficiency tab: the non-local part of the shipped models, timed interleaved.

One timing path for the bench, the knobs chart and this tab: the callables of
:func:`lcoan.bench.workload.nonlocal_part`, timed by :func:`lcoan.introspect.knobs.interleaved_medians`
(:mod:`lcoan.bench.timing`) on :func:`lcoan.bench.workload.attention_input`."""
from __future__ import annotations

from typing import Any

import torch

from lcoan.bench.workload import attention_input, nonlocal_part
from lcoan.inference import to_tensor
from lcoan.introspect.knobs import interleaved_medians

from .models import ModelService
from .region import MAX_POSITIONS, choose_region, extract_region

LCOA = "LCoA (LSP once + CoA)"
LSP_EVERY_GROUP = "LSP in every group (no CoA)"


@torch.inference_mode()
def time_nonlocal(models: ModelService, rgb: Any, scale: int, repeats: int = 3, budget_s: float = 12.0,
                  max_positions: int = MAX_POSITIONS) -> dict[str, Any]:
    """Non-local time of one forward pass at this input's LR size (or a centre crop of at most
    ``max_positions`` positions), on the features the first group's attention sees on this image
    (:func:`~lcoan.bench.workload.attention_input`, the knobs chart's input): dense NLA (the dense checkpoint's
    G blocks, fused SDPA), LSP recomputed in every group (no sharing) and LCoA (LSP once + CoA).
    Median of ``repeats`` runs, timed round robin (fewer runs once ``budget_s`` is spent)."""
    region = choose_region(rgb.shape[0], rgb.shape[1], "crop", max_positions)
    lcoan = models.get("lcoan", scale).model
    x = to_tensor(extract_region(rgb, region))
    feat = attention_input(lcoan, x)
    variants = {LCOA: nonlocal_part(lcoan, "lsp+coa", feat), LSP_EVERY_GROUP: nonlocal_part(lcoan, "lsp", feat)}
    dense_label = None
    if models.has("dense", scale):
        dense = models.get("dense", scale).model
        dense_label = f"Dense NLA ({len(dense.groups)} blocks, fused SDPA)"
        variants = {dense_label: nonlocal_part(dense, "dense", attention_input(dense, x)), **variants}
    results = interleaved_medians(variants, repeats, budget_s)
    out = {"size": list(region.size), "positions": region.size[0] * region.size[1],
           "groups": lcoan.cfg.num_groups, "window": lcoan.cfg.window,
           "region": region.note.replace("Traced on", "Measured on", 1) if region.mode != "full" else "",
           "threads": torch.get_num_threads(), "results": results}
    if dense_label:
        out["saving"] = 1.0 - results[LCOA]["seconds"] / results[dense_label]["seconds"]
    return out
