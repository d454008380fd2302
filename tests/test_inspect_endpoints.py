"""The "inside LCoA" API endpoints through a real in-process server and gradio_client, on tiny
random checkpoints (K = 8, W = 16) and real PNG files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app.services.inspection import inspector_for
from app.views.attention import attention_overlay
from app.views.common import display_factor, display_uint8
from tests.inspect_app import launch
from tests.tiny_checkpoints import make_checkpoints, textured

gradio_client = pytest.importorskip("gradio_client")
EXAMPLE = Path(__file__).resolve().parents[1] / "assets" / "examples" / "brick_wall.png"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = make_checkpoints(tmp_path_factory.mktemp("ckpt"))
    demo, url, service = launch(folder)
    images = tmp_path_factory.mktemp("img")
    paths = {"photo": images / "photo.png", "tiny": images / "tiny.png"}
    Image.fromarray(textured(12, 14)).save(paths["photo"])  # N = 168 > W = 16
    Image.fromarray(textured(4, 4, seed=1)).save(paths["tiny"])  # N = 16 <= W = 16: one window
    client = gradio_client.Client(url, verbose=False)
    yield client, service, paths
    client.close()
    demo.close()


def _args(path: Path) -> dict:
    return {"image": gradio_client.handle_file(str(path)), "scale": 2, "region": "downscale"}


def test_endpoints_are_named(server):
    client, _, _ = server
    names = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert {"/clusters", "/cluster_members", "/cluster_projection", "/attention", "/attention_far", "/similarity_band",
            "/similarity_layers", "/efficiency", "/walkthrough", "/kmeans_live"} <= names


def test_clusters_and_members(server):
    client, service, paths = server
    overlay, sizes, info, choice = client.predict(**_args(paths["photo"]), opacity=0.5, api_name="/clusters")
    f = display_factor((12, 14))
    assert Image.open(overlay).size == (14 * f, 12 * f)
    assert "K = 8 clusters" in info and "windows" in info
    trace = inspector_for(service).inspect(str(paths["photo"]), 2).lcoan
    sizes_k = trace.patterns[0].cluster_sizes()
    k = choice["value"]
    assert k == int(sizes_k.argmax())
    members, strip, data = client.predict(**_args(paths["photo"]), cluster=k, api_name="/cluster_members")
    assert data["positions"] == torch.nonzero(trace.patterns[0].codes[0] == k)[:, 0].tolist()
    assert Image.open(members).size == (14 * f, 12 * f)
    assert Image.open(strip).size[1] == 9 * 10  # 9x9 LR patches, zoom 10
    fig = client.predict(**_args(paths["photo"]), method="pca", cluster=k, api_name="/cluster_projection")
    assert fig is not None


def test_attention_highlights_exactly_the_window_keys(server):
    client, service, paths = server
    insp = inspector_for(service).inspect(str(paths["photo"]), 2)
    p = insp.lcoan.patterns[0]
    for y, x in ((0, 0), (5, 9), (11, 13)):
        out = client.predict(**_args(paths["photo"]), y=y, x=x, log=False, api_name="/attention")
        overlay, recall_fig, contrib, dense, info, data, qy, qx, matches, mass, dense_overlay, dense_matches = out
        pos = y * 14 + x
        assert (data["query"], data["position"], qy, qx) == ([y, x], pos, y, x)
        assert sorted(data["keys"]) == sorted(p.keys_of(pos).tolist())
        assert abs(sum(data["weights"]) - 1) < 1e-4
        assert 0.0 <= data["recall"] <= 1.0 + 1e-6 and 0.0 <= data["recall_mean"] <= 1.0 + 1e-6
        assert data["recall"] == pytest.approx(p.recall(pos), abs=1e-6)
        # the image highlights exactly those keys: every other block stays at the dimmed picture
        shown = np.asarray(Image.open(overlay).convert("RGB"))
        assert np.array_equal(shown, np.asarray(attention_overlay(insp.lcoan, insp.image, pos)))
        f = display_factor(insp.size)
        centres = shown[f // 2::f, f // 2::f].reshape(-1, 3).astype(int)
        grey = display_uint8(insp.image).astype(np.float32).mean(-1, keepdims=True).repeat(3, -1) * 0.3
        lit = np.nonzero(np.abs(centres - np.round(grey).reshape(-1, 3)).max(-1) > 1)[0]
        assert set(lit.tolist()) == set(data["keys"])
        assert data["has_dense"] and dense is not None and len(data["dense"]) == 3
        assert f"row {y}, col {x}" in info
        # the self-weight stated, the top matches listed (never the query itself), the mass split
        assert f"Self-weight {data['self_weight']:.3f}" in info and pos not in data["top_keys"]
        assert data["self_weight"] == pytest.approx(data["weights"][data["keys"].index(pos)], abs=1e-6)
        assert sum(data["mass"].values()) == pytest.approx(1, abs=1e-5)
        assert data["mass"]["self"] == pytest.approx(data["self_weight"], abs=1e-5)
        assert Image.open(matches).size[0] > Image.open(matches).size[1] and mass is not None
        # the same drawing for the dense model's layer 1, its self-weight in the data
        assert Image.open(dense_overlay).size == Image.open(overlay).size and dense_matches is not None
        assert 0 <= data["dense"][0]["self_weight"] <= 1 and data["dense"][0]["keys"] == 168


def test_dense_layer_to_draw_is_checked(server):
    client, _, paths = server
    info = client.predict(**_args(paths["photo"]), y=1, x=2, log=True, dense_layer=9, api_name="/attention")[4]
    assert "the dense model has layers 1..3, got 9" in info


def test_far_reaching_query_and_scale_keeps_nothing_stale(server):
    client, service, paths = server
    out = client.predict(**_args(paths["photo"]), log=True, api_name="/attention_far")
    data = out[5]
    insp = inspector_for(service).inspect(str(paths["photo"]), 2)
    from lcoan.introspect.mass import mass_rows
    pos = torch.arange(insp.n)
    beyond = mass_rows(insp.lcoan.attention_rows(0, pos), pos, insp.size, data["radius"])[:, 3]
    assert data["mass"]["beyond_rf"] == pytest.approx(float(beyond.max()), abs=1e-5)  # all 168 sampled


def test_walkthrough_endpoint_defaults_and_a_chosen_query(server):
    client, service, paths = server
    gallery, data, status = client.predict(image=gradio_client.handle_file(str(paths["photo"])),
                                           api_name="/walkthrough")  # every other parameter has a default
    assert len(gallery) == 8 and len(data["steps"]) == 8
    for item, step in zip(gallery, data["steps"]):
        assert Path(item["image"]).exists() and item["caption"].split("\n")[1] == step["what"]
        assert "(" in step["shapes"]  # tensor shapes
    assert "N=168" in data["steps"][0]["shapes"] and "Query (row" in status
    gallery, data, _ = client.predict(**_args(paths["photo"]), query_row=3, query_col=4, api_name="/walkthrough")
    assert data["query"] == [3, 4] and data["position"] == 3 * 14 + 4
    _, _, status = client.predict(**_args(paths["photo"]), query_row=30, query_col=4, api_name="/walkthrough")
    assert "outside the traced LR map" in status


def test_kmeans_live_endpoint(server):
    client, _, paths = server
    gallery, fig, data, status = client.predict(image=gradio_client.handle_file(str(paths["photo"])),
                                                api_name="/kmeans_live")  # defaults: trained start, 12 steps
    assert len(gallery) == 13 and data["start"] == "trained" and data["steps"] == 12 and fig is not None
    assert [f["phase"] for f in data["frames"]][:2] == ["start", "ema"] and "clusters used" in status
    gallery, _, data, _ = client.predict(**_args(paths["photo"]), start="fresh", steps=2, decay=0.5, batch=64,
                                         reseed="off", api_name="/kmeans_live")
    assert [f["phase"] for f in data["frames"]] == ["start"] + ["init"] * 3 + ["ema"] * 2  # tiny: 3 init iters
    _, _, _, status = client.predict(**_args(paths["photo"]), decay=1.5, api_name="/kmeans_live")
    assert "decay must be in [0, 1)" in status


def test_recall_is_one_when_the_window_holds_every_position(server):
    client, _, paths = server
    data = client.predict(**_args(paths["tiny"]), y=1, x=2, log=True, api_name="/attention")[5]
    assert len(data["keys"]) == 16
    assert data["recall"] == pytest.approx(1.0, abs=1e-5) and data["recall_mean"] == pytest.approx(1.0, abs=1e-5)


def test_out_of_range_query_gets_a_message_not_a_clamp(server):
    client, _, paths = server
    for y, x in ((500, 3), (2, -3)):
        info = client.predict(**_args(paths["photo"]), y=y, x=x, log=False, api_name="/attention")[4]
        assert f"Query (row {y}, col {x}) is outside the traced LR map: rows 0..11, cols 0..13" in info


def test_similarity_endpoints(server):
    client, service, paths = server
    fig, note, start = client.predict(**_args(paths["photo"]), span=0, start=0, api_name="/similarity_band")
    assert "N = 168" in note and start == 0
    fig, note, start = client.predict(**_args(paths["photo"]), span=-1, start=500, api_name="/similarity_band")
    assert start == 168 - 16  # clamped so one window fits
    maps, red, data, note = client.predict(**_args(paths["photo"]), api_name="/similarity_layers")
    js = np.array(data["js"])
    assert js.shape == (3, 3) and np.allclose(np.diag(js), 0) and (js >= 0).all() and (js <= np.log(2) + 1e-6).all()
    assert np.allclose(np.diag(np.array(data["corr"])), 1) and "Jensen-Shannon" in note


def test_efficiency_endpoint(server):
    client, _, paths = server
    fig, info, report = client.predict(image=gradio_client.handle_file(str(paths["photo"])), scale=2,
                                       api_name="/efficiency")
    assert report["positions"] == 168 and len(report["results"]) == 3 and "LCoA" in info


@pytest.mark.skipif(not EXAMPLE.exists(), reason="bundled example assets/examples/brick_wall.png not present")
def test_bundled_example_above_the_limit_is_traced_on_a_downscale(server):
    client, _, _ = server
    _, _, info, _ = client.predict(**_args(EXAMPLE), opacity=0.6, api_name="/clusters")
    assert "downscale of the whole 192x192 input to 128x128" in info  # 36,864 > 16,384 positions
    _, _, info, _ = client.predict(**{**_args(EXAMPLE), "region": "crop"}, opacity=0.6, api_name="/clusters")
    assert "centre 128x128 crop" in info
