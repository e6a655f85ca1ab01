"""Resident memory of one render worker over thousands of samples (issue: flat memory).

    python benchmarks/bench_memory.py [--samples 2000] [--per-shard 50] [--size 128] [--data ../shared/data]

One SceneSampler and one Renderer render shard after shard, as `synth render` does in one worker;
RSS (from /proc/self/status) is printed after every shard. The summary compares RSS after the
warm-up (the first 10% of samples) with the end, and fits a slope in MB per 1,000 samples.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synth.config import load_config  # noqa: E402
from synth.dataset.render_job import render_shard  # noqa: E402
from synth.dataset.scene_sampler import SceneSampler  # noqa: E402
from synth.dataset.shards import write_or_check_meta  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--per-shard", type=int, default=50)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args()
    shards = -(-a.samples // a.per_shard)
    cfg = load_config(None, [f"data_dir={a.data}", f"dataset.shards={shards}",
                             f"dataset.samples_per_shard={a.per_shard}",
                             f"render.image_size=[{a.size},{a.size}]", *a.overrides])
    from synth.render import open_renderer
    rc = cfg.render
    print(f"rss at start {rss_mb():.0f} MB", flush=True)
    sampler = SceneSampler(cfg)
    renderer = open_renderer(rc, a.threads)     # with the render-cost levers of render.cycles
    print(f"rss after set-up (Anny, pose pool, Blender scene) {rss_mb():.0f} MB", flush=True)
    counts, rss = [], []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ds"
        (out / "shards").mkdir(parents=True)
        write_or_check_meta(out, cfg)
        for s in range(shards):
            render_shard(sampler, renderer, out, s, cfg)
            (out / "shards" / f"shard-{s:06d}.tar").unlink()      # keep the disk small
            counts.append((s + 1) * a.per_shard)
            rss.append(rss_mb())
            print(f"samples {counts[-1]:6d}  rss {rss[-1]:7.1f} MB  "
                  f"({counts[-1] / (time.perf_counter() - t0):.2f} samples/s)", flush=True)
    renderer.close()
    counts, rss = np.array(counts, float), np.array(rss)
    warm = counts >= 0.1 * counts[-1]
    slope = np.polyfit(counts[warm], rss[warm], 1)[0] * 1000.0
    print(f"\n{int(counts[-1])} samples at {a.size}x{a.size}: rss after warm-up {rss[warm][0]:.1f} MB, "
          f"at the end {rss[-1]:.1f} MB, max {rss.max():.1f} MB; "
          f"fitted slope after warm-up {slope:+.2f} MB per 1000 samples")


if __name__ == "__main__":
    main()
