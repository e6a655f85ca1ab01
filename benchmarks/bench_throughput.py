"""Whole-pipeline throughput against the bare Cycles render of the same scenes, in one run.

    python benchmarks/bench_throughput.py [--samples 16] [--rounds 3] [--size 256] [--data ../shared/data]

1. pipeline: `render_shard` as `synth render` runs it (scene drawing and conversion in one
   thread, Blender update + Cycles render in the caller, compositing/encoding/writing in another),
   wall-clock samples/s over the shard;
2. bare render: the same scenes drawn and converted beforehand, then only `bpy.ops.render.render`
   timed (the `render` timing of each sample), samples/s = N / sum of render times; also the
   Blender-side loop (scene update + render + EXR readback) for reference.
The ratio pipeline / bare is the share of the render's speed the whole pipeline keeps.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synth.config import load_config  # noqa: E402
from synth.dataset.render_job import STAGES, render_shard  # noqa: E402
from synth.dataset.scene_sampler import SceneSampler  # noqa: E402
from synth.dataset.shards import write_or_check_meta  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=16, help="samples per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=0, help="Cycles threads (0 = all cores)")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args()
    n = a.samples
    cfg = load_config(None, [f"data_dir={a.data}", "dataset.shards=64", f"dataset.samples_per_shard={n}",
                             f"render.image_size=[{a.size},{a.size}]", *a.overrides])
    from synth.render import open_renderer
    rc = cfg.render
    sampler = SceneSampler(cfg)
    renderer = open_renderer(rc, a.threads)     # with the render-cost levers of render.cycles
    renderer.render(sampler.scene(a.rounds, 0)[0])          # warm-up: kernels, images, BVH
    # Rounds alternate pipeline and bare render over the same scenes, so a change in the machine's
    # load during the run affects both alike.
    pipeline_s = render_s = loop_s = 0.0
    per: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ds"
        (out / "shards").mkdir(parents=True)
        write_or_check_meta(out, cfg)
        for r in range(a.rounds):
            t0 = time.perf_counter()
            side = render_shard(sampler, renderer, out, r, cfg)
            pipeline_s += time.perf_counter() - t0
            for k, v in side["seconds_per_sample"].items():
                per[k] = per.get(k, 0.0) + v / a.rounds
            prepared = [renderer.prepare(sampler.scene(r, i)[0]) for i in range(n)]
            for prep in prepared:
                t0 = time.perf_counter()
                passes = renderer.render_passes(prep)
                loop_s += time.perf_counter() - t0
                render_s += passes.timings["render"]
    renderer.close()
    n_total = n * a.rounds
    print(f"{n_total} samples ({a.rounds} rounds) at {a.size}x{a.size}, {rc.samples} Cycles samples, denoise={rc.denoise}, "
          f"device={rc.device}")
    print("stage times inside the pipeline (ms/sample, wall clock in each stage's thread; they overlap the render):")
    for s in STAGES:
        print(f"  {s:14s} {1000 * per.get(s, 0.0):8.1f}")
    pipe_rate, bare_rate, loop_rate = n_total / pipeline_s, n_total / render_s, n_total / loop_s
    print(f"pipeline (wall)                    {pipe_rate:6.2f} samples/s")
    print(f"bare Cycles render, same scenes    {bare_rate:6.2f} samples/s")
    print(f"Blender loop (update+render+read)  {loop_rate:6.2f} samples/s")
    print(f"ratio pipeline / bare render       {pipe_rate / bare_rate:6.3f}  "
          f"(overhead {100 * (bare_rate / pipe_rate - 1):.1f}% of the render time)")


if __name__ == "__main__":
    main()
