"""Training throughput per preset and attention kind, measured in one run (median of repeats).

    python scripts/train_speed.py [--presets s paper] [--repeats 5] [--readme]

One iteration = forward + L1 loss + backward + Adam step on a batch of 16 random 48x48 LR patches
(data loading excluded). The kinds are interleaved round by round so that load from other
processes affects them alike; ``--readme`` writes the table into README.md between its markers.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lcoan.config import preset  # noqa: E402
from lcoan.network import LCoAN  # noqa: E402

KINDS = ("none", "lsp", "dense")


def step_fn(name: str, kind: str, batch: int, patch: int):
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


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--presets", nargs="+", default=["s"])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--patch", type=int, default=48)
    p.add_argument("--readme", action="store_true")
    args = p.parse_args()
    rows = []
    for name in args.presets:
        steps = {k: step_fn(name, k, args.batch, args.patch) for k in KINDS}
        for fn in steps.values():
            fn()  # warm-up (includes the k-means initialisation of lsp)
        times: dict[str, list[float]] = {k: [] for k in KINDS}
        for _ in range(args.repeats):
            for k, fn in steps.items():
                t = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t)
        base = statistics.median(times["none"])
        for k in KINDS:
            med = statistics.median(times[k])
            rows.append((name, k, med, 1 / med, med / base))
    load = os.getloadavg()[0]
    machine = (f"{platform.machine()} CPU, {torch.get_num_threads()} threads, torch {torch.__version__} "
               f"(1-min load average {load:.1f} at the end: above ~2 other processes shared the cores)")
    table = ["| preset | attention | s / iteration | iterations / s | vs none |", "|---|---|---|---|---|"]
    table += [f"| {n} | {k} | {s:.2f} | {ips:.3f} | {r:.2f}x |" for n, k, s, ips, r in rows]
    text = (f"Measured by `python scripts/train_speed.py --presets {' '.join(args.presets)} --repeats {args.repeats}"
            f"{' --readme' if args.readme else ''}` on {machine}; batch {args.batch}, {args.patch}x{args.patch} LR "
            f"patches, x2; median of {args.repeats}, kinds interleaved.\n\n" + "\n".join(table))
    print(text)
    if args.readme:
        readme = ROOT / "README.md"
        s = readme.read_text()
        a, b = "<!-- speed:start -->", "<!-- speed:end -->"
        if a in s:
            s = s[: s.index(a) + len(a)] + "\n" + text + "\n" + s[s.index(b):]
            readme.write_text(s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
