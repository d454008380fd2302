"""The teaching computations: one query's attention (self-weight, top matches, mass split, far-reaching
query), the LSP / CoA walkthrough's step tensors and k-means live (the training EMA update, reused)."""
from __future__ import annotations

import pytest
import torch

import lcoan
from lcoan.attention.kmeans import CentroidBank
from lcoan.introspect.kmeans_live import kmeans_live
from lcoan.introspect.mass import mass_rows, receptive_radius
from lcoan.introspect.query import far_reaching_query, query_attention, weight_range
from lcoan.introspect.walkthrough import ROLE_NAMES, TITLES, pca_rgb, walkthrough


def _trace(kind: str = "lsp", h: int = 9, w: int = 11, **overrides):
    model = lcoan.create_model(lcoan.preset("tiny", attention=kind, **overrides)).eval()
    with torch.inference_mode():
        return model, model.forward_with_trace(torch.rand(1, 3, h, w))[1]


@pytest.mark.parametrize("kind", ["lsp", "dense"])
def test_query_attention_self_weight_top_and_mass(kind):
    model, t = _trace(kind)
    pos = 40
    q = query_attention(t, pos, radius=2, top=5)
    row = t.attention_row(0, pos)
    torch.testing.assert_close(q.row, row)
    assert q.self_weight == pytest.approx(float(row[pos]))
    assert pos not in q.top.tolist() and len(q.top) <= 5
    assert (q.top_weights[:-1] >= q.top_weights[1:]).all()  # strongest first
    assert float(q.top_weights[0]) == pytest.approx(float(torch.cat([row[:pos], row[pos + 1:]]).max()))
    split = q.mass.as_dict()
    assert sum(split.values()) == pytest.approx(1.0, abs=1e-6)
    assert split["self"] == pytest.approx(q.self_weight, abs=1e-6)
    assert (q.recall is None) == (kind == "dense")
    assert q.keys == (t.n if kind == "dense" else int((row > 0).sum()))
    d = q.as_dict()
    assert d["query"] == [pos // 11, pos % 11] and len(d["top_distance"]) == len(q.top)


def test_far_reaching_query_has_the_most_mass_beyond_the_field():
    _, t = _trace("dense", 12, 12)
    best = far_reaching_query(t, radius=2, count=10_000, chunk=7)
    pos = torch.arange(t.n)
    beyond = mass_rows(t.attention_rows(0, pos), pos, t.lr_size, 2)[:, 3]
    assert float(beyond[best]) == pytest.approx(float(beyond.max()))


def test_weight_range_fits_the_row_and_ignores_the_self_weight():
    row = torch.tensor([0.9, 0.05, 0.03, 1e-30, 0.0, 0.02])
    lo, hi = weight_range(row, exclude=0, decades=3)
    assert hi == pytest.approx(float(torch.log10(torch.tensor(0.05))))
    assert lo == pytest.approx(hi - 3)  # not down to 1e-30
    lo, hi = weight_range(torch.tensor([0.5, 0.5]))
    assert lo < hi


def test_receptive_radius_of_the_tiny_preset():
    assert receptive_radius(lcoan.preset("tiny")) == 2 + 3 * 3


def test_walkthrough_steps_are_consistent_with_the_trace():
    model, t = _trace("lsp", 9, 11)
    p = t.patterns[0]
    wt = walkthrough(t, radius=3, position=50)
    assert len(wt.steps) == 8 and [s.title for s in wt.steps] == list(TITLES)
    assert all(len(c.split("\n")) == 3 for c in wt.captions())  # title + two lines
    assert f"N={t.n}" in wt.steps[0].shapes and "D=8" in wt.steps[0].shapes
    assert torch.equal(wt.codes, p.codes[0]) and torch.equal(wt.order, p.order[0])
    assert torch.equal(wt.codes[wt.order], wt.codes[wt.order].sort().values)  # sorted by cluster
    assert wt.embedding_rgb.shape == (t.n, 3) and 0 <= float(wt.embedding_rgb.min()) <= 1
    # roles: the query's own window is role 2, and the keys with weight are exactly the seen positions
    assert int(wt.roles[50]) == 2
    assert torch.equal(wt.lsp.row > 0, wt.roles > 0) or bool(((wt.lsp.row > 0) <= (wt.roles > 0)).all())
    assert len(ROLE_NAMES) == 4
    # CoA: one weight row times each group's own value norms
    assert wt.contributions.shape == (len(t.groups), t.n)
    torch.testing.assert_close(wt.contributions[1], wt.lsp.row * t.groups[1].value_norm)
    torch.testing.assert_close(wt.dense_row.sum(), torch.tensor(1.0))
    assert 0 <= wt.lsp.recall <= 1 + 1e-6


def test_walkthrough_picks_a_query_and_refuses_dense_traces():
    _, t = _trace("lsp", 6, 5)  # N = 30 > W = 16: two windows
    wt = walkthrough(t, radius=1)
    assert 0 <= wt.position < t.n and wt.num_windows == 2
    _, d = _trace("dense", 6, 5)
    with pytest.raises(ValueError, match="LSP"):
        walkthrough(d, radius=1)


def test_pca_rgb_of_few_channels():
    assert pca_rgb(torch.randn(20, 2)).shape == (20, 3)


def _keys(n: int = 300, d: int = 8, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centres = torch.nn.functional.normalize(torch.randn(5, d, generator=g), dim=-1)
    x = centres[torch.randint(5, (n,), generator=g)] + 0.1 * torch.randn(n, d, generator=g)
    return torch.nn.functional.normalize(x, dim=-1)


def test_kmeans_live_ema_steps_are_the_training_update():
    keys = _keys()
    trained = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    run = kmeans_live(keys, (15, 20), trained, "trained", steps=3, batch=1000, decay=0.5)
    assert [f.phase for f in run.frames] == ["start", "ema", "ema", "ema"]
    # batch >= N: every step sees every position, so the same updates by CentroidBank itself agree
    bank = CentroidBank(1, 6, 8, decay=0.5).train()
    bank.centroids[0] = trained
    bank.initted.fill_(True)
    for _ in range(3):
        bank(keys[torch.randperm(300)][None])  # order does not change the sums
    torch.testing.assert_close(run.centroids, bank.centroids[0], atol=1e-5, rtol=0)
    assert run.frames[-1].objective >= run.frames[0].objective - 1e-6
    assert run.occupancy().shape == (4, 6) and int(run.occupancy()[0].sum()) == 300


def test_kmeans_live_fresh_start_initialises_then_moves_and_is_deterministic():
    keys = _keys()
    trained = torch.zeros(6, 8)
    state = torch.random.get_rng_state()
    a = kmeans_live(keys, (15, 20), trained, "fresh", steps=2, batch=128, init_iters=4, reseed_dead=True, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())  # the global random state is untouched
    b = kmeans_live(keys, (15, 20), trained, "fresh", steps=2, batch=128, init_iters=4, reseed_dead=True, seed=3)
    assert [f.phase for f in a.frames] == ["start"] + ["init"] * 4 + ["ema"] * 2
    assert torch.equal(a.centroids, b.centroids)
    assert a.frames[4].objective >= a.frames[0].objective  # k-means iterations never lower the objective
    s = a.summary()
    assert s["steps"] == 6 and len(s["frames"]) == 7 and s["positions"] == 300


@pytest.mark.parametrize("bad", [{"start": "warm"}, {"decay": 1.0}, {"steps": -1}, {"batch": 0}])
def test_kmeans_live_refuses_bad_settings(bad):
    with pytest.raises(ValueError):
        kmeans_live(_keys(), (15, 20), torch.zeros(6, 8), **bad)


def test_walkthrough_and_kmeans_pictures():
    from app.views import kmeans as KV
    from app.views.walkthrough import step_pictures

    _, t = _trace("lsp", 9, 11)
    image = torch.rand(9, 11, 3).numpy()
    wt = walkthrough(t, radius=2, position=30)
    pictures = step_pictures(wt, image)
    assert len(pictures) == 8 and all(p.size[0] > 50 and p.size[1] > 20 for p in pictures)
    p = t.patterns[0]
    run = kmeans_live(p.key, t.lr_size, p.centroids[0], "fresh", steps=2, batch=50, init_iters=2)
    frames = KV.frame_pictures(run, image)
    assert len(frames) == 5 and "frame 4 (EMA step)" in frames[-1][1]
    fig = KV.occupancy_figure(run)
    assert fig.data[-1].type == "heatmap" and len(fig.data[-1].x) == 5


def test_far_reaching_query_on_a_map_smaller_than_the_field_goes_by_mean_distance():
    from lcoan.introspect.query import mean_distance
    _, t = _trace("dense", 6, 7)
    best = far_reaching_query(t, radius=50)  # nothing is beyond 50 px on a 6x7 map
    pos = torch.arange(t.n)
    far = mean_distance(t.attention_rows(0, pos), pos, t.lr_size)
    assert float(far[best]) == pytest.approx(float(far.max()))
