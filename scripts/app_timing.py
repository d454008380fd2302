"""Time the Super-resolve tab's work on a real-size photo (issue 15's targets, a benchmark, not a test).

    python -m scripts.app_timing [--checkpoints checkpoints] [--size 1280x1024] [--scale 2] [--write]

Runs what the tab runs (:func:`app.services.superresolve.compare_steps`, the app's own settings and thread choice)
on a photo of ``--size`` (scikit-image's astronaut, public domain, resized with bicubic: the time
depends on the pixel count, not the content) in Upscale mode:

* **whole LCoAN result**: from the start until bicubic and the tiled LCoAN pass over the whole
  image are done (target <= 60 s for 1280x1024 at x2 on 2 cores);
* **region comparison**: moving the region to a new place, i.e. no attention and dense NLA on a
  96x96 LR region with its context (target <= 10 s);
* the same again (cached).

Prints the machine's load average before and after: on a shared CPU the numbers move with it.
``--write`` puts the table into docs/api.md's ``app-timing`` block.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (5-min {five:.1f})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoints", type=Path, default=ROOT / "checkpoints")
    p.add_argument("--size", default="1280x1024", help="WxH of the photo")
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--threads", type=int, help="PyTorch threads (default: the app's automatic choice)")
    p.add_argument("--write", action="store_true", help="write the table into docs/api.md")
    args = p.parse_args(argv)

    import numpy as np
    import skimage.data
    import torch

    from app.services.models import ModelService
    from app.services.superresolve import compare_steps
    from app.settings import Settings
    from lcoan.imaging.degrade import imresize_to
    from lcoan.imaging.io import LoadedImage

    w, h = (int(v) for v in args.size.lower().split("x"))
    rgb = imresize_to(np.ascontiguousarray(skimage.data.astronaut()), (h, w))
    image = LoadedImage(rgb, None, "RGB", "PNG", False)
    settings = Settings(checkpoints=args.checkpoints)
    if args.threads:
        settings = settings.replace(threads=args.threads)
    service = ModelService.from_settings(settings)
    before = load()
    print(f"load average {before} on {os.cpu_count()} cores; torch threads {torch.get_num_threads()}; "
          f"{service.status()}")

    def run(centre):
        marks, start = {}, time.perf_counter()
        for c in compare_steps(service, image, args.scale, "upscale", centre=centre):
            marks[list(c.results)[-1]] = time.perf_counter() - start
        return c, marks

    c, cold = run(None)
    _, moved = run((0.3, 0.3))
    _, cached = run((0.3, 0.3))
    after = load()
    ow, oh = c.output_size
    lc = c.results["lcoan"]
    region = f"{c.box.w}x{c.box.h} LR"
    whole = cold["lcoan"]
    region_s = moved["dense"] - moved["lcoan"]
    rows = [
        ("whole LCoAN result (bicubic + tiled LCoAN), cold", whole, 60,
         f"{lc.tiles} tiles of {lc.tile[1]}x{lc.tile[0]} LR (edge padding included); LCoAN alone {lc.seconds:.1f} s"),
        (f"region comparison after moving it ({region}: no attention + dense NLA)", region_s, 10,
         f"no attention {c.results['none'].seconds:.1f} s, dense NLA {c.results['dense'].seconds:.1f} s "
         "(first region)"),
        ("everything again (cached)", cached["dense"], None, ""),
    ]
    table = [f"`python -m scripts.app_timing --size {w}x{h} --scale {args.scale}` (in-process, what the tab runs): "
             f"a {w}x{h} photo at x{args.scale} -> {ow}x{oh}, Upscale mode, {torch.get_num_threads()} PyTorch "
             f"thread(s) (the app's choice), {os.cpu_count()} cores, load average {before} before and {after} after "
             "(two training runs and other jobs shared the cores).", "",
             "| step | seconds | target | detail |", "|---|---|---|---|"]
    for name, secs, target, detail in rows:
        ok = "" if target is None else (f"<= {target} s: {'met' if secs <= target else 'NOT met'}")
        table.append(f"| {name} | {secs:.1f} | {ok} | {detail} |")
    text = "\n".join(table)
    print(text)
    if args.write:
        from scripts.blocks import splice
        splice(ROOT / "docs" / "api.md", "app-timing", text, append=False)
        print("docs/api.md updated")
    service.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
