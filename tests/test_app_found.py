"""Issue 27's "Found" list, the parts a unit test can catch (the UI ones are in tests/test_teach_browser.py):
an unreadable upload never raises in Gradio's preprocessing, the huge-image refusal does not point at the
app's own downscale, the default comparison region avoids plain sky, the Efficiency tab's line says what it
times."""
from __future__ import annotations

import gradio as gr
import numpy as np
from PIL import Image

from app.picture import PictureInput
from app.services.region import region_box, textured_box
from app.services.superresolve import load_input
from app.source import traced_note
from tests.test_io import bomb_png


def test_an_unreadable_upload_reaches_the_loader_instead_of_a_traceback(tmp_path):
    from gradio.data_classes import FileData

    bad = tmp_path / "notes.png"
    bad.write_text("not a picture\n")
    good = tmp_path / "ok.png"
    Image.new("RGB", (5, 4)).save(good)
    with gr.Blocks():
        image = PictureInput(label="picture", type="filepath")
    assert image.get_block_name() == "image" and image.type == "filepath"  # a plain Image to the page and the API
    assert image.preprocess(FileData(path=str(bad), orig_name="notes.png")) == str(bad)  # Gradio's raised here
    assert image.preprocess(FileData(path=str(good), orig_name="ok.png")) == str(good)
    assert image.preprocess(None) is None
    try:
        load_input(str(bad))
    except ValueError as exc:  # the loader's own words, which the tabs show
        assert "notes.png" in str(exc) or "image" in str(exc)
    else:
        raise AssertionError("a text file must be refused by the loader")


def test_the_huge_image_refusal_does_not_send_the_user_to_downscale_first(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png(40000, 40000))
    try:
        load_input(str(path))
    except ValueError as exc:
        text = str(exc)
    else:
        raise AssertionError("a 1.6-gigapixel header must be refused")
    assert "over the limit" in text and "cannot help" in text and "image editor" in text
    assert "; downscale it first" not in text


def sky_photo(h: int = 120, w: int = 200) -> np.ndarray:
    """A smooth blue sky over the top 3/4, a striped facade along the bottom left."""
    rng = np.random.default_rng(0)
    img = np.zeros((h, w, 3), np.uint8)
    img[...] = np.linspace(140, 200, h, dtype=np.float32)[:, None, None].astype(np.uint8) * np.array([0, 1, 1],
                                                                                                     np.uint8)
    img[..., 2] = 230
    y0 = 3 * h // 4
    stripes = ((np.arange(w) // 3) % 2 * 160 + 40).astype(np.uint8)
    img[y0:, : w // 2] = stripes[None, : w // 2, None] + rng.integers(0, 20, (h - y0, w // 2, 1)).astype(np.uint8)
    return img


def test_the_default_comparison_region_is_not_plain_sky():
    img = sky_photo()
    centre = region_box(120, 200, None, None, 24)
    assert centre.y0 + centre.h <= 90  # the old default: the middle, all sky
    box = textured_box(img, 24)
    assert (box.w, box.h) == (24, 24) and box.y0 + box.h > 90 and box.x0 < 100  # on the facade
    flat = np.full((50, 60, 3), 128, np.uint8)
    assert textured_box(flat, 16) == region_box(50, 60, None, None, 16)  # nothing to prefer: the centre
    small = textured_box(img[:10, :12], 24)
    assert (small.w, small.h) == (12, 10)


def test_the_efficiency_line_names_the_centre_crop_it_times(tmp_path):
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((170, 256, 3), np.uint8)).save(path)
    assert traced_note(str(path), "downscale") == "traced at 157x104 LR, downscaled"
    assert traced_note(str(path), "crop", "timed") == "timed at 128x128 LR, centre crop"


def test_a_tiny_garbage_file_gets_the_loaders_message_not_a_struct_error():
    from lcoan.imaging.io import ImageError, load_image
    for data in (b"hi", b"\x00\x01", b"not a picture\n"):
        try:
            load_image(data)
        except ImageError as exc:
            assert "not an image" in str(exc)
        else:
            raise AssertionError(data)
