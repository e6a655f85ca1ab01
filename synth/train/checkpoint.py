"""Reading a training checkpoint and choosing the torch device: what training and evaluation share."""
from __future__ import annotations

from pathlib import Path

import torch

from synth.config import ConfigError
from synth.io_utils import InputError

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_SCHEMA = "synth-train/1"


def resolve_device(name: str, setting: str = "config key 'train.device'") -> torch.device:
    """"auto" (CUDA when present), "cpu" or "cuda"; `setting` names where the value came from in
    the error when CUDA is asked for but absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{setting} = 'cuda' but no CUDA device is available")
    return torch.device(name)


def load_checkpoint(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a damaged file
        raise InputError(f"{path}: not a readable checkpoint ({e.__class__.__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("schema") != CHECKPOINT_SCHEMA:
        raise InputError(f"{path}: not a {CHECKPOINT_SCHEMA} checkpoint")
    return ckpt
