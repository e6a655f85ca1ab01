"""Render-cost levers of Cycles (render.samples, render.cycles.*): time per sample and quality
against a 128-sample reference of the same scenes, printed as a markdown table.

    python benchmarks/bench_render_levers.py [--scenes 8] [--rounds 2] [--size 256]
                                             [--data ../shared/data] [--only NAME,...] [key=value ...]

The scenes are the pipeline's own (SceneSampler: Anny bodies, garment textures, lights, HDRIs,
backgrounds). The reference renders each at 128 samples with Blender's default bounce limits
(12 total, 4 diffuse, 4 glossy, 12 transmission, 8 transparent) and OIDN at its best (HIGH,
ACCURATE prefilter). Quality: PSNR (dB) of the person's pixels (the reference's mask) of the
composited RGB against the reference; mean and worst over the scenes. A denoised reference
favours settings close to its own denoiser settings, so the last column compares with the same
128 samples undenoised (noisier: lower values, but neutral between denoiser settings).

Time: each setting renders the scenes in order after dropping Cycles' persistent data and one
untimed warm-up render, as a shard does; `render ms` is Cycles' wall time per sample (the median
over --rounds, the settings visited forwards then backwards), `CPU ms` the process CPU time per
sample during the render (all of Cycles' threads; the steadier figure on a shared machine).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from synth.config import load_config  # noqa: E402
from synth.dataset.scene_sampler import SceneSampler  # noqa: E402
from synth.render.factory import open_renderer  # noqa: E402
from synth.render.settings import CyclesSettings  # noqa: E402


def levers(default: CyclesSettings) -> list[tuple[str, CyclesSettings]]:
    d = default
    low = dict(max_bounces=2, diffuse_bounces=1, glossy_bounces=1, transmission_bounces=1, transparent_bounces=2)
    direct = dict(max_bounces=1, diffuse_bounces=1, glossy_bounces=1, transmission_bounces=0, transparent_bounces=1)
    high = dict(max_bounces=8, diffuse_bounces=4, glossy_bounces=4, transmission_bounces=4, transparent_bounces=8)
    return [
        ("default", d),
        ("samples 8", d.replace(samples=8)),
        ("samples 4", d.replace(samples=4)),
        ("samples 32", d.replace(samples=32)),
        ("no denoising", d.replace(denoise=False)),
        # Cycles checks convergence every 16 samples: at the default 16-sample cap adaptive
        # sampling cannot stop a pixel early (measured: identical pixels), so it is a lever only
        # with a higher cap
        ("adaptive 0.1 (cap 16)", d.replace(adaptive_threshold=0.1, adaptive_min_samples=4)),
        ("adaptive 0.05, min 16 (cap 32)", d.replace(samples=32, adaptive_threshold=0.05, adaptive_min_samples=16)),
        ("adaptive 0.1, min 16 (cap 64)", d.replace(samples=64, adaptive_threshold=0.1, adaptive_min_samples=16)),
        ("adaptive 0.05, min 16 (cap 64)", d.replace(samples=64, adaptive_threshold=0.05, adaptive_min_samples=16)),
        ("bounces 2/1/1/1/2", d.replace(**low)),
        ("bounces 1/1/1/0/1", d.replace(**direct)),
        ("bounces 8/4/4/4/8", d.replace(**high)),
        ("OIDN BALANCED", d.replace(denoise_quality="BALANCED")),
        ("OIDN FAST", d.replace(denoise_quality="FAST")),
        ("prefilter NONE", d.replace(denoise_prefilter="NONE")),
        ("prefilter ACCURATE", d.replace(denoise_prefilter="ACCURATE")),
        ("tiles 64", d.replace(tile_size=64)),
        ("no persistent data", d.replace(persistent_data=False)),
    ]


def reference_settings(default: CyclesSettings) -> CyclesSettings:
    return default.replace(samples=128, adaptive_threshold=0.0, max_bounces=12, diffuse_bounces=4, glossy_bounces=4,
                           transmission_bounces=12, transparent_bounces=8, denoise=True, denoise_quality="HIGH",
                           denoise_prefilter="ACCURATE", tile_size=0)


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    d = a[mask].astype(np.float64) - b[mask].astype(np.float64)
    mse = float(np.mean(d * d))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def render_all(renderer, settings: CyclesSettings, warmup, preps) -> tuple[list, list[float], list[float]]:
    """Outputs, render wall seconds and process CPU seconds of each prepared scene."""
    renderer.apply_settings(settings)
    renderer.reset_persistent_data()
    renderer.finish(renderer.render_passes(warmup))
    outs, walls, cpus = [], [], []
    for prep in preps:
        c0 = time.process_time()
        passes = renderer.render_passes(prep)
        cpus.append(time.process_time() - c0)
        walls.append(passes.timings["render"])
        outs.append(renderer.finish(passes))
    return outs, walls, cpus


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--only", help="comma-separated setting names (default: all)")
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args()
    cfg = load_config(None, [f"data_dir={a.data}", f"render.image_size=[{a.size},{a.size}]", *a.overrides])
    default = CyclesSettings.from_config(cfg.render)
    chosen = levers(default)
    if a.only:
        names = [n.strip() for n in a.only.split(",")]
        chosen = [(n, s) for n, s in chosen if n in names or n == "default"]
    sampler = SceneSampler(cfg)
    renderer = open_renderer(cfg.render)
    try:
        warmup = renderer.prepare(sampler.scene(99, 0)[0])
        preps = [renderer.prepare(sampler.scene(98, i)[0]) for i in range(a.scenes)]
        t0 = time.perf_counter()
        ref, _, _ = render_all(renderer, reference_settings(default), warmup, preps)
        t_ref = time.perf_counter() - t0
        # the same samples undenoised: noisier, but no denoiser setting is favoured by it
        raw, _, _ = render_all(renderer, reference_settings(default).replace(denoise=False), warmup, preps)
        masks = [r.parts > 0 for r in ref]
        walls: dict[str, list[float]] = {n: [] for n, _ in chosen}
        cpus: dict[str, list[float]] = {n: [] for n, _ in chosen}
        quality: dict[str, list[float]] = {}
        quality_raw: dict[str, list[float]] = {}
        for r in range(a.rounds):
            for name, settings in (chosen if r % 2 == 0 else chosen[::-1]):
                outs, w, c = render_all(renderer, settings, warmup, preps)
                walls[name].append(statistics.mean(w))
                cpus[name].append(statistics.mean(c))
                quality.setdefault(name, [psnr(o.rgb, ref_o.rgb, m) for o, ref_o, m in zip(outs, ref, masks)])
                quality_raw.setdefault(name, [psnr(o.rgb, ref_o.rgb, m) for o, ref_o, m in zip(outs, raw, masks)])
    finally:
        renderer.close()

    W, H = cfg.render.image_size
    base_wall, base_cpu = statistics.median(walls["default"]), statistics.median(cpus["default"])
    base_q = statistics.mean(quality["default"])
    print(f"{a.scenes} scenes at {W}x{H} on the CPU ({cfg.render.device}), {a.rounds} rounds; "
          f"reference: 128 samples, bounces 12/4/4/12/8, OIDN HIGH + ACCURATE prefilter ({t_ref:.0f} s); "
          f"default: {default.samples} samples, bounces {default.max_bounces}/{default.diffuse_bounces}/"
          f"{default.glossy_bounces}/{default.transmission_bounces}/{default.transparent_bounces} "
          "(total/diffuse/glossy/transmission/transparent)\n")
    print("| setting | render ms/sample (wall) | CPU ms/sample | CPU vs default | PSNR person (dB), mean | worst "
          "| vs default (dB) | PSNR vs undenoised 128 (dB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, _ in chosen:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        q = quality[name]
        print(f"| {name} | {1000 * wall:.0f} | {1000 * cpu:.0f} | {cpu / base_cpu:.2f}x | {statistics.mean(q):.2f} | "
              f"{min(q):.2f} | {statistics.mean(q) - base_q:+.2f} | {statistics.mean(quality_raw[name]):.2f} |")
    spread = max(max(v) / min(v) - 1 for v in cpus.values() if len(v) > 1) if a.rounds > 1 else 0.0
    print(f"\nlargest spread of a setting's CPU time between rounds: {100 * spread:.0f} % "
          f"(base: {1000 * base_wall:.0f} ms render wall per sample)")


if __name__ == "__main__":
    main()
