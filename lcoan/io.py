"""The single image loading/saving path shared by the app and the command lines.

Every upload goes through :func:`load_image`; every result is written by
:func:`save_image`.  Anything that cannot be read correctly raises
:class:`ImageError` (a ``ValueError``) whose message names the problem in words a
user can act on; nothing is silently altered without a note in
:attr:`LoadedImage.notes`.

Limits (module constants, overridable per call)
-----------------------------------------------
======================  ==========  ======================================================
Constant                Value       Meaning
======================  ==========  ======================================================
``DEFAULT_MAX_PIXELS``  40 000 000  width x height, read from the file header *before*
                                    decoding: a 6000x4000 = 24 MP photo passes; a
                                    40000x40000 "decompression bomb" PNG of a few hundred
                                    KB is refused without allocating.  Pillow's own bomb
                                    guard stays as a second line of defence (its warning
                                    is turned into an error locally; the global
                                    ``Image.MAX_IMAGE_PIXELS`` is never changed).
``DEFAULT_MAX_BYTES``   100 MiB     file size: ``stat`` for paths, and at most
                                    ``max_bytes + 1`` bytes are read from streams.
======================  ==========  ======================================================

Supported inputs
----------------
===========================  ======================================  ====================
Source                       Result (``rgb`` / ``alpha``)            Notes / flags
===========================  ======================================  ====================
PNG 8-bit RGB / RGBA         uint8; RGBA alpha kept separately
PNG grey ``L`` / ``LA``      uint8, grey copied to 3 channels,       grayscale
                             alpha separate
PNG 1/2/4-bit, palette       uint8; palette transparency becomes     "palette expanded"
                             alpha
PNG 16-bit, any colour type  uint16, bit-exact, interlaced too       grayscale for grey
                             (own decoder :mod:`lcoan.png16`;
                             Pillow drops the low byte of 16-bit
                             colour); tRNS key -> alpha; eXIf
                             orientation applied
JPEG, baseline/progressive   uint8, EXIF orientation applied (as a   "EXIF orientation
                             viewer shows it)                        applied"
JPEG CMYK / YCCK             uint8 RGB (embedded ICC profile when    "CMYK converted to
                             LittleCMS has it, else Pillow's         RGB"
                             formula)
animated GIF / APNG / WebP   first frame                             "animated image:
                                                                     first frame of N
                                                                     used"
multi-page TIFF, MPO         first image                             "multi-image file"
WebP, BMP, TIFF, PPM, ICO    uint8; 16-bit grey TIFF/PGM -> uint16;  "reduced to 8 bits"
                             16-bit *colour* TIFF/PPM are decoded
                             by Pillow at 8 bits
mode ``1``                   uint8 0/255                             grayscale
mode ``I`` (int32)           values in 0..255 -> uint8, in           grayscale, noted
                             0..65535 -> uint16, exactly; any
                             other range min..max is rescaled
                             linearly to 0..65535 (never clipped)
mode ``F`` (float32)         uint16: [0,1] x 65535; else 0..255      grayscale, noted
                             x 257; else 0..65535 as is; else
                             min..max rescaled; NaN/inf refused
numpy ``HxW``/``HxWx1..4``   uint8/uint16 kept; bool -> 0/255;       1/2 channels:
                             other ints: 0..255 -> uint8,            grayscale
                             0..65535 -> uint16, else refused;
                             float: finite and in [0,1] -> uint16
                             (quantised), else refused
``PIL.Image.Image``          as a file of that mode
===========================  ======================================  ====================

``source_mode`` is Pillow's mode name; sources Pillow has no name for are called
``"RGB;16"``, ``"RGBA;16"``, ``"LA;16"`` (16-bit colour / grey+alpha) and numpy
inputs get the name of their layout (``"L"``, ``"LA"``, ``"RGB"``, ``"RGBA"``,
``"I;16"``, ...).  Colour profiles are not applied (except for CMYK); a non-sRGB
embedded profile is mentioned in ``notes``.

Refused with :class:`ImageError`: missing path, directory, unreadable file, empty
file, file over ``max_bytes``, image over ``max_pixels``, zero-size image,
unrecognised content (random bytes, a text file renamed ``.png``, HEIC without a
plugin, ...), truncated or corrupt files ("file is truncated or corrupt": this
module never sets Pillow's global ``ImageFile.LOAD_TRUNCATED_IMAGES``), unsupported
array shapes/dtypes, NaN or out-of-range floats.

Saving
------
:func:`save_image` always writes lossless PNG atomically (temporary file in the
target folder, then ``os.replace``): uint8 -> 8-bit PNG (Pillow), uint16 -> 16-bit
PNG (grey, grey+alpha, RGB, RGBA via :mod:`lcoan.png16`), float in [0,1] -> 8-bit.
``save_image`` followed by ``load_image`` returns identical arrays.

Thread safety: the functions keep no state.  The local ``warnings.catch_warnings``
used for Pillow's bomb warning is process-wide in CPython < 3.14, so a concurrent
thread may briefly see that filter; it only affects ``DecompressionBombWarning``.
"""

from __future__ import annotations

import io as _io
import os
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from . import atomic, png16

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_BYTES",
    "ImageError",
    "LoadedImage",
    "load_image",
    "save_image",
    "to_pil",
]

#: Largest accepted image, in pixels (width x height), checked before decoding.
DEFAULT_MAX_PIXELS = 40_000_000
#: Largest accepted file, in bytes.
DEFAULT_MAX_BYTES = 100 * 1024 * 1024

_EXIF_ORIENTATION = 0x0112


class ImageError(ValueError):
    """Raised with a clear, user-facing message naming the problem."""


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """A decoded image, ready for the model.

    ``rgb`` is ``H x W x 3`` ``uint8`` or ``uint16`` (16-bit sources keep 16 bits),
    with EXIF orientation already applied; ``alpha`` is ``H x W`` of the same dtype
    or ``None``.  ``grayscale`` says the source had no colour, so savers may write
    grey back.  ``notes`` lists every conversion that was made.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    source_mode: str
    format: str | None
    grayscale: bool
    notes: tuple[str, ...] = field(default=())

    @property
    def bit_depth(self) -> int:
        return 16 if self.rgb.dtype == np.uint16 else 8

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), like PIL."""
        return (int(self.rgb.shape[1]), int(self.rgb.shape[0]))

    @property
    def _scale(self) -> float:
        return 65535.0 if self.rgb.dtype == np.uint16 else 255.0

    def to_float(self) -> np.ndarray:
        """``H x W x 3`` float32 in [0, 1]."""
        return self.rgb.astype(np.float32) / np.float32(self._scale)

    def alpha_float(self) -> np.ndarray | None:
        """``H x W`` float32 in [0, 1], or None."""
        if self.alpha is None:
            return None
        return self.alpha.astype(np.float32) / np.float32(self._scale)


# --------------------------------------------------------------------------- helpers
def _pixels(n: int) -> str:
    return f"{n / 1e6:.1f} MP ({n:,} pixels)" if n >= 100_000 else f"{n:,} pixels"


def _too_many_pixels(w: int, h: int, max_pixels: int, where: str) -> ImageError:
    return ImageError(
        f"{where}image is {w}x{h} = {_pixels(w * h)}, over the limit of {_pixels(max_pixels)}; "
        "downscale it first"
    )


def _check_dims(w: int, h: int, max_pixels: int, where: str) -> None:
    if w <= 0 or h <= 0:
        raise ImageError(f"{where}image has no pixels ({w}x{h})")
    if w * h > max_pixels:
        raise _too_many_pixels(w, h, max_pixels, where)


_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def _sniff(data: bytes) -> str | None:
    for sig, name in _SIGNATURES:
        if data.startswith(sig):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            return "HEIC"
        if brand in (b"avif", b"avis"):
            return "AVIF"
    return None


def _looks_like_text(data: bytes) -> bool:
    head = data[:4096]
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return printable >= 0.95 * len(text)


def _read_source(src, max_bytes: int) -> tuple[bytes, str]:
    """Return (data, label) for path / bytes / file-like sources, enforcing max_bytes."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
        if len(data) > max_bytes:
            raise ImageError(f"file is {len(data):,} bytes, over the limit of {max_bytes:,} bytes")
        return data, ""
    if isinstance(src, (str, os.PathLike)):
        try:
            path = Path(src)
        except TypeError as exc:
            raise ImageError(f"invalid path: {exc}") from None
        label = f"{path.name or str(path)}: "
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ImageError(f"{label}file not found ({path})") from None
        except (OSError, ValueError) as exc:
            raise ImageError(f"{label}cannot access file ({exc})") from None
        if path.is_dir():
            raise ImageError(f"{label}is a directory, not an image file ({path})")
        if not path.is_file():
            raise ImageError(f"{label}is not a regular file ({path})")
        if st.st_size > max_bytes:
            raise ImageError(f"{label}file is {st.st_size:,} bytes, over the limit of {max_bytes:,} bytes")
        try:
            with open(path, "rb") as fh:
                data = fh.read(max_bytes + 1)
        except OSError as exc:
            raise ImageError(f"{label}cannot read file ({exc.strerror or exc})") from None
        if len(data) > max_bytes:  # grew while we looked
            raise ImageError(f"{label}file is over the limit of {max_bytes:,} bytes")
        return data, label
    if hasattr(src, "read"):
        label = ""
        name = getattr(src, "name", None)
        if isinstance(name, str) and name:
            label = f"{os.path.basename(name)}: "
        try:
            data = src.read(max_bytes + 1)
        except (OSError, ValueError) as exc:
            raise ImageError(f"{label}cannot read stream ({exc})") from None
        if not isinstance(data, (bytes, bytearray)):
            raise ImageError(f"{label}stream must be opened in binary mode")
        if len(data) > max_bytes:
            raise ImageError(f"{label}file is over the limit of {max_bytes:,} bytes")
        return bytes(data), label
    if src is None:
        raise ImageError("no image given")
    raise ImageError(f"cannot load an image from a {type(src).__name__}")


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_EXIF_ORIENTATION)
    except Exception:  # broken EXIF must not stop the image from loading
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _orient(a: np.ndarray, o: int) -> np.ndarray:
    """Apply EXIF orientation ``o`` to an HxW[xC] array (same result as ImageOps.exif_transpose)."""
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


def _int_to_depth(a: np.ndarray, what: str, notes: list[str]) -> np.ndarray:
    """32-bit integer grey -> uint8 / uint16 without overflow (see module table)."""
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
    if not np.all(np.isfinite(a)):
        raise ImageError(f"{what} contains NaN or infinite values")
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if lo >= 0 and hi <= 1:
        scale, desc = 65535.0, "[0,1] scaled"
        f = a.astype(np.float64) * scale
    elif lo >= 0 and hi <= 255:
        scale, desc = 257.0, "0..255 scaled"
        f = a.astype(np.float64) * scale
    elif lo >= 0 and hi <= 65535:
        desc = "0..65535 kept"
        f = a.astype(np.float64)
    else:
        desc = f"{lo:g}..{hi:g} rescaled linearly"
        f = (a.astype(np.float64) - lo) * (65535.0 / (hi - lo) if hi > lo else 0.0)
    notes.append(f"{what} ({desc}) converted to 16-bit")
    return np.rint(np.clip(f, 0, 65535)).astype(np.uint16)


def _gray(g: np.ndarray) -> np.ndarray:
    return np.repeat(g[..., None], 3, axis=2)


def _is_16bit_png(data: bytes) -> bool:
    return data[:8] == png16.PNG_SIGNATURE and len(data) >= 26 and data[24] == 16


def _depth_loss_note(im: Image.Image) -> str | None:
    """Pillow decodes 16-bit *colour* TIFF/PPM at 8 bits: say so rather than hide it."""
    if im.mode not in ("RGB", "RGBA", "CMYK", "LA", "P"):
        return None
    try:
        if im.format == "TIFF":
            bits = im.tag_v2.get(258)
            bits = bits if isinstance(bits, tuple) else (bits,)
            if any(isinstance(b, int) and b > 8 for b in bits):
                return f"{max(bits)}-bit colour TIFF reduced to 8 bits (Pillow decodes it at 8 bits)"
        if im.format == "PPM" and im.tile and len(im.tile[0].args) > 1:
            maxval = im.tile[0].args[1]
            if isinstance(maxval, int) and maxval > 255:
                return "16-bit colour PPM reduced to 8 bits (Pillow decodes it at 8 bits)"
    except Exception:
        return None
    return None


def _icc_note(im: Image.Image) -> str | None:
    """Colour profiles are not applied (the model works on sRGB-like values): say so
    when an embedded profile is something other than sRGB (Display P3, Adobe RGB...)."""
    icc = im.info.get("icc_profile")
    if not icc or im.mode == "CMYK":
        return None
    try:
        from PIL import ImageCms

        desc = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(_io.BytesIO(icc))).strip()
    except Exception:
        return "embedded colour profile not applied (pixels used as sRGB)"
    if "srgb" in desc.lower().replace(" ", ""):
        return None
    return f"embedded colour profile {desc!r} not applied (pixels used as sRGB)"


def _cmyk_to_rgb(im: Image.Image, notes: list[str]) -> Image.Image:
    icc = im.info.get("icc_profile")
    if icc:
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(_io.BytesIO(icc))
            dst = ImageCms.createProfile("sRGB")
            out = ImageCms.profileToProfile(im, src, dst, outputMode="RGB")
            if out is not None:
                notes.append("CMYK converted to RGB using the embedded ICC profile")
                return out
        except Exception:
            pass
    notes.append("CMYK converted to RGB")
    return im.convert("RGB")


# --------------------------------------------------------------------------- decoding
def _from_pil(im: Image.Image, notes: list[str], label: str) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """Decode a (lazily opened) PIL image to (rgb, alpha, grayscale); may raise PIL errors."""
    mode = im.mode
    if mode == "1":
        notes.append("1-bit image expanded to 8-bit grey")
        g = np.asarray(im.convert("L"))
        return _gray(g), None, True
    if mode == "L":
        return _gray(np.asarray(im)), None, True
    if mode in ("LA", "La"):
        if mode == "La":
            notes.append("premultiplied alpha un-premultiplied")
            im = im.convert("LA")
        a = np.asarray(im)
        return _gray(a[..., 0]), np.ascontiguousarray(a[..., 1]), True
    if mode.startswith("I;16"):
        a = np.asarray(im).astype(np.uint16)  # also normalises big-endian I;16B
        return _gray(a), None, True
    if mode == "I":
        a = _int_to_depth(np.asarray(im), "32-bit integer image", notes)
        return _gray(a), None, True
    if mode == "F":
        a = _float_to_depth(np.asarray(im), "32-bit float image", notes)
        return _gray(a), None, True
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info or (im.palette is not None and im.palette.mode == "RGBA")
        notes.append("palette expanded" + (" (transparency -> alpha)" if has_alpha else ""))
        im = im.convert("RGBA" if has_alpha else "RGB")
        mode = im.mode
    elif mode in ("CMYK",):
        im = _cmyk_to_rgb(im, notes)
        mode = im.mode
    elif mode == "RGBa":
        notes.append("premultiplied alpha un-premultiplied")
        im = im.convert("RGBA")
        mode = "RGBA"
    elif mode not in ("RGB", "RGBA"):
        try:
            im = im.convert("RGB")
        except (ValueError, OSError) as exc:
            raise ImageError(f"{label}unsupported pixel mode {mode!r} ({exc})") from None
        notes.append(f"{mode} converted to RGB")
        mode = "RGB"
    a = np.asarray(im)
    if mode == "RGBA":
        return np.ascontiguousarray(a[..., :3]), np.ascontiguousarray(a[..., 3]), False
    return np.ascontiguousarray(a), None, False


def _split_channels(a: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, bool, str]:
    """HxWxC (C=1..4) -> (rgb, alpha, grayscale, layout name)."""
    c = a.shape[2]
    if c == 1:
        return _gray(a[..., 0]), None, True, "L"
    if c == 2:
        return _gray(a[..., 0]), np.ascontiguousarray(a[..., 1]), True, "LA"
    if c == 3:
        return np.ascontiguousarray(a), None, False, "RGB"
    return np.ascontiguousarray(a[..., :3]), np.ascontiguousarray(a[..., 3]), False, "RGBA"


def _from_array(arr: np.ndarray, max_pixels: int) -> LoadedImage:
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] in (1, 2, 3, 4):
        pass
    elif a.ndim == 2:
        a = a[..., None]
    else:
        raise ImageError(f"array of shape {a.shape} is not an image (expected HxW or HxWx1/2/3/4)")
    h, w = a.shape[:2]
    _check_dims(w, h, max_pixels, "")
    notes: list[str] = []
    if a.dtype.kind == "u" and a.dtype.itemsize in (1, 2):
        a = a.astype(np.uint8 if a.dtype.itemsize == 1 else np.uint16, copy=True)  # also fixes byte order
    elif a.dtype == np.bool_:
        notes.append("boolean array mapped to 0/255")
        a = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.integer):
        lo, hi = int(a.min()), int(a.max())
        if lo >= 0 and hi <= 255:
            a = a.astype(np.uint8)
        elif lo >= 0 and hi <= 65535:
            a = a.astype(np.uint16)
        else:
            raise ImageError(f"integer array values {lo}..{hi} are outside 0..65535")
        notes.append(f"{arr.dtype} array stored as {a.dtype}")
    elif np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)):
            raise ImageError("float array contains NaN or infinite values")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0 or hi > 1:
            raise ImageError(f"float array values must be in [0, 1], got {lo:g}..{hi:g}")
        a = np.rint(a.astype(np.float64) * 65535.0).astype(np.uint16)
        notes.append(f"{arr.dtype} array quantised to 16 bits")
    else:
        raise ImageError(f"unsupported array dtype {a.dtype}")
    rgb, alpha, gray, layout = _split_channels(a)
    if a.dtype == np.uint16:
        layout = {"L": "I;16", "LA": "LA;16", "RGB": "RGB;16", "RGBA": "RGBA;16"}[layout]
    mode = layout
    return LoadedImage(rgb, alpha, mode, None, gray, tuple(notes))


def _open_header_size(data: bytes) -> tuple[int, int] | None:
    """Image size from the header alone, bypassing Pillow's bomb check (for the message)."""
    if data[:8] == png16.PNG_SIGNATURE:
        try:
            hdr = png16.read_header(data)
            return hdr.width, hdr.height
        except png16.PngError:
            return None
    try:
        Image.init()
        fp = _io.BytesIO(data)
        for fmt in Image.ID:
            factory, accept = Image.OPEN[fmt]
            if accept is None or accept(data[:16]):
                fp.seek(0)
                try:
                    return factory(fp, "").size
                except Exception:
                    continue
    except Exception:
        return None
    return None


def _load_png16(data: bytes, max_pixels: int, label: str) -> LoadedImage:
    hdr = png16.read_header(data)
    _check_dims(hdr.width, hdr.height, max_pixels, label)
    dec = png16.decode(data, max_pixels=max_pixels)
    notes = list(dec.notes)
    rgb, alpha, gray, _ = _split_channels(dec.array)
    mode = {0: "I;16", 2: "RGB;16", 4: "LA;16", 6: "RGBA;16"}[dec.header.color_type]
    o = 1
    if dec.exif:
        try:
            exif = Image.Exif()
            exif.load(dec.exif)
            value = exif.get(_EXIF_ORIENTATION)
            o = value if isinstance(value, int) and 1 <= value <= 8 else 1
        except Exception:  # broken EXIF must not stop the image from loading
            o = 1
    if o != 1:
        rgb = _orient(rgb, o)
        alpha = None if alpha is None else _orient(alpha, o)
        notes.append("EXIF orientation applied")
    return LoadedImage(rgb, alpha, mode, "PNG", gray, tuple(notes))


def _decode_pil(im: Image.Image, max_pixels: int, label: str, fmt: str | None) -> LoadedImage:
    notes: list[str] = []
    w, h = im.size
    _check_dims(w, h, max_pixels, label)
    n_frames = getattr(im, "n_frames", 1)
    if isinstance(n_frames, int) and n_frames > 1:
        if getattr(im, "is_animated", False) and im.format not in ("TIFF", "MPO"):
            notes.append(f"animated image: first frame of {n_frames} used")
        else:
            notes.append(f"multi-image file: first image of {n_frames} used")
        im.seek(0)
    source_mode = im.mode
    for note in (_depth_loss_note(im), _icc_note(im)):  # tile list is gone after load()
        if note:
            notes.append(note)
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        notes.append("warning: Pillow's LOAD_TRUNCATED_IMAGES is switched on in this process, "
                     "so a truncated file may load with missing pixels")
    im.load()
    o = _orientation(im)
    rgb, alpha, gray = _from_pil(im, notes, label)
    if o != 1:
        rgb = _orient(rgb, o)
        alpha = None if alpha is None else _orient(alpha, o)
        notes.append("EXIF orientation applied")
    return LoadedImage(rgb, alpha, source_mode, fmt, gray, tuple(notes))


#: what Pillow plugins raise on malformed data
_CORRUPT_ERRORS = (OSError, SyntaxError, EOFError, ValueError, IndexError, KeyError, TypeError, struct.error, zlib.error)


def load_image(
    src: str | os.PathLike | bytes | BinaryIO | Image.Image | np.ndarray,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> LoadedImage:
    """Load an image from a path, bytes, binary stream, PIL image or numpy array.

    Raises :class:`ImageError` with a user-facing message for anything that cannot be
    read correctly (see the module docstring for the full table).
    """
    if isinstance(src, np.ndarray):
        return _from_array(src, max_pixels)

    if isinstance(src, Image.Image):
        try:
            with warnings.catch_warnings():
                _bomb_filter(max_pixels)
                return _decode_pil(src, max_pixels, "", src.format)
        except ImageError:
            raise
        except MemoryError:
            raise ImageError("not enough memory to decode this image") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageError(f"image is too large ({exc})") from None
        except _CORRUPT_ERRORS as exc:
            raise ImageError(f"image data is truncated or corrupt ({exc})") from None

    data, label = _read_source(src, max_bytes)
    if not data:
        raise ImageError(f"{label}file is empty")
    kind = _sniff(data)

    if _is_16bit_png(data):
        try:
            return _load_png16(data, max_pixels, label)
        except png16.PngError as exc:
            raise ImageError(f"{label}file is truncated or corrupt ({exc})") from None
        except MemoryError:
            raise ImageError(f"{label}not enough memory to decode this image") from None

    try:
        with warnings.catch_warnings():
            _bomb_filter(max_pixels)
            im = Image.open(_io.BytesIO(data))
            with im:
                return _decode_pil(im, max_pixels, label, im.format)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        size = _open_header_size(data)
        if size is not None:
            raise _too_many_pixels(size[0], size[1], min(max_pixels, _pil_limit()), label) from None
        raise ImageError(f"{label}image is too large (decompression bomb guard: {exc})") from None
    except UnidentifiedImageError:
        if kind in ("HEIC", "AVIF"):
            raise ImageError(f"{label}{kind} images are not supported here; convert it to PNG or JPEG") from None
        if kind is not None:
            raise ImageError(f"{label}file is truncated or corrupt (it starts like a {kind} file)") from None
        if _looks_like_text(data):
            raise ImageError(f"{label}not an image: the file contains text") from None
        raise ImageError(f"{label}not an image, or a format that is not supported") from None
    except MemoryError:
        raise ImageError(f"{label}not enough memory to decode this image") from None
    except _CORRUPT_ERRORS as exc:
        raise ImageError(f"{label}file is truncated or corrupt ({exc})") from None


def _pil_limit() -> int:
    lim = Image.MAX_IMAGE_PIXELS
    return 2 * lim if lim else 2**63


def _bomb_filter(max_pixels: int) -> None:
    """Inside warnings.catch_warnings(): Pillow's bomb warning becomes an error, unless
    the caller explicitly allowed more pixels than Pillow's warning threshold."""
    lim = Image.MAX_IMAGE_PIXELS
    if lim and max_pixels > lim:
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    else:
        warnings.simplefilter("error", Image.DecompressionBombWarning)


# --------------------------------------------------------------------------- saving
def _to_depth(a: np.ndarray, dtype, what: str) -> np.ndarray:
    """Convert uint8/uint16/float/bool arrays to ``dtype`` (uint8 or uint16)."""
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
            raise ImageError(
                f"{what} is float with values {float(a.min()):g}..{float(a.max()):g}; expected [0, 1]"
            )
        top = np.iinfo(dtype).max
        return np.rint(np.clip(a.astype(np.float64), 0.0, 1.0) * top).astype(dtype)
    raise ImageError(f"{what} has unsupported dtype {a.dtype} (uint8, uint16 or float in [0,1])")


def _luma(rgb: np.ndarray) -> np.ndarray:
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        return rgb[..., 0]
    f = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])  # ITU-R 601, as Pillow's "L"
    return np.rint(f).clip(0, np.iinfo(rgb.dtype).max).astype(rgb.dtype)


def save_image(path, rgb: np.ndarray, alpha: np.ndarray | None = None, *, grayscale: bool = False) -> Path:
    """Write a lossless PNG atomically and return its path.

    ``rgb``: ``H x W x 3`` (``H x W`` / ``H x W x 1`` grey and ``H x W x 4`` RGBA are
    accepted too) as uint8 (8-bit PNG), uint16 (16-bit PNG) or float in [0, 1]
    (8-bit PNG; small overshoot from a model is clipped, values far outside are an
    error).  ``alpha``: ``H x W``, converted to the dtype of ``rgb``.
    ``grayscale``: write a grey PNG (channels equal -> exact; else ITU-R 601 luma).
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ImageError(f"save_image writes PNG only; use a .png file name (got {path.name!r})")
    a = np.asarray(rgb)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageError(f"cannot save an array of shape {np.asarray(rgb).shape} (expected HxWx3)")
    if a.shape[2] == 4:
        if alpha is not None:
            raise ImageError("rgb has 4 channels and a separate alpha was given too")
        a, alpha = a[..., :3], a[..., 3]
    dtype = np.uint16 if a.dtype == np.uint16 else np.uint8
    a = _to_depth(a, dtype, "image")
    if a.shape[2] == 1:
        g = a[..., 0]
        grayscale = True
    else:
        g = _luma(a) if grayscale else None
    if alpha is not None:
        al = np.asarray(alpha)
        if al.ndim == 3 and al.shape[2] == 1:
            al = al[..., 0]
        if al.shape != a.shape[:2]:
            raise ImageError(f"alpha has shape {al.shape}, expected {a.shape[:2]}")
        al = _to_depth(al, dtype, "alpha")
    else:
        al = None
    planes = [g] if grayscale else [a[..., i] for i in range(3)]
    if al is not None:
        planes.append(al)
    out = np.ascontiguousarray(np.stack(planes, axis=2))

    if dtype == np.uint16:
        data = png16.encode(out)
    else:
        buf = _io.BytesIO()
        pil_in = out[..., 0] if out.shape[2] == 1 else out
        Image.fromarray(pil_in).save(buf, format="PNG")
        data = buf.getvalue()
    _atomic_write(path, data)
    return path


def _atomic_write(path: Path, data: bytes) -> None:
    try:
        atomic.write_bytes(path, data)
    except OSError as exc:
        raise ImageError(f"cannot write {path} ({exc.strerror or exc})") from None


def to_pil(img: LoadedImage | np.ndarray, alpha: np.ndarray | None = None) -> Image.Image:
    """8-bit RGB or RGBA PIL image for display (16-bit is scaled down, display only)."""
    if isinstance(img, LoadedImage):
        rgb, alpha = img.rgb, img.alpha
    else:
        rgb = np.asarray(img)
        if rgb.ndim == 2:
            rgb = _gray(rgb)
        elif rgb.ndim == 3 and rgb.shape[2] == 1:
            rgb = _gray(rgb[..., 0])
        elif rgb.ndim == 3 and rgb.shape[2] == 4 and alpha is None:
            rgb, alpha = rgb[..., :3], rgb[..., 3]
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ImageError(f"cannot display an array of shape {np.asarray(img).shape}")
    rgb8 = _to_depth(rgb, np.uint8, "image")
    if alpha is None:
        return Image.fromarray(np.ascontiguousarray(rgb8))
    a8 = _to_depth(np.asarray(alpha), np.uint8, "alpha")
    return Image.fromarray(np.ascontiguousarray(np.dstack([rgb8, a8])))
