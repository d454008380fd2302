"""Timing for the Efficiency tab: the non-local part of the shipped models, timed interleaved."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from lcoan.bench.timing import medians, round_robin, warm_up
from lcoan.bench.workload import nonlocal_part
from lcoan.inference import to_tensor
from lcoan.network import LCoAN

from ..service import ModelService
from .region import MAX_POSITIONS, choose_region, extract_region

LCOA = "LCoA (LSP once + CoA)"
LSP_EVERY_GROUP = "LSP in every group (no CoA)"


def interleaved_medians(fns: dict[str, Callable[[], Any]], repeats: int, budget_s: float) -> dict[str, dict]:
    """Median wall time of each callable, timed round robin (so load changes hit all alike).

    Each first call is a warm-up (allocations, kernel choice), dropped when shorter than 0.5 s;
    a long first call is dominated by compute and counts. Rounds go on until each callable has
    ``repeats`` samples; once ``budget_s`` seconds have passed, only callables faster than a tenth
    of the budget still get their remaining runs (every callable keeps at least one sample).
    Returns name -> {"seconds": median, "runs": samples}.
    """
    start = time.perf_counter()
    samples = round_robin(fns, repeats, warm_up(fns, keep_s=0.5), budget_s=budget_s, started=start)
    return {n: {"seconds": s, "runs": len(samples[n])} for n, s in medians(samples).items()}


def head_features(model: LCoAN, x: torch.Tensor) -> torch.Tensor:
    """The features the groups see at depth 0 (head conv of the mean-shifted input): (1, C, H, W)."""
    return model.conv_first(x - model.rgb_mean)


@torch.inference_mode()
def time_nonlocal(models: ModelService, rgb: Any, scale: int, repeats: int = 3, budget_s: float = 12.0,
                  max_positions: int = MAX_POSITIONS) -> dict[str, Any]:
    """Non-local time of one forward pass at this input's LR size (or a centre crop of at most
    ``max_positions`` positions), on this image's head features: dense NLA (the dense checkpoint's
    G blocks, fused SDPA), LSP recomputed in every group (no sharing) and LCoA (LSP once + CoA).
    Median of ``repeats`` runs, timed round robin (fewer runs once ``budget_s`` is spent)."""
    region = choose_region(rgb.shape[0], rgb.shape[1], "crop", max_positions)
    lcoan = models.get("lcoan", scale).model
    x = to_tensor(extract_region(rgb, region))
    feat = head_features(lcoan, x)
    variants = {LCOA: nonlocal_part(lcoan, "lsp+coa", feat), LSP_EVERY_GROUP: nonlocal_part(lcoan, "lsp", feat)}
    dense_label = None
    if models.has("dense", scale):
        dense = models.get("dense", scale).model
        dense_label = f"Dense NLA ({len(dense.groups)} blocks, fused SDPA)"
        variants = {dense_label: nonlocal_part(dense, "dense", head_features(dense, x)), **variants}
    results = interleaved_medians(variants, repeats, budget_s)
    out = {"size": list(region.size), "positions": region.size[0] * region.size[1],
           "groups": lcoan.cfg.num_groups, "window": lcoan.cfg.window,
           "region": region.note.replace("Traced on", "Measured on", 1) if region.mode != "full" else "",
           "threads": torch.get_num_threads(), "results": results}
    if dense_label:
        out["saving"] = 1.0 - results[LCOA]["seconds"] / results[dense_label]["seconds"]
    return out
