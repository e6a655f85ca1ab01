"""ResNet backbones (He et al. 2016) and a direct 3D pose regression head.

Written here rather than taken from torchvision so the package needs only torch; shapes follow
the standard resnet18/34/50 with a configurable base width (64 = the standard network).
"""
from __future__ import annotations

import torch
from torch import nn

# Blocks per stage for each depth, and the block type.
RESNET_LAYOUTS = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
}


def conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


def conv1x1(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv3x3(c_in, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or c_in != planes:
            self.downsample = nn.Sequential(conv1x1(c_in, planes, stride), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3 (strided, as in ResNet v1.5), 1×1 expand by 4."""
    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int = 1):
        super().__init__()
        c_out = planes * self.expansion
        self.conv1 = conv1x1(c_in, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, c_out)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(conv1x1(c_in, c_out, stride), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)

    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3


class ResNet(nn.Module):
    """Stem (7×7/2 conv, 3×3/2 max-pool), four stages at widths w, 2w, 4w, 8w (×4 for
    bottlenecks), strides 1, 2, 2, 2: features at 1/32 of the input size."""

    def __init__(self, block: str, layers: tuple[int, ...], width: int = 64):
        super().__init__()
        block_cls = {"basic": BasicBlock, "bottleneck": Bottleneck}[block]
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1))
        stages, c_in = [], width
        for i, n in enumerate(layers):
            planes = width * 2 ** i
            blocks = []
            for j in range(n):
                blocks.append(block_cls(c_in, planes, stride=2 if (i > 0 and j == 0) else 1))
                c_in = planes * block_cls.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.out_channels = c_in
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # Zero the last BN of each residual branch so every block starts as the identity
        # (Goyal et al. 2017): trains better from scratch, which is how these nets are trained.
        for m in self.modules():
            if isinstance(m, (BasicBlock, Bottleneck)):
                nn.init.zeros_(m.last_bn().weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))


class PoseRegressor(nn.Module):
    """Backbone, global average pool, one linear layer to J×3 normalised root-relative joints."""

    def __init__(self, backbone: str = "resnet18", width: int = 64, num_joints: int = 15):
        super().__init__()
        if backbone not in RESNET_LAYOUTS:
            raise ValueError(f"unknown backbone {backbone!r} (available: {sorted(RESNET_LAYOUTS)})")
        block, layers = RESNET_LAYOUTS[backbone]
        self.num_joints = num_joints
        self.backbone = ResNet(block, layers, width)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(self.backbone.out_channels, num_joints * 3)
        # Start near the mean pose (zero) so early losses are the targets' own scale.
        nn.init.normal_(self.head.weight, std=1e-3)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.pool(self.backbone(x)).flatten(1)
        return self.head(f).view(-1, self.num_joints, 3)


def build_model(train_cfg: dict, num_joints: int = 15) -> PoseRegressor:
    """The model a `train:` config section describes."""
    return PoseRegressor(train_cfg["backbone"], int(train_cfg["width"]), num_joints)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
