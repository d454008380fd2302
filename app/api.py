"""Named API endpoints for gradio_client (documented in docs/api.md).

``/superresolve(image, scale, method) -> (png, report)`` (bicubic or LCoAN on the whole image) and
``/compare(image, scale, mode, include_baselines, region_x, region_y, region_side, downscale_to) ->
(bicubic_png, lcoan_png, none_png, dense_png, report)``: bicubic and LCoAN on the whole image, no
attention and dense NLA on the region (centre given as fractions of the width and height).

They live on hidden components, apart from the UI's events, so their signatures stay small and
stable; they share the UI's concurrency group, so the app never runs more heavy jobs at once than
``settings.concurrency_limit``. Errors are ``gr.Error`` messages (gradio_client raises them as
``AppError`` with the same text).
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from .errors import gpu, guarded
from .services.models import ModelService, ServiceError
from .services.superresolve import METHODS, MODES, WHOLE, compare, load_input, save_result
from .tabs.superresolve import HEAVY, upload_name


def register(service: ModelService) -> None:
    """Add the endpoints to the Blocks being built (call inside ``with gr.Blocks()``)."""
    settings = service.settings

    @gpu
    @guarded
    def superresolve(image: Any, scale: Any, method: str):
        """Super-resolve a low-resolution image with one method; returns the PNG and a report."""
        if method not in WHOLE:
            raise ServiceError(f"/superresolve runs {' or '.join(WHOLE)} on the whole image; {method!r} runs on "
                               "a region only: use /compare.")
        loaded = load_input(image, settings.max_upload_bytes)
        c = compare(service, loaded, scale, "upscale", (method,))
        if method not in c.results:
            raise gr.Error(f"{method} did not run: {c.skipped.get(method, 'unavailable')}")
        return str(save_result(service, c, method, upload_name(image))), c.report()

    @gpu
    @guarded
    def compare_endpoint(image: Any, scale: Any, mode: str, include_baselines: bool, region_x: float,
                         region_y: float, region_side: int, downscale_to: int):
        """Bicubic, LCoAN (whole image), no attention and dense NLA (region): PNG of each and a report."""
        loaded = load_input(image, settings.max_upload_bytes)
        methods = METHODS if include_baselines else WHOLE
        c = compare(service, loaded, scale, mode, methods, centre=(region_x, region_y), region_side=region_side,
                    downscale_to=downscale_to)
        name = upload_name(image)
        files = [str(save_result(service, c, m, name)) if m in c.results else None for m in METHODS]
        return (*files, c.report())

    with gr.Column(visible=False):
        image = gr.File(label="image", type="filepath")
        scale = gr.Number(label="scale", value=2, precision=0)
        method = gr.Dropdown(list(WHOLE), value="lcoan", label="method")
        mode = gr.Dropdown(list(MODES), value="upscale", label="mode")
        include_baselines = gr.Checkbox(value=True, label="include_baselines")
        region_x = gr.Number(value=0.5, label="region_x", minimum=0, maximum=1)
        region_y = gr.Number(value=0.5, label="region_y", minimum=0, maximum=1)
        region_side = gr.Number(value=settings.dense_tile, label="region_side", precision=0)
        downscale_to = gr.Number(value=0, label="downscale_to", precision=0, minimum=0)
        png = gr.File(label="png")
        pngs = [gr.File(label=f"{m}_png") for m in METHODS]
        report = gr.JSON(label="report")
        sr_trigger = gr.Button("superresolve")
        cmp_trigger = gr.Button("compare")
    # preprocess=False: the functions get the upload as Gradio's file payload (already checked to be in
    # Gradio's upload folder) and read it with lcoan.imaging.io, as the tab does; gr.File's own preprocessing
    # would leave an empty temporary file in Gradio's cache on every call (never deleted). The other
    # inputs are checked by compare() itself.
    common = {"concurrency_id": HEAVY, "concurrency_limit": settings.concurrency_limit, "preprocess": False}
    sr_trigger.click(superresolve, [image, scale, method], [png, report], api_name="superresolve",
                     api_description="Super-resolve a low-resolution image of any size with bicubic or LCoAN "
                                     "(lossless PNG, alpha and 16-bit kept).",
                     **common)
    cmp_trigger.click(compare_endpoint, [image, scale, mode, include_baselines, region_x, region_y, region_side,
                                         downscale_to], [*pngs, report], api_name="compare",
                      api_description="Bicubic and LCoAN on the whole image, no attention and dense NLA on a region "
                                      "(centre region_x, region_y as fractions; side in LR pixels); mode 'degrade' "
                                      "adds PSNR/SSIM; downscale_to > 0 shrinks the input's longest side first.",
                      **common)
