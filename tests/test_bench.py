"""lcoan.bench: the quick run writes a complete CSV / plot / README block; the timed code is the network's."""
from __future__ import annotations

import csv

import pytest
import torch

from lcoan.bench import COLUMNS, KINDS, NETWORK_KINDS, build_models, dense_block, nonlocal_part, peak_bytes
from lcoan.bench.cli import main
from lcoan.bench.report import BEGIN, END, slope


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    readme = out / "README.md"
    readme.write_text("# Benchmarks\n\nhand-written text\n\n" + BEGIN + "\nold\n" + END + "\n\ntail text\n")
    assert main(["--quick", "--silent", "--device", "cpu", "--out", str(out)]) == 0
    with (out / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    return out, rows


def test_quick_run_times_every_kind(quick_run):
    out, rows = quick_run
    assert tuple(rows[0].keys()) == COLUMNS
    nonlocal_rows = [r for r in rows if r["measure"] == "nonlocal"]
    assert {r["kind"] for r in nonlocal_rows} == set(KINDS)
    for r in nonlocal_rows:
        assert float(r["time_ms"]) > 0 and int(r["repeats"]) >= 2
        assert float(r["min_ms"]) <= float(r["time_ms"]) <= float(r["max_ms"])
        assert float(r["peak_mib"]) > 0, "peak memory not measured (profiler allocation events missing?)"
        assert r["device"] == "cpu" and int(r["groups"]) == 3
    network = [r for r in rows if r["measure"] == "network"]
    assert {r["kind"] for r in network} == set(NETWORK_KINDS)
    for r in network:
        assert float(r["time_ms"]) > 0
        assert float(r["rest_ms"]) == pytest.approx(float(r["time_ms"]) - float(r["nonlocal_ms"]), abs=1e-2)


def test_quick_run_writes_plot_and_readme_block(quick_run):
    out, _ = quick_run
    assert (out / "nonlocal_time.png").stat().st_size > 10_000
    text = (out / "README.md").read_text()
    assert text.startswith("# Benchmarks\n\nhand-written text") and text.rstrip().endswith("tail text")
    assert "old" not in text and text.count(BEGIN) == 1 and text.count(END) == 1
    assert "lsp+coa / dense" in text and "Machine (cpu)" in text
    assert "Where the time of `lsp+coa` goes" in text and "| `bmm`: the scores once" in text
    assert "Every case was timed at least twice" in text  # --quick: two repeats each


def test_profile_shares_sum_to_one_and_bmm_dominates_lsp_coa():
    from lcoan.bench.measure import REST, profile_call
    model = build_models("tiny", torch.device("cpu"))["lsp+coa"]
    with torch.inference_mode():
        fn = nonlocal_part(model, "lsp+coa", torch.randn(1, 8, 40, 40))
        fn()
        _, _, shares = profile_call(fn, torch.device("cpu"))
    assert sum(shares.values()) == pytest.approx(1.0) and REST in shares
    assert shares["`bmm`: the scores once, then weights @ values in every group"] > 0.05


def test_slope_fit():
    rows = [{"positions": n, "time_ms": 3.0 * n ** 2} for n in (4096, 16384, 65536)]
    assert slope(rows) == pytest.approx(2.0)
    assert slope(rows[:1]) is None


def test_timed_blocks_compute_what_the_network_computes():
    models = build_models("tiny", torch.device("cpu"))
    y = torch.randn(1, 8, 9, 7)
    with torch.inference_mode():
        for group in models["dense"].groups:
            torch.testing.assert_close(dense_block(group.attention, y, naive=False), group.attention(y))
            torch.testing.assert_close(dense_block(group.attention, y, naive=True), group.attention(y),
                                       rtol=1e-4, atol=1e-5)
        # CoA runs the pattern maker once for all groups; the ablation once per group.
        calls = []
        for kind, expected in (("lsp+coa", 1), ("lsp", 3)):
            hooks = [p.register_forward_hook(lambda *_: calls.append(1)) for p in models[kind].patterns]
            calls.clear()
            nonlocal_part(models[kind], kind, y, 3)()
            assert len(calls) == expected
            for h in hooks:
                h.remove()


def test_peak_bytes_sees_a_known_allocation():
    def fn():
        a = torch.ones(1 << 20)  # 4 MiB
        b = a * 2  # another 4 MiB while a is alive
        del a, b
    peak, seconds = peak_bytes(fn, torch.device("cpu"))
    assert 8 * 2**20 <= peak < 8 * 2**20 + 4096 and seconds > 0  # (+ a scalar or two)


def test_lsp_kind_on_a_shared_pattern_network_recomputes_the_pattern_per_group():
    """The app times "LSP in every group" on the shipped LCoAN network, which has one pattern module."""
    model = build_models("tiny", torch.device("cpu"))["lsp+coa"]
    assert len(model.patterns) == 1
    calls = []
    model.patterns[0].register_forward_hook(lambda *_: calls.append(1))
    with torch.inference_mode():
        nonlocal_part(model, "lsp", torch.randn(1, 8, 6, 5))()
    assert len(calls) == model.cfg.num_groups
    with pytest.raises(ValueError):
        nonlocal_part(model, "sparse", torch.randn(1, 8, 6, 5))


def test_round_robin_interleaves_and_respects_the_budget():
    import time

    from lcoan.bench.timing import round_robin, timed_call, warm_up

    order = []
    fns = {"slow": lambda: (order.append("slow"), time.sleep(0.3)), "fast": lambda: order.append("fast")}
    samples = warm_up(fns, keep_s=0.25)
    assert len(samples["slow"]) == 1 and samples["fast"] == []
    order.clear()
    out = round_robin(fns, 4, samples, budget_s=0.5)
    assert order[:2] == ["slow", "fast"]  # one call of each per round
    assert 1 < len(out["slow"]) < 4 and len(out["fast"]) == 4  # slow stopped by the budget, fast went on
    result, seconds = timed_call(lambda: 42)
    assert result == 42 and 0 < seconds < 1
