"""LSP and CoA step by step on the user's picture: eight steps, each one picture and two lines of text with
the tensor shapes, with next / previous. API: ``/walkthrough(image, scale, region, query_row, query_col)``."""
from __future__ import annotations

from typing import Any

import gradio as gr

from app.errors import gpu, reported
from app.services import walkthrough as service
from app.services.inspection import InspectService, inspector_for
from app.views.walkthrough import step_pictures

from ..session import Shared
from ..source import source_panel

TITLE = "LSP step by step"
STEPS = 8


def caption_markdown(caption: str, index: int) -> str:
    """'title\\nwhat\\nshapes' (a gallery caption) -> the step's Markdown."""
    title, _, rest = (caption or "").partition("\n")
    what, _, shapes = rest.partition("\n")
    return f"**Step {index + 1} of {STEPS} · {title.split('. ', 1)[-1]}**  \n{what}  \n`{shapes}`"


def pick(gallery: Any, index: int) -> tuple[Any, str]:
    """(picture, caption Markdown) of step ``index`` from the gallery's value."""
    item = gallery[index]
    path, caption = (item[0], item[1]) if isinstance(item, (tuple, list)) else (item, "")
    return path, caption_markdown(caption or "", index)


def build(service_: Any, shared: Shared | None = None) -> None:
    inspector: InspectService = inspector_for(service_)
    gr.Markdown("How LCoAN's attention is built, on your picture: the learnable sparse pattern (LSP) clusters the "
                "match embeddings, sorts positions by cluster and cuts the sequence into windows; collaborative "
                "attention (CoA) computes the softmax weights once and every residual group reuses them with its own "
                "values. Pick a query (row, col of the traced LR map) or leave -1 for the query whose attention "
                "reaches farthest, then step through with *Next* / *Previous*.")
    src = source_panel(inspector, "walkthrough", shared)
    with gr.Row():
        qy = gr.Number(label="query row (LR px; -1: the far-reaching query)", value=-1, precision=0,
                       elem_id="walkthrough-row")
        qx = gr.Number(label="query col (LR px; -1: the far-reaching query)", value=-1, precision=0,
                       elem_id="walkthrough-col")
        go = gr.Button("Walk through", variant="primary", elem_id="walkthrough-run")
    status = gr.Markdown(label="status", elem_id="walkthrough-status")
    caption = gr.Markdown(elem_id="walkthrough-caption")
    with gr.Row():
        prev = gr.Button("← Previous", elem_id="walkthrough-prev", size="sm")
        nxt = gr.Button("Next →", elem_id="walkthrough-next", size="sm")
    picture = gr.Image(label="This step", format="png", interactive=False, height=560, elem_id="walkthrough-step")
    gallery = gr.Gallery(label="All eight steps (pictures and captions)", columns=8, height=170, format="png",
                         allow_preview=False, elem_id="walkthrough-gallery")
    data = gr.JSON(label="Walkthrough data", visible=False)
    step = gr.State(0)

    @gpu
    @reported(3, status=2)
    def show(image, scale, region, query_row, query_col):
        """The eight steps for a query (-1: the far-reaching one): pictures with captions, data, status."""
        if image is None:
            return [], None, "Upload an image or pick an example."
        insp, wt = service.run(inspector, image, scale, region, query_row, query_col)
        pictures = step_pictures(wt, insp.image)
        y, x = wt.lsp.query
        note = (f"Query (row {y}, col {x}) of the {insp.size[1]}x{insp.size[0]} traced map. "
                f"{insp.region.note}")
        return list(zip(pictures, wt.captions())), service.payload(insp, wt), note

    def first(gallery_value):
        if not gallery_value:
            return None, "", 0
        return (*pick(gallery_value, 0), 0)

    def move(gallery_value, index, delta):
        if not gallery_value:
            return gr.skip(), gr.skip(), index
        index = min(len(gallery_value) - 1, max(0, int(index or 0) + delta))
        return (*pick(gallery_value, index), index)

    def show_selected(gallery_value, evt: gr.SelectData):
        return move(gallery_value, evt.index, 0)

    inputs = [*src.inputs, qy, qx]
    gr.on([go.click, qy.submit, qx.submit], show, inputs=inputs, outputs=[gallery, data, status],
          api_name="walkthrough",
          api_description="LSP and CoA step by step on the picture: eight step pictures with captions (title, what it "
                          "shows, tensor shapes) for a query (row, col of the traced LR map; -1: the far-reaching "
                          "query), a JSON of the numbers and a status line.").then(
        first, inputs=gallery, outputs=[picture, caption, step], api_visibility="private")
    gr.on(src.triggers, show, inputs=inputs, outputs=[gallery, data, status], api_visibility="private").then(
        first, inputs=gallery, outputs=[picture, caption, step], api_visibility="private")
    prev.click(lambda g, i: move(g, i, -1), inputs=[gallery, step], outputs=[picture, caption, step],
               api_visibility="private", show_progress="hidden")
    nxt.click(lambda g, i: move(g, i, 1), inputs=[gallery, step], outputs=[picture, caption, step],
              api_visibility="private", show_progress="hidden")
    gallery.select(show_selected, inputs=gallery, outputs=[picture, caption, step], api_visibility="private",
                   show_progress="hidden")
