"""The LSP / CoA walkthrough on the user's image: the traced inspection, the query, the eight steps
(:func:`lcoan.introspect.walkthrough.walkthrough`). Plain Python, no Gradio."""
from __future__ import annotations

from typing import Any

from lcoan.introspect.walkthrough import Walkthrough, walkthrough

from .attention import far_query, radius, resolve_query
from .inspection import Inspection, InspectService


def run(inspector: InspectService, image: Any, scale: Any, region: str = "downscale", row: Any = -1,
        col: Any = -1) -> tuple[Inspection, Walkthrough]:
    """The walkthrough of ``image`` at ``scale`` for the query (row, col) in LR px of the traced map;
    a negative row or column picks the far-reaching query (the most mass beyond the receptive field)."""
    insp = inspector.inspect(image, scale, region or "downscale")
    if row is None or col is None or int(row) < 0 or int(col) < 0:
        y, x = far_query(inspector, insp)
    else:
        y, x = resolve_query(insp, row, col)
    return insp, walkthrough(insp.lcoan, radius(inspector, insp), insp.lcoan.position(y, x))


def payload(insp: Inspection, wt: Walkthrough) -> dict:
    """The JSON the /walkthrough endpoint returns beside the pictures."""
    return {"query": list(wt.lsp.query), "position": wt.position, "lr_size": list(wt.lr_size),
            "window": wt.window, "windows": wt.num_windows, "clusters": wt.num_clusters,
            "steps": [{"title": s.title, "what": s.what, "shapes": s.shapes} for s in wt.steps],
            "lsp": wt.lsp.as_dict(), "recall_mean": wt.recall_mean, "region": insp.region.note}
