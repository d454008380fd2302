"""Inference-time knobs (lcoan.introspect.knobs): W >= N is dense attention over the same embeddings, rounds,
and the attention ablation map."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import lcoan
from lcoan.attention.dense import dense_attention
from lcoan.imaging.degrade import degrade
from lcoan.introspect.knobs import (
    DENSE_WINDOW,
    ablated,
    ablation,
    dense_pattern_forward,
    restore_psnr,
    window_sweep,
    with_rounds,
    with_window,
)
from tests.tiny_checkpoints import textured


def tiny(attention: str = "lsp", seed: int = 0, **kw) -> lcoan.LCoAN:
    torch.manual_seed(seed)
    model = lcoan.create_model(lcoan.preset("tiny", attention=attention, **kw)).eval()
    # a sharper softmax than at random initialisation, so the sparse and dense settings differ clearly
    for p in model.patterns:
        p.match.weight.data *= 6
    return model


def pair(size: int = 24, scale: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    hr = textured(size, size, seed)
    return degrade(hr, scale), hr


def check_window_n_is_dense(model: lcoan.LCoAN, lr: np.ndarray, hr: np.ndarray) -> torch.Tensor:
    """With W = N the model's output, every group's attention output and the PSNR equal dense softmax
    attention over the pattern's own query / key; returns the dense reference output."""
    x = lcoan.inference.to_tensor(lr)
    wide = with_window(model, lr.shape[0] * lr.shape[1]).eval()
    with torch.no_grad():
        sr, trace = wide.forward_with_trace(x)
        reference = dense_pattern_forward(model, x)
    pat = trace.patterns[0]
    for g in trace.groups:
        dense = dense_attention(pat.query[None], pat.key[None], g.value[None])[0]
        torch.testing.assert_close(g.attention_out, dense, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(sr, reference, atol=1e-5, rtol=1e-4)
    dense_psnr = restore_psnr(lambda t: dense_pattern_forward(model, t), lr, hr, 2)[0]
    assert restore_psnr(wide, lr, hr, 2)[0] == pytest.approx(dense_psnr, abs=1e-3)
    return reference


def test_window_at_least_n_is_dense_attention_over_the_same_embeddings():
    model = tiny()
    lr, hr = pair(24)  # 12 x 12 LR: N = 144
    reference = check_window_n_is_dense(model, lr, hr)
    # and a window smaller than N really is something else (the test can tell them apart)
    with torch.no_grad():
        narrow = with_window(model, 8).eval()(lcoan.inference.to_tensor(lr))
    assert (narrow - reference).abs().max() > 1e-4


def test_with_window_keeps_the_original_untouched():
    model = tiny()
    variant = with_window(model, 5)
    assert variant.cfg.window == 5 and model.cfg.window == 16
    for a, b in zip(model.state_dict().values(), variant.state_dict().values()):
        assert torch.equal(a, b)


def test_rounds_keep_the_trained_centroids_and_add_image_kmeans():
    model = tiny()
    x = lcoan.inference.to_tensor(pair(24)[0])
    with torch.no_grad():
        out, trace = model.forward_with_trace(x)
    keys = [p.key[None] for p in trace.patterns]
    three = with_rounds(model, 3, keys, seed=1).eval()
    cents = three.patterns[0].clusters.centroids
    assert cents.shape == (3, 8, 8)
    assert torch.equal(cents[0], model.patterns[0].clusters.centroids[0])
    torch.testing.assert_close(cents.norm(dim=-1), torch.ones(3, 8))
    with torch.no_grad():
        _, t3 = three.forward_with_trace(x)
        same = with_rounds(model, 1).eval()(x)
    assert t3.patterns[0].rounds == 3
    assert torch.equal(same, out)  # rounds = trained: the trained model itself
    with pytest.raises(ValueError):
        with_rounds(model, 2)  # extra rounds need the image's embeddings
    with pytest.raises(ValueError):
        with_rounds(tiny("dense"), 2, keys)


def test_ablation_map_is_zero_when_the_branch_is_already_off():
    lr, hr = pair(24)
    off = ablated(tiny())
    result = ablation(off, lr, hr)
    assert result.diff.shape == hr.shape[:2]
    assert np.all(result.diff == 0) and result.psnr_on == result.psnr_off
    none = ablation(tiny("none"), lr, hr)
    assert np.all(none.diff == 0)
    on = ablation(tiny(), lr, hr)
    assert on.diff.max() > 0  # a live branch changes the output


def test_window_sweep_on_a_small_image():
    model = tiny()
    lr, hr = pair(32)  # 16 x 16 LR: N = 256
    sweep = window_sweep(model, lr, hr, windows=(4, 16, 64, 1024), queries=64, repeats=1)
    labels = [p.window for p in sweep.points]
    assert labels == [4, 16, 64, DENSE_WINDOW]  # W >= N once, as the dense setting
    assert [p.trained for p in sweep.points] == [False, True, False, False]
    dense = sweep.points[-1]
    assert dense.recall == 1.0 and dense.effective == 256
    for p in sweep.points:
        assert 0 <= p.recall <= 1 + 1e-6 and p.seconds > 0 and np.isfinite(p.psnr)
    # more keys per query can only add attention mass: recall grows with W (windows of a fixed sort)
    recalls = [p.recall for p in sweep.points]
    assert recalls[0] < recalls[2] <= 1.0 + 1e-6
    first = sweep.first_window_with_recall(0.0)
    assert first is sweep.points[0]
    two = window_sweep(model, lr, hr, windows=(16,), rounds=2, queries=32, repeats=1)
    assert two.rounds == 2 and not any(p.trained for p in two.points)


SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "lcoan-s-x2"


@pytest.mark.skipif(not SHIPPED.is_dir(), reason="no shipped lcoan-s-x2 checkpoint")
def test_shipped_model_with_window_n_equals_dense_over_its_embeddings():
    lr, hr = pair(56)  # 28 x 28 LR: N = 784 > the trained W = 384
    check_window_n_is_dense(lcoan.load(SHIPPED).eval(), lr, hr)
