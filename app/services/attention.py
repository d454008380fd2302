"""One query's attention for the "Attention per layer" tab and the walkthrough: the receptive field of
the traced model, the query (clicked, typed, kept across a scale change, or the far-reaching one), and
its attention under LSP and at every dense layer (:func:`lcoan.introspect.query.query_attention`).

Plain Python, no Gradio. Per-inspection values are memoised on the :class:`Inspection`.
"""
from __future__ import annotations

from typing import Any

from lcoan.introspect.mass import receptive_radius
from lcoan.introspect.query import QueryAttention, far_reaching_query, query_attention

from .inspection import Inspection, InspectService
from .models import ServiceError


def radius(inspector: InspectService, insp: Inspection) -> int:
    """Half-width in LR px of the convolutions' receptive field of the traced LCoAN model."""
    return receptive_radius(inspector.models.get("lcoan", insp.scale).model.cfg)


def far_query(inspector: InspectService, insp: Inspection, kind: str = "lsp") -> tuple[int, int]:
    """(row, col) of the sampled query whose attention (LSP, or dense layer 1) puts the most mass beyond
    the receptive field."""
    trace = insp.lcoan if kind == "lsp" else insp.dense
    if trace is None:
        raise ServiceError("no dense-NLA checkpoint for this scale")
    pos = insp.memo(("far", kind), lambda: far_reaching_query(trace, radius(inspector, insp)))
    return divmod(pos, insp.size[1])


def resolve_query(insp: Inspection, y: Any, x: Any, fraction: tuple[float, float] | None = None) -> tuple[int, int]:
    """The query position (row, col): the given one, else ``fraction`` (the previous query as fractions of
    the previous map, kept across a scale or region change), else the centre. Out of range: ServiceError."""
    h, w = insp.size
    if y is None or x is None:
        if fraction is not None:
            fy, fx = fraction
            return min(h - 1, max(0, int(fy * h))), min(w - 1, max(0, int(fx * w)))
        return h // 2, w // 2
    try:
        y, x = int(y), int(x)
    except (TypeError, ValueError):
        raise ServiceError(f"the query must be a row and a column (LR px), got {y!r}, {x!r}") from None
    if not (0 <= y < h and 0 <= x < w):
        raise ServiceError(f"Query (row {y}, col {x}) is outside the traced LR map: rows 0..{h - 1}, cols 0..{w - 1}.")
    return y, x


def lsp_query(inspector: InspectService, insp: Inspection, y: int, x: int, top: int = 8) -> QueryAttention:
    """The LSP attention of one query (the same at every group under CoA)."""
    return query_attention(insp.lcoan, insp.lcoan.position(y, x), radius(inspector, insp), top=top)


def dense_queries(inspector: InspectService, insp: Inspection, y: int, x: int, top: int = 8) -> list[QueryAttention]:
    """The dense model's attention of the same query at every layer ([] without a dense checkpoint)."""
    trace = insp.dense
    if trace is None:
        return []
    r = radius(inspector, insp)
    return [query_attention(trace, trace.position(y, x), r, group=g, top=top) for g in range(len(trace.groups))]


def payload(insp: Inspection, lsp: QueryAttention, dense: list[QueryAttention], stats: dict) -> dict:
    """The JSON the /attention endpoint returns: the query, LSP's keys and weights, the mass splits."""
    h, w = insp.size
    keys = lsp.row.nonzero()[:, 0]
    return {"query": list(lsp.query), "position": lsp.position, "lr_size": [h, w], "keys": keys.tolist(),
            "weights": lsp.row[keys].tolist(), "self_weight": lsp.self_weight,
            "top_keys": [int(p) for p in lsp.top], "top": lsp.as_dict()["top"],
            "top_weights": [float(v) for v in lsp.top_weights], "mass": lsp.mass.as_dict(),
            "radius": lsp.mass.radius, "recall": lsp.recall, "recall_mean": stats["mean"],
            "recall_samples": stats["samples"], "window": insp.lcoan.patterns[0].window,
            "has_dense": bool(dense), "dense": [q.as_dict() for q in dense]}
