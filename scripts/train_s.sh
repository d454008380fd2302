#!/usr/bin/env bash
# The training runs behind the shipped checkpoints (preset "s"), in the order they depend on
# each other. Every command is resumable: run this script again after an interruption and each
# run continues from runs/<name>/resume/ (a finished run does nothing and never overwrites its export).
# x2 has two stages: 5000 iterations (cosine from 5e-4), then a warm restart of 4000 more (cosine from
# 3e-4, another seed so other patches) that overwrites checkpoints/*-s-x2; x4 then fine-tunes that x2.
# The shipped x2 checkpoints then end with the attention stage of issue 14, run and shipped by
# scripts/attention_experiments.sh and scripts/ship_fix.sh (see each model card).
# Usage: bash scripts/train_s.sh [lcoan|dense|none|lcoan-x4|dense-x4|none-x4|lcoan-x2b|dense-x2b|none-x2b] [extra args]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/train/bsds400}
X2="--preset s --scale 2 --data $DATA --iters 5000 --batch 16 --patch 48 --lr 5e-4 --seed 0"
X2B="--preset s --scale 2 --data $DATA --iters 4000 --batch 16 --patch 48 --lr 3e-4 --warmup 50 --seed 1"
X4="--preset s --scale 4 --data $DATA --iters 2500 --batch 16 --patch 48 --lr 2.5e-4 --warmup 50 --seed 0"
what=${1:-all}; shift || true
run() { python -m lcoan.train "$@"; }
case "$what" in
  lcoan)    run $X2 --attention lsp   --out runs/lcoan-s-x2 --export checkpoints/lcoan-s-x2 "$@" ;;
  dense)    run $X2 --attention dense --out runs/dense-s-x2 --export checkpoints/dense-s-x2 "$@" ;;
  none)     run $X2 --attention none  --out runs/none-s-x2  --export checkpoints/none-s-x2 "$@" ;;
  lcoan-x4) run $X4 --attention lsp   --out runs/lcoan-s-x4 --init-from checkpoints/lcoan-s-x2 --export checkpoints/lcoan-s-x4 "$@" ;;
  dense-x4) run $X4 --attention dense --out runs/dense-s-x4 --init-from checkpoints/dense-s-x2 --export checkpoints/dense-s-x4 "$@" ;;
  none-x4)  run $X4 --attention none  --out runs/none-s-x4  --init-from checkpoints/none-s-x2  --export checkpoints/none-s-x4 "$@" ;;
  lcoan-x2b) run $X2B --attention lsp   --out runs/lcoan-s-x2b --init-from checkpoints/lcoan-s-x2 --export checkpoints/lcoan-s-x2 "$@" ;;
  dense-x2b) run $X2B --attention dense --out runs/dense-s-x2b --init-from checkpoints/dense-s-x2 --export checkpoints/dense-s-x2 "$@" ;;
  none-x2b)  run $X2B --attention none  --out runs/none-s-x2b  --init-from checkpoints/none-s-x2  --export checkpoints/none-s-x2 "$@" ;;
  all) for w in lcoan dense none lcoan-x2b dense-x2b none-x2b lcoan-x4 dense-x4 none-x4; do bash "$0" "$w" "$@"; done ;;
  *) echo "unknown run: $what" >&2; exit 2 ;;
esac
