"""Inspection service: regions for large inputs, cached traces, derived quantities, timing."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from app.services.inspection import InspectService
from app.services.models import ModelService, ServiceError
from app.services.region import choose_region, extract_region
from tests.tiny_checkpoints import make_checkpoints, textured


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    folder = make_checkpoints(tmp_path_factory.mktemp("ckpt"))
    return InspectService(ModelService(folder), max_positions=400)


def test_regions():
    assert choose_region(10, 12, max_positions=400).mode == "full"
    down = choose_region(100, 50, "downscale", max_positions=400)
    assert down.mode == "downscale" and down.size[0] * down.size[1] <= 400
    assert abs(down.size[0] / down.size[1] - 2) < 0.2 and "downscale" in down.note
    crop = choose_region(100, 50, "crop", max_positions=400)
    assert crop.size == (20, 20) and crop.offset == (40, 15) and "centre 20x20 crop" in crop.note
    thin = choose_region(5, 1000, "crop", max_positions=400)
    assert thin.size == (5, 80) and thin.offset == (0, 460)
    rgb = np.random.default_rng(0).random((100, 50, 3)).astype(np.float32)
    assert extract_region(rgb, crop).shape == (20, 20, 3)
    np.testing.assert_array_equal(extract_region(rgb, crop), rgb[40:60, 15:35])
    small = extract_region(rgb, down)
    assert small.shape[:2] == down.size and small.min() >= 0 and small.max() <= 1
    with pytest.raises(ServiceError):
        choose_region(100, 50, "zoom")


def test_inspection_is_cached_and_dense_is_traced_once(service):
    img = textured(12, 14)
    a = service.inspect(img, 2)
    assert a.region.mode == "full" and a.size == (12, 14) and a.lcoan.kind == "lsp"
    assert service.inspect(img.copy(), 2) is a
    assert "dense" not in a.seconds  # lazy
    d = a.dense
    assert d.kind == "dense" and a.dense is d and "dense" in a.seconds
    big = service.inspect(textured(60, 30), 2, "crop")
    assert big.region.mode == "crop" and big.n <= 400 and big.lcoan.lr_size == big.size
    with pytest.raises(ServiceError, match="no LCoAN"):
        service.inspect(img, 4)
    with pytest.raises(ServiceError, match="no image"):
        service.inspect(None, 2)


def test_recall_band_maps_redundancy_projection(service):
    insp = service.inspect(textured(12, 14), 2)
    stats = service.recall_stats(insp, count=50)
    assert stats["samples"] == 50 and 0 <= stats["min"] <= stats["mean"] <= 1 + 1e-6
    tiny = service.inspect(textured(4, 4), 2)  # N = 16 <= W = 16: one window holds everything
    assert service.recall_stats(tiny)["min"] == pytest.approx(1.0, abs=1e-5)
    matrix, edges = service.band(insp, bins=32)
    assert matrix.shape == (32, 32) and edges[-1] == insp.n
    maps = service.sampled_maps(insp, count=20)
    assert maps["lcoan"].shape == (20, 20) and len(maps["dense"]) == 3
    red = service.redundancy(insp, count=30)
    assert torch.allclose(red["js"].diagonal(), torch.zeros(3))
    assert torch.allclose(red["corr"].diagonal(), torch.ones(3))
    assert (red["js"] >= 0).all() and (red["js"] <= math.log(2) + 1e-6).all()
    proj = service.projection(insp, "pca", count=100)
    assert proj["points"].shape == (100, 2) and proj["centroids"].shape == (8, 2)
    assert service.projection(insp, "pca", count=100) is proj
    with pytest.raises(ServiceError):
        service.projection(insp, "tsne")


def test_time_nonlocal(service):
    report = service.time_nonlocal(textured(10, 10), 2, repeats=2, budget_s=2)
    assert report["positions"] == 100 and len(report["results"]) == 3
    assert all(r["seconds"] > 0 and r["runs"] >= 1 for r in report["results"].values())
    assert "saving" in report


@pytest.mark.slow
def test_umap_projection_with_progress(service):
    """umap-learn is imported only here (30 s the first time on a machine: numba compiles)."""
    insp = service.inspect(textured(12, 14), 2)
    seen = []
    proj = service.projection(insp, "umap", count=100, progress=lambda f, d: seen.append(f))
    assert proj["points"].shape == (100, 2) and proj["centroids"].shape == (8, 2)
    assert seen[0] < seen[-1] == 1.0 and "UMAP" in proj["note"]


def test_umap_is_not_imported_at_start_up():
    import subprocess
    import sys
    code = ("import sys, app.ui, app.tabs.clusters, app.services.inspection; "
            "print('umap' in sys.modules, 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-2:] == ["False", "False"]


def test_interleaved_medians_budget_spares_fast_variants():
    import time as _time

    from lcoan.introspect.knobs import interleaved_medians
    out = interleaved_medians({"slow": lambda: _time.sleep(0.6), "fast": lambda: _time.sleep(0.001)},
                              repeats=3, budget_s=1.0)
    assert out["fast"]["runs"] == 3 and 1 <= out["slow"]["runs"] < 3
    assert out["slow"]["seconds"] >= 0.6 > out["fast"]["seconds"]


def test_without_a_dense_checkpoint_the_lcoan_views_still_work(tmp_path):
    import lcoan
    lcoan.save(lcoan.create_model(lcoan.preset("tiny", scale=4, attention="lsp")), tmp_path / "lcoan-tiny-x4")
    service = InspectService(ModelService(tmp_path))
    insp = service.inspect(textured(9, 10), 4)
    assert not insp.has_dense and insp.dense is None and "dense" not in insp.labels
    assert service.redundancy(insp) is None
    maps = service.sampled_maps(insp, count=10)
    assert maps["dense"] == [] and maps["lcoan"].shape == (10, 10)
    report = service.time_nonlocal(textured(9, 10), 4, repeats=1, budget_s=1)
    assert len(report["results"]) == 2 and "saving" not in report


def test_layer_redundancy_is_the_mean_per_query_js_and_pearson():
    import numpy as np

    from lcoan.introspect.stats import js_divergence, layer_redundancy
    torch.manual_seed(0)
    rows = [torch.softmax(torch.randn(5, 40) * 2, -1) for _ in range(3)]
    rows.append(torch.full((5, 40), 1 / 40))  # constant rows: no defined correlation, counted as 0
    js, corr = layer_redundancy(rows)
    for a in range(4):
        for b in range(4):
            pearson = [0.0 if b == 3 or a == 3 else np.corrcoef(rows[a][i].numpy(), rows[b][i].numpy())[0, 1]
                       for i in range(5)]
            assert float(corr[a, b]) == pytest.approx(1.0 if a == b else float(np.mean(pearson)), abs=1e-5)
            assert float(js[a, b]) == pytest.approx(float(js_divergence(rows[a], rows[b]).mean()), abs=1e-6)


def test_memo_computes_a_key_once_under_concurrency_and_respects_a_bounded_store():
    import threading
    import time as _time

    from app.services.memo import Memo
    from app.services.models import LRUCache
    calls = []

    def slow():
        calls.append(1)
        _time.sleep(0.2)
        return "value"

    memo = Memo()
    threads = [threading.Thread(target=memo.get, args=("k", slow)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and memo.peek("k") == "value" and memo.peek("other") is None
    bounded = Memo(LRUCache(capacity=1))
    bounded.get("a", lambda: 1)
    bounded.get("b", lambda: 2)
    assert bounded.peek("a") is None and bounded.get("a", lambda: 3) == 3  # evicted, computed again
