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
import csv
import io
import json
import math
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file
from torch import nn
from tqdm import tqdm

from . import checkpoint
from .config import ATTENTION_KINDS, PRESETS, SCALES, LCoANConfig, preset
from .data import PatchSampler, centre_crop, list_images, make_pair, split
from .inference import from_tensor, to_tensor
from .metrics import psnr_y
from .network import LCoAN

LOG_FIELDS = ["step", "loss", "lr", "val_psnr", "elapsed_s", "s_per_it"]
RUN_INFO = "run.json"
RESUME = "resume/state.safetensors"


@dataclass
class Options:
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


def learning_rate(step: int, opts: Options) -> float:
    """Linear warm-up then cosine decay from ``lr`` to ``min_lr`` at ``iters``."""
    if step < opts.warmup:
        return opts.lr * (step + 1) / opts.warmup
    t = min(1.0, (step - opts.warmup) / max(1, opts.iters - opts.warmup))
    return opts.min_lr + 0.5 * (opts.lr - opts.min_lr) * (1 + math.cos(math.pi * t))


def pick_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; asking for CUDA without a GPU is a clear error."""
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device here")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def machine_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    return f"{os.cpu_count()}-core {platform.machine()} CPU, {torch.get_num_threads()} torch thread(s)"


# ---------------------------------------------------------------- resume state (no pickle)

def save_resume(path: Path, model: nn.Module, optim: torch.optim.Optimizer, step: int,
                gen: torch.Generator, meta: dict) -> None:
    """Model, Adam moments and RNG states in one safetensors file, written atomically."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    state = optim.state_dict()
    for idx, entry in state["state"].items():
        for name, value in entry.items():
            tensors[f"optim.{idx}.{name}"] = value if torch.is_tensor(value) else torch.tensor(value)
    tensors["rng.sampler"] = gen.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    info = dict(meta, step=step, param_groups=state["param_groups"])
    checkpoint.atomic_save_tensors(tensors, path, {"format": "lcoan-resume/1", "info": json.dumps(info)})


def write_run_info(run: Path, info: dict) -> None:
    """``run/run.json``: the resume state's metadata without its tensors (config, command, step, time,
    machines, parent stages), small enough to keep in git after the heavy resume state is dropped."""
    checkpoint.atomic_write_bytes(Path(run) / RUN_INFO, (json.dumps(info, indent=1) + "\n").encode())


def finished_without_state(run: Path, iters: int) -> int | None:
    """The step a run reached, if its run.json says it finished and its resume state was dropped."""
    info_path, state = Path(run) / RUN_INFO, Path(run) / RESUME
    if state.exists() or not info_path.exists():
        return None
    try:
        step = int(json.loads(info_path.read_text()).get("step", 0))
    except (ValueError, json.JSONDecodeError):
        return None
    return step if step >= iters else None


def load_resume(path: Path, model: nn.Module, optim: torch.optim.Optimizer,
                gen: torch.Generator) -> dict:
    tensors, metadata = checkpoint.load_state(Path(path))  # CheckpointError if unreadable
    if metadata.get("format") != "lcoan-resume/1":
        raise checkpoint.CheckpointError(f"{path} is not an LCoAN resume state")
    try:
        info = json.loads(metadata["info"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise checkpoint.CheckpointError(f"{path}: resume metadata is unreadable ({exc})") from None
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    checkpoint.check_state(model, model_state, str(path))
    model.load_state_dict(model_state, strict=True)
    per_param: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, idx, name = k.split(".", 2)
            per_param.setdefault(int(idx), {})[name] = v
    groups = [dict(g, betas=tuple(g["betas"])) if isinstance(g.get("betas"), list) else g
              for g in info["param_groups"]]  # JSON turned the betas tuple into a list
    optim.load_state_dict({"state": per_param, "param_groups": groups})
    gen.set_state(tensors["rng.sampler"])
    torch.set_rng_state(tensors["rng.torch"])
    return info


def export_snapshot(run: Path, folder: Path) -> dict:
    """Write a checkpoint folder from a run's latest resume state (e.g. while it still trains)."""
    from safetensors import safe_open

    path = Path(run) / RESUME
    if not path.exists():
        raise checkpoint.CheckpointError(f"{run} has no resume state")
    with safe_open(str(path), framework="pt") as f:
        info = json.loads((f.metadata() or {})["info"])
    cfg = LCoANConfig.from_dict(info["config"])
    model = LCoAN(cfg)
    state = {k[6:]: v for k, v in load_file(str(path)).items() if k.startswith("model.")}
    checkpoint.check_state(model, state, str(path))
    model.load_state_dict(state)
    rows = read_log(Path(run) / "log.csv", info["step"])
    vals = [r for r in rows if r.get("val_psnr")]
    card_info = {k: info[k] for k in ("config", "command", "world_size", "train_seconds", "init_from", "segments")
                 if k in info}
    card_info.update(iterations=info["step"], snapshot=True,
                     machine=info.get("machine", "not recorded by this run; its command gives the threads"),
                     final_val_psnr=float(vals[-1]["val_psnr"]) if vals else None)
    checkpoint.save(model, folder, info=card_info)
    return card_info


# ---------------------------------------------------------------- logging

def read_log(path: Path, upto: int) -> list[dict]:
    """Rows of the CSV log up to step ``upto`` (later rows belong to work lost in a crash)."""
    if not path.exists():
        return []
    with path.open() as f:
        return [r for r in csv.DictReader(f) if int(r["step"]) <= upto]


def write_log(path: Path, rows: list[dict]) -> None:
    """Rewrite the whole log atomically (temporary file + rename, like the resume state)."""
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=LOG_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    checkpoint.atomic_write_bytes(path, buf.getvalue().encode())


def remove_stale_temp_files(out: Path) -> list[Path]:
    """Temporary files a killed run left behind (an atomic write interrupted before its rename).

    Only called at start-up by the process that owns the run folder: the complete files they
    were meant to replace are still in place, so these are garbage.
    """
    patterns = [(out / RESUME).parent.glob(f".{Path(RESUME).name}.*.tmp"), out.glob(".log.csv.*.tmp"),
                out.glob(f".{RUN_INFO}.*.tmp"), out.glob("log.tmp")]  # log.tmp: the name older versions used
    removed = []
    for found in patterns:
        for p in found:
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def plot_log(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trained = [r for r in rows if r.get("loss")]
    steps = [int(r["step"]) for r in trained]
    loss = [float(r["loss"]) for r in trained]
    val = [(int(r["step"]), float(r["val_psnr"])) for r in rows if r.get("val_psnr")]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    ax[0].plot(steps, loss)
    ax[0].set(xlabel="iteration", ylabel="L1 loss", title="training loss", yscale="log")
    if val:
        ax[1].plot(*zip(*val), marker="o")
    ax[1].set(xlabel="iteration", ylabel="Y-PSNR (dB)", title="held-out validation")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ---------------------------------------------------------------- validation

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


# ---------------------------------------------------------------- main loop

def machine_segments(previous: list[dict], machine: str, first_step: int, step: int,
                     seconds: float) -> list[dict]:
    """Which machine ran which steps: ``previous`` plus this process's span, merged when the machine is the same."""
    out = [dict(seg) for seg in previous]
    if step <= first_step:
        return out
    if out and out[-1]["machine"] == machine and out[-1]["last_step"] == first_step:
        out[-1].update(last_step=step, seconds=round(out[-1]["seconds"] + seconds))
    else:
        out.append({"machine": machine, "first_step": first_step, "last_step": step, "seconds": round(seconds)})
    return out


def describe_machines(segments: list[dict], fallback: str) -> str:
    """One line for a card: the machine, or each machine with the steps it ran when there were several."""
    names = {seg["machine"] for seg in segments}
    if len(names) <= 1:
        return segments[0]["machine"] if segments else fallback
    return "; ".join(f"{seg['machine']} (steps {seg['first_step']}-{seg['last_step']}, {seg['seconds'] / 3600:.2f} h)"
                     for seg in segments)


def lineage(folder: str) -> dict:
    """What a checkpoint was trained with (and, recursively, what it started from), for the model card."""
    info = checkpoint.load_info(folder)
    keep = ("command", "iterations", "train_seconds", "final_val_psnr", "machine", "segments", "snapshot", "init_from")
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lcoan.train", description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="s", choices=sorted(PRESETS))
    p.add_argument("--scale", type=int, default=2, choices=SCALES)
    p.add_argument("--attention", default="lsp", choices=ATTENTION_KINDS)
    p.add_argument("--no-share", action="store_true", help="LSP-only ablation: no CoA sharing")
    p.add_argument("--freeze-centroids", action="store_true", help="reference-code behaviour: no EMA")
    p.add_argument("--logit-scale", type=float, default=None,
                   help="learnable score scale, initialised at this value (not in the paper; default: none)")
    p.add_argument("--reseed-dead", action="store_true", help="re-seed dead k-means centroids (not in the paper)")
    p.add_argument("--attn-res-scale", type=float, default=None,
                   help="scale of the attention branch (default: the preset's, 0.1 as in the paper)")
    p.add_argument("--data", required=True, help="folder of HR training images")
    p.add_argument("--out", required=True, help="run folder (log, curve, resume state)")
    p.add_argument("--iters", type=int, default=6000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--patch", type=int, default=48, help="LR patch size")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--min-lr", type=float, default=5e-6)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--val-every", type=int, default=250)
    p.add_argument("--save-every", type=int, default=50)
    p.add_argument("--val-hr-size", type=int, default=192, help="HR side of the validation centre crops")
    p.add_argument("--val-split", type=int, default=40, help="hold out every N-th image (by name)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto: CUDA when torch sees a GPU, else CPU (CPU runs are bit-reproducible, CUDA runs are not)")
    p.add_argument("--init-from", help="checkpoint folder to start from (matching tensors only)")
    p.add_argument("--export", help="checkpoint folder to write at the end")
    p.add_argument("--stop-after", type=int, default=0, help="stop (resumably) after this many steps in this process")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = pick_device(args.device)
    rank, world = 0, 1
    if distributed:
        if device.type == "cuda":
            local = int(os.environ.get("LOCAL_RANK", 0))
            if local >= torch.cuda.device_count():
                raise SystemExit(f"local rank {local} has no GPU ({torch.cuda.device_count()} visible): start at most "
                                 "one process per GPU, or pass --device cpu")
            device = torch.device("cuda", local)
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
    if args.threads:
        torch.set_num_threads(args.threads)
    elif distributed and device.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    main_proc = rank == 0

    extra = {} if args.attn_res_scale is None else {"attn_res_scale": args.attn_res_scale}
    cfg = preset(args.preset, scale=args.scale, attention=args.attention, share_pattern=not args.no_share,
                 freeze_centroids=args.freeze_centroids, logit_scale=args.logit_scale,
                 reseed_dead=args.reseed_dead, **extra)
    opts = Options(out=Path(args.out), iters=args.iters, batch=args.batch, patch=args.patch, lr=args.lr,
                   min_lr=args.min_lr, warmup=args.warmup, val_every=args.val_every,
                   save_every=args.save_every, val_hr_size=args.val_hr_size, seed=args.seed)
    opts.out.mkdir(parents=True, exist_ok=True)
    finished = finished_without_state(opts.out, opts.iters)
    if finished is not None:
        if main_proc:
            print(f"run already finished ({finished} iterations, {opts.out / RUN_INFO}); its resume state is not "
                  f"kept, so nothing to do. Delete {opts.out} to train it again.", flush=True)
        if distributed:
            dist.destroy_process_group()
        return 0
    torch.manual_seed(args.seed + rank)

    files = list_images(args.data)
    train_files, val_files = split(files, args.val_split)
    t0 = time.time()
    train_pairs = [make_pair(f, cfg.scale) for f in tqdm(train_files, desc="degrading", disable=not main_proc)]
    val_pairs = [centre_crop(make_pair(f, cfg.scale), cfg.scale, opts.val_hr_size) for f in val_files]
    gen = torch.Generator().manual_seed(args.seed * 1000 + rank)
    sampler = PatchSampler(train_pairs, cfg.scale, opts.patch, gen)

    model = LCoAN(cfg).to(device)
    optim = torch.optim.Adam(model.parameters(), lr=opts.lr, betas=(0.9, 0.999))
    resume_path = opts.out / RESUME
    if main_proc:
        stale = remove_stale_temp_files(opts.out)
        if stale:
            print(f"removed {len(stale)} temporary file(s) left by an interrupted save", flush=True)
    step, train_seconds, note = 0, 0.0, ""
    segments: list[dict] = []  # earlier processes' machines (a run may move between machines when resumed)
    parent: dict | None = None  # the checkpoint this run started from (--init-from), with its history
    if resume_path.exists():
        try:
            info = load_resume(resume_path, model, optim, gen)
        except checkpoint.CheckpointError as exc:
            raise SystemExit(f"cannot resume: {exc}; move it away to start from scratch") from None
        if LCoANConfig.from_dict(info["config"]) != cfg:
            raise SystemExit(f"{resume_path} was made with a different config; use another --out")
        step, train_seconds = info["step"], info["train_seconds"]
        segments = info.get("segments") or [{"machine": info.get("machine", "not recorded"), "first_step": 0,
                                             "last_step": step, "seconds": round(train_seconds)}]
        parent = info.get("init_from")  # recorded when the run began: the folder may have changed since
        note = f"resumed at step {step}"
    elif args.init_from:
        parent = lineage(args.init_from)
        skipped = init_from(model, args.init_from)
        note = f"initialised from {args.init_from} (fresh: {', '.join(skipped) or 'none'})"
    if note and main_proc:
        print(note, flush=True)
    net: nn.Module = model
    if distributed:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    log_path = opts.out / "log.csv"
    rows = read_log(log_path, step) if main_proc else []
    command = "python -m lcoan.train " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    here = machine_description(device)
    meta = {"config": cfg.to_dict(), "command": command, "world_size": world, "machine": here}
    if parent:
        meta["init_from"] = parent
    if main_proc:
        print(f"{cfg.attention} preset={args.preset} x{cfg.scale}: {model.num_parameters():,} parameters, "
              f"{len(train_pairs)} train / {len(val_pairs)} val images (data ready in {time.time() - t0:.1f}s), "
              f"{here}", flush=True)
        if step == 0 and not rows:
            rows.append({"step": 0, "loss": "", "lr": "", "val_psnr": f"{validate(model, val_pairs):.4f}",
                         "elapsed_s": "0", "s_per_it": ""})
            write_log(log_path, rows)

    finished_before = step >= opts.iters
    if finished_before and main_proc:
        print(f"run already finished ({step} iterations)", flush=True)
    model.train()
    bar = tqdm(total=opts.iters, initial=step, desc=opts.out.name, disable=not main_proc, dynamic_ncols=True)
    losses: list[float] = []
    started, run_steps = time.time(), 0
    first_step, first_seconds = step, train_seconds
    last_save = time.time()
    while step < opts.iters:
        lr_now = learning_rate(step, opts)
        for group in optim.param_groups:
            group["lr"] = lr_now
        lr_batch, hr_batch = sampler.sample(opts.batch)
        loss = nn.functional.l1_loss(net(lr_batch.to(device)), hr_batch.to(device))
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        step += 1
        run_steps += 1
        losses.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.4f}", lr=f"{lr_now:.1e}")
        done = step == opts.iters or (args.stop_after and run_steps >= args.stop_after)
        if main_proc and (step % opts.val_every == 0 or step % opts.save_every == 0 or done):
            now = time.time()
            train_seconds += now - last_save
            last_save = now
            val = f"{validate(model, val_pairs):.4f}" if (step % opts.val_every == 0 or step == opts.iters) else ""
            rows.append({"step": step, "loss": f"{np.mean(losses):.5f}", "lr": f"{lr_now:.3e}", "val_psnr": val,
                         "elapsed_s": f"{train_seconds:.0f}", "s_per_it": f"{(now - started) / run_steps:.3f}"})
            losses = []
            # Log first, then the resume state: a kill between the two leaves log rows past the saved
            # step, which read_log drops on resume (they are redone), never a step missing from the log.
            write_log(log_path, rows)
            meta["segments"] = machine_segments(segments, here, first_step, step, train_seconds - first_seconds)
            meta["machine"] = describe_machines(meta["segments"], here)
            save_resume(resume_path, model, optim, step, gen, dict(meta, train_seconds=train_seconds))
            write_run_info(opts.out, dict(meta, step=step, train_seconds=round(train_seconds), iters=opts.iters))
            if val:
                bar.write(f"step {step}: validation Y-PSNR {val} dB")
                plot_log(rows, opts.out / "curve.png", f"{opts.out.name}: {cfg.attention}, x{cfg.scale}")
        if done:
            break
    bar.close()
    if distributed:
        dist.barrier()
    if main_proc and finished_before and args.export and Path(args.export).exists():
        # never overwrite: a later stage (--init-from this export, --export to it) may have replaced it
        print(f"not re-exporting: {args.export} exists", flush=True)
    elif main_proc and step >= opts.iters and args.export:
        card_info = dict(meta, iterations=step, train_seconds=round(train_seconds),
                         final_val_psnr=float(rows[-1]["val_psnr"] or "nan"), train_images=len(train_pairs),
                         val_images=len(val_pairs), data=str(args.data))
        checkpoint.save(model, args.export, info=card_info)
        print(f"exported {args.export}", flush=True)
    if distributed:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
