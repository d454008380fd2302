"""The non-local part of a network as one timeable callable: what :mod:`lcoan.bench` and the app's
Efficiency tab measure.

Kinds: ``lsp+coa`` (LCoAN: one pattern, every group applies it to its own values), ``lsp`` (the
pattern recomputed in every group), ``dense`` (each group's dense block, torch SDPA) and
``dense-naive`` (the same blocks with matmul, softmax, matmul).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..attention.dense import DenseNonLocal, dense_attention, dense_attention_naive
from ..config import LCoANConfig, preset
from ..network import LCoAN

KINDS: tuple[str, ...] = ("lsp+coa", "lsp", "dense", "dense-naive")
NETWORK_KINDS: tuple[str, ...] = ("none", "lsp+coa", "dense")


def kind_config(preset_name: str, kind: str) -> LCoANConfig:
    """The network config of a benchmark kind (the dense kinds share one config)."""
    attention = {"lsp+coa": "lsp", "lsp": "lsp", "dense": "dense", "dense-naive": "dense", "none": "none"}[kind]
    return preset(preset_name, attention=attention, share_pattern=kind != "lsp")


def build_models(preset_name: str, device: torch.device) -> dict[str, LCoAN]:
    """Seeded eval-mode networks of every kind ("dense-naive" is the "dense" network, other kernel)."""
    torch.manual_seed(0)
    models = {}
    for kind in ("lsp+coa", "lsp", "dense", "none"):
        models[kind] = LCoAN(kind_config(preset_name, kind)).to(device).eval()
    models["dense-naive"] = models["dense"]
    return models


def dense_block(att: DenseNonLocal, y: Tensor, naive: bool) -> Tensor:
    """One dense non-local block exactly as :meth:`DenseNonLocal.forward`, with the attention kernel
    chosen. y: (B, C, H, W) -> (B, C, H, W)."""
    out = (dense_attention_naive if naive else dense_attention)(*att.embed(y))
    return out.transpose(1, 2).reshape(y.shape)


def attention_input(model: LCoAN, x: Tensor) -> Tensor:
    """The features the first group's attention sees on the LR input x (1, 3, h, w): (1, C, h, w).
    The one input on which the bench, the knobs chart and the Efficiency tab time the non-local part."""
    return model.groups[0].blocks(model.conv_first(x - model.rgb_mean))


def synthetic_input(h: int, w: int, seed: int = 0) -> Tensor:
    """A smooth random colour image with fine noise, (1, 3, h, w) in [0, 1]: stands in for a photo
    where the bench has none."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, max(2, h // 16), max(2, w // 16), generator=g)
    x = torch.nn.functional.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)
    return (x + 0.08 * torch.rand(1, 3, h, w, generator=g)).clamp(0, 1)


@torch.no_grad()
def bench_features(model: LCoAN, h: int, w: int) -> Tensor:
    """:func:`attention_input` of ``model`` on :func:`synthetic_input`, on the model's device: (1, C, h, w)."""
    return attention_input(model, synthetic_input(h, w).to(next(model.parameters()).device))


def nonlocal_part(model: LCoAN, kind: str, y: Tensor, groups: int | None = None) -> Callable[[], None]:
    """The attention work of the first ``groups`` (default: all) residual groups on features
    y: (B, C, H, W), every group fed the same features; mirrors the attention branch of
    :meth:`LCoAN.forward_features` (:class:`lcoan.network.CollaborativeAttention`). ``lsp`` on a
    network with one shared pattern module recomputes that module's pattern in every group.

    As the network's inference does on CPU, the features are channels-last and the sparse kinds add
    each group's aggregated values in place into a map of their shape (a scratch copy made here,
    outside the timed call, so y itself is never changed)."""
    groups = model.cfg.num_groups if groups is None else groups
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if y.device.type == "cpu":
        y = y.contiguous(memory_format=torch.channels_last)
    target = y.clone() if not kind.startswith("dense") else None  # what the branch is added into
    scale = model.cfg.attn_res_scale

    def run() -> None:
        shared = None
        for g in range(groups):
            group = model.groups[g]
            if kind.startswith("dense"):
                out = dense_block(group.attention, y, naive=kind == "dense-naive")
            else:
                if kind == "lsp":
                    shared = None  # a group's own pattern is dead once the group is done
                if shared is None:
                    shared = model.patterns[g if kind == "lsp" and len(model.patterns) > 1 else 0](y)
                values = group.attention.project(y)
                if shared.can_add_into(target, values):
                    out = shared.add_into(target, values, scale)
                else:
                    out = shared.apply(values).transpose(1, 2).reshape(y.shape)
            del out
    return run
