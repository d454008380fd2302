"""The inspection views are pure functions of a trace: checked here without a server."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lcoan
from app.views import attention as A
from app.views import clusters as C
from app.views import efficiency as E
from app.views import similarity as S
from app.views.common import DISPLAY_TARGET, display_factor, display_to_position, enlarge, palette, srgb_to_lab
from lcoan.introspect.query import query_attention
from lcoan.introspect.stats import js_divergence


@pytest.fixture(scope="module")
def traced():
    torch.manual_seed(0)
    image = torch.rand(1, 3, 6, 7)
    out = {}
    for kind in ("lsp", "dense"):
        model = lcoan.create_model(lcoan.preset("tiny", attention=kind)).eval()
        with torch.inference_mode():
            out[kind] = model.forward_with_trace(image)[1]
    return out, image[0].permute(1, 2, 0).numpy()


def test_palette_keeps_ids_apart():
    pal = palette(128)
    assert pal.shape == (128, 3) and len({tuple(c) for c in pal}) == 128
    lab = srgb_to_lab(pal)
    dist = np.linalg.norm(lab[:, None] - lab[None], axis=-1) + np.eye(128) * 1e9
    assert dist.min() > 15  # every pair of clusters, in Delta-E (CIE76)
    assert np.linalg.norm(lab[1:] - lab[:-1], axis=1).min() > 19  # neighbouring ids
    assert dist[:8, :8].min() > 60  # the first ids (tiny models) are very different
    assert 30 < lab[:, 0].min() and lab[:, 0].max() < 88
    np.testing.assert_array_equal(palette(8), pal[:8])
    np.testing.assert_allclose(srgb_to_lab(np.array([255, 255, 255])), [100, 0, 0], atol=0.05)


def test_display_click_maps_back_to_positions():
    size = (6, 7)
    f = display_factor(size)
    assert f * 7 <= DISPLAY_TARGET < (f + 1) * 7
    for y in range(6):
        for x in range(7):
            assert display_to_position(x * f + f // 2, y * f + f - 1, size) == (y, x)
    assert display_to_position(-5, 10_000, size) == (5, 0)
    img = np.arange(6 * 7 * 3, dtype=np.uint8).reshape(6, 7, 3)
    big = enlarge(img, f)
    assert big.shape == (6 * f, 7 * f, 3) and (big[f * 2 + 1, f * 3 + 2] == img[2, 3]).all()


def test_chosen_cluster_is_outlined_and_the_legend_lists_the_occupied(traced):
    (traces, image) = traced
    t = traces["lsp"]
    sizes = t.patterns[0].cluster_sizes().numpy()
    k = int(np.argmax(sizes))
    plain = np.asarray(C.cluster_overlay(t, image, 0.6, factor=8))
    chosen = np.asarray(C.cluster_overlay(t, image, 0.6, factor=8, selected=k))
    assert chosen.shape == plain.shape and not np.array_equal(chosen, plain)
    assert (chosen == 255).all(-1).sum() > (plain == 255).all(-1).sum()  # the white outline
    legend = C.cluster_legend_html(t, selected=k)
    assert f"({int(sizes[k])})" in legend and legend.count("title=\"cluster ") == int((sizes > 0).sum())
    proj = C.projection_figure(np.random.rand(len(t.patterns[0].codes[0]), 2), t.patterns[0].codes[0].numpy(),
                               np.random.rand(len(sizes), 2), sizes > 0, selected=k)
    assert any(tr.name == f"chosen: cluster {k}" for tr in proj.data)


def test_cluster_overlay_opacity(traced):
    (traces, image) = traced
    t = traces["lsp"]
    f = display_factor(t.lr_size)
    plain = np.asarray(C.cluster_overlay(t, image, opacity=0.0))
    assert plain.shape == (6 * f, 7 * f, 3)
    assert (plain[::f, ::f] == np.round(image * 255).astype(np.uint8)).all()
    solid = np.asarray(C.cluster_overlay(t, image, opacity=1.0))
    codes = C.cluster_map(t.patterns[0], t.lr_size)
    expected = np.round(C.shaded(palette(8)[codes].astype(np.float32), image)).astype(np.uint8)
    assert (solid[::f, ::f] == expected).all()
    # at full opacity the photo's structure stays: within one cluster, brighter pixels are brighter
    lum = image @ np.array([0.299, 0.587, 0.114])
    k = np.bincount(codes.ravel()).argmax()
    members = codes == k
    shown = solid[::f, ::f].sum(-1)[members]
    assert np.corrcoef(shown, lum[members])[0, 1] > 0.9
    # the default opacity shows the clusters clearly, not a photo with faint noise
    default = np.asarray(C.cluster_overlay(t, image)).astype(float)[::f, ::f]
    assert C.DEFAULT_OPACITY >= 0.75 and np.abs(default - plain[::f, ::f]).mean() > 25


def test_legend_lists_every_occupied_cluster():
    from lcoan.introspect.trace import PatternTrace, Trace
    n, k = 240, 128
    codes = (torch.arange(n) % 124)[None]
    p = PatternTrace(codes=codes, order=torch.argsort(codes, stable=True), centroids=torch.randn(1, k, 4),
                     query=torch.randn(n, 4), key=torch.randn(n, 4), window=16, group=0)
    t = Trace(kind="lsp", lr_size=(12, 20), attn_res_scale=0.1, patterns=[p])
    legend = C.cluster_legend_html(t)
    assert legend.count('title="cluster ') == 124 and "more" not in legend  # issue 27: 48 of 124 were listed


def test_cluster_sizes_members_and_patches(traced):
    (traces, image) = traced
    t = traces["lsp"]
    sizes = t.patterns[0].cluster_sizes().numpy()
    fig = C.cluster_sizes_figure(t, selected=int(sizes.argmax()))
    assert int(np.sum(fig.data[0].y)) == t.n
    assert f"{int((sizes > 0).sum())} of K = 8" in fig.layout.title.text
    k = int(sizes.argmax())
    members = C.member_positions(t, k)
    assert sorted(members.tolist()) == torch.nonzero(t.patterns[0].codes[0] == k)[:, 0].tolist()
    f = display_factor(t.lr_size)
    over = np.asarray(C.members_overlay(t, image, k))[::f, ::f].reshape(-1, 3).astype(int)
    grey = (np.round(image * 255).mean(-1) * 0.45).reshape(-1)
    not_members = np.setdiff1d(np.arange(t.n), members)
    assert np.allclose(over[not_members], grey[not_members, None], atol=1)
    strip = C.patch_strip(t, image, k, count=4, radius=2, zoom=5)
    shown = min(4, len(members))
    assert strip.size == (shown * 25 + (shown - 1) * 6, 25)
    empty = [i for i in range(8) if sizes[i] == 0]
    if empty:
        assert C.patch_strip(t, image, empty[0]) is None
    summary = C.cluster_summary(t)
    assert summary["clusters"] == 8 and summary["occupied"] == int((sizes > 0).sum())
    assert summary["windows"] == t.patterns[0].num_windows and summary["shared_by_groups"]


def test_projection_figure_counts():
    rng = np.random.default_rng(0)
    fig = C.projection_figure(rng.normal(size=(50, 2)), rng.integers(0, 8, 50), rng.normal(size=(8, 2)),
                              np.array([True] * 6 + [False] * 2), "PCA", selected=3)
    assert len(fig.data[0].x) == 50 and len(fig.data[1].x) == 8
    assert list(fig.data[1].marker.color[6:]) == ["lightgrey", "lightgrey"]


def test_attention_overlay_highlights_exactly_the_window_keys(traced):
    (traces, _) = traced
    t = traces["lsp"]
    white = np.ones((6, 7, 3), dtype=np.float32)
    f = display_factor(t.lr_size)
    for pos in (0, 20, t.n - 1):
        q = query_attention(t, pos, radius=2, top=3)
        keys = set(t.patterns[0].keys_of(pos).tolist())
        assert set(q.row.nonzero()[:, 0].tolist()) == keys
        assert abs(float(q.row.sum()) - 1) < 1e-5 and 0 <= q.recall <= 1 + 1e-6
        img = np.asarray(A.attention_overlay(t, white, pos))
        centres = img[f // 2::f, f // 2::f].reshape(-1, 3)
        dimmed = (centres == 76).all(-1) | (centres == 77).all(-1)
        assert set(np.nonzero(~dimmed)[0].tolist()) == keys
        y, x = divmod(pos, 7)
        assert (img[y * f, x * f] == (0, 255, 255)).all()  # the query is outlined in cyan
        for ty, tx in q.top_rc():  # the top matches in yellow
            assert (img[ty * f, tx * f + f // 2] == A.TOP_COLOUR).all()


def test_keys_are_drawn_by_weight_and_the_colour_range_fits_the_row():
    image = np.ones((2, 3, 3), dtype=np.float32)
    row = np.array([0.0, 1e-9, 1e-3, 1e-2, 0.1, 0.889])
    lo, hi = -3.0, -1.0
    rgb = A.weight_colours(image, row, lo, hi)
    assert (rgb[0] == 76.5).all()  # never seen: dimmed grey
    brightness = rgb.sum(-1)
    assert brightness[1] == pytest.approx(brightness[2])  # both at or below lo: the faintest colour
    assert brightness[2] < brightness[3] < brightness[4]  # more weight, brighter
    np.testing.assert_allclose(rgb[4], rgb[5])  # above hi saturates


def test_match_strip_and_mass_figure(traced):
    (traces, _) = traced
    t, d = traces["lsp"], traces["dense"]
    image = np.random.default_rng(0).random((6, 7, 3)).astype(np.float32)
    q = query_attention(t, 20, radius=2, top=4)
    strip = A.match_strip(image, q, radius=4, zoom=8)
    assert strip.size == ((1 + len(q.top)) * (72 + 6) - 6, 72 + 14)
    fig = A.mass_figure({"LSP": q, "dense layer 1": query_attention(d, 20, radius=2)})
    assert len(fig.data) == 4 and list(fig.data[0].y) == ["LSP", "dense layer 1"]
    total = sum(np.asarray(tr.x) for tr in fig.data)
    np.testing.assert_allclose(total, 100, atol=1e-3)


def test_contribution_and_dense_maps_share_one_colour_scale(traced):
    (traces, _) = traced
    t, d = traces["lsp"], traces["dense"]
    pos = 11
    fig = A.contributions_figure(t, pos, log=False)
    heat = [tr for tr in fig.data if tr.type == "heatmap"]
    assert len(heat) == len(t.groups) and all(h.coloraxis == "coloraxis" for h in heat)
    for g, h in enumerate(heat):
        expected = (t.attention_row(g, pos) * t.groups[g].value.norm(dim=-1)).reshape(6, 7).numpy()
        np.testing.assert_allclose(np.asarray(h.z), expected, rtol=1e-5, atol=1e-7)
    # the colour range fits the data: linear from 0 to the largest value off the query's own cell
    off = np.stack([np.asarray(h.z) for h in heat]).copy()
    off[:, pos // 7, pos % 7] = np.nan
    assert fig.layout.coloraxis.cmin == 0
    assert fig.layout.coloraxis.cmax == pytest.approx(np.nanmax(off))
    dfig = A.dense_maps_figure(d, pos, log=False)
    dheat = [tr for tr in dfig.data if tr.type == "heatmap"]
    assert len(dheat) == len(d.groups)
    for h in dheat:
        assert np.asarray(h.z).shape == (6, 7) and np.asarray(h.z).sum() == pytest.approx(1, abs=1e-4)
    logfig = A.dense_maps_figure(d, pos)  # the default: log10(weight / uniform 1/N), meaning stated
    axis = logfig.layout.coloraxis
    assert axis.cmax - axis.cmin <= A.DECADES + 1e-6  # a range that fits the data, not -25..+3 decades
    assert "log10(weight / uniform)" in logfig.layout.coloraxis.colorbar.title.text
    assert "uniform" in logfig.layout.title.text and logfig.layout.xaxis.title.text == "col (LR px)"
    for h, raw in zip([tr for tr in logfig.data if tr.type == "heatmap"], dheat):
        w = np.asarray(raw.z)
        np.testing.assert_allclose(np.asarray(h.z), np.where(w > 0, np.log10(np.maximum(w, 1e-30) * w.size), np.nan),
                                   rtol=1e-4, atol=1e-5)  # 0 = exactly the uniform weight 1/N
        np.testing.assert_allclose(np.asarray(h.customdata), w)  # hover shows the weight itself
        assert "weight %{customdata" in h.hovertemplate
    rec = A.recall_figure(np.array([0.2, 0.5, 1.0]), 0.5)
    assert len(rec.data[0].x) == 3


def test_band_and_similarity_figures(traced):
    (traces, _) = traced
    t, d = traces["lsp"], traces["dense"]
    p = t.patterns[0]
    matrix, edges = p.band(bins=16)
    fig = S.band_figure(p, matrix, edges)
    band = [tr for tr in fig.data if tr.type == "heatmap"][1]
    assert np.asarray(band.z).shape == (16, 16)
    assert "mean of" in fig.layout.title.text
    exact = S.band_figure(p, *p.band(0, 20, bins=64))
    assert "exact" in exact.layout.title.text
    pos = torch.tensor([0, 5, 9, 33])
    maps = S.sampled_maps_figure(t.attention_rows(0, pos)[:, pos], [d.attention_rows(g, pos)[:, pos] for g in range(3)],
                                 pos)
    assert len(maps.data) == 4
    js = torch.tensor([[0.0, 0.1], [0.1, 0.0]])
    red = S.redundancy_figure(js, torch.tensor([[1.0, 0.5], [0.5, 1.0]]), 10)
    assert len(red.data) == 2


def test_js_divergence_bounds():
    p = torch.tensor([[0.5, 0.5, 0.0, 0.0]])
    q = torch.tensor([[0.0, 0.0, 0.5, 0.5]])
    assert float(js_divergence(p, p)) == pytest.approx(0, abs=1e-7)
    assert float(js_divergence(p, q)) == pytest.approx(np.log(2), abs=1e-6)


def test_timing_figure():
    report = {"size": [8, 9], "positions": 72, "groups": 3, "saving": 0.5,
              "results": {"Dense NLA": {"seconds": 0.02, "runs": 3},
                          "LCoA (LSP once + CoA)": {"seconds": 0.01, "runs": 3}}}
    fig = E.timing_figure(report)
    assert list(fig.data[0].x) == [20.0, 10.0] and "saves 50%" in fig.layout.title.text
