"""Trace helpers used by the app's inspection views: batched keys / recall, the sorted band, batched rows."""
from __future__ import annotations

import pytest
import torch

import lcoan


def _trace(kind: str, h: int, w: int, **overrides):
    model = lcoan.create_model(lcoan.preset("tiny", attention=kind, **overrides)).eval()
    with torch.inference_mode():
        return model.forward_with_trace(torch.rand(1, 3, h, w))[1]


def test_rank_inverts_order_and_window_of_matches_search():
    p = _trace("lsp", 9, 11).patterns[0]
    assert torch.equal(p.order[0][p.rank[0]], torch.arange(p.n))
    for pos in (0, 17, p.n - 1):
        rank = int(torch.nonzero(p.order[0] == pos)[0, 0])
        assert p.window_of(pos) == rank // p.window


@pytest.mark.parametrize("rounds", [1, 2])
def test_key_positions_and_recall_many_match_single_query_versions(rounds):
    p = _trace("lsp", 9, 11, rounds=rounds).patterns[0]
    pos = torch.tensor([0, 5, 42, p.n - 1])
    for r in range(rounds):
        keys, valid = p.key_positions(pos, r)
        for i, q in enumerate(pos.tolist()):
            assert torch.equal(keys[i][valid[i]], p.keys_of(q, r))
    recall = p.recall_many(pos, chunk=3)
    expected = torch.tensor([p.recall(int(q)) for q in pos])
    torch.testing.assert_close(recall, expected)
    assert ((recall >= 0) & (recall <= 1 + 1e-6)).all()


def test_recall_is_one_when_one_window_holds_everything():
    p = _trace("lsp", 3, 4).patterns[0]  # N = 12 <= W = 16
    assert p.num_windows == 1
    torch.testing.assert_close(p.recall_many(torch.arange(p.n)), torch.ones(p.n))


def test_band_unbinned_equals_rows_in_sorted_order():
    t = _trace("lsp", 7, 9)
    p = t.patterns[0]
    full = torch.stack([t.attention_row(0, int(q)) for q in p.order[0]])  # rows in sorted order
    full = full[:, p.order[0]]  # columns in sorted order
    band, edges = p.band(bins=10_000)
    assert band.shape == (p.n, p.n) and torch.equal(edges, torch.arange(p.n + 1))
    torch.testing.assert_close(band, full)
    # a sub-range, exact
    sub, _ = p.band(20, 50, bins=100)
    torch.testing.assert_close(sub, full[20:50, 20:50])
    # outside the band of neighbouring windows everything is zero
    w = p.window
    win = torch.arange(p.n) // w
    assert (full[(win[:, None] - win[None, :]).abs() > 1] == 0).all()


def test_band_binned_is_block_mean():
    t = _trace("lsp", 7, 9)
    p = t.patterns[0]
    full, _ = p.band(bins=10_000)
    binned, edges = p.band(bins=8)
    assert binned.shape == (8, 8)
    for a in range(8):
        for b in range(8):
            block = full[edges[a]:edges[a + 1], edges[b]:edges[b + 1]]
            torch.testing.assert_close(binned[a, b], block.mean())
    with pytest.raises(ValueError):
        p.band(5, 5)


@pytest.mark.parametrize("kind", ["lsp", "dense"])
def test_attention_rows_batch_matches_rows(kind):
    t = _trace(kind, 6, 7)
    pos = torch.tensor([1, 9, 30])
    for g in range(len(t.groups)):
        rows = t.attention_rows(g, pos)
        torch.testing.assert_close(rows, torch.stack([t.attention_row(g, int(q)) for q in pos]))


@pytest.mark.parametrize("n,window,rounds", [(30, 8, 1), (29, 8, 2), (12, 16, 1)])
def test_trace_rows_are_the_forward_pass_weights(n, window, rounds):
    """The trace recomputes exactly the rows the pattern applies: apply(identity values) = attention matrix."""
    from lcoan.attention.lsp import build_pattern
    from lcoan.introspect.trace import PatternTrace

    torch.manual_seed(0)
    q = torch.randn(1, n, 4)
    k = torch.nn.functional.normalize(torch.randn(1, n, 4), dim=-1)
    codes = torch.randint(0, 4, (1, rounds, n))
    pattern = build_pattern(q, k, codes, window)
    matrix = pattern.apply(torch.eye(n)[None])[0]  # (N, N): row i = weights of query i over all keys
    trace = PatternTrace.from_pattern(pattern, torch.zeros(rounds, 4, 4), group=0)
    torch.testing.assert_close(trace.attention_rows(torch.arange(n)), matrix)
    keys, weights = trace.attention(3)
    torch.testing.assert_close(weights, matrix[3, keys])
    assert torch.equal(keys, torch.nonzero(matrix[3] > 0)[:, 0])
