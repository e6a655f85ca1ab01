"""Every random stream of the package, derived from (seed, stage tag, indices...).

`stream(seed, Stream.RENDER_SAMPLE, shard, index, attempt)` is
`np.random.default_rng(SeedSequence(seed, spawn_key=(tag, shard, index, attempt)))`. The tag,
distinct per stream, keeps the stages apart: a plain `default_rng([seed, a, b])` would not (numpy
pads a short entropy list with zeros, so `[0, 4, 3]` and `[0, 4, 3, 0]` are one stream, and the
texture library's `[seed, 4, i]` was render shard 4 / sample i). Words of a spawn key are mixed in
one by one, trailing zeros included, so (tag, i) and (tag, i, 0) differ as well
(tests/test_layout.py checks that no two streams meet).

`torch_seed(...)` is the same stream's first draw as an integer for `torch.manual_seed` /
`torch.Generator().manual_seed`.
"""
from __future__ import annotations

from enum import IntEnum

import numpy as np


class Stream(IntEnum):
    """One tag per random stream; never reuse or renumber a tag (datasets and caches depend on it)."""
    RENDER_SAMPLE = 1          # (shard, sample, attempt): everything one rendered sample draws
    TEXTURE_LIBRARY = 2        # (entry,): one dressed-body texture of `synth dress`
    POSE_SAMPLING = 3          # (): `synth sample-poses` draws from the sources
    PRIOR_FIT = 4              # (): k-means codes of the pose prior's fit
    LIFTER_TRAIN = 5           # (network,): training pairs, initial weights, batch order and dropout
    LIFTER_EVAL = 6            # (): the lifter's held-out cameras and noise
    POSE_GALLERY = 7           # (page part,): samples shown on the pose-space page
    TRAIN_INIT = 8             # (): the pose network's initial weights
    TRAIN_ORDER = 9            # (epoch,): the synthetic training order
    TRAIN_REAL_ORDER = 10      # (epoch, pass): the real photos' order
    TRAIN_AUGMENT = 11         # (domain, epoch, item): one crop's augmentation (domain 0 synthetic, 1 real)
    SPA_FIT = 12               # (part,): the skeletal pose adaptation head's weights and batches
    REAL_SPLIT = 13            # (): a photo folder's train/held-out split
    TRAIN_APPEARANCE = 14      # (epoch, item): one rendered sample's appearance augmentation
    KT_INIT = 15               # (module,): initial weights of a knowledge-transfer teacher module
    KT_STAGE1_ORDER = 16       # (epoch,): the knowledge-transfer stage-1 order of the renders
    KT_STAGE1_AUGMENT = 17     # (domain, epoch, item): one stage-1 crop's augmentation (its depth and part maps follow)
    MESH_DRESSING = 18         # (shard, sample, attempt): what one sample wears with render.clothing.mode=mesh
    HM08_RIG_CHECK = 19        # (): the phenotypes the hm08 helper rig is checked on when it is built
    FRAMING = 20               # (shard, sample, attempt): a sample's photo-like framing (size, offset, truncation)
    OCCLUDER = 21              # (shard, sample, attempt): whether and what occludes a sample's person, and where
    STATS_GALLERY = 22         # (): the samples shown on a dataset's statistics page
    GROUND_EXPOSURE = 23       # (shard, sample, attempt): one sample's ground plane and exposure draws


_WORD = 2 ** 32


def _key(stage: Stream, indices: tuple[int, ...]) -> tuple[int, ...]:
    words = (int(stage), *(int(i) for i in indices))
    for w in words:
        if not 0 <= w < _WORD:
            # a larger number would become several words and could meet another key
            raise ValueError(f"rng stream index {w} is outside [0, 2**32)")
    return words


def stream(seed: int, stage: Stream, *indices: int) -> np.random.Generator:
    """The generator of one stream: (seed, stage tag, indices...) and nothing else."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=_key(stage, indices)))


def torch_seed(seed: int, stage: Stream, *indices: int) -> int:
    """An integer seed for torch (63 bits) from the same stream."""
    return int(stream(seed, stage, *indices).integers(0, 2 ** 63 - 1))
