"""Attention-per-layer tab: click a query; see the keys LSP gives it and their weights, each group's
contribution under CoA, the dense model's map at every layer, and the attention-mass recall."""
from __future__ import annotations

import gradio as gr

from app.errors import gpu, reported
from app.services import attention
from app.services.inspection import Inspection, InspectService, inspector_for
from app.services.models import ServiceError
from app.views import attention as views
from app.views.common import display_to_position
from lcoan.introspect.query import QueryAttention

from ..session import Shared
from ..source import source_panel

TITLE = "Attention per layer"


def describe(insp: Inspection, q: QueryAttention, dense: list[QueryAttention], stats: dict) -> str:
    p = insp.lcoan.patterns[0]
    y, x = q.query
    pos = q.position
    h, w = insp.size
    m = q.mass
    top = ", ".join(f"{float(v):.3f} at {q.distance(int(k))} px" for k, v in zip(q.top[:3], q.top_weights[:3]))
    lines = [
        f"**Query (row {y}, col {x})** of the traced LR map ({h} rows x {w} cols; position {pos:,}) · cluster "
        f"{int(p.codes[0][pos])} · window {p.window_of(pos) + 1} of {p.num_windows} · LSP gives it "
        f"**{q.keys:,} keys** ({q.keys / insp.n:.1%} of N).",
        f"**Self-weight {q.self_weight:.3f}**: the share of its attention on the query itself (cyan box); the other "
        f"{1 - q.self_weight:.1%} goes to other keys. Strongest other keys (yellow boxes, patches below): "
        f"{top or 'none'}.",
        f"**Where the mass goes** (receptive field of the convolutions: {m.radius} LR px each way): itself "
        f"{m.self:.1%} · 3x3 neighbours {m.neighbours:.1%} · elsewhere within the field {m.within_rf:.1%} · "
        f"**beyond it {m.beyond_rf:.1%}** (what only non-local attention can reach).",
    ]
    if dense:
        d = dense[0]
        lines.append(f"Dense NLA, same query, layer 1: self {d.self_weight:.3f}, beyond the field "
                     f"{d.mass.beyond_rf:.1%} (all {len(dense)} layers in the chart).")
    lines += [
        f"**Attention-mass recall: {q.recall:.3f}** for this query: with LCoAN's own embeddings, the share of "
        f"the dense softmax (over all {insp.n:,} positions) that falls on the keys the sparse pattern gave it. "
        f"Over {stats['samples']} sampled queries: mean **{stats['mean']:.3f}**, median {stats['median']:.3f}, "
        f"min {stats['min']:.3f}; a flat attention would score about {stats['keys_share']:.3f}.",
        "Colours: log10 weight over the 3 decades below the strongest key other than the query (fitted to this "
        "query); brighter and more opaque = more weight; grey = never seen by this query. Under CoA the weights "
        "are the same in every group; each group's own values make its contribution differ (below).",
        insp.region.note,
    ]
    return "  \n".join(lines)


def build(service, shared: Shared | None = None) -> None:
    inspector: InspectService = inspector_for(service)
    gr.Markdown("Click a pixel of the image to choose the query (a position of the LR feature map), or let the app "
                "pick the query whose attention reaches farthest. Keys are coloured and blended by weight; the "
                "strongest matches are outlined in yellow and shown as patches; the query itself is the cyan box.")
    src = source_panel(inspector, "attention", shared)
    with gr.Row():
        with gr.Column():
            image = gr.Image(label="LSP attention of the query (click to choose another)", format="png",
                             interactive=False, height=640, elem_id="attention-overlay")
            matches = gr.Image(label="The query (cyan) and its strongest matches (yellow): 9x9 LR px, weight and "
                                     "distance", format="png", interactive=False, height=110,
                               elem_id="attention-matches")
            with gr.Row():
                qy = gr.Number(label="query row (LR)", precision=0, value=None)
                qx = gr.Number(label="query col (LR)", precision=0, value=None)
                log = gr.Checkbox(label="log scale relative to uniform (0 = weight 1/N)", value=True,
                                  info="off: linear weights, 0 to the largest weight off the query")
            with gr.Row():
                go = gr.Button("Show", variant="secondary")
                far = gr.Button("Show me a far-reaching query", variant="primary", elem_id="attention-far")
        with gr.Column():
            info = gr.Markdown(label="query info", elem_id="attention-info")
            mass = gr.Plot(label="Where the mass goes", elem_id="attention-mass")
            recall = gr.Plot(label="Attention-mass recall")
    with gr.Row():
        with gr.Column():
            dense_image = gr.Image(label="Dense NLA, the same query at one layer: keys by weight (same drawing)",
                                   format="png", interactive=False, height=480, elem_id="attention-dense-overlay")
            dense_matches = gr.Image(label="Dense NLA: the query and its strongest matches at that layer",
                                     format="png", interactive=False, height=110, elem_id="attention-dense-matches")
        with gr.Column(scale=0, min_width=220):
            dense_layer = gr.Number(value=1, precision=0, label="dense layer to draw", elem_id="attention-dense-layer",
                                    info="LSP: one set of weights for every group (CoA); dense: its own per layer")
    contributions = gr.Plot(label="LCoAN: each group's contribution")
    dense = gr.Plot(label="Dense NLA: each layer's attention for the same query")
    data = gr.JSON(label="Query data", visible=False)
    where = gr.State(None)  # the last query as fractions of its map: kept across scale / region changes

    def render(insp: Inspection, y: int, x: int, log: bool, layer: int | None = 1):
        q = attention.lsp_query(inspector, insp, y, x)
        stats = inspector.recall_stats(insp)
        dq = attention.dense_queries(inspector, insp, y, x)
        layer = 1 if layer is None else int(layer)
        if dq and not 1 <= layer <= len(dq):
            raise ServiceError(f"the dense model has layers 1..{len(dq)}, got {layer}")
        dense_trace = insp.dense
        pos = q.position
        dense_fig = views.dense_maps_figure(dense_trace, pos, log=log) if dense_trace is not None else None
        note = describe(insp, q, dq, stats)
        if dense_trace is None:
            note += "  \n*No dense-NLA checkpoint for this scale: the dense maps are not shown.*"
        splits = {"LSP (every group)": q, **{f"dense layer {i + 1}": d for i, d in enumerate(dq)}}
        h, w = insp.size
        return (views.attention_overlay(insp.lcoan, insp.image, pos, q=q),
                views.recall_figure(stats["values"].numpy(), q.recall),
                views.contributions_figure(insp.lcoan, pos, log=log), dense_fig, note,
                attention.payload(insp, q, dq, stats), y, x, views.match_strip(insp.image, q),
                views.mass_figure(splits),
                views.attention_overlay(insp.dense, insp.image, pos, q=dq[layer - 1]) if dq else None,
                views.match_strip(insp.image, dq[layer - 1]) if dq else None, ((y + 0.5) / h, (x + 0.5) / w))

    outputs = [image, recall, contributions, dense, info, data, qy, qx, matches, mass, dense_image, dense_matches,
               where]

    @gpu
    @reported(len(outputs), status=4)
    def show(image, scale, region, y, x, log, dense_layer=1):
        if image is None:
            return (None,) * 4 + ("Upload an image or pick an example.",) + (None,) * (len(outputs) - 5)
        insp = inspector.inspect(image, scale, region)
        return render(insp, *attention.resolve_query(insp, y, x), log, dense_layer)

    @gpu
    @reported(len(outputs), status=4)
    def click(image, scale, region, log, dense_layer, evt: gr.SelectData):
        if image is None or evt.index is None:
            return [gr.skip()] * len(outputs)
        insp = inspector.inspect(image, scale, region)
        y, x = display_to_position(evt.index[0], evt.index[1], insp.size)
        return render(insp, y, x, log, dense_layer)

    @gpu
    @reported(len(outputs), status=4)
    def farthest(image, scale, region, log, dense_layer=1):
        if image is None:
            return [gr.skip()] * 4 + ["Upload an image or pick an example."] + [gr.skip()] * (len(outputs) - 5)
        insp = inspector.inspect(image, scale, region)
        return render(insp, *attention.far_query(inspector, insp), log, dense_layer)

    @gpu
    @reported(len(outputs), status=4)
    def fresh(image, scale, region, log, dense_layer, fraction):
        """A new picture (or scale / region): the same place as the last query (its centre the first time)."""
        if image is None:
            return show(image, scale, region, None, None, log)
        insp = inspector.inspect(image, scale, region)
        return render(insp, *attention.resolve_query(insp, None, None, fraction), log, dense_layer)

    gr.on([go.click, qy.submit, qx.submit, log.input, dense_layer.submit], show,
          inputs=[*src.inputs, qy, qx, log, dense_layer], outputs=outputs,
          api_name="attention",
          api_description="One query's attention (row y, col x of the traced LR map; empty: the centre): LSP keys by "
                          "weight, self-weight, top matches, mass split (self / 3x3 / within / beyond the receptive "
                          "field) for LSP and every dense layer, recall.")
    far.click(farthest, inputs=[*src.inputs, log, dense_layer], outputs=outputs, api_name="attention_far",
              api_description="The same views for the sampled query whose LSP attention puts the most mass beyond the "
                              "receptive field.")
    gr.on(src.triggers, fresh, inputs=[*src.inputs, log, dense_layer, where], outputs=outputs, api_visibility="private")
    image.select(click, inputs=[*src.inputs, log, dense_layer], outputs=outputs, api_visibility="private")
