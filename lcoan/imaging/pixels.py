"""Pixel converters behind :mod:`lcoan.imaging.io`: PIL modes and numpy arrays -> ``(rgb, alpha, grayscale)``,
bit-depth changes (the one 16->8-bit conversion), EXIF orientation of arrays and ITU-R 601 luma.

Arrays are ``H x W x 3`` RGB (``H x W`` alpha) in ``uint8`` or ``uint16``; every unusual input is
either converted with a note appended to ``notes`` or refused with :class:`ImageError`.
Import :class:`ImageError` from :mod:`lcoan.imaging.io`; it lives here only so these helpers can raise it.
"""
from __future__ import annotations

import io as _io

import numpy as np
from PIL import Image


class ImageError(ValueError):
    """Raised with a clear, user-facing message naming the problem."""


Channels = tuple[np.ndarray, "np.ndarray | None", bool]  # (rgb, alpha, grayscale)


def gray3(g: np.ndarray) -> np.ndarray:
    """``H x W`` grey -> ``H x W x 3`` with the grey copied to R, G and B."""
    return np.repeat(g[..., None], 3, axis=2)


def to_depth(a: np.ndarray, dtype: type, what: str = "image") -> np.ndarray:
    """uint8 / uint16 / bool / float-in-[0,1] array -> ``dtype`` (uint8 or uint16), same shape.

    uint16 -> uint8 rounds to nearest (``(x + 128) // 257``, equal to ``round(x / 257)``);
    uint8 -> uint16 is exact (``x * 257``); float overshoot up to 0.5 is clipped, more is refused.
    """
    if a.dtype == dtype:
        return a
    if a.dtype == np.uint8 and dtype == np.uint16:
        return a.astype(np.uint16) * 257
    if a.dtype == np.uint16 and dtype == np.uint8:
        return ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if a.dtype == np.bool_:
        return a.astype(dtype) * np.iinfo(dtype).max
    if np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)):
            raise ImageError(f"{what} contains NaN or infinite values")
        if a.size and (a.min() < -0.5 or a.max() > 1.5):
            raise ImageError(f"{what} is float with values {float(a.min()):g}..{float(a.max()):g}; expected [0, 1]")
        top = np.iinfo(dtype).max
        return np.rint(np.clip(a.astype(np.float64), 0.0, 1.0) * top).astype(dtype)
    raise ImageError(f"{what} has unsupported dtype {a.dtype} (uint8, uint16 or float in [0,1])")


def to_uint8(a: np.ndarray) -> np.ndarray:
    """8-bit copy of an image array for 8-bit consumers (metrics, training data, display).

    ``uint8`` is returned as is; ``uint16`` is rounded to nearest (``round(x / 257)``).
    """
    return to_depth(np.asarray(a), np.uint8)


def orient(a: np.ndarray, o: int) -> np.ndarray:
    """Apply EXIF orientation ``o`` (1..8) to an ``H x W [x C]`` array, as ``ImageOps.exif_transpose`` does."""
    if o == 2:
        a = a[:, ::-1]
    elif o == 3:
        a = a[::-1, ::-1]
    elif o == 4:
        a = a[::-1]
    elif o == 5:
        a = a.swapaxes(0, 1)
    elif o == 6:
        a = np.rot90(a, -1)
    elif o == 7:
        a = a.swapaxes(0, 1)[::-1, ::-1]
    elif o == 8:
        a = np.rot90(a, 1)
    return np.ascontiguousarray(a)


def luma(rgb: np.ndarray) -> np.ndarray:
    """``H x W x 3`` -> ``H x W`` grey of the same dtype: exact when R = G = B, else ITU-R 601 (as PIL's "L")."""
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        return rgb[..., 0]
    f = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.rint(f).clip(0, np.iinfo(rgb.dtype).max).astype(rgb.dtype)


def split_channels(a: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, bool, str]:
    """``H x W x C`` (C = 1..4) -> (rgb, alpha, grayscale, layout name "L"/"LA"/"RGB"/"RGBA")."""
    c = a.shape[2]
    if c == 1:
        return gray3(a[..., 0]), None, True, "L"
    if c == 2:
        return gray3(a[..., 0]), np.ascontiguousarray(a[..., 1]), True, "LA"
    if c == 3:
        return np.ascontiguousarray(a), None, False, "RGB"
    return np.ascontiguousarray(a[..., :3]), np.ascontiguousarray(a[..., 3]), False, "RGBA"


def _int_to_depth(a: np.ndarray, what: str, notes: list[str]) -> np.ndarray:
    """32-bit integer grey -> uint8 (0..255), uint16 (0..65535) exactly, else min..max rescaled to 16 bits."""
    lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
    if lo >= 0 and hi <= 255:
        notes.append(f"{what} with values 0..255 read as 8-bit")
        return a.astype(np.uint8)
    if lo >= 0 and hi <= 65535:
        notes.append(f"{what} with values 0..65535 read as 16-bit")
        return a.astype(np.uint16)
    notes.append(f"{what} with values {lo}..{hi} rescaled linearly to 16-bit 0..65535")
    f = (a.astype(np.float64) - lo) * (65535.0 / max(hi - lo, 1))
    return np.rint(f).astype(np.uint16)


def _float_to_depth(a: np.ndarray, what: str, notes: list[str]) -> np.ndarray:
    """32-bit float grey -> uint16: [0,1] x 65535, else 0..255 x 257, else 0..65535, else min..max rescaled."""
    if not np.all(np.isfinite(a)):
        raise ImageError(f"{what} contains NaN or infinite values")
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    f = a.astype(np.float64)
    if lo >= 0 and hi <= 1:
        desc, f = "[0,1] scaled", f * 65535.0
    elif lo >= 0 and hi <= 255:
        desc, f = "0..255 scaled", f * 257.0
    elif lo >= 0 and hi <= 65535:
        desc = "0..65535 kept"
    else:
        desc = f"{lo:g}..{hi:g} rescaled linearly"
        f = (f - lo) * (65535.0 / (hi - lo) if hi > lo else 0.0)
    notes.append(f"{what} ({desc}) converted to 16-bit")
    return np.rint(np.clip(f, 0, 65535)).astype(np.uint16)


def _cmyk_to_rgb(im: Image.Image, notes: list[str]) -> Image.Image:
    """CMYK -> RGB with the embedded ICC profile when LittleCMS accepts it, else Pillow's formula."""
    icc = im.info.get("icc_profile")
    if icc:
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(_io.BytesIO(icc))
            out = ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
            if out is not None:
                notes.append("CMYK converted to RGB using the embedded ICC profile")
                return out
        except Exception:
            pass
    notes.append("CMYK converted to RGB")
    return im.convert("RGB")


def from_pil(im: Image.Image, notes: list[str], label: str) -> Channels:
    """Decode a (lazily opened) PIL image to (rgb, alpha, grayscale); may raise PIL errors."""
    mode = im.mode
    if mode == "1":
        notes.append("1-bit image expanded to 8-bit grey")
        return gray3(np.asarray(im.convert("L"))), None, True
    if mode == "L":
        return gray3(np.asarray(im)), None, True
    if mode in ("LA", "La"):
        if mode == "La":
            notes.append("premultiplied alpha un-premultiplied")
            im = im.convert("LA")
        a = np.asarray(im)
        return gray3(a[..., 0]), np.ascontiguousarray(a[..., 1]), True
    if mode.startswith("I;16"):
        return gray3(np.asarray(im).astype(np.uint16)), None, True  # astype also normalises I;16B
    if mode == "I":
        return gray3(_int_to_depth(np.asarray(im), "32-bit integer image", notes)), None, True
    if mode == "F":
        return gray3(_float_to_depth(np.asarray(im), "32-bit float image", notes)), None, True
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info or (im.palette is not None and im.palette.mode == "RGBA")
        notes.append("palette expanded" + (" (transparency -> alpha)" if has_alpha else ""))
        im = im.convert("RGBA" if has_alpha else "RGB")
    elif mode == "CMYK":
        im = _cmyk_to_rgb(im, notes)
    elif mode == "RGBa":
        notes.append("premultiplied alpha un-premultiplied")
        im = im.convert("RGBA")
    elif mode not in ("RGB", "RGBA"):
        try:
            im = im.convert("RGB")
        except (ValueError, OSError) as exc:
            raise ImageError(f"{label}unsupported pixel mode {mode!r} ({exc})") from None
        notes.append(f"{mode} converted to RGB")
    rgb, alpha, _, _ = split_channels(np.asarray(im))
    return rgb, alpha, False


_LAYOUT_16 = {"L": "I;16", "LA": "LA;16", "RGB": "RGB;16", "RGBA": "RGBA;16"}


def from_array(a: np.ndarray, notes: list[str]) -> tuple[np.ndarray, np.ndarray | None, bool, str]:
    """numpy ``H x W x C`` (C = 1..4, any dtype) -> (rgb, alpha, grayscale, layout name); see :mod:`.io`."""
    dtype = a.dtype
    if a.dtype.kind == "u" and a.dtype.itemsize in (1, 2):
        a = a.astype(np.uint8 if a.dtype.itemsize == 1 else np.uint16, copy=True)  # also fixes byte order
    elif a.dtype == np.bool_:
        notes.append("boolean array mapped to 0/255")
        a = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.integer):
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi > 65535:
            raise ImageError(f"integer array values {lo}..{hi} are outside 0..65535")
        a = a.astype(np.uint8 if hi <= 255 else np.uint16)
        notes.append(f"{dtype} array stored as {a.dtype}")
    elif np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)):
            raise ImageError("float array contains NaN or infinite values")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0 or hi > 1:
            raise ImageError(f"float array values must be in [0, 1], got {lo:g}..{hi:g}")
        a = np.rint(a.astype(np.float64) * 65535.0).astype(np.uint16)
        notes.append(f"{dtype} array quantised to 16 bits")
    else:
        raise ImageError(f"unsupported array dtype {a.dtype}")
    rgb, alpha, gray, layout = split_channels(a)
    return rgb, alpha, gray, _LAYOUT_16[layout] if a.dtype == np.uint16 else layout
