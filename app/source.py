"""The input panel of the "inside LCoA" tabs (image, scale, how large inputs are reduced) and its
"inspecting: NAME (WxH, x2, traced at ...)" line. Image and scale follow the session's
:class:`app.session.Shared` picture (the same as the Super-resolve tab's): a tab that is selected
catches up with it, so a picture chosen in one tab is the picture of all of them without computing
anything for tabs nobody is looking at.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from app.services.inspection import InspectService
from app.services.region import MAX_POSITIONS, choose_region

from .picture import PictureInput
from .session import Shared, file_path, image_size, inspecting_line

ROOT = Path(__file__).resolve().parents[1]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
REGION_CHOICES = [("downscale the whole image", "downscale"), ("centre crop, native resolution", "crop")]


def example_images() -> list[tuple[str, str]]:
    """Bundled example pictures as (path, title): the app's list (app.services.examples), else assets/examples/*."""
    try:
        from app.services.examples import available
        found = [(str(path), e.title) for e, path in available()]
    except ImportError:
        found = []
    if not found:
        folder = ROOT / "assets" / "examples"
        paths = sorted(p for p in folder.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
        found = [(str(p), p.stem.replace("_", " ")) for p in paths]
    return found


@dataclass
class Source:
    image: gr.Image
    scale: gr.Radio
    region: gr.Radio
    inspecting: gr.Markdown
    scale_set: gr.State  # bumped when the scale is set from the shared state (see Shared.link)

    @property
    def inputs(self) -> list[gr.components.Component]:
        return [self.image, self.scale, self.region]

    @property
    def triggers(self) -> list:
        """Events after which the tab's views must be recomputed."""
        return [self.image.change, self.scale.input, self.scale_set.change, self.region.change]


def traced_note(image: Any, region: str, verb: str = "traced") -> str | None:
    """"traced at WxH ..." for the inspecting line (reads the image's size only); ``verb``: what the tab
    does on that region (the Efficiency tab times a centre crop)."""
    size = image_size(file_path(image))
    if size is None:
        return None
    w, h = size
    r = choose_region(h, w, region or "downscale", MAX_POSITIONS)
    how = {"full": "whole", "downscale": "downscaled", "crop": "centre crop"}[r.mode]
    return f"{verb} at {r.size[1]}x{r.size[0]} LR, {how}"


def source_panel(inspector: InspectService, name: str, shared: Shared | None = None, examples: bool = True,
                 show_region: bool = True, region: str = "downscale", verb: str = "traced") -> Source:
    """Build the input row inside the current tab and link it to the session's shared picture/scale.

    ``name`` prefixes the components' elem_ids (``<name>-source-image``, ...). ``region``: how large inputs
    are reduced (the choice's start value; the only one when ``show_region`` is False), ``verb``: what the
    inspecting line says the tab does on that region ("traced", "timed").
    """
    scales = inspector.scales()
    default = shared.default_scale if shared is not None and shared.default_scale in scales else (
        scales[0] if scales else None)
    inspecting = gr.Markdown(inspecting_line(None, None), elem_id=f"{name}-inspecting")
    with gr.Row(equal_height=False):
        image = PictureInput(label="Low-resolution input (the model's input)", type="filepath",
                             sources=["upload", "clipboard"], height=220, scale=2, elem_id=f"{name}-source-image")
        with gr.Column(scale=1, min_width=220):
            # a Radio, not a Dropdown: a Dropdown of int values set from the shared state kept firing
            # .change in Gradio 6.31 (an endless re-run: the Shared-similarity "hang" of issue 15)
            scale = gr.Radio([(f"x{s}", s) for s in scales], value=default,
                             label="Scale (checkpoint)", interactive=bool(scales), elem_id=f"{name}-source-scale")
            region_choice = gr.Radio(REGION_CHOICES, value=region,
                              label=f"Inputs above {MAX_POSITIONS:,} LR positions are traced on",
                              info="dense attention and per-query rows grow with N, so large inputs are reduced",
                              elem_id=f"{name}-source-region", visible=show_region)
            if not scales:
                gr.Markdown("**No LCoAN checkpoint is loaded on this server.** Set LCOAN_CHECKPOINTS or export "
                            "one (see README).")
    pictures = example_images() if examples else []
    if pictures:
        gr.Examples([[p] for p, _ in pictures], inputs=[image], label="Examples", examples_per_page=8,
                    example_labels=None)  # thumbnails of the pictures (labels would replace them)
    source = Source(image, scale, region_choice, inspecting, gr.State(0))
    if shared is not None:
        shared.link(image, scale, fallback=pictures[0][0] if pictures else None, scale_set=source.scale_set)

    def line(img, sc, rg):
        return inspecting_line(img, sc, traced_note(img, rg, verb) if img else None)

    gr.on(source.triggers, line, inputs=source.inputs, outputs=inspecting, api_visibility="private",
          show_progress="hidden", concurrency_limit=4, concurrency_id="shared-state")
    return source
