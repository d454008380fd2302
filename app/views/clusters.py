"""Cluster views of the Learnable Sparse Pattern: which k-means cluster each LR position joined."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from lcoan.introspect.trace import PatternTrace, Trace

from .common import display_factor, display_uint8, enlarge, mark, palette, pil, rgb_css


def cluster_map(pattern: PatternTrace, size: tuple[int, int], round: int = 0) -> np.ndarray:
    """(h, w) int64 cluster id of every LR position."""
    return pattern.codes[round].reshape(size).numpy()


DEFAULT_OPACITY = 0.8


def shaded(colours: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Cluster colours (h, w, 3) shaded by the photo's luminance (35..100 %), so the picture's structure
    stays readable under them: at full opacity the map is the photo in cluster colours, not confetti."""
    rgb = display_uint8(image).astype(np.float32) / 255.0
    lum = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    return colours * (0.35 + 0.65 * lum[..., None])


def cluster_overlay(trace: Trace, image: np.ndarray, opacity: float = DEFAULT_OPACITY, round: int = 0,
                    factor: int | None = None, selected: int | None = None) -> Image.Image:
    """The traced LR image with each position tinted by its cluster's colour, enlarged for display.

    opacity 0 shows the image, 1 the cluster colours only, shaded by the photo's luminance
    (:func:`shaded`). ``selected``: that cluster's members keep full colour and get a white outline, the
    others fade to a quarter of the opacity.
    """
    p = trace.patterns[0]
    codes = cluster_map(p, trace.lr_size, round)
    colours = shaded(palette(p.centroids.shape[1])[codes].astype(np.float32), image)
    a = np.full(codes.shape, float(np.clip(opacity, 0.0, 1.0)), np.float32)
    member = None
    if selected is not None:
        member = codes == selected
        a = np.where(member, max(float(a.flat[0]), 0.75), a * 0.25)
    out = (1 - a[..., None]) * display_uint8(image).astype(np.float32) + a[..., None] * colours
    f = factor or display_factor(trace.lr_size)
    big = enlarge(np.round(out).astype(np.uint8), f)
    if member is not None and f >= 3:  # outline the chosen cluster's blocks where they border others
        m = enlarge(member, f)
        edge = m & ~(np.roll(m, 1, 0) & np.roll(m, -1, 0) & np.roll(m, 1, 1) & np.roll(m, -1, 1))
        big[edge] = 255
    return pil(big)


def cluster_legend_html(trace: Trace, round: int = 0, selected: int | None = None, limit: int | None = None) -> str:
    """A colour legend of the occupied clusters (all of them unless ``limit``), largest first: swatch, id,
    positions (HTML)."""
    p = trace.patterns[0]
    sizes = p.cluster_sizes(round).numpy()
    pal = palette(len(sizes))
    order = [int(k) for k in np.argsort(-sizes, kind="stable") if sizes[k] > 0]
    items = []
    limit = len(order) if limit is None else limit
    for k in order[:limit]:
        ring = "outline:3px solid #000;" if k == selected else ""
        items.append(f'<span title="cluster {k}: {int(sizes[k])} positions" style="display:inline-flex;'
                     f'align-items:center;margin:2px 8px 2px 0;font-size:12px"><span style="display:inline-block;'
                     f'width:14px;height:14px;margin-right:4px;background:{rgb_css(pal[k])};{ring}"></span>'
                     f'{k}&nbsp;<span style="color:#666">({int(sizes[k])})</span></span>')
    more = f" … and {len(order) - limit} more" if len(order) > limit else ""
    return (f"<div><b>Colour legend</b> (cluster id and positions, largest first; {len(order)} occupied):<br>"
            + "".join(items) + more + "</div>")


def cluster_sizes_figure(trace: Trace, round: int = 0, selected: int | None = None) -> go.Figure:
    """Bar chart: number of positions in each cluster, in the clusters' colours."""
    p = trace.patterns[0]
    sizes = p.cluster_sizes(round).numpy()
    k = len(sizes)
    colours = [rgb_css(c) for c in palette(k)]
    line = [3 if i == selected else 0 for i in range(k)]
    fig = go.Figure(go.Bar(x=np.arange(k), y=sizes, marker=dict(color=colours, line=dict(width=line, color="black")),
                           hovertemplate="cluster %{x}: %{y} positions<extra></extra>"))
    fig.add_hline(y=p.n / k, line_dash="dot", line_color="grey",
                  annotation_text=f"uniform N/K = {p.n / k:.1f}", annotation_position="top right")
    fig.update_layout(title=f"Cluster sizes: {int((sizes > 0).sum())} of K = {k} clusters occupied",
                      xaxis_title="cluster id", yaxis_title="positions", bargap=0.05,
                      margin=dict(l=50, r=20, t=50, b=40), height=300)
    return fig


def projection_figure(points: np.ndarray, codes: np.ndarray, centroids: np.ndarray, occupied: np.ndarray,
                      note: str = "", selected: int | None = None) -> go.Figure:
    """Scatter of projected match embeddings (coloured by cluster) and the K centroids (crosses;
    grey when no position of this image joined them). ``selected`` fades the other clusters."""
    k = len(centroids)
    pal = palette(k)
    colours = [rgb_css(pal[c]) for c in codes]
    opacity = np.full(len(codes), 0.8) if selected is None else np.where(codes == selected, 1.0, 0.12)
    fig = go.Figure()
    fig.add_trace(go.Scattergl(x=points[:, 0], y=points[:, 1], mode="markers", name="positions",
                               marker=dict(color=colours, size=5, opacity=opacity), customdata=codes,
                               hovertemplate="cluster %{customdata}<extra></extra>"))
    cc = [rgb_css(pal[i]) if occupied[i] else "lightgrey" for i in range(k)]
    sizes = [16 if i == selected else 9 for i in range(k)]
    fig.add_trace(go.Scatter(x=centroids[:, 0], y=centroids[:, 1], mode="markers", name="centroids",
                             marker=dict(symbol="x", color=cc, size=sizes, line=dict(width=1, color="black")),
                             customdata=np.arange(k), hovertemplate="centroid %{customdata}<extra></extra>"))
    if selected is not None and (codes == selected).any():
        sel = points[codes == selected]
        fig.add_trace(go.Scattergl(x=sel[:, 0], y=sel[:, 1], mode="markers", name=f"chosen: cluster {selected}",
                                   marker={"color": rgb_css(pal[selected]), "size": 9,
                                           "line": {"width": 1.5, "color": "black"}},
                                   hovertemplate=f"cluster {selected} (chosen)<extra></extra>"))
    fig.update_layout(title=f"Match embeddings (normalised) and centroids<br><sup>{note}</sup>", height=520,
                      showlegend=True,
                      margin=dict(l=40, r=20, t=50, b=40), legend=dict(orientation="h", y=-0.12))
    return fig


def member_positions(trace: Trace, cluster: int, round: int = 0) -> np.ndarray:
    """Positions (raster order) that joined ``cluster``: (M,) int64."""
    return np.nonzero(trace.patterns[0].codes[round].numpy() == cluster)[0]


def members_overlay(trace: Trace, image: np.ndarray, cluster: int, round: int = 0,
                    factor: int | None = None) -> Image.Image:
    """Members of one cluster in its colour over a dimmed grey image; everything else dimmed."""
    p = trace.patterns[0]
    base = display_uint8(image).astype(np.float32)
    grey = base.mean(-1, keepdims=True).repeat(3, -1) * 0.45
    member = (p.codes[round] == cluster).reshape(trace.lr_size).numpy()
    colour = palette(p.centroids.shape[1])[cluster].astype(np.float32)
    out = np.where(member[..., None], 0.35 * base + 0.65 * colour, grey)
    return pil(enlarge(np.round(out).astype(np.uint8), factor or display_factor(trace.lr_size)))


def patch_strip(trace: Trace, image: np.ndarray, cluster: int, count: int = 8, radius: int = 4,
                zoom: int = 10, round: int = 0) -> Image.Image | None:
    """Up to ``count`` LR patches ((2 radius + 1)^2 pixels) centred on members of ``cluster``,
    spread over the cluster's members in raster order, side by side; the centre pixel is outlined.
    None when the cluster is empty."""
    members = member_positions(trace, cluster, round)
    if len(members) == 0:
        return None
    pick = members[np.unique(np.round(np.linspace(0, len(members) - 1, min(count, len(members)))).astype(int))]
    h, w = trace.lr_size
    padded = np.pad(display_uint8(image), ((radius, radius), (radius, radius), (0, 0)), mode="edge")
    side = (2 * radius + 1) * zoom
    gap = 6
    strip = np.full((side, len(pick) * (side + gap) - gap, 3), 255, dtype=np.uint8)
    colour = tuple(int(c) for c in palette(trace.patterns[0].centroids.shape[1])[cluster])
    for i, pos in enumerate(pick):
        y, x = divmod(int(pos), w)
        patch = enlarge(padded[y:y + 2 * radius + 1, x:x + 2 * radius + 1], zoom)
        strip[:, i * (side + gap):i * (side + gap) + side] = mark(patch, radius, radius, zoom, colour, pad=0)
    return pil(strip)


def cluster_summary(trace: Trace, round: int = 0) -> dict:
    """K, occupied clusters, window layout: the numbers the clusters tab states."""
    p = trace.patterns[0]
    sizes = p.cluster_sizes(round)
    return {"positions": p.n, "lr_size": list(trace.lr_size), "clusters": int(p.centroids.shape[1]),
            "occupied": int((sizes > 0).sum()), "largest": int(sizes.max()), "rounds": p.rounds,
            "window": p.window, "windows": p.num_windows, "keys_per_query": min(3 * p.window, p.n),
            "shared_by_groups": len(trace.patterns) == 1}
