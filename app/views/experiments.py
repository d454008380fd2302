"""Figures and texts of the Experiments tab: the window sweep chart, the ablation maps and the
local attribution maps (from :mod:`app.services.experiments`)."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.subplots import make_subplots

from lcoan.introspect.knobs import Ablation, Sweep
from lcoan.introspect.lam import Attribution, Patch

from .attention import heatmap_panels
from .common import colormap, display_uint8, enlarge, pil

NAMES = {"lcoan": "LCoAN", "dense": "Dense NLA", "none": "No attention"}
MIN_PSNR_SPAN = 0.2  # dB: the smallest PSNR axis range of the sweep chart


def window_label(window: int | str) -> str:
    return window if isinstance(window, str) else str(window)


def sweep_figure(sweep: Sweep) -> go.Figure:
    """Non-local time, PSNR and attention-mass recall against W (three rows, one shared axis);
    the trained setting is a star, W >= N (dense over the same embeddings) the last column."""
    labels = [window_label(p.window) for p in sweep.points]
    rows = [("non-local time (ms)", [p.seconds * 1000 for p in sweep.points], "#c44e52"),
            ("PSNR, Y (dB)", [p.psnr for p in sweep.points], "#4c72b0"),
            ("attention-mass recall", [p.recall for p in sweep.points], "#55a868")]
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=[r[0] for r in rows])
    trained = [i for i, p in enumerate(sweep.points) if p.trained]
    for r, (title, values, colour) in enumerate(rows, start=1):
        fig.add_trace(go.Scatter(x=labels, y=values, mode="lines+markers", name=title, line=dict(color=colour),
                                 hovertemplate="W %{x}: %{y:.4g}<extra></extra>", showlegend=False), row=r, col=1)
        if trained:
            fig.add_trace(go.Scatter(x=[labels[i] for i in trained], y=[values[i] for i in trained], mode="markers",
                                     marker=dict(symbol="star", size=16, color="gold",
                                                 line=dict(width=1, color="black")),
                                     name="trained setting", showlegend=r == 1, hoverinfo="skip"), row=r, col=1)
    fig.add_trace(go.Scatter(x=labels, y=[min(1.0, 3 * p.effective / sweep.n) for p in sweep.points], mode="lines",
                             line=dict(color="grey", dash="dash"), name="flat attention (3W / N)",
                             hovertemplate="3W/N at W %{x}: %{y:.3f}<extra></extra>"), row=3, col=1)
    fig.add_hline(y=0.9, line_dash="dot", line_color="grey", row=3, col=1)
    fig.update_yaxes(range=[0, 1.02], row=3, col=1)
    # PSNR: two decimals and at least MIN_PSNR_SPAN dB of axis, so a flat line does not look like a trend
    psnr = [p.psnr for p in sweep.points]
    mid, span = (max(psnr) + min(psnr)) / 2, max(max(psnr) - min(psnr), MIN_PSNR_SPAN) * 1.15
    fig.update_yaxes(tickformat=".2f", range=[mid - span / 2, mid + span / 2], row=2, col=1)
    h, w = sweep.lr_size
    rounds = f"{sweep.rounds} round{'s' if sweep.rounds > 1 else ''}"
    if sweep.rounds > sweep.trained_rounds:
        rounds += " (extra rounds: k-means on this image, not trained)"
    star = "★ trained setting" if trained else "no trained setting here (rounds differ from training)"
    fig.update_layout(title=f"Window sweep at {w}x{h} LR (N = {sweep.n:,}), {rounds}; {star}",
                      xaxis3_title="window W (positions per window; each query sees 3W keys)", height=620,
                      margin=dict(l=60, r=20, t=80, b=50), legend=dict(orientation="h", y=1.08, x=1, xanchor="right"))
    fig.update_xaxes(type="category")
    return fig


def describe_sweep(sweep: Sweep, note: str) -> str:
    """The finding of a sweep in words: where recall passes 0.9 and what that costs."""
    pts = [p for p in sweep.points if not isinstance(p.window, str)]
    dense = sweep.points[-1]
    trained = next((p for p in sweep.points if p.trained), None)
    lines = [note]
    if sweep.rounds > sweep.trained_rounds:
        lines.append(f"**Not the trained model:** the checkpoint was trained with {sweep.trained_rounds} round(s); "
                     f"the {sweep.rounds - sweep.trained_rounds} extra round(s) use centroids from spherical k-means "
                     "on this image's match embeddings (the first group's input), merged by log-sum-exp as LSP does.")
    elif sweep.rounds < sweep.trained_rounds:
        lines.append(f"**Not the trained model:** only the first {sweep.rounds} of {sweep.trained_rounds} "
                     "trained rounds.")
    first = sweep.first_window_with_recall(0.9)
    if first is None or isinstance(first.window, str):
        best = max((p.recall for p in pts), default=0.0)
        lines.append(f"Recall stays below 0.9 for every W < N here (largest: {best:.3f}).")
    else:
        lines.append(f"**Recall first reaches 0.9 at W = {first.window}** ({first.recall:.3f}; "
                     f"PSNR {first.psnr:.2f} dB, non-local time {first.seconds * 1000:.0f} ms vs "
                     f"{dense.seconds * 1000:.0f} ms for W >= N).")
    flat = [p for p in pts if p.recall < 1.5 * min(1.0, 3 * p.effective / sweep.n)]
    if pts and len(flat) == len(pts):
        lines.append("At every W the recall is within 1.5x of 3W/N, the share a flat (uniform) attention would give: "
                     "on this picture the softmax is nearly flat, so the clusters have little mass to capture.")
    if trained is not None:
        lines.append(f"Trained setting (W = {trained.window}): recall {trained.recall:.3f}, "
                     f"PSNR {trained.psnr:.2f} dB, {trained.seconds * 1000:.0f} ms. "
                     "W >= N (dense softmax over the same embeddings): PSNR "
                     f"{dense.psnr:.2f} dB, {dense.seconds * 1000:.0f} ms.")
    lines.append(f"Recall: share of each query's dense softmax mass (LCoAN's own embeddings) on the keys its window "
                 f"gives it, mean over {sweep.queries} sampled queries. Times: median of 3 runs of the non-local part "
                 "(pattern once + every group's aggregation) on this machine, which other work shares: noisy.")
    return "  \n".join(lines)


def ablation_figure(results: dict[str, Ablation]) -> go.Figure:
    """|SR on - SR off| per output pixel for each model, one colour scale (8-bit levels)."""
    kinds = list(results)
    titles = [f"{NAMES[k]}: PSNR {results[k].psnr_on:.2f} dB on, {results[k].psnr_off:.2f} off" for k in kinds]
    h, w = next(iter(results.values())).diff.shape if results else (0, 0)
    fig = heatmap_panels([results[k].diff for k in kinds], titles,
                         "Where attention changes the output: |SR with attention − SR with the branch off|",
                         log=False, colorscale="Magma", colorbar_title="8-bit levels", height_per_row=430,
                         unit="output px",
                         subtitle=f"per pixel of the {w}x{h} restored output, mean over RGB, linear in 8-bit levels "
                                  "(0 to the largest change)")
    return fig


def describe_ablation(results: dict[str, Ablation], note: str) -> str:
    lines = [note]
    for kind, r in results.items():
        share = float((r.diff >= 0.5).mean())
        verdict = f"attention adds **{r.drop:.3f} dB**" if r.drop >= 0 else \
            f"attention costs **{-r.drop:.3f} dB** here (better without it)"
        lines.append(f"**{NAMES[kind]}**: with the attention branch off, PSNR {r.psnr_on:.2f} → {r.psnr_off:.2f} dB: "
                     f"{verdict}; mean change {r.diff.mean():.3f} levels, largest "
                     f"{r.diff.max():.2f}, {share:.1%} of pixels change by half a level or more "
                     "(a visible rounding step).")
    lines.append("The branch off = the same weights with the attention output scaled by 0 (`attn_res_scale = 0`), "
                 "no retraining: the rest of the network was trained to expect the attention.")
    return "  \n".join(lines)


LOG_DECADES = 4  # the attribution images span 1e-4 .. 1 of each map's maximum, log scale


def attribution_image(lr: np.ndarray, result: Attribution, scale: int, factor: int = 4) -> Image.Image:
    """The LR crop dimmed, the attribution magnitude in 'inferno' on top of it on a log scale
    (``LOG_DECADES`` decades below the map's maximum; exact zeros stay the dimmed picture), the
    output patch outlined in cyan. The log scale shows the faint long-range tail of attention."""
    mag = result.magnitude
    with np.errstate(divide="ignore"):
        level = np.log10(mag / max(float(mag.max()), 1e-30))
    value = np.clip((level + LOG_DECADES) / LOG_DECADES, 0, 1)
    base = display_uint8(lr).astype(np.float32) * 0.35
    heat = colormap(value).astype(np.float32)
    alpha = np.clip(value * 1.5, 0, 1)[..., None]
    out = enlarge(np.round(base * (1 - alpha) + heat * alpha).astype(np.uint8), factor)
    return pil(outline(out, result.box, scale, factor))


def outline(rgb: np.ndarray, box: Patch, scale: int, factor: int) -> np.ndarray:
    """A copy of an LR image enlarged ``factor`` times with an output patch (in SR pixels at
    ``scale``) outlined in cyan, two display pixels wide."""
    out = rgb.copy()
    y0, x0 = box.top * factor // scale, box.left * factor // scale
    y1 = min(out.shape[0], (box.top + box.size) * factor // scale) - 1
    x1 = min(out.shape[1], (box.left + box.size) * factor // scale) - 1
    out[y0:y0 + 2, x0:x1 + 1] = (0, 255, 255)
    out[y1 - 1:y1 + 1, x0:x1 + 1] = (0, 255, 255)
    out[y0:y1 + 1, x0:x0 + 2] = (0, 255, 255)
    out[y0:y1 + 1, x1 - 1:x1 + 1] = (0, 255, 255)
    return out


def attribution_caption(kind: str, r: Attribution, outside: float | None = None) -> str:
    far = "" if outside is None else f", {outside:.1%} far"
    return f"{NAMES[kind]}: DI {r.diffusion_index:.1f}{far}, gap {r.gap:.1%}, {r.steps} steps, {r.seconds:.1f} s"


def describe_attribution(results: dict[str, Attribution], note: str, missing: list[str],
                         outside: dict[str, float] | None = None, radius: int | None = None) -> str:
    b = next(iter(results.values())).box if results else None
    lines = [note]
    if b is not None:
        lines.append(f"Output patch: rows {b.top}..{b.top + b.size - 1}, cols {b.left}..{b.left + b.size - 1} of the "
                     f"restored crop (cyan box). Integrated gradients of its summed gradient magnitude along a "
                     "progressive Gaussian-blur path from a blurred input (σ 3 LR px) to the input "
                     "(LAM, Gu & Dong, CVPR 2021).")
    for kind, r in results.items():
        lines.append(f"**{NAMES[kind]}**: diffusion index **{r.diffusion_index:.1f}** (of 100; higher = draws on "
                     f"a wider area), completeness gap {r.gap:.1%} (attributions sum to {r.total:.3f} vs "
                     f"D(input) − D(baseline) = {r.target - r.baseline:.3f}), {r.seconds:.1f} s."
                     + ("" if not outside or kind not in outside else
                        f" **{outside[kind]:.2%}** of its attribution lies more than {radius} LR px from "
                        "the patch (\"far\")."))
    if missing:
        lines.append("Not run (no checkpoint at this scale): " + ", ".join(NAMES[k] for k in missing) + ".")
    lines.append(f"Colours: log scale, {LOG_DECADES} decades below each map's maximum. "
                 "LSP re-clusters along the path (cluster codes jump), so LCoAN's completeness gap can be larger; more "
                 "steps shrink every gap and cost proportionally more time.")
    return "  \n".join(lines)
