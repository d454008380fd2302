"""Training throughput per preset and attention kind, measured in one run (median of repeats).

    python -m scripts.train_speed [--presets s paper] [--repeats 5] [--readme]

One iteration = forward + L1 loss + backward + Adam step on a batch of 16 random 48x48 LR patches
(data loading excluded). The kinds are interleaved round by round (lcoan.bench.timing.round_robin) so that
load from other processes affects them alike; ``--readme`` writes the table into README.md's
``speed`` block. Whether other processes shared the cores is said from the load average sampled
before and after the measurement, and only when it says so.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from lcoan.bench.timing import round_robin
from lcoan.config import preset
from lcoan.network import LCoAN
from lcoan.training import machine
from scripts import blocks

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("none", "lsp", "dense")


def step_fn(name: str, kind: str, batch: int, patch: int) -> Callable[[], None]:
    """One training iteration of a fresh x2 network on fixed random data (B, 3, patch, patch)."""
    torch.manual_seed(0)
    model = LCoAN(preset(name, attention=kind)).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.rand(batch, 3, patch, patch)
    y = torch.rand(batch, 3, patch * 2, patch * 2)

    def step() -> None:
        loss = torch.nn.functional.l1_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def load_note(loads: list[float | None], threads: int, cores: int | None) -> str:
    """What the load averages sampled around the measurement say about other processes.

    ``loads``: 1-minute load averages (None where unknown); this process accounts for about
    ``threads`` of the load. A claim that others shared the cores is made only when the load
    exceeded this process's threads by at least one.
    """
    known = [x for x in loads if x is not None]
    if not known:
        return "load average unknown"
    peak = max(known)
    text = f"1-min load average {', '.join(f'{x:.1f}' for x in known)} (before, after) on {cores} cores"
    others = peak - threads
    if others >= 1:
        return f"{text}: about {others:.0f} other runnable process(es) shared the cores, so these times are inflated"
    return f"{text}: no sign of other processes competing for the cores"


def measure(presets: list[str], repeats: int, batch: int, patch: int) -> list[tuple[str, str, float, float, float]]:
    """(preset, kind, median s / iteration, iterations / s, ratio to ``none``) per preset and kind."""
    rows = []
    for name in presets:
        steps = {k: step_fn(name, k, batch, patch) for k in KINDS}
        for fn in steps.values():
            fn()  # warm-up (includes the k-means initialisation of lsp)
        times = round_robin(steps, repeats)
        base = statistics.median(times["none"])
        for k in KINDS:
            med = statistics.median(times[k])
            rows.append((name, k, med, 1 / med, med / base))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.train_speed", description=__doc__.split("\n")[0])
    p.add_argument("--presets", nargs="+", default=["s"])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--patch", type=int, default=48)
    p.add_argument("--readme", action="store_true")
    args = p.parse_args(argv)
    before = machine.load_average()
    rows = measure(args.presets, args.repeats, args.batch, args.patch)
    note = load_note([before, machine.load_average()], torch.get_num_threads(), os.cpu_count())
    table = ["| preset | attention | s / iteration | iterations / s | vs none |", "|---|---|---|---|---|"]
    table += [f"| {n} | {k} | {s:.2f} | {ips:.3f} | {r:.2f}x |" for n, k, s, ips, r in rows]
    text = (f"Measured by `python -m scripts.train_speed --presets {' '.join(args.presets)} --repeats {args.repeats}"
            f"{' --readme' if args.readme else ''}` on {machine.describe('cpu', detailed=True)} ({note}); "
            f"batch {args.batch}, {args.patch}x{args.patch} LR patches, x2; median of {args.repeats}, kinds "
            "interleaved.\n\n" + "\n".join(table))
    print(text)
    if args.readme:
        blocks.splice(ROOT / "README.md", "speed", text, append=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
