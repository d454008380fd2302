"""Issue 25's step log: the whole-image path of an earlier commit against the working tree, interleaved.

    python -m scripts.speed_steps                     # before = 065bae5 (the code before the speed work)
    python -m scripts.speed_steps --malloc   # both with freed buffers kept (lcoan.inference.reuse_freed_memory)
    python -m scripts.speed_steps --tiles 128 256 384 512   # per-pixel cost against the tile side (working tree)
    python -m scripts.speed_steps --nonlocal 64 128   # paper-preset LCoA alone (bench's nonlocal_part), 1 thread
    python -m scripts.speed_steps --profile --size 352   # one pass of none / lcoan: medians and lcoan's top operators
    python -m scripts.speed_steps --neighbour-blocks assets/examples/*.png   # could LSP skip neighbour key blocks?

Run timings with the background trainings paused: ``bash scripts/pause_training.sh python -m scripts.speed_steps ...``.

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
    p.add_argument("--nonlocal", dest="nonlocal_sizes", type=int, nargs="*",
                   help="LR sides: the paper preset's non-local part (lsp+coa, all groups) before / now")
    p.add_argument("--profile", action="store_true",
                   help="one whole-image pass (no tiles) of none / lcoan at --size: medians, ratio, "
                        "lcoan's top operators")
    p.add_argument("--neighbour-blocks", nargs="+", type=Path, metavar="IMAGE",
                   help="share of LSP neighbour key blocks whose weights sum to <= eps for every query (lcoan-s-x2)")
    args = p.parse_args(argv)
    if args.nonlocal_sizes:
        return nonlocal_steps(args)
    if args.neighbour_blocks:
        return neighbour_blocks(args.neighbour_blocks)
    if args.profile:
        return profile_pass(args)
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


def profile_pass(args: argparse.Namespace) -> int:
    """none and lcoan-s-x2 on one S x S synthetic LR input in one pass (freed buffers kept), kinds
    interleaved, at each thread count; then torch.profiler's top operators of one lcoan pass."""
    from torch.profiler import ProfilerActivity, profile

    from lcoan.bench.workload import synthetic_input

    reuse_freed_memory()
    x = synthetic_input(args.size, args.size, 0)
    models = {k: load(ROOT / "checkpoints" / f"{k}-s-x2").eval() for k in ("none", "lcoan")}
    px = args.size**2
    with torch.inference_mode():
        for threads in args.threads:
            torch.set_num_threads(threads)
            fns = {k: (lambda m=m: m(x)) for k, m in models.items()}
            for fn in fns.values():
                fn()
            med = {k: statistics.median(v) / px * 1e6 for k, v in round_robin(fns, args.repeats).items()}
            print(f"{args.size}x{args.size} LR, one pass, {threads} thread(s): none {med['none']:.2f}, "
                  f"lcoan {med['lcoan']:.2f} us / LR px, lcoan / none {med['lcoan'] / med['none']:.2f}")
        torch.set_num_threads(args.threads[0])
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            models["lcoan"](x)
    print(prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=15,
                                                             max_name_column_width=28, max_shapes_column_width=64))
    return 0


def neighbour_blocks(paths: list[Path], side: int = 384) -> int:
    """For each image (its top-left ``side`` x ``side`` LR crop through lcoan-s-x2): the share of windows
    whose previous / next key block holds at most eps of every query's weight (a block LSP could skip)."""
    import numpy as np

    from lcoan.imaging.io import load_image
    from lcoan.inference import to_tensor

    model = load(ROOT / "checkpoints" / "lcoan-s-x2").eval()
    captured = {}

    def capture(maker, features):
        captured["pattern"] = maker(features)
        return captured["pattern"]

    for path in paths:
        rgb = np.ascontiguousarray(load_image(path).rgb[:side, :side])
        with torch.inference_mode():
            model(to_tensor(rgb), make_pattern=capture)
        weights = captured["pattern"].weights[0][0]  # (nW, W, 3W)
        w = weights.shape[1]
        prev = weights[:, :, :w].sum(-1).amax(-1)
        nxt = weights[:, :, 2 * w:].sum(-1).amax(-1)
        shares = ", ".join(f"eps {eps:g}: previous {(prev <= eps).float().mean():.2f}, "
                           f"next {(nxt <= eps).float().mean():.2f}" for eps in (1e-3, 1e-5, 1e-7))
        print(f"{path.name} ({rgb.shape[1]}x{rgb.shape[0]}, {weights.shape[0]} windows): {shares}")
    return 0


def nonlocal_steps(args: argparse.Namespace) -> int:
    """lsp+coa of the paper preset (random weights, seeded), the earlier code's nonlocal_part against
    the current one, on the same features, interleaved, 1 thread; with the paper's FLOP floor."""
    from torch.utils.flop_counter import FlopCounterMode

    from lcoan.bench.whole import sgemm_gflops
    from lcoan.bench.workload import build_models, nonlocal_part

    tmp = tempfile.TemporaryDirectory()
    before_package(args.before, Path(tmp.name))
    old_workload = importlib.import_module("lcoan_before.bench.workload")
    torch.set_num_threads(1)
    old_model = old_workload.build_models("paper", torch.device("cpu"))["lsp+coa"]
    new_model = build_models("paper", torch.device("cpu"))["lsp+coa"]
    new_model.load_state_dict(old_model.state_dict())
    for size in args.nonlocal_sizes:
        y = torch.randn(1, new_model.cfg.num_feat, size, size)
        fns = {"before": old_workload.nonlocal_part(old_model, "lsp+coa", y),
               "now": nonlocal_part(new_model, "lsp+coa", y)}
        with torch.inference_mode():
            for fn in fns.values():
                fn()
            with FlopCounterMode(display=False) as counter:
                fns["now"]()
            med = {k: statistics.median(v) * 1e3 for k, v in round_robin(fns, args.repeats + 2).items()}
            rate = sgemm_gflops()
        floor = counter.get_total_flops() / rate / 1e6
        print(f"paper preset lsp+coa {size}x{size}, 1 thread: before {med['before']:.1f} ms, now {med['now']:.1f} ms, "
              f"now / before {med['now'] / med['before']:.2f}; FLOPs {counter.get_total_flops() / 1e9:.2f} G, "
              f"sgemm {rate:.0f} GFLOPS, floor {floor:.0f} ms, now / floor {med['now'] / floor:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
