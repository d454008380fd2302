"""Set5/Set14 before and after a change of the shipped checkpoints: the floor of issue 14.

    python -m scripts.floor_check [--before docs/results/before-attention-stage] [--floor 0.05]

``--before`` holds the ``eval.json`` of each checkpoint as it was (``<name>.json``); the current ones
are ``checkpoints/<name>/eval.json`` (``python -m scripts.report``). Prints one row per checkpoint and
benchmark (mean Y-PSNR before, after, difference) and exits 1 when any checkpoint lost more than
``--floor`` dB. These benchmarks check the floor only; they never chose a variant.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rows(before: Path, checkpoints: Path) -> list[tuple[str, str, float, float]]:
    """(checkpoint, benchmark, PSNR before, PSNR after) for every checkpoint with both files."""
    out = []
    for old in sorted(before.glob("*.json")):
        new = checkpoints / old.stem / "eval.json"
        if not new.is_file():
            continue
        a, b = json.loads(old.read_text()), json.loads(new.read_text())
        for bench in sorted(set(a) & set(b)):
            out.append((old.stem, bench, a[bench]["mean"]["psnr"], b[bench]["mean"]["psnr"]))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--before", type=Path, default=ROOT / "docs" / "results" / "before-attention-stage")
    p.add_argument("--checkpoints", type=Path, default=ROOT / "checkpoints")
    p.add_argument("--floor", type=float, default=0.05, help="largest PSNR loss allowed (dB)")
    args = p.parse_args(argv)
    found = rows(args.before, args.checkpoints)
    if not found:
        print(f"nothing to compare between {args.before} and {args.checkpoints}", file=sys.stderr)
        return 2
    print("| checkpoint | benchmark | before (dB) | after (dB) | change |")
    print("|---|---|---|---|---|")
    worst = 0.0
    for name, bench, a, b in found:
        print(f"| {name} | {bench} | {a:.3f} | {b:.3f} | {b - a:+.3f} |")
        worst = min(worst, b - a)
    ok = worst >= -args.floor
    print(f"\nlargest loss {max(0.0, -worst):.3f} dB: {'within' if ok else 'OUTSIDE'} the {args.floor:g} dB floor")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
