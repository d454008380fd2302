"""One picture and one scale for every tab.

:class:`Shared` is one per-session ``gr.State`` holding ``{"image": path, "name": original name,
"scale": int}``. A tab links its own image and scale components with :meth:`Shared.link`: a change
there is written to the state, and when the tab is selected it catches up with the state (only
then, so nothing is computed for tabs nobody looks at). :func:`inspecting_line` is the visible
"inspecting: NAME (WxH, ...)" line.

A new tab gets the object as the second argument of ``build(service, shared)`` (see
:mod:`app.ui`) and calls ``shared.link(image, scale)`` inside its ``gr.Tab``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from app.services.models import ServiceError


def file_path(value: Any) -> str | None:
    """The path of an image component's value (filepath string or Gradio file payload)."""
    if isinstance(value, dict):
        value = value.get("path")
    return str(value) if value else None


def display_name(value: Any) -> str | None:
    """The name a user recognises: the original file name of an upload (never a server folder)."""
    if isinstance(value, dict):
        name = value.get("orig_name") or value.get("path")
    else:
        name = value
    return Path(str(name)).name if name else None


def image_size(path: str | None) -> tuple[int, int] | None:
    """(width, height) of an image file after EXIF orientation, or None when it cannot be read."""
    if not path:
        return None
    from lcoan.imaging.io import ImageError, load_image
    try:
        return load_image(Path(path)).size
    except (ImageError, OSError, ServiceError):
        return None


@dataclass
class Shared:
    """The session's shared picture and scale (see the module docstring)."""

    state: gr.State
    default_scale: int | None

    @classmethod
    def create(cls, default_scale: int | None) -> Shared:
        """Make the state (call inside the Blocks, before the tabs)."""
        return cls(gr.State({"image": None, "name": None, "scale": default_scale}), default_scale)

    def link(self, image: gr.components.Component, scale: gr.components.Component | None = None,
             tab: Any = None, fallback: str | None = None, scale_set: gr.State | None = None) -> None:
        """Write ``image`` / ``scale`` changes to the state; on ``tab`` selection (default: the
        enclosing tab) set them from the state when they differ, or to ``fallback`` (a first example)
        when neither the state nor the tab has a picture yet.

        ``scale_set`` (a ``gr.State`` holding a counter) is bumped when the scale is set from the state:
        listen to ``scale.input`` plus ``scale_set.change`` rather than to ``scale.change``, which
        in Gradio 6.31 kept firing after a programmatic update to x4 (an endless re-run, the
        Shared-similarity "hang" of issue 15; tests/test_app_browser_flows.py)."""
        tab = gr.context.Context.block if tab is None else tab

        def remember(state: dict, img: Any, sc: Any = None) -> dict:
            new = dict(state or {})
            if img is not None:
                new["image"], new["name"] = file_path(img), display_name(img)
            if sc is not None:
                new["scale"] = sc
            return new

        inputs = [self.state, image] + ([scale] if scale is not None else [])
        scale_trigger = None if scale is None else (scale.input if scale_set is not None else scale.change)
        triggers = [image.change] + ([scale_trigger] if scale_trigger is not None else [])
        gr.on(triggers, remember, inputs=inputs, outputs=self.state, api_visibility="private",
              show_progress="hidden", concurrency_limit=4, concurrency_id="shared-state")
        if not isinstance(tab, gr.Tab):
            return
        outputs = [image] + ([scale] if scale is not None else []) + ([scale_set] if scale_set is not None else [])
        if scale_set is not None:
            inputs = [*inputs, scale_set]

        def catch_up(state: dict, img: Any, sc: Any = None, count: int | None = None):
            state = state or {}
            want_img = state.get("image") or (fallback if not img else None)
            new_img = want_img if want_img and want_img != file_path(img) else gr.skip()
            if scale is None:
                return new_img
            want_sc = state.get("scale")
            changed = want_sc is not None and want_sc != sc
            new_sc = want_sc if changed else gr.skip()
            if scale_set is None:
                return new_img, new_sc
            return new_img, new_sc, ((count or 0) + 1 if changed else gr.skip())

        tab.select(catch_up, inputs=inputs, outputs=outputs, api_visibility="private", show_progress="hidden",
                   concurrency_limit=4, concurrency_id="shared-state")


def inspecting_line(image: Any, scale: Any, traced: str | None = None) -> str:
    """``inspecting: NAME (WxH, x2, traced at ...)`` for the top of a tab, or a prompt when empty."""
    if not image:
        return "*No picture yet: upload one or pick an example (it becomes the picture of every tab).*"
    name = display_name(image) or "image"
    size = image_size(file_path(image))
    parts = [f"{size[0]}x{size[1]}" if size else "unreadable"]
    if scale:
        parts.append(f"x{int(scale)}")
    if traced:
        parts.append(traced)
    return f"**inspecting: {name}** ({', '.join(parts)})"
