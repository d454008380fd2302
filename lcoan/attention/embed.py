"""The match embedding shared by LSP and the dense baseline: query = t * conv3x3(x), key = unit(conv3x3(x)).

``t`` is 1 in the paper. With ``LCoANConfig.logit_scale`` set it is a learnable scalar (kept as
log t so it stays positive), which lets training sharpen the softmax without growing |q|.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def make_log_scale(logit_scale: float | None) -> nn.Parameter | None:
    """The learnable log t, initialised at log(logit_scale); None (no parameter) for the paper's t = 1."""
    return None if logit_scale is None else nn.Parameter(torch.tensor(math.log(logit_scale)))


def query_key(match: nn.Conv2d, log_scale: Tensor | None, x: Tensor) -> tuple[Tensor, Tensor]:
    """(B, C, H, W) -> query (B, N, D) = t * match(x), key (B, N, D) = match(x) / |match(x)|."""
    raw = match(x).flatten(2).transpose(1, 2)
    key = F.normalize(raw, dim=-1)
    return (raw if log_scale is None else raw * log_scale.exp()), key
