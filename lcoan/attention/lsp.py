"""Learnable Sparse Pattern (LSP): k-means clustered, windowed sparse attention.

Positions are assigned to learned centroids, stably sorted by cluster id, and cut into windows
of W positions; each window's queries attend to the keys of the window itself and of its
previous and next window (no wrap-around). The result is a :class:`SharedPattern`, which CoA
computes once per forward pass and every residual group applies to its own values.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import LCoANConfig
from .embed import make_log_scale, query_key
from .kmeans import CentroidBank


def effective_window(n: int, window: int) -> int:
    """Window actually used for N positions: a window never exceeds N (so N < W needs no padding)."""
    return max(1, min(window, n))


def num_windows(n: int, window: int) -> int:
    return -(-n // effective_window(n, window))


def pad_to_windows(x: Tensor, window: int) -> Tensor:
    """(B, N, C) -> (B, nW, W, C), padding the tail by repeating the last position."""
    b, n, c = x.shape
    w = effective_window(n, window)
    nw = -(-n // w)
    pad = nw * w - n
    if pad:
        x = torch.cat([x, x[:, -1:].expand(b, pad, c)], dim=1)
    return x.reshape(b, nw, w, c)


def with_neighbours(x: Tensor) -> Tensor:
    """(B, nW, W, C) -> (B, nW, 3W, C): previous window, the window, next window (zeros off the ends)."""
    zeros = torch.zeros_like(x[:, :1])
    prev = torch.cat([zeros, x[:, :-1]], dim=1)
    nxt = torch.cat([x[:, 1:], zeros], dim=1)
    return torch.cat([prev, x, nxt], dim=2)


def key_slots(n: int, window: int, device: torch.device | None = None) -> tuple[Tensor, Tensor]:
    """Sorted-sequence index of each key slot and whether it is real.

    Returns index (nW, 3W) int64 into the sorted sequence (clamped where invalid) and
    valid (nW, 3W) bool: False for slots off either end or in the tail padding.
    """
    w = effective_window(n, window)
    nw = -(-n // w)
    win = torch.arange(nw, device=device)[:, None]
    slot = torch.arange(3 * w, device=device)[None, :]
    src = win - 1 + slot // w
    pos = src * w + slot % w
    valid = (src >= 0) & (src < nw) & (pos < n)
    return pos.clamp(0, n - 1), valid


def gather_positions(x: Tensor, index: Tensor) -> Tensor:
    """x: (B, N, C), index: (B, M) -> (B, M, C)."""
    return torch.gather(x, 1, index[..., None].expand(-1, -1, x.shape[-1]))


# --- Inference path -------------------------------------------------------------------------
# Without autograd the same numbers are computed with fewer copies and allocations: positions
# are gathered once into a zero-framed buffer whose 3W-key windows are strided views (no
# ``with_neighbours`` concatenation), masking touches only the slots that need it, and the
# softmax runs in place. Training keeps the path above, so its behaviour and gradients are unchanged.


def needs_autograd(*tensors: Tensor) -> bool:
    """True when a graph must be recorded (grad mode on and some input requires grad)."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def sorted_framed(x: Tensor, order: Tensor, window: int, out: Tensor | None = None) -> Tensor:
    """Gather positions in sort order into a zero-framed buffer.

    x: (B, N, C), order: (B, N) -> (B, (nW + 2) * W, C): one zero window, the N sorted positions
    with the tail padded by repeating the last one (as :func:`pad_to_windows`), one zero window.
    Rows [i W, (i + 3) W) are the keys of window i (as :func:`with_neighbours`). ``out``: a
    buffer of that shape to fill instead of a new one.
    """
    b, n, c = x.shape
    w = effective_window(n, window)
    end = num_windows(n, w) * w + w
    buf = x.new_empty(b, end + w, c) if out is None else out
    buf[:, :w].zero_()
    buf[:, end:].zero_()
    for i in range(b):  # index_select of whole rows: far cheaper than gather with an expanded index
        torch.index_select(x[i].contiguous(), 0, order[i], out=buf[i, w:w + n])
    if end > w + n:
        buf[:, w + n:end] = buf[:, w + n - 1:w + n]
    return buf


def framed_queries(buf: Tensor, window: int) -> Tensor:
    """(B, (nW + 2) * W, C) framed buffer -> (B, nW, W, C) view of its windows (no copy)."""
    b, length, c = buf.shape
    return buf[:, window:length - window].view(b, -1, window, c)


def framed_keys(buf: Tensor, window: int) -> Tensor:
    """(B, (nW + 2) * W, C) framed buffer -> (B, nW, 3W, C) strided view: previous window, the
    window, next window; equals ``with_neighbours(framed_queries(buf))`` without the copy."""
    b, length, c = buf.shape
    nw = length // window - 2
    return buf.as_strided((b, nw, 3 * window, c), (buf.stride(0), window * c, c, 1), buf.storage_offset())


def mask_slots_(scores: Tensor, n: int) -> Tensor:
    """In place: -inf on the key slots that are off either end or tail padding.

    scores: (B, nW, W, 3W) for N = n sorted positions; the same slots as :func:`slot_bias`.
    """
    nw, w = scores.shape[1], scores.shape[2]
    pad = nw * w - n
    scores[:, 0, :, :w] = float("-inf")
    scores[:, -1, :, 2 * w:] = float("-inf")
    if pad:
        scores[:, -1, :, 2 * w - pad:2 * w] = float("-inf")
        if nw > 1:
            scores[:, -2, :, 3 * w - pad:] = float("-inf")
    return scores


def softmax_(x: Tensor) -> Tensor:
    """Softmax over the last dim, in place on CPU (no second (B, nW, W, 3W) buffer)."""
    return torch.softmax(x, dim=-1, out=x) if x.device.type == "cpu" else torch.softmax(x, dim=-1)


def windowed_weights(query: Tensor, key: Tensor, order: Tensor, window: int,
                     with_lse: bool = False) -> tuple[Tensor, Tensor | None]:
    """Inference version of one round of :func:`build_pattern`.

    query, key: (B, N, D), order: (B, N) -> weights (B, nW, W, 3W) and, if ``with_lse``, the
    log-sum-exp of each sorted query's scores (B, nW, W) (only needed to merge rounds).
    """
    n = query.shape[1]
    w = effective_window(n, window)
    q = framed_queries(sorted_framed(query, order, w), w)
    k = framed_keys(sorted_framed(key, order, w), w)
    b, nw = q.shape[:2]
    scores = q.new_empty(b, nw, w, 3 * w)
    for i in range(b):  # bmm over a strided batch: a 4-D matmul would copy the key view for B > 1
        torch.bmm(q[i], k[i].transpose(-1, -2), out=scores[i])
    mask_slots_(scores, n)
    lse = torch.logsumexp(scores, dim=-1) if with_lse else None
    return softmax_(scores), lse


def windowed_apply(weights: Tensor, value: Tensor, order: Tensor, inverse: Tensor,
                   scratch: dict | None = None) -> Tensor:
    """Inference version of one round of :meth:`SharedPattern.apply`.

    weights: (B, nW, W, 3W), value: (B, N, C), order / inverse: (B, N) -> (B, N, C), a transposed
    view of channel-first memory (``out.transpose(1, 2)`` is contiguous (B, C, N)). ``scratch``: a
    dict in which the working buffers are kept for the next call with the same shapes (the groups
    of one forward pass): a fresh large buffer costs a page fault per 4 KiB page on first touch.
    """
    b, n, c = value.shape
    nw, w = weights.shape[1], weights.shape[2]
    scratch = {} if scratch is None else scratch
    key = (b, n, c, nw, w, value.dtype, value.device)
    if scratch.get("key") != key:
        scratch.clear()
        scratch.update(key=key, framed=value.new_empty(b, (nw + 2) * w, c), out=value.new_empty(b, nw, w, c))
    framed = sorted_framed(value, order, w, out=scratch["framed"])
    v, out = framed_keys(framed, w), scratch["out"]
    result = value.new_empty(b, c, n)  # channel-first memory: the (B, C, H, W) map is a free view
    for i in range(b):
        torch.bmm(weights[i], v[i], out=out[i])
        rows = framed[i, :n]  # item i's keys are consumed: its buffer takes the un-sorted rows
        torch.index_select(out[i].view(-1, c), 0, inverse[i], out=rows)
        result[i].copy_(rows.t())
    return result.transpose(1, 2)


@dataclass(frozen=True)
class SharedPattern:
    """The sparse pattern and softmax weights of one LSP call, reused by every group under CoA.

    codes:   (B, R, N) cluster id of each position in each round
    order:   (B, R, N) stable sort of positions by cluster (sorted[i] = x[order[i]])
    inverse: (B, R, N) inverse permutation of ``order``
    weights: R tensors (B, nW, W, 3W): softmax of each sorted query over its 3W key slots
             (0 where masked); one tensor per round, so autograd never slices a stacked copy
    lse:     (B, R, N) log-sum-exp of each query's scores, in position order (merges rounds;
             zeros when R = 1, where it is not needed)
    query, key: (B, N, D) the match embedding (raw) and its L2-normalised version
    """

    codes: Tensor
    order: Tensor
    inverse: Tensor
    weights: tuple[Tensor, ...]
    lse: Tensor
    query: Tensor
    key: Tensor
    window: int
    _scratch: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # apply's buffers

    @property
    def rounds(self) -> int:
        return self.codes.shape[1]

    @property
    def round_weights(self) -> Tensor | None:
        """(B, R, N) mixing weights of the rounds (softmax of their log-sum-exp), None for R = 1."""
        return None if self.rounds == 1 else torch.softmax(self.lse, dim=1)

    def apply(self, value: Tensor) -> Tensor:
        """Aggregate values with the shared weights. value: (B, N, C) -> (B, N, C)."""
        b, n, c = value.shape
        outs = []
        for r in range(self.rounds):
            if not needs_autograd(value, self.weights[r]):
                outs.append(windowed_apply(self.weights[r], value, self.order[:, r], self.inverse[:, r],
                                           self._scratch if self.rounds == 1 else None))
                continue
            v = pad_to_windows(gather_positions(value, self.order[:, r]), self.window)
            out = self.weights[r] @ with_neighbours(v)  # (B, nW, W, C)
            outs.append(gather_positions(out.reshape(b, -1, c), self.inverse[:, r]))
        if self.rounds == 1:
            return outs[0]
        mix = self.round_weights
        return sum(mix[:, r, :, None] * o for r, o in enumerate(outs))


def slot_bias(n: int, window: int, device: torch.device | None = None) -> Tensor:
    """(nW, 1, 3W) additive score bias: 0 for real key slots, -inf off the ends and on tail padding."""
    _, valid = key_slots(n, window, device=device)
    return torch.zeros(valid.shape, device=device).masked_fill_(~valid, float("-inf"))[:, None, :]


def build_pattern(query: Tensor, key: Tensor, codes: Tensor, window: int) -> SharedPattern:
    """Sort by cluster, window, and compute the softmax weights.

    query: (B, N, D) raw match embedding, key: (B, N, D) normalised, codes: (B, R, N).
    Scores are query . key without extra scaling, softmax over the 3W neighbouring keys.
    """
    b, n, _ = query.shape
    w = effective_window(n, window)
    order = torch.sort(codes, dim=-1, stable=True).indices
    if not needs_autograd(query, key):
        return _build_pattern_inference(query, key, codes, order, w)
    bias = slot_bias(n, w, device=query.device).to(query.dtype)
    inverse = torch.argsort(order, dim=-1)
    weights, lses = [], []
    for r in range(codes.shape[1]):
        q = pad_to_windows(gather_positions(query, order[:, r]), w)
        k = with_neighbours(pad_to_windows(gather_positions(key, order[:, r]), w))
        scores = (q @ k.transpose(-1, -2)).add_(bias)  # (B, nW, W, 3W); in place: no extra copy in backward
        weights.append(torch.softmax(scores, dim=-1))
        if codes.shape[1] > 1:  # only needed to merge rounds
            lse = torch.logsumexp(scores, dim=-1)
            lses.append(gather_positions(lse.reshape(b, -1, 1), inverse[:, r])[..., 0])
    lse = torch.stack(lses, 1) if lses else query.new_zeros(b, 1, n)
    return SharedPattern(codes=codes, order=order, inverse=inverse, weights=tuple(weights),
                         lse=lse, query=query, key=key, window=w)


def inverse_permutation(order: Tensor) -> Tensor:
    """(..., N) permutations -> their inverses, by one scatter instead of a second sort."""
    ramp = torch.arange(order.shape[-1], device=order.device).expand_as(order)
    return torch.empty_like(order).scatter_(-1, order, ramp)


def _build_pattern_inference(query: Tensor, key: Tensor, codes: Tensor, order: Tensor, w: int) -> SharedPattern:
    """:func:`build_pattern` without autograd: same fields, same numbers (see ``windowed_weights``)."""
    b, n, _ = query.shape
    rounds = codes.shape[1]
    inverse = inverse_permutation(order)
    weights, lses = [], []
    for r in range(rounds):
        wr, lse = windowed_weights(query, key, order[:, r], w, with_lse=rounds > 1)
        weights.append(wr)
        if rounds > 1:
            lses.append(torch.gather(lse.reshape(b, -1), 1, inverse[:, r]))
    lse = torch.stack(lses, 1) if lses else query.new_zeros(b, 1, n)
    return SharedPattern(codes=codes, order=order, inverse=inverse, weights=tuple(weights),
                         lse=lse, query=query, key=key, window=w)


class LearnableSparsePattern(nn.Module):
    """LSP: match embedding (3x3 conv, C -> C/r) + centroid assignment -> :class:`SharedPattern`.

    forward(x: (B, C, H, W)) -> SharedPattern over the N = H * W positions.
    """

    def __init__(self, cfg: LCoANConfig) -> None:
        super().__init__()
        self.window = cfg.window
        self.match = nn.Conv2d(cfg.num_feat, cfg.match_dim, 3, padding=1)
        self.log_scale = make_log_scale(cfg.logit_scale)
        self.clusters = CentroidBank(cfg.rounds, cfg.num_clusters, cfg.match_dim, decay=cfg.ema_decay,
                                     frozen=cfg.freeze_centroids, init_iters=cfg.kmeans_init_iters,
                                     reseed_dead=cfg.reseed_dead)

    def forward(self, x: Tensor) -> SharedPattern:
        query, key = query_key(self.match, self.log_scale, x)
        codes = self.clusters(key)
        return build_pattern(query, key, codes, self.window)


class Assembly(nn.Module):
    """A group's own value ("assembly") projection (1x1 conv, C -> C), the only attention
    parameters a group owns under CoA; the network aggregates it with the shared pattern."""

    def __init__(self, num_feat: int) -> None:
        super().__init__()
        self.value = nn.Conv2d(num_feat, num_feat, 1)

    def project(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> values (B, N, C)."""
        if needs_autograd(x, self.value.weight):
            return self.value(x).flatten(2).transpose(1, 2)
        # The same 1x1 conv as one GEMM whose output is already (B, N, C)-contiguous, as the gather wants.
        return F.linear(x.flatten(2).transpose(1, 2), self.value.weight.flatten(1), self.value.bias)
