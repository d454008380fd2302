"""Tests of lcoan.imaging.degrade (MATLAB-compatible bicubic imresize and the SR degradation).

The MATLAB-made benchmark LR files need ../shared; test_protocol.py checks the same rules on
images the tests make, so a bare clone still checks the degradation."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from lcoan.imaging.degrade import bicubic_upscale, cubic_kernel, degrade, imresize, imresize_to

from .conftest import BENCH, needs_data
from .conftest import load_benchmark as _load

# --------------------------------------------------------------------------------------------
# Reference: a direct, loop-based transcription of MATLAB's imresize (contributions + passes)
# --------------------------------------------------------------------------------------------


def _ref_resize_1d(line: np.ndarray, out_len: int, scale: float) -> np.ndarray:
    n = line.shape[0]
    width = 4.0 / scale if scale < 1 else 4.0
    out = np.zeros((out_len,) + line.shape[1:])
    for x in range(1, out_len + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = [left + k for k in range(math.ceil(width) + 2)]
        if scale < 1:
            w = [scale * float(cubic_kernel(np.array(scale * (u - t)))) for t in taps]
        else:
            w = [float(cubic_kernel(np.array(u - t))) for t in taps]
        total = sum(w)
        for t, wt in zip(taps, w):
            out[x - 1] += (wt / total) * line[min(max(t, 1), n) - 1]
    return out


def _ref_imresize_float(img: np.ndarray, scale: float) -> np.ndarray:
    h, w = img.shape[:2]
    oh, ow = math.ceil(h * scale), math.ceil(w * scale)
    tmp = _ref_resize_1d(img.astype(np.float64), oh, scale)  # rows first (equal scales)
    return np.swapaxes(_ref_resize_1d(np.swapaxes(tmp, 0, 1), ow, scale), 0, 1)


# --------------------------------------------------------------------------------------------


@needs_data
def test_degrade_matches_shipped_benchmark_lr():
    """degrade(HR) vs the MATLAB-made *_LR.png of Set5 and Set14, x2/x3/x4 (57 images).

    Measured: bit-exact on every image (max |diff| = 0, PSNR = inf) for Set5 x2/x3/x4 and
    Set14 x2/x3/x4, the grayscale Set14 image included. So the bound asserted is exact
    equality. (A symmetric-mirror border instead of MATLAB's clamped one gives max |diff| 6-11
    on the border; no uint8 rounding between the two passes changes ~14% of pixels.)
    """
    checked = 0
    for set_name in ("Set5", "Set14"):
        for s in (2, 3, 4):
            hr_files = sorted((BENCH / set_name / f"x{s}").glob("*_HR.png"))
            assert hr_files, f"no HR images for {set_name} x{s}"
            for hr_path in hr_files:
                hr = _load(hr_path)
                lr = _load(hr_path.with_name(hr_path.name.replace("_HR", "_LR")))
                out = degrade(hr, s)
                assert out.dtype == np.uint8 and out.shape == lr.shape, hr_path.name
                diff = np.abs(out.astype(np.int16) - lr.astype(np.int16))
                assert diff.max() == 0, f"{set_name} x{s} {hr_path.name}: max |diff| {diff.max()}"
                checked += 1
    assert checked == 3 * (5 + 14)


def test_vectorised_matches_direct_transcription():
    rng = np.random.default_rng(1)
    img = rng.uniform(0, 255, (9, 7, 2))
    for scale in (0.5, 1 / 3, 0.3, 0.75, 1.0, 1.7, 2, 3):
        ours = imresize(img, scale)
        ref = _ref_imresize_float(img, scale)
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9, err_msg=f"scale {scale}")


def test_kernel_values():
    x = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, -0.5, -1.5])
    expect = np.array([1.0, 0.5625, 0.0, -0.0625, 0.0, 0.0, 0.5625, -0.0625])
    np.testing.assert_allclose(cubic_kernel(x), expect, atol=1e-15)


@pytest.mark.parametrize("scale", [0.5, 1 / 3, 0.25, 0.37, 1.0, 1.5, 2, 3, 4])
def test_constant_stays_constant(scale):
    img8 = np.full((23, 17, 3), 137, np.uint8)
    out8 = imresize(img8, scale)
    assert out8.dtype == np.uint8 and np.all(out8 == 137)
    imgf = np.full((23, 17), 0.3, np.float64)
    np.testing.assert_allclose(imresize(imgf, scale), 0.3, atol=1e-12)


def test_output_size_is_ceil_like_matlab():
    img = np.zeros((7, 5), np.uint8)
    for scale in (0.3, 0.5, 1 / 3, 0.9, 1.5, 2, 2.6):
        assert imresize(img, scale).shape == (math.ceil(7 * scale), math.ceil(5 * scale))
    assert imresize(img, 0.3).shape == (3, 2)
    assert imresize(img, 1.5).shape == (11, 8)
    assert imresize_to(img, (4, 9)).shape == (4, 9)
    assert imresize(np.zeros((7, 5, 3), np.uint8), 0.5).shape == (4, 3, 3)


def test_tiny_inputs():
    one = np.array([[200]], np.uint8)
    for scale in (0.5, 0.1, 1, 2, 3.5):
        out = imresize(one, scale)
        assert out.shape == (math.ceil(scale), math.ceil(scale))
        assert np.all(out == 200)
    rng = np.random.default_rng(2)
    small = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    for scale in (0.25, 0.5, 2, 4):
        out = imresize(small, scale)
        assert out.shape == (math.ceil(7 * scale), math.ceil(5 * scale), 3)
        assert out.dtype == np.uint8
    assert degrade(small, 4).shape == (1, 1, 3)
    assert imresize_to(small, (1, 1)).shape == (1, 1, 3)


def test_smooth_roundtrip_is_close():
    yy, xx = np.mgrid[0:64, 0:48].astype(np.float64)
    img = 128 + 60 * np.sin(xx / 9.0) * np.cos(yy / 11.0)
    for s in (2, 3, 4):
        back = imresize(bicubic_upscale(img, s), 1 / s)
        assert back.shape == img.shape
        inner = np.abs(back - img)[6:-6, 6:-6]
        assert inner.max() < 0.5, (s, inner.max())


def test_linear_ramp_reproduced_in_interior():
    ramp = np.tile(np.arange(40, dtype=np.float64), (30, 1))  # f(x) = x (0-based column)
    up = bicubic_upscale(ramp, 2)
    # output column j (0-based) sits at input coordinate (j + 0.5) / 2 - 0.5
    cols = (np.arange(80) + 0.5) / 2 - 0.5
    np.testing.assert_allclose(up[:, 4:-4], np.broadcast_to(cols[4:-4], (60, 72)), atol=1e-9)
    down = imresize(ramp, 0.5)
    cols = (np.arange(20) + 0.5) * 2 - 0.5
    np.testing.assert_allclose(down[:, 4:-4], np.broadcast_to(cols[4:-4], (15, 12)), atol=1e-9)


def test_float_keeps_float_and_is_not_clipped():
    step = np.zeros((8, 16), np.float32)
    step[:, 8:] = 255
    out = imresize(step, 2)
    assert out.dtype == np.float32
    assert out.min() < 0 and out.max() > 255  # cubic overshoot survives for floats
    out64 = imresize(step.astype(np.float64), 0.5)
    assert out64.dtype == np.float64
    out8 = imresize(step.astype(np.uint8), 2)
    assert out8.dtype == np.uint8 and out8.min() == 0 and out8.max() == 255
    # uint8 result = MATLAB rounding (half away from zero) + saturation of each pass
    ref = _ref_imresize_float(step.astype(np.float64), 2)
    assert np.abs(out8.astype(np.float64) - np.clip(ref, 0, 255)).max() <= 0.5 + 1e-9


def test_uint16():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 65536, (12, 10, 3), dtype=np.uint16)
    out = imresize(img, 0.5)
    assert out.dtype == np.uint16 and out.shape == (6, 5, 3)
    const = np.full((12, 10), 65535, np.uint16)
    assert np.all(imresize(const, 3) == 65535)


def test_degrade_crops_top_left():
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (26, 31, 3), dtype=np.uint8)
    out = degrade(img, 4)
    assert out.shape == (6, 7, 3)
    np.testing.assert_array_equal(out, degrade(img[:24, :28], 4))
    np.testing.assert_array_equal(out, imresize(img[:24, :28], 0.25))


def test_errors():
    img = np.zeros((5, 5), np.uint8)
    for bad in (0, -0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            imresize(img, bad)
    with pytest.raises(ValueError):
        imresize_to(img, (0, 3))
    with pytest.raises(ValueError, match="smaller than the scale"):
        degrade(np.zeros((2, 9), np.uint8), 3)
    with pytest.raises(ValueError):
        degrade(img, 1.5)
    with pytest.raises(ValueError):
        imresize(np.zeros((0, 4), np.uint8), 2)
    with pytest.raises(TypeError):
        imresize(np.zeros((4, 4), np.int32), 2)


def test_speed_481x321_rgb_x2_down():
    img = np.random.default_rng(5).integers(0, 256, (321, 481, 3), dtype=np.uint8)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        out = degrade(img, 2)
        best = min(best, time.perf_counter() - t0)
    assert out.shape == (160, 240, 3)
    assert best < 0.2, f"degrade x2 of 481x321 RGB took {best:.3f} s"
