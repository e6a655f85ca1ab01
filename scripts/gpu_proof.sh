#!/usr/bin/env bash
# The GPU render proof, in one command, on an NVIDIA machine with the project installed (`synth`
# on PATH, the data in $SYNTH_DATA or ./data):
#
#     scripts/gpu_proof.sh [OUT]        (default out/gpu_proof; extra key=value overrides after OUT)
#
# 1. `synth doctor --device gpu`: Blender, the Cycles devices (OptiX/CUDA), one 256x256 sample on
#    the GPU and on the CPU compared; OUT/doctor.json.
# 2. For K = 1, 2, 4 workers per GPU: `synth render --device gpu --workers-per-gpu K` of
#    2 shards x 100 samples per worker (2 x K x GPUs shards, so every worker stays busy) at
#    256x256, checked with check_dataset.py, GPU memory sampled with nvidia-smi while it runs.
# 3. OUT/gpu_proof.json: per K images/s (end to end, and steady: worker start-up excluded), peak
#    GPU memory, the workers' GPUs; the backend and devices from the doctor.
#
# Without a GPU it stops with one line (exit 2). Environment: SYNTH (default `synth`), PYTHON
# (default python3), CHECKER (default ../shared/tools/check_dataset.py beside the checkout),
# KS (default "1 2 4"), SAMPLES (per shard, default 100), SHARDS_PER_WORKER (default 2);
# PROOF_DEVICE=cpu runs the same steps on the CPU (K worker processes in all) only to check the
# script on a machine without a GPU (tests/test_gpu_paths.py) - its figures are not GPU figures.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/gpu_proof}
[ $# -gt 0 ] && shift
SYNTH=${SYNTH:-synth}
PYTHON=${PYTHON:-python3}
CHECKER=${CHECKER:-$(cd .. && pwd)/shared/tools/check_dataset.py}
KS=${KS:-1 2 4}
SAMPLES=${SAMPLES:-100}
SHARDS_PER_WORKER=${SHARDS_PER_WORKER:-2}
PROOF_DEVICE=${PROOF_DEVICE:-gpu}

die() { echo "gpu_proof: error: $*" >&2; exit 2; }

if [ "$PROOF_DEVICE" = gpu ]; then
    command -v nvidia-smi >/dev/null 2>&1 || die "no NVIDIA GPU here (nvidia-smi not found); run this on a GPU node"
    GPUS=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
    [ "${GPUS:-0}" -gt 0 ] || die "no NVIDIA GPU here (nvidia-smi lists none); run this on a GPU node"
    if [ -n "${CUDA_VISIBLE_DEVICES+x}" ]; then
        GPUS=$(echo "$CUDA_VISIBLE_DEVICES" | tr ',' '\n' | grep -c '^[0-9]' || true)
        [ "$GPUS" -gt 0 ] || die "CUDA_VISIBLE_DEVICES='$CUDA_VISIBLE_DEVICES' hides every GPU"
    fi
    WORKERS_FLAG=--workers-per-gpu
else
    GPUS=1                   # the script check: K worker processes on the CPU
    WORKERS_FLAG=--workers
fi
[ -f "$CHECKER" ] || die "$CHECKER: check_dataset.py not found (set CHECKER=/path/to/check_dataset.py)"
mkdir -p "$OUT"

# Cycles must see the GPU too (driver, NVIDIA_DRIVER_CAPABILITIES): one line and exit 2 if not.
$SYNTH doctor --device "$PROOF_DEVICE" --json "$OUT/doctor.json" "$@" > "$OUT/doctor.txt" || {
    rc=$?; cat "$OUT/doctor.txt" >&2; exit $rc; }
cat "$OUT/doctor.txt"

for K in $KS; do
    DS="$OUT/k$K"
    rm -rf "$DS"
    SHARDS=$((SHARDS_PER_WORKER * K * GPUS))
    # peak GPU memory while the K workers render
    : > "$OUT/k$K.memory.csv"
    SMI=
    if [ "$PROOF_DEVICE" = gpu ]; then
        nvidia-smi --query-gpu=index,memory.used --format=csv,noheader,nounits -lms 500 > "$OUT/k$K.memory.csv" &
        SMI=$!
    fi
    START=$(date +%s.%N)
    $SYNTH render --out "$DS" --shards "$SHARDS" --samples-per-shard "$SAMPLES" --device "$PROOF_DEVICE" \
        "$WORKERS_FLAG" "$K" --quiet render.image_size=[256,256] "$@" > "$OUT/k$K.summary.json" || {
        rc=$?; [ -n "$SMI" ] && kill "$SMI" 2>/dev/null; die "synth render failed at K=$K (exit $rc; see $OUT/k$K.summary.json)"; }
    END=$(date +%s.%N)
    if [ -n "$SMI" ]; then kill "$SMI" 2>/dev/null || true; wait "$SMI" 2>/dev/null || true; fi
    echo "$START $END" > "$OUT/k$K.wall"
    $PYTHON "$CHECKER" "$DS" --json "$OUT/k$K.check.json" > "$OUT/k$K.check.txt" || {
        cat "$OUT/k$K.check.txt" >&2; die "check_dataset.py failed for K=$K ($DS)"; }
    tail -n 1 "$OUT/k$K.check.txt"
done

$PYTHON - "$OUT" "$GPUS" "$PROOF_DEVICE" $KS <<'EOF'
import json, sys
from pathlib import Path
out, gpus, device, ks = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], [int(k) for k in sys.argv[4:]]
doctor = json.loads((out / "doctor.json").read_text())
result = {"device": device, "gpus": gpus, "backend": doctor.get("renders", {}).get(device, {}).get("backend"),
          "denoiser": doctor.get("renders", {}).get(device, {}).get("denoiser"),
          "cycles_gpu_devices": doctor.get("cycles_gpu_devices"), "nvidia_smi": doctor.get("nvidia_smi"),
          "doctor_gpu_vs_cpu": doctor.get("gpu_vs_cpu"), "per_k": {}}
for k in ks:
    text = (out / f"k{k}.summary.json").read_text()
    summary = json.loads(text[text.index("{\n"):])
    start, end = (float(x) for x in (out / f"k{k}.wall").read_text().split())
    sides = [json.loads(p.read_text()) for p in sorted((out / f"k{k}" / "shards").glob("shard-*.json"))]
    samples = sum(s["num_samples"] for s in sides)
    busy = sum(s["wall_seconds_per_sample"] * s["num_samples"] for s in sides)
    workers = summary.get("workers", 1)
    peak = {}
    for line in (out / f"k{k}.memory.csv").read_text().splitlines():
        try:
            i, used = (int(float(x)) for x in line.split(","))
        except ValueError:
            continue
        peak[i] = max(peak.get(i, 0), used)
    stage = {}
    for s in sides:
        for name, v in s["seconds_per_sample"].items():
            stage[name] = stage.get(name, 0.0) + 1000 * v / len(sides)
    result["image_size"] = json.loads((out / f"k{k}" / "dataset.json").read_text())["image_size"]
    result["per_k"][k] = {
        "workers": workers, "shards": len(sides), "samples": samples,
        "images_per_s_end_to_end": samples / (end - start),
        "images_per_s_steady": samples / (busy / workers) if busy else None,
        "peak_gpu_memory_mib": peak, "worker_plan": summary.get("worker_plan"),
        "worker_gpus": [w.get("cuda_visible_devices") for w in summary.get("worker_processes", [])],
        "stage_ms_per_sample": stage, "check": json.loads((out / f"k{k}.check.json").read_text())
        if (out / f"k{k}.check.json").is_file() else None}
(out / "gpu_proof.json").write_text(json.dumps(result, indent=2))
print(f"backend {result['backend']}, {gpus} GPU(s)" if device == "gpu" else
      "PROOF_DEVICE=cpu: a check of this script, not GPU figures")
for k, r in result["per_k"].items():
    print(f"K={k}: {r['workers']} workers, {r['images_per_s_end_to_end']:.1f} images/s end to end, "
          f"{r['images_per_s_steady'] or 0:.1f} steady; peak GPU memory {r['peak_gpu_memory_mib']} MiB")
print(f"wrote {out / 'gpu_proof.json'}")
EOF
