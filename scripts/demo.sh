#!/usr/bin/env bash
# The main job at a small scale, end to end, on the data mirror (default ../shared/data):
# assets -> pose file -> rendered shards (checked) -> trained model + evaluation -> gallery.
# Everything lands in ${OUT:-out/demo}. Extra arguments are config overrides (key=value).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
. .venv/bin/activate
MIRROR=${MIRROR:-$(cd .. && pwd)/shared/data}
OUT=${OUT:-out/demo}
export SYNTH_DATA=${SYNTH_DATA:-$OUT/data}
mkdir -p "$OUT"
set -x
synth assets fetch --mirror "$MIRROR" --link "$@"
synth sample-poses --n 2000 --out "$OUT/poses.npz" "$@"
synth render --out "$OUT/dataset" --poses "$OUT/poses.npz" --shards 8 --samples-per-shard 32 "$@"
python "$MIRROR/../tools/check_dataset.py" "$OUT/dataset" --json "$OUT/dataset/check.json"
synth train --data "$OUT/dataset" --out "$OUT/run" train.epochs=15 train.width=32 "$@"
synth eval --run "$OUT/run" --data "$OUT/dataset"
synth gallery "$OUT/dataset"
set +x
echo
echo "outputs in $OUT:"
echo "  dataset        $OUT/dataset   (checked: $OUT/dataset/check.json)"
echo "  trained model  $OUT/run/checkpoint.pt   (evaluation: $OUT/run/eval.json)"
echo "  gallery        $OUT/dataset/gallery/index.html   (open in a browser)"
