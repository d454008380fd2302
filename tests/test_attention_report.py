"""The attention report's measurements, and the optional departures from the paper it ablates
(logit scale, dead-centroid re-seeding, attn_res_scale re-parametrisation at fine-tuning)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import lcoan
from lcoan.attention.kmeans import CentroidBank
from lcoan.config import ConfigError, LCoANConfig
from lcoan.introspect import report as ar
from lcoan.network import LCoAN, reconfigured
from lcoan.training.train import init_from
from tests.tiny_checkpoints import textured


def tiny(**kw) -> LCoAN:
    return lcoan.create_model(lcoan.preset("tiny", **kw)).eval()


def test_entropy_is_one_for_a_uniform_row_and_zero_for_one_hot():
    n = 37
    assert ar.normalised_entropy(torch.full((2, n), 1 / n)) == pytest.approx(torch.ones(2))
    one_hot = torch.zeros(1, n)
    one_hot[0, 5] = 1
    assert float(ar.normalised_entropy(one_hot)) == pytest.approx(0.0, abs=1e-6)


def test_top_share_of_uniform_row_is_the_fraction():
    n = 1000
    assert float(ar.top_share(torch.full((1, n), 1 / n))) == pytest.approx(0.01)
    assert float(ar.top_share(torch.tensor([[0.9, 0.05, 0.05]]))) == pytest.approx(0.9)


def test_perplexity_counts_equal_groups():
    assert ar.perplexity(torch.tensor([5, 5, 5, 5, 0, 0])) == pytest.approx(4.0)
    assert ar.perplexity(torch.tensor([10, 0, 0])) == pytest.approx(1.0)


def test_ablation_with_scale_zero_runs_the_backbone_alone():
    """attn_res_scale = 0 gives exactly the plain backbone with the same weights."""
    for kind in ("lsp", "dense"):
        model = tiny(attention=kind)
        off = reconfigured(model, attn_res_scale=0.0).eval()
        plain = tiny(attention="none")
        missing, _ = plain.load_state_dict(model.state_dict(), strict=False)
        assert not missing
        x = torch.rand(1, 3, 9, 11)
        with torch.no_grad():
            assert torch.equal(off(x), plain(x))
            assert not torch.equal(model(x), plain(x))  # the branch does something when on


def test_reconfigured_leaves_the_original_untouched():
    model = tiny(attention="lsp")
    clone = reconfigured(model, window=4)
    assert model.cfg.window == 16 and clone.cfg.window == 4
    for (k, a), (_, b) in zip(model.state_dict().items(), clone.state_dict().items()):
        assert torch.equal(a, b), k


def test_recall_is_one_when_the_window_covers_everything():
    model = tiny(attention="lsp", window=4096)
    lr = textured(12, 10)
    with torch.no_grad():
        _, trace = model.forward_with_trace(lcoan.inference.to_tensor(lr))
    stats = ar.trace_stats(trace, queries=64)
    assert stats["recall"] == pytest.approx(1.0, abs=1e-5)
    assert stats["flat_recall"] == 1.0


def test_recall_is_below_one_with_small_windows_and_matches_its_definition():
    model = tiny(attention="lsp", window=4)
    lr = textured(16, 16)
    with torch.no_grad():
        _, trace = model.forward_with_trace(lcoan.inference.to_tensor(lr))
    pat = trace.patterns[0]
    pos = ar.sample_positions(pat.n, 32)
    manual = np.mean([pat.recall(int(p)) for p in pos])
    assert ar.trace_stats(trace, 32)["recall"] == pytest.approx(manual, abs=1e-5)
    assert manual < 1.0


def test_report_on_a_folder(tmp_path):
    """End to end: one tiny lsp checkpoint, two images, JSON and markdown written."""
    ckpt = tmp_path / "lcoan-tiny-x2"
    lcoan.save(tiny(attention="lsp"), ckpt)
    data = tmp_path / "imgs"
    data.mkdir()
    from PIL import Image
    for i in range(2):
        Image.fromarray(textured(40, 36, seed=i)).save(data / f"im{i}.png")
    out = tmp_path / "r.json"
    assert ar.main(["--checkpoint", str(ckpt), "--data", str(data), "--lr-size", "16", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    s = res[0]["summary"]
    # 40x36 HR -> 20x18 LR: each image is covered by 2 x 2 overlapping 16x16 tiles
    assert s["images"] == 2 and s["tiles"] == 8 and res[0]["per_tile"][0]["lr_size"] == [16, 16]
    assert s["drop_ci"]["lo"] <= s["drop"] <= s["drop_ci"]["hi"]
    assert sum(s[f"mass_{r}"] for r in ("self", "neighbours", "within_rf", "beyond_rf")) == pytest.approx(1.0)
    assert ar.gain_interval(res[0], res[0])["mean"] == 0.0
    assert 0 < s["entropy"] <= 1 and 0 < s["recall"] <= 1 and 0 < s["clusters_used"] <= 1
    assert s["drop"] == pytest.approx(s["psnr_on"] - s["psnr_off"])
    assert "lcoan-tiny-x2" in ar.markdown(res)


def test_report_refuses_a_missing_checkpoint_with_a_message(tmp_path, capsys):
    assert ar.main(["--checkpoint", str(tmp_path / "nope"), "--data", str(tmp_path)]) == 2
    assert "error" in capsys.readouterr().err


# ---------------------------------------------------------------- logit scale

def test_logit_scale_multiplies_the_query_and_is_learnable():
    base = tiny(attention="lsp")
    scaled = lcoan.create_model(base.cfg.replace(logit_scale=8.0)).eval()
    scaled.load_state_dict(base.state_dict(), strict=False)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        _, t1 = base.forward_with_trace(x)
        _, t8 = scaled.forward_with_trace(x)
    assert torch.allclose(t8.patterns[0].query, 8 * t1.patterns[0].query, rtol=1e-5, atol=1e-6)
    assert torch.allclose(t8.patterns[0].key, t1.patterns[0].key)
    scaled.train()
    scaled(torch.rand(2, 3, 8, 8)).mean().backward()
    assert scaled.patterns[0].log_scale.grad is not None
    dense = lcoan.create_model(lcoan.preset("tiny", attention="dense", logit_scale=4.0))
    assert float(dense.groups[0].attention.log_scale.detach().exp()) == pytest.approx(4.0)


def test_logit_scale_config_round_trip_and_validation():
    cfg = lcoan.preset("tiny", logit_scale=8.0, reseed_dead=True)
    assert LCoANConfig.from_json(cfg.to_json()) == cfg
    old = json.loads(lcoan.preset("tiny").to_json())
    del old["logit_scale"], old["reseed_dead"]  # a config.json written before these fields existed
    assert LCoANConfig.from_dict(old).logit_scale is None
    for bad in (0.0, -1.0, float("nan"), "8"):
        with pytest.raises(ConfigError):
            lcoan.preset("tiny", logit_scale=bad)


# ---------------------------------------------------------------- re-seeding

def test_reseed_moves_dead_centroids_onto_batch_embeddings():
    torch.manual_seed(0)
    bank = CentroidBank(1, 8, 4, decay=0.9, reseed_dead=True).train()
    x = torch.nn.functional.normalize(torch.randn(1, 64, 4), dim=-1)
    bank(x)  # initialises from this batch
    bank.cluster_size[0, 3] = 0.0  # cluster 3 lost its members
    before = bank.centroids[0, 3].clone()
    dead = bank.reseed(x.reshape(-1, 4), 0)
    assert 3 in dead.tolist()
    moved = bank.centroids[0, 3]
    assert not torch.equal(moved, before)
    assert torch.isclose((x[0] @ moved).max(), torch.tensor(1.0), atol=1e-5)  # it sits on a batch embedding
    assert float(bank.cluster_size[0, 3]) > 0  # grace period


def test_without_reseed_a_dead_centroid_stays():
    bank = CentroidBank(1, 8, 4, reseed_dead=False).train()
    x = torch.nn.functional.normalize(torch.randn(1, 64, 4), dim=-1)
    bank(x)
    bank.cluster_size[0, 3] = 0.0
    before = bank.centroids.clone()
    bank.eval()
    bank(x)
    assert torch.equal(bank.centroids, before)


# ---------------------------------------------------------------- fine-tuning with another attn_res_scale

@pytest.mark.parametrize("kind", ["lsp", "dense"])
def test_init_from_with_another_attn_res_scale_keeps_the_function(tmp_path, kind):
    src = tiny(attention=kind)
    lcoan.save(src, tmp_path / "src")
    dst = lcoan.create_model(src.cfg.replace(attn_res_scale=1.0))
    init_from(dst, str(tmp_path / "src"))
    x = torch.rand(1, 3, 9, 9)
    with torch.no_grad():
        assert torch.allclose(dst.eval()(x), src(x), atol=1e-5)
    assert not math.isclose(float(dst.groups[0].attention.value.weight.detach().abs().sum()),
                            float(src.groups[0].attention.value.weight.detach().abs().sum()))
