"""Time per sample of each pipeline stage at 256x256 (default), printed from a real render.

    python benchmarks/bench_pipeline.py [--samples 24] [--data ../shared/data] [key=value ...]

Stages: pose (draw), body (Anny phenotype + retarget + skinning), texture, scene_sample (camera,
lights, background), prepare (buffers for Blender), scene_update (Blender), render (Cycles),
readback (passes), composite, encode (JPEG/PNG), write (tar). The first four and `prepare` run
in a thread beside the render, composite/encode/write in another.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synth.config import load_config  # noqa: E402
from synth.dataset.render_job import STAGES, render_dataset  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=24)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args()
    cfg = load_config(None, [f"data_dir={a.data}", "dataset.shards=1", f"dataset.samples_per_shard={a.samples}",
                             *a.overrides])
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        render_dataset(cfg, Path(tmp) / "ds", progress=False)
        wall = time.perf_counter() - t0
        side = json.loads((Path(tmp) / "ds" / "shards" / "shard-000000.json").read_text())
    per = side["seconds_per_sample"]
    W, H = cfg.render.image_size
    print(f"{a.samples} samples at {W}x{H}, {cfg.render.samples} Cycles samples, "
          f"denoise={cfg.render.denoise}, device={cfg.render.device}")
    print(f"{'stage':14s} {'ms/sample':>10s}")
    for s in STAGES:
        print(f"{s:14s} {1000 * per.get(s, 0.0):10.1f}")
    total = sum(per.values())
    wall = side["wall_seconds_per_sample"]
    print(f"{'sum of stages':14s} {1000 * total:10.1f}   (the stages overlap: preparation and encoding run in "
          "threads beside the render)")
    print(f"{'wall':14s} {1000 * wall:10.1f}")
    print(f"steady state: {1.0 / wall:.2f} samples/s; the render is {per.get('render', 0.0) / wall:.1%} of the wall time "
          "(benchmarks/bench_throughput.py compares with the bare render)")
    print(f"wall time {wall:.1f} s including set-up (Anny load, pose pool, Blender scene build)")


if __name__ == "__main__":
    main()
