"""Training a 3D pose network on rendered shards: data loading (synthetic and real photos),
augmentation, backbones and heads, metrics, trainer and evaluation."""

from synth.train import knowledge_transfer_trainer  # noqa: F401  (registers its loop with the trainer)
from synth.train.evaluate import evaluate, format_table
from synth.train.trainer import train, train_from_config

__all__ = ["evaluate", "format_table", "train", "train_from_config"]
