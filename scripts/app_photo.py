"""Issue 25: a photo through the app's service, as the Super-resolve tab runs it (compare_steps).

    python -m scripts.app_photo                       # 1280x1024 synthetic photo, x2, upscale, 2 threads
    python -m scripts.app_photo --size 4216 2371 --threads 2

Prints the time to each streamed step: the first result (bicubic on the region and the region
methods), LCoAN on the whole image, the whole-image bicubic; the LCoAN tiles; the PNG write (the tab
writes it in the background while the page shows the result) and the process's peak RSS.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time

from app.services.models import ModelService
from app.services.superresolve import compare_steps, save_result
from app.settings import Settings
from lcoan.bench.whole import synthetic
from lcoan.imaging.io import LoadedImage
from lcoan.inference import reuse_freed_memory


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.app_photo", description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, nargs=2, default=(1280, 1024), metavar=("W", "H"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lcoan-tile", type=int, default=None, help="LCOAN_TILE (default: the app's)")
    args = p.parse_args(argv)
    reuse_freed_memory(2**30)
    settings = Settings.from_env().replace(threads=args.threads)
    if args.lcoan_tile:
        settings = settings.replace(lcoan_tile=args.lcoan_tile)
    service = ModelService.from_settings(settings)
    w, h = args.size
    image = LoadedImage(rgb=synthetic(h, w), alpha=None, source_mode="RGB", format=None, grayscale=False)
    start = time.perf_counter()
    last = None
    for c in compare_steps(service, image, 2, "upscale"):
        at = time.perf_counter() - start
        whole = [m for m, r in c.results.items() if r.box is None]
        print(f"{at:7.2f} s: results {', '.join(c.results)} (whole image: {', '.join(whole) or 'none yet'})",
              flush=True)
        last = c
    lc = last.results["lcoan"]
    print(f"LCoAN: {lc.seconds:.2f} s, {lc.note}")
    t = time.perf_counter()
    path = save_result(service, last, "lcoan", "photo")
    print(f"PNG write: {time.perf_counter() - t:.2f} s ({path.stat().st_size / 1e6:.1f} MB); "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB; "
          f"{settings.threads} thread(s), LCoAN tile {settings.lcoan_tile}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
