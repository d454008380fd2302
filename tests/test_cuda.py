"""The same library on a CUDA device: the shipped models give the CPU's answer, tiling, tracing and a
training step work there. Skipped where torch sees no GPU (this project never needs one)."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

import lcoan
import lcoan.attention.kmeans
from lcoan.imaging.metrics import psnr_y
from lcoan.inference import sr_tensor

from .conftest import SHIPPED

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


def smooth_image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """(1, 3, h, w) in [0, 1] with structure at several scales (not noise)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, h // 8 + 1, w // 8 + 1, generator=g)
    img = torch.nn.functional.interpolate(low, size=(h, w), mode="bicubic", align_corners=False)
    return img.clamp(0, 1)


@pytest.mark.parametrize("folder", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_checkpoint_matches_cpu_on_cuda(folder: Path):
    """CPU and CUDA outputs agree to far below a visible difference (PSNR between them > 50 dB)."""
    x = smooth_image(64, 80)
    cpu = sr_tensor(lcoan.load(folder), x)
    gpu = sr_tensor(lcoan.load(folder, device="cuda"), x).cpu()
    a = (cpu[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    b = (gpu[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    assert psnr_y(a, b, 0) > 50


@pytest.mark.parametrize("kind", ["lsp", "dense", "none"])
def test_tiled_equals_whole_on_cuda(kind: str):
    torch.manual_seed(0)
    model = lcoan.create_model(lcoan.preset("tiny", scale=2, attention=kind)).cuda().eval()
    x = smooth_image(72, 72, seed=1).cuda()
    whole = sr_tensor(model, x, tile=128)
    tiled = sr_tensor(model, x, tile=40, overlap=12)
    assert whole.device.type == tiled.device.type == "cuda"
    # tiles see less context, so the sparse / non-local parts differ a little near seams; no blow-ups
    assert (whole - tiled).abs().mean().item() < 0.02


def test_trace_on_cuda_returns_cpu_tensors():
    model = lcoan.create_model(lcoan.preset("tiny", scale=2, attention="lsp")).cuda().eval()
    with torch.inference_mode():
        out, trace = model.forward_with_trace(smooth_image(24, 32).cuda())
    assert out.shape == (1, 3, 48, 64)
    row = trace.attention_row(0, trace.position(5, 7))
    assert row.device.type == "cpu" and row.shape == (24 * 32,)
    assert abs(row.sum().item() - 1.0) < 1e-3  # softmax weights over the keys the sparse pattern allows


@pytest.mark.parametrize("kind", ["lsp", "dense"])
def test_training_step_on_cuda_updates_weights_and_centroids(kind: str):
    model = lcoan.create_model(lcoan.preset("tiny", scale=2, attention=kind)).cuda().train()
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    optim = torch.optim.Adam(model.parameters(), lr=1e-3)
    lr_img = smooth_image(32, 32).cuda().repeat(2, 1, 1, 1)
    hr_img = torch.nn.functional.interpolate(lr_img, scale_factor=2, mode="bicubic", align_corners=False)
    loss = torch.nn.functional.l1_loss(model(lr_img), hr_img)
    loss.backward()
    optim.step()
    after = model.state_dict()
    assert torch.isfinite(loss)
    assert any(not torch.equal(before[k], after[k]) for k in after if "conv" in k)
    if kind == "lsp":
        # That step initialised the centroids by k-means (and took an EMA step). A second training forward
        # must move them by one EMA step only: as the same bank computes it on the CPU, and by little.
        bank = model.patterns[0].clusters
        assert bool(bank.initted)
        after_init = bank.centroids.detach().clone()
        seen = []
        hook = bank.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().cpu()))
        model(lr_img)
        hook.remove()
        moved = bank.centroids.detach()
        assert not torch.equal(moved, after_init) and bool(bank.initted)
        assert (moved - after_init).norm(dim=-1).max() < 0.01  # decay 0.999: a step, not a re-initialisation
        cpu = copy.deepcopy(bank).cpu()
        cpu.centroids.copy_(after_init.cpu())
        x = seen[0]
        cpu.ema_update(x, lcoan.attention.kmeans.assign(x, after_init.cpu()))
        torch.testing.assert_close(moved.cpu(), cpu.centroids, rtol=0, atol=1e-5)  # the EMA step ran on the GPU
