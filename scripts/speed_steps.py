"""Issue 25's step log: the whole-image path of an earlier commit against the working tree, interleaved.

    python -m scripts.speed_steps                     # before = 065bae5 (the code before the speed work)
    python -m scripts.speed_steps --malloc   # both with freed buffers kept (lcoan.inference.reuse_freed_memory)
    python -m scripts.speed_steps --tiles 128 256 384 512   # per-pixel cost against the tile side (working tree)

The earlier code is extracted with ``git archive`` into a temporary package (``lcoan_before``); both
run ``upscale_array`` (edge padding, automatic tiles) on the same synthetic S x S LR image with the
same shipped weights, at 1 and 2 threads, kinds and versions in one round robin (median of repeats).
Prints one line per case; the step log is ``runs/notes/speed.md``.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from lcoan.bench.timing import round_robin
from lcoan.bench.whole import synthetic
from lcoan.checkpoint import load
from lcoan.inference import DEFAULT_PAD, reuse_freed_memory, upscale_array

ROOT = Path(__file__).resolve().parents[1]


def before_package(commit: str, folder: Path):
    """The lcoan package of ``commit`` importable as ``lcoan_before``."""
    tar = subprocess.run(["git", "archive", commit, "lcoan"], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=tar, check=True)
    package = folder / "lcoan_before"
    (folder / "lcoan").rename(package)
    spec = importlib.util.spec_from_file_location("lcoan_before", package / "__init__.py",
                                                  submodule_search_locations=[str(package)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["lcoan_before"] = module  # its relative imports resolve inside it
    spec.loader.exec_module(module)
    return importlib.import_module("lcoan_before.inference"), importlib.import_module("lcoan_before.network")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.speed_steps", description=__doc__.split("\n")[0])
    p.add_argument("--before", default="065bae5")
    p.add_argument("--size", type=int, default=384)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--malloc", action="store_true", help="keep freed buffers in the heap (both versions)")
    p.add_argument("--tiles", type=int, nargs="*", help="tile sides to compare (working tree only)")
    args = p.parse_args(argv)
    if args.malloc:
        reuse_freed_memory()
    rgb = synthetic(args.size, args.size)
    new = {k: load(ROOT / "checkpoints" / f"{k}-s-x2").eval() for k in ("none", "lcoan")}
    fns = {}
    if args.tiles:
        for k, m in new.items():
            for t in args.tiles:
                fns[f"{k} tile {t}"] = lambda m=m, t=t: upscale_array(m, rgb, pad=DEFAULT_PAD, tile=t - 2 * DEFAULT_PAD)
    else:
        tmp = tempfile.TemporaryDirectory()
        old_inference, old_network = before_package(args.before, Path(tmp.name))
        for k, m in new.items():
            old = old_network.LCoAN(m.cfg).eval()
            old.load_state_dict(m.state_dict())
            fns[f"{k} before"] = lambda m=old: old_inference.upscale_array(m, rgb, pad=DEFAULT_PAD)
            fns[f"{k} now"] = lambda m=m: upscale_array(m, rgb, pad=DEFAULT_PAD)
    px = args.size**2
    for threads in args.threads:
        torch.set_num_threads(threads)
        with torch.inference_mode():
            for fn in fns.values():
                fn()
            samples = round_robin(fns, args.repeats)
        med = {k: statistics.median(v) / px * 1e6 for k, v in samples.items()}
        line = ", ".join(f"{k} {v:.2f}" for k, v in med.items())
        print(f"{args.size}x{args.size} LR, {threads} thread(s), malloc kept: {args.malloc}; us / LR px: {line}")
        for when in ("before", "now"):
            if f"lcoan {when}" in med:
                print(f"  lcoan / none {when}: {med[f'lcoan {when}'] / med[f'none {when}']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
