"""Where :func:`lcoan.imaging.io.load_image` gets its bytes and what they claim to be: paths, bytes and
binary streams read with a byte limit, format sniffing for error messages, and the image size
from a header alone (for the decompression-bomb message)."""
from __future__ import annotations

import io as _io
import os
from pathlib import Path

from PIL import Image

from .pixels import ImageError


def pillow_formats(data: bytes) -> list[str]:
    """Formats whose Pillow plugin accepts these first bytes (Pillow's own signature checks)."""
    Image.init()
    head = data[:16]
    found = []
    for fmt in Image.ID:
        accept = Image.OPEN[fmt][1]
        try:
            if accept is not None and accept(head):
                found.append(fmt)
        except Exception:  # noqa: BLE001 - some plugins' checks unpack more bytes than a tiny file has
            continue
    return found


def _sniff(data: bytes) -> str | None:
    """The format the bytes claim to be, for error messages (HEIC has no Pillow plugin here)."""
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
        return "HEIC"
    formats = pillow_formats(data)
    return formats[0] if formats else None


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


def _read_path(src: str | os.PathLike, max_bytes: int) -> tuple[bytes, str]:
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


def read_source(src, max_bytes: int) -> tuple[bytes, str]:
    """Return (data, label) for path / bytes / file-like sources, enforcing max_bytes."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
        if len(data) > max_bytes:
            raise ImageError(f"file is {len(data):,} bytes, over the limit of {max_bytes:,} bytes")
        return data, ""
    if isinstance(src, (str, os.PathLike)):
        return _read_path(src, max_bytes)
    if hasattr(src, "read"):
        name = getattr(src, "name", None)
        label = f"{os.path.basename(name)}: " if isinstance(name, str) and name else ""
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


def open_header_size(data: bytes) -> tuple[int, int] | None:
    """Image size from the header alone, bypassing Pillow's bomb check (for the message)."""
    fp = _io.BytesIO(data)
    for fmt in pillow_formats(data):
        fp.seek(0)
        try:
            return Image.OPEN[fmt][0](fp, "").size
        except Exception:
            continue
    return None


def unidentified(data: bytes, label: str) -> ImageError:
    """The message for bytes no Pillow plugin could open."""
    kind = _sniff(data)
    if kind in ("HEIC", "AVIF"):
        return ImageError(f"{label}{kind} images are not supported here; convert it to PNG or JPEG")
    if kind is not None:
        return ImageError(f"{label}file is truncated or corrupt (it starts like a {kind} file)")
    if _looks_like_text(data):
        return ImageError(f"{label}not an image: the file contains text")
    return ImageError(f"{label}not an image, or a format that is not supported")
