"""The Experiments tab's service (app.services.experiments) and views on tiny random checkpoints: every
experiment runs, bad input is refused with a message, the trace file round-trips."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import lcoan
from app.services.experiments import ExperimentService
from app.services.inspection import inspector_for
from app.services.models import ModelService, ServiceError
from app.views import experiments as views
from lcoan.introspect.knobs import DENSE_WINDOW
from lcoan.introspect.trace_files import load_trace
from tests.tiny_checkpoints import make_checkpoints, textured


def with_none(folder: Path) -> Path:
    """The tiny LCoAN and dense checkpoints plus a tiny one without attention."""
    make_checkpoints(folder)
    if not (folder / "none-tiny-x2").exists():
        torch.manual_seed(1)
        lcoan.save(lcoan.create_model(lcoan.preset("tiny", attention="none")), folder / "none-tiny-x2")
    return folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    service = ModelService(with_none(tmp_path_factory.mktemp("ckpt")))
    pic = tmp_path_factory.mktemp("img") / "photo.png"
    Image.fromarray(textured(40, 36)).save(pic)
    yield ExperimentService(service), service, pic
    service.close()


def test_knobs_sweep_marks_trained_and_dense(setup):
    exps, _, pic = setup
    pair, sweep = exps.knobs(str(pic), 2, 1, 32)
    assert pair.lr.shape == (20, 18, 3) and pair.hr.shape == (40, 36, 3)
    assert sweep.points[-1].window == DENSE_WINDOW and sweep.points[-1].recall == 1.0
    assert any(p.trained for p in sweep.points) and sweep.trained_window == 16
    fig = views.sweep_figure(sweep)
    assert len(fig.data) >= 4
    assert "W >= N" in views.describe_sweep(sweep, pair.note)
    _, three = exps.knobs(str(pic), 2, 3, 32)
    assert three.rounds == 3 and not any(p.trained for p in three.points)
    assert "Not the trained model" in views.describe_sweep(three, pair.note)
    title = views.sweep_figure(three).layout.title.text
    assert "★" not in title and "no trained setting" in title  # issue 27: a star promised but not drawn
    assert "★ trained setting" in fig.layout.title.text
    # the PSNR axis: two decimals and a range of at least MIN_PSNR_SPAN dB (a flat line stays flat)
    axis = fig.layout.yaxis2
    assert axis.tickformat == ".2f" and axis.range[1] - axis.range[0] >= views.MIN_PSNR_SPAN
    # the window knob: one W, with the trained W and W >= N beside it
    _, one = exps.knobs(str(pic), 2, 1, 32, window=40)
    assert [p.window for p in one.points] == [16, 40, DENSE_WINDOW]
    with pytest.raises(ServiceError, match="window W"):
        exps.knobs(str(pic), 2, 1, 32, window=-5)


def test_ablation_both_models(setup):
    exps, _, pic = setup
    pair, results = exps.ablation(str(pic), 2, 32)
    assert set(results) == {"lcoan", "dense"}
    for r in results.values():
        assert r.diff.shape == pair.hr.shape[:2] and np.isfinite(r.psnr_on) and np.isfinite(r.psnr_off)
    fig = views.ablation_figure(results)
    assert "dB" in views.describe_ablation(results, pair.note)
    # axes in output pixels (the maps are SR-sized), its own subtitle (not the attention plots' log note)
    assert fig.layout.xaxis.title.text == "col (output px)" and "LR px" not in fig.layout.yaxis.title.text
    assert "uniform" not in fig.layout.title.text and "36x40 restored output" in fig.layout.title.text


def test_attribution_side_by_side(setup):
    exps, _, pic = setup
    seen = []
    pair, results = exps.attribution(str(pic), 2, -1, -1, 8, 2, on_result=lambda k, r: seen.append(k))
    assert seen == ["lcoan", "dense", "none"] == list(results)
    box = results["lcoan"].box
    assert (box.top, box.left, box.size) == ((40 - 8) // 2, (36 - 8) // 2, 8)
    for r in results.values():
        assert r.attribution.shape == (3, 20, 18) and 0 <= r.diffusion_index <= 100
    img = views.attribution_image(pair.lr, results["dense"], 2, 4)
    assert img.size == (18 * 4, 20 * 4)
    assert "diffusion index" in views.describe_attribution(results, pair.note, [])


def test_trace_file_round_trip(setup):
    exps, service, pic = setup
    path, report = exps.trace_file(str(pic), 2, "lcoan", "downscale", "my photo.png")
    assert path.name == "my_photo_x2_lcoan_trace.zip" and report["positions"] == 40 * 36
    trace = inspector_for(service).inspect(str(pic), 2, "downscale").lcoan
    back = load_trace(path)
    assert torch.equal(back.attention_row(1, 77), trace.attention_row(1, 77))
    dense_path, dense_report = exps.trace_file(str(pic), 2, "dense")
    assert dense_report["kind"] == "dense" and len(load_trace(dense_path).groups) == 3


@pytest.mark.parametrize("call,match", [
    (lambda e, p: e.knobs(None, 2), "No image"),
    (lambda e, p: e.knobs(str(p), 2, "many"), "rounds"),
    (lambda e, p: e.knobs(str(p), 2, 4), "rounds"),
    (lambda e, p: e.knobs(str(p), 3), "no LCoAN checkpoint for x3"),
    (lambda e, p: e.ablation(str(p), 2, 1000), "crop side"),
    (lambda e, p: e.attribution(str(p), 2, 0, 0, 2), "patch size"),
    (lambda e, p: e.attribution(str(p), 2, 5000, 0), "patch row"),
    (lambda e, p: e.attribution(str(p), 2, steps=0), "steps"),
    (lambda e, p: e.attribution(str(p), 2, kinds=("bicubic",)), "models"),
    (lambda e, p: e.trace_file(str(p), 2, "none"), "kind"),
    (lambda e, p: e.trace_file(str(p), 2, "lcoan", "zoom"), "region"),
])
def test_bad_requests_get_messages(setup, call, match):
    exps, _, pic = setup
    with pytest.raises(ServiceError, match=match):
        call(exps, pic)


def test_unreadable_and_tiny_pictures(setup, tmp_path):
    exps, _, _ = setup
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(ServiceError):
        exps.knobs(str(junk), 2)
    small = tmp_path / "small.png"
    Image.fromarray(textured(20, 20)).save(small)
    with pytest.raises(ServiceError, match="at least 32x32"):
        exps.ablation(str(small), 2)
