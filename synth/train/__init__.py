"""Training a 3D pose network on rendered shards: data loading, ResNets, metrics, trainer."""

from synth.train.trainer import evaluate, train

__all__ = ["evaluate", "train"]
