"""The LCoAN network: conv_first -> residual groups (+ attention) -> conv_after_body (+ skip) -> upsample.

One skeleton for the three attention kinds of :class:`LCoANConfig`:
- "lsp":   LCoAN. Under CoA (:class:`CollaborativeAttention`, share_pattern=True) the first group
           computes the sparse pattern and its softmax weights once; every group only projects its
           own values and reuses them.
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
from .attention.windows import needs_autograd
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
        return self.body(x).add_(x)  # in place: no fresh buffer (x + body(x) gives the same numbers)


class Pattern(Protocol):
    """What a group needs from an attention pattern: apply(values (B, N, C)) -> (B, N, C)."""

    def apply(self, value: Tensor) -> Tensor: ...


# (pattern maker, first group's features (B, C, H, W)) -> the pattern every group then applies
PatternFn = Callable[[LearnableSparsePattern, Tensor], Pattern]


def lsp_pattern(maker: LearnableSparsePattern, features: Tensor) -> SharedPattern:
    """The trained LSP pattern: cluster, sort and softmax over windows (the default)."""
    return maker(features)


class ResidualGroup(nn.Module):
    """B residual blocks, then an attention block (its output added at ``cfg.attn_res_scale``: 0.1 in the
    paper, 1 in the shipped checkpoints), then a 3x3 conv.

    ``attention`` is an :class:`Assembly` (lsp), a :class:`DenseNonLocal` (dense) or None; the
    group does not decide where a sparse pattern comes from: the network hands it one through
    ``attend`` (a :class:`CollaborativeAttention` or :class:`DenseAttention` of this forward pass).
    forward(x: (B, C, H, W), g: this group's index) -> (B, C, H, W), before the group's residual add.
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

    def forward(self, x: Tensor, g: int = 0, attend: Attend | None = None) -> Tensor:
        y = self.blocks(x)
        return self.conv(y if attend is None else attend(g, self, y))


# (group index, the group, its blocks' output y) -> y plus the group's attention branch
Attend = Callable[[int, ResidualGroup, Tensor], Tensor]


class CollaborativeAttention:
    """CoA over one forward pass: the sparse pattern and its softmax weights are made ONCE, from the
    first group's features, and every group aggregates its own values with them.

    Called per group as ``attend(g, group, y)`` -> y + a * (the group's values (its 1x1 assembly
    conv of y) aggregated with the shared weights), a = ``attn_res_scale``. Without sharing
    (``share_pattern=False``, the LSP-only ablation) each group makes its own pattern with its own
    pattern maker. ``make_pattern`` builds the pattern (default: the trained LSP, :func:`lsp_pattern`).
    Without autograd or a tracer the branch is added in place to y (same numbers, no extra buffer).
    """

    def __init__(self, net: LCoAN, make_pattern: PatternFn = lsp_pattern, tracer: TraceBuilder | None = None) -> None:
        self.net, self.make_pattern, self.tracer = net, make_pattern, tracer
        self.shared: Pattern | None = None

    def pattern(self, g: int, y: Tensor) -> Pattern:
        """The pattern group ``g`` applies: made from y on the first call under CoA, per group without."""
        share = self.net.cfg.share_pattern
        if self.shared is None or not share:
            maker = self.net.patterns[0 if share else g]
            self.shared = self.make_pattern(maker, y)
            if self.tracer is not None:
                self.tracer.pattern(self.shared, maker.clusters.centroids, g)
        return self.shared

    def __call__(self, g: int, group: ResidualGroup, y: Tensor) -> Tensor:
        shared = self.pattern(g, y)
        values = group.attention.project(y)  # this group's own values (B, N, C)
        scale = self.net.cfg.attn_res_scale
        if self.tracer is None and isinstance(shared, SharedPattern) and shared.can_add_into(y, values):
            return shared.add_into(y, values, scale)
        attn = shared.apply(values).transpose(1, 2).reshape(y.shape)
        if self.tracer is not None:
            self.tracer.group(values, attn)
        return y + scale * attn


class DenseAttention:
    """The dense non-local baseline per group: each group's own block, y -> y + a * block(y)."""

    def __init__(self, net: LCoAN, tracer: TraceBuilder | None = None) -> None:
        self.scale, self.tracer = net.cfg.attn_res_scale, tracer

    def __call__(self, g: int, group: ResidualGroup, y: Tensor) -> Tensor:
        if self.tracer is None:
            attn = group.attention(y)
        else:
            q, k, v = group.attention.embed(y)
            attn = group.attention.attend(q, k, v).transpose(1, 2).reshape(y.shape)
            self.tracer.group(v, attn, q, k)
        return y + self.scale * attn


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

    def attention_branch(self, tracer: TraceBuilder | None = None,
                         make_pattern: PatternFn = lsp_pattern) -> Attend | None:
        """The attention of one forward pass, called by every group: CoA (lsp), per-group dense
        blocks (dense) or None."""
        if self.cfg.attention == "lsp":
            return CollaborativeAttention(self, make_pattern, tracer)
        if self.cfg.attention == "dense":
            return DenseAttention(self, tracer)
        return None

    def forward_features(self, x: Tensor, tracer: TraceBuilder | None = None,
                         make_pattern: PatternFn = lsp_pattern) -> Tensor:
        """The residual groups. x: (B, C, H, W) -> (B, C, H, W).

        ``make_pattern`` (lsp only) builds the pattern the groups apply; another one (e.g. dense
        softmax over the same embeddings, :mod:`lcoan.introspect.knobs`) runs the same weights another way.
        """
        if tracer is not None and make_pattern is not lsp_pattern:
            raise ValueError("a trace records the trained LSP pattern only")
        attend = self.attention_branch(tracer, make_pattern)
        for g, group in enumerate(self.groups):
            x = torch.add(x, group(x, g, attend), alpha=self.cfg.group_res_scale)
        return x

    def _forward(self, x: Tensor, tracer: TraceBuilder | None, make_pattern: PatternFn = lsp_pattern) -> Tensor:
        if x.device.type == "cpu" and not needs_autograd(x, self.conv_first.weight):
            # Inference on CPU runs channels-last: faster convolutions, and the (B, N, C) rows the
            # attention reads and writes are then the feature map's own memory (no transposed copies).
            x = x.contiguous(memory_format=torch.channels_last)
        head = self.conv_first(x - self.rgb_mean)
        body = self.conv_after_body(self.forward_features(head, tracer, make_pattern)).add_(head)
        return (self.conv_last(self.upsample(body)) + self.rgb_mean).contiguous()

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
