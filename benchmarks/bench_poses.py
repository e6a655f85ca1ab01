"""Speed of the pose stage on every clip of the CMU mirror: AMC parsing (frames/s), forward
kinematics of every 120 Hz frame (frames/s), and building the thinned pool (fps 30, 0.05 m).

    python benchmarks/bench_poses.py [DATA_DIR]      # default: ../shared/data beside the repo
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout without install

from synth.poses.asf_amc import asf_path_for_clip, parse_amc, parse_asf
from synth.poses.kinematics import motion_to_pose_arrays
from synth.poses.sampling import find_clips, load_clips, load_pool, thin


def main(argv: list[str]) -> None:
    data_dir = Path(argv[0]) if argv else Path(__file__).resolve().parents[2] / "shared" / "data"
    clips = find_clips(data_dir)
    skeletons = {}
    parse_s = fk_s = parse_cpu = fk_cpu = 0.0
    frames = 0
    for amc in clips:
        subject = amc.parent.name
        if subject not in skeletons:
            skeletons[subject] = parse_asf(asf_path_for_clip(data_dir, amc.stem))
        t0, c0 = time.perf_counter(), time.process_time()
        motion = parse_amc(amc, skeletons[subject])
        t1, c1 = time.perf_counter(), time.process_time()
        motion_to_pose_arrays(skeletons[subject], motion)
        t2, c2 = time.perf_counter(), time.process_time()
        parse_s += t1 - t0
        fk_s += t2 - t1
        parse_cpu += c1 - c0
        fk_cpu += c2 - c1
        frames += len(motion)
    mib = sum(p.stat().st_size for p in clips) / 2**20
    print(f"clips: {len(clips)}, frames (120 Hz): {frames}, AMC text: {mib:.1f} MiB")
    # CPU time beside wall time: on a shared machine the wall clock also counts other processes.
    print(f"AMC parse: {parse_s:.2f} s wall = {frames / parse_s:,.0f} frames/s ({mib / parse_s:.1f} MiB/s); "
          f"{parse_cpu:.2f} s CPU = {frames / parse_cpu:,.0f} frames/s")
    print(f"FK + pose arrays (all 120 Hz frames): {fk_s:.2f} s wall = {frames / fk_s:,.0f} frames/s; "
          f"{fk_cpu:.2f} s CPU = {frames / fk_cpu:,.0f} frames/s")

    t0 = time.perf_counter()
    poses = load_clips(data_dir, fps=30, progress=False)
    t1 = time.perf_counter()
    pool = thin(poses, 0.05)
    t2 = time.perf_counter()
    pool_all = thin(poses, 0.05, window_s=None)
    print(f"load_clips fps=30: {len(poses)} poses in {t1 - t0:.2f} s")
    print(f"thin 0.05 m, 1 s window: {len(pool)} poses in {t2 - t1:.2f} s "
          f"(whole-clip window: {len(pool_all)})")
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        load_pool(data_dir, fps=30, min_distance=0.05, progress=False, cache_dir=cache)
        t1 = time.perf_counter()
        load_pool(data_dir, fps=30, min_distance=0.05, progress=False, cache_dir=cache)
        t2 = time.perf_counter()
    print(f"load_pool: cold {t1 - t0:.2f} s, cached {t2 - t1:.3f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
