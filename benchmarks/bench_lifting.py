"""Benchmark of the LSP 2D -> 3D lifter (Wang et al. 2019): training time of both networks from
scratch, lifting throughput (networks alone, and with the 1 mm geometric search) on the 1000 LSP
poses, and the held-out-subject error table (MPJPE / PA-MPJPE, mm).

    nice -n 10 .venv/bin/python benchmarks/bench_lifting.py [--data ../shared/data] [key=value ...]

key=value pairs override `poses.lifting` (e.g. epochs=4). Prints measured figures; writes nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from synth.config import PosesConfig, load_config
from synth.poses import lifting as L
from synth.poses.lsp import load_lsp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("SYNTH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")))
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("SYNTH_CACHE", Path.home() / ".cache" / "synth")),
                    help="where the MoCap pool cache lives (read or built; the networks are not cached here)")
    ap.add_argument("overrides", nargs="*", help="poses.lifting key=value")
    args = ap.parse_args()
    p = load_config(None, [f"poses.lifting.{o}" for o in args.overrides]).poses.lifting
    torch.set_num_threads(p.threads)
    pool = L.PoolParams.of(PosesConfig())

    train, test, present = L.load_training_poses(args.data, args.cache, pool, p)
    print(f"MoCap pool: {len(train)} training poses, {len(test)} held-out poses (subjects {', '.join(present)})")
    t0 = time.perf_counter()
    lifter, stats = L.train_lifter(train, p)
    train_s = time.perf_counter() - t0
    print(f"training: {stats['training_samples']} samples ({p.cameras_per_pose} cameras per pose"
          f"{', mirrored' if p.mirror else ''}), {p.epochs} epochs, hidden {p.hidden}, "
          f"{p.threads} thread(s): {train_s:.1f} s in all "
          f"(view synthesis {stats['view_synthesis_train_s']:.1f} s, reconstruction {stats['reconstruction_train_s']:.1f} s)")

    ev = L.evaluate_lifter(lifter, test, p, stats)
    print(f"\nheld-out subjects {', '.join(present)}: {ev['samples']} samples ({ev['poses']} poses x "
          f"{p.eval_cameras_per_pose} cameras); root-relative, true skeleton size not given")
    print(f"{'input':<12} {'method':<18} {'MPJPE mm':>9} {'PA-MPJPE mm':>12}")
    b = ev["baseline_mean_pose"]
    print(f"{'-':<12} {'mean pose':<18} {b['mpjpe_mm']:>9.1f} {b['pa_mpjpe_mm']:>12.1f}")
    for label in [k for k in ev if k.startswith(("clean", "noise"))]:
        for method in ("network", "geometric_search"):
            m = ev[label][method]
            print(f"{label:<12} {method:<18} {m['mpjpe_mm']:>9.1f} {m['pa_mpjpe_mm']:>12.1f}")
        r = ev[label]
        print(f"{label:<12} view synthesis {r['view_synthesis_px']:.2f} px (baseline view 1 + mean disparity "
              f"{r['view_synthesis_baseline_px']:.2f} px); root depth error {r['root_depth_error_mm']:.0f} mm; "
              f"max re-projection error {r['max_reprojection_error_px']:.1e} px")

    lsp = load_lsp(args.data / "lsp")
    K = L.lsp_intrinsics(lsp.images, p.lsp_focal_px)
    t0 = time.perf_counter()
    lifter.lift(lsp.joints_2d, K, search=False)
    t1 = time.perf_counter()
    out = lifter.lift(lsp.joints_2d, K, search=True)
    t2 = time.perf_counter()
    steps = int(round((p.search_range_m[1] - p.search_range_m[0]) / p.search_step_m)) + 1
    print(f"\nLSP ({len(lsp)} poses): networks {len(lsp) / (t1 - t0):.0f} poses/s; with the geometric search "
          f"({steps} depth candidates each) {len(lsp) / (t2 - t1):.0f} poses/s")
    print(f"LSP root depth (assumed f = {p.lsp_focal_px:g} px): median {np.median(out.root_depth):.2f} m, "
          f"5-95% {np.percentile(out.root_depth, 5):.2f}-{np.percentile(out.root_depth, 95):.2f} m")
    plausible, validity = L._plausibility(args.data, L.camera_to_world(out.searched))
    print(f"LSP lifted poses plausible (PoseValidator on the rest-proportioned pose the body takes): "
          f"{plausible.mean():.1%}\n  {json.dumps(validity)}")


if __name__ == "__main__":
    main()
