"""The repetition score that mines training crops (issue 24): repeated detail far apart scores high,
unrepeated detail and flat areas score low, and the sampler draws mined crops reproducibly."""
import numpy as np
import torch

from lcoan.training.data import FAR_LR, MinedCrops, Pair, PatchSampler, repetition_score


def _tiled(period: int, size: int, seed: int = 0) -> np.ndarray:
    motif = np.random.default_rng(seed).integers(0, 256, (period, period, 3), dtype=np.uint8)
    return np.tile(motif, (size // period + 1, size // period + 1, 1))[:size, :size]


def test_repeats_beyond_the_receptive_field_score_high():
    noise = np.random.default_rng(1).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    flat = np.full((128, 128, 3), 120, np.uint8)
    assert repetition_score(_tiled(FAR_LR + 4, 128)) > 0.9
    assert repetition_score(noise) < 0.6
    assert repetition_score(flat) == 0.0


def test_mined_crops_prefer_the_repeating_photo():
    rng = np.random.default_rng(2)
    noise = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    pairs = [Pair(hr=np.zeros((192, 192, 3), np.uint8), lr=noise),
             Pair(hr=np.zeros((192, 192, 3), np.uint8), lr=_tiled(44, 96))]
    mined = MinedCrops(pairs, patch=88, keep=0.5)
    assert {i for i, _, _ in mined.crops} == {1}
    draws = [mined.draw(lambda high: int(rng.integers(high))) for _ in range(20)]
    assert all(i == 1 and 0 <= y <= 8 and 0 <= x <= 8 for i, y, x in draws)


def test_sampler_with_mining_is_reproducible():
    rng = np.random.default_rng(3)
    pairs = [Pair(hr=rng.integers(0, 256, (192, 192, 3), dtype=np.uint8),
                  lr=rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)) for _ in range(2)]
    a = PatchSampler(pairs, 2, 48, torch.Generator().manual_seed(5), mine=0.5).sample(4)
    b = PatchSampler(pairs, 2, 48, torch.Generator().manual_seed(5), mine=0.5).sample(4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
