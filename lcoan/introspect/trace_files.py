"""One file per traced forward pass: a zip of ``trace.safetensors`` (every tensor of the
:class:`~lcoan.introspect.trace.Trace`) and ``trace.json`` (everything else, plus free-form metadata).

Tensors are named ``patterns.<i>.<field>`` (codes, order: (R, N) int64; centroids: (R, K, D);
query, key: (N, D)) and ``groups.<g>.<field>`` (value, attention_out: (N, C); for the dense model
also query, key: (N, D)). The fields are read from the trace's dataclasses, so a new tensor field
travels without a format change. Load it back with three lines::

    from lcoan.introspect.trace_files import load_trace
    trace = load_trace("trace.zip")
    row = trace.attention_row(0, trace.position(10, 20))  # (N,) weights of one query

or without this library: ``zipfile.ZipFile(path).read("trace.safetensors")`` into
``safetensors.torch.load`` and ``json.loads`` of ``trace.json``.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch import Tensor

from .trace import GroupTrace, PatternTrace, Trace

FORMAT = "lcoan-trace"
VERSION = 1
TENSORS, SIDECAR = "trace.safetensors", "trace.json"
MAX_MEMBER_BYTES = 4 << 30  # refuse members that would unpack beyond 4 GiB


class TraceFileError(ValueError):
    """A file that is not a readable trace (clear, user-facing message)."""


def _split(item: Any, prefix: str, tensors: dict[str, Tensor]) -> dict[str, Any]:
    """A trace dataclass -> its JSON fields; its tensors go to ``tensors`` as ``prefix.<field>``."""
    plain: dict[str, Any] = {}
    for f in dataclasses.fields(item):
        value = getattr(item, f.name)
        if isinstance(value, Tensor):
            tensors[f"{prefix}.{f.name}"] = value.detach().cpu().contiguous()
        elif value is None or isinstance(value, (int, float, str, bool)):
            plain[f.name] = value
    return plain


def trace_bytes(trace: Trace, metadata: dict[str, Any] | None = None) -> bytes:
    """The zip file of ``trace`` as bytes (see the module docstring); ``metadata``: JSON-able extras."""
    tensors: dict[str, Tensor] = {}
    sidecar = {
        "format": FORMAT, "version": VERSION, "kind": trace.kind, "lr_size": list(trace.lr_size),
        "attn_res_scale": trace.attn_res_scale,
        "patterns": [_split(p, f"patterns.{i}", tensors) for i, p in enumerate(trace.patterns)],
        "groups": [_split(g, f"groups.{i}", tensors) for i, g in enumerate(trace.groups)],
        "tensors": {k: {"shape": list(v.shape), "dtype": str(v.dtype).removeprefix("torch.")}
                    for k, v in tensors.items()},
        "metadata": metadata or {},
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr(SIDECAR, json.dumps(sidecar, indent=1))
        z.writestr(TENSORS, save_tensors(tensors, metadata={"format": FORMAT, "version": str(VERSION)}))
    return buf.getvalue()


def save_trace(trace: Trace, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``trace`` to ``path`` (a .zip) and return the path."""
    path = Path(path)
    path.write_bytes(trace_bytes(trace, metadata))
    return path


def _build(cls: type, plain: dict[str, Any], prefix: str, tensors: dict[str, Tensor]) -> Any:
    kwargs = dict(plain)
    for f in dataclasses.fields(cls):
        name = f"{prefix}.{f.name}"
        if name in tensors:
            kwargs[f.name] = tensors[name]
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise TraceFileError(f"{prefix} does not describe a {cls.__name__}: {exc}") from None


def read_trace(source: str | os.PathLike | bytes) -> tuple[Trace, dict[str, Any]]:
    """A trace file (path or bytes) -> (Trace, its metadata dict). Raises TraceFileError."""
    try:
        z = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else Path(source))
    except (zipfile.BadZipFile, OSError) as exc:
        raise TraceFileError(f"not a trace file (a zip of {SIDECAR} and {TENSORS}): {exc}") from None
    with z:
        names = {i.filename: i for i in z.infolist()}
        for member in (SIDECAR, TENSORS):
            if member not in names:
                raise TraceFileError(f"not a trace file: {member} is missing")
            if names[member].file_size > MAX_MEMBER_BYTES:
                raise TraceFileError(f"{member} would unpack to {names[member].file_size:,} bytes; refused")
        try:
            sidecar = json.loads(z.read(SIDECAR))
            tensors = load_tensors(z.read(TENSORS))
        except (json.JSONDecodeError, UnicodeDecodeError, SafetensorError, zipfile.BadZipFile) as exc:
            raise TraceFileError(f"unreadable trace file: {exc}") from None
    if not isinstance(sidecar, dict) or sidecar.get("format") != FORMAT:
        raise TraceFileError(f"{SIDECAR} is not an {FORMAT} sidecar")
    if sidecar.get("version") != VERSION:
        raise TraceFileError(f"trace format version {sidecar.get('version')!r}; this library reads {VERSION}")
    try:
        trace = Trace(kind=str(sidecar["kind"]), lr_size=tuple(int(v) for v in sidecar["lr_size"]),
                      attn_res_scale=float(sidecar["attn_res_scale"]))
        for i, p in enumerate(sidecar["patterns"]):
            trace.patterns.append(_build(PatternTrace, p, f"patterns.{i}", tensors))
        for i, g in enumerate(sidecar["groups"]):
            trace.groups.append(_build(GroupTrace, g, f"groups.{i}", tensors))
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, TraceFileError):
            raise
        raise TraceFileError(f"{SIDECAR} is incomplete: {exc!r}") from None
    return trace, sidecar.get("metadata") or {}


def load_trace(source: str | os.PathLike | bytes) -> Trace:
    """The :class:`Trace` stored in a trace file (path or bytes)."""
    return read_trace(source)[0]


__all__ = ["save_trace", "load_trace", "read_trace", "trace_bytes", "TraceFileError", "FORMAT", "VERSION"]
