"""Tiny inputs keep their colour (issue 15, item 7): a constant image stays constant within 1/255
at every size from 1x1 to 16x16, x2 and x4, with every shipped network, on the path the app and
``lcoan.infer`` use (:func:`lcoan.inference.upscale_image`, edge-padded input).

Without the padding the convolutions' zero padding (= the dataset mean colour after the mean shift)
tints the borders: a 1x1 (200, 10, 10) came back as about (115, 104, 89) at x4.
"""
from __future__ import annotations

import numpy as np
import pytest

import lcoan
from lcoan.imaging.io import LoadedImage
from lcoan.inference import upscale_array, upscale_image
from tests.conftest import SHIPPED

COLOURS = [(200, 10, 10), (10, 10, 10), (245, 240, 30)]
pytestmark = pytest.mark.skipif(not SHIPPED, reason="no shipped checkpoints in checkpoints/")


def constant(side: int, colour: tuple[int, int, int]) -> LoadedImage:
    rgb = np.empty((side, side, 3), np.uint8)
    rgb[:] = colour
    return LoadedImage(rgb=rgb, alpha=None, source_mode="RGB", format=None, grayscale=False)


@pytest.mark.parametrize("folder", SHIPPED, ids=[p.name for p in SHIPPED])
def test_constant_image_stays_constant_from_1x1_to_16x16(folder):
    model = lcoan.load(folder)
    s = model.cfg.scale
    for side in range(1, 17):
        for colour in COLOURS:
            rgb, alpha = upscale_image(model, constant(side, colour))
            assert rgb.shape == (side * s, side * s, 3) and alpha is None
            err = np.abs(rgb.astype(int) - np.array(colour)).max()
            assert err <= 1, f"{folder.name} {side}x{side} {colour}: off by {err}/255"


def test_the_test_can_tell_without_padding():
    """The unpadded network really is off on a tiny input (so the test above checks something)."""
    folder = next((p for p in SHIPPED if p.name.startswith("lcoan")), SHIPPED[0])
    rgb = upscale_array(lcoan.load(folder), constant(1, COLOURS[0]).rgb)
    assert np.abs(rgb.astype(int) - np.array(COLOURS[0])).max() > 20
