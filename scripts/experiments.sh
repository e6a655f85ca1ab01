#!/usr/bin/env bash
# Issue 5's experiment: render a dataset with `synth render`, train every recipe of train/ on it
# (same seed and settings, each from scratch), evaluate each on the held-out synthetic shards and
# on LSP images 801-1000 (never used in training: the recipes adapt with images 1-800), and write
# a markdown table to $OUT/results.md.
#
# Usage: scripts/experiments.sh [key=value ...]    (overrides for every `synth train`, e.g.
#        train.width=16 train.input_size=96 train.epochs=8 for a CPU-sized run)
# Environment: OUT (out/experiments), DATASET ($OUT/dataset; rendered only when it has no
#   dataset.json), MIRROR (../shared/data), SHARDS (24), PER_SHARD (64), RECIPES (all six),
#   PARALLEL (0 = one recipe after another; 1 = all at once, each on one CPU thread).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f .venv/bin/activate ] && . .venv/bin/activate
MIRROR=${MIRROR:-$(cd .. && pwd)/shared/data}
OUT=${OUT:-out/experiments}
DATASET=${DATASET:-$OUT/dataset}
LSP=${LSP:-$MIRROR/lsp}
RECIPES=${RECIPES:-"synthetic dann mixer saa saa_jo2d spa"}
PARALLEL=${PARALLEL:-0}
mkdir -p "$OUT/runs"

if [ ! -f "$DATASET/dataset.json" ]; then
  synth sample-poses --n 2000 --out "$OUT/poses.npz" data_dir="$MIRROR"
  synth render --out "$DATASET" --poses "$OUT/poses.npz" --shards "${SHARDS:-24}" \
    --samples-per-shard "${PER_SHARD:-64}" --quiet data_dir="$MIRROR"
fi

run_one() {
  local r=$1; shift
  local start end
  start=$(date +%s)
  synth train --config "train/$r.yaml" --data "$DATASET" --out "$OUT/runs/$r" data_dir="$MIRROR" "$@" \
    > "$OUT/runs/$r.train.log" 2>&1
  end=$(date +%s)
  echo $((end - start)) > "$OUT/runs/$r.train_seconds"
  synth eval --run "$OUT/runs/$r" --data "$DATASET" --real "$LSP:801-1000" > "$OUT/runs/$r.eval.txt" 2>&1
  echo "$r: trained in $((end - start)) s, evaluated ($OUT/runs/$r/eval.json)"
}

if [ "$PARALLEL" = 1 ]; then
  export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
  for r in $RECIPES; do run_one "$r" train.workers=0 train.threads=1 "$@" & done
  wait
else
  for r in $RECIPES; do run_one "$r" "$@"; done
fi

python - "$OUT" "$LSP:801-1000" $RECIPES <<'PY'
import json, sys
from pathlib import Path
out, spec, recipes = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
lines = ["| recipe | MPJPE (mm) | PA-MPJPE (mm) | 3DPCK@150 (%) | AUC (%) | LSP 801-1000 PCK@0.2 (%) | "
         "PCK@0.2 visible (%) | epochs | train time (s) |", "|" + "---|" * 9]
for r in recipes:
    ev = out / "runs" / r / "eval.json"
    if not ev.exists():
        lines.append(f"| {r} | (no evaluation: see runs/{r}.train.log) |" + " |" * 7)
        continue
    e = json.loads(ev.read_text())
    real = e.get("real", {}).get(spec) or next(iter(e.get("real", {}).values()), {})
    secs = (out / "runs" / f"{r}.train_seconds").read_text().strip()
    f = lambda v, k=1: "-" if v is None else f"{v * k:.1f}"
    lines.append(f"| {r}{' (+SPA head)' if e.get('spa_applied') else ''} | {f(e.get('mpjpe_mm'))} | "
                 f"{f(e.get('pa_mpjpe_mm'))} | {f(e.get('pck150'), 100)} | {f(e.get('auc'), 100)} | "
                 f"{f(real.get('pck'), 100)} | {f(real.get('pck_visible'), 100)} | {e.get('epoch')} | {secs} |")
text = "\n".join(lines) + "\n"
(out / "results.md").write_text(text)
print(text)
PY
