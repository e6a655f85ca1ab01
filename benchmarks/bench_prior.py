"""Speed and coverage of the pose prior (synth.poses.prior), with measured figures printed.

1. Fit on >= 100k poses: every frame of every CMU clip of the mirror at its full 120 Hz, no
   thinning (the mirror holds 115,248 frames: near-duplicates included, which is the point of this
   figure: learning the network from that many poses).
2. Sampling: raw samples/s, and VALID poses/s (prior samples -> PoseValidator, rejected ones
   dropped), one thread.
3. Coverage of held-out subjects (poses.prior.coverage_holdout_subjects, left out of the fit): mean
   distance (mm) to the nearest of N prior samples vs N poses drawn from the fitted sources.
   With --no-lsp the prior is fitted on MoCap only (no lifter needed).

    python benchmarks/bench_prior.py [DATA_DIR] [--no-lsp] [--coverage-n 1000,10000,100000]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout without install

import numpy as np  # noqa: E402


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--no-lsp", action="store_true", help="fit the coverage prior on MoCap only")
    ap.add_argument("--coverage-n", default="1000,10000,100000")
    ap.add_argument("--cache-dir", help="caches (default: a temporary folder for the fit, the config's for coverage)")
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(1)

    from synth.config import load_config
    from synth.poses.prior import PosePrior, novelty
    from synth.poses.sampling import load_clips
    from synth.poses.sources import sample_valid
    from synth.poses.validity import PoseValidator

    data_dir = Path(args.data_dir)
    cfg = load_config(None, [f"data_dir={data_dir}"] + ([f"cache_dir={args.cache_dir}"] if args.cache_dir else [])
                      + (["poses.prior.fit_mix.lsp=0"] if args.no_lsp else []))

    t0 = time.perf_counter()
    poses = load_clips(data_dir, fps=120, progress=False)
    load_s = time.perf_counter() - t0
    import os
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start "
          "(wall figures suffer when the cores are shared)")
    print(f"MoCap: {len(poses)} poses (all frames at 120 Hz, unthinned) from {len(set(poses.clip_of()))} clips, "
          f"loaded in {load_s:.1f} s")

    t0, c0 = time.perf_counter(), time.process_time()
    prior = PosePrior(cfg.poses.prior).fit(poses.joints_3d, np.random.default_rng(0))
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"fit: {len(poses)} poses in {fit_s:.1f} s wall ({fit_cpu:.1f} s CPU); tree: "
          + ", ".join(f"{a}->{b}" for a, b, _ in prior.edges()))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        prior.save(Path(tmp) / "prior.npz")
        PosePrior.load(Path(tmp) / "prior.npz")
        print(f"save + load: {time.perf_counter() - t0:.2f} s")

    rng = np.random.default_rng(1)
    prior.sample(1000, rng)
    n = 100_000
    t0, c0 = time.perf_counter(), time.process_time()
    raw = prior.sample(n, rng)
    raw_s, raw_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"sampling: {n} poses in {raw_s:.2f} s = {n / raw_s:,.0f} samples/s wall "
          f"({n / raw_cpu:,.0f} per CPU second)")
    validator = PoseValidator.from_data_dir(data_dir)
    t0, c0 = time.perf_counter(), time.process_time()
    res = validator.check(raw)
    check_s, check_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"validity check: {n / check_s:,.0f} poses/s wall ({n / check_cpu:,.0f} per CPU second); "
          f"rejection rate {1 - res.valid.mean():.1%} "
          f"({', '.join(f'{k} {v:.1%}' for k, v in res.summary().items() if k.startswith('rejected_'))})")
    t0, c0 = time.perf_counter(), time.process_time()
    valid, draw = sample_valid(prior, validator, n, rng, batch=cfg.poses.prior.batch)
    valid_s, valid_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"valid sampling: {len(valid)} valid poses in {valid_s:.2f} s = {len(valid) / valid_s:,.0f} valid poses/s "
          f"wall ({len(valid) / valid_cpu:,.0f} per CPU second; drew {draw['drawn']})")
    share, dist = novelty(raw[:2000], poses.joints_3d, 0.1)
    print(f"novelty: {share:.1%} of 2000 samples are > 100 mm (mean joint distance) from every one of the "
          f"{len(poses)} training poses; median nearest {np.median(dist) * 1000:.0f} mm")

    from synth.gallery.pose_space import coverage
    ns = tuple(int(x) for x in args.coverage_n.split(","))
    t0 = time.perf_counter()
    cov = coverage(cfg, ns=ns)
    if "rows" not in cov:
        print(f"coverage: skipped ({cov['skipped']})")
        return
    print(f"coverage of held-out subjects {cov['holdout_subjects']} ({cov['queries']} poses; prior fitted on "
          f"{cov['training_poses']}), {time.perf_counter() - t0:.0f} s:")
    print(f"{'N':>8} {'prior samples (mm)':>20} {'source poses (mm)':>19} {'distinct sources':>17}")
    for r in cov["rows"]:
        print(f"{r['N']:>8} {r['prior_mm']:>20.1f} {r['sources_mm']:>19.1f} {r['distinct_source_poses']:>17}")


if __name__ == "__main__":
    main(sys.argv[1:])
