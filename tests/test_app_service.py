"""The app's Gradio-free layer: compare (both modes, caching, tiling, size policy, errors), result
files, zoom views, examples, settings. Tiny random checkpoints, real photographs from assets/."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.services.examples import EXAMPLES, EXAMPLES_DIR, available, example_path
from app.services.models import LRUCache, ModelService, ServiceError
from app.services.outputs import OutputDir, safe_stem
from app.services.region import balanced_tiles
from app.services.superresolve import (
    METHODS,
    REGION,
    Box,
    compare,
    compare_steps,
    load_input,
    lookup,
    prepare,
    run_whole,
    save_result,
)
from app.settings import Settings
from app.views.superresolve import crops, method_crop, preview, view_names, with_box
from lcoan.evaluate import evaluate, find_samples
from lcoan.imaging.degrade import bicubic_upscale, degrade
from lcoan.imaging.io import LoadedImage, load_image
from lcoan.imaging.metrics import psnr_y, ssim_y
from lcoan.inference import DEFAULT_PAD, upscale_array
from tests.tiny_checkpoints import KINDS, make_checkpoints

ROCKET = EXAMPLES_DIR / "rocket_tower.png"
BRICK = EXAMPLES_DIR / "brick_wall.png"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return make_checkpoints(tmp_path_factory.mktemp("ckpt"), scales=(2, 4), kinds=(*KINDS, ("none", "none")))


@pytest.fixture()
def service(ckpt) -> ModelService:
    svc = ModelService(ckpt, settings=Settings(checkpoints=ckpt, threads=1))
    yield svc
    svc.close()


def crop_of(path: Path, size: int) -> LoadedImage:
    img = load_image(path)
    return LoadedImage(img.rgb[:size, :size].copy(), None, "RGB", "PNG", img.grayscale)


def test_degrade_mode_scores_match_lcoan_evaluate(service, tmp_path):
    image = crop_of(ROCKET, 64)
    c = compare(service, image, 2, "degrade")
    assert list(c.results) == list(METHODS) and not c.skipped and not c.cached
    hr = image.rgb
    lr = degrade(hr, 2)
    np.testing.assert_array_equal(c.prepared.lr, lr)
    np.testing.assert_array_equal(c.results["bicubic"].rgb, bicubic_upscale(lr, 2))
    np.testing.assert_array_equal(c.results["lcoan"].rgb, upscale_array(service.get("lcoan", 2).model, lr,
                                                                          pad=DEFAULT_PAD))
    for m in ("bicubic", "lcoan"):
        r = c.results[m]
        assert r.rgb.shape == hr.shape and r.rgb.dtype == np.uint8 and r.seconds >= 0 and r.box is None
        assert r.psnr == psnr_y(r.rgb, hr, 2) and r.ssim == ssim_y(r.rgb, hr, 2)
    for m in REGION:  # the region: the whole 32x32 LR image here (region side 96 by default)
        assert c.results[m].box == Box(0, 0, 32, 32) and c.results[m].rgb.shape == hr.shape
        assert c.region_scores(m) == (psnr_y(c.results[m].rgb, hr, 2), ssim_y(c.results[m].rgb, hr, 2))
    # bicubic: the same numbers as the evaluation command on a folder holding this HR image
    Image.fromarray(hr).save(tmp_path / "rocket.png")
    samples = find_samples(tmp_path)
    assert math.isclose(evaluate(None, samples, 2, progress=False)[0].psnr, c.results["bicubic"].psnr, rel_tol=1e-12)
    report = c.report()
    assert report["lr_size"] == [32, 32] and report["output_size"] == [64, 64]
    assert set(report["methods"]) == set(METHODS) and report["methods"]["lcoan"]["psnr"] == c.results["lcoan"].psnr
    assert report["methods"]["dense"]["ran_on"] == "region" and report["region_lr"]["width"] == 32


def test_results_are_cached_per_method(service):
    image = crop_of(ROCKET, 48)
    first = compare(service, image, 2, "degrade", ("bicubic", "lcoan"))
    again = compare(service, image, 2, "degrade", ("bicubic", "lcoan"))
    assert again.cached and again.results["lcoan"] is first.results["lcoan"]
    more = compare(service, image, 2, "degrade")  # adding the region baselines computes them only
    assert not more.cached and more.results["bicubic"] is first.results["bicubic"]
    found = lookup(service, more.key)
    assert found is not None and found.results["dense"] is more.results["dense"]
    assert lookup(service, ("nope",)) is None
    moved = compare(service, image, 2, "degrade", centre=(0.0, 0.0), region_side=8)  # a new region: region only
    assert moved.box == Box(0, 0, 8, 8) and moved.results["lcoan"] is first.results["lcoan"]
    assert moved.results["dense"] is not more.results["dense"] and moved.results["dense"].rgb.shape == (16, 16, 3)
    other = compare(service, image, 2, "upscale", ("lcoan",))  # another mode is another entry
    assert other.results["lcoan"].rgb.shape == (96, 96, 3)


def test_upscale_keeps_16_bit_alpha_and_grey_in_the_png(service):
    photo = crop_of(ROCKET, 20).rgb.astype(np.uint16) * 257
    alpha = np.tile(np.linspace(0, 65535, 20).astype(np.uint16), (20, 1))
    image = LoadedImage(photo, alpha, "RGBA;16", "PNG", False)
    c = compare(service, image, 2, "upscale")
    for r in c.results.values():
        assert r.rgb.dtype == np.uint16 and r.rgb.shape == (40, 40, 3) and r.alpha.shape == (40, 40)
        assert r.psnr is None
    back = load_image(save_result(service, c, "lcoan", "../../evil name.png"))
    assert back.rgb.dtype == np.uint16 and back.alpha is not None
    np.testing.assert_array_equal(back.rgb, c.results["lcoan"].rgb)
    grey = compare(service, load_image(BRICK), 2, "upscale", ("bicubic",))
    path = save_result(service, grey, "bicubic", "brick_wall.png")
    assert path.name == "brick_wall_x2_bicubic.png" and Image.open(path).mode == "L"
    assert path.parent.parent == service.outputs.path


def test_size_policy_and_bad_inputs(ckpt, tmp_path):
    small = ModelService(ckpt, settings=Settings(checkpoints=ckpt, threads=1, max_output_pixels=80 * 80))
    image = crop_of(ROCKET, 64)
    big = compare(small, image, 2, "upscale", ("bicubic",))  # 128x128 output > 6,400: downscaled first, said
    assert big.prepared.lr.shape == (40, 40, 3) and any("downscaled first" in n for n in big.prepared.notes)
    asked = compare(small, image, 2, "upscale", ("bicubic",), downscale_to=20)
    assert asked.prepared.lr.shape == (20, 20, 3) and "as asked" in asked.prepared.notes[-1]
    assert compare(small, image, 2, "degrade", ("bicubic",)).prepared.lr.shape == (32, 32, 3)  # 64x64 output fits
    with pytest.raises(ServiceError, match="region side"):
        compare(small, image, 2, "upscale", ("bicubic",), region_side=4)
    with pytest.raises(ServiceError, match="at least 20x20"):
        prepare(crop_of(ROCKET, 16), 4, "degrade", 10**6)
    with pytest.raises(ServiceError, match="mode must be"):
        compare(small, image, 2, "sideways")
    with pytest.raises(ServiceError, match="No LCoAN checkpoint for x3"):
        compare(small, image, 3, "upscale")
    with pytest.raises(ServiceError, match="methods must be"):
        compare(small, image, 2, "upscale", ("magic",))
    with pytest.raises(ServiceError, match="No image"):
        load_input(None)
    text = tmp_path / "notes.png"
    text.write_text("not a picture at all\n")
    with pytest.raises(ServiceError, match="not an image"):
        load_input(str(text))
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ServiceError, match="empty"):
        load_input({"path": str(tmp_path / "empty.png")})
    with pytest.raises(ServiceError, match="over the limit of 1,000 bytes"):
        load_input(str(ROCKET), max_bytes=1000)


def test_missing_checkpoints_are_reported_not_fatal(ckpt, tmp_path):
    empty = ModelService(tmp_path / "nowhere")
    assert empty.scales() == [] and "Missing: `lcoan-*-x2`" in empty.status()
    with pytest.raises(ServiceError, match="No LCoAN checkpoints are loaded"):
        compare(empty, crop_of(ROCKET, 32), 2, "upscale")
    assert str(tmp_path) not in empty.status()  # the page shows checkpoint names, never server folders
    only = tmp_path / "only"
    only.mkdir()
    (only / "lcoan-tiny-x2").symlink_to(ckpt / "lcoan-tiny-x2", target_is_directory=True)
    partial = ModelService(only)
    c = compare(partial, crop_of(ROCKET, 32), 2, "upscale")
    assert list(c.results) == ["bicubic", "lcoan"] and "no Dense NLA checkpoint for x2" in c.skipped["dense"]
    assert partial.missing() == ["lcoan-*-x4", "none-*-x2", "none-*-x4", "dense-*-x2", "dense-*-x4"]
    assert any("not run" in str(row[-1]) for row in c.rows())


def test_lcoan_runs_tiled_on_the_whole_image_and_dense_on_the_region_only(ckpt):
    settings = Settings(checkpoints=ckpt, threads=1, dense_tile=32, lcoan_tile=48)
    svc = ModelService(ckpt, settings=settings)
    image = crop_of(ROCKET, 64)
    steps = list(compare_steps(svc, image, 2, "upscale", centre=(1.0, 0.5)))
    # results stream in: bicubic on the region and the region methods first, then LCoAN, then whole bicubic
    assert [list(s.results) for s in steps] == [["bicubic"], ["bicubic", "none"], ["bicubic", "none", "dense"],
                                               list(METHODS), list(METHODS)]
    assert steps[0].pending == ("none", "dense", "lcoan", "bicubic") and not steps[-1].pending
    assert steps[0].results["bicubic"].box == steps[0].box and steps[-1].results["bicubic"].box is None
    # the region preview is the whole-image bicubic's pixels there
    np.testing.assert_array_equal(steps[0].region("bicubic")[0], steps[-1].region("bicubic")[0])
    c = steps[-1]
    lc, dense = c.results["lcoan"], c.results["dense"]
    assert lc.tiles == 4 and lc.tile == (48, 48) and lc.rgb.shape == (128, 128, 3)  # 80x80 padded: 2 x 2 tiles
    # the whole result = the library's tiled inference with the same tiles (and the user-path padding)
    np.testing.assert_array_equal(lc.rgb, upscale_array(svc.get("lcoan", 2).model, image.rgb, tile=(32, 32),
                                                        overlap=16, pad=DEFAULT_PAD))
    assert c.box == Box(32, 16, 32, 32) and dense.box == c.box and dense.rgb.shape == (64, 64, 3)
    assert "quadratic" in dense.note and c.region("lcoan")[0].shape == (64, 64, 3)
    progress = []
    run_whole(svc, c.prepared, "lcoan", lambda done, total: progress.append((done, total)))
    assert progress[-1] == (4, 4)


@pytest.mark.parametrize("length,max_side,expected", [(64, 96, 64), (192, 96, 75), (176, 96, 96), (300, 256, 158)])
def test_balanced_tiles(length, max_side, expected):
    assert balanced_tiles(length, 10, max_side, 16) == (expected, 10)  # each side on its own


def test_progress_covers_zero_to_one(service):
    seen = []
    compare(service, crop_of(ROCKET, 40), 2, "degrade", progress=lambda f, what: seen.append((f, what)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and math.isclose(fractions[-1], 1.0)
    assert any("Dense NLA" in what for _, what in seen) and any("No attention" in what for _, what in seen)


def test_region_views(service):
    c = compare(service, crop_of(ROCKET, 48), 2, "degrade", centre=(1.0, 0.0), region_side=16)
    assert c.box == Box(8, 0, 16, 16)  # clamped into the 24x24 LR image
    names = [n for _, n in view_names(c)]
    assert names == ["input", "bicubic", "lcoan", "none", "dense", "reference"]
    gallery = crops(c, display=128)
    assert len(gallery) == 6 and all(img.size == (128, 128) for img, _ in gallery)
    assert "dB" in gallery[2][1]
    np.testing.assert_array_equal(np.asarray(method_crop(c, "lcoan", display=32)), c.results["lcoan"].rgb[0:32, 16:48])
    framed = preview(c, "lcoan")
    assert framed.size == (48, 48) and np.asarray(framed)[0, 30].tolist() == [255, 214, 0]
    assert with_box(c.results["lcoan"].rgb, None, (16, 0, 48, 32)).size == (48, 48)
    up = compare(service, crop_of(ROCKET, 24), 2, "upscale")
    with pytest.raises(KeyError):
        method_crop(up, "reference")


def test_examples_are_small_licensed_and_cannot_escape():
    found = available()
    assert [e.file for e, _ in found] == [e.file for e in EXAMPLES]
    for _, path in found:
        assert path.stat().st_size < 200 * 1024
        w, h = Image.open(path).size
        assert 128 <= min(w, h) and max(w, h) <= 256
    readme = (EXAMPLES_DIR.parent / "README.md").read_text()
    assert all(e.file in readme for e in EXAMPLES)
    for bad in ("../README.md", "/etc/passwd", "examples/../../app.py", "", "rocket_tower.png/..", None):
        with pytest.raises(ServiceError):
            example_path(bad)


def test_example_links_outside_the_folder_are_refused(tmp_path):
    (tmp_path / "rocket_tower.png").symlink_to(ROCKET.parent.parent.parent / "app.py")
    with pytest.raises(ServiceError, match="not available"):
        example_path("rocket_tower.png", folder=tmp_path)


def test_output_dir_keeps_the_newest_and_cleans_up():
    out = OutputDir(keep=2)
    rgb = np.zeros((4, 4, 3), np.uint8)
    paths = [out.save_png(f"r{i}", rgb) for i in range(3)]
    assert not paths[0].exists() and paths[1].exists() and paths[2].exists() and len(out) == 2
    zipped = out.save_bytes("../t race", ".zip", b"PK")  # trace zips share the same rotation
    assert zipped.name == "t_race.zip" and zipped.read_bytes() == b"PK" and zipped.parent.parent == out.path
    assert not paths[1].exists() and len(out) == 2
    out.cleanup()
    assert not out.path.exists()
    out.cleanup()  # idempotent
    assert safe_stem("../../etc/passwd") == "passwd" and safe_stem("a b/c d.png") == "c_d"
    assert safe_stem("...") == "image" and safe_stem(None) == "image"


def test_result_files_appear_only_complete():
    """The download's contract: a file is written under a temporary name and renamed when complete, so
    whoever sees the final name (Gradio serving the download) never reads part of it."""
    import threading

    out = OutputDir()
    rgb = np.random.default_rng(0).integers(0, 256, (1200, 1200, 3), dtype=np.uint8)  # ~4 MB, not compressible
    seen: list[tuple[str, int]] = []
    writer = threading.Thread(target=lambda: seen.append(("done", out.save_png("big", rgb).stat().st_size)))
    writer.start()
    while writer.is_alive():
        for f in out.path.rglob("*"):
            if f.is_file() and not f.name.startswith("."):
                try:
                    seen.append((f.name, f.stat().st_size))
                except FileNotFoundError:
                    pass
    writer.join()
    size = dict(seen)["done"]
    assert all(n == size for name, n in seen if name == "big.png")  # the final name: always the whole file
    assert [f.name for f in out.path.rglob("*") if f.is_file()] == ["big.png"]  # no temporary file left
    assert np.array_equal(load_image(next(out.path.rglob("big.png"))).rgb, rgb)
    out.cleanup()


def test_view_pictures_are_files_written_once():
    """Pictures for the page go to Gradio as paths: the same pixels give the same file, never rewritten
    (Gradio rewrote its cached copy of a re-yielded PIL image in place while the browser read it)."""
    from types import SimpleNamespace

    from app.tabs.superresolve import served

    out = OutputDir(keep_views=2)
    img = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3))
    path = Path(out.save_view(img, "../zoom"))
    st = path.stat()
    assert path.name == "zoom.png" and path.is_relative_to(out.path)
    assert out.save_view(img.copy(), "zoom") == str(path)
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (st.st_ino, st.st_mtime_ns)  # not written again
    assert np.array_equal(np.asarray(Image.open(path)), np.asarray(img))
    other = Path(out.save_view(img.rotate(90), "zoom"))
    third = Path(out.save_view(img.rotate(180), "zoom"))
    assert other != path and other.exists() and third.exists() and not path.exists()  # the newest 2 kept
    pair, gal, full = served(SimpleNamespace(outputs=out), (img, img), [(img, "Input")], None)
    assert pair == (str(path),) * 2 and full is None and path.exists()
    assert gal == [(str(path.with_name("region.png")), "Input")]  # one folder per picture, a file per name
    assert len(out) == 0  # the downloads' rotation is separate
    out.cleanup()


def test_lru_cache_is_bounded_by_bytes():
    cache = LRUCache(capacity=10, max_bytes=250)
    for i in range(4):
        cache.put(i, np.zeros(100, np.uint8))
    assert len(cache) == 2 and cache.get(0) is None and cache.get(3) is not None and cache.nbytes == 200
    cache.put("huge", np.zeros(1000, np.uint8))  # larger than the whole budget: not kept, the rest stays
    assert cache.get("huge") is None and len(cache) == 2
    assert cache.get_or_compute("huge", lambda: np.zeros(1000, np.uint8)).nbytes == 1000
    counted = LRUCache(capacity=2, max_bytes=10**6)  # the entry bound holds too
    for i in range(3):
        counted.put(i, np.zeros(10, np.uint8))
    assert len(counted) == 2 and counted.get(0) is None


def test_settings_from_env_and_cli():
    s = Settings.from_env({})
    assert s.host == "127.0.0.1" and s.port == 7860 and not s.share and s.threads >= 1
    assert Settings.from_env({"SPACE_ID": "user/space"}).host == "0.0.0.0"
    assert Settings.from_env({"SPACE_ID": "x", "LCOAN_HOST": "10.0.0.1"}).host == "10.0.0.1"
    env = Settings.from_env({"LCOAN_CHECKPOINTS": "/x", "LCOAN_PORT": "9000", "LCOAN_MAX_UPLOAD_MB": "5"})
    assert env.checkpoints == Path("/x") and env.port == 9000 and env.max_upload_bytes == 5 * 1024 * 1024
    with pytest.raises(ValueError, match="LCOAN_PORT must be an integer"):
        Settings.from_env({"LCOAN_PORT": "http"})
    kwargs = s.launch_kwargs()
    assert kwargs["share"] is False and kwargs["server_name"] == "127.0.0.1" and kwargs["max_file_size"] == 20 * 2**20
