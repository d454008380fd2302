"""The attention experiments' table (docs/attention_experiments.md), generated from the runs' logs.

    python -m scripts.experiment_table [--runs runs/exp] [--out docs/attention_experiments.md]

Reads, for every ``runs/exp/VARIANT``: ``run.json`` (config, command, step), ``log.csv``
(s/iteration, validation PSNR) and ``heldout.json`` (written by ``lcoan.introspect.report`` via
``bash scripts/attention_experiments.sh report``: 128x128-LR tiles of data/heldout/{bsds,repeat}, per
tile; older runs have only ``attention.json``, centre crops of bsds/structure, without intervals). The
gain of a variant is its held-out PSNR minus that of the ``none`` run with the same scale, patch size,
schedule length and data options (periodic and mined shares), with a paired bootstrap interval over
images and the tiles within them; while either run is still training, the validation gain compares the
last step both have logged, so a run ahead of its pair is never credited with its extra iterations.
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

from lcoan.introspect.report import gain_interval, interval
from scripts.blocks import splice

HEADER = """# Making the attention count: controlled experiments

Every variant fine-tunes today's shipped checkpoint of its kind and scale
(`checkpoints/{lcoan,dense,none}-s-x2`; a name ending in `-x4`: the x4 one) with the same budget for every
kind: 600 iterations (a name ending in `-long`: 4000), cosine from 2e-4 (50 warm-up), seed 2, the same number
of LR pixels per batch (16 x 48², 4 x 96² or 2 x 136²), one torch thread on the 2-core CPU (`bash
scripts/attention_experiments.sh VARIANT`). They are compared on held-out data only, never on Set5/Set14:
*val* is the training command's own held-out validation (centre crops of the 10 BSDS images it never trains
on); *bsds* and *repeat* are `python -m lcoan.introspect.report` on the 128x128-LR tiles that cover those 10
photos and 8 images with long-range repetition shipped in scikit-image (brick wall, gravel, grass, coins,
text, a scanned page, stained glands, a cat's fur; `python -m scripts.heldout_data`). No compared run
trained on any of them. Brackets are 95% paired bootstrap intervals: images are resampled, then the tiles
within each drawn image, and the statistic is the mean over images of the mean over their tiles.

Columns: *gain* = PSNR minus the `none` run with the same scale, patch, iterations and data options (on the
same tiles; while a pair is still training: the validation PSNR at the last step both logged); *drop* = PSNR
lost when the same weights run with the attention branch off (`attn_res_scale = 0`); *self mass* / *beyond
RF* = share of the attention on the query itself / on keys farther (Chebyshev) than the receptive field of
the convolutions (38 LR px for S, `lcoan.introspect.mass`); *entropy* = mean normalised entropy of the dense
softmax of the model's own embeddings (1 = uniform); *recall* = share of that dense mass on the keys LSP
gives each query; *clusters* = share of the 128 centroids with a member. Flags: `ls8` = learnable logit scale
initialised at 8, `ars1` = `attn_res_scale` 1, `reseed` = dead centroids re-seeded; `fix` = all three;
`periodic 0.25` = a quarter of the training patches tile one motif of the photo (`--periodic`); `mined 0.5`
= half of the training crops drawn from the 15% of candidate crops that repeat most beyond the receptive
field (`--mine`, `lcoan.training.data.MinedCrops`: high-pass 8x8 blocks matched to blocks >= 40 LR px away).
"""


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def flags(cfg: dict) -> str:
    out = []
    if cfg.get("logit_scale"):
        out.append(f"ls{cfg['logit_scale']:g}")
    if cfg.get("attn_res_scale", 0.1) != 0.1:
        out.append(f"ars{cfg['attn_res_scale']:g}")
    if cfg.get("reseed_dead"):
        out.append("reseed")
    return ", ".join(out) or "paper"


def option_of(command: str, flag: str, default: str) -> str:
    """The value of ``flag`` in a recorded command line (the last one wins, as in argparse)."""
    parts = command.split()
    found = [parts[i + 1] for i, p in enumerate(parts[:-1]) if p == flag]
    return found[-1] if found else default


def patch_of(command: str) -> str:
    return f"{option_of(command, '--batch', '16')}x{option_of(command, '--patch', '48')}²"


def collect(runs: Path) -> list[dict]:
    """One record per variant folder with a run.json."""
    out = []
    for folder in sorted(p for p in runs.iterdir() if (p / "run.json").exists()):
        info = json.loads((folder / "run.json").read_text())
        log = read_rows(folder / "log.csv")
        speeds = [float(r["s_per_it"]) for r in log if r.get("s_per_it")]
        vals = [(int(r["step"]), float(r["val_psnr"])) for r in log if r.get("val_psnr")]
        share = float(option_of(info.get("command", ""), "--periodic", "0"))
        mine = float(option_of(info.get("command", ""), "--mine", "0"))
        named = [x for x in (flags(info["config"]), f"periodic {share:g}" if share else "",
                             f"mined {mine:g}" if mine else "") if x and x != "paper"]
        rec = {"variant": folder.name, "kind": info["config"]["attention"], "flags": ", ".join(named) or "paper",
               "periodic": share, "mine": mine,
               "scale": info["config"].get("scale", 2),
               "patch": patch_of(info.get("command", "")), "step": info.get("step", 0),
               "iters": info.get("iters"), "s_per_it": statistics.median(speeds) if speeds else None,
               "val_start": vals[0][1] if vals else None, "val": vals[-1][1] if vals else None,
               "vals": dict(vals), "data": {}, "results": {}}
        for name in ("attention.json", "heldout.json"):  # the newer report wins
            if (folder / name).exists():
                for r in json.loads((folder / name).read_text()):
                    rec["data"][r["data"]] = r["summary"]
                    rec["results"][r["data"]] = r
        out.append(rec)
    return out


def f(value, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def val_gain(run: dict, base: dict | None) -> str:
    """Validation PSNR of ``run`` minus its ``none`` pair: final against final once both finished,
    else at the last step both logged (marked "@step")."""
    if base is None or run["kind"] == "none" or run["val"] is None or base["val"] is None:
        return "–"
    if all(r["iters"] is not None and r["step"] >= r["iters"] for r in (run, base)):
        return f(run["val"] - base["val"], signed=True)
    common = sorted(set(run.get("vals", {})) & set(base.get("vals", {})))
    if not common:
        return "–"
    step = common[-1]
    return f"{f(run['vals'][step] - base['vals'][step], signed=True)} @{step}"


SETS = ("bsds", "repeat")


def legacy(rec: dict) -> bool:
    """A run measured only by the earlier report (centre crops of bsds and structure, no tiles)."""
    return bool(rec["data"]) and not all("tiles" in rec["data"].get(d, {}) for d in SETS)


def table(records: list[dict]) -> str:
    """One row per run with a held-out report on the tiles of bsds and repeat (the runs measured before
    that report existed are listed by :func:`legacy_table`)."""
    pair = lambda r: (r["scale"], r["patch"], r["iters"], r["periodic"], r["mine"])  # noqa: E731
    none = {pair(r): r for r in records if r["kind"] == "none"}
    lines = ["| variant | kind | scale | flags | batch x patch | it | s/it | val PSNR (start -> end) | gain val | "
             + " | ".join(f"{d} PSNR | gain {d} [95% CI] | drop {d} [95% CI]" for d in SETS)
             + " | self mass | beyond RF | entropy | recall | clusters |",
             "|" + "---|" * (14 + 3 * len(SETS))]
    for r in records:
        if legacy(r):
            continue
        base = none.get(pair(r))
        cells = []
        for d in SETS:
            sm = r["data"].get(d, {})
            gain = gain_interval(r["results"][d], base["results"][d]) \
                if base and r["kind"] != "none" and d in base["results"] and d in r["results"] else None
            cells += [f(sm.get("psnr_on")), interval(gain), interval(sm.get("drop_ci"))]
        per = [r["data"].get(d, {}) for d in SETS]

        def joined(key: str, pct: bool = False, per: list = per) -> str:
            vals = [x.get(key) for x in per if x.get(key) is not None]
            return " / ".join(f"{100 * v:.0f}%" if pct else f(v) for v in vals) or "–"

        done = f"{r['step']}" + ("" if r["iters"] is None or r["step"] >= r["iters"] else f"/{r['iters']} (running)")
        lines.append(
            f"| {r['variant']} | {r['kind']} | x{r['scale']} | {r['flags']} | {r['patch']} | {done} | "
            f"{f(r['s_per_it'], 2)} | {f(r['val_start'], 2)} -> {f(r['val'], 3)} | {val_gain(r, base)} | "
            + " | ".join(cells) + f" | {joined('mass_self')} | {joined('mass_beyond_rf')} | {joined('entropy')} | "
            f"{joined('recall')} | {joined('clusters_used', pct=True)} |")
    return "\n".join(lines)


def legacy_table(records: list[dict]) -> str:
    """The runs measured with the earlier report (centre crops of bsds and structure, no intervals)."""
    pair = lambda r: (r["scale"], r["patch"], r["iters"], r["periodic"], r["mine"])  # noqa: E731
    none = {pair(r): r for r in records if r["kind"] == "none"}
    lines = ["| variant | kind | scale | flags | batch x patch | it | s/it | val PSNR (start -> end) | gain val | "
             "bsds PSNR | gain bsds | drop bsds | structure PSNR | gain structure | drop structure | "
             "entropy | recall | clusters |",
             "|" + "---|" * 18]
    for r in records:
        if not legacy(r):
            continue
        base = none.get(pair(r))
        b, s = r["data"].get("bsds", {}), r["data"].get("structure", {})
        bb = base["data"].get("bsds", {}) if base else {}
        bs = base["data"].get("structure", {}) if base else {}

        def gain(mine: dict, theirs: dict, key: str, kind: str = r["kind"]) -> str:
            a, b_ = mine.get(key), theirs.get(key)
            return "–" if a is None or b_ is None or kind == "none" else f(a - b_, signed=True)

        ent = [x.get("entropy") for x in (b, s) if x.get("entropy") is not None]
        rec = [x.get("recall") for x in (b, s) if x.get("recall") is not None]
        used = [x.get("clusters_used") for x in (b, s) if x.get("clusters_used") is not None]
        done = f"{r['step']}" + ("" if r["iters"] is None or r["step"] >= r["iters"] else f"/{r['iters']} (running)")
        lines.append(
            f"| {r['variant']} | {r['kind']} | x{r['scale']} | {r['flags']} | {r['patch']} | {done} | "
            f"{f(r['s_per_it'], 2)} | "
            f"{f(r['val_start'], 2)} -> {f(r['val'], 3)} | {val_gain(r, base)} | "
            f"{f(b.get('psnr_on'))} | {gain(b, bb, 'psnr_on')} | {f(b.get('drop'), signed=True)} | "
            f"{f(s.get('psnr_on'))} | {gain(s, bs, 'psnr_on')} | {f(s.get('drop'), signed=True)} | "
            f"{' / '.join(f(v) for v in ent) or '–'} | {' / '.join(f(v) for v in rec) or '–'} | "
            f"{' / '.join(f'{100 * v:.0f}%' for v in used) or '–'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", default="runs/exp")
    p.add_argument("--out", default="docs/attention_experiments.md")
    args = p.parse_args(argv)
    records = collect(Path(args.runs))
    if not records:
        print(f"no runs in {args.runs}", file=sys.stderr)
        return 1
    out = Path(args.out)
    if not out.exists():
        out.write_text(HEADER)
    text = ("Tiles of bsds and repeat (see above); brackets: 95% paired bootstrap intervals over the images and "
            "the tiles within them. Mass, entropy, recall and clusters: bsds / repeat.\n\n" + table(records)
            + "\n\nEarlier runs, measured on 128x128-LR centre crops of bsds and structure (no intervals; "
            "entropy, recall and clusters: bsds / structure):\n\n" + legacy_table(records))
    splice(out, "experiments", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
