"""Efficiency benchmark of the non-local part: LCoAN (``lsp+coa``) against the LSP-only ablation
(``lsp``) and dense non-local attention (``dense``: torch SDPA; ``dense-naive``: matmul, softmax, matmul).

    python -m lcoan.bench                  # the full run (CPU, and CUDA when present), < 10 min here
    python -m lcoan.bench --quick --out /tmp/b   # seconds: tiny sizes, for tests

What is timed ("non-local time"): the attention of ALL residual groups of a network, given the
features: for ``lsp+coa`` one pattern (match conv, k-means assignment, sort, windowed softmax
weights) and, per group, its value projection and the aggregation; for ``lsp`` that whole pattern
in every group; for the dense kinds, per group, the match / value embeddings and the attention.
Inference, batch 1, float32, under ``torch.inference_mode``. All kinds of one size are timed
interleaved (round robin), after a warm-up, and the median is reported (7 to 2 repeats, fewer for
longer calls; for a call of 5 s or more the warm-up is skipped, its kind being warm from the smaller
sizes, and the memory-profiled call counts as one of the samples; a call of 30 s or more, e.g.
dense at 256x256 in the paper preset, is that one sample alone, to keep the run under 10 minutes). Kinds whose groups repeat
identical work (every kind but ``lsp+coa``) are timed on one group and multiplied by the number of
groups when all groups would take more than ``--full-limit`` seconds (``groups_timed`` in the CSV).

Peak memory: the most bytes the non-local part holds at once beyond its inputs, read from the
allocation events of ``torch.profiler`` (``profile_memory=True``: every tensor allocation and free
of the CPU allocator, summed in time order) on CPU, ``torch.cuda.max_memory_allocated`` on CUDA.
Buffers that libraries allocate outside torch (oneDNN / MKL scratch) are not seen.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from .attention.dense import DenseNonLocal, dense_attention, dense_attention_naive
from .config import LCoANConfig, preset
from .network import LCoAN

KINDS: tuple[str, ...] = ("lsp+coa", "lsp", "dense", "dense-naive")
NETWORK_KINDS: tuple[str, ...] = ("none", "lsp+coa", "dense")
LONG_CALL_S = 5.0  # calls at least this long: no separate warm-up, the profiled call counts as a sample
SINGLE_CALL_S = 30.0  # calls at least this long are timed once (the 10-minute budget of the full run)
COLUMNS: tuple[str, ...] = ("measure", "device", "threads", "preset", "kind", "height", "width", "positions",
                            "groups", "groups_timed", "repeats", "time_ms", "min_ms", "max_ms",
                            "nonlocal_ms", "rest_ms", "peak_mib")


@dataclass(frozen=True)
class Plan:
    """What one run measures, per preset: LR sizes (square), the largest size per kind, network-split sizes."""

    presets: tuple[str, ...]
    sizes: dict[str, tuple[int, ...]]
    max_size: dict[str, int]  # per kind; dense-naive is also capped by --naive-gib
    network_sizes: dict[str, tuple[int, ...]]
    preset_max: dict[tuple[str, str], int] = field(default_factory=dict)  # (preset, kind) overrides

    def kinds_at(self, preset_name: str, size: int) -> list[str]:
        return [k for k in KINDS if size <= self.preset_max.get((preset_name, k), self.max_size[k])]


FULL = Plan(presets=("paper", "s"),
            sizes={"paper": (32, 64, 96, 128, 256, 512), "s": (32, 64, 96, 128, 256, 512)},
            max_size={"lsp+coa": 512, "lsp": 512, "dense": 256, "dense-naive": 128},
            network_sizes={"paper": (48,), "s": (128,)},
            preset_max={("paper", "lsp"): 256})
QUICK = Plan(presets=("tiny",), sizes={"tiny": (8, 12, 16, 24)},
             max_size={"lsp+coa": 24, "lsp": 24, "dense": 16, "dense-naive": 12},
             network_sizes={"tiny": (12,)})


def kind_config(preset_name: str, kind: str) -> LCoANConfig:
    """The network config of a benchmark kind (the dense kinds share one config)."""
    attention = {"lsp+coa": "lsp", "lsp": "lsp", "dense": "dense", "dense-naive": "dense", "none": "none"}[kind]
    return preset(preset_name, attention=attention, share_pattern=kind != "lsp")


def dense_block(att: DenseNonLocal, y: Tensor, naive: bool) -> Tensor:
    """One dense non-local block exactly as :meth:`DenseNonLocal.forward`, with the attention kernel chosen."""
    out = (dense_attention_naive if naive else dense_attention)(*att.embed(y))
    return out.transpose(1, 2).reshape(y.shape)


def nonlocal_part(model: LCoAN, kind: str, y: Tensor, groups: int) -> Callable[[], None]:
    """The attention work of the first ``groups`` residual groups on features y: (1, C, H, W).

    Mirrors :meth:`LCoAN.forward_features` (its attention lines), every group fed the same features.
    """
    def run() -> None:
        shared = None
        for g in range(groups):
            group = model.groups[g]
            if kind.startswith("dense"):
                out = dense_block(group.attention, y, naive=kind == "dense-naive")
            else:
                if kind == "lsp":
                    shared = None  # a group's own pattern is dead once the group is done
                if shared is None:
                    shared = model.patterns[g if kind == "lsp" else 0](y)
                out = shared.apply(group.attention.project(y)).transpose(1, 2).reshape(y.shape)
            del out
    return run


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], None], device: torch.device) -> float:
    """Seconds of one call."""
    synchronise(device)
    start = time.perf_counter()
    fn()
    synchronise(device)
    return time.perf_counter() - start


def _cpu_peak(prof: torch.profiler.profile) -> int:
    """Peak of live bytes from the profiler's allocation events (frees are negative sizes)."""
    from torch._C._profiler import _EventType

    events, stack = [], list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        e = stack.pop()
        stack.extend(e.children)
        if e.tag == _EventType.Allocation and e.extra_fields.device.type == "cpu":
            events.append((e.start_time_ns, e.extra_fields.alloc_size))
    live = peak = 0
    for _, size in sorted(events, key=lambda t: t[0]):
        live += size
        peak = max(peak, live)
    return peak


def peak_bytes(fn: Callable[[], None], device: torch.device) -> tuple[int, float]:
    """(peak bytes allocated by one call beyond what was allocated before it, seconds of the call)."""
    if device.type == "cuda":
        synchronise(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        seconds = timed(fn, device)
        return torch.cuda.max_memory_allocated(device) - base, seconds
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities, profile_memory=True) as prof:
        seconds = timed(fn, device)
    return _cpu_peak(prof), seconds


def repeats_for(seconds: float, quick: bool) -> int:
    """Timed repeats of a case from the duration of its warm-up call (the run must stay under 10 min)."""
    if quick:
        return 2
    if seconds >= SINGLE_CALL_S:
        return 1
    return 7 if seconds < 0.05 else 5 if seconds < 0.5 else 3 if seconds < 4 else 2


@dataclass
class Case:
    """One measured unit: a callable, how often to time it, and its samples."""

    kind: str
    fn: Callable[[], None]
    groups: int
    groups_timed: int
    repeats: int
    peak: int = 0
    samples: list[float] = field(default_factory=list)

    def row(self, **common) -> dict:
        scale = self.groups / self.groups_timed
        med = statistics.median(self.samples) * scale
        return dict(common, kind=self.kind, groups=self.groups, groups_timed=self.groups_timed,
                    repeats=len(self.samples), time_ms=1e3 * med, min_ms=1e3 * min(self.samples) * scale,
                    max_ms=1e3 * max(self.samples) * scale, peak_mib=self.peak / 2**20)


def interleave(cases: list[Case], device: torch.device) -> None:
    """Round robin over the cases until each has its repeats: load changes hit every kind alike."""
    for _ in range(max(c.repeats for c in cases)):
        for case in cases:
            if len(case.samples) < case.repeats:
                case.samples.append(timed(case.fn, device))


def naive_fits(n: int, gib: float) -> bool:
    """The naive block holds two N x N float32 matrices (scores and softmax)."""
    return 2 * n * n * 4 <= gib * 2**30


def bench_nonlocal(models: dict[str, LCoAN], preset_name: str, size: int, device: torch.device, plan: Plan,
                   args: argparse.Namespace, log: Callable[[str], None]) -> list[dict]:
    cfg = kind_config(preset_name, "dense")
    n = size * size
    kinds = [k for k in plan.kinds_at(preset_name, size) if k != "dense-naive" or naive_fits(n, args.naive_gib)]
    y = torch.randn(1, cfg.num_feat, size, size, device=device)
    cases = []
    for kind in kinds:
        model = models[kind]
        per_group = kind != "lsp+coa"
        one = nonlocal_part(model, kind, y, 1 if per_group else cfg.num_groups)
        peak, seconds = peak_bytes(one, device)  # the warm-up call, memory measured
        timed_groups = 1
        if not per_group or seconds * cfg.num_groups <= args.full_limit:
            timed_groups = cfg.num_groups
        fn = nonlocal_part(model, kind, y, timed_groups) if per_group and timed_groups > 1 else one
        samples = []
        if fn is one and seconds >= LONG_CALL_S:
            samples.append(seconds)  # a long call: the profiled warm-up is also a sample (overhead << noise)
        elif fn is not one or seconds < 1.0:
            seconds = timed(fn, device)  # (another) warm-up, of the unit that is timed
        cases.append(Case(kind, fn, cfg.num_groups, timed_groups, repeats_for(seconds, args.quick), peak, samples))
    interleave(cases, device)
    common = dict(measure="nonlocal", device=device.type, threads=torch.get_num_threads(), preset=preset_name,
                  height=size, width=size, positions=n)
    rows = [c.row(**common) for c in cases]
    log(f"  {preset_name} {size}x{size}: " + ", ".join(f"{r['kind']} {r['time_ms']:.1f} ms" for r in rows))
    return rows


def bench_network(models: dict[str, LCoAN], preset_name: str, size: int, device: torch.device,
                  args: argparse.Namespace, log: Callable[[str], None]) -> list[dict]:
    """Whole forward pass per kind, and its non-local part (all groups, on features of that size),
    timed in one round robin; rest = whole - non-local. The "none" network is the rest measured alone."""
    cfg = models["none"].cfg
    x = torch.rand(1, 3, size, size, device=device)
    y = torch.randn(1, cfg.num_feat, size, size, device=device)
    whole, part = [], {}
    for kind in NETWORK_KINDS:
        def fn(model: LCoAN = models[kind]) -> None:
            model(x)
        whole.append(Case(kind, fn, cfg.num_groups, cfg.num_groups, repeats_for(timed(fn, device), args.quick)))
        if kind != "none":
            fn = nonlocal_part(models[kind], kind, y, cfg.num_groups)
            part[kind] = Case(kind, fn, cfg.num_groups, cfg.num_groups, repeats_for(timed(fn, device), args.quick))
    interleave(whole + list(part.values()), device)
    rows = []
    for case in whole:
        row = case.row(measure="network", device=device.type, threads=torch.get_num_threads(), preset=preset_name,
                       height=size, width=size, positions=size * size)
        attn = part[case.kind].row()["time_ms"] if case.kind in part else 0.0
        row.update(peak_mib="", nonlocal_ms=attn, rest_ms=row["time_ms"] - attn)
        rows.append(row)
    log(f"  network {preset_name} {size}x{size}: " + ", ".join(
        f"{r['kind']} {r['time_ms']:.0f} ms (non-local {r['nonlocal_ms']:.0f})" for r in rows))
    return rows


def build_models(preset_name: str, device: torch.device) -> dict[str, LCoAN]:
    torch.manual_seed(0)
    models = {}
    for kind in ("lsp+coa", "lsp", "dense", "none"):
        models[kind] = LCoAN(kind_config(preset_name, kind)).to(device).eval()
    models["dense-naive"] = models["dense"]  # same blocks, other kernel
    return models


def machine_line(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} thread(s)"
    if device.type == "cuda":
        text = f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    return text


def load_average() -> str:
    """1-minute load average (other processes competing for the cores), as text."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "n/a"


def run(args: argparse.Namespace) -> list[dict]:
    plan = QUICK if args.quick else FULL
    if args.presets:
        plan = Plan(tuple(args.presets), plan.sizes, plan.max_size, plan.network_sizes, plan.preset_max)
    devices = [torch.device(d) for d in (args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]))]
    log = (lambda s: None) if args.silent else (lambda s: print(s, flush=True))
    rows: list[dict] = []
    args.machines = {}
    for device in devices:
        args.machines[device.type] = machine_line(device)
        log(f"{device.type}: {args.machines[device.type]} (load average {load_average()})")
        for name in plan.presets:
            models = build_models(name, device)
            with torch.inference_mode():
                for size in plan.sizes[name]:
                    rows += bench_nonlocal(models, name, size, device, plan, args, log)
                for size in plan.network_sizes[name]:
                    rows += bench_network(models, name, size, device, args, log)
            del models
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lcoan.bench", description=__doc__.split("\n\n")[0],
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
    p.add_argument("--silent", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    from .bench_report import write_outputs  # matplotlib only when writing

    start = time.perf_counter()
    args.load_start = load_average()
    rows = run(args)
    args.load_end = load_average()
    args.wall_s = time.perf_counter() - start
    paths = write_outputs(rows, args)
    if not args.silent:
        print(f"done in {args.wall_s:.0f} s: " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
