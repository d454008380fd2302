"""Issue 8, large inputs: tiled inference under a memory budget gives the untiled result.

With attention "none" the network is a stack of convolutions with a finite receptive field r (in LR
pixels, measured here). A tile's output is exact wherever the pixel is at least r from the tile's
cut edges, so with overlap > 2r the blended output equals the untiled one everywhere except in
bands of width r along the cuts ("seams"), up to float rounding. LSP attention is non-local (k-means
over the whole input), so tiling changes it slightly: the result is only close.

Fast (default suite): a small image with tiles forced small. Slow: a 2048x2048 LR input in a
subprocess with a 64 MiB budget, peak RSS measured.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lcoan.config import preset
from lcoan.inference import _starts, sr_tensor
from lcoan.network import LCoAN

from .conftest import ROOT

OVERLAP = 32
FLOAT_ROUNDING = 1e-5  # same convolutions on a crop vs the whole image, then a weighted mean


def tiny(attention: str) -> LCoAN:
    torch.manual_seed(0)
    return LCoAN(preset("tiny", scale=2, attention=attention)).eval()


def smooth_input(size_h: int, size_w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, max(2, size_h // 32), max(2, size_w // 32), generator=g)
    x = torch.nn.functional.interpolate(base, size=(size_h, size_w), mode="bicubic", align_corners=False)
    return (x + 0.05 * torch.rand(x.shape, generator=g)).clamp(0, 1)


@torch.inference_mode()
def receptive_radius(model: LCoAN, size: int = 64) -> int:
    """How far (LR pixels) a change of one input pixel reaches in the output."""
    x = torch.rand(1, 3, size, size)
    y = model(x)
    x[..., size // 2, size // 2] += 0.5
    changed = ((model(x) - y).abs().amax(dim=1)[0] > 0).nonzero()
    s = model.cfg.scale
    return int((changed // s - size // 2).abs().max()) + 1


def exact_region(h: int, w: int, tile: int, overlap: int, r: int) -> np.ndarray:
    """LR mask of pixels every covering tile computes exactly (at least r from its cut edges)."""
    overlap = max(0, min(overlap, tile // 2))
    bad = np.zeros((h, w), bool)
    for y0 in _starts(h, tile, overlap):
        y1 = min(y0 + tile, h)
        for x0 in _starts(w, tile, overlap):
            x1 = min(x0 + tile, w)
            good = np.zeros((h, w), bool)
            good[y0 + (r if y0 > 0 else 0): y1 - (r if y1 < h else 0),
                 x0 + (r if x0 > 0 else 0): x1 - (r if x1 < w else 0)] = True
            covered = np.zeros((h, w), bool)
            covered[y0:y1, x0:x1] = True
            bad |= covered & ~good
    return ~bad


def to_hr(mask: np.ndarray, s: int) -> np.ndarray:
    return mask.repeat(s, axis=0).repeat(s, axis=1)


def test_receptive_field_fits_in_half_the_overlap():
    assert receptive_radius(tiny("none")) < OVERLAP // 2


def test_tiled_equals_untiled_away_from_seams_attention_none():
    model = tiny("none")
    r, s = receptive_radius(model), model.cfg.scale
    h, w, tile = 150, 131, 80  # 3 x 3 tiles
    x = smooth_input(h, w)
    untiled = sr_tensor(model, x, tile=10_000)
    seen = []
    tiled = sr_tensor(model, x, tile=tile, overlap=OVERLAP, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (9, 9)
    diff = (tiled - untiled).abs().amax(dim=1)[0].numpy()
    good = to_hr(exact_region(h, w, tile, OVERLAP, r), s)
    assert good.mean() > 0.4  # bands of r on both sides of every cut are excluded, the rest is compared
    assert diff[good].max() <= FLOAT_ROUNDING, diff[good].max()
    # The test can tell: with too little overlap the seams really differ.
    narrow = sr_tensor(model, x, tile=tile, overlap=4)
    assert (narrow - untiled).abs().max() > 100 * FLOAT_ROUNDING


def test_tiled_is_close_to_untiled_attention_lsp():
    model = tiny("lsp")
    x = smooth_input(120, 100)
    untiled = sr_tensor(model, x, tile=10_000)
    tiled = sr_tensor(model, x, tile=48, overlap=16)
    psnr = -10 * torch.log10(((tiled - untiled) ** 2).mean()).item()
    assert psnr > 45, psnr


# ----------------------------------------------------------------------------- 2048 x 2048, slow
CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
sys.path.insert(0, sys.argv[1])
from tests.test_large_input import smooth_input, tiny, OVERLAP
from lcoan.inference import sr_tensor, tile_size_for
torch.set_num_threads(1)
kind, mode, size, budget, out = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
model = tiny(kind)
x = smooth_input(size, size)
start = time.perf_counter()
if mode == "tiled":
    y = sr_tensor(model, x, budget_bytes=budget, overlap=OVERLAP)
else:
    y = sr_tensor(model, x, tile=10**6)
seconds = time.perf_counter() - start
np.save(out, y[0].numpy())
print(json.dumps({"tile": tile_size_for(model, budget) if mode == "tiled" else size, "seconds": seconds,
                  "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

SIZE = 2048
BUDGET = 64 * 2**20
RSS_LIMIT_GIB = 4  # "well under 24 GiB": the whole machine has 24


def _child(tmp_path: Path, kind: str, mode: str) -> tuple[dict, Path]:
    out = tmp_path / f"{kind}_{mode}.npy"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), kind, mode, str(SIZE), str(BUDGET), str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), out


@pytest.mark.slow
def test_2048_input_with_small_budget(tmp_path):
    report = {}
    for kind in ("none", "lsp"):  # tiled runs first: RUSAGE_CHILDREN is then their peak (or an earlier child's)
        report[kind, "tiled"], _ = _child(tmp_path, kind, "tiled")
        assert report[kind, "tiled"]["tile"] < SIZE  # really tiled
    children_peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    assert children_peak_gib < RSS_LIMIT_GIB, children_peak_gib
    for kind in ("none", "lsp"):
        report[kind, "untiled"], _ = _child(tmp_path, kind, "untiled")
    print({f"{k}/{m}": v for (k, m), v in report.items()}, f"tiled children peak {children_peak_gib:.2f} GiB")

    none_tiled, none_untiled = (np.load(tmp_path / f"none_{m}.npy", mmap_mode="r") for m in ("tiled", "untiled"))
    model = tiny("none")
    r = receptive_radius(model)
    good = exact_region(SIZE, SIZE, report["none", "tiled"]["tile"], OVERLAP, r)
    diff = np.abs(np.asarray(none_tiled) - np.asarray(none_untiled)).max(axis=0)
    hr_good = to_hr(good, model.cfg.scale)
    assert diff[hr_good].max() <= FLOAT_ROUNDING, diff[hr_good].max()

    lsp_tiled, lsp_untiled = (np.load(tmp_path / f"lsp_{m}.npy", mmap_mode="r") for m in ("tiled", "untiled"))
    mse = float(np.mean((np.asarray(lsp_tiled, np.float64) - np.asarray(lsp_untiled, np.float64)) ** 2))
    psnr = -10 * np.log10(mse)
    print(f"none: max diff away from seams {diff[hr_good].max():.2e} (r={r}); lsp tiled vs untiled {psnr:.1f} dB")
    assert psnr > 45, psnr


def test_rectangular_tiles_follow_the_image_shape():
    """tile=(height, width): 2 x 1 tiles for a 100 x 150 input with (60, 160) tiles, close to untiled."""
    model = tiny("none")
    x = smooth_input(100, 150)
    seen = []
    tiled = sr_tensor(model, x, tile=(60, 160), overlap=16, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (2, 2)
    untiled = sr_tensor(model, x, tile=10_000)
    psnr = -10 * torch.log10(((tiled - untiled) ** 2).mean()).item()
    assert psnr > 45, psnr
