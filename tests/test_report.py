"""scripts/report.py: model cards and the README table describe every training stage of a checkpoint."""
from __future__ import annotations

import lcoan
from lcoan.checkpoint import training_stages
from scripts import report

STAGE1 = {"iterations": 5000, "train_seconds": 7200, "command": "python -m lcoan.train stage1",
          "config": {"scale": 2}}
STAGE2 = {"iterations": 3000, "train_seconds": 3600, "command": "python -m lcoan.train stage2",
          "config": {"scale": 2}, "init_from": dict(STAGE1, folder="checkpoints/x", scale=2)}
X4 = {"iterations": 2500, "train_seconds": 1800, "command": "python -m lcoan.train x4", "config": {"scale": 4},
      "init_from": dict(STAGE1, folder="checkpoints/x", scale=2)}


def test_stages_are_listed_oldest_first():
    assert [s["command"][-6:] for s in training_stages(STAGE2)] == ["stage1", "stage2"]
    assert training_stages({}) == []


def test_iterations_text_names_scales_only_when_they_change():
    assert report.iterations_text(STAGE1) == "5000"
    assert report.iterations_text(STAGE2) == "5000 + 3000"
    assert report.iterations_text(X4) == "5000 (x2) + 2500 (x4)"
    assert report.iterations_text(dict(STAGE1, snapshot=True)) == "5000 (snapshot)"


def test_card_sums_time_and_lists_every_command():
    cfg = lcoan.preset("tiny", scale=2)
    text = report.card("lcoan-tiny-x2", STAGE2, cfg, 1234, {}, {})
    assert "5000 + 3000 = 8000 iterations" in text
    assert "3.00 h" in text  # 2 h + 1 h, all stages
    assert "stage1`" in text and "stage2`" in text


def test_card_says_that_set5_decided_stage_2():
    text = report.card("lcoan-tiny-x2", STAGE2, lcoan.preset("tiny", scale=2), 1234, {}, {})
    assert "never selected" not in text and "Set5 x2 bar" in text


GPU = "NVIDIA H100 (CUDA)"


def gpu_stage(out: str, started: int, ended: int, host: str = "h1") -> dict:
    """A stage whose one process trained on the GPU between ``started`` and ``ended`` (UTC seconds)."""
    session = {"host": host, "machine": GPU, "first_step": 0, "last_step": 100, "started": started, "ended": ended}
    return {"iterations": 100, "train_seconds": ended - started, "config": {"scale": 2}, "machine": GPU,
            "command": f"python -m lcoan.train --out {out}", "sessions": [session],
            "segments": [{"machine": GPU, "first_step": 0, "last_step": 100, "seconds": ended - started}]}


def test_shared_gpu_is_said_only_when_recorded_sessions_overlap():
    a, b, c = gpu_stage("runs/a", 0, 100), gpu_stage("runs/b", 50, 150), gpu_stage("runs/c", 200, 300)
    d = gpu_stage("runs/d", 0, 100, host="h2")  # same time, another machine
    sessions = [(report.run_key(st), ses) for st in (a, b, c, d) for ses in st["sessions"]]
    assert report.shared_devices([a], sessions) == {GPU: 1}
    assert report.shared_devices([c], sessions) == {} and report.shared_devices([d], sessions) == {}
    cfg = lcoan.preset("tiny", scale=2)
    shared = report.card("x", a, cfg, 1, {}, {}, shared=report.shared_devices([a], sessions))
    alone = report.card("x", c, cfg, 1, {}, {}, shared=report.shared_devices([c], sessions))
    assert f"1 other run(s) trained on the same machine ({GPU}) at the same time" in shared
    assert "other run" not in alone and "shared the GPU" not in alone
    # no sessions recorded (runs before they were): nothing is claimed
    assert report.shared_devices([STAGE1], sessions) == {}


def test_each_machine_of_a_stage_gets_its_own_command():
    stage = dict(STAGE1, command="python -m lcoan.train --device cuda", segments=[
        {"machine": "2-core CPU", "first_step": 0, "last_step": 800, "seconds": 3600,
         "command": "python -m lcoan.train --threads 1"},
        {"machine": GPU, "first_step": 800, "last_step": 5000, "seconds": 100,
         "command": "python -m lcoan.train --device cuda"}])
    text = report.history_lines(stage)
    assert "steps 0-800, 1.00 h on 2-core CPU: `python -m lcoan.train --threads 1`" in text
    assert f"steps 800-5000, 0.03 h on {GPU}: `python -m lcoan.train --device cuda`" in text
    old = dict(stage, segments=[{k: v for k, v in seg.items() if k != "command"} for seg in stage["segments"]])
    text = report.history_lines(old)  # recorded before segments had commands: only the last one is known
    assert "steps 0-800, 1.00 h on 2-core CPU: command not recorded" in text
    assert "--device cuda`" in text


def test_rewriting_a_card_keeps_the_blocks_other_generators_spliced_in():
    from scripts.blocks import splice_text

    old = splice_text("# x\n\nold card text\n", "attention", "### Does the network use its attention?\n\n| a |")
    new = report.carry_blocks(old, "# x\n\nnew card text\n")
    assert "new card text" in new and "old card text" not in new
    assert "<!-- attention:start -->\n### Does the network use its attention?\n\n| a |\n<!-- attention:end -->" in new
