"""The attention experiments' table is computed from the runs' files: gains pair runs of the same
scale and patch, a run still in progress says so, and the card names the paper departures."""
from __future__ import annotations

import json
from pathlib import Path

from lcoan.config import LCoANConfig
from scripts.experiment_table import collect, legacy_table, table
from scripts.report import departures


def fake_run(root: Path, name: str, kind: str, scale: int, step: int, vals: list[float],
             bsds: float | None = None, iters: int = 600, **cfg) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    info = {"config": {"attention": kind, "scale": scale, **cfg}, "step": step, "iters": iters,
            "command": f"python -m lcoan.train --scale {scale} --batch 16 --patch 48 --out {folder}"}
    (folder / "run.json").write_text(json.dumps(info))
    rows = ["step,loss,lr,val_psnr,elapsed_s,s_per_it"]
    rows += [f"{200 * i},,,{v},0,{2.0 + i}" for i, v in enumerate(vals)]
    (folder / "log.csv").write_text("\n".join(rows) + "\n")
    if bsds is not None:
        summary = {"psnr_on": bsds, "drop": 0.05 if kind != "none" else 0.0, "entropy": 0.5 if kind != "none" else None,
                   "recall": 0.4 if kind == "lsp" else None, "clusters_used": 0.9 if kind == "lsp" else None}
        (folder / "attention.json").write_text(json.dumps([{"data": "bsds", "summary": summary}]))


def row(text: str, variant: str) -> list[str]:
    line = next(ln for ln in text.splitlines() if ln.startswith(f"| {variant} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_gain_pairs_same_scale_and_patch(tmp_path: Path) -> None:
    fake_run(tmp_path, "none-p48", "none", 2, 600, [30.0, 30.2], bsds=31.0)
    fake_run(tmp_path, "lsp-fix-p48", "lsp", 2, 600, [30.0, 30.3], bsds=31.25, logit_scale=8.0, reseed_dead=True)
    fake_run(tmp_path, "lsp-fix-p48-x4", "lsp", 4, 600, [26.0, 26.1], bsds=27.0, logit_scale=8.0)
    text = legacy_table(collect(tmp_path))
    x2 = row(text, "lsp-fix-p48")
    assert x2[2] == "x2" and x2[3] == "ls8, reseed"
    assert x2[8] == "+0.100"  # val gain over none with the same scale and patch
    assert x2[10] == "+0.250"  # bsds gain
    x4 = row(text, "lsp-fix-p48-x4")
    assert x4[2] == "x4" and x4[8] == "–" and x4[10] == "–"  # no x4 none run: no gain, not the x2 one
    assert row(text, "none-p48")[8] == "–"


def test_running_run_is_marked(tmp_path: Path) -> None:
    fake_run(tmp_path, "dense-fix-p48", "dense", 2, 450, [30.4, 30.45], attn_res_scale=1.0)
    cells = row(table(collect(tmp_path)), "dense-fix-p48")  # no report yet: the current table
    assert cells[5] == "450/600 (running)"
    assert cells[3] == "ars1"
    assert cells[6] == "2.50"  # median s/iteration of the logged rows


def test_card_names_departures_only_when_present() -> None:
    assert departures(LCoANConfig(attention="lsp")) == ""
    assert departures(LCoANConfig(attention="none", logit_scale=8.0)) == ""
    text = departures(LCoANConfig(attention="lsp", logit_scale=8.0, attn_res_scale=1.0, reseed_dead=True))
    assert "logit scale" in text and "scale 1 (paper: 0.1)" in text and "re-seeded" in text


def test_floor_check_flags_a_loss_beyond_the_floor(tmp_path: Path, capsys) -> None:
    from scripts.floor_check import main as floor_main

    def write(path: Path, set5: float) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"Set5": {"mean": {"psnr": set5}}}))

    write(tmp_path / "before" / "a-x2.json", 37.00)
    write(tmp_path / "ckpt" / "a-x2" / "eval.json", 36.97)
    args = ["--before", str(tmp_path / "before"), "--checkpoints", str(tmp_path / "ckpt")]
    assert floor_main(args) == 0 and "| a-x2 | Set5 | 37.000 | 36.970 | -0.030 |" in capsys.readouterr().out
    write(tmp_path / "ckpt" / "a-x2" / "eval.json", 36.90)
    assert floor_main(args) == 1 and "OUTSIDE" in capsys.readouterr().out


def test_gain_pairs_same_schedule_and_matches_steps_while_running(tmp_path: Path) -> None:
    fake_run(tmp_path, "none-p48", "none", 2, 600, [30.0, 30.2, 30.3, 30.4])
    fake_run(tmp_path, "none-p48-long", "none", 2, 400, [30.0, 30.1, 30.15], iters=4000)
    fake_run(tmp_path, "lsp-fix-p48-long", "lsp", 2, 600, [30.0, 30.2, 30.35, 30.5], iters=4000)
    cells = row(table(collect(tmp_path)), "lsp-fix-p48-long")
    # paired with the 4000-iteration none run, not the 600 one, and at step 400, the last both logged
    assert cells[8] == "+0.200 @400"
    assert cells[5] == "600/4000 (running)"


def test_periodic_runs_pair_with_the_periodic_none_run(tmp_path: Path) -> None:
    fake_run(tmp_path, "none-p48", "none", 2, 600, [30.0, 30.5])
    fake_run(tmp_path, "none-per-p48", "none", 2, 600, [30.0, 30.1])
    fake_run(tmp_path, "lsp-fix-per-p48", "lsp", 2, 600, [30.0, 30.4], logit_scale=8.0)
    folder = tmp_path / "lsp-fix-per-p48"
    for name in ("none-per-p48", "lsp-fix-per-p48"):
        info = json.loads((tmp_path / name / "run.json").read_text())
        info["command"] += " --periodic 0.25"
        (tmp_path / name / "run.json").write_text(json.dumps(info))
    text = table(collect(tmp_path))
    cells = row(text, folder.name)
    assert cells[3] == "ls8, periodic 0.25" and cells[8] == "+0.300"
    assert row(text, "none-per-p48")[3] == "periodic 0.25" and row(text, "none-p48")[3] == "paper"


def fake_heldout(root: Path, name: str, kind: str, offset: float) -> None:
    """A heldout.json on the tiles of bsds and repeat: 3 images x 2 tiles, PSNR 30 + offset (+ tile noise)."""
    results = []
    for data in ("bsds", "repeat"):
        tiles = [{"name": f"im{i}#{t}", "image": f"im{i}", "psnr_on": 30 + offset + 0.01 * t,
                  "psnr_off": 30 + 0.01 * t} for i in range(3) for t in range(2)]
        summary = {"tiles": 6, "images": 3, "psnr_on": 30 + offset + 0.005, "drop": offset,
                   "drop_ci": {"mean": offset, "lo": offset - 0.01, "hi": offset + 0.01},
                   "mass_self": 0.1 if kind != "none" else None, "mass_beyond_rf": 0.4 if kind != "none" else None}
        results.append({"data": data, "summary": summary, "per_tile": tiles})
    (root / name / "heldout.json").write_text(json.dumps(results))


def test_tiled_table_pairs_tiles_and_gives_intervals(tmp_path: Path) -> None:
    fake_run(tmp_path, "none-p136", "none", 2, 600, [30.0, 30.2])
    fake_run(tmp_path, "lsp-fix-p136", "lsp", 2, 600, [30.0, 30.3], logit_scale=8.0)
    fake_heldout(tmp_path, "none-p136", "none", 0.0)
    fake_heldout(tmp_path, "lsp-fix-p136", "lsp", 0.2)
    cells = row(table(collect(tmp_path)), "lsp-fix-p136")
    assert cells[10] == "+0.200 [+0.200, +0.200]"  # gain bsds: every tile pairs with the same tile of none
    assert cells[11] == "+0.200 [+0.190, +0.210]"  # drop bsds with its interval
    assert cells[15] == "0.100 / 0.100" and cells[16] == "0.400 / 0.400"  # self / beyond-RF mass
    assert "lsp-fix-p136" not in legacy_table(collect(tmp_path))
