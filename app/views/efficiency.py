"""Efficiency view: the non-local time measured on this input."""
from __future__ import annotations

import plotly.graph_objects as go


def timing_figure(report: dict) -> go.Figure:
    """Horizontal bars of the median non-local time of each variant (from
    :meth:`app.services.inspection.InspectService.time_nonlocal`)."""
    names = list(report["results"])
    secs = [report["results"][n]["seconds"] * 1000 for n in names]
    runs = [report["results"][n]["runs"] for n in names]
    colours = {"Dense": "#c44e52", "LSP in": "#dd8452", "LCoA": "#4c72b0"}
    labels = [f"{s:.1f} ms (median of {r})" for s, r in zip(secs, runs)]
    bar_colours = [next((c for k, c in colours.items() if n.startswith(k)), "grey") for n in names]
    fig = go.Figure(go.Bar(y=names, x=secs, orientation="h", text=labels, textposition="auto",
                           marker_color=bar_colours))
    h, w = report["size"]
    title = (f"Non-local time per forward pass at {w}x{h} LR ({report['positions']:,} positions), "
             f"{report['groups']} groups")
    if "saving" in report:
        title += f": LCoA saves {report['saving']:.0%} vs dense"
    fig.update_layout(title=title, xaxis_title="milliseconds (median)", height=300,
                      margin=dict(l=220, r=20, t=60, b=40), yaxis=dict(autorange="reversed"))
    return fig
