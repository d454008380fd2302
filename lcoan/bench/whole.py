"""Whole-image benchmark (issue 25): what a photo costs through the user path, against the floor.

    python -m lcoan.bench --whole            # ~5 min on the 2-core CPU (photos included)
    python -m lcoan.bench --whole --quick    # seconds, tiny random networks (tests)

Measured in one run:
- sgemm: a 2048 x 2048 float32 matmul (GFLOPS, median of 5) at 1 and 2 threads: the machine's rate;
- per kind, microseconds per LR pixel through :func:`lcoan.inference.upscale_array` with the
  user-facing defaults (edge padding, automatic tiles), at 1 and 2 threads, kinds interleaved
  (round robin of :mod:`.timing`, median): ``none`` and ``lcoan`` on a whole S x S image,
  ``dense-region`` on the app's largest dense region (96 x 96 LR, one pass);
- FLOPs counted exactly from the operators one pass runs (:func:`network_flops`:
  ``torch.utils.flop_counter`` counts every convolution, matmul and batched matmul from its shapes,
  2 per multiply-add; torch SDPA, which it does not count, is added as 2 N^2 (D + C) per dense
  group). ``floor`` = those FLOPs / the sgemm rate of the same thread count: the time the pass
  would take with every FLOP at sgemm speed and nothing else (no softmax, gathers or tile overlap);
- photos (synthetic, a smooth random image with fine noise; ``--photos``): ``python -m lcoan.infer``
  on a 1280 x 1024 and a 4216 x 2371 input at x2 in a child process: wall time (load, tiles, PNG
  write) and its peak resident memory (``VmHWM``, printed by the child at exit).

Checkpoints: ``checkpoints/{none,lcoan,dense}-s-x2`` when present, else seeded random ``s`` networks
of the same shapes (the cost does not depend on the weights). Rows go to ``whole.csv`` in the output
folder and the ``whole`` block of the README (:mod:`.whole_report`).
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from ..config import preset
from ..inference import DEFAULT_PAD, reuse_freed_memory, upscale_array
from ..network import LCoAN
from .record import load_average, machine_line
from .timing import round_robin
from .workload import synthetic_input

ROOT = Path(__file__).resolve().parents[2]
KINDS: tuple[str, ...] = ("none", "lcoan", "dense-region")
CHECKPOINT = {"none": "none-s-x2", "lcoan": "lcoan-s-x2", "dense-region": "dense-s-x2"}
ATTENTION = {"none": "none", "lcoan": "lsp", "dense-region": "dense"}
REGION = 96  # the app's largest dense region side (LR pixels)
PHOTOS: tuple[tuple[int, int], ...] = ((1280, 1024), (4216, 2371))


@dataclass
class WholeRecord:
    """One run: options, machine, sgemm rates, rows (per kind and thread count) and photo rows."""

    argv: tuple[str, ...]
    size: int
    machine: str = ""
    load_start: str = "n/a"
    load_end: str = "n/a"
    sgemm: dict[int, float] = field(default_factory=dict)  # threads -> GFLOPS
    rows: list[dict] = field(default_factory=list)
    photos: list[dict] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def command(self) -> str:
        return " ".join(("python -m lcoan.bench",) + self.argv)


def sgemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    """float32 matmul rate at the current thread count (GFLOPS, median)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    torch.mm(a, b, out=out)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def network_flops(model: LCoAN, h: int, w: int) -> dict[str, int]:
    """Exact FLOPs (2 per multiply-add) of one pass on an h x w LR input, by operator.

    Convolutions, ``mm`` / ``addmm`` (value projections), ``bmm`` (k-means assignment, window scores,
    aggregation) as ``torch.utils.flop_counter`` counts them from their shapes; ``sdpa``: the dense
    groups' fused attention, 2 N^2 (D + C) each, which the counter does not see on CPU.
    """
    x = torch.rand(1, 3, h, w, device=next(model.parameters()).device)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x)
    out = {str(op).removeprefix("aten."): int(v) for op, v in counter.get_flop_counts()["Global"].items()}
    cfg = model.cfg
    if cfg.attention == "dense":
        n = h * w
        out["sdpa"] = cfg.num_groups * 2 * n * n * (cfg.match_dim + cfg.num_feat)
    return out


def load_kind(kind: str, quick: bool) -> LCoAN:
    """The shipped x2 checkpoint of a kind, else a seeded random network of its shape."""
    folder = ROOT / "checkpoints" / CHECKPOINT[kind]
    if not quick and (folder / "model.safetensors").exists():
        from ..checkpoint import load

        return load(folder, device="cpu").eval()
    torch.manual_seed(0)
    return LCoAN(preset("tiny" if quick else "s", attention=ATTENTION[kind], scale=2)).eval()


def synthetic(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random colour image with fine noise, h x w x 3 uint8 (stands in for a photo)."""
    x = synthetic_input(h, w, seed)
    return (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def time_kinds(models: dict[str, LCoAN], images: dict[str, np.ndarray], threads: int,
               repeats: int) -> dict[str, list[float]]:
    """Seconds of each kind's user-path call at ``threads``, interleaved, after one warm-up each."""
    torch.set_num_threads(threads)
    fns: dict[str, Callable[[], object]] = {
        k: (lambda m=models[k], im=images[k]: upscale_array(m, im, pad=DEFAULT_PAD)) for k in models}
    for fn in fns.values():
        fn()
    return round_robin(fns, repeats)


def run_photo(kind: str, width: int, height: int, folder: Path, threads: int) -> dict:
    """``python -m lcoan.infer`` on a synthetic photo in a child process: seconds and peak RSS."""
    from PIL import Image

    src, dst = folder / f"photo-{width}x{height}.png", folder / f"out-{kind}-{width}x{height}.png"
    if not src.exists():
        Image.fromarray(synthetic(height, width, seed=width)).save(src, compress_level=1)
    cmd = [sys.executable, "-c", PEAK_WRAPPER, "lcoan.infer", str(src), "-o", str(dst),
           "--checkpoint", str(ROOT / "checkpoints" / CHECKPOINT[kind]), "--threads", str(threads)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr[-2000:]}")
    peak = next(int(line.split("=")[1]) for line in proc.stderr.splitlines() if line.startswith("peak_kib="))
    return dict(kind=kind, width=width, height=height, threads=threads, seconds=seconds,
                peak_gib=peak * 1024 / 2**30, line=proc.stdout.strip())


# Runs a module as __main__ and prints its own peak resident memory (VmHWM of the exec'd process) at
# exit. Not the child's ru_maxrss: Linux counts the forking parent's resident memory into it.
PEAK_WRAPPER = """import atexit, runpy, sys
def peak():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            print('peak_kib=' + line.split()[1], file=sys.stderr)
atexit.register(peak)
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)
"""


def run(argv: tuple[str, ...], out: Path, quick: bool, size: int, photos: bool, threads: tuple[int, ...],
        log: Callable[[str], None]) -> WholeRecord:
    """Everything the whole-image benchmark measures (see the module docstring)."""
    reuse_freed_memory()
    record = WholeRecord(argv=argv, size=size, load_start=load_average())
    record.machine = machine_line(torch.device("cpu")).replace(f", {torch.get_num_threads()} torch thread(s)", "")
    models = {k: load_kind(k, quick) for k in KINDS}
    region = min(REGION, size)
    images = {"none": synthetic(size, size), "lcoan": synthetic(size, size), "dense-region": synthetic(region, region)}
    pixels = {k: im.shape[0] * im.shape[1] for k, im in images.items()}
    flops = {k: sum(network_flops(m, *images[k].shape[:2]).values()) / pixels[k] for k, m in models.items()}
    repeats = 2 if quick else 3
    for t in threads:
        torch.set_num_threads(t)
        record.sgemm[t] = sgemm_gflops(512 if quick else 2048)
        samples = time_kinds(models, images, t, repeats)
        for k in KINDS:
            med = statistics.median(samples[k])
            record.rows.append(dict(kind=k, threads=t, height=images[k].shape[0], width=images[k].shape[1],
                                    repeats=len(samples[k]), seconds=med, us_per_px=1e6 * med / pixels[k],
                                    flops_per_px=flops[k], floor_us_per_px=flops[k] / record.sgemm[t] / 1e3))
        log(f"  {t} thread(s): sgemm {record.sgemm[t]:.0f} GFLOPS; " + ", ".join(
            f"{r['kind']} {r['us_per_px']:.2f} us/px" for r in record.rows if r["threads"] == t))
    record.load_end = load_average()
    if photos:
        run_photos(record, max(threads), log)
    return record


def run_photos(record: WholeRecord, threads: int, log: Callable[[str], None],
               after: Callable[[WholeRecord], None] | None = None) -> None:
    """The photo rows (see the module docstring), ``after`` called with the record after each one."""
    with tempfile.TemporaryDirectory() as tmp:
        for kind, (w, h) in (("none", PHOTOS[0]), ("lcoan", PHOTOS[0]), ("lcoan", PHOTOS[1])):
            row = run_photo(kind, w, h, Path(tmp), threads)
            record.photos.append(row)
            record.load_end = load_average()
            log(f"  photo {w}x{h} {kind}: {row['seconds']:.1f} s, peak {row['peak_gib']:.2f} GiB")
            if after:
                after(record)
