"""Upper bounds on the counts a command takes, so that no input makes a stage grow memory or
disk without end (`synth sample-poses --n 10000000000` would otherwise allocate until the
machine dies). Each is far above what a use needs; why each is where it is (with the measured
figures) is written once, in README.md, "Limits".

The caps on configuration keys (poses.n, poses.prior.batch, dataset.shards,
dataset.samples_per_shard) are upper bounds of their typed fields in synth.config, so a value
above one is refused with the other configuration errors, naming the key. The caps on command
flags and arguments (`synth dress --n`, `synth pose-gallery --coverage-n`, the `n` given to
`sample_pose_set`) are checked where they are read, with `check_count`.
"""
from __future__ import annotations

from synth.io_utils import InputError

MAX_POSES = 2_000_000              # poses.n, and any pose count drawn at once
MAX_PRIOR_BATCH = 1_000_000        # poses.prior.batch
MAX_SHARDS = 1_000_000             # dataset.shards (shard-NNNNNN: 6 digits)
MAX_SAMPLES_PER_SHARD = 100_000    # dataset.samples_per_shard (sNNNNNN-NNNNN: 5 digits)
MAX_LIBRARY_ENTRIES = 100_000      # synth dress --n

LIMITS_DOC = "README.md, Limits"


def check_count(name: str, value, cap: int) -> None:
    """InputError (one line, naming the flag or argument) when `value` is above `cap`."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > cap:
        raise InputError(f"{name} = {value} is above the limit of {cap} (see {LIMITS_DOC})")
