"""The LCoAN network: conv_first -> residual groups (+ attention) -> conv_after_body (+ skip) -> upsample.

One skeleton for the three attention kinds of :class:`LCoANConfig`:
- "lsp":   LCoAN. Under CoA (share_pattern=True) the first group computes the sparse pattern and
           its softmax weights once; every group only projects its own values and reuses them.
- "dense": the non-local baseline, a full dense block (own embeddings, own N x N softmax) per group.
- "none":  the plain residual backbone.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import Tensor, nn

from .attention.dense import DenseNonLocal
from .attention.lsp import Assembly, LearnableSparsePattern, SharedPattern
from .config import LCoANConfig
from .introspect.trace import Trace, TraceBuilder


def conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


class ResBlock(nn.Module):
    """conv3x3 - ReLU - conv3x3 plus identity, no channel attention."""

    def __init__(self, num_feat: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv3x3(num_feat, num_feat), nn.ReLU(inplace=True), conv3x3(num_feat, num_feat))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class Pattern(Protocol):
    """What a group needs from an attention pattern: apply(values (B, N, C)) -> (B, N, C)."""

    def apply(self, value: Tensor) -> Tensor: ...


# (pattern maker, first group's features (B, C, H, W)) -> the pattern every group then applies
PatternFn = Callable[[LearnableSparsePattern, Tensor], Pattern]


def lsp_pattern(maker: LearnableSparsePattern, features: Tensor) -> SharedPattern:
    """The trained LSP pattern: cluster, sort and softmax over windows (the default)."""
    return maker(features)


class ResidualGroup(nn.Module):
    """B residual blocks, then an attention block (added with a small scale), then a 3x3 conv.

    ``attention`` is an :class:`Assembly` (lsp), a :class:`DenseNonLocal` (dense) or None; the
    group does not decide where a sparse pattern comes from: the network hands it one.
    """

    def __init__(self, cfg: LCoANConfig) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[ResBlock(cfg.num_feat) for _ in range(cfg.num_blocks)])
        self.attention: nn.Module | None = {
            "lsp": lambda: Assembly(cfg.num_feat),
            "dense": lambda: DenseNonLocal(cfg),
            "none": lambda: None,
        }[cfg.attention]()
        self.conv = conv3x3(cfg.num_feat, cfg.num_feat)


class Upsampler(nn.Sequential):
    """Pixel-shuffle upsampling: x2 / x3 in one step, x4 as two x2 steps."""

    def __init__(self, scale: int, num_feat: int) -> None:
        steps = [2, 2] if scale == 4 else [scale]
        layers: list[nn.Module] = []
        for s in steps:
            layers += [conv3x3(num_feat, num_feat * s * s), nn.PixelShuffle(s)]
        super().__init__(*layers)


class LCoAN(nn.Module):
    """Super-resolution network. forward(x: (B, 3, H, W) RGB in [0, 1]) -> (B, 3, sH, sW)."""

    def __init__(self, cfg: LCoANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("rgb_mean", torch.tensor(cfg.rgb_mean).view(1, 3, 1, 1), persistent=False)
        self.conv_first = conv3x3(3, cfg.num_feat)
        self.groups = nn.ModuleList([ResidualGroup(cfg) for _ in range(cfg.num_groups)])
        # LSP pattern makers: ONE owned by the network under CoA, one per group without sharing.
        self.patterns = nn.ModuleList()
        if cfg.attention == "lsp":
            count = 1 if cfg.share_pattern else cfg.num_groups
            self.patterns.extend(LearnableSparsePattern(cfg) for _ in range(count))
        self.conv_after_body = conv3x3(cfg.num_feat, cfg.num_feat)
        self.upsample = Upsampler(cfg.scale, cfg.num_feat)
        self.conv_last = conv3x3(cfg.num_feat, 3)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward_features(self, x: Tensor, tracer: TraceBuilder | None = None,
                         make_pattern: PatternFn = lsp_pattern) -> Tensor:
        """The residual groups. x: (B, C, H, W) -> (B, C, H, W).

        ``make_pattern`` (lsp only) builds the pattern the groups apply; another one (e.g. dense
        softmax over the same embeddings, :mod:`lcoan.introspect.knobs`) runs the same weights another way.
        """
        if tracer is not None and make_pattern is not lsp_pattern:
            raise ValueError("a trace records the trained LSP pattern only")
        shared: Pattern | None = None
        for g, group in enumerate(self.groups):
            y = group.blocks(x)
            if self.cfg.attention == "lsp":
                if shared is None or not self.cfg.share_pattern:
                    # LSP: cluster + sort + softmax weights. Under CoA this runs in group 0 only.
                    maker = self.patterns[0 if self.cfg.share_pattern else g]
                    shared = make_pattern(maker, y)
                    if tracer is not None:
                        tracer.pattern(shared, maker.clusters.centroids, g)
                # CoA: this group's own values, aggregated with the shared weights.
                values = group.attention.project(y)
                attn = shared.apply(values).transpose(1, 2).reshape(y.shape)
                if tracer is not None:
                    tracer.group(values, attn)
                y = y + self.cfg.attn_res_scale * attn
            elif self.cfg.attention == "dense":
                if tracer is None:
                    attn = group.attention(y)
                else:
                    q, k, v = group.attention.embed(y)
                    attn = group.attention.attend(q, k, v).transpose(1, 2).reshape(y.shape)
                    tracer.group(v, attn, q, k)
                y = y + self.cfg.attn_res_scale * attn
            x = x + self.cfg.group_res_scale * group.conv(y)
        return x

    def _forward(self, x: Tensor, tracer: TraceBuilder | None, make_pattern: PatternFn = lsp_pattern) -> Tensor:
        head = self.conv_first(x - self.rgb_mean)
        body = self.conv_after_body(self.forward_features(head, tracer, make_pattern)) + head
        return self.conv_last(self.upsample(body)) + self.rgb_mean

    def forward(self, x: Tensor, make_pattern: PatternFn = lsp_pattern) -> Tensor:
        """x: (B, 3, H, W) -> (B, 3, sH, sW); ``make_pattern``: see :meth:`forward_features`."""
        return self._forward(x, None, make_pattern)

    def forward_with_trace(self, x: Tensor) -> tuple[Tensor, Trace]:
        """Forward pass of ONE image (B = 1) that also returns its :class:`Trace`."""
        if x.shape[0] != 1:
            raise ValueError(f"tracing takes one image at a time, got a batch of {x.shape[0]}")
        tracer = TraceBuilder(self.cfg.attention, (x.shape[-2], x.shape[-1]), self.cfg.attn_res_scale)
        return self._forward(x, tracer), tracer.trace


def reconfigured(model: LCoAN, **changes) -> LCoAN:
    """The same weights under an inference-time config change, e.g. ``attn_res_scale=0`` (the
    attention branch off) or ``window=...`` / ``rounds=...``: a new network, the original untouched.

    Only changes that keep every tensor's shape are possible (the state dict is loaded strictly).
    """
    clone = LCoAN(model.cfg.replace(**changes)).to(next(model.parameters()).device)
    clone.load_state_dict(model.state_dict(), strict=True)
    return clone.train(model.training)


def create_model(cfg: LCoANConfig) -> LCoAN:
    """Build a randomly initialised network for a config."""
    return LCoAN(cfg)
