"""Outputs of :mod:`lcoan.bench`: the CSV, the log-log plot and the generated markdown block.

The markdown is the ``bench`` block of a README (:func:`scripts.blocks.splice`); the rest of the file is
left alone.
"""
from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import numpy as np

from ..config import preset
from .record import COLUMNS, RunRecord
from .workload import KINDS

BLOCK = "bench"
BEGIN, END = f"<!-- {BLOCK}:start -->", f"<!-- {BLOCK}:end -->"  # scripts.blocks.markers(BLOCK)
RATIO_SIZES = (64, 128, 256)
FIT_MIN_N = 64 * 64  # below this, fixed per-call costs bend the curves
BARS = (("time ratio lsp+coa / dense at 128x128", 128, 0.17, "must"),
        ("time ratio lsp+coa / dense at 128x128", 128, 0.10, "aim"),
        ("time ratio lsp+coa / dense at 256x256", 256, 0.05, "aim"))
MEMORY_BAR = 0.2


def write_csv(rows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.items()})


def select(rows: list[dict], **match) -> list[dict]:
    return [r for r in rows if all(r[k] == v for k, v in match.items())]


def lookup(rows: list[dict], key: str = "time_ms", **match) -> float | None:
    found = select(rows, **match)
    return found[0][key] if found else None


def slope(rows: list[dict], min_n: int = FIT_MIN_N) -> float | None:
    """Exponent b of time ~ N^b, least squares in log-log over sizes with N >= min_n."""
    pts = [(r["positions"], r["time_ms"]) for r in rows if r["positions"] >= min_n]
    if len(pts) < 2:
        return None
    n, t = np.log(np.array(pts, dtype=float)).T
    return float(np.polyfit(n, t, 1)[0])


def groups_of(rows: list[dict]) -> tuple[tuple[str, str], ...]:
    """(device, preset) pairs in the order they were measured."""
    return tuple(dict.fromkeys((r["device"], r["preset"]) for r in rows if r["measure"] == "nonlocal"))


def fit_min(rows: list[dict]) -> int:
    """Fit from 64x64 up, unless a (quick) run has fewer than two such sizes."""
    return FIT_MIN_N if len({r["positions"] for r in rows if r["positions"] >= FIT_MIN_N}) >= 2 else 0


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = groups_of(rows)
    fig, axes = plt.subplots(2, len(pairs), figsize=(5.5 * len(pairs), 8), squeeze=False)
    for col, (device, name) in enumerate(pairs):
        cur = select(rows, measure="nonlocal", device=device, preset=name)
        lo = fit_min(cur)
        for kind in KINDS:
            kr = sorted(select(cur, kind=kind), key=lambda r: r["positions"])
            if not kr:
                continue
            n = [r["positions"] for r in kr]
            b = slope(kr, lo)
            label = kind + (f" (slope {b:.2f})" if b is not None else "")
            style = "o--" if kind == "lsp" else "o-"  # lsp's memory curve lies on lsp+coa's
            axes[0, col].loglog(n, [r["time_ms"] / 1e3 for r in kr], style, label=label)
            axes[1, col].loglog(n, [max(r["peak_mib"], 1e-3) for r in kr], style, label=kind)
        cfg = preset(name)
        axes[0, col].set_title(f"{name} preset (C={cfg.num_feat}, {cfg.num_groups} groups), {device}")
        axes[0, col].set_ylabel("non-local time, all groups (s)")
        axes[1, col].set_ylabel("peak memory of the non-local part (MiB)")
        for ax in axes[:, col]:
            ax.set_xlabel("positions N = H x W of the LR feature map")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fmt(v: float | None, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:,.0f}"


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def nonlocal_table(cur: list[dict]) -> list[str]:
    sizes = sorted({r["height"] for r in cur})
    lines = ["| LR size | N | " + " | ".join(KINDS) + " | lsp+coa / dense | lsp+coa / dense-naive |",
             "|---|---:|" + "---:|" * (len(KINDS) + 2)]
    for s in sizes:
        cells = []
        for kind in KINDS:
            r = select(cur, kind=kind, height=s)
            mark = "" if not r or r[0]["groups_timed"] == r[0]["groups"] else " †"
            cells.append(fmt(r[0]["time_ms"]) + mark if r else "-")
        coa = lookup(cur, kind="lsp+coa", height=s)
        cells += [fmt(ratio(coa, lookup(cur, kind="dense", height=s)), 2),
                  fmt(ratio(coa, lookup(cur, kind="dense-naive", height=s)), 2)]
        lines.append(f"| {s}x{s} | {s * s:,} | " + " | ".join(cells) + " |")
    return lines


def memory_table(cur: list[dict]) -> list[str]:
    sizes = sorted({r["height"] for r in cur})
    lines = ["| LR size | " + " | ".join(KINDS) + " | lsp+coa / dense | lsp+coa / dense-naive |",
             "|---|" + "---:|" * (len(KINDS) + 2)]
    for s in sizes:
        cells = [fmt(lookup(cur, "peak_mib", kind=k, height=s)) if select(cur, kind=k, height=s) else "-"
                 for k in KINDS]
        coa = lookup(cur, "peak_mib", kind="lsp+coa", height=s)
        naive = lookup(cur, "peak_mib", kind="dense-naive", height=s)
        naive_note = ""
        if naive is None:
            naive, naive_note = 2 * (s * s) ** 2 * 4 / 2**20, " ‡"  # its two N x N float32 matrices, not run
        cells += [fmt(ratio(coa, lookup(cur, "peak_mib", kind="dense", height=s)), 2),
                  fmt(ratio(coa, naive), 2) + naive_note]
        lines.append(f"| {s}x{s} | " + " | ".join(cells) + " |")
    return lines


def profile_table(cur: list[dict], sizes: tuple[int, ...] = RATIO_SIZES[1:]) -> list[str]:
    """Where the time of ``lsp+coa`` goes: self CPU time shares of its profiled call per op group,
    at ``sizes`` (else the two largest profiled sizes); empty without profiles (CUDA)."""
    profiled = {r["height"]: r["shares"] for r in select(cur, kind="lsp+coa") if r.get("shares")}
    cols = [s for s in sizes if s in profiled] or sorted(profiled)[-2:]
    if not cols:
        return []
    lines = ["| | " + " | ".join(f"{s}x{s}" for s in cols) + " |", "|---|" + "---:|" * len(cols)]
    for group in profiled[cols[0]]:
        lines.append(f"| {group} | " + " | ".join(f"{profiled[s][group]:.0%}" for s in cols) + " |")
    return lines


def markdown(record: RunRecord) -> str:
    """The generated block's content (without its markers) for one run."""
    rows = record.rows
    out = ["<!-- generated by python -m lcoan.bench: do not edit by hand -->", "",
           f"Generated {time.strftime('%Y-%m-%d %H:%M')} by `{record.command}` "
           f"in {record.wall_s:.0f} s. 1-minute load average at start / end: {record.load_start} / {record.load_end} "
           "(the machine was shared; all kinds of a size were timed interleaved)."]
    for device, line in record.machines.items():
        out.append(f"Machine ({device}): {line}.")
    summary = ["", "### Headline: non-local time ratio `lsp+coa / dense` (SDPA)", "",
               "| device | preset | " + " | ".join(f"{s}x{s}" for s in RATIO_SIZES) + " | slopes (N >= 64x64) |",
               "|---|---|" + "---:|" * len(RATIO_SIZES) + "---|"]
    sections: list[str] = []
    for device, name in groups_of(rows):
        cur = select(rows, measure="nonlocal", device=device, preset=name)
        cfg = preset(name)
        ratios = [fmt(ratio(lookup(cur, kind="lsp+coa", height=s), lookup(cur, kind="dense", height=s)), 2)
                  for s in RATIO_SIZES]
        lo = fit_min(cur)
        slopes = ", ".join(f"{k} {fmt(slope(select(cur, kind=k), lo), 3)}" for k in KINDS if select(cur, kind=k))
        summary.append(f"| {device} | {name} | " + " | ".join(ratios) + f" | {slopes} |")
        sections += ["", f"### Non-local time (ms), {name} preset (C={cfg.num_feat}, {cfg.num_groups} groups, "
                         f"W={cfg.window}, K={cfg.num_clusters}), {device}", ""] + nonlocal_table(cur)
        sections += ["", f"Peak memory of the non-local part (MiB), {name} preset, {device}:", ""] + memory_table(cur)
        profile = profile_table(cur)
        if profile:
            sections += ["", f"Where the time of `lsp+coa` goes, {name} preset, {device}: share of the self CPU "
                             "time of its memory-profiled call (`torch.profiler`), by operator group:", ""] + profile
        net = select(rows, measure="network", device=device, preset=name)
        if net:
            sections += ["", f"Whole network forward, {name} preset x{cfg.scale}, {device}: non-local part vs the "
                         "rest (ms). "
                         "Whole forward and non-local part timed in one round robin, rest = whole - non-local; "
                         "`none` is the same backbone without attention, i.e. the rest measured alone.",
                         "", "| LR size | kind | whole forward | non-local | rest | non-local share |",
                         "|---|---|---:|---:|---:|---:|"]
            for r in net:
                share = r["nonlocal_ms"] / r["time_ms"] if r["time_ms"] else 0.0
                sections.append(f"| {r['height']}x{r['width']} | {r['kind']} | {fmt(r['time_ms'])} | "
                                f"{fmt(r['nonlocal_ms'])} | {fmt(r['rest_ms'])} | {share:.0%} |")
    out += summary + sections
    out += ["", "† timed on one group and multiplied by the number of groups (the groups do identical work); "
                "‡ dense-naive not run at this size: its two N x N float32 matrices (scores, softmax) alone, computed."]
    out += ["", once_line(rows)]
    out += bars(rows)
    return "\n".join(out)


def once_line(rows: list[dict]) -> str:
    """Which cases were timed by a single call (30 s or more), with their time per group."""
    once = [r for r in rows if r["measure"] == "nonlocal" and r["repeats"] == 1]
    if not once:
        return "Every case was timed at least twice (column `repeats` of results.csv)."
    def timing(r: dict) -> str:
        if r["groups_timed"] < r["groups"]:
            return f"{r['time_ms'] / r['groups'] / 1e3:.1f} s per group, one of {r['groups']} timed"
        return f"{r['time_ms'] / 1e3:.1f} s for all {r['groups']} groups"
    cases = ", ".join(f"{r['device']} {r['preset']} {r['kind']} {r['height']}x{r['width']} ({timing(r)})"
                      for r in once)
    return f"Timed by one call only (a call of 30 s or more; column `repeats` of results.csv): {cases}."


def bars(rows: list[dict]) -> list[str]:
    cur = select(rows, measure="nonlocal", device="cpu", preset="paper")
    if not cur:
        return []
    lines = ["", "### Bars (paper preset, cpu)", ""]
    for text, size, bar, level in BARS:
        r = ratio(lookup(cur, kind="lsp+coa", height=size), lookup(cur, kind="dense", height=size))
        verdict = "n/a" if r is None else ("met" if r <= bar else "MISSED")
        lines.append(f"- {text} <= {bar} ({level}): {fmt(r, 3)}, {verdict}")
    size = max(r["height"] for r in select(cur, kind="dense"))
    coa = lookup(cur, "peak_mib", kind="lsp+coa", height=size)
    dense = lookup(cur, "peak_mib", kind="dense", height=size)
    naive = lookup(cur, "peak_mib", kind="dense-naive", height=size) or 2 * (size * size) ** 2 * 4 / 2**20
    for name, ref in (("dense (SDPA)", dense), ("dense-naive (classic NLA)", naive)):
        r = ratio(coa, ref)
        verdict = "n/a" if r is None else ("met" if r <= MEMORY_BAR else "MISSED")
        lines.append(f"- peak memory lsp+coa / {name} at {size}x{size} <= {MEMORY_BAR}: {fmt(r, 3)}, {verdict}")
    return lines


def write_outputs(record: RunRecord) -> list[Path]:
    """results.csv and nonlocal_time.png in the output folder, and the README's ``bench`` block."""
    out = record.options.out
    out.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = out / "results.csv", out / "nonlocal_time.png"
    readme = record.options.readme or out / "README.md"
    write_csv(record.rows, csv_path)
    plot(record.rows, png_path)
    if not readme.exists():
        readme.write_text("# Benchmarks\n")
    from scripts.blocks import splice  # repository tooling: the README exists only in a checkout

    splice(readme, BLOCK, markdown(record))
    return [csv_path, png_path, readme]
