"""Super-resolve tab: upload or pick an example, choose scale and mode, compare bicubic / LCoAN /
dense NLA with a synchronised zoom, per-method times, PSNR/SSIM and a lossless PNG download.

Only layout and wiring: the work is :func:`app.compare.compare` (cached), the pictures are
:mod:`app.views.superresolve`. The upload is read by :func:`lcoan.io.load_image` itself (the event
skips Gradio's preprocessing), so 16-bit PNGs, alpha and EXIF orientation arrive intact and every
unreadable file gets the loader's own message as a ``gr.Error``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from app.tabs import guarded

from ..compare import LABELS, METHODS, MODES, Comparison, compare, load_input, lookup, save_result
from ..examples import available
from ..service import ModelService
from ..views.superresolve import crops, method_crop, with_box, zoom_box

HEAVY = "superresolve"  # concurrency group shared with the API endpoints (app/api.py)
VIEWS = [("Input (LR, nearest)", "input"), ("Bicubic", "bicubic"), ("LCoAN", "lcoan"),
         ("Dense NLA", "dense"), ("Reference (HR)", "reference")]


def upload_name(payload: Any) -> str | None:
    """The uploaded file's original name, from a Gradio file payload (dict) or a path."""
    if isinstance(payload, dict):
        return payload.get("orig_name") or payload.get("path")
    return None if payload is None else str(payload)


def summary(c: Comparison) -> str:
    p = c.prepared
    lh, lw = p.lr.shape[:2]
    sh, sw = p.source_size
    if p.mode == "degrade":
        head = (f"**x{p.scale}, degrade then restore**: reference {lw * p.scale}x{lh * p.scale} → "
                f"LR {lw}x{lh} (MATLAB bicubic) → restored {lw * p.scale}x{lh * p.scale}; scores are Y-channel "
                f"PSNR/SSIM with {p.scale} px borders shaved, as `lcoan.evaluate` computes them.")
    else:
        head = f"**x{p.scale}, upscale**: input {sw}x{sh} → {sw * p.scale}x{sh * p.scale}."
    times = ", ".join(f"{r.label} {r.seconds:.2f} s" for r in c.results.values())
    lines = [head, f"Time per method: {times}" + (" (cached: nothing was recomputed)." if c.cached else ".")]
    dense = c.results.get("dense")
    if dense is not None and dense.tiles > 1:
        lines.append(f"Dense NLA ran on {dense.tiles} overlapping {dense.tile}x{dense.tile} LR tiles: it is "
                     "quadratic in the number of pixels, so its attention sees one tile at a time here.")
    for method, why in c.skipped.items():
        lines.append(f"{LABELS[method]} not run: {why}.")
    if p.notes:
        lines.append("Input notes: " + "; ".join(p.notes) + ".")
    lines.append("Click the full result below to move the zoom region.")
    return "  \n".join(lines)


def _view(c: Comparison, name: str, fallback: str) -> str:
    names = {n for _, n in VIEWS if n in c.results or n == "input" or (n == "reference" and c.prepared.hr is not None)}
    return name if name in names else fallback


def render(c: Comparison, x: float | None, y: float | None, window: int, left: str, right: str):
    """(slider pair, gallery, full image with the box) for a zoom centred at SR pixel (x, y)."""
    box = zoom_box(c, x, y, int(window))
    left, right = _view(c, left, "bicubic"), _view(c, right, "lcoan")
    pair = (method_crop(c, left, box), method_crop(c, right, box))
    main = c.results["lcoan"]
    return pair, crops(c, box), with_box(main.rgb, main.alpha, box)


def build(service: ModelService) -> None:
    settings = service.settings
    scales = service.scales()
    has_dense = any(service.has("dense", s) for s in scales)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=320):
            image = gr.Image(label="Input image", type="filepath", image_mode=None, sources=["upload", "clipboard"],
                             format="png", height=300, elem_id="sr-input")
            examples = available()
            if examples:
                gr.Examples([[str(path)] for _, path in examples], inputs=[image],
                            example_labels=[f"{e.title}, {e.licence}" for e, _ in examples],
                            label="Examples (crops of scikit-image's sample photos; see assets/README.md)",
                            examples_per_page=6)
            scale = gr.Radio([(f"x{s}", s) for s in scales], value=max(scales) if scales else None,
                             label="Scale", interactive=bool(scales), elem_id="sr-scale")
            mode = gr.Radio([(label, key) for key, label in MODES.items()], value="degrade", label="Mode",
                            elem_id="sr-mode")
            with_dense = gr.Checkbox(value=has_dense, interactive=has_dense,
                                     label=f"Include the dense NLA baseline (quadratic: tiled above "
                                           f"{settings.dense_tile}x{settings.dense_tile} LR pixels)")
            run = gr.Button("Run", variant="primary", elem_id="sr-run", interactive=bool(scales))
            if not scales:
                gr.Markdown(f"**No LCoAN checkpoint found in `{service.folder}`**: export one there or set "
                            "LCOAN_CHECKPOINTS (see README).")
            gr.Markdown("**Size policy.** " + settings.size_policy(), elem_id="sr-policy")
        with gr.Column(scale=2):
            status = gr.Markdown("Upload an image or pick an example, then press **Run**.", elem_id="sr-status")
            table = gr.Dataframe(headers=["method", "time (s)", "PSNR (dB)", "SSIM", "how it ran"],
                                 datatype=["str", "number", "number", "number", "str"], interactive=False,
                                 label="Per-method time and scores (scores in Degrade then restore)",
                                 elem_id="sr-metrics", wrap=True)
            download = gr.File(label="LCoAN result: lossless PNG (alpha and 16-bit kept in Upscale mode)",
                               interactive=False, elem_id="sr-download")
            with gr.Row():
                left = gr.Dropdown(VIEWS, value="bicubic", label="Slider: left")
                right = gr.Dropdown(VIEWS, value="lcoan", label="Slider: right")
                window = gr.Slider(8, 128, value=32, step=8, label="Zoom window (LR pixels)")
            slider = gr.ImageSlider(label="Zoomed region (drag the handle)", format="png", elem_id="sr-slider",
                                    max_height=480)
            gallery = gr.Gallery(label="The same region in every view", format="png", columns=5, height=230,
                                 object_fit="contain", elem_id="sr-crops")
            full = gr.Image(label="LCoAN result: click to choose the zoom region", format="png",
                            interactive=False, height=420, elem_id="sr-full")
    state = gr.State(None)  # {"key": comparison key in the service cache, "x", "y"}: small, no arrays

    @guarded
    def on_run(payload, scale, mode, with_dense, window, left, right, progress=gr.Progress()):
        loaded = load_input(payload, settings.max_upload_bytes)
        methods = METHODS if with_dense else ("bicubic", "lcoan")
        c = compare(service, loaded, scale, mode, methods, progress=lambda f, what: progress(f, desc=what))
        name = upload_name(payload)
        png = save_result(service, c, "lcoan", Path(name).name if name else None)
        pair, gal, main = render(c, None, None, window, left, right)
        return summary(c), c.rows(), str(png), pair, gal, main, {"key": c.key, "x": None, "y": None}

    def cached(st: dict | None) -> Comparison:
        c = lookup(service, st["key"]) if st else None
        if c is None:
            raise gr.Error("No result to show yet (or it left the cache): press Run.")
        return c

    @guarded
    def on_select(st, window, left, right, evt: gr.SelectData):
        c = cached(st)
        x, y = (evt.index if isinstance(evt.index, (list, tuple)) and len(evt.index) == 2 else (None, None))
        return (*render(c, x, y, window, left, right), {**st, "x": x, "y": y})

    @guarded
    def on_view(st, window, left, right):
        if not st:
            return gr.skip(), gr.skip(), gr.skip()
        return render(cached(st), st.get("x"), st.get("y"), window, left, right)

    run.click(on_run, [image, scale, mode, with_dense, window, left, right],
              [status, table, download, slider, gallery, full, state], preprocess=False,
              api_visibility="private", concurrency_id=HEAVY, concurrency_limit=settings.concurrency_limit)
    full.select(on_select, [state, window, left, right], [slider, gallery, full, state],
                api_visibility="private", concurrency_id="sr-views", concurrency_limit=4)
    gr.on([window.release, left.change, right.change], on_view, [state, window, left, right],
          [slider, gallery, full], api_visibility="private", concurrency_id="sr-views", concurrency_limit=4)
