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
