#!/usr/bin/env bash
# Controlled experiments for "does the network use its attention" (issue 14): every variant
# fine-tunes today's shipped checkpoint of its kind (x2; a name ending in -x4: the x4 one) with one
# budget for all kinds (600 iterations; a name ending in -long: 4000), cosine from 2e-4, seed 2, the
# same pixels per batch, one torch thread each (-per-: a quarter of the patches periodic). Resumable: run the
# same line again after an interruption. Held-out reports and the table:
#   bash scripts/attention_experiments.sh report [VARIANT ...]   (python -m lcoan.introspect.report on the tiles of data/heldout/{bsds,repeat})
#   python -m scripts.experiment_table               (docs/attention_experiments.md)
# Usage: bash scripts/attention_experiments.sh VARIANT [VARIANT ...] | list | report [VARIANT ...]
set -euo pipefail
cd "$(dirname "$0")/.."
# the shared budget; P48 / P96: the same LR pixels per batch; FIX: every departure from the paper at once
COMMON="--preset s --data ${DATA:-../shared/data/train/bsds400} --iters 600 --lr 2e-4 --warmup 50"
COMMON="$COMMON --seed 2 --val-every 200 --threads ${THREADS:-1}"
P48="--batch 16 --patch 48" P96="--batch 4 --patch 96" P136="--batch 2 --patch 136" FIX="--logit-scale 8 --attn-res-scale 1 --reseed-dead"
declare -A V=(
  [none-p48]="--attention none $P48"
  [none-p96]="--attention none $P96"
  [lsp-p48]="--attention lsp $P48"
  [lsp-p96]="--attention lsp $P96"
  [lsp-ls8-p96]="--attention lsp $P96 --logit-scale 8"
  [lsp-fix-p48]="--attention lsp $P48 $FIX"
  [lsp-fix-p96]="--attention lsp $P96 $FIX"
  [dense-p96]="--attention dense $P96"
  [dense-fix-p96]="--attention dense $P96 --logit-scale 8 --attn-res-scale 1"
  [dense-fix-p48]="--attention dense $P48 --logit-scale 8 --attn-res-scale 1"
  [none-p48-x4]="--attention none $P48"
  [lsp-fix-p48-x4]="--attention lsp $P48 $FIX"
  [dense-fix-p48-x4]="--attention dense $P48 --logit-scale 8 --attn-res-scale 1"
  # the data test: a quarter of the patches repeat one motif of the photo (lcoan.training.data.periodic_patch)
  [none-per-p48]="--attention none $P48 --periodic 0.25"
  [lsp-fix-per-p48]="--attention lsp $P48 $FIX --periodic 0.25"
  [dense-fix-per-p48]="--attention dense $P48 --logit-scale 8 --attn-res-scale 1 --periodic 0.25"
  # the schedule-length test for the two unmet bars: the shipped x2 pair, 4000 more iterations alike
  [none-p48-long]="--attention none $P48 --iters 4000"
  [lsp-fix-p48-long]="--attention lsp $P48 $FIX --iters 4000"
  [dense-fix-p48-long]="--attention dense $P48 --logit-scale 8 --attn-res-scale 1 --iters 4000"
  # issue 24: crops larger than the receptive field (136x136 LR, batch 2: the pixels of 16 x 48x48)
  [none-p136]="--attention none $P136"
  [lsp-fix-p136]="--attention lsp $P136 $FIX"
  [dense-fix-p136]="--attention dense $P136 --logit-scale 8 --attn-res-scale 1"
  # ... and half of them mined for repetition beyond the receptive field (lcoan data mining score)
  [none-mine-p136]="--attention none $P136 --mine 0.5"
  [lsp-fix-mine-p136]="--attention lsp $P136 $FIX --mine 0.5"
  [dense-fix-mine-p136]="--attention dense $P136 --logit-scale 8 --attn-res-scale 1 --mine 0.5"
)
kind_of() { case "$1" in none*) echo none ;; lsp*) echo lcoan ;; dense*) echo dense ;; esac; }
scale_of() { case "$1" in *-x4) echo 4 ;; *) echo 2 ;; esac; }
case "${1:-list}" in
  list) for k in "${!V[@]}"; do echo "$k: ${V[$k]}"; done | sort ;;
  report)  # every finished export without a report, or only the variants named after "report"
    shift
    dirs=(runs/exp/*/model)
    [ $# -gt 0 ] && dirs=("${@/#/runs/exp/}") && dirs=("${dirs[@]/%//model}")
    for d in "${dirs[@]}"; do
      [ -f "$d/model.safetensors" ] || continue
      [ -f "$d/../heldout.json" ] && continue
      python -m lcoan.introspect.report --checkpoint "$d" --data data/heldout/bsds data/heldout/repeat \
        --threads "${THREADS:-1}" --json "$d/../heldout.json"
    done ;;
  *)
    for name in "$@"; do
      [ -n "${V[$name]:-}" ] || { echo "unknown variant: $name (see: list)" >&2; exit 2; }
      s=$(scale_of "$name")
      python -m lcoan.train $COMMON --scale "$s" ${V[$name]} --init-from "checkpoints/$(kind_of "$name")-s-x$s" \
        --out "runs/exp/$name" --export "runs/exp/$name/model"
    done ;;
esac
