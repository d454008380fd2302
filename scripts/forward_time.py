"""Whole-network forward time per attention kind, interleaved, median of repeats.

    python -m scripts.forward_time --preset s --sizes 64 128 --repeats 3 [--threads 1]

Random weights (time does not depend on them), batch 1, float32, torch.inference_mode.
"""
from __future__ import annotations

import argparse
import sys

import torch

from lcoan.bench.timing import medians, round_robin, seconds_of
from lcoan.config import preset
from lcoan.network import LCoAN
from lcoan.training.machine import describe, load_average


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="s")
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    kinds = ("none", "lsp", "dense")
    models = {k: LCoAN(preset(args.preset, scale=args.scale, attention=k)).eval() for k in kinds}
    load = load_average()
    print(f"preset {args.preset} x{args.scale}, {describe('cpu', detailed=True)}, "
          f"load average {'n/a' if load is None else f'{load:.1f}'}")
    print("| LR size | " + " | ".join(f"{k} (ms)" for k in kinds) + " | lsp / dense |")
    print("|---|" + "---:|" * (len(kinds) + 1))
    with torch.inference_mode():
        for size in args.sizes:
            x = torch.rand(1, 3, size, size)
            fns = {k: (lambda m=m, x=x: m(x)) for k, m in models.items()}
            for fn in fns.values():
                seconds_of(fn)  # warm-up
            med = {k: 1000 * s for k, s in medians(round_robin(fns, args.repeats)).items()}
            print(f"| {size}x{size} | " + " | ".join(f"{med[k]:,.0f}" for k in kinds)
                  + f" | {med['lsp'] / med['dense']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
