"""The degradation, bicubic baseline and metric protocol, checked on images the tests make.

A bare clone has no ../shared benchmark data, so the MATLAB-made Set5/Set14 LR files (tests in
test_degrade.py / test_metrics.py) are skipped there. These tests keep the protocol checked anyway:
  * values derived by hand from MATLAB's imresize rules (antialiased Keys kernel, clamped border,
    rounding half away from zero) for a stripe image;
  * MATLAB's integer rounding after *each* of the two passes, against the loop transcription;
  * the whole ``python -m lcoan.evaluate --bicubic`` path on a synthetic folder (odd sizes, a grey
    image, an HR/LR pair folder) against an independent computation of LR, SR, Y, shave, PSNR, SSIM;
  * PSNR / SSIM on known cases against scikit-image's own functions.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from lcoan import evaluate
from lcoan.imaging.degrade import bicubic_upscale, degrade
from lcoan.imaging.metrics import psnr_y, ssim_y

from .test_degrade import _ref_resize_1d
from .test_metrics import _ssim_direct

# Antialiased x1/2 kernel h(d) = 0.5 * keys(d / 2) at the tap distances 0.5, 1.5, 2.5, 3.5:
# keys(0.25) = 0.8671875, keys(0.75) = 0.2265625, keys(1.25) = -0.0703125, keys(1.75) = -0.0234375.
H05, H15, H25, H35 = 0.43359375, 0.11328125, -0.03515625, -0.01171875


def _round_half_away(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _ref_imresize_uint8(img: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB imresize of a uint8 image: rows, round + saturate, columns, round + saturate."""
    h, w = img.shape[:2]
    oh, ow = math.ceil(h * scale), math.ceil(w * scale)
    rows = np.clip(_round_half_away(_ref_resize_1d(img.astype(np.float64), oh, scale)), 0, 255)
    cols = _ref_resize_1d(np.swapaxes(rows, 0, 1), ow, scale)
    return np.clip(_round_half_away(np.swapaxes(cols, 0, 1)), 0, 255).astype(np.uint8)


def _photo(h: int, w: int, seed: int, channels: int = 3) -> np.ndarray:
    """A photo-like uint8 image: smooth shading, an edge, fine texture and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = 120 + 70 * np.sin(xx / 7.0 + seed) * np.cos(yy / 5.0) + 40 * (xx > w / 2)
    chans = [base + 25 * np.sin((xx + 2 * yy) / (1.3 + c)) + rng.normal(0, 6, (h, w)) for c in range(channels)]
    img = np.clip(np.stack(chans, axis=2), 0, 255).astype(np.uint8)
    return img[..., 0] if channels == 1 else img


def _y(img: np.ndarray) -> np.ndarray:
    """BT.601 studio-range luma written out; grey images are R = G = B."""
    x = img.astype(np.float64)
    if x.ndim == 2:
        x = np.stack([x, x, x], axis=2)
    return 16 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255


# ----------------------------------------------------------------------------- hand-derived values
def test_degrade_x2_of_stripes_matches_hand_derived_values():
    """Vertical stripes, 1-based odd columns 0 and even columns 253, 16x16 -> 8x8.

    LR column x reads HR columns around u = 2x - 1/2 with the weights H05..H35 on both sides;
    taps left of column 1 / right of column 16 are clamped to the edge column. So:
      column 1: 253 (H05 + H25)                 = 100.80 -> 101
      column 2: 253 (H05 + H15 + H25)           = 129.46 -> 129
      columns 3-6: 253 (H05 + H15 + H25 + H35)  = 126.5  -> 127 (half away from zero, not to even)
      column 7: 253 (H05 + H15 + H25 + 2 H35)   = 123.54 -> 124
      column 8: 253 (H05 + 2 H15 + H25 + 2 H35) = 152.20 -> 152
    and the vertical pass keeps a column-constant image as it is.
    """
    hr = np.zeros((16, 16, 3), np.uint8)
    hr[:, 1::2] = 253
    half = H05 + H15 + H25 + H35
    assert half == 0.5  # each side of the kernel carries half the weight
    derived = [H05 + H25, H05 + H15 + H25, half, half, half, half, half + H35, H05 + 2 * H15 + H25 + 2 * H35]
    expect = _round_half_away(253 * np.array(derived))
    np.testing.assert_array_equal(expect, [101, 129, 127, 127, 127, 127, 124, 152])
    lr = degrade(hr, 2)
    assert lr.shape == (8, 8, 3) and lr.dtype == np.uint8
    np.testing.assert_array_equal(lr, np.broadcast_to(expect[None, :, None], (8, 8, 3)))


def test_upscale_x2_interior_of_stripes_matches_hand_derived_values():
    """x2 upscaling: output pixels sit 0.25 / 0.75 LR pixels from their nearest LR neighbours, so
    the taps weigh keys(0.25), keys(0.75), keys(1.25), keys(1.75). For LR stripes 0, 160, 0, 160...
    an output pixel next to a 0 column gets 160 (keys(0.75) + keys(1.25)) = 25, next to a 160 column
    160 (keys(0.25) + keys(1.75)) = 135 (both exact, no rounding)."""
    lr = np.zeros((8, 12), np.uint8)
    lr[:, 1::2] = 160
    sr = bicubic_upscale(lr, 2)
    assert sr.shape == (16, 24)
    k025, k075, k125, k175 = 0.8671875, 0.2265625, -0.0703125, -0.0234375
    near0, near160 = 160 * (k075 + k125), 160 * (k025 + k175)
    assert (near0, near160) == (25.0, 135.0)
    inner = sr[:, 4:-4]  # away from the clamped border
    expect = np.where((np.arange(4, 20) // 2) % 2 == 0, near0, near160)
    np.testing.assert_array_equal(inner, np.broadcast_to(expect, inner.shape))


# ----------------------------------------------------------------------------- rounding between passes
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_degrade_rounds_after_each_pass_like_matlab(scale):
    """degrade(uint8) equals the loop transcription with rounding + saturation after each pass,
    bit for bit; rounding only once at the end would change some pixels (the test can tell)."""
    hr = _photo(37, 44, seed=scale)
    h, w = 37 // scale * scale, 44 // scale * scale
    ours = degrade(hr, scale)
    ref = _ref_imresize_uint8(hr[:h, :w], 1 / scale)
    np.testing.assert_array_equal(ours, ref)
    rows = _ref_resize_1d(hr[:h, :w].astype(np.float64), h // scale, 1 / scale)
    once = np.swapaxes(_ref_resize_1d(np.swapaxes(rows, 0, 1), w // scale, 1 / scale), 0, 1)
    once = np.clip(_round_half_away(once), 0, 255).astype(np.uint8)
    assert np.any(once != ref)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_upscale_rounds_after_each_pass_like_matlab(scale):
    lr = _photo(13, 11, seed=10 + scale)
    np.testing.assert_array_equal(bicubic_upscale(lr, scale), _ref_imresize_uint8(lr, scale))


# ----------------------------------------------------------------------------- the whole evaluate path
def _expected_scores(lr: np.ndarray, hr: np.ndarray, s: int) -> tuple[float, float]:
    sr = _ref_imresize_uint8(lr, s)
    hr = hr[: sr.shape[0], : sr.shape[1]]
    ys, yh = _y(sr)[s:-s, s:-s], _y(hr)[s:-s, s:-s]
    mse = float(np.mean((ys - yh) ** 2))
    return 10 * math.log10(255**2 / mse), _ssim_direct(ys, yh)


def _run_bicubic(folder, s, tmp_path) -> dict[str, dict]:
    out = tmp_path / f"scores_x{s}.json"
    assert evaluate.main(["--bicubic", "--scale", str(s), "--data", str(folder), "--json", str(out)]) == 0
    return {r["name"]: r for r in json.loads(out.read_text())["images"]}


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_evaluate_bicubic_on_synthetic_hr_folder(scale, tmp_path, capsys):
    """HR-only folder: LR made by MATLAB-style degradation, SR by MATLAB-style bicubic, scored on
    BT.601 Y with ``scale`` pixels shaved (odd sizes cropped, the grey image replicated to RGB)."""
    folder = tmp_path / "hr"
    folder.mkdir()
    images = {"colour": _photo(50, 47, seed=1), "grey": _photo(41, 44, seed=2, channels=1)}
    for name, img in images.items():
        Image.fromarray(img).save(folder / f"{name}.png")
    scores = _run_bicubic(folder, scale, tmp_path)
    assert sorted(scores) == sorted(images)
    for name, hr in images.items():
        h, w = hr.shape[0] // scale * scale, hr.shape[1] // scale * scale
        lr = _ref_imresize_uint8(hr[:h, :w], 1 / scale)
        psnr, ssim = _expected_scores(lr, hr[:h, :w], scale)
        assert 15 < psnr < 45 and 0.2 < ssim < 1
        assert scores[name]["lr_size"] == [lr.shape[0], lr.shape[1]]
        assert scores[name]["psnr"] == pytest.approx(psnr, abs=1e-9), name
        assert scores[name]["ssim"] == pytest.approx(ssim, abs=1e-9), name
    capsys.readouterr()


def test_evaluate_bicubic_uses_given_lr_files(tmp_path, capsys):
    """*_HR / *_LR folder: the LR file is used as given (here not our degradation of the HR)."""
    folder = tmp_path / "pairs"
    folder.mkdir()
    hr = _photo(36, 42, seed=5)
    lr = _photo(12, 14, seed=6)
    Image.fromarray(hr).save(folder / "img_HR.png")
    Image.fromarray(lr).save(folder / "img_LR.png")
    scores = _run_bicubic(folder, 3, tmp_path)
    psnr, ssim = _expected_scores(lr, hr, 3)
    assert scores["img"]["psnr"] == pytest.approx(psnr, abs=1e-9)
    assert scores["img"]["ssim"] == pytest.approx(ssim, abs=1e-9)
    capsys.readouterr()


# ----------------------------------------------------------------------------- metrics vs scikit-image
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_psnr_and_ssim_match_scikit_image_on_shaved_y(scale):
    hr = _photo(40, 46, seed=20 + scale)
    sr = np.clip(hr.astype(np.int16) + np.random.default_rng(scale).integers(-12, 13, hr.shape), 0, 255)
    sr = sr.astype(np.uint8)
    ys, yh = _y(sr)[scale:-scale, scale:-scale], _y(hr)[scale:-scale, scale:-scale]
    assert psnr_y(sr, hr, scale) == pytest.approx(peak_signal_noise_ratio(yh, ys, data_range=255), abs=1e-9)
    ref = structural_similarity(yh, ys, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
    assert ssim_y(sr, hr, scale) == pytest.approx(ref, abs=1e-12)
    assert ssim_y(sr, hr, scale) == pytest.approx(_ssim_direct(ys, yh), abs=1e-9)


def test_border_changes_inside_the_shave_do_not_count():
    """Only the Y of the inner (H - 2s) x (W - 2s) region is scored."""
    hr = _photo(30, 34, seed=7)
    sr = hr.copy()
    sr[:3] = 0
    sr[-3:] = 255
    sr[:, :3] = 17
    sr[:, -3:] = 200
    assert psnr_y(sr, hr, 3) == float("inf")
    assert ssim_y(sr, hr, 3) == pytest.approx(1.0, abs=1e-12)
    assert psnr_y(sr, hr, 2) < 30
