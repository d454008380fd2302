"""Per-query attention views: LSP weights of a clicked query, each group's contribution under CoA,
the dense model's per-layer maps for the same query, and attention-mass recall."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw
from plotly.subplots import make_subplots

from lcoan.introspect.mass import RINGS
from lcoan.introspect.query import QueryAttention, query_attention, weight_range
from lcoan.introspect.trace import Trace

from .common import colormap, display_factor, display_uint8, enlarge, mark, pil

ROLE_COLOURS = ((0, 0, 0), (66, 133, 244), (255, 140, 0), (52, 168, 83))  # unseen, previous, own, next window
TOP_COLOUR = (255, 235, 59)  # outline of the top matches
QUERY_COLOUR = (0, 255, 255)


def weight_colours(image: np.ndarray, row: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """(H, W, 3) image and (N,) weights -> (N, 3) float colours: keys with weight drawn in 'inferno' by
    log10 weight between ``lo`` and ``hi`` (decades; above hi saturates) and blended over the image in
    proportion, so strong keys stand out and weak ones fade; zero weight (never seen) stays dimmed grey."""
    base = display_uint8(image).reshape(-1, 3).astype(np.float32)
    grey = base.mean(-1, keepdims=True).repeat(3, -1) * 0.3
    row = np.asarray(row, np.float64).reshape(-1)
    t = np.clip((np.log10(np.maximum(row, 1e-300)) - lo) / max(hi - lo, 1e-9), 0, 1)
    heat = colormap(0.1 + 0.9 * t).astype(np.float32)
    a = (0.25 + 0.75 * t)[:, None]
    return np.where((row > 0)[:, None], a * heat + (1 - a) * grey, grey)


def outline_keys(big: np.ndarray, lr_size: tuple[int, int], position: int, top: list[tuple[int, int]],
                 factor: int) -> np.ndarray:
    """Outline the top matches (yellow) and the query (cyan, drawn last) on an enlarged map."""
    for y, x in top:
        big = mark(big, y, x, factor, TOP_COLOUR)
    y, x = divmod(position, lr_size[1])
    return mark(big, y, x, factor, QUERY_COLOUR)


def attention_overlay(trace: Trace, image: np.ndarray, position: int, factor: int | None = None,
                      q: QueryAttention | None = None) -> Image.Image:
    """Keys drawn by weight (:func:`weight_colours`, the colour range fitted to this row without the
    query's own weight), the top matches outlined in yellow and the query in cyan."""
    f = factor or display_factor(trace.lr_size)
    if q is None:
        q = query_attention(trace, position, radius=0)
    lo, hi = weight_range(q.row, exclude=position)
    rgb = weight_colours(image, q.row.numpy(), lo, hi).reshape(*trace.lr_size, 3)
    big = enlarge(np.round(rgb).astype(np.uint8), f)
    return pil(outline_keys(big, trace.lr_size, position, q.top_rc(), f))


def match_strip(image: np.ndarray, q: QueryAttention, radius: int = 4, zoom: int = 10) -> Image.Image:
    """The query's patch (cyan) then its top matches' patches (yellow), (2 radius + 1)^2 LR px each,
    side by side, each labelled with its weight and distance from the query."""
    h, w = q.lr_size
    padded = np.pad(display_uint8(image), ((radius, radius), (radius, radius), (0, 0)), mode="edge")
    side = (2 * radius + 1) * zoom
    items = [(q.position, QUERY_COLOUR, f"query {q.self_weight:.3f}")]
    items += [(int(p), TOP_COLOUR, f"{float(wt):.3f} @{q.distance(int(p))}px") for p, wt in zip(q.top, q.top_weights)]
    gap, label = 6, 14
    strip = Image.new("RGB", (len(items) * (side + gap) - gap, side + label), "white")
    draw = ImageDraw.Draw(strip)
    for i, (pos, colour, text) in enumerate(items):
        y, x = divmod(pos, w)
        patch = enlarge(padded[y:y + 2 * radius + 1, x:x + 2 * radius + 1], zoom)
        strip.paste(pil(mark(patch, radius, radius, zoom, colour, pad=0)), (i * (side + gap), label))
        draw.text((i * (side + gap) + 1, 1), text, fill=(0, 0, 0))
    return strip


RING_LABELS = {"self": "the query itself", "neighbours": "its 3x3 neighbours", "within_rf": "within the conv RF",
               "beyond_rf": "beyond the conv RF"}
RING_COLOURS = {"self": "#00bcd4", "neighbours": "#8bc34a", "within_rf": "#ff9800", "beyond_rf": "#9c27b0"}


def mass_figure(splits: dict[str, QueryAttention]) -> go.Figure:
    """Where the query's attention mass goes, one stacked bar per model (e.g. LSP and each dense layer)."""
    fig = go.Figure()
    names = list(splits)
    radius = next(iter(splits.values())).mass.radius if splits else 0
    for ring in RINGS:
        values = [100 * getattr(q.mass, ring) for q in splits.values()]
        fig.add_trace(go.Bar(y=names, x=values, orientation="h", name=RING_LABELS[ring],
                             marker_color=RING_COLOURS[ring], text=[f"{v:.0f}%" for v in values],
                             textposition="inside", hovertemplate="%{y}: %{x:.1f}%<extra>" + RING_LABELS[ring] +
                             "</extra>"))
    fig.update_layout(barmode="stack", height=150 + 34 * len(names), xaxis=dict(range=[0, 100], title="% of mass"),
                      title=f"Where this query's attention goes (receptive field: {radius} LR px each way)",
                      yaxis=dict(autorange="reversed", tickmode="array", tickvals=names, ticktext=names),
                      legend=dict(orientation="h", y=1.0, yanchor="bottom", x=0),
                      margin=dict(l=120, r=20, t=80, b=40))
    return fig


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


DECADES = 3  # the log colour range: this many decades below the largest value


def colour_range(shown: list[np.ndarray], query: tuple[int, int] | None, log: bool) -> tuple[float, float]:
    """(cmin, cmax) that fits the maps: cmax = the largest value off the query's own cell (so a dominant
    self-weight does not wash the rest out), cmin = :data:`DECADES` below it in log mode (never below the
    smallest value shown), 0 in linear mode."""
    if not shown:
        return 0.0, 1.0
    off = []
    for s in shown:
        s = s.copy()
        if query is not None and s.ndim == 2:
            s[query] = np.nan
        off.append(s[np.isfinite(s)].ravel())
    vals = np.concatenate(off) if off else np.zeros(0)
    if vals.size == 0:
        return 0.0, 1.0
    hi = float(vals.max())
    if not log:
        return 0.0, hi if hi > 0 else 1.0
    lo = max(float(vals.min()), hi - DECADES)
    return (lo, hi) if hi > lo else (hi - 1.0, hi)


def heatmap_panels(maps: list[np.ndarray], titles: list[str], title: str, query: tuple[int, int] | None = None,
                   log: bool = True, colorscale: str = "Inferno", colorbar_title: str = "",
                   height_per_row: int = 300, unit: str = "LR px", subtitle: str | None = None) -> go.Figure:
    """Small heatmaps on ONE shared colour scale (plotly coloraxis), image orientation, axes in ``unit``
    (LR px by default), hover = row, col and the value itself; ``subtitle`` replaces the default one.

    log (default): colour = log10(value / uniform) (see :data:`LOG_MEANING`), readable for peaked
    softmax maps that are near-black on a linear scale; False: the value, linear.
    """
    rows, cols = _grid(len(maps))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.05, vertical_spacing=0.1)
    shown = [(relative_log(m) if log else m).astype(np.float32) for m in maps]
    lo, hi = colour_range(shown, query, log)
    for i, (s, m) in enumerate(zip(shown, maps)):
        r, c = divmod(i, cols)
        fig.add_trace(go.Heatmap(z=s, customdata=m, coloraxis="coloraxis",
                                 hovertemplate=f"row %{{y}}, col %{{x}} ({unit})<br>{colorbar_title or 'value'} "
                                               "%{customdata:.3g}<br>colour %{z:.2f}<extra></extra>"),
                      row=r + 1, col=c + 1)
        if query is not None:
            fig.add_trace(go.Scatter(x=[query[1]], y=[query[0]], mode="markers", showlegend=False, hoverinfo="skip",
                                     marker=dict(symbol="x-thin", size=10, line=dict(width=2, color="cyan"))),
                          row=r + 1, col=c + 1)
    fig.update_yaxes(autorange="reversed", title_text=f"row ({unit})", title_standoff=2)
    fig.update_xaxes(title_text=f"col ({unit})", title_standoff=2)
    for i in range(len(maps)):
        fig.update_yaxes(scaleanchor=f"x{i + 1 if i else ''}", row=i // cols + 1, col=i % cols + 1)
    bar = f"log10({colorbar_title} / uniform)" if log else colorbar_title
    fit = (f"colours span the {DECADES} decades below the largest value off the query" if log else
           "linear, 0 to the largest value off the query")
    sub = f"{LOG_MEANING}; {fit}" if log else f"{fit} (the query's own cell saturates)"
    sub = sub if subtitle is None else subtitle
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
