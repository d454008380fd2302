"""LSP / CoA / dense attention: exactness against slow references, sharing, k-means state."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lcoan.attention.dense import dense_attention, dense_attention_naive
from lcoan.attention.kmeans import CentroidBank, spherical_kmeans
from lcoan.attention.lsp import build_pattern, effective_window, key_slots
from lcoan.config import preset
from lcoan.network import LCoAN


def slow_lsp(query, key, value, codes, window):
    """Per-query loop: rank in the stable cluster sort, window, keys of window -1/0/+1, softmax; rounds
    merged by the softmax of their log-sum-exp. (B, N, D), (B, N, D), (B, N, C), (B, R, N) -> (B, N, C)."""
    b, n, _ = query.shape
    w = effective_window(n, window)
    nw = -(-n // w)
    out = torch.zeros_like(value)
    for bi in range(b):
        per_round, lses = [], []
        for r in range(codes.shape[1]):
            order = sorted(range(n), key=lambda i: int(codes[bi, r, i]))  # Python sort is stable
            rank = {p: i for i, p in enumerate(order)}
            o = torch.zeros(n, value.shape[-1], dtype=value.dtype)
            lse = torch.zeros(n, dtype=value.dtype)
            for i in range(n):
                win = rank[i] // w
                ranks = [j for j in range(n) if max(win - 1, 0) <= j // w <= min(win + 1, nw - 1)]
                keys = [order[j] for j in ranks]
                s = key[bi, keys] @ query[bi, i]
                o[i] = torch.softmax(s, 0) @ value[bi, keys]
                lse[i] = torch.logsumexp(s, 0)
            per_round.append(o)
            lses.append(lse)
        mix = torch.softmax(torch.stack(lses), 0)
        out[bi] = sum(m[:, None] * o for m, o in zip(mix, per_round))
    return out


def random_case(b, n, d, c, rounds, k, dtype=torch.float64):
    q = torch.randn(b, n, d, dtype=dtype)
    kn = F.normalize(q, dim=-1)
    v = torch.randn(b, n, c, dtype=dtype)
    codes = torch.randint(0, k, (b, rounds, n))
    return q, kn, v, codes


@pytest.mark.parametrize("n,window,rounds", [(1, 16, 1), (5, 16, 1), (16, 16, 1), (17, 16, 1), (40, 7, 1),
                                             (100, 16, 1), (33, 8, 2), (50, 384, 3), (7 * 5, 4, 2)])
def test_lsp_matches_slow_reference(n, window, rounds):
    q, k, v, codes = random_case(2, n, 6, 5, rounds, k=5)
    fast = build_pattern(q, k, codes, window).apply(v)
    torch.testing.assert_close(fast, slow_lsp(q, k, v, codes, window), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("n", [1, 35, 384, 500])
def test_lsp_with_one_window_equals_dense_softmax(n):
    q, k, v, codes = random_case(2, n, 8, 4, 1, k=16, dtype=torch.float32)
    sparse = build_pattern(q, k, codes, window=max(n, 384)).apply(v)
    torch.testing.assert_close(sparse, dense_attention_naive(q, k, v), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(sparse, dense_attention(q, k, v), rtol=1e-4, atol=1e-5)


def test_every_query_attends_exactly_its_window_and_neighbours():
    n, w = 50, 8
    q, k, v, codes = random_case(1, n, 4, 3, 1, k=6)
    pattern = build_pattern(q, k, codes, w)
    index, valid = key_slots(n, w)
    weights = pattern.weights[0][0].reshape(-1, 3 * w)[:n]  # (N sorted, 3W)
    for rank in range(n):
        win = rank // w
        expected = {j for j in range(n) if abs(j // w - win) <= 1}
        nonzero = set(index[win][weights[rank] > 0].tolist())
        assert nonzero == expected
        assert torch.isclose(weights[rank].sum(), torch.tensor(1.0, dtype=weights.dtype))


def test_pattern_sort_is_stable_and_inverse_is_consistent():
    q, k, v, codes = random_case(2, 30, 4, 3, 2, k=3)
    p = build_pattern(q, k, codes, 8)
    for b in range(2):
        for r in range(2):
            order = p.order[b, r]
            assert torch.equal(order, torch.tensor(sorted(range(30), key=lambda i: int(codes[b, r, i]))))
            assert torch.equal(order[p.inverse[b, r]], torch.arange(30))


def counting(module):
    calls = []
    module.register_forward_hook(lambda *_: calls.append(1))
    return calls


@pytest.mark.parametrize("groups", [1, 3, 6])
def test_coa_computes_the_weights_once_per_forward(groups):
    model = LCoAN(preset("tiny", num_groups=groups))
    assert len(model.patterns) == 1
    calls = counting(model.patterns[0])
    model(torch.rand(2, 3, 12, 10))
    assert len(calls) == 1


def test_lsp_only_ablation_computes_a_pattern_per_group():
    model = LCoAN(preset("tiny", num_groups=4, share_pattern=False))
    calls = [counting(p) for p in model.patterns]
    model(torch.rand(1, 3, 12, 10))
    assert [len(c) for c in calls] == [1, 1, 1, 1]


def test_later_groups_use_their_own_value_projection():
    model = LCoAN(preset("tiny", num_groups=3)).eval()
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        base, trace = model.forward_with_trace(x)
        # A group's attention output is the shared weights applied to its own values.
        for g in range(3):
            row = trace.attention_row(g, 17)
            torch.testing.assert_close(row @ trace.groups[g].value, trace.groups[g].attention_out[17],
                                       rtol=1e-4, atol=1e-5)
        model.groups[2].attention.value.weight.mul_(3.0)
        changed = model(x)
    assert not torch.allclose(base, changed)


def test_gradients_reach_the_match_embedding_through_every_group():
    """Through LCoAN.forward: with every other group's value projection set to zero, only group g
    uses the shared softmax weights, so a gradient at the match conv proves that group g's use of
    them is differentiable (a later group that detached the shared weights would send none)."""
    x = torch.rand(2, 3, 10, 10)

    def match_grad(active: set[int]) -> torch.Tensor:
        torch.manual_seed(0)
        model = LCoAN(preset("tiny", num_groups=3)).train()
        with torch.no_grad():
            for g, group in enumerate(model.groups):
                if g not in active:
                    group.attention.value.weight.zero_()
                    group.attention.value.bias.zero_()
        model(x).square().sum().backward()
        return model.patterns[0].match.weight.grad

    silent = match_grad(set())
    assert silent is None or silent.abs().sum() == 0  # no group uses the weights: no gradient at all
    for g in range(3):
        grad = match_grad({g})
        assert grad is not None and grad.abs().sum() > 0, f"group {g} sends no gradient to the match conv"


def test_centroids_initialise_once_then_move_by_ema_in_train_mode_only():
    torch.manual_seed(1)
    bank = CentroidBank(rounds=1, num_clusters=4, dim=3, decay=0.9, init_iters=5)
    x = F.normalize(torch.randn(2, 64, 3), dim=-1)
    bank.eval()
    bank(x)
    assert not bool(bank.initted)
    bank.train()
    bank(x)
    assert bool(bank.initted)
    after_init = bank.centroids.clone()
    # k-means init: every centroid is the normalised mean of its members (a fixed point up to one step).
    torch.testing.assert_close(after_init.norm(dim=-1), torch.ones(1, 4))
    y = F.normalize(torch.randn(2, 64, 3) + torch.tensor([3.0, 0, 0]), dim=-1)
    bank(y)
    moved = bank.centroids.clone()
    assert not torch.allclose(moved, after_init)
    # The EMA step is small (decay 0.9): not a re-initialisation.
    assert (moved - after_init).norm(dim=-1).max() < 0.5
    bank.eval()
    bank(y)
    assert torch.equal(bank.centroids, moved)


def test_ema_update_matches_the_formula():
    bank = CentroidBank(rounds=1, num_clusters=2, dim=2, decay=0.75)
    bank.centroids.copy_(torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]))
    bank.initted.fill_(True)
    x = F.normalize(torch.tensor([[[1.0, 0.2], [1.0, -0.1], [0.3, 1.0]]]), dim=-1)
    bank.train()(x)
    mean0 = (x[0, 0] + x[0, 1]) / 2
    expected0 = F.normalize(0.75 * torch.tensor([1.0, 0.0]) + 0.25 * mean0, dim=0)
    expected1 = F.normalize(0.75 * torch.tensor([0.0, 1.0]) + 0.25 * x[0, 2], dim=0)
    torch.testing.assert_close(bank.centroids[0], torch.stack([expected0, expected1]))


def test_frozen_centroids_keep_their_first_batch_initialisation():
    bank = CentroidBank(rounds=1, num_clusters=4, dim=3, frozen=True).train()
    bank(F.normalize(torch.randn(1, 50, 3), dim=-1))
    first = bank.centroids.clone()
    bank(F.normalize(torch.randn(1, 50, 3) + 2, dim=-1))
    assert bool(bank.initted) and torch.equal(bank.centroids, first)


def test_spherical_kmeans_separates_clear_clusters():
    centres = F.normalize(torch.randn(3, 8), dim=-1)
    x = F.normalize(centres.repeat_interleave(40, 0) + 0.05 * torch.randn(120, 8), dim=-1)
    found = spherical_kmeans(x, 3, iters=10, generator=torch.Generator().manual_seed(3))
    assert (found @ centres.t()).max(dim=0).values.min() > 0.95


def test_model_centroids_are_buffers_saved_once():
    model = LCoAN(preset("tiny", num_groups=4))
    keys = [k for k in model.state_dict() if "centroids" in k]
    assert keys == ["patterns.0.clusters.centroids"]
    assert "patterns.0.clusters.centroids" in dict(model.named_buffers())


@pytest.mark.parametrize("kind", ["lsp", "dense", "none"])
@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("size", [(1, 1), (7, 5), (20, 13)])
def test_network_shapes(kind, scale, size):
    model = LCoAN(preset("tiny", attention=kind, scale=scale)).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, *size))
    assert out.shape == (1, 3, size[0] * scale, size[1] * scale)
    assert torch.isfinite(out).all()


def test_dense_trace_rows_reproduce_each_layer_output():
    model = LCoAN(preset("tiny", attention="dense")).eval()
    with torch.no_grad():
        _, trace = model.forward_with_trace(torch.rand(1, 3, 9, 11))
    for g in range(3):
        row = trace.attention_row(g, 40)
        assert torch.isclose(row.sum(), torch.tensor(1.0))
        torch.testing.assert_close(row @ trace.groups[g].value, trace.groups[g].attention_out[40],
                                   rtol=1e-4, atol=1e-5)
