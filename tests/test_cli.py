"""Issue 8, command-line half: the table of awkward inputs through the real CLIs.

``lcoan.infer`` is called through ``main([...])`` with stderr captured (same code path as
``python -m lcoan.infer``; two cases also run as real subprocesses). Every unusable input must
give exit code 2 and ONE line ``error: ...`` naming the file and the problem, never a traceback;
every usable one exit code 0 and a PNG of the right size, with a tiny random checkpoint
(``--checkpoint``, x2) and with ``--bicubic --scale 3``. Inputs are generated with the helpers of
tests/test_io.py (PIL / numpy / zlib; nothing downloaded).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

import lcoan
from lcoan import evaluate, infer
from lcoan.imaging.io import load_image

from .conftest import ROOT
from .test_io import _cmyk_jpeg, _gif, _webp_anim, bomb_png, jpeg_with_orientation, pil_bytes, png16, rand, smooth

MODEL_SCALE = 2  # the tiny checkpoint
BICUBIC_SCALE = 3
METHODS = ["checkpoint", "bicubic"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ckpt") / "tiny-x2"
    torch.manual_seed(0)
    lcoan.save(lcoan.create_model(lcoan.preset("tiny", scale=MODEL_SCALE)), folder)
    return folder


def method_args(method: str, ckpt: Path) -> list[str]:
    return ["--checkpoint", str(ckpt)] if method == "checkpoint" else ["--bicubic", "--scale", str(BICUBIC_SCALE)]


def scale_of(method: str) -> int:
    return MODEL_SCALE if method == "checkpoint" else BICUBIC_SCALE


def run_infer(capsys, *args) -> tuple[int, str, str]:
    rc = infer.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc: int, err: str, *needles: str) -> str:
    assert rc == 2, err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def box_down(a: np.ndarray, s: int) -> np.ndarray:
    """Mean over s x s blocks (undoes an upscale well enough for coarse content checks)."""
    h, w = a.shape[0] // s, a.shape[1] // s
    a = a[: h * s, : w * s].astype(np.float64)
    return a.reshape(h, s, w, s, *a.shape[2:]).mean(axis=(1, 3))


def write(folder: Path, name: str, data: bytes) -> Path:
    p = folder / name
    p.write_bytes(data)
    return p


# ----------------------------------------------------------------------------- unusable inputs
def _directory(d: Path) -> Path:
    p = d / "folder.png"
    p.mkdir(exist_ok=True)
    return p


def _truncated_png(d: Path) -> Path:
    data = pil_bytes(Image.fromarray(rand((64, 64, 3))), "PNG")
    return write(d, "cut.png", data[: len(data) // 2])


def _truncated_jpeg(d: Path) -> Path:
    data = pil_bytes(Image.fromarray(rand((64, 64, 3))), "JPEG", quality=90)
    return write(d, "cut.jpg", data[: len(data) * 2 // 3])


# id -> (make(folder) -> path, words the message must contain)
BAD = {
    "empty_file": (lambda d: write(d, "empty.png", b""), "file is empty"),
    "random_bytes": (lambda d: write(d, "noise.png", rand((4096,)).tobytes()), "not an image"),
    "text_renamed_png": (lambda d: write(d, "notes.png", b"Shopping list\n- milk\n- bread\n" * 20),
                         "not an image: the file contains text"),
    "truncated_png": (_truncated_png, "truncated or corrupt"),
    "truncated_jpeg": (_truncated_jpeg, "truncated or corrupt"),
    "bomb_png_40000x40000": (lambda d: write(d, "bomb.png", bomb_png(40000, 40000)), "40000x40000", "over the limit"),
    "missing_file": (lambda d: d / "missing.png", "file not found"),
    "directory": (_directory, "is a directory"),
}


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    return {key: make(d) for key, (make, *_) in BAD.items()}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", list(BAD))
def test_infer_refuses_bad_input(case, method, bad_inputs, ckpt, tmp_path, capsys):
    src = bad_inputs[case]
    out = tmp_path / "out" / "result.png"
    rc, _, err = run_infer(capsys, src, "-o", out, *method_args(method, ckpt))
    assert_one_line_error(rc, err, src.name, *BAD[case][1:])
    assert not out.exists()


@pytest.mark.parametrize("args, needle", [
    (["-o", "{tmp}/out.jpg", "--checkpoint", "{ck}"], "output must be a .png file"),
    (["-o", "{tmp}/out.png", "--bicubic"], "--bicubic needs --scale"),
    (["-o", "{tmp}/out.png", "--checkpoint", "{tmp}/no-such-checkpoint"], "checkpoint folder not found"),
], ids=["output_not_png", "bicubic_without_scale", "missing_checkpoint"])
def test_infer_refuses_bad_arguments(args, needle, ckpt, tmp_path, capsys):
    src = tmp_path / "ok.png"
    Image.fromarray(smooth(8, 8)).save(src)
    rc, _, err = run_infer(capsys, src, *[a.format(tmp=tmp_path, ck=ckpt) for a in args])
    assert_one_line_error(rc, err, needle)


# ----------------------------------------------------------------------------- usable inputs
RAMP16 = (np.mgrid[0:16, 0:24].sum(axis=0) * 1499 + 4321).astype(np.uint16)  # 16x24, low bytes vary
RGB16 = np.stack([RAMP16, RAMP16[::-1], RAMP16[:, ::-1]], axis=2)
ALPHA = np.tile(np.linspace(0, 255, 20).astype(np.uint8), (12, 1))  # 20x12, transparent -> opaque


def _rgba(d):
    return write(d, "rgba.png", pil_bytes(Image.fromarray(np.dstack([smooth(12, 20), ALPHA])), "PNG"))


def _la(d):
    return write(d, "la.png", pil_bytes(Image.fromarray(np.dstack([smooth(12, 20, 1)[..., 0], ALPHA]), "LA"), "PNG"))


def _palette(d):
    im = Image.fromarray(smooth(12, 20)).quantize(colors=8)
    return write(d, "palette.png", pil_bytes(im, "PNG"))


def _check_rgba(out, ref, method, err):
    s = scale_of(method)
    assert out.alpha is not None and out.alpha.dtype == np.uint8 and not out.grayscale
    # alpha is upscaled (bicubic, in both methods) and kept: block means match the source alpha
    assert np.abs(box_down(out.alpha, s) - ALPHA).mean() < 3


def _check_la(out, ref, method, err):
    s = scale_of(method)
    assert out.grayscale and out.alpha is not None
    assert np.abs(box_down(out.alpha, s) - ALPHA).mean() < 3


def _check_16(out, ref, method, err):
    assert out.bit_depth == 16 and out.rgb.dtype == np.uint16
    assert out.rgb.max() > 255  # not squeezed into 0..255
    assert (out.rgb % 257 != 0).mean() > 0.5  # low byte carries information: not 8-bit scaled up
    if method == "bicubic":  # a smooth ramp survives at 16-bit precision (an 8-bit step is 257)
        err16 = np.abs(box_down(out.rgb, BICUBIC_SCALE)[1:-1, 1:-1] - ref.rgb[1:-1, 1:-1]).mean()
        assert err16 < 257 / 4, err16


def _check_gray16(out, ref, method, err):
    _check_16(out, ref, method, err)
    assert out.grayscale


def _check_bicubic_close(tol):
    def check(out, ref, method, err):
        if method == "bicubic":  # a random network draws anything; bicubic must keep the content
            diff = np.abs(box_down(out.rgb, BICUBIC_SCALE) - ref.rgb.astype(np.float64)).mean()
            assert diff < tol, diff
    return check


def _note(words, then=None):
    def check(out, ref, method, err):
        assert "note: " in err and words in err, err
        if then:
            then(out, ref, method, err)
    return check


def _exif_reference(src: Path) -> np.ndarray:
    with Image.open(src) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


def _check_exif(out, ref, method, err):
    assert "EXIF orientation applied" in err
    if method == "bicubic":  # content as a viewer shows it, not merely the swapped size
        viewer = _exif_reference(ref.path)
        assert np.abs(box_down(out.rgb, BICUBIC_SCALE) - viewer).mean() < 6


# id -> (make(folder) -> path, displayed (width, height), extra check(out, ref, method, stderr))
GOOD = {
    "1x1": (lambda d: write(d, "one.png", pil_bytes(Image.fromarray(rand((1, 1, 3))), "PNG")), (1, 1), None),
    "7x5": (lambda d: write(d, "small.png", pil_bytes(Image.fromarray(rand((5, 7, 3))), "PNG")), (7, 5), None),
    "4000x40": (lambda d: write(d, "wide.png", pil_bytes(Image.fromarray(smooth(40, 4000)), "PNG")), (4000, 40),
                _check_bicubic_close(3)),
    "rgba": (_rgba, (20, 12), _check_rgba),
    "la": (_la, (20, 12), _check_la),
    "palette": (_palette, (20, 12), _note("palette expanded", _check_bicubic_close(6))),
    "png16_gray": (lambda d: write(d, "gray16.png", png16(RAMP16[..., None])), (24, 16), _check_gray16),
    "png16_rgb": (lambda d: write(d, "rgb16.png", png16(RGB16)), (24, 16), _check_16),
    "cmyk_jpeg": (lambda d: write(d, "cmyk.jpg", _cmyk_jpeg(d)), (16, 16),
                  _note("CMYK converted to RGB", _check_bicubic_close(20))),
    "exif_rotated_jpeg": (lambda d: write(d, "rotated.jpg", jpeg_with_orientation(smooth(20, 40), 6)), (20, 40),
                          _check_exif),
    "animated_gif": (lambda d: write(d, "anim.gif", _gif(d)), (10, 8),
                     _note("animated image: first frame of 3 used", _check_bicubic_close(3))),
    "animated_webp": (lambda d: write(d, "anim.webp", _webp_anim(d)), (10, 8),
                      _note("first frame of 4 used", _check_bicubic_close(3))),
    "webp": (lambda d: write(d, "a.webp", pil_bytes(Image.fromarray(smooth(12, 20)), "WEBP", lossless=True)),
             (20, 12), _check_bicubic_close(3)),
    "bmp": (lambda d: write(d, "a.bmp", pil_bytes(Image.fromarray(smooth(12, 20)), "BMP")), (20, 12),
            _check_bicubic_close(3)),
    "tiff": (lambda d: write(d, "a.tif", pil_bytes(Image.fromarray(smooth(12, 20)), "TIFF")), (20, 12),
             _check_bicubic_close(3)),
}


class Ref:
    """The source as lcoan.imaging.io reads it, plus its path."""

    def __init__(self, path: Path):
        self.path = path
        img = load_image(path)
        self.rgb, self.alpha = img.rgb, img.alpha


@pytest.fixture(scope="module")
def good_inputs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("good")
    return {key: make(d) for key, (make, *_) in GOOD.items()}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", list(GOOD))
def test_infer_handles_input(case, method, good_inputs, ckpt, tmp_path, capsys):
    src = good_inputs[case]
    _, (w, h), check = GOOD[case]
    out_path = tmp_path / "out" / "result.png"
    rc, stdout, err = run_infer(capsys, src, "-o", out_path, *method_args(method, ckpt))
    assert rc == 0, err
    assert "Traceback" not in err and "error:" not in err, err
    s = scale_of(method)
    assert f"-> {out_path} {w * s}x{h * s}" in stdout
    out = load_image(out_path)
    assert out.format == "PNG" and out.size == (w * s, h * s)
    assert no_temp_files(out_path.parent)
    if check is not None:
        check(out, Ref(src), method, err)


def _subprocess(*args) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "lcoan.infer", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_real_command_line_refuses(bad_inputs, ckpt, tmp_path):
    """The same through ``python -m lcoan.infer``: exit status and stderr as a user sees them."""
    bad = _subprocess(bad_inputs["bomb_png_40000x40000"], "-o", tmp_path / "a.png", "--checkpoint", ckpt)
    assert_one_line_error(bad.returncode, bad.stderr, "bomb.png", "over the limit")
    assert not (tmp_path / "a.png").exists()


@pytest.mark.slow
def test_real_command_line_succeeds(good_inputs, ckpt, tmp_path):
    good = _subprocess(good_inputs["png16_rgb"], "-o", tmp_path / "b.png", "--checkpoint", ckpt)
    assert good.returncode == 0 and "Traceback" not in good.stderr, good.stderr
    out = load_image(tmp_path / "b.png")
    assert out.size == (48, 32) and out.bit_depth == 16


# ----------------------------------------------------------------------------- evaluate
def run_evaluate(capsys, *args) -> tuple[int, str, str]:
    rc = evaluate.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_eval_error(rc: int, err: str, *needles: str) -> None:
    """Exit 2 and one ``error:`` line (a progress bar may precede it), no traceback."""
    assert rc == 2, err
    assert "Traceback" not in err, err
    errors = [ln for ln in err.replace("\r", "\n").splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1, err
    assert err.rstrip().endswith(errors[0])
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])


def _pair_folder(folder: Path, hr_size=24, lr_size=12, lr_data: bytes | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(smooth(hr_size, hr_size)).save(folder / "img_001_HR.png")
    if lr_data is None:
        Image.fromarray(smooth(lr_size, lr_size)).save(folder / "img_001_LR.png")
    else:
        (folder / "img_001_LR.png").write_bytes(lr_data)
    return folder


def test_evaluate_missing_folder(tmp_path, capsys):
    rc, _, err = run_evaluate(capsys, "--bicubic", "--scale", "2", "--data", tmp_path / "nowhere")
    assert_eval_error(rc, err, "data folder not found", "nowhere")


def test_evaluate_hr_without_lr(tmp_path, capsys):
    folder = _pair_folder(tmp_path / "set")
    Image.fromarray(smooth(24, 24)).save(folder / "img_002_HR.png")
    rc, _, err = run_evaluate(capsys, "--bicubic", "--scale", "2", "--data", folder)
    assert_eval_error(rc, err, "img_002_HR.png has no matching img_002_LR.png")


def test_evaluate_wrong_scale_for_checkpoint(tmp_path, ckpt, capsys):
    folder = _pair_folder(tmp_path / "set")
    rc, _, err = run_evaluate(capsys, "--checkpoint", ckpt, "--scale", "3", "--data", folder)
    assert_eval_error(rc, err, "--scale 3", "x2 model")


def test_evaluate_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc, _, err = run_evaluate(capsys, "--bicubic", "--scale", "2", "--data", tmp_path / "empty")
    assert_eval_error(rc, err, "no images in")


def test_evaluate_corrupt_image_in_folder(tmp_path, capsys):
    data = pil_bytes(Image.fromarray(rand((16, 16, 3))), "PNG")
    folder = _pair_folder(tmp_path / "set", lr_data=data[: len(data) // 2])
    rc, _, err = run_evaluate(capsys, "--bicubic", "--scale", "2", "--data", folder)
    assert_eval_error(rc, err, "img_001_LR.png", "truncated or corrupt")


def test_evaluate_folder_of_another_scale(tmp_path, capsys):
    folder = _pair_folder(tmp_path / "set")  # an x2 folder evaluated at x3
    rc, _, err = run_evaluate(capsys, "--bicubic", "--scale", "3", "--data", folder)
    assert_eval_error(rc, err, "wrong scale for this folder?")


def test_evaluate_tampered_checkpoint(tmp_path, ckpt, capsys):
    import shutil

    bad = tmp_path / "ck"
    shutil.copytree(ckpt, bad)
    (bad / "model.safetensors").write_bytes(b"\x80\x04not really a pickle")
    rc, _, err = run_evaluate(capsys, "--checkpoint", bad, "--data", _pair_folder(tmp_path / "set"))
    assert_eval_error(rc, err, "not a readable safetensors file", "pickle")


def test_evaluate_good_folder(tmp_path, ckpt, capsys):
    folder = _pair_folder(tmp_path / "set")
    for args in (["--bicubic", "--scale", "2"], ["--checkpoint", ckpt]):
        rc, out, err = run_evaluate(capsys, *args, "--data", folder, "--json", tmp_path / "r.json")
        assert rc == 0 and "Traceback" not in err, err
        assert "img_001" in out and "mean" in out
