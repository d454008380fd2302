"""Local attribution maps (lcoan.introspect.lam): completeness, bounded receptive field, Gini / DI."""
from __future__ import annotations

import numpy as np
import torch

import lcoan
from lcoan.inference import to_tensor
from lcoan.introspect.lam import (
    Patch,
    attribute,
    blur,
    blur_path,
    diffusion_index,
    gini,
    mass_outside,
    receptive_radius,
)
from tests.tiny_checkpoints import textured


def tiny(attention: str, seed: int = 0) -> lcoan.LCoAN:
    torch.manual_seed(seed)
    return lcoan.create_model(lcoan.preset("tiny", attention=attention)).eval()


def test_blur_path_runs_from_the_baseline_to_the_input():
    x = to_tensor(textured(12, 10))
    ends = blur_path(x, torch.tensor([0.0, 1.0]), sigma_max=2.0)
    torch.testing.assert_close(ends[1:], x)
    torch.testing.assert_close(ends[:1], blur(x, 2.0))
    assert (ends[0] - x[0]).abs().max() > 0.05
    torch.testing.assert_close(blur(torch.ones(1, 3, 5, 5), 2.0), torch.ones(1, 3, 5, 5))


def test_completeness_within_the_midpoint_rule_error():
    """Attributions sum to D(x) - D(baseline); the gap shrinks as the steps grow."""
    x = to_tensor(textured(10, 10, seed=1))
    for kind in ("none", "dense"):
        model = tiny(kind)
        box = Patch(6, 6, 6)
        coarse = attribute(model, x, box, steps=2, batch=2)
        fine = attribute(model, x, box, steps=32, batch=8)
        assert abs(fine.target - coarse.target) < 1e-5 and abs(fine.target - fine.baseline) > 1e-3
        assert fine.gap < 0.02, (kind, fine.gap)
        assert fine.gap <= coarse.gap + 1e-6
        assert fine.attribution.shape == (3, 10, 10)


def test_a_network_without_attention_has_a_bounded_receptive_field():
    x = to_tensor(textured(40, 40, seed=2))
    box = Patch(0, 0, 4)  # HR rows / cols 0..3 at x2: LR 0..1
    reach = 2 + receptive_radius(3, 1, 2)  # tiny: 3 groups of 1 block
    none = attribute(tiny("none"), x, box, steps=2, batch=2).magnitude
    assert none[:reach, :reach].max() > 0
    outside = np.ones_like(none, dtype=bool)
    outside[:reach, :reach] = False
    assert reach < 40 and np.all(none[outside] == 0)
    # dense attention reaches the whole image
    dense = attribute(tiny("dense"), x, box, steps=2, batch=2).magnitude
    assert dense[outside].max() > 0
    radius = receptive_radius(3, 1, 2)
    assert mass_outside(none, box, 2, radius) == 0.0 < mass_outside(dense, box, 2, radius) < 1.0
    assert mass_outside(np.ones((40, 40)), box, 2, 0) == 1 - 4 / 1600  # footprint: LR rows / cols 0..1


def test_gini_and_diffusion_index():
    assert gini(np.ones(100)) == 0.0
    spike = np.zeros(100)
    spike[3] = 5
    assert abs(gini(spike) - 0.99) < 1e-9
    assert diffusion_index(np.ones((4, 4))) == 100.0
    assert diffusion_index(spike) < diffusion_index(np.linspace(0, 1, 100)) < 100
    assert gini(np.zeros(5)) == 0.0
