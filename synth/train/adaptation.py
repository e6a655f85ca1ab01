"""Domain adaptation from rendered to real images, and skeletal pose adaptation.

The pieces the trainer (synth/train/trainer.py) wires together, one per `train.adaptation`
method; each is a plain function of tensors so the tests can check its wiring alone.

- Domain mixer (Chen et al. 2016, §3.4): a domain classifier (MLP on globally pooled backbone
  features, 2-way softmax). Stage 1 (extractor frozen): the regressor learns the pose and the
  classifier learns synthetic vs. real. Stage 2 (classifier frozen): the extractor (and the
  regressor) learn the pose plus a confusion loss, the cross-entropy between the classifier's
  output and (0.5, 0.5) for both domains. A warm-up of stage-1 steps, then K stage-1 steps per
  stage-2 step (`mixer_stage`).
- DANN (Ganin & Lempitsky 2015): the same classifier behind a gradient-reversal layer, trained
  jointly; the reversal weight follows λ(p) = 2 / (1 + exp(-γ p)) - 1 over training progress p.
- SAA (AHuP, Liu & Ostadabbas 2021): a discriminator of 1×1 convolutions over the feature map,
  one output channel per joint. Channel j's binary (synthetic / real) loss is read only at joint
  j's feature-map location (bilinear sampling at the 2D joint / feature stride), so the
  discriminator compares the *same body part* across domains.
- Jo2D: the predicted 3D pose of a real photo, projected orthographically and aligned to its 2D
  labels by the best scale and translation (synth.train.metrics.aligned_2d_residual), should
  land on the labels.
- SPA (AHuP): after training, a light residual head y + f(y) on the flattened pose, trained with
  ‖f(y)‖₁ + w·‖s(y + f(y)) − s_target‖₂, s = bone lengths / shoulder width.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn
from torch.nn import functional as F

from synth.io_utils import InputError
from synth.poses.posefile import load_poses
from synth.resources import resolve_data_path
from synth.train.data import BONES, bone_indices
from synth.train.metrics import aligned_2d_residual
from synth.train.models import normalised_from_crop_pixels

# knowledge_transfer has its own loop (synth.train.knowledge_transfer_trainer).
METHODS = ("none", "dann", "mixer", "saa", "knowledge_transfer")
SYNTHETIC, REAL = 0, 1


# ----------------------------------------------------------------------------------------------
# Model split: which parameters belong to the regressor (head) and which to the extractor.

def regressor_parameter_ids(model: nn.Module, input_size: int, device: torch.device) -> set[int]:
    """ids of the parameters `model.heads` uses (3D and 2D), found by autograd on a probe
    feature map, so the split does not depend on the model's attribute names."""
    was_training = model.training
    model.eval()
    with torch.enable_grad():
        with torch.no_grad():
            fmap = model.extract(torch.zeros(1, 3, input_size, input_size, device=device))
        out = model.heads(fmap.detach().requires_grad_(False))
        params = [p for p in model.parameters() if p.requires_grad]
        probe = out.joints_3d.float().sum() + out.joints_2d.float().sum()
        grads = torch.autograd.grad(probe, params, allow_unused=True)
    model.train(was_training)
    return {id(p) for p, g in zip(params, grads) if g is not None}


def split_parameters(model: nn.Module, input_size: int, device: torch.device
                     ) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(extractor parameters, regressor parameters) of a PoseNet."""
    head = regressor_parameter_ids(model, input_size, device)
    ext = [p for p in model.parameters() if id(p) not in head]
    reg = [p for p in model.parameters() if id(p) in head]
    return ext, reg


def extractor_batchnorms(model: nn.Module, extractor_params: list[nn.Parameter]) -> list[nn.Module]:
    """The extractor's BatchNorm layers: put in eval mode while the extractor is frozen, so that a
    frozen extractor also keeps its running statistics (and its features) fixed."""
    ids = {id(p) for p in extractor_params}
    return [m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.weight is not None and id(m.weight) in ids]


def set_requires_grad(params, flag: bool) -> None:
    for p in params:
        p.requires_grad_(flag)


# ----------------------------------------------------------------------------------------------
# Domain classifier (mixer, DANN) and gradient reversal

class DomainClassifier(nn.Module):
    """MLP on globally average-pooled features: C -> hidden -> 2 logits (synthetic, real)."""

    def __init__(self, channels: int, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, 2))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.net(pooled)


def pool(fmap: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) -> (B, C) global average."""
    return fmap.mean(dim=(2, 3))


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight):
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.weight * grad, None


def grad_reverse(x: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
    """Identity forward; the gradient is multiplied by -weight on the way back (Ganin & Lempitsky)."""
    return _GradReverse.apply(x, float(weight))


def dann_lambda(progress: float, gamma: float = 10.0) -> float:
    """Ganin & Lempitsky's schedule: 0 at the start, rising to ~1 by the end of training."""
    return 2.0 / (1.0 + math.exp(-gamma * min(max(progress, 0.0), 1.0))) - 1.0


def domain_ce(logits: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the classifier's logits against the true domain labels."""
    return F.cross_entropy(logits.float(), domain)


def confusion_ce(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy between the classifier's softmax and the uniform (0.5, 0.5): minimal when the
    classifier cannot tell the domains apart (Chen et al. 2016, eq. 3)."""
    return -(0.5 * F.log_softmax(logits.float(), dim=1)).sum(1).mean()


def mixer_stage(step: int, warmup_steps: int, classifier_steps: int) -> int:
    """1 (train regressor + classifier, extractor frozen) or 2 (train extractor + regressor,
    classifier frozen) for a global step: `warmup_steps` of stage 1, then cycles of
    `classifier_steps` stage-1 steps followed by one stage-2 step."""
    if step < warmup_steps:
        return 1
    return 2 if (step - warmup_steps) % (classifier_steps + 1) == classifier_steps else 1


# ----------------------------------------------------------------------------------------------
# SAA: per-joint discriminator read at the joints

class JointDiscriminator(nn.Module):
    """A stack of 1×1 convolutions over the feature map with one output channel (a synthetic-vs-
    real logit) per joint (AHuP's semantically aware discriminator)."""

    def __init__(self, channels: int, num_joints: int, hidden: int = 128, layers: int = 2):
        super().__init__()
        mods: list[nn.Module] = []
        c = channels
        for _ in range(max(layers - 1, 0)):
            mods += [nn.Conv2d(c, hidden, 1), nn.LeakyReLU(0.2, inplace=True)]
            c = hidden
        mods.append(nn.Conv2d(c, num_joints, 1))
        self.net = nn.Sequential(*mods)

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.net(fmap)


def sample_at_joints(logit_map: torch.Tensor, joints_2d_crop: torch.Tensor, input_size: int) -> torch.Tensor:
    """(B, J) value of channel j of `logit_map` (B, J, h, w) at joint j (pixels in the S×S input,
    pixel centres on whole numbers), bilinear. Feature cell i covers input pixels
    [i·stride, (i+1)·stride), so its centre is pixel (i + 0.5)·stride − 0.5; with
    align_corners=False grid_sample's normalised coordinate of a pixel position u is then
    (2u + 1) / S − 1 whatever the stride. Joints outside the map read the border value."""
    b, j, h, w = logit_map.shape
    grid = (2.0 * joints_2d_crop.float() + 1.0) / float(input_size) - 1.0       # (B, J, 2), x then y
    maps = logit_map.reshape(b * j, 1, h, w)
    out = F.grid_sample(maps.float(), grid.reshape(b * j, 1, 1, 2), mode="bilinear",
                        padding_mode="border", align_corners=False)
    return out.reshape(b, j)


def _masked_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return (values * weight).sum() / weight.sum().clamp_min(1.0)


def saa_discriminator_loss(joint_logits: torch.Tensor, domain: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """Binary CE per joint (target 1 = real) over the visible joints."""
    target = domain.float()[:, None].expand_as(joint_logits)
    bce = F.binary_cross_entropy_with_logits(joint_logits.float(), target, reduction="none")
    return _masked_mean(bce, visible.float())


def saa_confusion_loss(joint_logits: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """Binary CE toward 0.5 per visible joint: the extractor's side of SAA."""
    bce = F.binary_cross_entropy_with_logits(joint_logits.float(), torch.full_like(joint_logits.float(), 0.5),
                                             reduction="none")
    return _masked_mean(bce, visible.float())


# ----------------------------------------------------------------------------------------------
# Jo2D

def jo2d_loss(pred_3d: torch.Tensor, joints_2d: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """Mean distance, in units of each photo's torso size (right shoulder to left hip, as PCK@0.2),
    between the visible 2D labels and the predicted pose's orthographic projection after the best
    scale + translation alignment (synth.train.metrics.aligned_2d_residual)."""
    res = aligned_2d_residual(pred_3d.float(), joints_2d.float(), visible.float(), torso_normalised=True)
    dist = torch.sqrt((res ** 2).sum(-1) + 1e-12)
    return _masked_mean(dist, visible.float())


def head_2d_loss(pred_2d: torch.Tensor, joints_2d_crop: torch.Tensor, visible: torch.Tensor,
                 input_size: int) -> torch.Tensor:
    """Masked L1 between the 2D head's normalised crop coordinates (B, J, 2) and the labels in
    crop pixels (B, J, 2), over the joints where `visible` (B, J) is nonzero."""
    gt = normalised_from_crop_pixels(joints_2d_crop.float(), input_size)
    err = (pred_2d.float() - gt).abs().mean(-1)
    return _masked_mean(err, visible.float())


# ----------------------------------------------------------------------------------------------
# SPA

SHOULDERS = ("right_shoulder", "left_shoulder")


def limb_descriptor(pose: torch.Tensor, joint_names: list[str]) -> torch.Tensor:
    """s(y): the 14 bone lengths (synth.train.data.BONES order) / shoulder width; pose (B, J, 3)."""
    bones = torch.as_tensor(bone_indices(joint_names), device=pose.device)
    lengths = (pose[:, bones[:, 1]] - pose[:, bones[:, 0]]).norm(dim=-1)
    a, b = (joint_names.index(n) for n in SHOULDERS)
    width = (pose[:, a] - pose[:, b]).norm(dim=-1, keepdim=True).clamp_min(1e-6)
    return lengths / width


class SpaHead(nn.Module):
    """y + f(y): f is an MLP on the flattened pose whose last layer starts at zero (the identity)."""

    def __init__(self, num_joints: int, hidden: int = 128):
        super().__init__()
        self.num_joints = num_joints
        self.f = nn.Sequential(nn.Linear(num_joints * 3, hidden), nn.ReLU(inplace=True),
                               nn.Linear(hidden, num_joints * 3))
        nn.init.zeros_(self.f[-1].weight)
        nn.init.zeros_(self.f[-1].bias)

    def residual(self, pose: torch.Tensor) -> torch.Tensor:
        return self.f(pose.flatten(1)).view(-1, self.num_joints, 3)

    def forward(self, pose: torch.Tensor) -> torch.Tensor:
        return pose + self.residual(pose)


def spa_loss(head: SpaHead, pose: torch.Tensor, target: torch.Tensor, joint_names: list[str],
             weight: float) -> tuple[torch.Tensor, dict]:
    """‖f(y)‖₁ per joint (averaged over joints and the batch) + weight · ‖s(y + f(y)) − s_target‖₂."""
    res = head.residual(pose)
    s = limb_descriptor(pose + res, joint_names)
    reg = res.abs().sum((1, 2)).mean() / pose.shape[1]
    desc = (s - target[None]).norm(dim=1).mean()
    return reg + weight * desc, {"spa_residual": reg.item(), "spa_descriptor": desc.item()}


# Keys of train/tailor_measurements.yaml: the length (metres) between the joint centres of each bone.
TAILOR_KEYS = {
    ("pelvis", "neck"): "torso", ("neck", "head_top"): "neck_to_head_top",
    ("neck", "right_shoulder"): "half_shoulder_width", ("neck", "left_shoulder"): "half_shoulder_width",
    ("right_shoulder", "right_elbow"): "upper_arm", ("left_shoulder", "left_elbow"): "upper_arm",
    ("right_elbow", "right_wrist"): "forearm", ("left_elbow", "left_wrist"): "forearm",
    ("pelvis", "right_hip"): "half_hip_width", ("pelvis", "left_hip"): "half_hip_width",
    ("right_hip", "right_knee"): "thigh", ("left_hip", "left_knee"): "thigh",
    ("right_knee", "right_ankle"): "shank", ("left_knee", "left_ankle"): "shank",
}


def spa_target_from_measurements(path: Path) -> np.ndarray:
    """s_target (14,) from a YAML of segment lengths (metres, between joint centres; keys
    TAILOR_KEYS plus shoulder_width)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise InputError(f"{path}: not a readable YAML file ({e.__class__.__name__})") from None
    seg = (data or {}).get("segments_m") if isinstance(data, dict) else None
    need = sorted(set(TAILOR_KEYS.values()) | {"shoulder_width"})
    if not isinstance(seg, dict) or any(not isinstance(seg.get(k), (int, float)) or seg[k] <= 0 for k in need):
        raise InputError(f"{path}: 'segments_m' must give positive lengths for {need}")
    return np.array([seg[TAILOR_KEYS[b]] for b in BONES], dtype=np.float64) / float(seg["shoulder_width"])


def spa_target_from_pose_file(path: Path, joint_names: list[str]) -> np.ndarray:
    """s_target (14,): the mean descriptor of the poses of a pose file (synth.poses.posefile)."""
    poses = load_poses(Path(path))
    joints = np.asarray(poses.joints_3d, dtype=np.float64)
    names = [str(n) for n in poses.joint_names]
    joints = joints[:, [names.index(n) for n in joint_names]]
    return limb_descriptor(torch.from_numpy(joints), joint_names).mean(0).numpy()


def spa_target(spec: str, joint_names: list[str]) -> np.ndarray:
    """s_target from `train.adaptation.spa.target`: a .yaml of tailor measurements or a pose file
    (.npz); a path, or the name of a file bundled in synth/data (tailor_measurements.yaml)."""
    p = resolve_data_path(spec, "train.adaptation.spa.target")
    if p.suffix.lower() in (".yaml", ".yml"):
        return spa_target_from_measurements(p)
    return spa_target_from_pose_file(p, joint_names)


def spa_head_from_state(state: dict) -> SpaHead:
    """The SPA head stored by the trainer (checkpoint key "spa")."""
    head = SpaHead(int(state["num_joints"]), int(state["hidden"]))
    head.load_state_dict(state["state"])
    return head.eval()


def spa_head_from_checkpoint(ckpt: dict) -> SpaHead | None:
    """The checkpoint's SPA head, to apply to the network's output at evaluation (None without SPA)."""
    state = ckpt.get("spa")
    return spa_head_from_state(state) if state else None
