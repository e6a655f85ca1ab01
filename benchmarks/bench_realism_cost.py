"""Time per sample of each realism level against the renders before it, in one process.

    python benchmarks/bench_realism_cost.py [--samples 24] [--data ../shared/data] [key=value ...]

Levels (each its own SceneSampler with the same seed; the trailing overrides apply to all):

| level | overrides |
| --- | --- |
| before | texture-only clothing, no ground, Standard view without metering, centred framing, no occluders |
| mesh | mesh garments, shoes and hair; the rest as before |
| mesh + ground + exposure | + the shadow-catching ground and the metered AgX exposure |
| defaults | + framing and occluders (today's default configuration) |

Every level renders the same sample indices with one Cycles renderer at render.image_size,
interleaved (sample i of every level, then sample i + 1), so a shared machine's load falls on all
levels alike. Per sample: process CPU time (all threads) of drawing the scene (pose, body,
dressing, framing) + the Blender update + Cycles + compositing; wall time is printed too. The
first two samples of each level are warm-up (Blender's and the wardrobe's one-off set-up) and not
counted. The target of the realism work: defaults <= 1.5x before.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synth.config import load_config  # noqa: E402
from synth.dataset.scene_sampler import SceneSampler  # noqa: E402
from synth.render.factory import open_renderer  # noqa: E402

OFF = ["render.ground.probability=0", "render.exposure.enabled=false", "render.framing.enabled=false",
       "render.occluders.probability=0"]
LEVELS = {
    "before": ["render.clothing.mode=photo", *OFF],
    "mesh": ["render.clothing.mode=mesh", *OFF],
    "mesh + ground + exposure": ["render.clothing.mode=mesh", "render.framing.enabled=false",
                                 "render.occluders.probability=0"],
    "defaults": [],
}
WARM_UP = 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=24)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args()
    samplers = {}
    for name, ov in LEVELS.items():
        cfg = load_config(None, [f"data_dir={a.data}", *ov, *a.overrides])
        samplers[name] = SceneSampler(cfg)
        if samplers[name].dresser is not None:
            samplers[name].dresser.warm()
    rc = cfg.render
    renderer = open_renderer(rc)
    cpu = {n: [] for n in LEVELS}
    wall = {n: [] for n in LEVELS}
    grounded = {n: 0 for n in LEVELS}
    try:
        for i in range(WARM_UP + a.samples):
            for name, sampler in samplers.items():
                c0, w0 = time.process_time(), time.perf_counter()
                spec, _ = sampler.scene(0, i)
                renderer.render(spec)
                if i >= WARM_UP:
                    cpu[name].append(time.process_time() - c0)
                    wall[name].append(time.perf_counter() - w0)
                    grounded[name] += getattr(spec, "ground", None) is not None
    finally:
        renderer.close()
    W, H = rc.image_size
    print(f"{a.samples} samples per level at {W}x{H}, {rc.samples} Cycles samples, interleaved in one process; "
          f"overrides: {' '.join(a.overrides) or '(none)'}")
    print("| level | CPU ms/sample | x before | wall ms/sample | grounded |")
    print("|---|---|---|---|---|")
    base = float(np.mean(cpu["before"]))
    for name in LEVELS:
        c = float(np.mean(cpu[name]))
        print(f"| {name} | {1e3 * c:.0f} | {c / base:.2f} | {1e3 * np.mean(wall[name]):.0f} | "
              f"{grounded[name]}/{a.samples} |")


if __name__ == "__main__":
    main()
