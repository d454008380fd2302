"""The command line of :mod:`lcoan.bench`: options -> :class:`.record.Options`, run, write the outputs."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from .measure import run
from .record import Options

DESCRIPTION = """Efficiency benchmark of the non-local part: LCoAN (lsp+coa) against the LSP-only ablation
(lsp) and dense non-local attention (dense: torch SDPA; dense-naive: matmul, softmax, matmul).
What is timed and how: the docstring of lcoan.bench and benchmarks/README.md."""


def parse_args(argv: list[str] | None = None) -> Options | argparse.Namespace:
    """Command-line arguments -> the run's :class:`Options`."""
    p = argparse.ArgumentParser(prog="python -m lcoan.bench", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny preset and sizes, two repeats (seconds; for tests)")
    p.add_argument("--out", type=Path, default=Path("benchmarks"), help="folder for results.csv, nonlocal_time.png")
    p.add_argument("--readme", type=Path, default=None, help="markdown file whose generated block is rewritten "
                   "(default: OUT/README.md)")
    p.add_argument("--device", action="append", choices=["cpu", "cuda"], help="repeatable; default: cpu (+ cuda)")
    p.add_argument("--preset", dest="presets", action="append", help="repeatable; default: paper and s")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads (default 1: stable timings on a shared machine; 0 = torch's default)")
    p.add_argument("--full-limit", type=float, default=1.0,
                   help="time every group when they take at most this many seconds together, else one group")
    p.add_argument("--naive-gib", type=float, default=4.0, help="largest N x N matrices the naive kind may hold")
    p.add_argument("--sizes", type=int, nargs="+", help="LR sides to measure (default: the plan's; no network split)")
    p.add_argument("--silent", action="store_true")
    whole = p.add_argument_group("whole-image benchmark (issue 25; lcoan.bench.whole)")
    whole.add_argument("--whole", action="store_true", help="time the whole-image path instead (README block "
                       "'whole'; --readme default README.md)")
    whole.add_argument("--size", type=int, default=512, help="LR side of the whole image (default 512)")
    whole.add_argument("--photos", action="store_true", help="also 1280x1024 and 4216x2371 photos through lcoan.infer")
    whole.add_argument("--photo-threads", type=int, default=0,
                       help="threads of the photo runs (default: the count that was faster for lcoan in the table)")
    args = p.parse_args(argv)
    if args.whole:
        return args
    return Options(quick=args.quick, out=args.out, readme=args.readme, devices=tuple(args.device or ()),
                   presets=tuple(args.presets or ()), threads=args.threads, full_limit=args.full_limit,
                   naive_gib=args.naive_gib, sizes=tuple(args.sizes or ()), silent=args.silent,
                   argv=tuple(sys.argv[1:] if argv is None else argv))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write results.csv, nonlocal_time.png and the README block."""
    options = parse_args(argv)
    if isinstance(options, argparse.Namespace):
        return main_whole(options, tuple(sys.argv[1:] if argv is None else argv))
    if options.threads > 0:
        torch.set_num_threads(options.threads)
    from .report import write_outputs  # matplotlib only when writing

    start = time.perf_counter()
    record = run(options)
    record.wall_s = time.perf_counter() - start
    paths = write_outputs(record)
    if not options.silent:
        print(f"done in {record.wall_s:.0f} s: " + ", ".join(str(p) for p in paths))
    return 0


def main_whole(args: argparse.Namespace, argv: tuple[str, ...]) -> int:
    """``--whole``: the whole-image benchmark at 1 thread and at every core, its CSV and README block."""
    import os

    from .whole import run as run_whole
    from .whole import run_photos
    from .whole_report import write_outputs as write_whole

    start = time.perf_counter()
    size = 24 if args.quick and args.size == 512 else args.size
    threads = (1,) if args.quick else tuple(sorted({1, os.cpu_count() or 1}))
    log = (lambda s: None) if args.silent else (lambda s: print(s, flush=True))
    readme = args.readme or (args.out / "README.md" if args.quick else Path("README.md"))

    def write(record) -> list[Path]:  # after the table and after each photo: a cut-short run keeps its rows
        record.wall_s = time.perf_counter() - start
        return write_whole(record, args.out, readme)

    record = run_whole(argv, args.out, args.quick, size, False, threads, log)
    paths = write(record)
    if args.photos and not args.quick:
        fastest = min((r for r in record.rows if r["kind"] == "lcoan"), key=lambda r: r["us_per_px"])["threads"]
        run_photos(record, args.photo_threads or fastest, log, after=write)
    log(f"done in {record.wall_s:.0f} s: " + ", ".join(str(p) for p in paths))
    return 0
