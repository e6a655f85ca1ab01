"""Clipped highlights on the person, and CPU time per sample, of real renders of the default scene.

    python benchmarks/bench_exposure.py [--samples 64] [--data ../shared/data] [key=value ...]

Draws `--samples` scenes with the real SceneSampler (default config unless overridden: mesh
clothing, lights, HDRIs, background photos) and renders them with Cycles at render.image_size.
Per sample: the share of person pixels (mask = 255) whose RGB is >= 235 in all three channels
(clipped white, measured on the composited 8-bit RGB before JPEG encoding). Prints the mean share,
the number of samples above 10 %, percentiles, and the process CPU time per sample (Cycles'
threads included; the machine may be shared, so wall time is printed too but means less).
Targets of the exposure work: mean <= 2 %, at most 5 % of the samples above 10 %.
Compare with the exposure off: `render.exposure.enabled=false render.ground.probability=0`, or
with `--ab` (each scene also rendered without ground and exposure, in the same process).

Measured (64 samples, 256x256, 16 Cycles samples, default config, mesh clothing, a shared 2-core
machine): without ground and exposure 13.97 % mean clipped, 23/64 samples > 10 %, 1637 ms CPU per
sample; with them (AgX, metered; 52/64 grounded) 0.35 % mean, 0/64 > 10 %, 2572 ms CPU per sample.
(Those times were taken with Cycles' persistent data on, which can make the second render of a
scene cheaper, so the gap is likely overstated; for the cost of each realism level use benchmarks/bench_realism_cost.py.)
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synth.config import load_config  # noqa: E402
from synth.dataset.scene_sampler import SceneSampler  # noqa: E402
from synth.render import Renderer  # noqa: E402
from synth.render.settings import CyclesSettings  # noqa: E402

CLIP_LEVEL = 235


def clipped_share(rgb: np.ndarray, mask: np.ndarray) -> float:
    """Share of mask pixels whose three channels are all >= CLIP_LEVEL (0 for an empty mask)."""
    person = mask > 0
    n = int(person.sum())
    if n == 0:
        return 0.0
    return float((rgb[person] >= CLIP_LEVEL).all(axis=1).sum()) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--per-shard", type=int, default=16, help="samples per shard (the scene is reset per shard)")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--save", default=None, help="folder to write each sample's RGB (PNG) into, for a contact sheet")
    ap.add_argument("--json", default=None, help="write the per-sample figures to this JSON file")
    ap.add_argument("--ab", action="store_true",
                    help="also render each scene without its ground and exposure (the old compositing), interleaved "
                         "in the same process, for a like-for-like CPU time on a shared machine")
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args()
    cfg = load_config(None, [f"data_dir={a.data}", *a.overrides])
    sampler = SceneSampler(cfg)
    rc = cfg.render
    settings = CyclesSettings.from_config(rc)
    renderer = Renderer(rc.width, rc.height, samples=rc.samples, denoise=rc.denoise, cycles=settings)
    save = Path(a.save) if a.save else None
    if save:
        save.mkdir(parents=True, exist_ok=True)
    shares, cpu, wall, grounded = [], [], [], 0
    plain_shares, plain_cpu = [], []
    try:
        for k in range(a.samples):
            shard, index = divmod(k, a.per_shard)
            if index == 0:
                renderer.reset_persistent_data()
            c0, w0 = time.process_time(), time.perf_counter()
            spec, _ = sampler.scene(shard, index)
            c1 = time.process_time()
            out = renderer.render(spec)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
            grounded += getattr(spec, "ground", None) is not None
            shares.append(clipped_share(out.rgb, out.mask))
            if save:
                import cv2
                cv2.imwrite(str(save / f"{k:04d}.png"), cv2.cvtColor(out.rgb, cv2.COLOR_RGB2BGR))
            if a.ab:
                c2 = time.process_time()
                plain = renderer.render(dataclasses.replace(spec, ground=None, exposure=None))
                plain_cpu.append(time.process_time() - c2 + (c1 - c0))
                plain_shares.append(clipped_share(plain.rgb, plain.mask))
                if save:
                    cv2.imwrite(str(save / f"{k:04d}_plain.png"), cv2.cvtColor(plain.rgb, cv2.COLOR_RGB2BGR))
    finally:
        renderer.close()
    if a.ab:
        p = np.array(plain_shares)
        print(f"A/B, the same scenes without ground and exposure: clipped mean {100 * p.mean():.2f} %, "
              f"{int((p > 0.10).sum())}/{len(p)} samples > 10 %; {1000 * np.mean(plain_cpu):.0f} ms process CPU "
              f"per sample")
    s = np.array(shares)
    over = int((s > 0.10).sum())
    W, H = rc.image_size
    print(f"{a.samples} samples at {W}x{H}, {rc.samples} Cycles samples, clothing={rc.clothing.mode}, "
          f"overrides: {' '.join(a.overrides) or '(none)'}")
    print(f"clipped share of person pixels (all channels >= {CLIP_LEVEL}): mean {100 * s.mean():.2f} %, "
          f"median {100 * np.median(s):.2f} %, p90 {100 * np.percentile(s, 90):.2f} %, max {100 * s.max():.2f} %")
    print(f"samples with > 10 % clipped: {over}/{len(s)} ({100 * over / len(s):.1f} %)   "
          f"[targets: mean <= 2 %, <= 5 % of samples]")
    print(f"grounded samples: {grounded}/{len(s)}")
    # the first sample of each shard builds the scene; the mean includes it as a render loop does
    print(f"per sample: {1000 * np.mean(cpu):.0f} ms process CPU (all threads), {1000 * np.mean(wall):.0f} ms wall "
          f"(machine shared: wall is noisy)")
    if a.json:
        Path(a.json).write_text(json.dumps({"clipped_share": shares, "cpu_s": cpu, "wall_s": wall}))


if __name__ == "__main__":
    main()
