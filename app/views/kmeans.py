"""k-means live: the cluster map of every frame and the occupancy of the clusters over the steps."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.subplots import make_subplots

from lcoan.introspect.kmeans_live import Frame, KMeansRun

from .clusters import shaded
from .common import display_factor, display_uint8, enlarge, palette, pil

PHASES = {"start": "start", "init": "k-means init", "ema": "EMA step"}


def frame_label(f: Frame) -> str:
    return (f"frame {f.step} ({PHASES[f.phase]}): {f.occupied} clusters used, mean cosine {f.objective:.3f}, "
            f"{f.changed:.1%} of positions moved, centroids turned {f.moved:.2f} deg"
            + (f", {f.reseeded} re-seeded" if f.reseeded else ""))


def frame_map(run: KMeansRun, frame: Frame, image: np.ndarray, opacity: float = 0.85,
              factor: int | None = None) -> Image.Image:
    """The image tinted by each position's cluster at this frame (colours: the cluster palette, by id, so
    one centroid keeps its colour from frame to frame; shaded by the photo as the Clusters map is)."""
    colours = palette(run.num_clusters)[frame.codes.numpy()].reshape(*run.lr_size, 3).astype(np.float32)
    out = (1 - opacity) * display_uint8(image).astype(np.float32) + opacity * shaded(colours, image)
    return pil(enlarge(np.round(out).astype(np.uint8), factor or display_factor(run.lr_size, 480)))


def frame_pictures(run: KMeansRun, image: np.ndarray) -> list[tuple[Image.Image, str]]:
    """(cluster map, caption) of every frame."""
    return [(frame_map(run, f, image), frame_label(f)) for f in run.frames]


def occupancy_figure(run: KMeansRun, current: int | None = None) -> go.Figure:
    """Top: clusters in use and the mean cosine to the centroid per frame. Bottom: members of every
    cluster per frame (clusters ordered by their size in the last frame; log colour)."""
    occ = run.occupancy().numpy().astype(np.float64)  # (T, K)
    steps = np.arange(len(run.frames))
    order = np.argsort(-occ[-1], kind="stable")
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.3, 0.7], vertical_spacing=0.06,
                        specs=[[{"secondary_y": True}], [{}]])
    fig.add_trace(go.Scatter(x=steps, y=[f.occupied for f in run.frames], name="clusters used", mode="lines+markers",
                             line=dict(color="#4c72b0")), row=1, col=1)
    fig.add_trace(go.Scatter(x=steps, y=[f.objective for f in run.frames], name="mean cosine", mode="lines+markers",
                             line=dict(color="#dd8452")), row=1, col=1, secondary_y=True)
    z = np.where(occ[:, order] > 0, np.log10(np.maximum(occ[:, order], 1)), np.nan).T
    fig.add_trace(go.Heatmap(x=steps, z=z, customdata=occ[:, order].T, colorscale="Viridis",
                             colorbar=dict(title="log10 members", len=0.65, y=0.33),
                             hovertemplate="frame %{x}, rank %{y}: %{customdata:.0f} members<extra></extra>"),
                  row=2, col=1)
    for i, f in enumerate(run.frames):
        if i and f.phase != run.frames[i - 1].phase:
            fig.add_vline(x=i - 0.5, line_dash="dot", line_color="grey")
    if current is not None:
        fig.add_vline(x=current, line_color="crimson", line_width=2)
    fig.update_yaxes(title_text="clusters", row=1, col=1, secondary_y=False)
    fig.update_yaxes(title_text="cosine", row=1, col=1, secondary_y=True)
    fig.update_yaxes(title_text="cluster (by final size)", row=2, col=1, autorange="reversed")
    fig.update_xaxes(title_text="frame (blank: no member)", row=2, col=1)
    fig.update_layout(title=f"Occupancy over the steps: {run.start} start, decay {run.decay}, batch {run.batch:,}",
                      height=560, margin=dict(l=60, r=20, t=50, b=40), legend=dict(orientation="h", y=1.08))
    return fig
