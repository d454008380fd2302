"""Attention-mass rings and paired bootstrap intervals (issue 24's columns and intervals)."""
import numpy as np
import pytest
import torch

from lcoan.config import preset
from lcoan.introspect.intervals import paired_bootstrap
from lcoan.introspect.mass import farthest_query, mass_split, receptive_radius, ring_of_keys


def test_receptive_radius_of_s_is_38():
    assert receptive_radius(preset("s")) == 38  # 1 head + 4 groups x (4 blocks x 2 + 1) + 1 after the body


def test_rings_split_a_row_by_distance():
    h, w = 9, 9
    pos = torch.tensor([4 * w + 4])
    ring = ring_of_keys(pos, (h, w), radius=2)[0].reshape(h, w)
    assert ring[4, 4] == 0 and ring[3, 5] == 1 and ring[2, 4] == 2 and ring[0, 0] == 3
    row = torch.zeros(1, h * w)
    row[0, 4 * w + 4], row[0, 3 * w + 3], row[0, 0] = 0.5, 0.2, 0.3
    split = mass_split(row, pos, (h, w), radius=2)
    assert (split.self, split.neighbours, split.within_rf, split.beyond_rf) == pytest.approx((0.5, 0.2, 0.0, 0.3))


def test_farthest_query_picks_the_row_reaching_beyond():
    rows = torch.zeros(2, 25)
    rows[0, 6], rows[1, 24] = 1.0, 1.0  # query 0 looks at its neighbour, query 1 at a far corner
    assert farthest_query(rows, torch.tensor([0, 12]), (5, 5), radius=1) == 12


def test_bootstrap_interval_covers_the_mean_and_excludes_zero_for_a_clear_effect():
    rng = np.random.default_rng(0)
    clear = [0.2 + 0.01 * rng.standard_normal(6) for _ in range(8)]
    iv = paired_bootstrap(clear, reps=500)
    assert iv.lo <= iv.mean <= iv.hi and iv.clear_of_zero and (iv.n_images, iv.n_tiles) == (8, 48)
    noisy = [rng.standard_normal(6) for _ in range(8)]
    assert not paired_bootstrap(noisy, reps=500).clear_of_zero
