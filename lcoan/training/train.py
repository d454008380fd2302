"""Train an LCoAN-family network; resumable, with held-out validation, CSV log and a curve plot.

    python -m lcoan.train --preset s --scale 2 --attention lsp \
        --data ../shared/data/train/bsds400 --out runs/lcoan-s-x2 --iters 6000 \
        --export checkpoints/lcoan-s-x2

Running the same command again resumes from ``OUT/resume/state.safetensors`` (written atomically
every ``--save-every`` iterations, so a kill -9 loses at most that many). Multi-GPU / multi-process:
``torchrun --nproc_per_node N -m lcoan.train ...`` (DistributedDataParallel; gloo on CPU).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import socket
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR
from tqdm import tqdm

from .. import checkpoint
from ..config import LCoANConfig, preset
from ..imaging.metrics import psnr_y
from ..inference import from_tensor, to_tensor
from ..network import LCoAN
from . import machine
from .cli import parse_args
from .data import PatchSampler, centre_crop, list_images, make_pair, split
from .log import describe_machines, machine_segments, plot_log, read_log, write_log
from .resume import (
    RESUME,
    RUN_INFO,
    finished_without_state,
    load_resume,
    remove_stale_temp_files,
    save_resume,
    write_run_info,
)


@dataclass
class Options:
    """The schedule and bookkeeping of one run (what the command line sets besides the network)."""

    out: Path
    iters: int
    batch: int
    patch: int
    lr: float
    min_lr: float
    warmup: int
    val_every: int
    save_every: int
    val_hr_size: int
    seed: int
    periodic: float = 0.0  # share of training patches made of one repeated motif (not in the paper)
    mine: float = 0.0  # share of training patches mined for long-range repetition (not in the paper)
    stop_after: int = 0  # stop (resumably) after this many steps in this process (0: no limit)
    time_budget: float = 0.0  # stop (resumably) after this many seconds of training in this process (0: none)
    validate_at_stop: bool = False  # validate at any stop, not only every val_every steps (partial exports)


@dataclass
class Outcome:
    """Where a process's training loop ended: the step, the training seconds, the log rows and the run's
    metadata as last written (machines and sessions brought up to date)."""

    step: int
    train_seconds: float
    rows: list[dict]
    meta: dict


def schedule(optim: torch.optim.Optimizer, opts: Options, state: dict | None = None, step: int = 0) -> LRScheduler:
    """Linear warm-up over ``warmup`` steps (from lr / warmup to lr), then cosine decay to ``min_lr``
    at ``iters``: torch's LinearLR then CosineAnnealingLR. The optimizer's lr is the one for ``step``.

    ``state``: a saved ``state_dict()`` to continue from (bit-exact). Without one (a resume state written
    before the scheduler was saved), or when it describes another schedule (the run was resumed with
    other --iters, --lr, --min-lr or --warmup), the schedule of these options is replayed to ``step``.
    """
    for group in optim.param_groups:  # the base lr: a resumed optimizer holds the last step's lr
        group["initial_lr"] = group["lr"] = opts.lr
    cosine = CosineAnnealingLR(optim, T_max=max(1, opts.iters - opts.warmup), eta_min=opts.min_lr)
    if opts.warmup > 0:
        warm = LinearLR(optim, start_factor=1 / opts.warmup, end_factor=1.0, total_iters=max(1, opts.warmup - 1))
        sched: LRScheduler = SequentialLR(optim, [warm, cosine], milestones=[opts.warmup])
    else:
        sched = cosine
    if state is not None and same_schedule(state, sched.state_dict()):
        sched.load_state_dict(state)
        for group, lr in zip(optim.param_groups, sched.get_last_lr()):
            group["lr"] = lr
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()": replaying on purpose
            for _ in range(step):
                sched.step()
    return sched


def same_schedule(a: dict, b: dict) -> bool:
    """Whether two scheduler state_dicts describe the same schedule (their positions in it aside)."""
    position = {"last_epoch", "_step_count", "_last_lr", "_get_lr_called_within_step", "_is_initial"}

    def shape(state: dict) -> dict:
        return {k: [shape(x) for x in v] if k == "_schedulers" else v for k, v in state.items() if k not in position}

    return shape(a) == shape(b)


def pick_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; asking for CUDA without a GPU is a clear error."""
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device here")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)




@dataclass
class Process:
    """This process's place in a (possibly distributed) run."""

    device: torch.device
    rank: int = 0
    world: int = 1

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def log(self, text: str) -> None:
        if self.main:
            print(text, flush=True)


def start_process(device_name: str, threads: int) -> Process:
    """Pick the device, join the process group under torchrun (nccl on CUDA, gloo on CPU), set threads."""
    device = pick_device(device_name)
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        if threads:
            torch.set_num_threads(threads)
        return Process(device)
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", 0))
        if local >= torch.cuda.device_count():
            raise SystemExit(f"local rank {local} has no GPU ({torch.cuda.device_count()} visible): start at most "
                             "one process per GPU, or pass --device cpu")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    proc = Process(device, dist.get_rank(), dist.get_world_size())
    if threads:
        torch.set_num_threads(threads)
    elif device.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // proc.world))
    return proc


@torch.no_grad()
def validate(model: LCoAN, pairs: list) -> float:
    """Mean Y-PSNR (border shaved by the scale) on the centre crops of the held-out images."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    scores = []
    for pair in pairs:
        sr = from_tensor(model(to_tensor(pair.lr).to(device)).clamp(0, 1), np.uint8)
        scores.append(psnr_y(sr, pair.hr, model.cfg.scale))
    model.train(was_training)
    return float(np.mean(scores))


def lineage(folder: str) -> dict:
    """What a checkpoint was trained with (and, recursively, what it started from), for the model card."""
    info = checkpoint.load_info(folder)
    keep = ("command", "iterations", "train_seconds", "final_val_psnr", "machine", "segments", "sessions", "snapshot",
            "init_from")
    return dict({k: info[k] for k in keep if k in info}, folder=str(folder),
                scale=info.get("config", {}).get("scale"))


def init_from(model: LCoAN, folder: str) -> list[str]:
    """Copy every tensor of a checkpoint whose name and shape match (x2 -> x4 fine-tuning).

    When the new config has another ``attn_res_scale``, each group's value projection is divided
    by new / old, so the network computes the same function as the checkpoint at step 0.
    """
    source = checkpoint.load(folder)
    src, dst = source.state_dict(), model.state_dict()
    copied = {k: v for k, v in src.items() if k in dst and dst[k].shape == v.shape}
    old, new = source.cfg.attn_res_scale, model.cfg.attn_res_scale
    if old != new and new != 0:
        for k in copied:
            if ".attention.value." in k:
                copied[k] = copied[k] * (old / new)
    model.load_state_dict(copied, strict=False)
    return sorted(set(dst) - set(copied))


def make_config(args: argparse.Namespace) -> LCoANConfig:
    extra = {} if args.attn_res_scale is None else {"attn_res_scale": args.attn_res_scale}
    return preset(args.preset, scale=args.scale, attention=args.attention, share_pattern=not args.no_share,
                  freeze_centroids=args.freeze_centroids, logit_scale=args.logit_scale,
                  reseed_dead=args.reseed_dead, **extra)


def make_options(args: argparse.Namespace) -> Options:
    return Options(out=Path(args.out), iters=args.iters, batch=args.batch, patch=args.patch, lr=args.lr,
                   min_lr=args.min_lr, warmup=args.warmup, val_every=args.val_every,
                   save_every=args.save_every, val_hr_size=args.val_hr_size, seed=args.seed,
                   periodic=args.periodic, mine=args.mine, stop_after=args.stop_after,
                   time_budget=args.time_budget, validate_at_stop=args.export_partial)


@dataclass
class Data:
    train_pairs: list
    val_pairs: list
    sampler: PatchSampler
    gen: torch.Generator
    seconds: float


def prepare_data(args: argparse.Namespace, cfg: LCoANConfig, opts: Options, proc: Process) -> Data:
    """Degrade the training images once, cut the validation crops; one patch sampler per rank."""
    train_files, val_files = split(list_images(args.data), args.val_split)
    t0 = time.time()
    train_pairs = [make_pair(f, cfg.scale) for f in tqdm(train_files, desc="degrading", disable=not proc.main)]
    val_pairs = [centre_crop(make_pair(f, cfg.scale), cfg.scale, opts.val_hr_size) for f in val_files]
    gen = torch.Generator().manual_seed(args.seed * 1000 + proc.rank)
    sampler = PatchSampler(train_pairs, cfg.scale, opts.patch, gen, opts.periodic, opts.mine)
    return Data(train_pairs, val_pairs, sampler, gen, time.time() - t0)


@dataclass
class Start:
    """Where this process starts: the step, the time already spent and the history it continues."""

    step: int = 0
    train_seconds: float = 0.0
    segments: list[dict] = field(default_factory=list)  # earlier processes' machines
    sessions: list[dict] = field(default_factory=list)
    parent: dict | None = None  # the checkpoint this run started from (--init-from), with its history
    scheduler: dict | None = None
    note: str = ""


def restore(args: argparse.Namespace, cfg: LCoANConfig, model: LCoAN, optim: torch.optim.Optimizer,
            gen: torch.Generator) -> Start:
    """Continue from the run's resume state, or initialise from ``--init-from``, or start fresh."""
    resume_path = Path(args.out) / RESUME
    if resume_path.exists():
        try:
            info = load_resume(resume_path, model, optim, gen)
        except checkpoint.CheckpointError as exc:
            raise SystemExit(f"cannot resume: {exc}; move it away to start from scratch") from None
        if LCoANConfig.from_dict(info["config"]) != cfg:
            raise SystemExit(f"{resume_path} was made with a different config; use another --out")
        step, seconds = info["step"], info["train_seconds"]
        segments = info.get("segments") or [{"machine": info.get("machine", "not recorded"), "first_step": 0,
                                             "last_step": step, "seconds": round(seconds)}]
        # init_from was recorded when the run began: the folder may have changed since
        return Start(step, seconds, segments, info.get("sessions", []), info.get("init_from"),
                     info.get("scheduler"), f"resumed at step {step}")
    if args.init_from:
        parent = lineage(args.init_from)
        skipped = init_from(model, args.init_from)
        return Start(parent=parent, note=f"initialised from {args.init_from} (fresh: {', '.join(skipped) or 'none'})")
    return Start()


def host_id() -> str:
    """A short hash of the host name: tells two processes on one machine apart from two machines."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:12]


def train(opts: Options, cfg: LCoANConfig, proc: Process, data: Data, model: LCoAN,
          optim: torch.optim.Optimizer, start: Start, meta: dict) -> Outcome:
    """The training loop from ``start.step``: log, validation, resume state and run.json every few
    steps (rank 0). ``meta`` is not changed; the :class:`Outcome` carries its updated copy."""
    meta = dict(meta)
    sched = schedule(optim, opts, start.scheduler, start.step)
    net: nn.Module = model
    if proc.distributed:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[proc.device.index] if proc.device.type == "cuda"
                                                  else None)
    log_path, resume_path, here = opts.out / "log.csv", opts.out / RESUME, meta["machine"]
    rows = read_log(log_path, start.step) if proc.main else []
    if proc.main and start.step == 0 and not rows:
        rows.append({"step": 0, "loss": "", "lr": "", "val_psnr": f"{validate(model, data.val_pairs):.4f}",
                     "elapsed_s": "0", "s_per_it": ""})
        write_log(log_path, rows)
    step, train_seconds = start.step, start.train_seconds
    if step >= opts.iters:
        proc.log(f"run already finished ({step} iterations)")
    model.train()
    bar = tqdm(total=opts.iters, initial=step, desc=opts.out.name, disable=not proc.main, dynamic_ncols=True)
    losses: list[float] = []
    started, wall_start, run_steps, last_save = time.time(), round(time.time(), 1), 0, time.time()
    while step < opts.iters:
        lr_now = optim.param_groups[0]["lr"]
        lr_batch, hr_batch = data.sampler.sample(opts.batch)
        loss = nn.functional.l1_loss(net(lr_batch.to(proc.device)), hr_batch.to(proc.device))
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        sched.step()
        step += 1
        run_steps += 1
        losses.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.4f}", lr=f"{lr_now:.1e}")
        done = (step == opts.iters or (opts.stop_after and run_steps >= opts.stop_after)
                or (opts.time_budget and time.time() - started >= opts.time_budget))
        if proc.main and (step % opts.val_every == 0 or step % opts.save_every == 0 or done):
            now = time.time()
            train_seconds += now - last_save
            last_save = now
            validating = step % opts.val_every == 0 or step == opts.iters or (done and opts.validate_at_stop)
            val = f"{validate(model, data.val_pairs):.4f}" if validating else ""
            rows.append({"step": step, "loss": f"{np.mean(losses):.5f}", "lr": f"{lr_now:.3e}", "val_psnr": val,
                         "elapsed_s": f"{train_seconds:.0f}", "s_per_it": f"{(now - started) / run_steps:.3f}"})
            losses = []
            # Log first, then the resume state: a kill between the two leaves log rows past the saved
            # step, which read_log drops on resume (they are redone), never a step missing from the log.
            write_log(log_path, rows)
            meta["segments"] = machine_segments(start.segments, here, start.step, step,
                                                train_seconds - start.train_seconds, meta["command"])
            meta["machine"] = describe_machines(meta["segments"], here)
            meta["sessions"] = [*start.sessions, {  # earlier processes' sessions, then this process's
                "host": host_id(), "machine": here, "first_step": start.step, "last_step": step,
                "started": wall_start, "ended": round(now, 1)}]
            save_resume(resume_path, model, optim, step, data.gen,
                        dict(meta, train_seconds=train_seconds, scheduler=sched.state_dict()))
            write_run_info(opts.out, dict(meta, step=step, train_seconds=round(train_seconds), iters=opts.iters))
            if val:
                bar.write(f"step {step}: validation Y-PSNR {val} dB")
                plot_log(rows, opts.out / "curve.png", f"{opts.out.name}: {cfg.attention}, x{cfg.scale}")
        if done:
            break
    bar.close()
    return Outcome(step, train_seconds, rows, meta)


def export(args: argparse.Namespace, model: LCoAN, data: Data, outcome: Outcome, finished_before: bool) -> None:
    """Write ``--export`` once the run reached its last step (with ``--export-partial``: at any stop);
    never overwrite it when the run had already finished (a later stage, --init-from this export, may
    have replaced it)."""
    step, rows = outcome.step, outcome.rows
    if not args.export or (step < args.iters and not args.export_partial):
        return
    if finished_before and Path(args.export).exists():
        print(f"not re-exporting: {args.export} exists", flush=True)
        return
    card_info = dict(outcome.meta, iterations=step, train_seconds=round(outcome.train_seconds),
                     final_val_psnr=float(next((r["val_psnr"] for r in reversed(rows) if r["val_psnr"]), "nan")),
                     train_images=len(data.train_pairs),
                     val_images=len(data.val_pairs), data=str(args.data))
    checkpoint.save(model, args.export, info=card_info)
    print(f"exported {args.export}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    proc = start_process(args.device, args.threads)
    cfg, opts = make_config(args), make_options(args)
    opts.out.mkdir(parents=True, exist_ok=True)
    finished = finished_without_state(opts.out, opts.iters)
    if finished is not None:
        proc.log(f"run already finished ({finished} iterations, {opts.out / RUN_INFO}); its resume state is not "
                 f"kept, so nothing to do. Delete {opts.out} to train it again.")
        if proc.distributed:
            dist.destroy_process_group()
        return 0
    torch.manual_seed(args.seed + proc.rank)
    data = prepare_data(args, cfg, opts, proc)
    model = LCoAN(cfg).to(proc.device)
    optim = torch.optim.Adam(model.parameters(), lr=opts.lr, betas=(0.9, 0.999))
    if proc.main:
        stale = remove_stale_temp_files(opts.out)
        if stale:
            print(f"removed {len(stale)} temporary file(s) left by an interrupted save", flush=True)
    start = restore(args, cfg, model, optim, data.gen)
    if start.note:
        proc.log(start.note)
    command = "python -m lcoan.train " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    here = machine.describe(proc.device)
    meta = {"config": cfg.to_dict(), "command": command, "world_size": proc.world, "machine": here}
    if start.parent:
        meta["init_from"] = start.parent
    proc.log(f"{cfg.attention} preset={args.preset} x{cfg.scale}: {model.num_parameters():,} parameters, "
             f"{len(data.train_pairs)} train / {len(data.val_pairs)} val images (data ready in {data.seconds:.1f}s), "
             f"{here}")
    outcome = train(opts, cfg, proc, data, model, optim, start, meta)
    if proc.distributed:
        dist.barrier()
    if proc.main:
        export(args, model, data, outcome, finished_before=start.step >= opts.iters)
    if proc.distributed:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
