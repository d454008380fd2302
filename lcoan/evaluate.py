"""Evaluate a checkpoint (or bicubic) on a benchmark folder: Y-PSNR / SSIM, border shaved by the scale.

    python -m lcoan.evaluate --checkpoint checkpoints/lcoan-s-x2 --data ../shared/data/benchmark/Set5/x2
    python -m lcoan.evaluate --bicubic --scale 4 --data ../shared/data/benchmark/Set14/x4 --json out.json

The folder holds either ``*_HR.png`` / ``*_LR.png`` pairs (the LR files are used as given) or
HR images only (the LR is made with our MATLAB-compatible bicubic degradation). Grayscale images
are replicated to RGB and scored on Y like the others; HR sizes not divisible by the scale are
cropped. Exit code 2 with a message for unusable input.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .bench.timing import timed_call
from .checkpoint import CheckpointError, load
from .config import SCALES
from .imaging.degrade import bicubic_upscale, degrade
from .imaging.io import ImageError, load_image, save_image, to_uint8
from .imaging.metrics import psnr_y, ssim_y
from .inference import upscale_array
from .network import LCoAN
from .training.data import IMAGE_SUFFIXES


@dataclass(frozen=True)
class Sample:
    name: str
    hr: Path
    lr: Path | None  # None: make the LR with our degradation


@dataclass
class Score:
    name: str
    lr_size: tuple[int, int]
    psnr: float
    ssim: float
    seconds: float


def find_samples(folder: Path) -> list[Sample]:
    """HR/LR pairs by the ``_HR`` / ``_LR`` suffix convention, or every image as HR."""
    if not folder.is_dir():
        raise FileNotFoundError(f"data folder not found: {folder}")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    hrs = [p for p in images if p.stem.endswith("_HR")]
    if hrs:
        samples = []
        for hr in hrs:
            lr = hr.with_name(hr.stem[:-3] + "_LR" + hr.suffix)
            if not lr.exists():
                raise FileNotFoundError(f"{hr.name} has no matching {lr.name}")
            samples.append(Sample(hr.stem[:-3], hr, lr))
        return samples
    samples = [Sample(p.stem, p, None) for p in images if not p.stem.endswith("_LR")]
    if not samples:
        raise FileNotFoundError(f"no images in {folder}")
    return samples


def rgb8(path: Path) -> np.ndarray:
    """Benchmark image as ``H x W x 3`` uint8 RGB (grayscale replicated; 16-bit rounded to 8 by :func:`to_uint8`)."""
    return to_uint8(load_image(path).rgb)


def prepare(sample: Sample, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """(lr, hr) uint8 RGB with hr exactly ``scale`` times lr."""
    hr = rgb8(sample.hr)
    if sample.lr is None:
        lr = degrade(hr, scale)
    else:
        lr = rgb8(sample.lr)
    h, w = lr.shape[0] * scale, lr.shape[1] * scale
    if hr.shape[0] < h or hr.shape[1] < w:
        raise ValueError(f"{sample.name}: HR {hr.shape[1]}x{hr.shape[0]} is smaller than {scale} x LR "
                         f"{lr.shape[1]}x{lr.shape[0]}: wrong scale for this folder?")
    return lr, hr[:h, :w]


def evaluate(model: LCoAN | None, samples: list[Sample], scale: int, save_dir: Path | None = None,
             tile: int | None = None, progress: bool = True) -> list[Score]:
    """Super-resolve every sample and score it; ``model`` None is MATLAB bicubic."""
    scores = []
    for sample in tqdm(samples, desc="evaluating", disable=not progress):
        lr, hr = prepare(sample, scale)
        sr, seconds = timed_call(partial(bicubic_upscale, lr, scale) if model is None
                                 else partial(upscale_array, model, lr, tile=tile))
        scores.append(Score(sample.name, (lr.shape[0], lr.shape[1]), psnr_y(sr, hr, scale), ssim_y(sr, hr, scale),
                            seconds))
        if save_dir is not None:
            save_image(save_dir / f"{sample.name}_x{scale}_SR.png", sr)
    return scores


def summary(scores: list[Score]) -> dict:
    return {"psnr": float(np.mean([s.psnr for s in scores])), "ssim": float(np.mean([s.ssim for s in scores])),
            "seconds": float(np.mean([s.seconds for s in scores])), "images": len(scores)}


def table(scores: list[Score]) -> str:
    lines = [f"{'image':<24} {'LR size':>10} {'PSNR':>8} {'SSIM':>7} {'time s':>7}"]
    for s in scores:
        lines.append(f"{s.name:<24} {s.lr_size[1]:>4}x{s.lr_size[0]:<5} {s.psnr:8.3f} {s.ssim:7.4f} {s.seconds:7.2f}")
    m = summary(scores)
    lines.append(f"{'mean':<24} {'':>10} {m['psnr']:8.3f} {m['ssim']:7.4f} {m['seconds']:7.2f}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lcoan.evaluate", description=__doc__.split("\n")[0])
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--checkpoint", type=Path, help="checkpoint folder")
    what.add_argument("--bicubic", action="store_true", help="evaluate MATLAB bicubic upscaling")
    p.add_argument("--data", type=Path, required=True, help="folder of *_HR/*_LR pairs or of HR images")
    p.add_argument("--scale", type=int, choices=SCALES, help="needed with --bicubic; checked against the checkpoint")
    p.add_argument("--json", type=Path, help="write per-image and mean scores here")
    p.add_argument("--save-images", type=Path, help="write the SR images (PNG) here")
    p.add_argument("--tile", type=int, help="LR tile size (default: chosen from a memory budget)")
    p.add_argument("--threads", type=int, default=0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        model = None
        if args.checkpoint:
            model = load(args.checkpoint)
            if args.scale and args.scale != model.cfg.scale:
                raise ValueError(f"--scale {args.scale} but {args.checkpoint} is an x{model.cfg.scale} model")
        elif not args.scale:
            raise ValueError("--bicubic needs --scale")
        scale = model.cfg.scale if model is not None else args.scale
        samples = find_samples(args.data)
        scores = evaluate(model, samples, scale, args.save_images, args.tile)
    except (CheckpointError, ImageError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table(scores))
    if args.json:
        result = {"method": str(args.checkpoint) if args.checkpoint else "bicubic", "data": str(args.data),
                  "scale": scale, "mean": summary(scores), "images": [asdict(s) for s in scores],
                  "torch_threads": torch.get_num_threads()}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
