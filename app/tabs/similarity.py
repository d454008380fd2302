"""Shared-similarity tab: the sparse matrix LSP computes once (cluster-sorted band of windows, used
by every group) beside the dense model's per-layer maps, and how redundant those layers are."""
from __future__ import annotations

import gradio as gr
import torch

from app.errors import gpu, reported
from app.services.inspection import InspectService, inspector_for
from app.views import similarity as views

from ..session import Shared
from ..source import source_panel

TITLE = "Shared similarity"
SPANS = [("whole matrix", 0), ("3 windows", -3), ("1 window", -1), ("128 positions", 128)]


def span_length(span: int, window: int, n: int) -> int:
    """SPANS value -> number of sorted positions (0: all; -k: k windows)."""
    span = int(span)
    length = n if span == 0 else -span * window if span < 0 else span
    return max(1, min(n, length))


def build(service, shared: Shared | None = None) -> None:
    inspector: InspectService = inspector_for(service)
    gr.Markdown("LCoAN computes one sparse similarity matrix per forward pass (in group 1) and every group reuses "
                "it (Collaborative Attention). Sorted by cluster, it is a band: each window of W queries sees "
                "only its own and the two neighbouring windows. Dense NLA computes a full N x N matrix at every "
                "layer; the redundancy matrix shows how alike those layers are, which is what CoA exploits.")
    src = source_panel(inspector, "similarity", shared)
    with gr.Row():
        span = gr.Dropdown(SPANS, value=0, label="Show", scale=1)
        start = gr.Slider(0, inspector.max_positions - 1, value=0, step=1, scale=3,
                          label="first sorted position of a zoomed view (clamped to the image's N)")
    band_info = gr.Markdown(elem_id="similarity-band-info")
    band = gr.Plot(label="Sparse attention matrix in cluster-sorted order (drag to zoom)")
    layers_info = gr.Markdown(elem_id="similarity-layers-info")
    maps = gr.Plot(label="LCoAN's shared matrix and each dense layer's, on sampled positions")
    redundancy = gr.Plot(label="Dense layers: redundancy")
    data = gr.JSON(label="Redundancy data", visible=False)

    @gpu
    @reported(3, status=1)
    def show_band(image, scale, region, span, start):
        if image is None:
            return None, "Upload an image or pick an example.", gr.update()
        insp = inspector.inspect(image, scale, region)
        p = insp.lcoan.patterns[0]
        length = span_length(span, p.window, p.n)
        first = min(max(int(start or 0), 0), p.n - length)
        matrix, edges = inspector.band(insp, first, first + length)
        note = (f"N = {p.n:,} positions, W = {p.window}, {p.num_windows} windows: the matrix holds at most "
                f"{min(3 * p.window, p.n) * p.n:,} non-zero weights instead of {p.n * p.n:,} "
                f"({min(3 * p.window, p.n) / p.n:.1%}). Rows: queries, columns: keys, both in cluster-sorted order; "
                f"the strip on top gives the cluster. {insp.region.note}")
        return views.band_figure(p, matrix, edges), note, first

    @gpu
    @reported(4, status=3)
    def show_layers(image, scale, region):
        if image is None:
            return None, None, None, ""
        insp = inspector.inspect(image, scale, region)
        sampled = inspector.sampled_maps(insp)
        red = inspector.redundancy(insp)
        fig = views.sampled_maps_figure(sampled["lcoan"], sampled["dense"], sampled["positions"])
        if red is None:
            return fig, None, None, "*No dense-NLA checkpoint for this scale: only LCoAN's matrix is shown.*"
        g = red["js"].shape[0]
        off = ~torch.eye(g, dtype=torch.bool)
        note = (f"Dense NLA ({insp.labels['dense']}): over {red['samples']} sampled queries, the attention rows of "
                f"two different layers have a mean Jensen-Shannon divergence of "
                f"**{float(red['js'][off].mean()):.3f} nats** (0 = identical, ln 2 = 0.693 = disjoint) and a mean "
                f"correlation of **{float(red['corr'][off].mean()):.3f}**. "
                f"Each of its {g} layers recomputes an N x N matrix; LCoAN computes one sparse matrix and shares it.")
        payload = {"layers": g, "samples": red["samples"], "js": red["js"].tolist(), "corr": red["corr"].tolist(),
                   "sampled_positions": sampled["positions"].tolist()}
        return fig, views.redundancy_figure(red["js"], red["corr"], red["samples"]), payload, note

    gr.on([*src.triggers, span.change, start.release], show_band, inputs=[*src.inputs, span, start],
          outputs=[band, band_info, start], api_name="similarity_band")
    gr.on(src.triggers, show_layers, inputs=src.inputs, outputs=[maps, redundancy, data, layers_info],
          api_name="similarity_layers")
