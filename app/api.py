"""Named API endpoints for gradio_client (documented in docs/api.md).

``/superresolve(image, scale, method) -> (png, report)`` and
``/compare(image, scale, mode, include_dense) -> (bicubic_png, lcoan_png, dense_png, report)``.

They live on hidden components, apart from the UI's events, so their signatures stay small and
stable; they share the UI's concurrency group, so the app never runs more heavy jobs at once than
``settings.concurrency_limit``. Errors are ``gr.Error`` messages (gradio_client raises them as
``AppError`` with the same text).
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from .compare import METHODS, MODES, compare, load_input, save_result
from .service import ModelService
from .tabs import guarded
from .tabs.superresolve import HEAVY, upload_name


def register(service: ModelService) -> None:
    """Add the endpoints to the Blocks being built (call inside ``with gr.Blocks()``)."""
    settings = service.settings

    @guarded
    def superresolve(image: Any, scale: Any, method: str):
        """Super-resolve a low-resolution image with one method; returns the PNG and a report."""
        loaded = load_input(image, settings.max_upload_bytes)
        c = compare(service, loaded, scale, "upscale", (method,))
        if method not in c.results:
            raise gr.Error(f"{method} did not run: {c.skipped.get(method, 'unavailable')}")
        return str(save_result(service, c, method, upload_name(image))), c.report()

    @guarded
    def compare_endpoint(image: Any, scale: Any, mode: str, include_dense: bool):
        """Bicubic vs LCoAN (vs dense NLA): PNG of each, and a report with times and PSNR/SSIM."""
        loaded = load_input(image, settings.max_upload_bytes)
        methods = METHODS if include_dense else ("bicubic", "lcoan")
        c = compare(service, loaded, scale, mode, methods)
        name = upload_name(image)
        files = [str(save_result(service, c, m, name)) if m in c.results else None for m in METHODS]
        return (*files, c.report())

    with gr.Column(visible=False):
        image = gr.File(label="image", type="filepath")
        scale = gr.Number(label="scale", value=4, precision=0)
        method = gr.Dropdown(list(METHODS), value="lcoan", label="method")
        mode = gr.Dropdown(list(MODES), value="upscale", label="mode")
        include_dense = gr.Checkbox(value=True, label="include_dense")
        png = gr.File(label="png")
        pngs = [gr.File(label=f"{m}_png") for m in METHODS]
        report = gr.JSON(label="report")
        sr_trigger = gr.Button("superresolve")
        cmp_trigger = gr.Button("compare")
    # preprocess=False: the functions get the upload as Gradio's file payload (already checked to be in
    # Gradio's upload folder) and read it with lcoan.io, as the tab does; gr.File's own preprocessing
    # would leave an empty temporary file in Gradio's cache on every call (never deleted). The other
    # inputs are checked by compare() itself.
    common = {"concurrency_id": HEAVY, "concurrency_limit": settings.concurrency_limit, "preprocess": False}
    sr_trigger.click(superresolve, [image, scale, method], [png, report], api_name="superresolve",
                     api_description="Super-resolve a low-resolution image (lossless PNG, alpha and 16-bit kept).",
                     **common)
    cmp_trigger.click(compare_endpoint, [image, scale, mode, include_dense], [*pngs, report], api_name="compare",
                      api_description="Bicubic vs LCoAN vs dense NLA; mode 'degrade' adds PSNR/SSIM.", **common)
