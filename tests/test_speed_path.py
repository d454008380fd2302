"""Issue 25: the faster whole-image path computes what the path before it computed.

``tests/data/today_outputs.pt`` holds outputs of the code before the speed work (commit 065bae5,
written by ``python -m tests.data.make_today_outputs`` there): seeded random networks of every
attention kind (the shipped lcoan-s-x2 config among them), single passes, a batch of two, and tiled
passes with padding. The current code must give the same numbers within 1e-4.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lcoan.inference import sr_tensor
from tests.data.make_today_outputs import CONFIGS, cases, model

STORED = Path(__file__).parent / "data" / "today_outputs.pt"
TOL = 1e-4


@pytest.fixture(scope="module")
def stored() -> dict[str, torch.Tensor]:
    return torch.load(STORED)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_outputs_equal_the_path_before_issue_25(name, stored):
    net = model(name)
    with torch.inference_mode():
        for case, (x, kwargs) in cases().items():
            out = net(x) if kwargs is None else sr_tensor(net, x, **kwargs)
            ref = stored[f"{name}/{case}"]
            assert out.shape == ref.shape
            err = (out - ref).abs().max().item()
            assert err <= TOL, f"{name}/{case}: max abs difference {err:.2e}"


def test_inference_path_equals_the_training_path_through_the_whole_network():
    """The in-place channels-last inference path against the autograd (copying) path, same weights."""
    net = model("lsp")
    x = cases()["single"][0]
    with torch.inference_mode():
        fast = net(x)
    slow = net(x.clone().requires_grad_()).detach()
    assert (fast - slow).abs().max().item() <= TOL
    assert fast.is_contiguous()


def test_streamed_array_equals_the_float_path():
    """upscale_array converts finished bands straight into its result: the same uint8 pixels as
    converting sr_tensor's whole float output."""
    import numpy as np

    from lcoan.inference import from_tensor, to_tensor, upscale_array

    net = model("none")
    x = cases()["tiled"][0]
    rgb = (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    for kwargs in (dict(tile=20, overlap=6, pad=4), dict(tile=(16, 24), overlap=4, pad=0), {}):
        with torch.inference_mode():
            ref = from_tensor(sr_tensor(net, to_tensor(rgb), **kwargs), np.uint8)
        assert np.array_equal(upscale_array(net, rgb, **kwargs), ref)


def test_automatic_tiles_never_exceed_the_image_and_balance_the_overlap():
    from lcoan.inference import _tile_shape, balanced_side

    assert balanced_side(186, 256, 16) == 186  # fits: one tile, never taller than the image
    assert balanced_side(272, 256, 16) == 144  # two tiles of 144 instead of 256 + a mostly repeated one
    for length in range(17, 1500, 37):
        side = balanced_side(length, 256, 16)
        assert side <= min(length, 256)
        n = -(-(length - 16) // (side - 16)) if side < length else 1
        assert n == (1 if length <= 256 else -(-(length - 16) // 240))
    net = model("lsp")
    th, tw = _tile_shape(net, 170, 256, None, 16, budget_bytes=200 * 2**20)
    assert th <= 170 and tw <= 256



def test_automatic_tiles_grow_by_the_edge_padding():
    """An image of the tile cap's size runs in one padded pass, not four small tiles (within the budget)."""
    from lcoan.inference import DEFAULT_TILE_CAP, _tile_shape, sr_tensor, tile_size_for

    net = model("none")
    big = 4 * 2**30
    side = tile_size_for(net, big)
    assert side == DEFAULT_TILE_CAP
    assert _tile_shape(net, side + 16, side + 16, None, 16, big, pad=8) == (side + 16, side + 16)
    assert _tile_shape(net, side + 16, side + 16, None, 16, big) != (side + 16, side + 16)
    # a budget that the grown side would exceed keeps the plain side
    tight = tile_size_for(net, 60 * 2**20)
    from lcoan.inference import estimate_bytes
    budget = estimate_bytes(net, tight, tight)
    assert max(_tile_shape(net, 2000, 2000, None, 16, budget, pad=8)) <= tight
    calls = []
    with torch.inference_mode():
        sr_tensor(net, torch.rand(1, 3, side, side), budget_bytes=big, pad=8,
                  progress=lambda done, total: calls.append(total))
    assert calls == [1]

def test_whole_image_benchmark_quick(tmp_path):
    from lcoan.bench.cli import main

    assert main(["--whole", "--quick", "--out", str(tmp_path), "--silent"]) == 0
    text = (tmp_path / "README.md").read_text()
    assert "<!-- whole:start -->" in text and "lcoan / none" in text
    assert (tmp_path / "whole.csv").read_text().count("\n") == 4  # header + 3 kinds at 1 thread


def test_flop_count_is_exact_for_the_backbone():
    from lcoan.bench.whole import network_flops

    net = model("none")
    flops = network_flops(net, 8, 8)
    c, n = 32, 64
    conv = 2 * 9 * c
    expected = n * (3 * conv + 36 * conv * c + conv * c + conv * 4 * c) + 4 * n * conv * 3
    assert flops == {"convolution": expected}


def test_idle_cores_sees_the_load_now_not_the_minute_before():
    """busy_cores samples per-core /proc/stat deltas, so a core that just went idle counts as idle."""
    import os

    from lcoan.inference import busy_cores, cpu_times, idle_cores

    cores = sorted(os.sched_getaffinity(0))
    snapshots = iter([{c: (1000, 500) for c in cores},
                      {c: (1100, 500 + (0 if i == 0 else 100)) for i, c in enumerate(cores)}])
    busy = busy_cores(sample_s=0, read=lambda: next(snapshots))
    assert busy == 1.0  # the first core was busy the whole sample, the others idle
    assert idle_cores(busy) == max(1, len(cores) - 1)
    assert idle_cores(0.0) == len(cores) and idle_cores(99.0) == 1

    def broken():
        raise OSError("no /proc/stat here")
    assert busy_cores(sample_s=0, read=broken) >= 0.0  # falls back to the load average
    if os.path.exists("/proc/stat"):
        assert set(cores) <= set(cpu_times())
        assert 1 <= idle_cores() <= len(cores)
