"""Per-query attention views: LSP weights of a clicked query, each group's contribution under CoA,
the dense model's per-layer maps for the same query, and attention-mass recall."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import torch
from PIL import Image
from plotly.subplots import make_subplots

from lcoan.introspect.trace import Trace

from .common import colormap, display_factor, display_uint8, enlarge, mark, pil


def query_attention(trace: Trace, position: int) -> dict:
    """The sparse attention of one query under LSP (all rounds merged): which keys, what weights.

    Returns keys (M,) positions in raster order, weights (M,), the full row (N,) and the recall.
    """
    p = trace.pattern_for(0)
    keys, weights = p.attention(position)
    row = torch.zeros(trace.n)
    row[keys] = weights
    return {"keys": keys.numpy(), "weights": weights.numpy(), "row": row.numpy(), "recall": p.recall(position)}


def attention_overlay(trace: Trace, image: np.ndarray, position: int, factor: int | None = None) -> Image.Image:
    """The image dimmed to 30 %; every key the query attends to painted with the 'inferno' colour
    of weight / max weight (from 0.15 up, so even the smallest weight stays visible); the query
    outlined in cyan. Positions it does not attend to stay dimmed."""
    f = factor or display_factor(trace.lr_size)
    att = query_attention(trace, position)
    base = display_uint8(image).astype(np.float32) * 0.3
    row = att["row"].reshape(trace.lr_size)
    attended = row > 0
    heat = colormap(0.15 + 0.85 * row / max(float(row.max()), 1e-30)).astype(np.float32)
    out = np.where(attended[..., None], heat, base)
    y, x = divmod(position, trace.lr_size[1])
    return pil(mark(enlarge(np.round(out).astype(np.uint8), f), y, x, f))


def _grid(count: int, max_cols: int = 4) -> tuple[int, int]:
    cols = min(count, max_cols)
    return math.ceil(count / cols), cols


LOG_MEANING = ("log10(value / uniform): 0 = what every position would get if attention were spread evenly "
               "(the mean over all N positions), +1 = 10x that, -1 = a tenth; blank = exactly 0")


def relative_log(m: np.ndarray) -> np.ndarray:
    """log10 of a map relative to its mean over all positions (1/N for softmax weights); zeros -> NaN."""
    mean = float(np.mean(m)) if m.size else 0.0
    if mean <= 0:
        return np.full(m.shape, np.nan, np.float32)
    return np.where(m > 0, np.log10(np.maximum(m, 1e-30) / mean), np.nan).astype(np.float32)


def heatmap_panels(maps: list[np.ndarray], titles: list[str], title: str, query: tuple[int, int] | None = None,
                   log: bool = True, colorscale: str = "Inferno", colorbar_title: str = "",
                   height_per_row: int = 300) -> go.Figure:
    """Small heatmaps on ONE shared colour scale (plotly coloraxis), image orientation, axes in LR
    pixels, hover = row, col and the value itself.

    log (default): colour = log10(value / uniform) (see :data:`LOG_MEANING`), readable for peaked
    softmax maps that are near-black on a linear scale; False: the value, linear.
    """
    rows, cols = _grid(len(maps))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.05, vertical_spacing=0.1)
    shown = [(relative_log(m) if log else m).astype(np.float32) for m in maps]
    finite = np.concatenate([s[np.isfinite(s)].ravel() for s in shown]) if shown else np.zeros(1)
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    for i, (s, m) in enumerate(zip(shown, maps)):
        r, c = divmod(i, cols)
        fig.add_trace(go.Heatmap(z=s, customdata=m, coloraxis="coloraxis",
                                 hovertemplate=f"row %{{y}}, col %{{x}} (LR px)<br>{colorbar_title or 'value'} "
                                               "%{customdata:.3g}<br>colour %{z:.2f}<extra></extra>"),
                      row=r + 1, col=c + 1)
        if query is not None:
            fig.add_trace(go.Scatter(x=[query[1]], y=[query[0]], mode="markers", showlegend=False, hoverinfo="skip",
                                     marker=dict(symbol="x-thin", size=10, line=dict(width=2, color="cyan"))),
                          row=r + 1, col=c + 1)
    fig.update_yaxes(autorange="reversed", title_text="row (LR px)", title_standoff=2)
    fig.update_xaxes(title_text="col (LR px)", title_standoff=2)
    for i in range(len(maps)):
        fig.update_yaxes(scaleanchor=f"x{i + 1 if i else ''}", row=i // cols + 1, col=i % cols + 1)
    bar = f"log10({colorbar_title} / uniform)" if log else colorbar_title
    sub = LOG_MEANING if log else "linear scale: small weights are near-black"
    fig.update_layout(title=f"{title}<br><sup>{sub}</sup>",
                      coloraxis={"colorscale": colorscale, "cmin": lo, "cmax": hi, "colorbar": {"title": bar}},
                      height=90 + height_per_row * rows, margin={"l": 10, "r": 10, "t": 90, "b": 10})
    return fig


def contributions_figure(trace: Trace, position: int, log: bool = True) -> go.Figure:
    """LCoAN: each residual group's contribution to this query's attention output, |w_j| * ||v_j||
    with the group's own values v (the weights w are the shared ones), one colour scale."""
    y, x = divmod(position, trace.lr_size[1])
    maps = [trace.as_map(trace.contribution_row(g, position)).numpy() for g in range(len(trace.groups))]
    titles = [f"group {g + 1}" for g in range(len(maps))]
    shared = "shared weights (CoA)" if len(trace.patterns) == 1 else "own pattern per group"
    return heatmap_panels(maps, titles, f"LCoAN: contribution of each key, weight x |value| ({shared})",
                          (y, x), log=log, colorbar_title="w·|v|")


def dense_maps_figure(trace: Trace, position: int, query: tuple[int, int] | None = None,
                      log: bool = True) -> go.Figure:
    """Dense NLA: the attention map of this query at each layer (own N x N softmax), one colour scale."""
    qy, qx = divmod(position, trace.lr_size[1])
    maps = [trace.as_map(trace.attention_row(g, position)).numpy() for g in range(len(trace.groups))]
    titles = [f"layer {g + 1}" for g in range(len(maps))]
    return heatmap_panels(maps, titles, "Dense NLA: attention of the same query at each layer",
                          query or (qy, qx), log=log, colorbar_title="weight")


def recall_figure(values: np.ndarray, this: float | None = None) -> go.Figure:
    """Histogram of attention-mass recall over sampled queries, this query marked."""
    fig = go.Figure(go.Histogram(x=values, xbins=dict(start=0, end=1.0001, size=0.025), marker_color="#4c72b0",
                                 name="sampled queries", hovertemplate="recall %{x}: %{y} queries<extra></extra>"))
    mean = float(np.mean(values))
    fig.add_vline(x=mean, line_dash="dot", line_color="black")
    title = f"Attention-mass recall over {len(values)} sampled queries: mean {mean:.3f} (dotted)"
    if this is not None:
        fig.add_vline(x=this, line_color="crimson", line_width=2)
        title += f"<br><sup>this query: {this:.3f} (red)</sup>"
    fig.update_layout(title=title, xaxis_title="recall", showlegend=False,
                      yaxis_title="queries", xaxis_range=[0, 1.02], height=260, margin=dict(l=40, r=20, t=50, b=40))
    return fig
