"""Time the teaching views of issue 27 (a benchmark, not a test):

    python -m scripts.teach_timing [--checkpoints checkpoints] [--photo PATH] [--size 256x170] [--write]

Runs what the tabs run (the app's services and views, the app's thread choice) on a photo resized to
``--size`` (default: scikit-image's ``rocket``, a tower with a repeated lattice, public domain):

* **walkthrough**: the eight steps (tensors and pictures) for the far-reaching query, cold (the traced
  pass included) and again for another query on the existing trace (target <= 10 s);
* **k-means live**: the default run (trained start, 12 EMA steps) and a fresh start (10 k-means
  iterations, then 12 EMA steps), frames and occupancy figure included (target <= 10 s);
* **one query**: its LSP attention, the dense model's at every layer, the mass splits and the overlay, on
  existing traces (target <= 1.5 s).

Prints the load average: on a shared CPU the numbers move with it. ``--write`` puts the table into
docs/api.md's ``teach-timing`` block.
"""
from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"walkthrough": 10.0, "kmeans": 10.0, "query": 1.5}


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (5-min {five:.1f})"


def photo_file(path: Path | None, size: tuple[int, int]) -> Path:
    from PIL import Image

    if path is None:
        import skimage.data
        img = Image.fromarray(skimage.data.rocket())
        name = "rocket"
    else:
        img = Image.open(path).convert("RGB")
        name = path.stem
    out = Path(tempfile.mkdtemp()) / f"{name}_{size[0]}x{size[1]}.png"
    img.resize(size, Image.BICUBIC).save(out)
    return out


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoints", type=Path, default=ROOT / "checkpoints")
    p.add_argument("--photo", type=Path, help="a photograph (default: scikit-image's rocket)")
    p.add_argument("--size", default="256x170", help="WxH the photo is resized to (the LR input)")
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--write", action="store_true", help="write the table into docs/api.md")
    args = p.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))

    from app.services import attention, kmeans, walkthrough
    from app.services.inspection import inspector_for
    from app.services.models import ModelService
    from app.settings import Settings
    from app.views import attention as attention_views
    from app.views import kmeans as kmeans_views
    from app.views.walkthrough import step_pictures

    service = ModelService.from_settings(Settings.from_env().replace(checkpoints=args.checkpoints))
    inspector = inspector_for(service)
    picture = str(photo_file(args.photo, (w, h)))
    for kind in ("lcoan", "dense"):  # loading the checkpoints is start-up, not the view
        if service.has(kind, args.scale):
            service.get(kind, args.scale)
    before = load()
    rows = []

    def png(image) -> int:
        """Encode as Gradio does for a PNG output (what the page downloads)."""
        buf = io.BytesIO()
        image.save(buf, "PNG")
        return buf.tell()

    def walk(row=-1, col=-1):
        insp, wt = walkthrough.run(inspector, picture, args.scale, "downscale", row, col)
        pictures = step_pictures(wt, insp.image)
        return insp, wt, [png(p) for p in pictures]

    (insp, wt, _), cold = timed(walk)
    rows.append(("walkthrough, 8 steps, cold (traced pass + far-reaching query + PNGs)", cold, "walkthrough",
                 f"traced at {insp.size[1]}x{insp.size[0]} LR; query {tuple(wt.lsp.query)}; LCoAN trace "
                 f"{insp.seconds.get('lcoan', 0):.1f} s"))
    (_, _, _), warm = timed(lambda: walk(insp.size[0] // 3, insp.size[1] // 3))
    rows.append(("walkthrough, 8 steps, another query on the trace", warm, "walkthrough", ""))

    def km(start):
        i, run = kmeans.run(inspector, picture, args.scale, "downscale", start, seed=len(rows))
        frames = [png(f) for f, _ in kmeans_views.frame_pictures(run, i.image)]
        return run, frames, kmeans_views.occupancy_figure(run).to_json()

    for start in ("trained", "fresh"):
        (run, frames, _), sec = timed(lambda s=start: km(s))
        rows.append((f"k-means live, {start} start ({len(frames)} frames as PNGs and the figure)", sec, "kmeans",
                     f"clusters used {run.frames[0].occupied} -> {run.frames[-1].occupied}"))

    insp.dense  # the dense trace exists before the query is timed  # noqa: B018
    y, x = insp.size[0] // 4, insp.size[1] // 2

    inspector.recall_stats(insp)  # per image, memoised: made with the first query

    def query():
        """What the Attention tab renders for a newly clicked query, figures serialised as Gradio sends them."""
        q = attention.lsp_query(inspector, insp, y, x)
        dense = attention.dense_queries(inspector, insp, y, x)
        stats = inspector.recall_stats(insp)
        attention_views.attention_overlay(insp.lcoan, insp.image, q.position, q=q).tobytes()
        attention_views.match_strip(insp.image, q).tobytes()
        if dense:  # the same drawing for dense layer 1
            attention_views.attention_overlay(insp.dense, insp.image, q.position, q=dense[0]).tobytes()
            attention_views.match_strip(insp.image, dense[0]).tobytes()
        figures = [attention_views.mass_figure({"LSP": q, **{f"dense {i + 1}": d for i, d in enumerate(dense)}}),
                   attention_views.recall_figure(stats["values"].numpy(), q.recall),
                   attention_views.contributions_figure(insp.lcoan, q.position),
                   attention_views.dense_maps_figure(insp.dense, q.position)]
        for fig in figures:
            fig.to_json()
        attention.payload(insp, q, dense, stats)
        return q, dense

    (q, dense), sec = timed(query)
    rows.append(("one query (Attention tab): LSP + every dense layer, mass splits, LSP and dense overlays and "
                 "patches, all four figures serialised", sec, "query",
                 f"beyond the receptive field: LSP {q.mass.beyond_rf:.0%}, dense layer 1 "
                 f"{dense[0].mass.beyond_rf:.0%}" if dense else ""))
    after = load()
    import torch
    head = (f"`python -m scripts.teach_timing --size {w}x{h} --scale {args.scale}` (in-process, what the tabs run): "
            f"{Path(picture).stem}, {torch.get_num_threads()} PyTorch thread(s) (the app's choice), "
            f"{os.cpu_count()} cores, load average {before} before and {after} after.")
    table = ["| step | seconds | target | detail |", "|---|---|---|---|"]
    for name, sec, target, detail in rows:
        limit = TARGETS[target]
        table.append(f"| {name} | {sec:.2f} | <= {limit:g} s: {'met' if sec <= limit else 'MISSED'} | {detail} |")
    text = head + "\n\n" + "\n".join(table)
    print(text)
    if args.write:
        from scripts.blocks import splice
        splice(ROOT / "docs" / "api.md", "teach-timing", text)
    service.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
