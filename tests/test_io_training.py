"""Training and evaluation read images through the one loader (lcoan.imaging.io) and its one 16->8-bit
converter: ordinary RGB files give exactly the pairs they gave before (Pillow's convert("RGB")),
EXIF-rotated photos are now turned upright, and 16-bit files are rounded as before."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

from lcoan import evaluate
from lcoan.imaging.degrade import degrade
from lcoan.imaging.io import save_image, to_uint8
from lcoan.training.data import make_pair

from .test_io import jpeg_with_orientation, pil_bytes, rand, smooth


def _old_make_pair(path, scale):
    """make_pair as it was before it used lcoan.imaging.io (Pillow's convert("RGB"), no EXIF orientation)."""
    with Image.open(path) as im:
        hr = np.asarray(im.convert("RGB"))
    h, w = (hr.shape[0] // scale) * scale, (hr.shape[1] // scale) * scale
    hr = np.ascontiguousarray(hr[:h, :w])
    return hr, degrade(hr, scale)


@pytest.mark.parametrize("kind", ["png_rgb", "jpeg_rgb", "png_gray", "png_rgba"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_make_pair_unchanged_for_ordinary_files(kind, scale, tmp_path):
    """(37, 50) is not a multiple of 3 or 4: the crop is exercised too."""
    if kind == "png_rgb":
        data, name = pil_bytes(Image.fromarray(rand((37, 50, 3))), "PNG"), "a.png"
    elif kind == "jpeg_rgb":
        data, name = pil_bytes(Image.fromarray(smooth(37, 50)), "JPEG", quality=90), "a.jpg"
    elif kind == "png_gray":
        data, name = pil_bytes(Image.fromarray(rand((37, 50))), "PNG"), "a.png"
    else:
        data, name = pil_bytes(Image.fromarray(rand((37, 50, 4))), "PNG"), "a.png"
    path = tmp_path / name
    path.write_bytes(data)
    pair = make_pair(path, scale)
    hr, lr = _old_make_pair(path, scale)
    assert pair.hr.dtype == np.uint8 and pair.lr.dtype == np.uint8
    assert pair.hr.shape == (37 // scale * scale, 50 // scale * scale, 3)
    assert pair.lr.shape == (37 // scale, 50 // scale, 3)
    np.testing.assert_array_equal(pair.hr, hr)
    np.testing.assert_array_equal(pair.lr, lr)


def test_make_pair_applies_exif_orientation(tmp_path):
    """A portrait photo stored landscape with orientation 6 trains upright, as a viewer shows it."""
    path = tmp_path / "rotated.jpg"
    data = jpeg_with_orientation(smooth(20, 40), 6)
    path.write_bytes(data)
    pair = make_pair(path, 2)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    assert upright.shape == (40, 20, 3)
    np.testing.assert_array_equal(pair.hr, upright)
    np.testing.assert_array_equal(pair.lr, degrade(upright, 2))


def test_make_pair_16bit_rounds_like_the_loader(tmp_path):
    a = rand((12, 18, 3), np.uint16)
    path = save_image(tmp_path / "a16.png", a)
    pair = make_pair(path, 3)
    np.testing.assert_array_equal(pair.hr, np.round(a / 257.0).astype(np.uint8))


def test_to_uint8_is_round_x_over_257_for_every_16bit_value():
    """The one 16->8-bit conversion equals the rounding evaluate.rgb8 used before (all 65536 values)."""
    x = np.arange(65536, dtype=np.uint16)
    np.testing.assert_array_equal(to_uint8(x), np.round(x / 257.0).astype(np.uint8))
    u8 = rand((3, 4, 3))
    assert to_uint8(u8) is u8  # 8-bit input is passed through untouched


def test_evaluate_rgb8_uses_the_loader(tmp_path):
    a = rand((6, 9, 3), np.uint16)
    path = save_image(tmp_path / "b16.png", a)
    np.testing.assert_array_equal(evaluate.rgb8(path), np.round(a / 257.0).astype(np.uint8))
    rot = tmp_path / "r.jpg"
    rot.write_bytes(jpeg_with_orientation(smooth(20, 40), 8))
    assert evaluate.rgb8(rot).shape == (40, 20, 3)
