"""Upper bounds on the counts a command takes, so that no input makes a stage grow memory or
disk without end (`synth sample-poses --n 10000000000` would otherwise allocate until the
machine dies). Each is far above what a use needs and comes with a one-line error naming the
key or flag; the figures are measured where they are set:

- MAX_POSES: a pose set is held in memory whole while it is sampled and written: 1.76 KB per
  pose on disk, and `synth sample-poses` (MoCap source) peaked at 0.47 GB RSS for 200,000 poses
  and 2.07 GB for 1,000,000, so the cap keeps a run near 4 GB. A render draws from the pose
  file with replacement: more samples than poses is normal.
- MAX_SHARDS, MAX_SAMPLES_PER_SHARD: shard names and sample keys have 6 and 5 digits (SPEC's
  shard-NNNNNN, sNNNNNN-NNNNN); beyond them names would no longer sort.
- MAX_LIBRARY_ENTRIES: a dressed-body texture is ~0.5 MB at 512 px: 100,000 of them are 50 GB.
- MAX_PRIOR_BATCH: prior samples drawn (and checked) at once.
"""
from __future__ import annotations

from synth.config import ConfigError

MAX_POSES = 2_000_000
MAX_SHARDS = 1_000_000
MAX_SAMPLES_PER_SHARD = 100_000
MAX_LIBRARY_ENTRIES = 100_000
MAX_PRIOR_BATCH = 1_000_000


def check_count(name: str, value, cap: int) -> None:
    """ConfigError (one line, naming the key or flag) when `value` is above `cap`."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > cap:
        raise ConfigError(f"{name} = {value} is above the limit of {cap} (see synth/limits.py)")


def check_render_counts(cfg: dict) -> None:
    check_count("config key 'dataset.shards'", cfg["dataset"]["shards"], MAX_SHARDS)
    check_count("config key 'dataset.samples_per_shard'", cfg["dataset"]["samples_per_shard"],
                MAX_SAMPLES_PER_SHARD)


def check_pose_counts(cfg: dict, n: int | None = None) -> None:
    check_count("config key 'poses.n'" if n is None else "--n", cfg["poses"]["n"] if n is None else n, MAX_POSES)
    check_count("config key 'poses.prior.batch'", cfg["poses"]["prior"]["batch"], MAX_PRIOR_BATCH)
