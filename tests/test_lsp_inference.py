"""The inference path of LSP / CoA (no autograd) computes the same numbers as the training path."""
from __future__ import annotations

import pytest
import torch

from lcoan.attention import lsp, windows
from lcoan.attention.lsp import build_pattern
from lcoan.attention.windows import (
    framed_keys,
    framed_queries,
    gather_positions,
    inverse_permutation,
    mask_slots_,
    pad_to_windows,
    softmax_,
    sorted_framed,
    with_neighbours,
)
from lcoan.config import preset
from lcoan.network import LCoAN
from tests.test_attention import random_case, slow_lsp

CASES = [(1, 16, 1), (5, 16, 1), (16, 16, 1), (17, 16, 1), (40, 7, 1), (100, 16, 1), (33, 8, 2),
         (50, 384, 3), (35, 4, 2), (96, 32, 1)]


def training_pattern(q, k, codes, window):
    """build_pattern on the autograd path (inputs that require grad)."""
    return build_pattern(q.detach().requires_grad_(), k.detach().requires_grad_(), codes, window)


@pytest.mark.parametrize("n,window", [(1, 4), (7, 4), (8, 4), (35, 8), (50, 384)])
def test_framed_buffer_is_the_training_layout(n, window):
    x = torch.randn(2, n, 3)
    order = torch.stack([torch.randperm(n), torch.randperm(n)])
    w = windows.effective_window(n, window)
    padded = pad_to_windows(gather_positions(x, order), w)
    buf = sorted_framed(x.transpose(1, 2).contiguous().transpose(1, 2), order, w)  # a non-contiguous input too
    assert torch.equal(framed_queries(buf, w), padded)
    assert torch.equal(framed_keys(buf, w), with_neighbours(padded))


@pytest.mark.parametrize("n,window", [(1, 4), (7, 4), (8, 4), (9, 4), (35, 8), (50, 7)])
def test_mask_slots_marks_the_invalid_key_slots(n, window):
    w = windows.effective_window(n, window)
    nw = windows.num_windows(n, w)
    masked = mask_slots_(torch.zeros(2, nw, w, 3 * w), n)
    _, valid = windows.key_slots(n, w)
    expected = torch.zeros(nw, w, 3 * w).masked_fill_(~valid[:, None, :], float("-inf"))
    assert torch.equal(masked, expected.expand(2, -1, -1, -1))


def test_inverse_permutation_and_inplace_softmax():
    order = torch.stack([torch.randperm(20) for _ in range(6)]).view(2, 3, 20)
    assert torch.equal(inverse_permutation(order), torch.argsort(order, dim=-1))
    x = torch.randn(3, 4, 9)
    expected = torch.softmax(x, dim=-1)
    out = softmax_(x)
    assert out.data_ptr() == x.data_ptr() and torch.equal(out, expected)


@pytest.mark.parametrize("n,window,rounds", CASES)
@pytest.mark.parametrize("batch", [1, 3])
def test_inference_pattern_equals_training_pattern(n, window, rounds, batch):
    q, k, v, codes = random_case(batch, n, 6, 5, rounds, k=5)
    train = training_pattern(q, k, codes, window)
    infer = build_pattern(q, k, codes, window)
    assert train.weights[0].requires_grad and not infer.weights[0].requires_grad
    assert torch.equal(train.order, infer.order) and torch.equal(train.inverse, infer.inverse)
    assert train.window == infer.window
    for a, b in zip(train.weights, infer.weights):
        torch.testing.assert_close(b, a.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(infer.lse, train.lse.detach(), rtol=1e-12, atol=1e-12)
    out_train = train.apply(v.requires_grad_())
    with torch.no_grad():
        out_infer = infer.apply(v)
    torch.testing.assert_close(out_infer, out_train.detach(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n,window,rounds", CASES[:6] + [(33, 8, 2)])
def test_training_path_matches_slow_reference(n, window, rounds):
    q, k, v, codes = random_case(2, n, 6, 5, rounds, k=5)
    fast = training_pattern(q, k, codes, window).apply(v.requires_grad_())
    torch.testing.assert_close(fast.detach(), slow_lsp(q, k, v.detach(), codes, window), rtol=1e-9, atol=1e-9)


def test_float32_inference_matches_training_path():
    q, k, v, codes = random_case(1, 1000, 32, 16, 1, k=12, dtype=torch.float32)
    train = training_pattern(q, k, codes, 96).apply(v.requires_grad_()).detach()
    with torch.inference_mode():
        infer = build_pattern(q, k, codes, 96).apply(v)
    torch.testing.assert_close(infer, train, rtol=1e-5, atol=1e-6)


def counting(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a, **kw: calls.append(1) or real(*a, **kw))
    return calls


def test_path_choice_follows_autograd(monkeypatch):
    weights_calls = counting(monkeypatch, lsp, "window_weights")  # one per pattern, both paths
    framed_calls = counting(monkeypatch, windows, "sorted_framed")  # the inference layout only
    model = LCoAN(preset("tiny", num_groups=3)).eval()
    x = torch.rand(1, 3, 12, 10)
    with_grad = model(x)  # parameters require grad: the autograd path, differentiable
    assert with_grad.requires_grad and len(weights_calls) == 1 and not framed_calls
    with torch.no_grad():
        no_grad = model(x)
    assert len(weights_calls) == 2 and len(framed_calls) == 2 + 3  # query and key once, values per group
    with torch.inference_mode():
        inference = model(x)
    assert len(weights_calls) == 3 and len(framed_calls) == 10
    torch.testing.assert_close(no_grad, with_grad.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(inference, no_grad, rtol=0, atol=0)


@pytest.mark.parametrize("share", [True, False])
@pytest.mark.parametrize("size", [(7, 5), (20, 13)])
def test_network_outputs_agree_between_paths(share, size):
    model = LCoAN(preset("tiny", num_groups=2, share_pattern=share)).double().eval()
    x = torch.rand(2, 3, *size, dtype=torch.float64)
    train_path = model(x).detach()
    with torch.inference_mode():
        infer_path = model(x)
    torch.testing.assert_close(infer_path, train_path, rtol=1e-12, atol=1e-12)


def test_inference_value_projection_equals_the_conv():
    from lcoan.attention.lsp import Assembly
    assembly = Assembly(16)
    x = torch.randn(2, 16, 7, 9)
    train = assembly.project(x).detach()
    with torch.no_grad():
        infer = assembly.project(x)
    assert infer.is_contiguous()
    torch.testing.assert_close(infer, train, rtol=1e-5, atol=1e-6)


def test_apply_returns_channel_first_memory():
    q, k, v, codes = random_case(2, 50, 4, 6, 1, k=4)
    out = build_pattern(q, k, codes, 8).apply(v)
    assert out.shape == (2, 50, 6) and out.transpose(1, 2).is_contiguous()
