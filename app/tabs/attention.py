"""Attention-per-layer tab: click a query; see the keys LSP gives it and their weights, each group's
contribution under CoA, the dense model's map at every layer, and the attention-mass recall."""
from __future__ import annotations

import gradio as gr
import numpy as np

from app.errors import gpu, reported
from app.services.inspection import Inspection, InspectService, inspector_for
from app.services.models import ServiceError
from app.views import attention as views
from app.views.common import display_to_position

from ..session import Shared
from ..source import source_panel

TITLE = "Attention per layer"


def describe(insp: Inspection, y: int, x: int, att: dict, stats: dict) -> str:
    p = insp.lcoan.patterns[0]
    pos = insp.lcoan.position(y, x)
    h, w = insp.size
    lines = [
        f"**Query (row {y}, col {x})** of the traced LR map ({h} rows x {w} cols; position {pos:,}) · cluster "
        f"{int(p.codes[0][pos])} · window {p.window_of(pos) + 1} of {p.num_windows} · LSP gives it "
        f"**{len(att['keys']):,} keys** ({len(att['keys']) / insp.n:.1%} of N) · "
        f"largest weight {att['weights'].max():.3g}.",
        f"**Attention-mass recall: {att['recall']:.3f}** for this query: with LCoAN's own embeddings, the share of "
        f"the dense softmax (over all {insp.n:,} positions) that falls on the keys the sparse pattern gave it. "
        f"Over {stats['samples']} sampled queries: mean **{stats['mean']:.3f}**, median {stats['median']:.3f}, "
        f"min {stats['min']:.3f}. A query sees {stats['keys_share']:.1%} of the positions, so an attention that "
        f"is still flat (untrained, or embeddings of small norm) scores about {stats['keys_share']:.3f}; "
        f"concentrated attention whose mass the clusters capture scores near 1. Scores are q · k̂ with a unit key, "
        f"so they lie within ±|q|; here the mean |q| is {stats['query_norm']:.2f}.",
        "Under CoA the weights are the same matrix in every group; what differs per group is its own value "
        "projection, hence its contribution (below). The dense model has a different N x N matrix per layer.",
        insp.region.note,
    ]
    return "  \n".join(lines)


def build(service, shared: Shared | None = None) -> None:
    inspector: InspectService = inspector_for(service)
    gr.Markdown("Click a pixel of the image to choose the query (a position of the LR feature map). Bright: "
                "the keys the sparse pattern gives it, coloured by weight; dimmed: positions it never sees.")
    src = source_panel(inspector, "attention", shared)
    with gr.Row():
        with gr.Column():
            image = gr.Image(label="LSP attention of the query (click to choose another)", format="png",
                             interactive=False, height=640, elem_id="attention-overlay")
            with gr.Row():
                qy = gr.Number(label="query row (LR)", precision=0, value=None)
                qx = gr.Number(label="query col (LR)", precision=0, value=None)
                log = gr.Checkbox(label="log scale relative to uniform (0 = weight 1/N)", value=True,
                                  info="off: linear weights (peaked maps look near-black)")
                go = gr.Button("Show", variant="secondary")
        with gr.Column():
            info = gr.Markdown(elem_id="attention-info")
            recall = gr.Plot(label="Attention-mass recall")
    contributions = gr.Plot(label="LCoAN: each group's contribution")
    dense = gr.Plot(label="Dense NLA: each layer's attention for the same query")
    data = gr.JSON(label="Query data", visible=False)

    def render(insp: Inspection, y: int | None, x: int | None, log: bool):
        h, w = insp.size
        y = h // 2 if y is None else int(y)
        x = w // 2 if x is None else int(x)
        if not (0 <= y < h and 0 <= x < w):
            raise ServiceError(f"Query (row {y}, col {x}) is outside the traced LR map: rows 0..{h - 1}, "
                               f"cols 0..{w - 1}.")
        pos = insp.lcoan.position(y, x)
        att = views.query_attention(insp.lcoan, pos)
        stats = inspector.recall_stats(insp)
        dense_trace = insp.dense
        dense_fig = views.dense_maps_figure(dense_trace, pos, log=log) if dense_trace is not None else None
        order = np.argsort(-att["weights"])
        payload = {"query": [y, x], "position": pos, "lr_size": [h, w], "keys": att["keys"].tolist(),
                   "weights": att["weights"].tolist(), "top_keys": att["keys"][order[:10]].tolist(),
                   "recall": att["recall"], "recall_mean": stats["mean"], "recall_samples": stats["samples"],
                   "window": insp.lcoan.patterns[0].window, "has_dense": dense_trace is not None}
        note = describe(insp, y, x, att, stats)
        if dense_trace is None:
            note += "  \n*No dense-NLA checkpoint for this scale: the dense maps are not shown.*"
        return (views.attention_overlay(insp.lcoan, insp.image, pos),
                views.recall_figure(stats["values"].numpy(), att["recall"]),
                views.contributions_figure(insp.lcoan, pos, log=log), dense_fig, note, payload, y, x)

    outputs = [image, recall, contributions, dense, info, data, qy, qx]

    @gpu
    @reported(len(outputs), status=4)
    def show(image, scale, region, y, x, log):
        if image is None:
            return None, None, None, None, "Upload an image or pick an example.", None, None, None
        return render(inspector.inspect(image, scale, region), y, x, log)

    @gpu
    @reported(len(outputs), status=4)
    def click(image, scale, region, log, evt: gr.SelectData):
        if image is None or evt.index is None:
            return [gr.skip()] * len(outputs)
        insp = inspector.inspect(image, scale, region)
        y, x = display_to_position(evt.index[0], evt.index[1], insp.size)
        return render(insp, y, x, log)

    @reported(len(outputs), status=4)
    def fresh(image, scale, region, log):
        """A new picture (or scale / region): start from its centre."""
        return show(image, scale, region, None, None, log)

    gr.on([go.click, qy.submit, qx.submit, log.input], show, inputs=[*src.inputs, qy, qx, log], outputs=outputs,
          api_name="attention")
    gr.on(src.triggers, fresh, inputs=[*src.inputs, log], outputs=outputs, api_visibility="private")
    image.select(click, inputs=[*src.inputs, log], outputs=outputs, api_visibility="private")
