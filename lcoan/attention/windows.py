"""The one sparse-attention core of LSP: cluster-sorted windows, their 3W key slots, the slot softmax.

Positions sorted by cluster are cut into windows of W; window i's queries attend to the key slots
of windows i - 1, i, i + 1 (3W slots; off either end and the tail padding are masked). Score rule:
raw query . normalised key, no scaling, softmax over the slots. :func:`window_weights` and
:func:`window_aggregate` are the training and inference paths of LSP / CoA (autograd picks the
layout), and :class:`lcoan.introspect.trace.PatternTrace` recomputes its rows with :func:`slot_softmax`.

Without autograd the same numbers are computed with fewer copies: positions are gathered once into
a zero-framed buffer whose 3W-slot windows are strided views (no concatenation), masking touches
only the slots that need it, and the softmax runs in place.
"""
from __future__ import annotations

import torch
from torch import Tensor


def effective_window(n: int, window: int) -> int:
    """Window actually used for N positions: a window never exceeds N (so N < W needs no padding)."""
    return max(1, min(window, n))


def num_windows(n: int, window: int) -> int:
    """Number of windows nW covering N sorted positions."""
    return -(-n // effective_window(n, window))


def needs_autograd(*tensors: Tensor) -> bool:
    """True when a graph must be recorded (grad mode on and some input requires grad)."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


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


def inverse_permutation(order: Tensor) -> Tensor:
    """(..., N) permutations -> their inverses, by one scatter instead of a second sort."""
    ramp = torch.arange(order.shape[-1], device=order.device).expand_as(order)
    return torch.empty_like(order).scatter_(-1, order, ramp)


# --- layouts: the autograd one (copies) and the framed one (views) hold the same numbers ------------


def gather_positions(x: Tensor, index: Tensor) -> Tensor:
    """x: (B, N, C), index: (B, M) -> (B, M, C)."""
    return torch.gather(x, 1, index[..., None].expand(-1, -1, x.shape[-1]))


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


def sorted_framed(x: Tensor, order: Tensor, window: int, out: Tensor | None = None) -> Tensor:
    """Gather positions in sort order into a zero-framed buffer (no autograd).

    x: (B, N, C), order: (B, N) -> (B, (nW + 2) * W, C): one zero window, the N sorted positions
    with the tail padded by repeating the last one (as :func:`pad_to_windows`), one zero window.
    Rows [i W, (i + 3) W) are the key slots of window i. ``out``: a buffer of that shape to fill.
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


def windowed(x: Tensor, order: Tensor, window: int, slots: bool = False) -> Tensor:
    """(B, N, C) in sort order ``order`` (B, N) -> its windows (B, nW, W, C), or with ``slots`` each
    window's key slots (B, nW, 3W, C). Copies under autograd, strided views of a framed buffer otherwise."""
    if needs_autograd(x):
        padded = pad_to_windows(gather_positions(x, order), window)
        return with_neighbours(padded) if slots else padded
    buf = sorted_framed(x, order, window)
    return framed_keys(buf, window) if slots else framed_queries(buf, window)


# --- the core: scores, slot softmax, aggregation -------------------------------------------------


def window_matmul(a: Tensor, b: Tensor, out: Tensor | None = None) -> Tensor:
    """(B, nW, X, Y) @ (B, nW, Y, Z) -> (B, nW, X, Z). Without autograd one bmm per batch item
    (into ``out`` when given): a 4-D matmul would copy a strided key view for B > 1."""
    if needs_autograd(a, b):
        return a @ b
    out = a.new_empty(*a.shape[:-1], b.shape[-1]) if out is None else out
    for i in range(a.shape[0]):
        torch.bmm(a[i], b[i], out=out[i])
    return out


def mask_slots_(scores: Tensor, n: int) -> Tensor:
    """In place: -inf on the key slots that are off either end or tail padding.

    scores: (B, nW, W, 3W) for N = n sorted positions; the same slots as :func:`key_slots` marks invalid.
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


def slot_softmax(scores: Tensor, n: int | None = None, valid: Tensor | None = None,
                 with_lse: bool = False) -> tuple[Tensor, Tensor | None]:
    """The LSP attention weights from raw scores over key slots: (..., S) -> weights (..., S), lse (...).

    The invalid slots get -inf, in place: all of them for the full layout (B, nW, W, 3W) of N = ``n``
    positions, or where ``valid`` (bool, broadcastable) is False. The softmax is in place without
    autograd. ``lse``: log-sum-exp of each row (merges rounds), only when ``with_lse``.
    """
    if n is not None:
        mask_slots_(scores, n)
    if valid is not None:
        scores.masked_fill_(~valid, float("-inf"))
    lse = torch.logsumexp(scores, dim=-1) if with_lse else None
    if needs_autograd(scores):
        return torch.softmax(scores, dim=-1), lse
    return softmax_(scores), lse


def window_weights(query: Tensor, key: Tensor, order: Tensor, window: int,
                   with_lse: bool = False) -> tuple[Tensor, Tensor | None]:
    """One round of LSP weights. query, key: (B, N, D), order: (B, N) -> weights (B, nW, W, 3W)
    (0 on masked slots) and, if ``with_lse``, each sorted query's log-sum-exp (B, nW, W)."""
    n = query.shape[1]
    w = effective_window(n, window)
    q, k = windowed(query, order, w), windowed(key, order, w, slots=True)
    return slot_softmax(window_matmul(q, k.transpose(-1, -2)), n=n, with_lse=with_lse)


def window_aggregate(weights: Tensor, value: Tensor, order: Tensor, inverse: Tensor,
                     scratch: dict | None = None, add_to: Tensor | None = None, alpha: float = 1.0) -> Tensor:
    """One round of CoA aggregation: weights (B, nW, W, 3W), value (B, N, C), order / inverse (B, N)
    -> (B, N, C) in position order. Without autograd the result is a transposed view of
    channel-first memory (``out.transpose(1, 2)`` is contiguous), and ``scratch`` keeps the working
    buffers for the next call with the same shapes (a fresh buffer page-faults on first touch).
    ``add_to`` (no autograd; (B, N, C), e.g. the rows of a channels-last feature map): the result
    times ``alpha`` is added to it in place instead, and it is returned (no result buffer at all)."""
    b, n, c = value.shape
    nw, w = weights.shape[1], weights.shape[2]
    if needs_autograd(weights, value):
        out = window_matmul(weights, windowed(value, order, w, slots=True))  # (B, nW, W, C)
        return gather_positions(out.reshape(b, -1, c), inverse)
    scratch = {} if scratch is None else scratch
    key = (b, n, c, nw, w, value.dtype, value.device)
    if scratch.get("key") != key:
        scratch.clear()
        scratch.update(key=key, framed=value.new_empty(b, (nw + 2) * w, c), out=value.new_empty(b, nw, w, c))
    framed = sorted_framed(value, order, w, out=scratch["framed"])
    out = window_matmul(weights, framed_keys(framed, w), out=scratch["out"])
    result = value.new_empty(b, c, n) if add_to is None else add_to  # channel-first: the (B, C, H, W) map is a view
    for i in range(b):
        rows = framed[i, :n]  # item i's slots are consumed: its buffer takes the un-sorted rows
        torch.index_select(out[i].view(-1, c), 0, inverse[i], out=rows)
        if add_to is None:
            result[i].copy_(rows.t())
        else:
            add_to[i].add_(rows, alpha=alpha)
    return result.transpose(1, 2) if add_to is None else add_to


def mix_rounds(lse: Tensor, dim: int) -> Tensor:
    """Weights of R rounds from their log-sum-exp along ``dim`` (softmax), as LSH attention merges hash rounds."""
    return torch.softmax(lse, dim=dim)
