"""The shared similarity matrix: LSP's sparse band in cluster-sorted order, the dense model's
per-layer maps on a sample of positions, and the dense layers' redundancy (what CoA removes)."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from lcoan.introspect.trace import PatternTrace

from .common import palette, rgb_css


def cluster_colorscale(k: int) -> list[list]:
    """A plotly colorscale that gives integer z = i exactly the palette colour of cluster i."""
    pal = palette(k)
    return [[i / max(k - 1, 1), rgb_css(pal[i])] for i in range(k)]


def band_figure(pattern: PatternTrace, matrix: torch.Tensor, edges: torch.Tensor) -> go.Figure:
    """The sparse attention matrix in cluster-sorted order (rows: queries, columns: keys), log10 of
    the mean weight of each block; blocks with no non-zero entry are blank. The band of a window
    and its two neighbours is the only place the matrix is non-zero. A strip above it gives the
    cluster of the first position of each column block; dotted lines are window borders."""
    m = matrix.numpy().astype(np.float64)
    z = np.where(m > 0, np.log10(np.maximum(m, 1e-30)), np.nan).astype(np.float32)
    starts = edges[:-1].numpy()
    k = pattern.centroids.shape[1]
    cl = pattern.codes[0][pattern.order[0]][edges[:-1]].numpy()
    fig = make_subplots(rows=2, cols=1, row_heights=[0.035, 0.965], shared_xaxes=True, vertical_spacing=0.01)
    fig.add_trace(go.Heatmap(x=starts, z=cl[None, :], zmin=0, zmax=k - 1, colorscale=cluster_colorscale(k),
                             showscale=False, hovertemplate="sorted #%{x}: cluster %{z}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Heatmap(x=starts, y=starts, z=z, colorscale="Viridis", colorbar=dict(title="log10 weight"),
                             hovertemplate="query #%{y} -> key #%{x}: %{z:.2f}<extra></extra>"), row=2, col=1)
    lo, hi = int(edges[0]), int(edges[-1])
    block = (hi - lo) / len(starts)
    w = pattern.window
    borders = [b * w for b in range(lo // w + 1, (hi - 1) // w + 1)]
    if borders:  # window borders, as one line trace (hundreds of layout shapes are slow in plotly)
        xs = [v for b in borders for v in (lo, hi, None, b, b, None)]
        ys = [v for b in borders for v in (b, b, None, lo, hi, None)]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", hoverinfo="skip", showlegend=False,
                                 line=dict(color="white", width=0.6, dash="dot")), row=2, col=1)
    res = "exact: one entry per cell" if block <= 1 else f"each cell = mean of {block:.1f} x {block:.1f} entries"
    fig.update_yaxes(showticklabels=False, row=1, col=1)
    fig.update_yaxes(autorange="reversed", title="query (sorted by cluster)", row=2, col=1)
    fig.update_xaxes(title="key (sorted by cluster)", row=2, col=1)
    fig.update_layout(title=f"Sparse attention, cluster-sorted, sorted positions {lo}..{hi - 1} of N = {pattern.n}"
                            f"<br><sup>W = {w}, {pattern.num_windows} windows; {res}; "
                            "computed once, used by every group</sup>",
                      height=640, margin=dict(l=60, r=20, t=70, b=50))
    return fig


def sampled_maps_figure(lcoan: torch.Tensor, dense: list[torch.Tensor], positions: torch.Tensor) -> go.Figure:
    """S x S attention among sampled positions: LCoAN's one shared matrix, then each dense layer's,
    on one log colour scale (rows were normalised over all N keys, then restricted to the sample)."""
    maps = [lcoan.numpy()] + [d.numpy() for d in dense]
    titles = ["LCoAN (shared by every group)"] + [f"dense layer {g + 1}" for g in range(len(dense))]
    cols = min(len(maps), 5)
    rows = -(-len(maps) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.02, vertical_spacing=0.08)
    shown = [np.where(m > 0, np.log10(np.maximum(m, 1e-30)), np.nan).astype(np.float32) for m in maps]
    finite = np.concatenate([s[np.isfinite(s)] for s in shown])
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    pos = positions.numpy()
    for i, s in enumerate(shown):
        fig.add_trace(go.Heatmap(z=s, coloraxis="coloraxis", customdata=np.broadcast_to(pos, s.shape),
                                 hovertemplate="query #%{y} -> key pos %{customdata}: %{z:.2f}<extra></extra>"),
                      row=i // cols + 1, col=i % cols + 1)
    fig.update_yaxes(autorange="reversed", showticklabels=False)
    fig.update_xaxes(showticklabels=False)
    fig.update_layout(title=f"Attention among {len(pos)} sampled positions (raster order), log10 weight",
                      coloraxis=dict(colorscale="Viridis", cmin=lo, cmax=hi, colorbar=dict(title="log10")),
                      height=60 + 250 * rows, margin=dict(l=10, r=10, t=70, b=10))
    return fig


def redundancy_figure(js: torch.Tensor, corr: torch.Tensor, samples: int) -> go.Figure:
    """Layer x layer redundancy of the dense maps: mean Jensen-Shannon divergence (0 = identical
    maps, ln 2 = disjoint) and mean Pearson correlation (1 = identical) over sampled queries."""
    g = js.shape[0]
    labels = [f"L{i + 1}" for i in range(g)]
    fig = make_subplots(rows=1, cols=2, subplot_titles=["mean Jensen-Shannon divergence (nats)", "mean correlation"],
                        horizontal_spacing=0.15)
    for col, (m, scale, zmin, zmax, cb_x) in enumerate([(js, "Blues_r", 0.0, float(np.log(2)), 0.42),
                                                       (corr, "RdBu", -1.0, 1.0, 1.0)]):
        v = m.numpy()
        fig.add_trace(go.Heatmap(z=v, x=labels, y=labels, colorscale=scale, zmin=zmin, zmax=zmax,
                                 texttemplate="%{z:.3f}", colorbar=dict(x=cb_x, len=0.9),
                                 hovertemplate="%{y} vs %{x}: %{z:.4f}<extra></extra>"), row=1, col=col + 1)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(title=f"Dense NLA: how alike the layers' attention maps are ({samples} sampled queries)",
                      height=360, margin=dict(l=40, r=40, t=70, b=40))
    return fig
