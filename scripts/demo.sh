#!/usr/bin/env bash
# The main job at a small scale, end to end, on the data mirror (default ../shared/data):
# assets -> pose file (MoCap + lifted LSP + prior samples) and its pose-space page -> dressed-body
# textures from garment photos and their page (the texture-only dressing, render.clothing.mode=library)
# -> rendered shards in mesh clothing, the default (MakeHuman garments, shoes and hair fitted to each
# body, fabric from the garment photos; checked) -> trained model + evaluation on held-out shards and
# real LSP photos -> gallery.
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
synth sample-poses --sources cmu,lsp,prior --n 2000 --out "$OUT/poses.npz" --quiet "$@"
synth pose-gallery --poses "$OUT/poses.npz" --out "$OUT/pose_space" --coverage-n 1000,10000 --quiet "$@"
synth dress --n 24 --out "$OUT/textures" --quiet "$@"
synth gallery "$OUT/textures" --dress
synth render --out "$OUT/dataset" --poses "$OUT/poses.npz" --shards 8 --samples-per-shard 32 "$@"
python "$MIRROR/../tools/check_dataset.py" "$OUT/dataset" --json "$OUT/dataset/check.json"
synth train --data "$OUT/dataset" --out "$OUT/run" train.epochs=15 train.width=32 "$@"
synth eval --run "$OUT/run" --data "$OUT/dataset" --real "$SYNTH_DATA/lsp:801-1000"
synth gallery "$OUT/dataset"
synth gallery "$OUT/dataset" --stats
set +x
echo
echo "outputs in $OUT:"
echo "  pose file      $OUT/poses.npz   (report: $OUT/poses.report.json; page: $OUT/pose_space/pose_space.html)"
echo "  textures       $OUT/textures   (page: $OUT/textures/gallery/dressing.html; render with"
echo "                 render.clothing.mode=library textures.library=$OUT/textures for texture-only dressing)"
echo "  dataset        $OUT/dataset   (mesh clothing; checked: $OUT/dataset/check.json)"
echo "  trained model  $OUT/run/checkpoint.pt   (evaluation: $OUT/run/eval.json)"
echo "  gallery        $OUT/dataset/gallery/index.html   (open in a browser; statistics: $OUT/dataset/gallery/stats.html)"
