#!/usr/bin/env bash
# The GPU campaign of issue 24: the `m` preset trio (lcoan, dense, none) at x2, trained from scratch, all
# alike, with the recipe the CPU experiments point to (docs/attention_experiments.md): 136x136-LR crops,
# half of them mined for repetition beyond the receptive field (--mine 0.5: it helped the backbone on
# repetition), the learnable logit scale, the attention branch at scale 1 and re-seeded centroids; and a
# long schedule, by calling it again (on the CPU only the 4000-iteration runs made LCoAN depend on its
# attention). One call fits a 9-minute run on one lent GPU:
# the three runs train side by side for TIME_BUDGET seconds, export what they reached, and the held-out
# attention report follows. A second call resumes from OUTDIR's resume states.
#
#   bash scripts/gpu_campaign.sh OUTDIR               # on a GPU machine
#   bash scripts/gpu_campaign.sh --rehearse OUTDIR    # the same steps on the CPU, a handful of iterations
#
# OUTDIR then holds {lcoan,dense,none}-m-x2/ (exports lcoan.load accepts), runs/<name>/ (log.csv,
# curve.png, run.json, resume/), logs/ and heldout.json / heldout.md (lcoan.introspect.report on the
# held-out folders). Where $OUT is set (the lent machine's output folder), the exports, logs and report
# are also packed there in pieces of at most 15 MB.
# Environment: DATA (HR training photos), ITERS (schedule length, default 2000), BATCH (default 4: twice
# the LR pixels of the S runs' 16 x 48²), TIME_BUDGET (seconds of training per call, default 390),
# THREADS (CPU threads per run), PYTHON (default python3).
# On a lent machine the photos must travel with the tree (../shared does not): copy them once into an
# ignored folder, `mkdir -p .campaign && cp -r ../shared/data/train/bsds400 .campaign/` (29 MB), then run
# `DATA=.campaign/bsds400 bash scripts/gpu_campaign.sh runs/gpu` with `.campaign` and `runs/gpu` carried.
set -euo pipefail
cd "$(dirname "$0")/.."
rehearse=0
if [ "${1:-}" = "--rehearse" ]; then rehearse=1; shift; fi
[ $# -eq 1 ] || { echo "usage: bash scripts/gpu_campaign.sh [--rehearse] OUTDIR" >&2; exit 2; }
out=$1
mkdir -p "$out/logs" "$out/runs"

data=${DATA:-}
for d in ../shared/data/train/bsds400 shared/data/train/bsds400 .campaign/bsds400; do
  [ -z "$data" ] && [ -d "$d" ] && data=$d
done
[ -n "$data" ] || { echo "no training photos: set DATA or provide ../shared/data/train/bsds400" >&2; exit 2; }

heldout=data/heldout
py=${PYTHON:-python3}
[ -d "$heldout/repeat" ] || $py -m scripts.heldout_data --bsds "$data" --out "$heldout"

if [ "$rehearse" = 1 ]; then
  # a dozen photos, 48x48 crops, 2 iterations: every step of the campaign, on the CPU, in a few minutes
  small="$out/rehearse-data"; mkdir -p "$small"
  for f in $(ls "$data" | head -n 12); do ln -sf "$(cd "$data" && pwd)/$f" "$small/$f"; done
  few="$out/rehearse-heldout"; mkdir -p "$few"
  for f in text.png coins.png; do ln -sf "$(cd "$heldout/repeat" && pwd)/$f" "$few/$f"; done
  data=$small device=cpu iters=2 patch=48 batch=2 budget=0 threads=${THREADS:-1} lr_size=64 val_split=6
  report_data=("$few")
else
  device=cuda iters=${ITERS:-2000} patch=136 batch=${BATCH:-4} budget=${TIME_BUDGET:-390}
  threads=${THREADS:-4} lr_size=128 val_split=40
  report_data=("$heldout/bsds" "$heldout/repeat")
fi

fix="--logit-scale 8 --attn-res-scale 1"
common="--preset m --scale 2 --data $data --iters $iters --batch $batch --patch $patch --mine 0.5 --lr 5e-4"
common="$common --warmup 100 --val-every 500 --save-every 100 --seed 3 --device $device --threads $threads"
common="$common --val-split $val_split --time-budget $budget --export-partial"
declare -A flags=([lcoan]="--attention lsp $fix --reseed-dead" [dense]="--attention dense $fix" [none]="--attention none")
pids=()
for kind in lcoan dense none; do
  name=$kind-m-x2
  # shellcheck disable=SC2086
  $py -m lcoan.train $common ${flags[$kind]} --out "$out/runs/$name" --export "$out/$name" \
    > "$out/logs/$name.log" 2>&1 &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
if [ "$status" != 0 ]; then tail -n 20 "$out"/logs/*.log >&2; echo "a training run failed" >&2; exit 1; fi

$py -m lcoan.introspect.report --checkpoint "$out"/{lcoan,dense,none}-m-x2 --data "${report_data[@]}" \
  --lr-size "$lr_size" --queries 128 --device "$device" --json "$out/heldout.json" > "$out/heldout.md"
cat "$out/heldout.md"

if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then
  tar czf - -C "$out" --exclude=resume --exclude=rehearse-data --exclude=rehearse-heldout . \
    | split -b 15m - "$OUT/campaign.tgz."
  echo "packed into $OUT/campaign.tgz.* (join with cat, then tar xzf)"
fi
