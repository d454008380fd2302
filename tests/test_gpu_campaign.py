"""The GPU campaign of issue 24 rehearsed on the CPU: every step runs, and each of the three exports
loads with lcoan.load (slow: three tiny trainings and a held-out report)."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import lcoan

ROOT = Path(__file__).resolve().parents[1]
BSDS = ROOT.parent / "shared" / "data" / "train" / "bsds400"


@pytest.mark.slow
@pytest.mark.skipif(not BSDS.is_dir(), reason=f"needs the training photos in {BSDS} (../shared is absent)")
def test_rehearsal_leaves_three_loadable_exports_and_a_report(tmp_path: Path) -> None:
    out = tmp_path / "campaign"
    env = dict(os.environ, THREADS="1")
    env.pop("OUT", None)
    done = subprocess.run(["bash", "scripts/gpu_campaign.sh", "--rehearse", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for kind in ("lcoan", "dense", "none"):
        model = lcoan.load(out / f"{kind}-m-x2")
        assert model.cfg.name == "m" and model.cfg.scale == 2
        assert (out / "runs" / f"{kind}-m-x2" / "resume").is_dir()
    report = json.loads((out / "heldout.json").read_text())
    assert {r["checkpoint"] for r in report} == {"lcoan-m-x2", "dense-m-x2", "none-m-x2"}
    # a second call resumes: the runs already reached their 2 iterations, nothing is trained again
    again = subprocess.run(["bash", "scripts/gpu_campaign.sh", "--rehearse", str(out)], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=1500)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already finished" in (out / "logs" / "lcoan-m-x2.log").read_text()
