"""Super-resolve tab: upload any photo (or pick an example); bicubic and LCoAN run over the whole image
(LCoAN tiled, with a live progress bar) and stream in as each finishes; no attention and the dense
NLA baseline follow on a region the user picks by clicking the input or the result. Per-method
times, output size, PSNR/SSIM in *Degrade then restore*, a synchronised zoom and a lossless PNG.

Only layout and wiring: the work is :func:`app.services.superresolve.compare_steps` (cached), the pictures are
:mod:`app.views.superresolve`. The upload is read by :func:`lcoan.imaging.io.load_image` itself (the event
skips Gradio's preprocessing), so 16-bit PNGs, alpha and EXIF orientation arrive intact. A refused
request shows one message in the status line and a toast (:func:`app.errors.reported`).
"""
from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import gradio as gr

from app.errors import gpu, reported

from ..picture import PictureInput
from ..services.examples import available
from ..services.models import ModelService, ServiceError
from ..services.superresolve import (
    LABELS,
    METHODS,
    MODES,
    REGION,
    Comparison,
    compare_steps,
    load_input,
    lookup,
    save_result,
)
from ..session import Shared, display_name
from ..views.superresolve import crops, method_crop, preview, preview_factor

WRITER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sr-png")  # result PNGs, off the event's path
HEAVY = "superresolve"  # concurrency group shared with the API endpoints (app/api.py)
VIEWS = [("Input (LR, nearest)", "input"), *((LABELS[m], m) for m in METHODS), ("Reference (HR)", "reference")]
DOWNSCALE = [("no", 0), ("longest side 2048 px", 2048), ("longest side 1024 px", 1024), ("longest side 512 px", 512)]
HEADERS = {"degrade": ["method", "ran on", "time (s)", "PSNR region (dB)", "SSIM region", "PSNR whole (dB)",
                       "how it ran"],
           "upscale": ["method", "ran on", "time (s)", "how it ran"]}


def upload_name(payload: Any) -> str | None:
    """The uploaded file's original name (no folders), from a Gradio file payload (dict) or a path."""
    return display_name(payload)


WIDTHS = {"degrade": ["13%", "12%", "8%", "11%", "9%", "11%", "36%"], "upscale": ["16%", "15%", "10%", "59%"]}


def table(c: Comparison) -> dict:
    """The metrics table as a Dataframe update: the score columns only where there are scores, column
    widths that fit the headers (no one-letter-per-line headers)."""
    rows = c.rows()
    if c.prepared.mode == "upscale":
        rows = [[r[0], r[1], r[2], r[6]] for r in rows]
    return gr.update(value={"headers": HEADERS[c.prepared.mode], "data": rows},
                     column_widths=WIDTHS[c.prepared.mode])


def summary(c: Comparison) -> str:
    """The status line: what was done, sizes, times, the region, notes."""
    p = c.prepared
    lh, lw = p.lr.shape[:2]
    sh, sw = p.source_size
    ow, oh = c.output_size
    if p.mode == "degrade":
        head = (f"**x{p.scale}, degrade then restore**: reference {lw * p.scale}x{lh * p.scale} → LR {lw}x{lh} "
                f"(MATLAB bicubic) → restored **{ow}x{oh}**; scores are Y-channel PSNR/SSIM with {p.scale} px "
                "borders shaved, as `lcoan.evaluate` computes them.")
    else:
        head = f"**x{p.scale}, upscale**: input {sw}x{sh}" + (f" (used at {lw}x{lh})" if (lh, lw) != (sh, sw) else "")
        head += f" → output **{ow}x{oh}**."
    times = ", ".join(f"{r.label} {r.seconds:.1f} s" for r in c.results.values())
    lines = [head, f"Time: {times}" + (" (cached: nothing was recomputed)." if c.cached else ".")]
    b = c.box
    lines.append(f"Region compared: {b.w}x{b.h} LR pixels at ({b.x0}, {b.y0}) (yellow box). Bicubic and LCoAN "
                 "ran on the whole image; no attention and dense NLA on this region only (dense is quadratic in "
                 "the pixels). Click the input or the result to move it.")
    if c.pending:
        lines.append("Still running: " + ", ".join(LABELS[m] for m in c.pending) + "…")
    for method, why in c.skipped.items():
        lines.append(f"{LABELS[method]} not run: {why}.")
    if p.notes:
        lines.append("Input notes: " + "; ".join(p.notes) + ".")
    return "  \n".join(lines)


def _view(c: Comparison, name: str, fallback: str) -> str:
    ok = name in c.results or name == "input" or (name == "reference" and c.prepared.hr is not None)
    return name if ok else (fallback if fallback in c.results else "input")


def render(c: Comparison, left: str, right: str):
    """(slider pair, gallery, preview of the whole result) of a comparison."""
    left, right = _view(c, left, "bicubic"), _view(c, right, "lcoan")
    whole = [m for m in ("lcoan", "bicubic") if m in c.results and c.results[m].box is None]
    full = preview(c, whole[0]) if whole else None  # only region results yet: no whole picture to show
    return (method_crop(c, left), method_crop(c, right)), crops(c), full


def served(service: ModelService, pair, gal, full):
    """The pictures of :func:`render` as PNG paths (:meth:`OutputDir.save_view`), not PIL images: each
    streamed step sends the unchanged ones again, and Gradio rewrote its cached file of a PIL image in
    place while the browser was still fetching it (a short read; "Too much data for declared
    Content-Length" in the server log). A path is copied into Gradio's cache only when new, atomically."""
    save = service.outputs.save_view
    pair = None if pair is None else tuple(save(img, "zoom") for img in pair)
    gal = [(save(img, "region"), caption) for img, caption in gal]
    return pair, gal, None if full is None else save(full, "whole_result")


def default_scale(scales: list[int]) -> int | None:
    """x2 when there is one (what a photo user expects), else the smallest."""
    return 2 if 2 in scales else (min(scales) if scales else None)


def build(service: ModelService, shared: Shared | None = None) -> None:
    settings = service.settings
    scales = service.scales()
    has_baselines = any(service.has(m, s) for m in REGION for s in scales)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=320):
            image = PictureInput(label="Input image (click it to pick the comparison region)", type="filepath",
                                 image_mode=None, sources=["upload", "clipboard"], format="png", height=300,
                                 elem_id="sr-input")
            examples = available()
            if examples:
                gr.Examples([[str(path)] for _, path in examples], inputs=[image],
                            label="Examples (crops of scikit-image's sample photos; licences in assets/README.md)",
                            examples_per_page=6)
            scale = gr.Radio([(f"x{s}", s) for s in scales], value=default_scale(scales), label="Scale",
                             interactive=bool(scales), elem_id="sr-scale")
            mode = gr.Radio([(label, key) for key, label in MODES.items()], value="upscale", label="Mode",
                            elem_id="sr-mode")
            downscale = gr.Dropdown(DOWNSCALE, value=0, label="Downscale first (faster on large photos)",
                                    elem_id="sr-downscale")
            side = gr.Slider(16, settings.dense_tile, value=min(64, settings.dense_tile), step=8,
                             label="Region side (LR pixels) for the zoom, no attention and dense NLA",
                             elem_id="sr-side")
            with_baselines = gr.Checkbox(value=has_baselines, interactive=has_baselines,
                                         label="Compare on the region: no attention and dense NLA",
                                         elem_id="sr-baselines")
            run = gr.Button("Run", variant="primary", elem_id="sr-run", interactive=bool(scales))
            if not scales:
                gr.Markdown("**No LCoAN checkpoint is loaded on this server**: export one into its checkpoint "
                            "folder or set LCOAN_CHECKPOINTS (see README).")
            gr.Markdown("**Size policy.** " + settings.size_policy(), elem_id="sr-policy")
        with gr.Column(scale=2):
            status = gr.Markdown("Upload an image or pick an example, then press **Run**.", elem_id="sr-status")
            metrics = gr.Dataframe(value={"headers": HEADERS["upscale"], "data": []}, interactive=False,
                                   label="Per-method time and scores (scores in Degrade then restore)",
                                   elem_id="sr-metrics", wrap=True, column_widths=WIDTHS["upscale"])
            download = gr.File(label="LCoAN result, whole image: lossless PNG (alpha and 16-bit kept in Upscale)",
                               interactive=False, elem_id="sr-download")
            with gr.Row():
                left = gr.Dropdown(VIEWS, value="bicubic", label="Slider: left")
                right = gr.Dropdown(VIEWS, value="lcoan", label="Slider: right")
            slider = gr.ImageSlider(label="The region, zoomed (drag the handle)", format="png", elem_id="sr-slider",
                                    max_height=480)
            gallery = gr.Gallery(label="The region in every view", format="png", columns=3, height="auto",
                                 object_fit="contain", elem_id="sr-crops")
            full = gr.Image(label="Whole result (LCoAN): click to move the region", format="png",
                            interactive=False, height=480, elem_id="sr-full")
    state = gr.State(None)  # {"key", "centre": (x, y) LR, "preview": display px per SR px}: small, no arrays
    outputs = [status, metrics, download, slider, gallery, full, state]

    def cleared(text: str) -> tuple:
        """Every output emptied (no result of an earlier image or run stays on the page), ``text`` in the status."""
        return (text, gr.update(value={"headers": HEADERS["upscale"], "data": []}), None, None, [], None, None)

    def steps(payload, scale, mode, downscale, side, with_baselines, left, right, centre,
              progress, clear: bool = False) -> Iterator[tuple]:
        if clear:  # a new run: the previous results go at once, before anything can fail
            yield cleared("Working: bicubic and the region first, then LCoAN on the whole image (progress below).")
        loaded = load_input(payload, settings.max_upload_bytes)
        methods = METHODS if with_baselines else ("bicubic", "lcoan")
        png = None  # the LCoAN PNG, written in the background while the page already shows the result
        for c in compare_steps(service, loaded, scale, mode, methods, centre=centre, region_side=side,
                               downscale_to=downscale, progress=lambda f, what: progress(f, desc=what)):
            if png is None and "lcoan" in c.results:
                png = WRITER.submit(save_result, service, c, "lcoan", upload_name(payload))
            pair, gal, main = served(service, *render(c, left, right))
            st = {"key": c.key, "centre": centre, "preview": preview_factor(c)}  # centre: fractions
            text = summary(c) + ("  \nWriting the lossless PNG for the download…" if png and not png.done() else "")
            yield text, table(c), gr.skip(), pair, gal, main, st
        if png is not None:  # the path only once the file is complete (save_image: temporary name, then rename)
            yield summary(c), gr.skip(), str(png.result()), gr.skip(), gr.skip(), gr.skip(), gr.skip()

    @gpu
    @reported(len(outputs))
    def on_run(payload, scale, mode, downscale, side, with_baselines, left, right, progress=gr.Progress()):
        yield from steps(payload, scale, mode, downscale, side, with_baselines, left, right, None, progress,
                         clear=True)

    def fraction(index: Any, width: float, height: float) -> tuple[float, float]:
        """A click's (x, y) in picture pixels -> (x, y) as fractions of the picture's width and height."""
        if not isinstance(index, (list, tuple)) or len(index) != 2 or width <= 0 or height <= 0:
            raise ServiceError("Click inside the picture to pick the region.")
        x, y = (float(v) for v in index)
        return min(max(x / width, 0.0), 1.0), min(max(y / height, 0.0), 1.0)

    # A click's coordinates reach the work through ``click`` (set by disable_run_keep_click, the event's first
    # step): the work runs in a .then(), and Gradio gives a .then() no event data (it got None, so a click on
    # the input or the result never moved the region since Run is disabled first)
    @gpu
    @reported(len(outputs))
    def on_pick_input(payload, scale, mode, downscale, side, with_baselines, left, right, index,
                      progress=gr.Progress()):
        if index is None:  # a select event with no data (the page sends some, e.g. after Run): nothing to do
            yield tuple(gr.skip() for _ in outputs)
            return
        w, h = load_input(payload, settings.max_upload_bytes).size
        centre = fraction(index, w, h)
        yield from steps(payload, scale, mode, downscale, side, with_baselines, left, right, centre, progress)

    @gpu
    @reported(len(outputs))
    def on_pick_result(payload, scale, mode, downscale, side, with_baselines, left, right, st, index,
                       progress=gr.Progress()):
        if index is None:
            yield tuple(gr.skip() for _ in outputs)
            return
        c = lookup(service, st["key"]) if st else None
        if c is None:
            raise ServiceError("No result to click on yet (or it left the cache): press Run.")
        f = st.get("preview") or 1.0
        ow, oh = c.output_size
        centre = fraction(index, ow * f, oh * f)
        yield from steps(payload, scale, mode, downscale, side, with_baselines, left, right, centre, progress)

    @reported(3, status=2)
    def on_view(st, left, right):
        c = lookup(service, st["key"]) if st else None
        if c is None:
            return gr.skip(), gr.skip(), gr.skip()
        left, right = _view(c, left, "bicubic"), _view(c, right, "lcoan")
        pair, gal, _ = served(service, (method_crop(c, left), method_crop(c, right)), crops(c), None)
        return pair, gal, gr.skip()

    inputs = [image, scale, mode, downscale, side, with_baselines, left, right]
    # one progress bar, on the status line: the results already shown stay visible while the rest streams in
    heavy = {"concurrency_id": HEAVY, "concurrency_limit": settings.concurrency_limit, "api_visibility": "private",
             "preprocess": False, "show_progress_on": [status]}
    # Run (and the clicks that re-run) is disabled from the press until the job's last output, queue wait
    # included; these toggles and the clearing are instant and skip the queue (tests/test_app_limits.py)
    def disable_run():
        return gr.update(interactive=False)

    def disable_run_keep_click(evt: gr.EventData):
        """Run disabled, and the click's (x, y) kept for the .then() that does the work (None: no data)."""
        data = getattr(evt, "_data", None)
        index = data.get("index") if isinstance(data, dict) else None
        return gr.update(interactive=False), index if isinstance(index, (list, tuple)) else None

    def enable_run():
        return gr.update(interactive=bool(scales))

    def clear_results():
        return cleared("New image: press **Run**.")

    quick = {"queue": False, "api_visibility": "private", "show_progress": "hidden"}
    click = gr.State(None)  # the last click's (x, y) in picture pixels, for on_pick_input / on_pick_result
    run.click(disable_run, None, run, **quick).then(on_run, inputs, outputs, **heavy).then(
        enable_run, None, run, **quick)
    for trigger, fn, ins in ((image.select, on_pick_input, [*inputs, click]),
                             (full.select, on_pick_result, [*inputs, state, click])):
        trigger(disable_run_keep_click, None, [run, click], **quick).then(fn, ins, outputs, **heavy).then(
            enable_run, None, run, **quick)
    image.change(clear_results, None, outputs, **quick)  # a new picture: the previous one's results leave the page
    gr.on([left.change, right.change], on_view, [state, left, right], [slider, gallery, status],
          api_visibility="private", concurrency_id="sr-views", concurrency_limit=4)
    if shared is not None:
        shared.link(image, scale)
