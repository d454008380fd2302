"""Tests for lcoan.imaging.io: one table of awkward inputs, plus round trips.

Every input is generated here with PIL / imagecodecs (libpng, for 16-bit colour PNGs) / numpy / zlib;
nothing is downloaded.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import imagecodecs
import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

from lcoan.imaging.io import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    ImageError,
    LoadedImage,
    load_image,
    save_image,
    to_pil,
)

RNG_SEED = 1234


def rng():
    return np.random.default_rng(RNG_SEED)


def rand(shape, dtype=np.uint8):
    return rng().integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)


def smooth(h, w, c=3):
    """Low-frequency picture (JPEG-friendly) with distinct quadrants."""
    y, x = np.mgrid[0:h, 0:w]
    chans = [(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) * 255 // max(h + w - 2, 1))]
    return np.stack(chans[:c], axis=2).astype(np.uint8)


def pil_bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def write(tmp_path, name: str, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def raw_png(w, h, depth, ctype, idat: bytes, interlace=0, extra=()) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace)
    chunks = [png_chunk(b"IHDR", ihdr), *extra, png_chunk(b"IDAT", idat), png_chunk(b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def bomb_png(w, h) -> bytes:
    """A valid 1-bit greyscale PNG of w x h zero pixels, streamed through zlib."""
    row = b"\x00" + bytes((w + 7) // 8)
    comp = zlib.compressobj(9)
    block = 1000
    parts = [comp.compress(row * block) for _ in range(h // block)]
    parts.append(comp.compress(row * (h % block)))
    parts.append(comp.flush())
    return raw_png(w, h, 1, 0, b"".join(parts))


def adam7_png16(arr: np.ndarray) -> bytes:
    """Interlaced 16-bit PNG built by hand (filter 0 on every row)."""
    h, w, c = arr.shape
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    raw = bytearray()
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    for xs, ys, dx, dy in passes:
        sub = arr[ys::dy, xs::dx]
        if sub.size == 0:
            continue
        for row in sub:
            raw += b"\x00" + row.astype(">u2").tobytes()
    return raw_png(w, h, 16, ctype, zlib.compress(bytes(raw)), interlace=1)


def with_exif_chunk(png: bytes, orientation: int) -> bytes:
    """Insert an eXIf chunk (orientation only) right after IHDR."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    body = exif.tobytes()
    if body.startswith(b"Exif\x00\x00"):
        body = body[6:]
    return png[:33] + png_chunk(b"eXIf", body) + png[33:]


def jpeg_with_orientation(arr: np.ndarray, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return pil_bytes(Image.fromarray(arr), "JPEG", quality=95, exif=exif.tobytes())


class CountingStream(io.BytesIO):
    """Records how many bytes were asked for, to prove the size limit stops the read."""

    def __init__(self, data):
        super().__init__(data)
        self.requested = 0

    def read(self, n=-1):
        self.requested += n if n is not None and n >= 0 else len(self.getvalue())
        return super().read(n)


def png16(a: np.ndarray) -> bytes:
    """16-bit PNG of an H x W x C array written by libpng (an encoder independent of lcoan.imaging.io)."""
    return imagecodecs.png_encode(a[..., 0] if a.shape[-1] == 1 else a)


# ----------------------------------------------------------------------------- checks
def exact(ref_rgb, ref_alpha=None, *, gray=None, dtype=np.uint8, mode=None, fmt=None, note=None):
    def check(img: LoadedImage, _ctx):
        assert img.rgb.dtype == dtype and img.rgb.shape == ref_rgb.shape
        np.testing.assert_array_equal(img.rgb, ref_rgb)
        if ref_alpha is None:
            assert img.alpha is None
        else:
            assert img.alpha is not None and img.alpha.dtype == dtype
            np.testing.assert_array_equal(img.alpha, ref_alpha)
        if gray is not None:
            assert img.grayscale is gray
        if mode is not None:
            assert img.source_mode == mode
        if fmt is not None:
            assert img.format == fmt
        if note is not None:
            assert any(note in n for n in img.notes), img.notes
        assert img.bit_depth == (16 if dtype == np.uint16 else 8)
        assert img.size == (ref_rgb.shape[1], ref_rgb.shape[0])
        f = img.to_float()
        assert f.dtype == np.float32 and f.shape == ref_rgb.shape and 0 <= f.min() and f.max() <= 1

    return check


def gray3(g):
    return np.repeat(g[..., None], 3, axis=2)


def close(ref_rgb, tol, *, note=None, gray=False):
    def check(img, _ctx):
        assert img.rgb.shape == ref_rgb.shape and img.rgb.dtype == np.uint8
        err = np.abs(img.rgb.astype(int) - ref_rgb.astype(int)).mean()
        assert err < tol, err
        assert img.grayscale is gray
        if note is not None:
            assert any(note in n for n in img.notes), img.notes

    return check


def same_as_exif_transpose(note="EXIF orientation applied"):
    """Compare with what a viewer shows: PIL decode + ImageOps.exif_transpose."""

    def check(img, data):
        ref = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
        np.testing.assert_array_equal(img.rgb, ref)
        assert any(note in n for n in img.notes), img.notes

    return check


# ----------------------------------------------------------------------------- table
@dataclass
class Case:
    id: str
    make: Callable[[Any], Any]  # tmp_path -> src (or (src, ctx))
    expect: Any  # str -> ImageError message must contain it; callable -> check(img, ctx)
    kwargs: dict | None = None


A75 = rand((5, 7, 3))
A75_RGBA = rand((5, 7, 4))
G75 = rand((5, 7))
A16 = rand((6, 9, 3), np.uint16)
A16_RGBA = rand((6, 9, 4), np.uint16)
A16_LA = rand((6, 9, 2), np.uint16)
G16 = rand((6, 9), np.uint16)
ODD16 = rand((11, 13, 3), np.uint16)  # odd sizes exercise every Adam7 pass edge
PAL = rand((6, 8), np.uint8) % 4
PALETTE = [255, 0, 0, 0, 255, 0, 0, 0, 255, 250, 250, 250]
PAL_RGB = np.array(PALETTE, np.uint8).reshape(4, 3)[PAL]
I_SMALL = rand((4, 5), np.uint8).astype(np.int32)
I_16 = rand((4, 5), np.uint16).astype(np.int32)
I_WIDE = np.array([[-1000, 0], [70000, 140000]], np.int32)
F_UNIT = (rand((4, 5), np.uint16) / 65535.0).astype(np.float32)


def _palette_img(transparent: bool) -> Image.Image:
    im = Image.frombytes("P", (8, 6), PAL.astype(np.uint8).tobytes())
    im.putpalette(PALETTE)
    if transparent:
        im.info["transparency"] = 2
    return im


def _cmyk_jpeg(tmp):
    im = Image.new("CMYK", (16, 16), (255, 0, 0, 0))  # pure cyan
    return pil_bytes(im, "JPEG", quality=95)


def _gif(tmp):
    frames = [Image.new("RGB", (10, 8), c).convert("P") for c in ("red", "lime", "blue")]
    return pil_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)


def _webp_anim(tmp):
    frames = [Image.new("RGB", (10, 8), c) for c in ("red", "lime", "blue", "white")]
    return pil_bytes(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True, duration=50)


def twice(data: bytes) -> tuple[bytes, bytes]:
    """(source, context): the same bytes as the input and for the check to decode independently."""
    return data, data


def _truncated_png(tmp):
    data = pil_bytes(Image.fromarray(rand((64, 64, 3))), "PNG")
    return write(tmp, "cut.png", data[: len(data) // 2])


def _truncated_jpeg(tmp):
    data = pil_bytes(Image.fromarray(rand((64, 64, 3))), "JPEG", quality=90)
    return write(tmp, "cut.jpg", data[: len(data) * 2 // 3])


def _truncated_png16(tmp):
    data = png16(rand((32, 32, 3), np.uint16))
    return write(tmp, "cut16.png", data[: len(data) // 2])


def _corrupt_png(tmp):
    data = bytearray(pil_bytes(Image.fromarray(rand((16, 16, 3))), "PNG"))
    data[60] ^= 0xFF  # inside IDAT: checksum no longer matches
    return write(tmp, "bad.png", bytes(data))


def _tiff_float(tmp):
    return write(tmp, "f.tif", pil_bytes(Image.fromarray(F_UNIT, "F"), "TIFF"))


def _nan_float_pil(tmp):
    a = F_UNIT.copy()
    a[0, 0] = np.nan
    return Image.fromarray(a, "F")


def _stream_over_limit(tmp):
    s = CountingStream(os.urandom(5000))
    return s, s


def _ppm16_colour(tmp):
    return b"P6 5 4 65535\n" + rand((4, 5, 3), np.uint16).astype(">u2").tobytes()


CASES = [
    # ---- garbage and broken files
    Case("empty_file", lambda t: write(t, "empty.png", b""), "file is empty"),
    Case("random_bytes", lambda t: write(t, "noise.bin", rng().integers(0, 256, 4096, dtype=np.uint8).tobytes()),
         "not an image"),
    Case("text_renamed_png", lambda t: write(t, "notes.png", b"Hello, this is not a picture.\n" * 40),
         "not an image: the file contains text"),
    Case("truncated_png", _truncated_png, "file is truncated or corrupt"),
    Case("truncated_jpeg", _truncated_jpeg, "file is truncated or corrupt"),
    Case("truncated_png16", _truncated_png16, "file is truncated or corrupt"),
    Case("png_header_only", lambda t: pil_bytes(Image.new("RGB", (4, 4)), "PNG")[:20], "file is truncated or corrupt"),
    Case("png_bad_checksum", _corrupt_png, "file is truncated or corrupt"),
    Case("heic_like", lambda t: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64), "HEIC"),
    # ---- size limits
    Case("bomb_40000x40000_1bit", lambda t: write(t, "bomb.png", bomb_png(40000, 40000)), "40000x40000"),
    Case("over_40MP_8000x6000", lambda t: bomb_png(8000, 6000), "8000x6000 = 48.0 MP"),
    Case("png16_over_40MP_refused_before_decoding", lambda t: raw_png(8000, 6000, 16, 2, zlib.compress(b"")),
         "8000x6000 = 48.0 MP"),
    Case("max_pixels_argument", lambda t: pil_bytes(Image.fromarray(A75), "PNG"), "over the limit of",
         {"max_pixels": 34}),
    Case("over_max_bytes_path", lambda t: write(t, "big.png", pil_bytes(Image.fromarray(rand((64, 64, 3))), "PNG")),
         "over the limit of 1,000 bytes", {"max_bytes": 1000}),
    Case("over_max_bytes_stream", _stream_over_limit, "over the limit of 1,000 bytes", {"max_bytes": 1000}),
    # ---- not a file
    Case("missing_path", lambda t: t / "nope.png", "file not found"),
    Case("directory", lambda t: t, "is a directory"),
    Case("none", lambda t: None, "no image given"),
    Case("wrong_type", lambda t: 3.5, "cannot load an image from a float"),
    # ---- geometry
    Case("1x1", lambda t: write(t, "one.png", pil_bytes(Image.new("RGB", (1, 1), (9, 8, 7)), "PNG")),
         exact(np.array([[[9, 8, 7]]], np.uint8), fmt="PNG", mode="RGB", gray=False)),
    Case("7x5", lambda t: pil_bytes(Image.fromarray(A75), "PNG"), exact(A75, fmt="PNG")),
    Case("aspect_4000x40", lambda t: pil_bytes(Image.fromarray(rand((40, 4000, 3))), "PNG"),
         exact(rand((40, 4000, 3)))),
    # ---- alpha, grey, palette
    Case("rgba", lambda t: pil_bytes(Image.fromarray(A75_RGBA), "PNG"),
         exact(A75_RGBA[..., :3], A75_RGBA[..., 3], mode="RGBA", gray=False)),
    Case("la", lambda t: pil_bytes(Image.fromarray(np.dstack([G75, G75[::-1]])), "PNG"),
         exact(gray3(G75), G75[::-1], mode="LA", gray=True)),
    Case("gray_L", lambda t: pil_bytes(Image.fromarray(G75), "PNG"), exact(gray3(G75), mode="L", gray=True)),
    Case("palette", lambda t: pil_bytes(_palette_img(False), "PNG"),
         exact(PAL_RGB, mode="P", gray=False, note="palette expanded")),
    Case("palette_transparency", lambda t: pil_bytes(_palette_img(True), "PNG", transparency=2),
         exact(PAL_RGB, np.where(PAL == 2, 0, 255).astype(np.uint8), mode="P", note="transparency -> alpha")),
    # ---- 16 bit
    Case("png16_gray_I16", lambda t: pil_bytes(Image.fromarray(G16), "PNG"),
         exact(gray3(G16), dtype=np.uint16, mode="I;16", gray=True, fmt="PNG")),
    Case("png16_rgb", lambda t: write(t, "rgb16.png", png16(A16)),
         exact(A16, dtype=np.uint16, mode="RGB;16", gray=False, fmt="PNG")),
    Case("png16_rgba", lambda t: png16(A16_RGBA),
         exact(A16_RGBA[..., :3], A16_RGBA[..., 3], dtype=np.uint16, mode="RGBA;16")),
    Case("png16_la", lambda t: png16(A16_LA),
         exact(gray3(A16_LA[..., 0]), A16_LA[..., 1], dtype=np.uint16, mode="LA;16", gray=True)),
    Case("png16_rgb_interlaced", lambda t: adam7_png16(ODD16), exact(ODD16, dtype=np.uint16)),
    Case("png16_gray_trns", lambda t: raw_png(2, 1, 16, 0, zlib.compress(b"\x00\x12\x34\xab\xcd"),
                                               extra=[png_chunk(b"tRNS", b"\x12\x34")]),
         exact(gray3(np.array([[0x1234, 0xABCD]], np.uint16)), np.array([[0, 65535]], np.uint16),
               dtype=np.uint16, gray=True, note="tRNS")),
    Case("png16_exif_orientation_6", lambda t: with_exif_chunk(png16(A16), 6),
         exact(np.rot90(A16, -1), dtype=np.uint16, note="EXIF orientation applied")),
    Case("tiff16_gray", lambda t: pil_bytes(Image.fromarray(G16), "TIFF"),
         exact(gray3(G16), dtype=np.uint16, gray=True, fmt="TIFF")),
    Case("ppm16_colour_noted", _ppm16_colour, close(np.zeros((4, 5, 3), np.uint8), 256, note="reduced to 8 bits")),
    # ---- JPEG specifics
    Case("jpeg_plain", lambda t: pil_bytes(Image.fromarray(smooth(24, 32)), "JPEG", quality=95),
         close(smooth(24, 32), 4)),
    Case("jpeg_cmyk", _cmyk_jpeg, close(np.tile(np.array([0, 255, 255], np.uint8), (16, 16, 1)), 30,
                                        note="CMYK converted to RGB")),
    Case("jpeg_exif_orientation_6", lambda t: twice(jpeg_with_orientation(smooth(20, 40), 6)),
         same_as_exif_transpose()),
    Case("jpeg_exif_orientation_3", lambda t: twice(jpeg_with_orientation(smooth(20, 40), 3)),
         same_as_exif_transpose()),
    *[
        Case(f"png_exif_orientation_{o}",
             lambda t, o=o: twice(with_exif_chunk(pil_bytes(Image.fromarray(A75), "PNG"), o)),
             same_as_exif_transpose())
        for o in (2, 4, 5, 7, 8)
    ],
    # ---- other formats
    Case("gif_animated", _gif, exact(np.tile(np.array([255, 0, 0], np.uint8), (8, 10, 1)),
                                     note="animated image: first frame of 3 used", fmt="GIF")),
    Case("webp_animated", _webp_anim, exact(np.tile(np.array([255, 0, 0], np.uint8), (8, 10, 1)),
                                            note="animated image: first frame of 4 used", fmt="WEBP")),
    Case("webp_lossless", lambda t: pil_bytes(Image.fromarray(A75), "WEBP", lossless=True), exact(A75, fmt="WEBP")),
    Case("bmp", lambda t: write(t, "a.bmp", pil_bytes(Image.fromarray(A75), "BMP")), exact(A75, fmt="BMP")),
    Case("tiff", lambda t: pil_bytes(Image.fromarray(A75), "TIFF"), exact(A75, fmt="TIFF")),
    # ---- unusual PIL modes
    Case("mode_1", lambda t: Image.fromarray(G75 > 127),
         exact(gray3(np.where(G75 > 127, 255, 0).astype(np.uint8)), gray=True, mode="1", note="1-bit")),
    Case("mode_I_0_255", lambda t: Image.fromarray(I_SMALL, "I"),
         exact(gray3(I_SMALL.astype(np.uint8)), gray=True, mode="I", note="read as 8-bit")),
    Case("mode_I_16bit_range", lambda t: Image.fromarray(I_16, "I"),
         exact(gray3(I_16.astype(np.uint16)), dtype=np.uint16, gray=True, note="read as 16-bit")),
    Case("mode_I_wide_range_rescaled", lambda t: Image.fromarray(I_WIDE, "I"),
         exact(gray3(np.rint((I_WIDE + 1000) * (65535 / 141000)).astype(np.uint16)), dtype=np.uint16,
               note="rescaled linearly")),
    Case("mode_F_tiff", _tiff_float,
         exact(gray3(np.rint(F_UNIT.astype(np.float64) * 65535).astype(np.uint16)), dtype=np.uint16,
               gray=True, mode="F", note="32-bit float image")),
    Case("mode_F_nan", _nan_float_pil, "NaN"),
    # ---- numpy inputs
    Case("np_gray_u8", lambda t: G75, exact(gray3(G75), gray=True, mode="L")),
    Case("np_rgb_u8", lambda t: A75, exact(A75, gray=False, mode="RGB")),
    Case("np_rgba_u16", lambda t: A16_RGBA,
         exact(A16_RGBA[..., :3], A16_RGBA[..., 3], dtype=np.uint16, mode="RGBA;16")),
    Case("np_float_unit", lambda t: F_UNIT, exact(gray3(np.rint(F_UNIT.astype(np.float64) * 65535).astype(np.uint16)),
                                                  dtype=np.uint16, gray=True, note="quantised")),
    Case("np_int64_small", lambda t: A75.astype(np.int64), exact(A75)),
    Case("np_float_over_1", lambda t: F_UNIT * 2, "must be in [0, 1]"),
    Case("np_float_nan", lambda t: np.full((3, 3), np.nan, np.float32), "NaN"),
    Case("np_bad_shape", lambda t: np.zeros((4, 4, 5), np.uint8), "not an image"),
    Case("np_empty", lambda t: np.zeros((0, 4, 3), np.uint8), "no pixels"),
    Case("np_negative_int", lambda t: np.array([[-1, 2]]), "outside 0..65535"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_load_table(case: Case, tmp_path):
    made = case.make(tmp_path)
    src, ctx = made if isinstance(made, tuple) else (made, None)
    kwargs = case.kwargs or {}
    if isinstance(case.expect, str):
        with pytest.raises(ImageError) as info:
            load_image(src, **kwargs)
        assert case.expect in str(info.value), str(info.value)
        if isinstance(ctx, CountingStream):  # the limit stopped the read early
            assert ctx.requested <= kwargs["max_bytes"] + 1
    else:
        img = load_image(src, **kwargs)
        case.expect(img, ctx)
        assert img.rgb.flags.c_contiguous
        assert img.rgb.ndim == 3 and img.rgb.shape[2] == 3
        assert img.alpha is None or img.alpha.shape == img.rgb.shape[:2]


def test_limits_and_global_state_untouched():
    assert DEFAULT_MAX_PIXELS == 40_000_000 and DEFAULT_MAX_BYTES == 100 * 1024 * 1024
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    for src in (bomb_png(40000, 40000), pil_bytes(Image.fromarray(rand((64, 64, 3))), "JPEG")[:500]):
        with pytest.raises(ImageError):
            load_image(src)
    assert (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES) == before
    assert load_image(bomb_png(6000, 4000)).size == (6000, 4000)  # 24 MP is accepted


# ----------------------------------------------------------------------------- round trips
ROUND_TRIPS = {
    "rgb8": (A75, None, False),
    "rgba8": (A75_RGBA[..., :3], A75_RGBA[..., 3], False),
    "gray8": (gray3(G75), None, True),
    "gray_alpha8": (gray3(G75), G75[::-1].copy(), True),
    "rgb16": (A16, None, False),
    "gray16": (gray3(G16), None, True),
    "rgba16": (A16_RGBA[..., :3], A16_RGBA[..., 3], False),
    "gray_alpha16": (gray3(A16_LA[..., 0]), A16_LA[..., 1], True),
}


@pytest.mark.parametrize("name", list(ROUND_TRIPS))
def test_round_trip(name, tmp_path):
    rgb, alpha, gray = ROUND_TRIPS[name]
    out = save_image(tmp_path / "sub" / f"{name}.png", rgb, alpha, grayscale=gray)
    assert out.exists() and [p.name for p in out.parent.iterdir()] == [out.name]  # no temp file left
    img = load_image(out)
    assert img.rgb.dtype == rgb.dtype and img.grayscale is gray
    np.testing.assert_array_equal(img.rgb, rgb)
    if alpha is None:
        assert img.alpha is None
    else:
        np.testing.assert_array_equal(img.alpha, alpha)
    # Pillow agrees on everything it can represent
    with Image.open(out) as im:
        if rgb.dtype == np.uint8 or (gray and alpha is None):
            pil = np.asarray(im)
            ref = rgb[..., 0] if gray else rgb
            if alpha is not None:
                ref = np.dstack([ref, alpha])
            np.testing.assert_array_equal(pil, ref)
        else:  # 16-bit colour: Pillow reads the high byte only
            assert im.size == (rgb.shape[1], rgb.shape[0])


def test_save_float_clips_overshoot_and_rejects_nonsense(tmp_path):
    f = np.linspace(-0.02, 1.02, 5 * 7 * 3, dtype=np.float32).reshape(5, 7, 3)
    img = load_image(save_image(tmp_path / "f.png", f))
    assert img.bit_depth == 8
    np.testing.assert_array_equal(img.rgb, np.rint(np.clip(f.astype(np.float64), 0, 1) * 255).astype(np.uint8))
    for bad in (f * 255, np.full((2, 2, 3), np.nan)):
        with pytest.raises(ImageError):
            save_image(tmp_path / "bad.png", bad)
    with pytest.raises(ImageError, match="PNG only"):
        save_image(tmp_path / "x.jpg", A75)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]


def test_to_pil_display():
    img = load_image(A16_RGBA)
    pil = to_pil(img)
    assert pil.mode == "RGBA" and pil.size == (9, 6)
    np.testing.assert_array_equal(np.asarray(pil)[..., :3], ((A16_RGBA[..., :3].astype(np.uint32) + 128) // 257))
    assert to_pil(G75).mode == "RGB"


# ----------------------------------------------------------------------------- 16-bit PNG through libpng
def test_png16_elongated_strip():
    """A 3 x 200000 16-bit strip decodes exactly (and quickly: libpng, no per-row Python)."""
    a = rand((3, 200_000, 3), np.uint16)
    img = load_image(imagecodecs.png_encode(a, level=1, filter=imagecodecs.PNG.FILTER.PAETH))
    np.testing.assert_array_equal(img.rgb, a)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_png16_save_is_read_by_libpng_and_pillow(channels, tmp_path):
    """save_image's 16-bit PNG: libpng reads every sample back; Pillow agrees on the high bytes."""
    a = rand((9, 11, channels), np.uint16)
    rgb, alpha = (a[..., :1], a[..., 1]) if channels == 2 else (a, None)
    out = save_image(tmp_path / "a.png", rgb, alpha)
    data = out.read_bytes()
    assert data[24] == 16 and data[25] == {1: 0, 2: 4, 3: 2, 4: 6}[channels]  # IHDR bit depth, colour type
    back = imagecodecs.png_decode(data)
    np.testing.assert_array_equal(back.reshape(a.shape), a)
    with Image.open(out) as im:
        pil = np.asarray(im)
    if channels == 1:
        np.testing.assert_array_equal(pil, a[..., 0])
    elif channels in (3, 4):
        np.testing.assert_array_equal(pil, (a >> 8).astype(np.uint8))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_large_images_are_saved_fast_and_lossless(dtype, tmp_path, monkeypatch):
    """Above FAST_PNG_PIXELS save_image compresses at zlib level 1 (the IDAT stream's FLEVEL bits say
    "fastest"); below, Pillow's / libpng's default; the pixels come back the same either way."""
    import lcoan.imaging.io as io_module

    def flevel(data: bytes) -> int:  # zlib header of the first IDAT chunk: FLG bits 6-7
        return data[data.index(b"IDAT") + 5] >> 6

    a = rand((20, 30, 3), dtype)
    monkeypatch.setattr(io_module, "FAST_PNG_PIXELS", 20 * 30)
    assert flevel(save_image(tmp_path / "small.png", a).read_bytes()) == 2  # level 6, the default
    monkeypatch.setattr(io_module, "FAST_PNG_PIXELS", 20 * 30 - 1)
    out = save_image(tmp_path / "large.png", a, a[..., 0])
    assert flevel(out.read_bytes()) == 0  # level 1
    back = load_image(out)
    np.testing.assert_array_equal(back.rgb, a)
    np.testing.assert_array_equal(back.alpha, a[..., 0])
