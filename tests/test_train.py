"""Training command line: schedule, data split and patches, a short run end to end, torchrun DDP."""
from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lcoan
from lcoan.training.data import PatchSampler, dihedral, make_pair, split
from lcoan.training.log import describe_machines, machine_segments
from lcoan.training.train import Options, main, pick_device, schedule

from .conftest import ROOT


def smooth_images(folder: Path, count: int = 6, size: int = 64) -> Path:
    """Small, smooth random photos (upsampled noise) so the LR/HR relation is learnable."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        small = Image.fromarray(rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8))
        small.resize((size, size), Image.BICUBIC).save(folder / f"img{i:02d}.png")
    return folder


def closed_form_lr(step: int, opts: Options) -> float:
    """The schedule as a formula: linear warm-up, then cosine from lr to min_lr at iters."""
    if step < opts.warmup:
        return opts.lr * (step + 1) / opts.warmup
    t = (step - opts.warmup) / max(1, opts.iters - opts.warmup)
    return opts.min_lr + 0.5 * (opts.lr - opts.min_lr) * (1 + math.cos(math.pi * t))


def schedule_lrs(opts: Options, steps: int, cut: int | None = None) -> list[float]:
    """The lr of each step 0..steps under torch's schedulers; at ``cut`` the scheduler is rebuilt from
    its saved state_dict, as a resumed run does."""
    import torch

    optim = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=opts.lr)
    sched, lrs = schedule(optim, opts), []
    for step in range(steps + 1):
        if step == cut:
            optim2 = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=opts.lr)
            optim2.load_state_dict(optim.state_dict())
            optim, sched = optim2, schedule(optim2, opts, state=json.loads(json.dumps(sched.state_dict())))
        lrs.append(optim.param_groups[0]["lr"])
        optim.step()
        sched.step()
    return lrs


@pytest.mark.parametrize("warmup", [0, 1, 10])
def test_schedule_warms_up_then_decays_to_min(warmup):
    opts = Options(out=Path("."), iters=100, batch=1, patch=8, lr=1e-3, min_lr=1e-5, warmup=warmup, val_every=10,
                   save_every=10, val_hr_size=32, seed=0)
    lrs = schedule_lrs(opts, 100)
    for step in range(101):
        assert lrs[step] == pytest.approx(closed_form_lr(step, opts), rel=1e-12), step
    if warmup == 10:
        assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[warmup:], lrs[warmup + 1:]))
    assert lrs[100] == pytest.approx(1e-5)
    # rebuilt from its saved state (JSON, as in the resume file) at any step: the same floats
    assert schedule_lrs(opts, 100, cut=5) == lrs and schedule_lrs(opts, 100, cut=60) == lrs


def test_schedule_resumed_with_other_options_follows_the_new_ones():
    """A run resumed with a longer --iters (its saved scheduler describes the old schedule) continues on
    the schedule of the options it runs with, as the closed form says."""
    import torch

    old = Options(out=Path("."), iters=50, batch=1, patch=8, lr=1e-3, min_lr=1e-5, warmup=5, val_every=10,
                  save_every=10, val_hr_size=32, seed=0)
    new = Options(**{**old.__dict__, "iters": 80})
    optim = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=old.lr)
    sched = schedule(optim, old)
    for _ in range(30):
        optim.step()
        sched.step()
    saved = json.loads(json.dumps(sched.state_dict()))
    resumed = schedule(optim, new, state=saved, step=30)
    for step in range(30, 80):
        assert optim.param_groups[0]["lr"] == pytest.approx(closed_form_lr(step, new), rel=1e-12), step
        optim.step()
        resumed.step()


def test_schedule_without_saved_state_is_rebuilt_from_the_step():
    """Resume states written before the scheduler was saved: stepping a fresh one to the step gives
    the lr an uninterrupted run has there, whatever lr the loaded optimizer held."""
    import torch

    opts = Options(out=Path("."), iters=50, batch=1, patch=8, lr=1e-3, min_lr=1e-5, warmup=5, val_every=10,
                   save_every=10, val_hr_size=32, seed=0)
    lrs = schedule_lrs(opts, 50)
    optim = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=7.0)  # the stale lr of an old state
    sched = schedule(optim, opts, state=None, step=20)
    assert optim.param_groups[0]["lr"] == lrs[20]
    for step in range(21, 51):
        optim.step()
        sched.step()
        assert optim.param_groups[0]["lr"] == lrs[step]


def test_split_is_deterministic_and_disjoint():
    files = [Path(f"{i:03d}.png") for i in range(400)]
    train, val = split(files, 40)
    assert len(val) == 10 and len(train) == 390 and not set(train) & set(val)
    assert split(list(files), 40) == (train, val)


def test_patches_are_aligned_lr_hr_pairs(tmp_path):
    import torch

    pair = make_pair(smooth_images(tmp_path / "d", 1, 96) / "img00.png", 3)
    sampler = PatchSampler([pair], 3, 12, torch.Generator().manual_seed(0))
    lr, hr = sampler.sample(4)
    assert lr.shape == (4, 3, 12, 12) and hr.shape == (4, 3, 36, 36)
    # Every LR patch is a crop of the degraded image under one of the 8 flips/rotations of its HR patch.
    lr_img = pair.lr
    for i in range(4):
        patch = (lr[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        hits = [k for k in range(8) for y in range(lr_img.shape[0] - 11) for x in range(lr_img.shape[1] - 11)
                if np.array_equal(dihedral(lr_img[y:y + 12, x:x + 12], k), patch)]
        assert hits


def run_tiny(tmp_path: Path, *extra: str) -> Path:
    data = smooth_images(tmp_path / "data")
    out = tmp_path / "run"
    args = ["--preset", "tiny", "--scale", "2", "--data", str(data), "--out", str(out), "--batch", "2",
            "--patch", "16", "--val-every", "4", "--save-every", "2", "--val-hr-size", "32", "--val-split", "3",
            "--warmup", "1", "--threads", "1", "--device", "cpu", *extra]
    assert main(args) == 0
    return out


def test_short_run_logs_resumes_and_exports(tmp_path):
    out = run_tiny(tmp_path, "--iters", "8", "--stop-after", "5")
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [0, 2, 4, 5]  # validation at 0, saves every 2, stop at 5
    assert (out / "resume" / "state.safetensors").exists() and not (tmp_path / "ck").exists()
    run_tiny(tmp_path, "--iters", "8", "--export", str(tmp_path / "ck"))
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [0, 2, 4, 5, 6, 8]
    assert rows[-1]["val_psnr"] and (out / "curve.png").exists()
    model = lcoan.load(tmp_path / "ck")
    info = lcoan.checkpoint.load_info(tmp_path / "ck")
    assert model.cfg.name == "tiny" and info["iterations"] == 8


def test_finetune_from_x2_copies_matching_tensors(tmp_path, capsys):
    run_tiny(tmp_path, "--iters", "2", "--export", str(tmp_path / "x2"))
    out = tmp_path / "x4"
    data = tmp_path / "data"
    main(["--preset", "tiny", "--scale", "4", "--data", str(data), "--out", str(out), "--batch", "2", "--patch", "8",
          "--iters", "1", "--val-split", "3", "--val-hr-size", "32", "--threads", "1", "--device", "cpu",
          "--init-from", str(tmp_path / "x2")])
    said = capsys.readouterr().out
    assert "initialised from" in said and "upsample.2.weight" in said


def test_finetune_records_its_history_across_resume(tmp_path):
    """The exported card info keeps the parent's iterations and time, even if the parent is overwritten."""
    run_tiny(tmp_path, "--iters", "2", "--export", str(tmp_path / "x2"))
    parent = lcoan.checkpoint.load_info(tmp_path / "x2")
    args = ["--preset", "tiny", "--scale", "2", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "ft"),
            "--batch", "2", "--patch", "16", "--iters", "4", "--val-split", "3", "--val-hr-size", "32",
            "--save-every", "1", "--warmup", "1", "--threads", "1", "--device", "cpu",
            "--init-from", str(tmp_path / "x2"),
            "--export", str(tmp_path / "x2")]
    assert main([*args, "--stop-after", "2"]) == 0
    lcoan.save(lcoan.LCoAN(lcoan.preset("tiny", scale=2)), tmp_path / "x2",
               info={"iterations": 999, "train_seconds": 1})  # the parent folder changes meanwhile
    assert main(args) == 0  # resumes; the history comes from the resume state, not the folder
    info = lcoan.checkpoint.load_info(tmp_path / "x2")
    assert info["iterations"] == 4 and "--init-from" in info["command"]
    assert info["init_from"]["iterations"] == parent["iterations"] == 2
    assert info["init_from"]["train_seconds"] == parent["train_seconds"]
    assert info["init_from"]["folder"] == str(tmp_path / "x2")
    # re-running the finished first stage must not overwrite the later stage's export
    run_tiny(tmp_path, "--iters", "2", "--export", str(tmp_path / "x2"))
    assert lcoan.checkpoint.load_info(tmp_path / "x2")["iterations"] == 4


def test_machine_segments_record_which_machine_ran_which_steps():
    cpu, gpu = "2-core CPU", "H100 (CUDA)"
    segs = machine_segments([], cpu, 0, 100, 50.0)
    segs = machine_segments(segs, cpu, 100, 150, 25.4)  # resumed on the same machine: merged
    assert segs == [{"machine": cpu, "first_step": 0, "last_step": 150, "seconds": 75}]
    assert describe_machines(segs, "x") == cpu
    segs = machine_segments(segs, gpu, 150, 400, 10.0)
    assert [s["machine"] for s in segs] == [cpu, gpu] and segs[1]["first_step"] == 150
    assert machine_segments(segs, gpu, 400, 400, 0.0) == segs  # no steps, nothing added
    line = describe_machines(segs, "x")
    assert "2-core CPU (steps 0-150" in line and "H100 (CUDA) (steps 150-400" in line


def test_finished_run_without_resume_state_does_nothing(tmp_path, capsys):
    """After the heavy resume state of a finished run is dropped, run.json alone stops a retrain."""
    out = run_tiny(tmp_path, "--iters", "4", "--export", str(tmp_path / "ck"))
    info = json.loads((out / "run.json").read_text())
    assert info["step"] == 4 and info["iters"] == 4 and info["segments"][0]["last_step"] == 4
    log_before = (out / "log.csv").read_text()
    (out / "resume" / "state.safetensors").unlink()
    run_tiny(tmp_path, "--iters", "4", "--export", str(tmp_path / "ck"))
    assert "already finished" in capsys.readouterr().out
    assert (out / "log.csv").read_text() == log_before and not (out / "resume" / "state.safetensors").exists()
    run_tiny(tmp_path, "--iters", "6", "--stop-after", "1")  # a longer schedule is not "finished": it starts over
    assert (out / "resume" / "state.safetensors").exists()


def test_device_choice():
    import torch

    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match="no CUDA device"):
            pick_device("cuda")


def test_resumed_run_keeps_earlier_machine_segments(tmp_path):
    run_tiny(tmp_path, "--iters", "4", "--stop-after", "2")
    run_tiny(tmp_path, "--iters", "4", "--export", str(tmp_path / "ck"))
    info = lcoan.checkpoint.load_info(tmp_path / "ck")
    assert len(info["segments"]) == 1 and info["segments"][0]["last_step"] == 4
    assert info["machine"] == info["segments"][0]["machine"]
    assert info["segments"][0]["command"] == info["command"]  # the command of the process that ran it last
    # one session per process, never merged: what a report needs to tell whether runs overlapped
    first, second = info["sessions"]
    assert (first["first_step"], first["last_step"], second["first_step"], second["last_step"]) == (0, 2, 2, 4)
    assert first["host"] == second["host"] and first["started"] <= first["ended"] <= second["started"]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_torchrun_two_processes_gloo(tmp_path):
    """DistributedDataParallel on CPU: two processes train a few steps and rank 0 exports."""
    import signal

    data = smooth_images(tmp_path / "data")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
           "-m", "lcoan.training.train", "--preset", "tiny", "--data", str(data), "--out", str(tmp_path / "run"),
           "--iters", "3", "--batch", "2", "--patch", "16", "--val-split", "3", "--val-hr-size", "32",
           "--save-every", "3", "--val-every", "3", "--device", "cpu", "--export", str(tmp_path / "ck")]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # no stray workers left behind
        _, err = proc.communicate()
        pytest.fail(f"torchrun did not finish in 240 s: {err[-2000:]}")
    assert proc.returncode == 0, err[-2000:]
    assert lcoan.checkpoint.load_info(tmp_path / "ck")["world_size"] == 2


def test_snapshot_exports_the_latest_resume_state(tmp_path):
    """scripts/snapshot.py: a checkpoint from a run still in training, marked as a snapshot."""
    import torch

    from lcoan.training.resume import RESUME, export_snapshot, model_weights

    out = run_tiny(tmp_path, "--iters", "8", "--stop-after", "4")
    info = export_snapshot(out, tmp_path / "snap")
    assert info["snapshot"] and info["iterations"] == 4 and info["final_val_psnr"] is not None
    weights, _ = model_weights(out / RESUME)
    loaded = lcoan.load(tmp_path / "snap").state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in weights.items())
