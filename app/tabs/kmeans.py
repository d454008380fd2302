"""Watch k-means learn: LSP's spherical k-means with the training EMA update, run on the match embeddings
of the user's picture from the trained centroids or a fresh start; the cluster map of every frame and the
occupancy over the steps. API: ``/kmeans_live(image, scale, region, start, steps, decay, batch, reseed)``."""
from __future__ import annotations

from typing import Any

import gradio as gr

from app.errors import gpu, reported
from app.services import kmeans as service
from app.services.inspection import InspectService, inspector_for
from app.views import kmeans as views

from ..session import Shared
from ..source import source_panel

TITLE = "k-means live"
LEARNABLE = (
    "**What \"learnable\" means in LSP.** The pattern is not a fixed rule (a grid, a hash): which positions attend "
    "to each other is decided by K centroids *learned from data*. Training starts them with a few spherical "
    "k-means iterations on the first batch of match embeddings, then after every batch moves each centroid a step "
    "(1 - decay) towards the mean of the embeddings assigned to it (an exponential moving average), so the "
    "clusters follow the embeddings as the 3x3 match conv is trained by gradients. The centroids themselves get no "
    "gradient. Here the embeddings of your picture are fixed and each step draws a batch of positions from them. "
    "Training uses decay 0.999 over thousands of batches; the default 0.9 here makes one step move a centroid "
    "about as far as ~105 training steps on the same data.")
RESEED = [("as the checkpoint was trained", "auto"), ("on", "on"), ("off", "off")]


def build(service_: Any, shared: Shared | None = None) -> None:
    inspector: InspectService = inspector_for(service_)
    gr.Markdown(LEARNABLE)
    src = source_panel(inspector, "kmeans", shared)
    with gr.Row():
        start = gr.Radio([("trained centroids", "trained"), ("fresh: K random embeddings, then k-means init", "fresh")],
                         value="trained", label="Start from", elem_id="kmeans-start")
        steps = gr.Slider(0, service.MAX_STEPS, value=12, step=1, label="EMA steps", elem_id="kmeans-steps")
    with gr.Row():
        # no minimum / maximum here: the service checks the values and answers with a message
        decay = gr.Number(value=0.9, label="EMA decay in [0, 1) (training: 0.999)", elem_id="kmeans-decay")
        batch = gr.Number(value=4096, precision=0, label=f"positions per step (batch, 1..{service.MAX_BATCH:,})",
                          elem_id="kmeans-batch")
        reseed = gr.Radio(RESEED, value="auto", label="Re-seed dead clusters (not in the paper)",
                          elem_id="kmeans-reseed")
        go = gr.Button("Run k-means", variant="primary", elem_id="kmeans-run")
    status = gr.Markdown(label="status", elem_id="kmeans-status")
    with gr.Row():
        with gr.Column():
            frame = gr.Image(label="Cluster of each LR position at this frame", format="png", interactive=False,
                             height=480, elem_id="kmeans-frame")
            which = gr.Slider(0, 1, value=0, step=1, label="frame", elem_id="kmeans-slider")
            caption = gr.Markdown(elem_id="kmeans-caption")
        occupancy = gr.Plot(label="Occupancy over the steps", elem_id="kmeans-occupancy")
    gallery = gr.Gallery(label="Every frame", columns=8, height=170, format="png", allow_preview=False,
                         elem_id="kmeans-gallery")
    data = gr.JSON(label="k-means data", visible=False)

    @gpu
    @reported(4, status=3)
    def run(image, scale, region, start, steps, decay, batch, reseed):
        """Frames (cluster maps with captions), the occupancy figure, the numbers and a status line."""
        if image is None:
            return [], None, None, "Upload an image or pick an example."
        reseed_dead = None if reseed in (None, "auto") else reseed == "on"
        insp, result = service.run(inspector, image, scale, region, start, steps, decay, batch, reseed_dead)
        training = inspector.models.get("lcoan", insp.scale).model.cfg.ema_decay
        first, last = result.frames[0], result.frames[-1]
        note = (f"{len(result.frames) - 1} steps on the {insp.size[1]}x{insp.size[0]} traced map "
                f"({insp.size[0] * insp.size[1]:,} embeddings, K = {result.num_clusters}): clusters used "
                f"{first.occupied} → {last.occupied}, mean cosine to the centroid {first.objective:.3f} → "
                f"{last.objective:.3f}. {insp.region.note}")
        return (views.frame_pictures(result, insp.image), views.occupancy_figure(result),
                service.payload(insp, result, training), note)

    def last_frame(frames):
        if not frames:
            return None, "", gr.update(maximum=1, value=0)
        n = len(frames) - 1
        return frames[n][0], frames[n][1], gr.update(maximum=max(n, 1), value=n)

    def show_frame(frames, index):
        if not frames:
            return gr.skip(), gr.skip()
        i = min(len(frames) - 1, max(0, int(index or 0)))
        return frames[i][0], frames[i][1]

    inputs = [*src.inputs, start, steps, decay, batch, reseed]
    outputs = [gallery, occupancy, data, status]
    gr.on([go.click], run, inputs=inputs, outputs=outputs, api_name="kmeans_live",
          api_description="LSP's spherical k-means with the training EMA update on the picture's match embeddings, "
                          "from the trained centroids or fresh: a cluster map per frame (with its numbers), the "
                          "occupancy over the steps, a JSON of every frame and a status line.").then(
        last_frame, inputs=gallery, outputs=[frame, caption, which], api_visibility="private")
    gr.on(src.triggers, run, inputs=inputs, outputs=outputs, api_visibility="private").then(
        last_frame, inputs=gallery, outputs=[frame, caption, which], api_visibility="private")
    which.release(show_frame, inputs=[gallery, which], outputs=[frame, caption], api_visibility="private",
                  show_progress="hidden")
