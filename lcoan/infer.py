"""Super-resolve one image file.

    python -m lcoan.infer IN.png -o OUT.png --checkpoint checkpoints/lcoan-s-x2
    python -m lcoan.infer IN.jpg -o OUT.png --bicubic --scale 4

Large inputs run on overlapping tiles (progress bar); alpha is kept (upscaled with bicubic)
and 16-bit inputs give 16-bit PNGs. Exit code 2 with a message for unusable input.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from .checkpoint import CheckpointError, load
from .config import SCALES
from .imaging.io import ImageError, load_image, save_image
from .inference import default_device, idle_cores, reuse_freed_memory, upscale_image


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lcoan.infer", description=__doc__.split("\n")[0])
    p.add_argument("input", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True, help="output PNG")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--checkpoint", type=Path, help="checkpoint folder")
    what.add_argument("--bicubic", action="store_true", help="MATLAB bicubic instead of a network")
    p.add_argument("--scale", type=int, choices=SCALES, help="needed with --bicubic")
    p.add_argument("--tile", type=int, help="LR tile size (default: chosen from a memory budget)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads (default 0: the idle cores: every core of an idle machine on this image)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads if args.threads > 0 else idle_cores())
    reuse_freed_memory()  # large tiles without a page fault per fresh buffer (see lcoan.inference)
    try:
        if args.output.suffix.lower() != ".png":
            raise ValueError(f"output must be a .png file, got {args.output.name}")
        model = None
        if args.checkpoint:
            model = load(args.checkpoint, device=args.device or default_device())
        elif not args.scale:
            raise ValueError("--bicubic needs --scale")
        image = load_image(args.input)
        for note in image.notes:
            print(f"note: {note}", file=sys.stderr)
        bar = tqdm(total=1, desc="tiles", disable=model is None)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        start = time.perf_counter()
        with torch.inference_mode():
            options = {"tile": args.tile, "progress": progress} if model else {}
            rgb, alpha = upscale_image(model, image, args.scale, **options)
        bar.close()
        out = save_image(args.output, rgb, alpha, grayscale=image.grayscale)
    except (CheckpointError, ImageError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    h, w = image.rgb.shape[:2]
    tiles = f", {bar.total} tile(s)" if model is not None else ""
    seconds = time.perf_counter() - start
    print(f"{args.input.name} {w}x{h} -> {out} {rgb.shape[1]}x{rgb.shape[0]} in {seconds:.2f}s{tiles}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
