"""Minimal, dependency-free PNG codec for 8- and 16-bit truecolour/greyscale images.

Why this exists: Pillow opens 16-bit colour PNGs (RGB, RGBA, grey+alpha) as 8-bit
modes and silently drops the low byte, and it cannot *write* them at all.  This
module fills exactly that gap with numpy + zlib + struct:

* :func:`read_header` parses the IHDR chunk only (no decoding, no allocation), so
  callers can refuse oversized images before touching the pixel data.
* :func:`decode` inflates the IDAT stream (bounded by the size announced in the
  header) and reverses the five PNG filters (None, Sub, Up, Average, Paeth) in
  numpy, including Adam7 interlacing and ``tRNS`` colour keys.
* :func:`encode` / :func:`write` produce standard, non-interlaced PNGs with an
  adaptive per-row filter choice (the usual minimum-sum-of-absolute-differences
  heuristic) and verified-correct CRCs.

Supported: bit depth 8 or 16, colour types 0 (grey), 2 (RGB), 4 (grey+alpha),
6 (RGBA).  Palette images and bit depths 1/2/4 are left to Pillow, which handles
them correctly.  Arrays are returned as ``H x W x C`` (C = 1..4) in ``uint8`` or
native-endian ``uint16``.  Every malformed input raises :class:`PngError`.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from os import PathLike
from typing import BinaryIO, NamedTuple

import numpy as np

__all__ = ["PngError", "PngHeader", "DecodedPng", "PNG_SIGNATURE", "read_header", "decode", "encode", "write"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: colour type -> number of channels (only the types this module handles)
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}
#: Adam7 passes: (x start, y start, x step, y step)
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_CRITICAL = {b"IHDR", b"PLTE", b"IDAT", b"IEND"}

#: Filter reversal in numpy needs about ``height + width`` sequential steps (rows for
#: None/Sub/Up, anti-diagonals for Average/Paeth); each step is vectorised.  That is
#: fast for ordinary shapes but would take minutes for a 40-pixel-high, million-wide
#: strip.  Above this many steps the (already inflated-size-checked) data is handed to
#: Pillow's C PNG unfilter instead, reading the high and low bytes of each 16-bit
#: sample in two passes (see ``_unfilter_with_pillow``); both paths are tested equal.
WAVEFRONT_MAX_STEPS = 50_000


class PngError(ValueError):
    """The data is not a PNG this module can decode (truncated, corrupt or unsupported)."""


@dataclass(frozen=True)
class PngHeader:
    width: int
    height: int
    bit_depth: int
    color_type: int
    interlace: int

    @property
    def channels(self) -> int:
        """Channels of the stored samples (palette counts as 1)."""
        return {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[self.color_type]

    @property
    def supported(self) -> bool:
        """True when :func:`decode` can decode this PNG."""
        return self.bit_depth in (8, 16) and self.color_type in _CHANNELS


class DecodedPng(NamedTuple):
    array: np.ndarray  #: H x W x C, uint8 or native uint16
    header: PngHeader
    notes: tuple[str, ...]  #: e.g. "animated PNG: first frame used"
    exif: bytes | None  #: body of the eXIf chunk (a TIFF structure), if any


# --------------------------------------------------------------------------- reading
def read_header(data: bytes) -> PngHeader:
    """Parse signature + IHDR only.  Raises PngError if ``data`` is not a PNG."""
    if len(data) < 8 or data[:8] != PNG_SIGNATURE:
        raise PngError("not a PNG file")
    if len(data) < 33:
        raise PngError("PNG file is truncated (incomplete header)")
    length, ctype = struct.unpack(">I4s", data[8:16])
    if ctype != b"IHDR" or length != 13:
        raise PngError("corrupt PNG: first chunk is not a valid IHDR")
    body = data[16:29]
    (crc,) = struct.unpack(">I", data[29:33])
    if zlib.crc32(b"IHDR" + body) != crc:
        raise PngError("corrupt PNG: IHDR checksum mismatch")
    w, h, depth, ctype_, comp, filt, inter = struct.unpack(">IIBBBBB", body)
    if w == 0 or h == 0 or w > 2**31 - 1 or h > 2**31 - 1:
        raise PngError(f"corrupt PNG: invalid size {w}x{h}")
    valid_depths = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
    if ctype_ not in valid_depths or depth not in valid_depths[ctype_]:
        raise PngError(f"corrupt PNG: invalid colour type {ctype_} / bit depth {depth}")
    if comp != 0 or filt != 0 or inter not in (0, 1):
        raise PngError("corrupt PNG: unknown compression, filter or interlace method")
    return PngHeader(w, h, depth, ctype_, inter)


def _chunks(data: bytes):
    """Yield (type, body) for every chunk after the signature; checks framing and CRCs."""
    pos, n = 8, len(data)
    while True:
        if pos + 8 > n:
            raise PngError("PNG file is truncated (missing IEND)")
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if length > 2**31 - 1 or end > n:
            raise PngError("PNG file is truncated (chunk runs past the end of the file)")
        body = data[pos + 8 : pos + 8 + length]
        if ctype in _CRITICAL:
            (crc,) = struct.unpack(">I", data[pos + 8 + length : end])
            if zlib.crc32(ctype + body) != crc:
                raise PngError(f"corrupt PNG: {ctype.decode('latin-1')} checksum mismatch")
        yield ctype, body
        if ctype == b"IEND":
            return
        pos = end


def _pass_sizes(hdr: PngHeader):
    if hdr.interlace == 0:
        return [(0, 0, 1, 1, hdr.width, hdr.height)]
    out = []
    for xs, ys, dx, dy in _ADAM7:
        pw = (hdr.width - xs + dx - 1) // dx if hdr.width > xs else 0
        ph = (hdr.height - ys + dy - 1) // dy if hdr.height > ys else 0
        out.append((xs, ys, dx, dy, pw, ph))
    return out


def _unfilter(raw: np.ndarray, h: int, ncols: int, bpp: int) -> np.ndarray:
    """Reverse PNG filtering.

    ``raw``: uint8 array of ``h * (1 + ncols * bpp)`` bytes (a filter-type byte then
    the row).  Returns an ``(h, ncols, bpp)`` uint8 array of reconstructed bytes.
    ``bpp`` is the number of bytes per complete pixel (the filter unit).
    """
    rows = raw.reshape(h, 1 + ncols * bpp)
    ftypes = rows[:, 0].astype(np.int8)
    if ftypes.size and (ftypes.min() < 0 or ftypes.max() > 4):
        raise PngError("corrupt PNG: invalid filter type")
    data = rows[:, 1:].reshape(h, ncols, bpp)

    if not np.any(ftypes >= 3):
        # None / Sub / Up only: no pixel depends on a left neighbour through a
        # non-linear predictor, so each row is one vectorised operation.
        out = np.empty((h, ncols, bpp), np.uint8)
        prev = np.zeros((ncols, bpp), np.uint8)
        for y in range(h):
            t = ftypes[y]
            if t == 0:
                out[y] = data[y]
            elif t == 1:  # Sub: running sum along the row, modulo 256
                np.cumsum(data[y], axis=0, dtype=np.uint8, out=out[y])
            else:  # Up
                np.add(data[y], prev, out=out[y])
            prev = out[y]
        return out

    # General case (Average / Paeth present): every pixel depends on its left, upper
    # and upper-left neighbours, so pixels on one anti-diagonal (x + y = d) are
    # independent of each other.  In a zero-padded (h+1, ncols+1) grid stored flat,
    # an anti-diagonal is a strided slice with step ``ncols``: no fancy indexing.
    w1 = ncols + 1
    grid = np.zeros(((h + 1) * w1, bpp), np.uint8)
    rawp = np.zeros(((h + 1) * w1, bpp), np.uint8)
    rawp.reshape(h + 1, w1, bpp)[1:, 1:] = data
    ft = ftypes
    for d in range(h + ncols - 1):
        y0 = max(0, d - ncols + 1)
        y1 = min(h - 1, d)
        start = (y0 + 1) * w1 + (d - y0 + 1)
        stop = (y1 + 1) * w1 + (d - y1 + 1) + 1
        step = ncols if ncols > 0 else 1
        a = grid[start - 1 : stop - 1 : step].astype(np.int16)  # left
        b = grid[start - w1 : stop - w1 : step].astype(np.int16)  # up
        c = grid[start - w1 - 1 : stop - w1 - 1 : step].astype(np.int16)  # up-left
        t = ft[y0 : y1 + 1, None]
        pa = np.abs(b - c)
        pb = np.abs(a - c)
        pc = np.abs(a + b - 2 * c)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        pred = np.select([t == 1, t == 2, t == 3, t == 4], [a, b, (a + b) >> 1, paeth], 0)
        grid[start:stop:step] = (rawp[start:stop:step] + pred) & 0xFF
    return grid.reshape(h + 1, w1, bpp)[1:, 1:]


def _unfilter_with_pillow(zdata: bytes, hdr: PngHeader, bpp: int) -> np.ndarray:
    """Reverse filtering (and Adam7) with Pillow's C ``zip`` decoder, for very elongated
    images.  Returns ``(h, w, bpp)`` uint8 bytes, exactly as :func:`_unfilter` would."""
    from PIL import Image  # only needed on this path

    size, inter = (hdr.width, hdr.height), hdr.interlace
    try:
        if bpp in (1, 2, 3, 4):  # 8-bit modes with the same pixel stride return raw bytes
            mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[bpp]
            out = np.asarray(Image.frombytes(mode, size, zdata, "zip", mode, inter))
            return out.reshape(hdr.height, hdr.width, bpp)
        # 6 or 8 bytes per pixel (16-bit RGB/RGBA): Pillow's unpackers keep one byte
        # per sample, so decode twice: ";16B" keeps the high byte, ";16L" the low one.
        mode = {6: "RGB", 8: "RGBA"}[bpp]
        hi = np.asarray(Image.frombytes(mode, size, zdata, "zip", mode + ";16B", inter))
        lo = np.asarray(Image.frombytes(mode, size, zdata, "zip", mode + ";16L", inter))
    except (ValueError, OSError) as exc:
        raise PngError(f"PNG file is truncated or corrupt ({exc})") from None
    out = np.empty((hdr.height, hdr.width, bpp), np.uint8)
    out[..., 0::2] = hi
    out[..., 1::2] = lo
    return out


def decode(data: bytes, *, max_pixels: int | None = None) -> DecodedPng:
    """Decode an 8/16-bit grey/RGB/grey+alpha/RGBA PNG.

    Returns a :class:`DecodedPng`; its ``array`` is ``H x W x C`` (``C`` = 1, 2, 3
    or 4; a ``tRNS`` colour key becomes an extra alpha channel), ``uint8`` for bit
    depth 8, native ``uint16`` for 16.  ``max_pixels`` is checked from the header
    before anything is inflated.
    """
    hdr = read_header(data)
    if not hdr.supported:
        raise PngError(f"unsupported PNG layout (colour type {hdr.color_type}, bit depth {hdr.bit_depth})")
    if max_pixels is not None and hdr.width * hdr.height > max_pixels:
        raise PngError(f"PNG is {hdr.width}x{hdr.height}, over the limit of {max_pixels} pixels")
    notes: list[str] = []
    idat: list[bytes] = []
    trns: bytes | None = None
    exif: bytes | None = None
    seen_idat_end = False
    for ctype, body in _chunks(data):
        if ctype == b"IDAT":
            if seen_idat_end:
                raise PngError("corrupt PNG: IDAT chunks are not consecutive")
            idat.append(body)
        elif idat:
            seen_idat_end = True
        if ctype == b"tRNS":
            trns = body
        elif ctype == b"eXIf":
            exif = body
        elif ctype == b"acTL":
            notes.append("animated PNG: first frame used")
    if not idat:
        raise PngError("corrupt PNG: no image data")

    nch = _CHANNELS[hdr.color_type]
    bpp = nch * hdr.bit_depth // 8
    passes = _pass_sizes(hdr)
    expected = sum(ph * (1 + pw * bpp) for *_, pw, ph in passes if pw and ph)
    zdata = b"".join(idat)
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(zdata, expected)
    except zlib.error as exc:
        raise PngError(f"corrupt PNG: compressed data is damaged ({exc})") from None
    if len(raw) < expected:
        raise PngError("PNG file is truncated (image data ends early)")

    steps = sum(pw + ph for *_, pw, ph in passes if pw and ph)
    if steps > WAVEFRONT_MAX_STEPS:
        del raw
        out = _unfilter_with_pillow(zdata, hdr, bpp)
    else:
        buf = np.frombuffer(raw, np.uint8)
        out = np.empty((hdr.height, hdr.width, bpp), np.uint8)
        pos = 0
        for xs, ys, dx, dy, pw, ph in passes:
            if not (pw and ph):
                continue
            n = ph * (1 + pw * bpp)
            out[ys::dy, xs::dx] = _unfilter(buf[pos : pos + n], ph, pw, bpp)
            pos += n

    if hdr.bit_depth == 16:
        arr = out.view(">u2").reshape(hdr.height, hdr.width, nch).astype(np.uint16)
    else:
        arr = out.reshape(hdr.height, hdr.width, nch)

    if trns is not None and hdr.color_type in (0, 2):
        need = 2 * nch
        if len(trns) >= need:
            key = np.array(struct.unpack(f">{nch}H", trns[:need]), np.uint16)
            if hdr.bit_depth == 8:
                key = key & 0xFF
            opaque = np.iinfo(arr.dtype).max
            match = np.all(arr == key.astype(arr.dtype), axis=2)
            alpha = np.where(match, 0, opaque).astype(arr.dtype)
            arr = np.concatenate([arr, alpha[..., None]], axis=2)
            notes.append("transparent colour key (tRNS) converted to alpha")
    return DecodedPng(arr, hdr, tuple(notes), exif)


# --------------------------------------------------------------------------- writing
def _chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def _filter_rows(rows: np.ndarray, prev: np.ndarray, bpp: int, filter_type: int | None) -> np.ndarray:
    """Filter a block of rows.  ``rows``: (n, rowbytes) uint8; ``prev``: the row above
    the block (zeros for the first).  Returns (n, 1 + rowbytes) uint8."""
    x = rows.astype(np.int16)
    up = np.empty_like(x)
    up[0] = prev
    up[1:] = x[:-1]
    left = np.zeros_like(x)
    left[:, bpp:] = x[:, :-bpp]
    upleft = np.zeros_like(x)
    upleft[:, bpp:] = up[:, :-bpp]
    pa = np.abs(up - upleft)  # |p - a| with p = a + b - c
    pb = np.abs(left - upleft)  # |p - b|
    pc = np.abs(left + up - 2 * upleft)  # |p - c|
    paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
    del pa, pb, pc
    preds = (None, left, up, (left + up) >> 1, paeth)
    if filter_type is None:
        # minimum sum of absolute residuals, bytes read as signed (the libpng heuristic)
        cands = []
        costs = np.empty((5, x.shape[0]), np.int64)
        for k, pred in enumerate(preds):
            r = x if pred is None else (x - pred) & 0xFF
            cands.append(r)
            costs[k] = np.minimum(r, 256 - r).sum(axis=1)
        choice = costs.argmin(axis=0)
        filtered = np.empty_like(x)
        for k in range(5):
            sel = choice == k
            if sel.any():
                filtered[sel] = cands[k][sel]
    else:
        choice = np.full(x.shape[0], filter_type)
        pred = preds[filter_type]
        filtered = x if pred is None else (x - pred) & 0xFF
    out = np.empty((x.shape[0], 1 + x.shape[1]), np.uint8)
    out[:, 0] = choice
    out[:, 1:] = filtered
    return out


def encode(arr: np.ndarray, *, compress_level: int = 6, filter_type: int | None = None) -> bytes:
    """Encode ``H x W`` or ``H x W x C`` (C = 1..4) ``uint8``/``uint16`` as a PNG.

    C = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA.  ``filter_type`` None chooses a filter
    per row adaptively; 0..4 forces one filter (for tests).
    """
    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4) or a.shape[0] == 0 or a.shape[1] == 0:
        raise PngError(f"cannot encode an array of shape {np.asarray(arr).shape} as PNG")
    if a.dtype == np.uint8:
        depth = 8
        raw = np.ascontiguousarray(a)
    elif a.dtype == np.uint16:
        depth = 16
        raw = np.ascontiguousarray(a.astype(">u2"))
    else:
        raise PngError(f"cannot encode dtype {a.dtype} as PNG (uint8 or uint16 expected)")
    if filter_type is not None and filter_type not in range(5):
        raise ValueError("filter_type must be None or 0..4")
    h, w, c = a.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    bpp = c * depth // 8
    rows = raw.view(np.uint8).reshape(h, w * bpp)

    comp = zlib.compressobj(compress_level)
    parts = []
    block = max(1, (1 << 22) // max(1, w * bpp))  # ~4 MiB of raw bytes per block
    prev = np.zeros(w * bpp, np.uint8)
    for y in range(0, h, block):
        chunk = rows[y : y + block]
        parts.append(comp.compress(_filter_rows(chunk, prev, bpp, filter_type).tobytes()))
        prev = chunk[-1]
    parts.append(comp.flush())
    zdata = b"".join(parts)

    out = [PNG_SIGNATURE, _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0))]
    step = 1 << 20
    for i in range(0, len(zdata), step):
        out.append(_chunk(b"IDAT", zdata[i : i + step]))
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)


def write(dst: str | PathLike | BinaryIO, arr: np.ndarray, *, compress_level: int = 6) -> None:
    """Encode ``arr`` (see :func:`encode`) and write it to a path or binary file object."""
    data = encode(arr, compress_level=compress_level)
    if hasattr(dst, "write"):
        dst.write(data)
    else:
        with open(dst, "wb") as fh:
            fh.write(data)
