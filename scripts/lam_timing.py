"""Time the Experiments tab's attribution (LAM) on a 64x64-LR crop with the S models.

    python -m scripts.lam_timing [--image assets/examples/brick_wall.png] [--steps 8] [--threads 2]

Degrade-then-restore as the tab does it: the centre crop of the picture is the HR reference, its
x2 bicubic downscale (64x64 LR) the input; one output patch, LCoAN, dense NLA and no attention in
turn. Prints each model's seconds, completeness gap and diffusion index, the load average and the total.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

from lcoan import checkpoint
from lcoan.imaging.degrade import degrade
from lcoan.imaging.io import load_image, to_uint8
from lcoan.inference import to_tensor
from lcoan.introspect.lam import STEPS, Patch, attribute

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--image", default=str(ROOT / "assets" / "examples" / "brick_wall.png"))
    p.add_argument("--steps", type=int, default=STEPS)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lr-size", type=int, default=64)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rgb = to_uint8(load_image(Path(args.image)).rgb)
    side = 2 * args.lr_size
    h, w = rgb.shape[:2]
    if h < side or w < side:
        raise SystemExit(f"{args.image} is smaller than {side}x{side}")
    hr = rgb[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
    x = to_tensor(degrade(hr, 2))
    box = Patch(side // 2 - 8, side // 2 - 8, 16)
    print(f"{args.image}: {args.lr_size}x{args.lr_size} LR, x2, {args.steps} steps, {args.threads} threads, "
          f"load average before {os.getloadavg()[0]:.1f}")
    total, cpu = 0.0, time.process_time()
    for name in ("lcoan-s-x2", "dense-s-x2", "none-s-x2"):
        model = checkpoint.load(ROOT / "checkpoints" / name).eval()
        result = attribute(model, x, box, steps=args.steps)
        total += result.seconds
        print(f"{name}: {result.seconds:.1f} s, completeness gap {result.gap:.3f}, "
              f"DI {result.diffusion_index:.1f}", flush=True)
    cpu = time.process_time() - cpu
    print(f"total {total:.1f} s wall, {cpu:.1f} s CPU time of this process (about {cpu / args.threads:.1f} s wall "
          f"on {args.threads} idle cores); load average after {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
