"""Speed of IK (15 joints -> cmu_mb rotations) and of the pose validator on >= 100k poses, and
the validator's rejection rates on the real CMU MoCap pool (every subject of the mirror).

The 100k poses are the mirror's thinned MoCap pool (fps 30, 0.05 m) repeated, each copy turned
by a random yaw (validity does not depend on it; IK and the checks see fresh numbers).

    python benchmarks/bench_validity.py [DATA_DIR] [N]   # default: ../shared/data beside the repo, 100000
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout without install

from synth.poses.ik import poseset_from_joints
from synth.poses.kinematics import yaw_matrix
from synth.poses.sampling import load_pool
from synth.poses.validity import PoseValidator


def timed(fn, *args):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - t0, time.process_time() - c0


def main(argv: list[str]) -> None:
    data_dir = Path(argv[0]) if argv else Path(__file__).resolve().parents[2] / "shared" / "data"
    n = int(argv[1]) if len(argv) > 1 else 100_000
    pool = load_pool(data_dir, progress=False, cache_dir=Path.home() / ".cache" / "synth" / "poses")
    validator = PoseValidator.from_data_dir(data_dir)

    res = validator.check(pool.joints_3d)
    s = res.summary()
    print(f"CMU MoCap pool ({len(pool)} poses, subjects {', '.join(sorted(set(pool.subject)))}): "
          f"rejected {100 * s['rejected']:.2f}% (joint angles {100 * s['rejected_angle']:.2f}%, "
          f"bone lengths {100 * s['rejected_bones']:.2f}%, self-intersection {100 * s['rejected_collision']:.2f}%)")

    rng = np.random.default_rng(0)
    reps = -(-n // len(pool))
    J = np.concatenate([pool.joints_3d.astype(np.float64)] * reps)[:n]
    J = np.einsum("nij,nkj->nki", yaw_matrix(rng.uniform(-np.pi, np.pi, n)), J).astype(np.float32)
    ids = [f"bench/{i}" for i in range(n)]

    poseset_from_joints(J[:1000], "bench", ids[:1000], "bench")       # warm-up
    _, wall, cpu = timed(poseset_from_joints, J, "bench", ids, "bench")
    print(f"IK: {n} poses in {wall:.2f} s wall ({cpu:.2f} s CPU): {n / wall:,.0f} poses/s")

    validator.check(J[:1000])
    res, wall, cpu = timed(validator.check, J)
    print(f"validator: {n} poses in {wall:.2f} s wall ({cpu:.2f} s CPU): {n / wall:,.0f} poses/s "
          f"(rejected {100 * res.summary()['rejected']:.2f}%)")
    for name, fn in (("joint-angle limits", validator.limits.check), ("bone lengths", validator.bones_ok),
                     ("self-intersection", validator.collision_ok)):
        _, wall, _ = timed(fn, J.astype(np.float64))
        print(f"  {name}: {n / wall:,.0f} poses/s")


if __name__ == "__main__":
    main(sys.argv[1:])
