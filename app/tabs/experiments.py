"""Experiments tab: run experiments on the shipped models with your own picture. The window W and
the number of k-means rounds as inference-time knobs (chart of non-local time, PSNR and recall
against W), where attention changes the output (ablation map), which input pixels each network
uses for one output patch (LAM), and the download of a traced pass.

Only layout and wiring: the work is :mod:`app.services.experiments`, the figures :mod:`app.views.experiments`.
Every view also has a named API endpoint (``/knobs``, ``/ablation``, ``/attribution``, ``/trace``) on
hidden components with small, stable signatures; they share one concurrency group with the UI's
heavy events.
"""
from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np

from app.errors import guarded, reported
from app.services.region import REGION_MODES
from app.views import experiments as views
from app.views.common import colormap, enlarge, pil

from ..picture import PictureInput
from ..services.experiments import (
    FAR_LR,
    KNOB_SIDE,
    LAM_KINDS,
    LAM_SIDE,
    MAX_SIDE,
    MAX_STEPS,
    ExperimentService,
    Pair,
    experiments_for,
)
from ..session import Shared, display_name, file_path, inspecting_line

TITLE = "Experiments"
HEAVY = "experiments"
LAM_FACTOR = 4  # display pixels per LR pixel in the attribution images


def sweep_report(pair: Pair, sweep) -> dict[str, Any]:
    first = sweep.first_window_with_recall(0.9)
    return {"note": pair.note, "lr_size": list(sweep.lr_size), "positions": sweep.n,
            "trained_window": sweep.trained_window, "rounds": sweep.rounds, "trained_rounds": sweep.trained_rounds,
            "trained_model": sweep.rounds == sweep.trained_rounds, "queries": sweep.queries,
            "recall_0.9_window": None if first is None else first.window,
            "points": [{"window": p.window, "effective_window": p.effective, "psnr": round(p.psnr, 4),
                        "recall": round(p.recall, 4), "nonlocal_ms": round(p.seconds * 1000, 2), "trained": p.trained}
                       for p in sweep.points]}


def heat_png(service, stem: str, values: np.ndarray, top: float) -> str:
    """A heat map (inferno, 0..top) saved as a PNG for download; returns its path."""
    return str(service.outputs.save_png(stem, colormap(values / max(top, 1e-30))))


def crop_preview(pair: Pair, box) -> Any:
    """The LR crop, enlarged, with the output patch outlined (cyan), for choosing the patch."""
    return pil(views.outline(enlarge(pair.lr, LAM_FACTOR), box, pair.scale, LAM_FACTOR))


def build(service, shared: Shared) -> None:
    exps: ExperimentService = experiments_for(service)
    scales = service.scales()
    gr.Markdown(
        "Experiments with the shipped models on **your** picture. Here the picture is the **high-resolution "
        "reference**: its centre crop is downscaled (MATLAB bicubic) and restored, so every setting gets a PSNR "
        "(degrade then restore). Only the trace download uses the picture as the LR input, like the inspect tabs.")
    line = gr.Markdown(inspecting_line(None, None), elem_id="experiments-inspecting")
    with gr.Row(equal_height=False):
        image = PictureInput(label="Picture (the high-resolution reference here)", type="filepath",
                             sources=["upload", "clipboard"], height=220, scale=2, elem_id="experiments-source-image")
        with gr.Column(scale=1, min_width=220):
            scale = gr.Dropdown([(f"x{s}", s) for s in scales],
                                value=shared.default_scale or (scales[0] if scales else None),
                                label="Scale (checkpoint)", interactive=bool(scales),
                                elem_id="experiments-source-scale")
    shared.link(image, scale)
    light = {"concurrency_id": "experiments-light", "concurrency_limit": 2, "show_progress": "hidden",
             "api_visibility": "private"}  # quick views: queued and bounded, never behind a heavy job
    image.change(lambda i, s: inspecting_line(i, s), [image, scale], line, **light)
    status = gr.Markdown(elem_id="experiments-status")
    common = {"concurrency_id": HEAVY, "concurrency_limit": service.settings.concurrency_limit}

    # ------------------------------------------------------------------ knobs
    with gr.Accordion("1 · Knobs: window W and k-means rounds", open=True, elem_id="experiments-knobs-block"):
        gr.Markdown("Each query attends to its window of W cluster-sorted positions and the two neighbouring "
                    "windows (3W keys). W ≥ N puts everything in one window: dense softmax over the same embeddings. "
                    "The weights stay the trained ones; only W (and the rounds) change. No K knob: the K centroids "
                    "are what the embedding was trained against, so another K would be another model.")
        with gr.Row():
            rounds = gr.Slider(1, 3, value=1, step=1, label="k-means rounds (trained: 1; more = k-means on this "
                               "image, NOT the trained model)", elem_id="experiments-rounds")
            side = gr.Slider(32, MAX_SIDE, value=KNOB_SIDE, step=8,
                             label="crop side (LR pixels) for sweep and ablation")
            knob_go = gr.Button("Run the window sweep", variant="primary", elem_id="experiments-knobs-run")
        with gr.Row():
            window = gr.Number(value=384, precision=0, label="window W (the knob: positions per window; the "
                               "trained W and W ≥ N are shown beside it)", elem_id="experiments-window")
            window_go = gr.Button("Run at this W", elem_id="experiments-window-run")
        knob_info = gr.Markdown(elem_id="experiments-knobs-info")
        knob_plot = gr.Plot(label="Non-local time, PSNR and recall against W", elem_id="experiments-knobs-plot")

    # ------------------------------------------------------------------ ablation
    with gr.Accordion("2 · Ablation map: where does attention change the output?", open=True,
                      elem_id="experiments-ablation-block"):
        abl_go = gr.Button("Switch the attention branch off and compare", elem_id="experiments-ablation-run")
        abl_info = gr.Markdown(elem_id="experiments-ablation-info")
        abl_plot = gr.Plot(label="|SR with attention − SR without|", elem_id="experiments-ablation-plot")

    # ------------------------------------------------------------------ attribution
    with gr.Accordion("3 · Attribution (LAM): which input pixels make one output patch?", open=True,
                      elem_id="experiments-lam-block"):
        gr.Markdown(f"On the centre {LAM_SIDE}x{LAM_SIDE} LR crop. Click the preview to move the patch (or type its "
                    "top-left corner in restored-output pixels; -1 centres it). Each model takes about "
                    f"steps x one forward and backward pass: tens of seconds on a busy CPU.")
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                preview = gr.Image(label="LR crop with the output patch (click to move it)", interactive=False,
                                   height=280, elem_id="experiments-lam-preview")
            with gr.Column(scale=2):
                with gr.Row():
                    row = gr.Number(value=-1, precision=0, label="patch row (output px)", elem_id="experiments-lam-row")
                    col = gr.Number(value=-1, precision=0, label="patch col (output px)", elem_id="experiments-lam-col")
                    size = gr.Slider(4, 32, value=16, step=2, label="patch size (output px)")
                with gr.Row():
                    steps = gr.Slider(2, MAX_STEPS, value=8, step=2, elem_id="experiments-lam-steps",
                                      label="path steps (more: smaller completeness gap)")
                    kinds = gr.CheckboxGroup([(views.NAMES[k], k) for k in LAM_KINDS], value=list(LAM_KINDS),
                                             label="models")
                lam_go = gr.Button("Compute attribution maps", variant="primary", elem_id="experiments-lam-run")
        lam_info = gr.Markdown(elem_id="experiments-lam-info")
        with gr.Row():
            lam_images = [gr.Image(label=views.NAMES[k], interactive=False, height=300, format="png",
                                   elem_id=f"experiments-lam-{k}") for k in LAM_KINDS]

    # ------------------------------------------------------------------ trace
    with gr.Accordion("4 · Download a traced pass", open=True, elem_id="experiments-trace-block"):
        gr.Markdown("One zip: `trace.safetensors` (cluster codes, sort order, centroids, match embeddings, every "
                    "group's values and attention outputs; the dense model's per-layer query/key) and `trace.json` "
                    "(sizes, window, checkpoint, region). Load it with\n\n```python\n"
                    "from lcoan.introspect.trace_files import load_trace\n"
                    "trace = load_trace(\"photo_x2_lcoan_trace.zip\")\nrow = trace.attention_row(0, "
                    "trace.position(10, 20))  # (N,) weights of one query\n```")
        with gr.Row():
            kind = gr.Radio([("LCoAN", "lcoan"), ("Dense NLA", "dense")], value="lcoan", label="model")
            region = gr.Radio([("downscale the whole image", "downscale"), ("centre crop, native resolution", "crop")],
                              value="downscale", label="inputs above 128x128 LR positions are traced on")
            trace_go = gr.Button("Make the trace file", elem_id="experiments-trace-run")
        trace_file = gr.File(label="trace file", elem_id="experiments-trace-file")
        trace_info = gr.JSON(label="what is in it", visible=True)

    # ------------------------------------------------------------------ UI events
    @reported(3, status=0)
    def run_knobs(img, sc, r, sd, progress=gr.Progress()):
        pair, sweep = exps.knobs(file_path(img), sc, r, sd, progress=lambda f, d: progress(f, desc=d))
        return "", views.sweep_figure(sweep), views.describe_sweep(sweep, pair.note)

    @reported(3, status=0)
    def run_window(img, sc, r, sd, w, progress=gr.Progress()):
        if w is None or int(w) < 1:
            raise gr.Error("Type a window W of at least 1 position.")
        pair, sweep = exps.knobs(file_path(img), sc, r, sd, progress=lambda f, d: progress(f, desc=d), window=w)
        return "", views.sweep_figure(sweep), views.describe_sweep(sweep, pair.note)

    @reported(3, status=0)
    def run_ablation(img, sc, sd):
        pair, results = exps.ablation(file_path(img), sc, sd)
        return "", views.ablation_figure(results), views.describe_ablation(results, pair.note)

    def lam_outputs(pair: Pair, results: dict, chosen: list[str], outside: dict) -> list:
        imgs = []
        for k in LAM_KINDS:
            if k in results:
                imgs.append(gr.Image(value=views.attribution_image(pair.lr, results[k], pair.scale, LAM_FACTOR),
                                     label=views.attribution_caption(k, results[k], outside.get(k))))
            else:
                state = "running…" if k in chosen else "not chosen"
                imgs.append(gr.Image(value=None, label=f"{views.NAMES[k]}: {state}"))
        return imgs

    @reported(3 + len(LAM_KINDS), status=0)
    def run_lam(img, sc, y, x, sz, n, chosen):
        path = file_path(img)
        pair = exps.pair(path, sc, LAM_SIDE)
        box = exps.patch(pair, y, x, sz)
        chosen = [k for k in LAM_KINDS if k in (chosen or [])]
        if not chosen:
            raise gr.Error("Choose at least one model.")
        done: dict = {}
        yield ("", crop_preview(pair, box), views.describe_attribution(done, pair.note, []),
               *lam_outputs(pair, done, chosen, {}))
        for k in chosen:
            _, one = exps.attribution(path, sc, y, x, sz, n, (k,))
            done.update(one)
            missing = [c for c in chosen if c not in done and c in LAM_KINDS[:LAM_KINDS.index(k) + 1]]
            outside, radius = exps.beyond_reach(done, pair.scale, FAR_LR)
            yield ("", gr.skip(), views.describe_attribution(done, pair.note, missing, outside, radius),
                   *lam_outputs(pair, done, chosen, outside))

    @reported(4, status=0)
    def show_patch(img, sc, y, x, sz):
        if not file_path(img):  # picture cleared: nothing to preview, nothing to complain about
            return "", None, gr.skip(), gr.skip()
        pair = exps.pair(file_path(img), sc, LAM_SIDE)
        box = exps.patch(pair, y, x, sz)
        return "", crop_preview(pair, box), box.top, box.left

    @reported(4, status=0)
    def click_patch(img, sc, sz, evt: gr.SelectData):
        pair = exps.pair(file_path(img), sc, LAM_SIDE)
        f = LAM_FACTOR / pair.scale  # display pixels per output pixel
        half = int(sz) // 2
        box = exps.patch(pair, max(0, int(evt.index[1] / f) - half), max(0, int(evt.index[0] / f) - half), sz)
        return "", crop_preview(pair, box), box.top, box.left

    @reported(3, status=0)
    def run_trace(img, sc, k, rg):
        path, report = exps.trace_file(file_path(img), sc, k, rg, display_name(img))
        return "", str(path), report

    knob_go.click(run_knobs, [image, scale, rounds, side], [status, knob_plot, knob_info], api_visibility="private",
                  **common)
    gr.on([window_go.click, window.submit], run_window, [image, scale, rounds, side, window],
          [status, knob_plot, knob_info], api_visibility="private", **common)
    abl_go.click(run_ablation, [image, scale, side], [status, abl_plot, abl_info], api_visibility="private", **common)
    lam_go.click(run_lam, [image, scale, row, col, size, steps, kinds], [status, preview, lam_info, *lam_images],
                 api_visibility="private", **common)
    patch_out = [status, preview, row, col]
    gr.on([image.change, scale.change, size.release], show_patch, [image, scale, row, col, size], patch_out,
          **light)
    preview.select(click_patch, [image, scale, size], patch_out, **light)
    trace_go.click(run_trace, [image, scale, kind, region], [status, trace_file, trace_info], api_visibility="private",
                   **common)
    register_api(service, exps, common)


def register_api(service, exps: ExperimentService, common: dict) -> None:
    """The named endpoints /knobs, /ablation, /attribution and /trace on hidden components."""

    @guarded
    def knobs(image: Any, scale: Any, rounds: Any, window: Any):
        """Window sweep on the picture (degrade then restore): PSNR, recall and non-local time per W (window > 0:
        that one W, beside the trained W and W >= N)."""
        pair, sweep = exps.knobs(file_path(image), scale, rounds, window=window)
        return sweep_report(pair, sweep)

    @guarded
    def ablation(image: Any, scale: Any):
        """|SR with attention - SR with the branch off| per pixel for LCoAN and dense, with both PSNRs."""
        pair, results = exps.ablation(file_path(image), scale)
        top = max(float(r.diff.max()) for r in results.values())
        stem = display_name(image) or "image"
        files = [heat_png(service, f"{stem}_x{pair.scale}_{k}_ablation", results[k].diff, top) if k in results else None
                 for k in ("lcoan", "dense")]
        report = {"note": pair.note, "output_size": list(pair.hr.shape[1::-1]), "colour_top_levels": top,
                  "models": {k: {"psnr_on": r.psnr_on, "psnr_off": r.psnr_off, "drop": r.drop,
                                 "mean_levels": float(r.diff.mean()), "max_levels": float(r.diff.max())}
                             for k, r in results.items()}}
        return (*files, report)

    @guarded
    def attribution(image: Any, scale: Any, row: Any, col: Any, patch: Any, steps: Any):
        """LAM for one output patch (-1: centred) of the 64x64-LR crop: LCoAN, dense and none."""
        pair, results = exps.attribution(file_path(image), scale, row, col, patch, steps)
        stem = display_name(image) or "image"
        files = [heat_png(service, f"{stem}_x{pair.scale}_{k}_lam", results[k].magnitude,
                          float(results[k].magnitude.max())) if k in results else None for k in LAM_KINDS]
        box = next(iter(results.values())).box
        outside, radius = exps.beyond_reach(results, pair.scale)
        far, _ = exps.beyond_reach(results, pair.scale, FAR_LR)
        report = {"note": pair.note, "lr_size": list(pair.lr.shape[1::-1]),
                  "patch": {"row": box.top, "col": box.left, "size": box.size},
                  "conv_reach_lr_px": radius,
                  "models": {k: {"diffusion_index": r.diffusion_index, "completeness_gap": r.gap, "sum": r.total,
                                 "beyond_conv_reach": outside[k], f"beyond_{FAR_LR}_lr_px": far[k],
                                 "target_minus_baseline": r.target - r.baseline, "steps": r.steps, "seconds": r.seconds}
                             for k, r in results.items()}}
        return (*files, report)

    @guarded
    def trace(image: Any, scale: Any, kind: str, region: str):
        """A zip (safetensors + JSON) of the traced pass of the LCoAN or dense model on the picture."""
        path, report = exps.trace_file(file_path(image), scale, kind, region, display_name(image))
        return str(path), report

    with gr.Column(visible=False):
        image = gr.File(label="image", type="filepath")
        scale = gr.Number(label="scale", value=2, precision=0)
        rounds = gr.Number(label="rounds", value=1, precision=0)
        window = gr.Number(label="window", value=0, precision=0)
        row = gr.Number(label="row", value=-1, precision=0)
        col = gr.Number(label="col", value=-1, precision=0)
        patch = gr.Number(label="patch", value=16, precision=0)
        steps = gr.Number(label="steps", value=8, precision=0)
        kind = gr.Dropdown(["lcoan", "dense"], value="lcoan", label="kind")
        region = gr.Dropdown(list(REGION_MODES), value="downscale", label="region")
        report = gr.JSON(label="report")
        ablation_pngs = [gr.File(label=f"{k}_ablation_png") for k in ("lcoan", "dense")]
        lam_pngs = [gr.File(label=f"{k}_lam_png") for k in LAM_KINDS]
        trace_zip = gr.File(label="trace_zip")
        triggers = [gr.Button(name) for name in ("knobs", "ablation", "attribution", "trace")]
    api = {**common, "preprocess": False}
    triggers[0].click(knobs, [image, scale, rounds, window], report, api_name="knobs", api_description=knobs.__doc__,
                      **api)
    triggers[1].click(ablation, [image, scale], [*ablation_pngs, report], api_name="ablation",
                      api_description=ablation.__doc__, **api)
    triggers[2].click(attribution, [image, scale, row, col, patch, steps], [*lam_pngs, report], api_name="attribution",
                      api_description=attribution.__doc__, **api)
    triggers[3].click(trace, [image, scale, kind, region], [trace_zip, report], api_name="trace",
                      api_description=trace.__doc__, **api)
