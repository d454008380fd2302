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
                             (libpng via ``imagecodecs``: Pillow
                             drops the low byte of 16-bit colour);
                             tRNS key -> alpha; eXIf orientation
                             applied (eXIf before the image data)
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
PNG (grey, grey+alpha, RGB, RGBA via ``imagecodecs.png_encode``, i.e. libpng), float in [0,1] -> 8-bit.
``save_image`` followed by ``load_image`` returns identical arrays.  :func:`to_uint8` is the one
16 -> 8-bit conversion (round to nearest) for 8-bit consumers (training data, metrics, display).

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

import imagecodecs
import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from . import atomic
from .pixels import (
    ImageError,
    from_array,
    from_pil,
    gray3,
    luma,
    orient,
    split_channels,
    to_depth,
    to_uint8,
)
from .source import open_header_size, read_source, unidentified

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "ImageError",
    "LoadedImage",
    "load_image",
    "save_image",
    "to_pil",
    "to_uint8",
]

#: Largest accepted image, in pixels (width x height), checked before decoding.
DEFAULT_MAX_PIXELS = 40_000_000
#: Largest accepted file, in bytes.
DEFAULT_MAX_BYTES = 100 * 1024 * 1024

_EXIF_ORIENTATION = 0x0112
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: IHDR colour type of a 16-bit PNG -> the name used for ``source_mode`` (Pillow has none for colour)
_PNG16_MODES = {0: "I;16", 2: "RGB;16", 4: "LA;16", 6: "RGBA;16"}


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


# --------------------------------------------------------------------------- limits and sources
def _pixels(n: int) -> str:
    return f"{n / 1e6:.1f} MP ({n:,} pixels)" if n >= 100_000 else f"{n:,} pixels"


def _too_many_pixels(w: int, h: int, max_pixels: int, where: str) -> ImageError:
    return ImageError(
        f"{where}image is {w}x{h} = {_pixels(w * h)}, over the limit of {_pixels(max_pixels)} that can be read "
        "at all (a downscale option that works after reading, like the app's 'Downscale first', cannot help); "
        "shrink it below the limit with an image editor before loading it"
    )


def _check_dims(w: int, h: int, max_pixels: int, where: str) -> None:
    if w <= 0 or h <= 0:
        raise ImageError(f"{where}image has no pixels ({w}x{h})")
    if w * h > max_pixels:
        raise _too_many_pixels(w, h, max_pixels, where)


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


# --------------------------------------------------------------------------- notes
def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_EXIF_ORIENTATION)
    except Exception:  # broken EXIF must not stop the image from loading
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


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


# --------------------------------------------------------------------------- decoding
def _from_array(arr: np.ndarray, max_pixels: int) -> LoadedImage:
    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[..., None]
    elif not (a.ndim == 3 and a.shape[2] in (1, 2, 3, 4)):
        raise ImageError(f"array of shape {a.shape} is not an image (expected HxW or HxWx1/2/3/4)")
    _check_dims(a.shape[1], a.shape[0], max_pixels, "")
    notes: list[str] = []
    rgb, alpha, gray, layout = from_array(a, notes)
    return LoadedImage(rgb, alpha, layout, None, gray, tuple(notes))


def _is_16bit_png(data: bytes | None) -> bool:
    """IHDR bit depth 16: Pillow would keep only the high byte of colour samples, so libpng decodes."""
    return data is not None and data[:8] == _PNG_SIGNATURE and len(data) >= 26 and data[24] == 16


def _decode_pil(im: Image.Image, max_pixels: int, label: str, data: bytes | None = None) -> LoadedImage:
    """Check the size, then decode ``im`` (16-bit PNG pixels from ``data`` through libpng)."""
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
    if _is_16bit_png(data):
        source_mode = _PNG16_MODES.get(data[25], im.mode)
        if "transparency" in im.info:  # libpng expands the colour key to an alpha channel
            notes.append("transparent colour key (tRNS) converted to alpha")
        o = _orientation(im) if "exif" in im.info else 1  # getexif() would otherwise decode the pixels
        rgb, alpha, gray, _ = split_channels(_png_decode(data))
    else:
        if ImageFile.LOAD_TRUNCATED_IMAGES:
            notes.append("warning: Pillow's LOAD_TRUNCATED_IMAGES is switched on in this process, "
                         "so a truncated file may load with missing pixels")
        im.load()
        o = _orientation(im)
        rgb, alpha, gray = from_pil(im, notes, label)
    if o != 1:
        rgb = orient(rgb, o)
        alpha = None if alpha is None else orient(alpha, o)
        notes.append("EXIF orientation applied")
    return LoadedImage(rgb, alpha, source_mode, im.format, gray, tuple(notes))


def _png_decode(data: bytes) -> np.ndarray:
    """PNG bytes -> ``H x W x C`` (C = 1..4) native-endian array, via libpng."""
    a = imagecodecs.png_decode(data)
    return a[..., None] if a.ndim == 2 else a


#: what Pillow plugins and libpng raise on malformed data
_CORRUPT_ERRORS = (OSError, SyntaxError, EOFError, ValueError, IndexError, KeyError, TypeError, struct.error,
                   zlib.error, imagecodecs.PngError)


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
        data, label = None, ""
    else:
        data, label = read_source(src, max_bytes)
        if not data:
            raise ImageError(f"{label}file is empty")
    try:
        with warnings.catch_warnings():
            _bomb_filter(max_pixels)
            if data is None:
                return _decode_pil(src, max_pixels, label)
            with Image.open(_io.BytesIO(data)) as im:
                return _decode_pil(im, max_pixels, label, data)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        size = None if data is None else open_header_size(data)
        if size is not None:
            raise _too_many_pixels(size[0], size[1], min(max_pixels, _pil_limit()), label) from None
        raise ImageError(f"{label}image is too large (decompression bomb guard: {exc})") from None
    except UnidentifiedImageError:
        raise unidentified(data or b"", label) from None
    except MemoryError:
        raise ImageError(f"{label}not enough memory to decode this image") from None
    except _CORRUPT_ERRORS as exc:
        raise ImageError(f"{label}file is truncated or corrupt ({exc})") from None


# --------------------------------------------------------------------------- saving
FAST_PNG_PIXELS = 4_000_000  # above this many pixels save_image uses zlib level 1 (a 60 MB PNG: ~20 s at 6)


def save_image(path, rgb: np.ndarray, alpha: np.ndarray | None = None, *, grayscale: bool = False) -> Path:
    """Write a lossless PNG atomically and return its path.

    Above :data:`FAST_PNG_PIXELS` pixels the PNG is compressed at zlib level 1 (several times faster
    than the default 6, a somewhat larger file, the same pixels).

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
    a = to_depth(a, dtype, "image")
    grayscale = grayscale or a.shape[2] == 1
    planes = [a[..., 0] if a.shape[2] == 1 else luma(a)] if grayscale else [a[..., i] for i in range(3)]
    if alpha is not None:
        al = np.asarray(alpha)
        if al.ndim == 3 and al.shape[2] == 1:
            al = al[..., 0]
        if al.shape != a.shape[:2]:
            raise ImageError(f"alpha has shape {al.shape}, expected {a.shape[:2]}")
        planes.append(to_depth(al, dtype, "alpha"))
    out = np.ascontiguousarray(np.stack(planes, axis=2))
    pixels = out[..., 0] if out.shape[2] == 1 else out
    fast = out.shape[0] * out.shape[1] > FAST_PNG_PIXELS
    if dtype == np.uint16:
        data = imagecodecs.png_encode(pixels, **({"level": 1} if fast else {}))
    else:
        buf = _io.BytesIO()
        Image.fromarray(pixels).save(buf, format="PNG", **({"compress_level": 1} if fast else {}))
        data = buf.getvalue()
    try:
        atomic.write_bytes(path, data)
    except OSError as exc:
        raise ImageError(f"cannot write {path} ({exc.strerror or exc})") from None
    return path


def to_pil(img: LoadedImage | np.ndarray, alpha: np.ndarray | None = None) -> Image.Image:
    """8-bit RGB or RGBA PIL image for display (16-bit is scaled down, display only)."""
    if isinstance(img, LoadedImage):
        rgb, alpha = img.rgb, img.alpha
    else:
        rgb = np.asarray(img)
        if rgb.ndim == 2:
            rgb = gray3(rgb)
        elif rgb.ndim == 3 and rgb.shape[2] == 1:
            rgb = gray3(rgb[..., 0])
        elif rgb.ndim == 3 and rgb.shape[2] == 4 and alpha is None:
            rgb, alpha = rgb[..., :3], rgb[..., 3]
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ImageError(f"cannot display an array of shape {np.asarray(img).shape}")
    rgb8 = to_depth(rgb, np.uint8, "image")
    if alpha is None:
        return Image.fromarray(np.ascontiguousarray(rgb8))
    a8 = to_depth(np.asarray(alpha), np.uint8, "alpha")
    return Image.fromarray(np.ascontiguousarray(np.dstack([rgb8, a8])))
