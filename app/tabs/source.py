"""The input panel of the "inside LCoA" tabs (image, scale, how large inputs are reduced), kept in
step across tabs: every panel writes its values to one per-session state, and a tab that is
selected catches up with it, so a picture chosen in one tab is the picture of all of them
without computing anything for tabs nobody is looking at.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr


from app.inspect import MAX_POSITIONS, InspectService

ROOT = Path(__file__).resolve().parents[2]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
REGION_CHOICES = [("downscale the whole image", "downscale"), ("centre crop, native resolution", "crop")]
_SHARED: dict[int, gr.State] = {}


def example_images() -> list[tuple[str, str]]:
    """Bundled example pictures as (path, title): the app's list (app.examples), else assets/examples/*."""
    try:
        from app.examples import available
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
    scale: gr.Dropdown
    region: gr.Radio

    @property
    def inputs(self) -> list[gr.components.Component]:
        return [self.image, self.scale, self.region]

    @property
    def triggers(self) -> list:
        """Events after which the tab's views must be recomputed."""
        return [self.image.change, self.scale.change, self.region.change]


def _shared_state() -> gr.State:
    root = gr.context.Context.root_block
    key = id(root)
    if key not in _SHARED or _SHARED[key] not in getattr(root, "blocks", {}).values():
        _SHARED[key] = gr.State(None)
    return _SHARED[key]


def source_panel(inspector: InspectService, name: str, examples: bool = True, show_region: bool = True) -> Source:
    """Build the input row inside the current tab and link it to the other tabs' panels.

    ``name`` prefixes the components' elem_ids (``<name>-source-image``, ...).
    """
    tab = gr.context.Context.block
    scales = inspector.scales()
    with gr.Row(equal_height=False):
        image = gr.Image(label="Low-resolution input (the model's input)", type="filepath",
                         sources=["upload", "clipboard"], height=220, scale=2, elem_id=f"{name}-source-image")
        with gr.Column(scale=1, min_width=220):
            scale = gr.Dropdown([(f"x{s}", s) for s in scales], value=scales[0] if scales else None,
                                label="Scale (checkpoint)", interactive=bool(scales), elem_id=f"{name}-source-scale")
            region = gr.Radio(REGION_CHOICES, value="downscale",
                              label=f"Inputs above {MAX_POSITIONS:,} LR positions are traced on",
                              info="dense attention and per-query rows grow with N, so large inputs are reduced",
                              elem_id=f"{name}-source-region", visible=show_region)
            if not scales:
                gr.Markdown(f"**No LCoAN checkpoint found in `{inspector.models.folder}`.** "
                            "Set LCOAN_CHECKPOINTS or export one (see README).")
    pictures = example_images() if examples else []
    if pictures:
        gr.Examples([[p] for p, _ in pictures], inputs=[image], label="Examples", examples_per_page=8,
                    example_labels=[t for _, t in pictures])
    source = Source(image, scale, region)
    _link(source, tab, pictures[0][0] if pictures else None)
    return source


def _link(source: Source, tab: Any, first_example: str | None) -> None:
    shared = _shared_state()

    def remember(image, scale, region):
        return {"image": image, "scale": scale, "region": region}

    gr.on(source.triggers, remember, inputs=source.inputs, outputs=shared, api_visibility="private",
          queue=False, show_progress="hidden")

    if not isinstance(tab, gr.Tab):
        return

    def catch_up(state, image, scale, region):
        if state is None or state.get("image") is None:
            if image is None and first_example:  # first visit: show something
                return first_example, gr.skip(), gr.skip()
            return gr.skip(), gr.skip(), gr.skip()
        if (state["image"], state["scale"], state["region"]) == (image, scale, region):
            return gr.skip(), gr.skip(), gr.skip()
        return state["image"], state["scale"], state["region"]

    tab.select(catch_up, inputs=[shared, *source.inputs], outputs=source.inputs, api_visibility="private",
               queue=False, show_progress="hidden")


