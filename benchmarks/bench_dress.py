"""Dressing benchmark: time per dressed body (target < 1 s), broken down by step; contour distance
between warped garment and body silhouette before (similarity only) and after MLS warping, per
MLS mode; deformation per candidate pose; and the share of garment photos rejected, by reason.

    .venv/bin/python benchmarks/bench_dress.py [--n 10] [--data-dir ../shared/data] [--no-photo-scan]

Setup (Anny build, body views, texture atlas) is reported apart: it is paid once per process.
Photos are segmented on first use and cached, so the per-body time is reported both for the
first bodies (mostly new photos) and as a whole.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10, help="dressed bodies to time")
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-photo-scan", action="store_true", help="skip segmenting every photo (rejection shares)")
    args = ap.parse_args()

    import torch
    torch.set_num_threads(1)
    from synth.config import load_config
    from synth.textures.library import dresser_for, entry_rng
    from synth.textures.segment import segment_garment

    cfg = load_config(None, [f"data_dir={args.data_dir}", f"seed={args.seed}"])
    t0 = time.perf_counter()
    dresser = dresser_for(cfg)
    print(f"setup (Anny + {len(dresser.views.views)} candidate views + {dresser.atlas.size}^2 atlas): "
          f"{time.perf_counter() - t0:.2f} s")

    totals, cpu, steps = [], [], {}
    dist = {"upper": [], "lower": []}
    defs: dict[str, list] = {}
    chosen = Counter()
    modes = {"rigid": [], "similarity": [], "affine": []}
    for i in range(args.n):
        t, c = time.perf_counter(), time.process_time()
        d = dresser.dress(entry_rng(args.seed, i))
        totals.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        for k, v in d.info["timings_s"].items():
            steps.setdefault(k, []).append(v)
        for f in d.fits:
            dist[f.region].append((f.distance_before, f.distance_after))
            for c, x in zip(f.candidate_names, f.deformations):
                defs.setdefault(c, []).append(x)
            chosen[f.candidate_names[f.best]] += 1
        # the same garments warped with each MLS mode (segmentations are cached: warp only)
        for mode in modes:
            saved = dresser.settings
            dresser.settings = replace(saved, mls_mode=mode)
            for f in d.fits:
                g = dresser.fit(f.photo, dresser.segmentation(f.photo))
                modes[mode].append(g.distance_after)
            dresser.settings = saved

    print(f"\ntime per dressed body over {args.n}: mean {np.mean(totals):.3f} s, median {np.median(totals):.3f} s, "
          f"max {np.max(totals):.3f} s (first 3: {', '.join(f'{x:.2f}' for x in totals[:3])})")
    print(f"CPU time per dressed body (this process, all threads): mean {np.mean(cpu):.3f} s, "
          f"median {np.median(cpu):.3f} s (wall >> CPU means the machine was shared)")
    print("by step (mean wall s): " + ", ".join(f"{k} {np.mean(v):.3f}" for k, v in steps.items()))
    print("\ncontour distance body silhouette vs garment (px, view height "
          f"{dresser.views.frame.height}): mean before -> after (median)")
    for r, v in dist.items():
        a = np.array(v)
        print(f"  {r}: {a[:, 0].mean():.2f} -> {a[:, 1].mean():.2f}  ({np.median(a[:, 0]):.2f} -> "
              f"{np.median(a[:, 1]):.2f}); decreased for {int((a[:, 1] < a[:, 0]).sum())}/{len(a)}")
    print("  after, by MLS mode (mean over the same garments): "
          + ", ".join(f"{m} {np.mean(v):.2f}" for m, v in modes.items()))
    print("\ndeformation per candidate pose (mean, min over bodies; chosen count):")
    for c, v in defs.items():
        print(f"  {c:10s} {np.mean(v):.4f}  {np.min(v):.4f}  chosen {chosen[c]}")

    if not args.no_photo_scan:
        t = time.perf_counter()
        reasons = {"upper": Counter(), "lower": Counter()}
        counts = Counter()
        for region, photos in dresser.photos.items():
            for p in photos:
                seg = segment_garment(p, max_side=dresser.settings.photo_max_side)
                counts[region] += 1
                if not seg.ok:
                    reasons[region][re.sub(r"\s*\(.*", "", seg.reason)] += 1
        el = time.perf_counter() - t
        n_all = sum(counts.values())
        n_rej = sum(sum(c.values()) for c in reasons.values())
        print(f"\nphotos rejected: {n_rej}/{n_all} ({100 * n_rej / n_all:.1f}%), segmentation "
              f"{1000 * el / n_all:.0f} ms/photo")
        for region in reasons:
            r = reasons[region]
            print(f"  {region}: {sum(r.values())}/{counts[region]}"
                  + ("" if not r else " - " + ", ".join(f"{k}: {v}" for k, v in r.most_common())))


if __name__ == "__main__":
    main()
