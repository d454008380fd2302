"""The optional periodic patches (``--periodic``, not in the paper): one motif of the photo tiled
with a brick bond, its LR degraded with a margin so that the patch border is not an image border,
and off by default so that the paper's data (and every resumed run) draws exactly as before."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from lcoan.imaging.degrade import degrade
from lcoan.training.data import PERIOD_LR, Pair, PatchSampler, periodic_patch
from lcoan.training.train import parse_args


def photo(h: int = 120, w: int = 160, seed: int = 0) -> Pair:
    hr = (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)
    return Pair(hr=hr, lr=degrade(hr, 2))


def draws(*values: int):
    """A randint(high) stub that returns ``values`` in turn (each must lie below its ``high``)."""
    it = iter(values)

    def randint(high: int) -> int:
        v = next(it)
        assert 0 <= v < high
        return v
    return randint


def test_motif_repeats_with_the_brick_bond() -> None:
    pair = photo()
    # period 12 + 3 = 15 HR rows and 12 + 5 = 17 HR columns, motif at (7, 9), bond 4
    lr, hr = periodic_patch(pair, 2, 24, draws(3, 5, 7, 9, 4))
    assert lr.shape == (24, 24, 3) and hr.shape == (48, 48, 3)
    assert np.array_equal(hr[:, :-17], hr[:, 17:])  # every row repeats with the column period
    assert np.array_equal(hr[:-30], hr[30:])  # tile rows alternate: period two motif heights
    assert not np.array_equal(hr[:-15], hr[15:])  # and consecutive tile rows are shifted by the bond
    motif = pair.hr[7:7 + 15, 9:9 + 17]
    assert any(np.array_equal(hr[y:y + 15, x:x + 17], motif) for y, x in itertools.product(range(34), range(32)))


def test_lr_has_no_border_effect() -> None:
    # a period of 12 HR px is 6 LR px at x2: the LR repeats exactly, border columns included
    lr, _ = periodic_patch(photo(), 2, 24, draws(0, 0, 5, 5, 0))
    assert np.array_equal(lr[:, :-6], lr[:, 6:]) and np.array_equal(lr[:-6], lr[6:])


def test_period_spans_several_repeats_per_patch() -> None:
    pair, patch = photo(), 48
    lr, hr = periodic_patch(pair, 2, patch, lambda high: high - 1)  # the longest period and bond
    longest = int(PERIOD_LR[1] * patch * 2)
    assert np.array_equal(hr[:, :-longest], hr[:, longest:]) and 2 * longest <= hr.shape[1]


def test_share_zero_draws_exactly_like_the_paper_data() -> None:
    pair = photo()
    a = PatchSampler([pair], 2, 16, torch.Generator().manual_seed(3)).sample(6)
    b = PatchSampler([pair], 2, 16, torch.Generator().manual_seed(3), periodic=0.0).sample(6)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    c = PatchSampler([pair], 2, 16, torch.Generator().manual_seed(3), periodic=1.0).sample(6)
    assert not torch.equal(a[1], c[1])


def test_share_outside_0_1_is_refused() -> None:
    with pytest.raises(ValueError, match="periodic share"):
        PatchSampler([photo()], 2, 16, torch.Generator(), periodic=1.5)
    with pytest.raises(SystemExit):
        parse_args(["--data", "d", "--out", "o", "--periodic", "-0.1"])
    assert parse_args(["--data", "d", "--out", "o", "--periodic", "0.25"]).periodic == 0.25
