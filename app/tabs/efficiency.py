"""Efficiency tab: the non-local time of LCoA vs dense NLA for this input's size, measured on the
spot, with the repository's benchmark curve for context."""
from __future__ import annotations

import gradio as gr

from app.errors import gpu, reported
from app.services.inspection import InspectService, inspector_for
from app.services.models import ServiceError
from app.services.region import MAX_POSITIONS
from app.views.efficiency import timing_figure

from ..session import Shared
from ..source import ROOT, source_panel

TITLE = "Efficiency"
CURVE = ROOT / "benchmarks" / "nonlocal_time.png"


def describe(report: dict) -> str:
    res = report["results"]
    threads = f"{report['threads']} thread{'' if report['threads'] == 1 else 's'}"
    lines = [f"Measured just now on this machine ({threads}), inference, batch 1, float32; "
             f"median of up to 3 runs each, timed round robin. Features: what the first group's attention sees "
             f"on this image, at "
             f"{report['size'][1]}x{report['size'][0]} LR ({report['positions']:,} positions), "
             f"{report['groups']} groups, "
             f"W = {report['window']}."]
    if report.get("region"):
        lines.append(report["region"])
    if "saving" in report:
        lines.append(f"**LCoA needs {1 - report['saving']:.0%} of dense NLA's non-local time here "
                     f"(saves {report['saving']:.0%}).** The paper reports about 83 % less non-local modelling time "
                     "(inference) for its full-size network.")
    lsp = res.get("LSP in every group (no CoA)", {}).get("seconds")
    coa = res.get("LCoA (LSP once + CoA)", {}).get("seconds")
    if lsp and coa:
        lines.append(f"Sharing the pattern (CoA) alone: {coa / lsp:.0%} of the time of recomputing LSP in every group.")
    lines.append("Other processes on the machine make single measurements noisy; the curve below comes from the "
                 "repository's benchmark (`python -m lcoan.bench`).")
    return "  \n".join(lines)


def build(service, shared: Shared | None = None) -> None:
    inspector: InspectService = inspector_for(service)
    gr.Markdown("Times only the non-local part of a forward pass (all groups): dense NLA runs a fused "
                "`scaled_dot_product_attention` over N x N in every group; 'LSP in every group' clusters, sorts "
                "and computes windowed weights per group; LCoA does that once and lets every group reuse the "
                f"weights. Inputs above {MAX_POSITIONS:,} LR positions are measured on a centre crop of that size.")
    # the timing runs on a centre crop of large inputs (not on the downscale the inspect tabs trace)
    src = source_panel(inspector, "efficiency", shared, show_region=False, region="crop", verb="timed")
    run = gr.Button("Measure on this input", variant="primary")
    info = gr.Markdown()
    plot = gr.Plot(label="Non-local time, this input")
    data = gr.JSON(label="Timings", visible=False)
    if CURVE.exists():
        gr.Image(str(CURVE), label="Benchmark: non-local time vs input size (repository run)", interactive=False)
    else:
        gr.Markdown("*The benchmark curve (`benchmarks/nonlocal_time.png`) is not in this checkout: run "
                    "`python -m lcoan.bench` to make it.*")

    @gpu
    @reported(3, status=1)
    def measure(image, scale, progress=gr.Progress()):
        if image is None:
            raise ServiceError("Upload an image or pick an example first.")
        progress(0.1, desc="timing dense NLA, LSP per group and LCoA (dense is the slow one)")
        report = inspector.time_nonlocal(image, scale)
        return timing_figure(report), describe(report), report

    run.click(measure, inputs=[src.image, src.scale], outputs=[plot, info, data], api_name="efficiency")
