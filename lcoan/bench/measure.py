"""The measurements of a benchmark run: non-local time and peak memory per kind and size, and the
whole forward split into non-local part and rest. Timing by :mod:`lcoan.bench.timing` (round robin)."""
from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..network import LCoAN
from .plan import FULL, LONG_CALL_S, QUICK, Plan, naive_fits, repeats_for
from .record import Options, RunRecord, load_average, machine_line
from .timing import round_robin, seconds_of
from .workload import NETWORK_KINDS, bench_features, build_models, kind_config, nonlocal_part


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


OP_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("`bmm`: the scores once, then weights @ values in every group", ("aten::bmm",)),
    ("value projection GEMM (every group)", ("aten::mm", "aten::addmm")),
    ("match conv 3x3 (once)", ("aten::mkldnn_convolution", "aten::_convolution", "aten::convolution",
                               "aten::_slow_conv2d_forward", "aten::thnn_conv2d")),
    ("softmax (once)", ("aten::_softmax", "aten::softmax", "aten::logsumexp")),
    ("gathers (sort / un-sort)", ("aten::index_select", "aten::gather", "aten::scatter_", "aten::scatter")),
    ("copies and zero fills (layout, padding)", ("aten::copy_", "aten::fill_", "aten::zero_", "aten::cat",
                                                 "aten::clone")),
)
REST = "the rest (centroid assignment, normalisation, sort, views)"


def op_shares(prof: torch.profiler.profile) -> dict[str, float]:
    """Share of the profiled call's self CPU time per :data:`OP_GROUPS` entry (and :data:`REST`)."""
    group_of = {op: name for name, ops in OP_GROUPS for op in ops}
    totals = dict.fromkeys([name for name, _ in OP_GROUPS] + [REST], 0.0)
    for event in prof.key_averages():
        totals[group_of.get(event.key, REST)] += event.self_cpu_time_total
    whole = sum(totals.values()) or 1.0
    return {name: t / whole for name, t in totals.items()}


def profile_call(fn: Callable[[], None], device: torch.device) -> tuple[int, float, dict[str, float]]:
    """One call: (peak bytes allocated beyond what was allocated before it, seconds, self CPU time
    shares by :func:`op_shares`; empty on CUDA, where the peak is the allocator's)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        seconds = seconds_of(fn)
        return torch.cuda.max_memory_allocated(device) - base, seconds, {}
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities, profile_memory=True) as prof:
        seconds = seconds_of(fn)
    return _cpu_peak(prof), seconds, op_shares(prof)


def peak_bytes(fn: Callable[[], None], device: torch.device) -> tuple[int, float]:
    """(peak bytes allocated by one call beyond what was allocated before it, seconds of the call)."""
    peak, seconds, _ = profile_call(fn, device)
    return peak, seconds


@dataclass
class Case:
    """One measured unit: a callable, how often to time it, and its samples (seconds)."""

    kind: str
    fn: Callable[[], None]
    groups: int
    groups_timed: int
    repeats: int
    peak: int = 0
    samples: list[float] = field(default_factory=list)
    shares: dict[str, float] = field(default_factory=dict)  # of the profiled call, see op_shares

    def row(self, **common) -> dict:
        scale = self.groups / self.groups_timed
        med = statistics.median(self.samples) * scale
        return dict(common, kind=self.kind, groups=self.groups, groups_timed=self.groups_timed,
                    repeats=len(self.samples), time_ms=1e3 * med, min_ms=1e3 * min(self.samples) * scale,
                    max_ms=1e3 * max(self.samples) * scale, peak_mib=self.peak / 2**20)


def interleave(cases: list[Case]) -> None:
    """Round robin over the cases until each has its repeats: load changes hit every kind alike."""
    names = [str(i) for i in range(len(cases))]
    round_robin(dict(zip(names, (c.fn for c in cases))), {n: c.repeats for n, c in zip(names, cases)},
                samples={n: c.samples for n, c in zip(names, cases)})


def bench_nonlocal(models: dict[str, LCoAN], preset_name: str, size: int, device: torch.device, plan: Plan,
                   options: Options, log: Callable[[str], None]) -> list[dict]:
    """Non-local time and peak memory of every kind of the plan at one size, timed interleaved."""
    cfg = kind_config(preset_name, "dense")
    n = size * size
    kinds = [k for k in plan.kinds_at(preset_name, size) if k != "dense-naive" or naive_fits(n, options.naive_gib)]
    y = bench_features(next(iter(models.values())), size, size)  # one input for every kind
    cases = []
    for kind in kinds:
        model = models[kind]
        per_group = kind != "lsp+coa"
        one = nonlocal_part(model, kind, y, 1 if per_group else cfg.num_groups)
        peak, seconds, shares = profile_call(one, device)  # the warm-up call, memory measured
        timed_groups = 1
        if not per_group or seconds * cfg.num_groups <= options.full_limit:
            timed_groups = cfg.num_groups
        fn = nonlocal_part(model, kind, y, timed_groups) if per_group and timed_groups > 1 else one
        samples = []
        if fn is one and seconds >= LONG_CALL_S:
            samples.append(seconds)  # a long call: the profiled warm-up is also a sample (overhead << noise)
        elif fn is not one or seconds < 1.0:
            seconds = seconds_of(fn)  # (another) warm-up, of the unit that is timed
        cases.append(Case(kind, fn, cfg.num_groups, timed_groups, repeats_for(seconds, options.quick), peak, samples,
                          shares))
    interleave(cases)
    common = dict(measure="nonlocal", device=device.type, threads=torch.get_num_threads(), preset=preset_name,
                  height=size, width=size, positions=n)
    rows = [c.row(**common) for c in cases]
    for case, row in zip(cases, rows):
        row["shares"] = case.shares  # not a CSV column: the report's profile table
    log(f"  {preset_name} {size}x{size}: " + ", ".join(f"{r['kind']} {r['time_ms']:.1f} ms" for r in rows))
    return rows


def bench_network(models: dict[str, LCoAN], preset_name: str, size: int, device: torch.device,
                  options: Options, log: Callable[[str], None]) -> list[dict]:
    """Whole forward pass per kind, and its non-local part (all groups, on features of that size),
    timed in one round robin; rest = whole - non-local. The "none" network is the rest measured alone."""
    cfg = models["none"].cfg
    x = torch.rand(1, 3, size, size, device=device)
    y = bench_features(models["none"], size, size)
    whole, part = [], {}
    for kind in NETWORK_KINDS:
        def fn(model: LCoAN = models[kind]) -> None:
            model(x)
        whole.append(Case(kind, fn, cfg.num_groups, cfg.num_groups, repeats_for(seconds_of(fn), options.quick)))
        if kind != "none":
            fn = nonlocal_part(models[kind], kind, y, cfg.num_groups)
            part[kind] = Case(kind, fn, cfg.num_groups, cfg.num_groups, repeats_for(seconds_of(fn), options.quick))
    interleave(whole + list(part.values()))
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


def run(options: Options) -> RunRecord:
    """Measure everything the options ask for; the record's rows, machines and load are filled in."""
    plan = QUICK if options.quick else FULL
    if options.presets:
        plan = Plan(options.presets, plan.sizes, plan.max_size, plan.network_sizes, plan.preset_max)
    if options.sizes:
        plan = Plan(plan.presets, {p: options.sizes for p in plan.presets}, plan.max_size,
                    {p: () for p in plan.presets}, plan.preset_max)
    names = options.devices or (("cpu", "cuda") if torch.cuda.is_available() else ("cpu",))
    log = (lambda s: None) if options.silent else (lambda s: print(s, flush=True))
    record = RunRecord(options, load_start=load_average())
    for device in (torch.device(d) for d in names):
        record.machines[device.type] = machine_line(device)
        log(f"{device.type}: {record.machines[device.type]} (load average {load_average()})")
        for name in plan.presets:
            models = build_models(name, device)
            with torch.inference_mode():
                for size in plan.sizes[name]:
                    record.rows += bench_nonlocal(models, name, size, device, plan, options, log)
                for size in plan.network_sizes[name]:
                    record.rows += bench_network(models, name, size, device, options, log)
            del models
    record.load_end = load_average()
    return record


__all__ = ["Case", "bench_network", "bench_nonlocal", "interleave", "peak_bytes", "run"]
