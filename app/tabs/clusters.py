"""Clusters tab: the k-means cluster of every LR position (LSP), cluster sizes, a 2-D projection of
the match embeddings with the centroids, and the members of a chosen cluster."""
from __future__ import annotations

import gradio as gr

from app.errors import gpu, reported
from app.services.inspection import Inspection, InspectService, inspector_for
from app.views import clusters as views
from app.views.common import display_to_position

from ..session import Shared
from ..source import source_panel

TITLE = "Clusters (LSP)"
METHODS = [("PCA (fast)", "pca"), ("UMAP (slow the first time: ~30 s to import and compile)", "umap")]


def describe(insp: Inspection) -> str:
    s = views.cluster_summary(insp.lcoan)
    h, w = s["lr_size"]
    share = (f"one pattern, computed in group 1 and shared by all {len(insp.lcoan.groups)} groups (CoA)"
             if s["shared_by_groups"] else "each group computes its own pattern")
    rounds = f" · {s['rounds']} rounds (round 1 shown)" if s["rounds"] > 1 else ""
    return (f"**K = {s['clusters']} clusters, {s['occupied']} occupied** by this image (largest: {s['largest']:,} "
            f"positions) · N = {s['positions']:,} LR positions ({w}x{h}) · window W = {s['window']} → "
            f"**{s['windows']} windows** of the cluster-sorted sequence; each query attends to its window and "
            f"the two next to it (≤ {s['keys_per_query']:,} keys = {s['keys_per_query'] / s['positions']:.1%} of N) · "
            f"{share}{rounds}.  \n{insp.region.note} LCoAN traced in {insp.seconds.get('lcoan', 0):.1f} s "
            f"({insp.labels['lcoan']}).")


def cluster_choices(insp: Inspection) -> list[tuple[str, int]]:
    sizes = insp.lcoan.patterns[0].cluster_sizes()
    order = sorted((int(k) for k in (sizes > 0).nonzero()[:, 0]), key=lambda k: (-int(sizes[k]), k))
    return [(f"cluster {k} ({int(sizes[k]):,} position{'' if int(sizes[k]) == 1 else 's'})", k) for k in order]


def build(service, shared: Shared | None = None) -> None:
    inspector: InspectService = inspector_for(service)
    gr.Markdown("Every LR feature position is embedded by a 3x3 conv, L2-normalised and assigned to the "
                "nearest of K learned centroids (cosine similarity). Sorting positions by cluster id and cutting "
                "the sequence into windows gives the sparse pattern. Click the map to pick a cluster.")
    src = source_panel(inspector, "clusters", shared)
    info = gr.Markdown(elem_id="clusters-info")
    with gr.Row():
        with gr.Column():
            overlay = gr.Image(label="Cluster of each LR position (click to pick a cluster; chosen one outlined)",
                               format="png", interactive=False, height=640, elem_id="clusters-overlay")
            legend = gr.HTML(elem_id="clusters-legend")
            opacity = gr.Slider(0, 1, value=views.DEFAULT_OPACITY, step=0.05, elem_id="clusters-opacity",
                                label="Cluster colour opacity (1: cluster colours shaded by the photo)")
        sizes = gr.Plot(label="Cluster sizes")
    with gr.Row():
        cluster = gr.Dropdown(label="Cluster", choices=[], value=None, scale=1)
        method = gr.Radio(METHODS, value="pca", label="Projection", scale=2)
    with gr.Row():
        with gr.Column():
            members = gr.Image(label="Members of the chosen cluster", format="png", interactive=False, height=640)
            strip = gr.Image(label="These were grouped together: patches around a few members (9x9 LR pixels, "
                                   "centre outlined)", format="png", interactive=False, height=180,
                             elem_id="clusters-strip")
            data = gr.JSON(label="Members", visible=False)
        projection = gr.Plot(label="Match embeddings (sampled) and centroids")

    @gpu
    @reported(4, status=2)
    def show(image, scale, region, opacity):
        if image is None:
            return None, None, "Upload an image or pick an example.", gr.update(choices=[], value=None)
        insp = inspector.inspect(image, scale, region)
        choices = cluster_choices(insp)
        return (views.cluster_overlay(insp.lcoan, insp.image, opacity), views.cluster_sizes_figure(insp.lcoan),
                describe(insp), gr.update(choices=choices, value=choices[0][1]))

    @reported(3, status=None)
    def show_members(image, scale, region, cluster):
        if image is None or cluster is None:
            return None, None, None
        insp = inspector.inspect(image, scale, region)
        k = int(cluster)
        pos = views.member_positions(insp.lcoan, k)
        w = insp.size[1]
        return (views.members_overlay(insp.lcoan, insp.image, k), views.patch_strip(insp.lcoan, insp.image, k),
                {"cluster": k, "size": int(len(pos)), "lr_size": list(insp.size),
                 "positions": pos.tolist(), "rows_cols": [[int(p) // w, int(p) % w] for p in pos[:2000]]})

    @reported(1, status=None)
    def show_projection(image, scale, region, method, cluster, progress=gr.Progress()):
        if image is None:
            return None
        insp = inspector.inspect(image, scale, region)
        proj = inspector.projection(insp, method, progress=lambda f, d: progress(f, desc=d))
        occupied = insp.lcoan.patterns[0].cluster_sizes().numpy() > 0
        return views.projection_figure(proj["points"], proj["codes"], proj["centroids"], occupied,
                                       f"{proj['note']}, {len(proj['points'])} sampled positions",
                                       None if cluster is None else int(cluster))

    @reported(2, status=None)
    def highlight(image, scale, region, opacity, cluster):
        """The map again with the chosen cluster outlined, and the colour legend."""
        if image is None:
            return None, ""
        insp = inspector.inspect(image, scale, region)
        k = None if cluster is None else int(cluster)
        return (views.cluster_overlay(insp.lcoan, insp.image, opacity, selected=k),
                views.cluster_legend_html(insp.lcoan, selected=k))

    @reported(1, status=None)
    def pick(image, scale, region, evt: gr.SelectData):
        if image is None or evt.index is None:
            return gr.skip()
        insp = inspector.inspect(image, scale, region)
        y, x = display_to_position(evt.index[0], evt.index[1], insp.size)
        return int(insp.lcoan.patterns[0].codes[0][insp.lcoan.position(y, x)])

    inputs = src.inputs
    gr.on(src.triggers, show, inputs=[*inputs, opacity], outputs=[overlay, sizes, info, cluster], api_name="clusters")
    # the opacity re-draws the map and keeps the chosen cluster (outline, legend); .change also fires when a
    # value is typed into the slider's box, which .release did not see
    opacity.change(highlight, inputs=[*inputs, opacity, cluster], outputs=[overlay, legend], api_visibility="private",
                   trigger_mode="always_last", show_progress="hidden")
    cluster.change(show_members, inputs=[*inputs, cluster], outputs=[members, strip, data], api_name="cluster_members")
    cluster.change(highlight, inputs=[*inputs, opacity, cluster], outputs=[overlay, legend], api_visibility="private")
    gr.on([cluster.change, method.change], show_projection, inputs=[*inputs, method, cluster], outputs=projection,
          api_name="cluster_projection")
    overlay.select(pick, inputs=inputs, outputs=cluster, api_visibility="private")
