"""Training data: HR photos, their LR made once with our MATLAB-compatible degradation, random
aligned patches with the 8 flips/rotations, and a fixed held-out validation split. Optionally (not
in the paper) a share of the patches repeat one motif of a photo, or are mined from the photos for
repetition beyond the receptive field of the convolutions."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..imaging.degrade import degrade
from ..imaging.io import load_image, to_uint8

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def list_images(folder: str | Path) -> list[Path]:
    """Image files of a folder, sorted by name (the split depends on this order only)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"training data folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images in {folder}")
    return files


def split(files: list[Path], val_every: int = 40) -> tuple[list[Path], list[Path]]:
    """Every ``val_every``-th file (by name) is held out for validation; the rest train."""
    val = files[val_every // 2 :: val_every]
    held = set(val)
    return [f for f in files if f not in held], val


@dataclass
class Pair:
    hr: np.ndarray  # (sH, sW, 3) uint8, cropped to a multiple of the scale
    lr: np.ndarray  # (H, W, 3) uint8


def make_pair(path: Path, scale: int) -> Pair:
    """HR read like every upload (:func:`lcoan.imaging.io.load_image`: EXIF orientation applied, alpha dropped,
    grey replicated, 16-bit rounded to 8), cropped to a multiple of ``scale``; LR = our degradation."""
    hr = to_uint8(load_image(path).rgb)
    h, w = (hr.shape[0] // scale) * scale, (hr.shape[1] // scale) * scale
    hr = np.ascontiguousarray(hr[:h, :w])
    return Pair(hr=hr, lr=degrade(hr, scale))


def to_float(batch: np.ndarray) -> Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255.0)


class PatchSampler:
    """Random aligned LR/HR patches with random dihedral augmentation, driven by a torch Generator
    (its state is part of the resume state, so a resumed run draws the same batches).

    ``periodic``: share of the patches replaced by :func:`periodic_patch` (0: the paper's data).
    ``mine``: share of the patches drawn from :class:`MinedCrops` (the crops that repeat most beyond the
    receptive field), the rest uniform."""

    def __init__(self, pairs: list[Pair], scale: int, patch: int, generator: torch.Generator,
                 periodic: float = 0.0, mine: float = 0.0) -> None:
        small = [i for i, p in enumerate(pairs) if min(p.lr.shape[:2]) < patch]
        if small:
            raise ValueError(f"{len(small)} training images are smaller than the {patch}px LR patch")
        if not 0.0 <= periodic <= 1.0:
            raise ValueError(f"periodic share must be in [0, 1], got {periodic}")
        if not 0.0 <= mine <= 1.0:
            raise ValueError(f"mined share must be in [0, 1], got {mine}")
        self.pairs, self.scale, self.patch, self.gen, self.periodic = pairs, scale, patch, generator, periodic
        self.mine = mine
        self.mined = MinedCrops(pairs, patch) if mine > 0 else None

    def _randint(self, high: int) -> int:
        return int(torch.randint(high, (1,), generator=self.gen))

    def sample(self, batch: int) -> tuple[Tensor, Tensor]:
        """-> lr (B, 3, P, P), hr (B, 3, sP, sP), float32 in [0, 1]."""
        s, p = self.scale, self.patch
        lrs, hrs = [], []
        for _ in range(batch):
            pair = self.pairs[self._randint(len(self.pairs))]
            if self.periodic > 0 and float(torch.rand((), generator=self.gen)) < self.periodic:
                lr, hr = periodic_patch(pair, s, p, self._randint)
            else:
                if self.mined is not None and float(torch.rand((), generator=self.gen)) < self.mine:
                    i, y, x = self.mined.draw(self._randint)
                    pair = self.pairs[i]
                else:
                    y, x = self._randint(pair.lr.shape[0] - p + 1), self._randint(pair.lr.shape[1] - p + 1)
                lr = pair.lr[y:y + p, x:x + p]
                hr = pair.hr[y * s:(y + p) * s, x * s:(x + p) * s]
            k = self._randint(8)
            lr, hr = dihedral(lr, k), dihedral(hr, k)
            lrs.append(lr)
            hrs.append(hr)
        return to_float(np.stack(lrs)), to_float(np.stack(hrs))


PERIOD_LR = (6, 0.5)  # a motif's period: from 6 LR px to half the patch, so every patch holds several
MARGIN_LR = 4  # LR pixels degraded around the patch and cut off, so its border is not the image border


def periodic_patch(pair: Pair, scale: int, patch: int, randint) -> tuple[np.ndarray, np.ndarray]:
    """(LR (P, P, 3), HR (sP, sP, 3)) uint8: one motif of the HR photo tiled, alternate rows shifted
    (a brick bond), then degraded like every LR. The period is drawn in HR pixels, so most repeats sit
    at another sub-pixel phase of the LR grid: the copies carry information a single one lacks, which
    is what non-local attention can gather. ``randint(high)`` draws from [0, high)."""
    s = scale
    lo, hi = PERIOD_LR[0] * s, max(PERIOD_LR[0] * s + 1, int(PERIOD_LR[1] * patch * s))
    ph, pw = lo + randint(hi - lo + 1), lo + randint(hi - lo + 1)
    H, W = pair.hr.shape[:2]
    y, x = randint(H - ph + 1), randint(W - pw + 1)
    motif = pair.hr[y:y + ph, x:x + pw]
    side = (patch + 2 * MARGIN_LR) * s
    rows, bond = -(-side // ph), randint(pw)
    strip = np.tile(motif, (1, -(-side // pw) + 1, 1))  # (ph, >= side + pw, 3)
    canvas = np.concatenate([strip[:, (r % 2) * bond:(r % 2) * bond + side] for r in range(rows)])[:side]
    canvas = np.ascontiguousarray(canvas)
    m = MARGIN_LR
    lr = degrade(canvas, s)[m:m + patch, m:m + patch]
    return np.ascontiguousarray(lr), canvas[m * s:(m + patch) * s, m * s:(m + patch) * s]


BLOCK_LR = 8  # side of the blocks compared by the repetition score, LR px
FAR_LR = 40  # a match counts only this far away (LR px): beyond about half the S network's receptive field
FLAT_STD = 6.0  # blocks whose high-pass luma varies less than this (of 255) are flat and score 0


def _detail(lr: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) float32 luma minus its 5x5 box blur: the detail a match must share
    (smooth gradients correlate with anything and say nothing about repetition)."""
    luma = lr.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    pad = np.pad(luma, 2, mode="edge")
    c = np.pad(pad.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    blur = (c[5:, 5:] - c[:-5, 5:] - c[5:, :-5] + c[:-5, :-5]) / 25.0
    return luma - blur


def _blocks(detail: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean-free, unit-norm BLOCK_LR x BLOCK_LR detail blocks on a ``stride`` grid -> (N, B*B)
    descriptors (flat blocks all zero) and their (N, 2) top-left corners (y, x)."""
    b = BLOCK_LR
    win = np.lib.stride_tricks.sliding_window_view(detail, (b, b))[::stride, ::stride]
    gy, gx = win.shape[:2]
    d = win.reshape(gy * gx, b * b)
    d = d - d.mean(1, keepdims=True)
    std = np.sqrt((d ** 2).mean(1))
    d = np.where((std >= FLAT_STD)[:, None], d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-6), 0)
    yx = np.stack(np.meshgrid(np.arange(gy) * stride, np.arange(gx) * stride, indexing="ij"), -1).reshape(-1, 2)
    return d.astype(np.float32), yx


def repetition_scores(lr: np.ndarray, size: int, step: int, stride: int = 8) -> list[tuple[float, int, int]]:
    """Repetition beyond the receptive field of every ``size`` x ``size`` crop of an (H, W, 3) uint8 LR
    image on a ``step`` grid -> [(score, y, x)]. Score: the mean over the crop's blocks (BLOCK_LR px on a
    ``stride`` grid) of the best normalised correlation of their detail with a block of the same crop
    (on a stride/2 grid) at least FAR_LR px away; flat blocks count 0. 1: every block has a copy far away."""
    h, w = lr.shape[:2]
    q, qyx = _blocks(_detail(lr), stride)
    k, kyx = _blocks(_detail(lr), max(1, stride // 2))
    far = np.abs(qyx[:, None, :] - kyx[None, :, :]).max(-1) >= FAR_LR  # (Nq, Nk) Chebyshev distance
    sim = np.where(far, q @ k.T, -1.0).astype(np.float32)
    b = BLOCK_LR
    out = []
    for y in range(0, max(1, h - size + 1), step):
        for x in range(0, max(1, w - size + 1), step):
            qi = np.flatnonzero((qyx[:, 0] >= y) & (qyx[:, 1] >= x) & (qyx[:, 0] + b <= y + size)
                                & (qyx[:, 1] + b <= x + size))
            ki = np.flatnonzero((kyx[:, 0] >= y) & (kyx[:, 1] >= x) & (kyx[:, 0] + b <= y + size)
                                & (kyx[:, 1] + b <= x + size))
            score = float(np.clip(sim[np.ix_(qi, ki)].max(1), 0, 1).mean()) if len(qi) and len(ki) else 0.0
            out.append((score, y, x))
    return out


def repetition_score(lr: np.ndarray) -> float:
    """:func:`repetition_scores` of a whole (H, W, 3) uint8 LR image (one crop: the image)."""
    h, w = lr.shape[:2]
    return repetition_scores(lr, max(h, w), max(h, w))[0][0]


class MinedCrops:
    """The training crops (P x P LR) that repeat most beyond the receptive field: candidate crops on a
    P/4 grid of every photo, scored by :func:`repetition_scores`; the top ``keep`` share is drawn from,
    uniformly, with a jitter of up to P/8 px so the same crop is rarely seen twice."""

    def __init__(self, pairs: list[Pair], patch: int, keep: float = 0.15) -> None:
        step = max(8, patch // 4)
        cands = [(score, i, y, x) for i, pair in enumerate(pairs)
                 for score, y, x in repetition_scores(pair.lr, patch, step)]
        cands.sort(key=lambda c: (-c[0], c[1], c[2], c[3]))
        self.crops = [c[1:] for c in cands[:max(1, int(round(keep * len(cands))))]]
        self.scores = np.array([c[0] for c in cands])
        self.threshold = cands[len(self.crops) - 1][0]
        self.pairs, self.patch, self.jitter = pairs, patch, max(1, patch // 8)

    def draw(self, randint) -> tuple[int, int, int]:
        """One mined crop -> (pair index, y, x) of its top-left LR corner. ``randint(high)``: [0, high)."""
        i, y, x = self.crops[randint(len(self.crops))]
        h, w = self.pairs[i].lr.shape[:2]
        j = self.jitter
        y = min(max(0, y + randint(2 * j + 1) - j), h - self.patch)
        x = min(max(0, x + randint(2 * j + 1) - j), w - self.patch)
        return i, y, x


def dihedral(img: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 flips/rotations of an (H, W, C) array."""
    if k & 4:
        img = img.transpose(1, 0, 2)
    return np.ascontiguousarray(np.rot90(img, k & 3))


def centre_crop(pair: Pair, scale: int, hr_size: int) -> Pair:
    """Centre crop of a validation pair: at most ``hr_size`` HR pixels a side, aligned to the scale."""
    lr_size = hr_size // scale
    h, w = pair.lr.shape[:2]
    ch, cw = min(lr_size, h), min(lr_size, w)
    y, x = (h - ch) // 2, (w - cw) // 2
    return Pair(hr=pair.hr[y * scale:(y + ch) * scale, x * scale:(x + cw) * scale], lr=pair.lr[y:y + ch, x:x + cw])
