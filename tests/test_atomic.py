"""Atomic writes: all or nothing, no temporary file left, permissions as open() would give."""
from __future__ import annotations

import os

import pytest
import torch

from lcoan.checkpoint import atomic_save_tensors
from lcoan.imaging import atomic


def test_failed_write_leaves_the_target_and_no_temp_file(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic.write_bytes(tmp_path / "a.json", b"{}")
        atomic_save_tensors({"w": torch.zeros(2)}, tmp_path / "m.safetensors", {})  # safetensors itself writes 0o600
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "m.safetensors").stat().st_mode & 0o777 == 0o644
