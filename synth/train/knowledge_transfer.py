"""Knowledge transfer from synthetic depth images and body-part masks to RGB photos without labels:
the networks, input encodings and losses (the training loop is synth.train.knowledge_transfer_trainer).

Depth images and part masks of rendered people are close to what a sensor or a segmenter would
give on real people, unlike rendered RGB. The method trains pose networks on those two modalities,
where the renders carry exact labels, and a generator G from a pose to a part mask; it then uses
G and the mask network to supervise an RGB network on real photos that have no labels.

Networks (all integral PoseNets of synth.train.models: a backbone, deconvolutions, J×D volumetric
heatmaps and soft-argmax to the 3D joints, and the head's own J 2D heatmaps soft-argmax'ed to the
2D joints, so each network gives both; `pose_and_uvz` reads them)
- N_d, the depth network: input one channel, `depth_input` (the camera z of each person pixel minus
  the median z of the person's pixels, in units of DEPTH_UNIT_M, clipped to ±DEPTH_CLIP; the
  background a constant DEPTH_BACKGROUND behind every body value). Needs no label: the root depth
  is not known on a real depth image, the person's median depth is.
- N_m, the mask network: input K = 15 channels, the one-hot part ids 0..14 (`mask_input`). One-hot
  rather than one channel of ids/14 because the ids are categories (id 7 is not "between" 6 and 8
  in any sense a convolution could use) and because in stage 2 the mask network reads G's output,
  a per-pixel distribution over the parts: the one-hot input is the same kind of thing, so G's
  soft mask enters as it is, differentiable, without an argmax.
- Both are the configured backbone (ImageNet-pretrained when `train.pretrained` says so) with its
  first convolution inflated to 1 or K input channels (`adapt_input_channels`): input channel c
  gets the sum of the RGB filters × a grey level g_c, so the network's first layer answers an
  input x as the RGB network answers the grey image Σ_c g_c x_c (`DEPTH_GREY`: the depth offsets
  themselves; `mask_grey_levels`: the background dark, each part its own brighter level). The
  pretrained filters so see, from the first step, depth relief or a body painted part by part in
  distinct greys (equal gains would make every one-hot mask the same flat image), and the
  channels' filters are free to part as training goes on.
- G, the segmentation module (`PartMaskGenerator`): a DCGAN generator (Radford et al. 2016: a 4×4
  transposed convolution from the 1×1 input, then 4×4/2 transposed convolutions with BatchNorm and
  ReLU, channels halving) from the J×3 vector (u_j, v_j, z_j) to K log-masks at the input size.
  u, v: a joint's 2D position from the head's 2D heatmaps, normalised crop coordinates on [-1, 1]
  (pixel p of an S-pixel crop is (2p + 1)/S - 1, synth.train.models); z: its depth from the
  volumetric heatmaps' depth marginal, on [-1, 1] of the heatmap cube. G outputs log M̂; the part
  distribution it stands for is softmax_k(log M̂) (`soft_mask`).

Stage 1, on the renders, all trained jointly with full supervision:

    L_1 = ω1·L3D(N_d) + ω2·L3D(N_m) + ω3·L_recon + ω4·L_adv                     (ω = 0.4, 0.4, 0.15, 0.05)

- L3D(N) = SL1(P, P*) + SL1(uv, uv*): smooth-L1 (β = SMOOTH_L1_BETA) on the normalised root-relative
  3D joints P and, over the joints inside the crop, on the 2D joints uv. (In Sun et al.'s integral
  regression the 3D output is (u, v, z) itself; here the 3D target is the camera-frame pose, so the
  2D heatmaps that feed G get their own term.)
- L_recon: the scale-invariant error (Eigen et al. 2014, eq. 4 with λ = 1) between G's mask and the
  rendered one, per sample over its n = K·H·W values,

      d_i = log M̂_i − log M_i,     L_recon = (1/n) Σ_i d_i² − (1/n²) (Σ_i d_i)²

  averaged over the batch. M is the rendered part mask, one-hot and smoothed to
  (1 − ε)·onehot + ε/K (ε = MASK_SMOOTHING) so its log is finite. Multiplying either mask by a
  constant α adds log α to every d_i and leaves L_recon unchanged, so G is free in the mask's
  overall level and learns only its shape; softmax_k removes the same constant when the mask is
  read. G is fed the 2D and depths that N_d and N_m predict (both, each against the true mask), so
  it learns from the kind of input it gets in stage 2, a network's prediction; gradients reach the
  two networks too.
- L_adv: a domain classifier D_1 (synth.train.adaptation.DomainClassifier on globally pooled
  backbone features) tells N_d's features from N_m's (cross-entropy); behind a gradient-reversal
  layer (Ganin & Lempitsky 2015) the two networks learn to make their features alike. Off
  (ω4 taken as 0, D_1 untouched) for the first `adv_warmup_steps` steps.

Stage 2, on real photos x without labels; G and N_m frozen (no gradient, BatchNorm in eval mode):

    P̂ = N_m(softmax_k G(u, v, z of N_rgb(x)))                                  (no gradient)
    L_2 = λ1·SL1(P_rgb(x), P̂) + λ2·L_adv2                                         (λ = 0.95, 0.05)

- N_rgb is a new RGB network with the same architecture (the configured backbone, pretrained when
  the configuration says so: the same start as the other recipes' networks). P̂ is the frozen
  pair's reading of N_rgb's own 2D pose and depths: a pose G and N_m know how to make from such a
  2D pose, which pulls the RGB 3D toward poses consistent with its 2D prediction. P̂ is a target
  (detached).
- L_adv2: a second classifier D_2 tells N_rgb's features on the photos from N_m's features on G's
  masks of the same photos; behind gradient reversal N_rgb's features move toward those of the
  mask network, whose features stage 1 made alike to the depth network's.
- Options (the partial and weak supervision variants): the rendered RGB crops with their labels,
  + w_syn·L3D(N_rgb) on a synthetic batch in the same step; and, where the photos have 2D labels,
  + w_2d·SL1(uv_rgb, uv*) over the labelled visible joints.

Note what stage 2 alone can and cannot do: L_2 depends on the photo only through N_rgb's own
prediction, so it does not by itself tie the pose to the image content. It asks N_rgb's 3D to agree
with its 2D through what G and N_m learnt from the renders; the content has to come from N_rgb's
2D, i.e. from its initialisation (a pretrained backbone) or the synthetic-RGB / real-2D options.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn import functional as F

from synth.train.models import PoseNet, normalised_from_crop_pixels

DEPTH_UNIT_M = 0.5          # depth offsets from the person's median depth, in these metres
DEPTH_CLIP = 2.0            # offsets beyond ±1 m (±2 units) are clipped: no body part lies farther
DEPTH_BACKGROUND = 3.0      # background value: behind every clipped body value
MASK_SMOOTHING = 0.01       # ε of the smoothed one-hot mask whose log L_recon compares
# Smooth-L1 turns linear beyond this: ~4 cm in the normalised 3D, 0.5 % of the crop side in 2D.
SMOOTH_L1_BETA = 0.01
BACKGROUND_ID = 0
# Grey levels (ImageNet-normalised units, as the RGB crops) the inflated first convolutions give
# their input channels: the depth offsets as they are; the mask's background dark, the K - 1 parts
# spread over MASK_PART_GREYS.
DEPTH_GREY = (1.0,)
MASK_BACKGROUND_GREY = -1.5
MASK_PART_GREYS = (0.0, 2.0)


# ----------------------------------------------------------------------------------------------
# Inputs

def depth_input(depth_m: torch.Tensor) -> torch.Tensor:
    """(B, 1, S, S) network input from (B, S, S) depth crops in metres (0 = background): person
    pixels' depth minus the median depth of the person's pixels, / DEPTH_UNIT_M, clipped to
    ±DEPTH_CLIP; background DEPTH_BACKGROUND. A crop without person pixels is all background."""
    person = depth_m > 0
    flat = torch.where(person, depth_m, torch.full_like(depth_m, float("nan"))).flatten(1)
    median = torch.nan_to_num(flat.nanmedian(dim=1).values, nan=0.0)
    rel = ((depth_m - median[:, None, None]) / DEPTH_UNIT_M).clamp(-DEPTH_CLIP, DEPTH_CLIP)
    return torch.where(person, rel, torch.full_like(rel, DEPTH_BACKGROUND)).unsqueeze(1)


def mask_input(parts: torch.Tensor, num_parts: int) -> torch.Tensor:
    """(B, K, S, S) one-hot float of (B, S, S) integer part ids."""
    return F.one_hot(parts.long(), num_parts).permute(0, 3, 1, 2).float()


def smoothed_log_mask(parts: torch.Tensor, num_parts: int, eps: float = MASK_SMOOTHING) -> torch.Tensor:
    """log((1 − ε)·onehot + ε/K), (B, K, S, S): the rendered mask L_recon compares with."""
    return torch.log(mask_input(parts, num_parts) * (1.0 - eps) + eps / num_parts)


def soft_mask(log_mask: torch.Tensor) -> torch.Tensor:
    """The per-pixel part distribution of G's log-mask (softmax over the K channels): the mask
    network's input in stage 2. Unchanged by a global scale of the mask (a constant log shift)."""
    return torch.softmax(log_mask.float(), dim=1)


def label_uvz(joints_2d_crop: torch.Tensor, target: torch.Tensor, size: int, half_extent: float) -> torch.Tensor:
    """G's input made from the labels: (u, v) of the 2D joints in normalised crop coordinates and z
    of the normalised 3D target on [-1, 1] of the heatmap cube; (B, J, 3)."""
    return torch.cat([normalised_from_crop_pixels(joints_2d_crop.float(), size),
                      target[..., 2:].float() / float(half_extent)], dim=-1)


# ----------------------------------------------------------------------------------------------
# Networks

def mask_grey_levels(num_parts: int) -> tuple[float, ...]:
    """The grey level of each mask channel: background MASK_BACKGROUND_GREY, parts 1..K-1 evenly
    over MASK_PART_GREYS."""
    lo, hi = MASK_PART_GREYS
    parts = torch.linspace(lo, hi, num_parts - 1).tolist() if num_parts > 2 else [hi]
    return (MASK_BACKGROUND_GREY, *parts)


def adapt_input_channels(module: nn.Module, greys: tuple[float, ...] | list[float]) -> nn.Conv2d:
    """Inflate the first 3-channel convolution of `module` (in registration order, which is the
    forward order of the backbones here) to len(greys) input channels: channel c gets the sum of
    its RGB filters × greys[c], so an input x gives the response the RGB filters give to the grey
    image Σ_c greys[c]·x_c (pretrained filters keep their spatial structure). The convolution is
    copied, not rebuilt, so its class (EfficientNet's "SAME" padding) stays. A backbone that turns
    its RGB input into its own scaling first (EfficientNet-Lite0's `input_scale` / `input_shift`,
    per RGB channel) gets the mean scale for every channel and shifts whose grey sum is the mean
    shift, so the same holds up to the small spread of those per-channel constants. Returns the
    new convolution."""
    greys = torch.as_tensor(list(greys), dtype=torch.float32)
    c = len(greys)
    for parent in module.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d) and child.in_channels == 3 and child.groups == 1:
                new = copy.deepcopy(child)
                with torch.no_grad():
                    summed = child.weight.sum(dim=1, keepdim=True)
                    weight = summed * greys.to(summed)[None, :, None, None]
                new.weight = nn.Parameter(weight.contiguous())
                new.in_channels = c
                setattr(parent, name, new)
                _adapt_input_scaling(module, greys)
                return new
    raise ValueError("no 3-channel convolution to adapt in the backbone")


def _adapt_input_scaling(module: nn.Module, greys: torch.Tensor) -> None:
    scale, shift = getattr(module, "input_scale", None), getattr(module, "input_shift", None)
    if not (torch.is_tensor(scale) and torch.is_tensor(shift) and scale.shape[1] == 3):
        return
    c = len(greys)
    g = greys.to(shift)
    mean_shift = shift.mean()
    new_shift = (mean_shift * g / g.pow(2).sum().clamp_min(1e-12)).view(1, c, 1, 1)
    module.register_buffer("input_scale", scale.mean().expand(1, c, 1, 1).clone(), persistent=False)
    module.register_buffer("input_shift", new_shift, persistent=False)


def pose_and_uvz(net: PoseNet, fmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(pose (B, J, 3): normalised root-relative joints, the head's 3D output; uvz (B, J, 3): u, v
    the head's own 2D joints (normalised crop coordinates on [-1, 1]) and z the depth coordinate
    of the 3D volume on [-1, 1]) of an integral PoseNet's feature map."""
    if net.head_kind != "integral":
        raise ValueError("knowledge transfer needs the integral head (train.head: integral)")
    out = net.heads(fmap)
    pose = out.joints_3d.float()
    return pose, torch.cat([out.joints_2d.float(), pose[..., 2:] / net.head.half_extent], dim=-1)


def predict_uvz(net: PoseNet, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`pose_and_uvz` of the network's input."""
    return pose_and_uvz(net, net.extract(x))


class PartMaskGenerator(nn.Module):
    """G: (B, J, 3) joint coordinates on [-1, 1] -> (B, K, S, S) log part masks.

    A DCGAN generator: the J·3 vector as a 1×1 map, a 4×4 transposed convolution to 4×4, then
    4×4/2 transposed convolutions (each followed by BatchNorm and ReLU) with channels halving down
    to `width`, and a last 4×4/2 transposed convolution to K channels (no activation: log-masks).
    ceil(log2(S/4)) doublings reach S or the next power-of-two multiple of 4 above it, resized to
    S bilinearly when they overshoot. Weights drawn as DCGAN's (normal, std 0.02)."""

    def __init__(self, num_joints: int, num_parts: int, size: int, width: int = 32, max_channels: int = 512):
        super().__init__()
        self.size, self.num_parts = int(size), int(num_parts)
        levels = max(math.ceil(math.log2(self.size / 4.0)), 1)
        chans = [min(width * 2 ** (levels - 1 - i), max_channels) for i in range(levels)]
        layers: list[nn.Module] = [nn.ConvTranspose2d(num_joints * 3, chans[0], 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(chans[0]), nn.ReLU(inplace=True)]
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out),
                       nn.ReLU(inplace=True)]
        layers.append(nn.ConvTranspose2d(chans[-1], num_parts, 4, 2, 1))
        self.net = nn.Sequential(*layers)
        self.out_size = 4 * 2 ** levels
        for m in self.modules():
            if isinstance(m, nn.ConvTranspose2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, uvz: torch.Tensor) -> torch.Tensor:
        out = self.net(uvz.reshape(len(uvz), -1, 1, 1).float())
        if self.out_size != self.size:
            out = F.interpolate(out, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return out


# ----------------------------------------------------------------------------------------------
# Losses and measures

def scale_invariant_error(log_pred: torch.Tensor, log_target: torch.Tensor) -> torch.Tensor:
    """Eigen et al.'s scale-invariant error with λ = 1, per sample over all its values:
    d = log_pred − log_target, (1/n)Σd² − (1/n²)(Σd)², averaged over the batch. Computed as the
    mean squared deviation of d from its mean, which is the same quantity without the cancellation
    of two large terms."""
    d = (log_pred.float() - log_target.float()).flatten(1)
    return (d - d.mean(dim=1, keepdim=True)).pow(2).mean(dim=1).mean()


def smooth_l1(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Smooth-L1 (β = SMOOTH_L1_BETA) summed over the last axis (coordinates), averaged over the
    joints whose `weight` (broadcast to pred.shape[:-1]) is nonzero."""
    err = F.smooth_l1_loss(pred.float(), target.float(), reduction="none", beta=SMOOTH_L1_BETA).sum(-1)
    if weight is None:
        return err.mean()
    w = weight.float().expand_as(err)
    return (err * w).sum() / w.sum().clamp_min(1.0)


def pose_loss(pose: torch.Tensor, uvz: torch.Tensor, target: torch.Tensor, target_uv: torch.Tensor,
              visible: torch.Tensor) -> torch.Tensor:
    """L3D of one network: smooth-L1 on the 3D joints + on the 2D joints inside the crop."""
    return smooth_l1(pose, target) + smooth_l1(uvz[..., :2], target_uv, visible)


def mask_iou(log_mask: torch.Tensor, parts: torch.Tensor, num_parts: int) -> dict[str, torch.Tensor]:
    """Counts for IoUs of the argmax of G's log-masks against the true ids: the person
    (foreground) intersection and union, and per part (K,) intersections and unions."""
    pred = log_mask.argmax(dim=1)
    fg_p, fg_t = pred != BACKGROUND_ID, parts != BACKGROUND_ID
    idx = torch.arange(num_parts, device=parts.device)
    p1 = pred.reshape(-1)[:, None] == idx
    t1 = parts.reshape(-1)[:, None] == idx
    return {"fg_inter": (fg_p & fg_t).sum(), "fg_union": (fg_p | fg_t).sum(),
            "part_inter": (p1 & t1).sum(0), "part_union": (p1 | t1).sum(0)}


def iou_summary(counts: dict[str, torch.Tensor]) -> dict[str, float]:
    """{"fg_iou": person IoU, "miou": mean IoU over the K classes (background included) that
    occur in the prediction or the truth, "part_miou": the same over the body parts only}."""
    fg = float(counts["fg_inter"]) / max(float(counts["fg_union"]), 1.0)

    def mean_iou(inter: torch.Tensor, union: torch.Tensor) -> float:
        seen = union > 0
        return float((inter[seen].double() / union[seen].double()).mean()) if bool(seen.any()) else float("nan")

    return {"fg_iou": fg, "miou": mean_iou(counts["part_inter"], counts["part_union"]),
            "part_miou": mean_iou(counts["part_inter"][1:], counts["part_union"][1:])}


def add_counts(total: dict | None, counts: dict) -> dict:
    return {k: v.detach().cpu() for k, v in counts.items()} if total is None else \
        {k: total[k] + v.detach().cpu() for k, v in counts.items()}
