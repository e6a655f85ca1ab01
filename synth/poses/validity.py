"""Pose validity: is a 15-joint 3D pose one a human body can take? Vectorised over poses.

Three criteria, each a (N,) bool, all must hold:

(a) angle_ok: Akhter & Black's pose-conditioned joint-angle limits (synth.poses.joint_limits).
(b) bones_ok: bone lengths consistent with a body. Any source's root-relative pose is rescaled
    by the body that renders it, so only proportions matter: each left/right bone pair agrees
    within `symmetry_tolerance` (|l - r| / mean), and each of the 14 bones' share of the summed
    bone length lies within the range spanned by real CMU MoCap (`MOCAP_SHARE_RANGES`, measured
    on every subject of the mirror) widened by `share_margin` (relative). This rejects broken
    lifted or sampled skeletons (a shin half as long as the other, a 40 cm neck).
(c) collision_ok: no gross self-intersection. Limb segments are capsules around the bone with
    radii a little smaller than the limb (`radii`, metres, for a skeleton rescaled to
    `REFERENCE_SKELETON_LENGTH`, the canonical CMU skeleton's summed bone length); two
    non-adjacent capsules whose segments come closer than the sum of their radii intersect. The
    pairs (`COLLISION_PAIRS`): forearms, upper arms and shins against the torso (pelvis-neck),
    arms against each other, forearms against legs, legs against each other. Thighs against the
    torso are left out (a knee pulled to the chest touches it legitimately), as is the head.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synth.config import ValidityConfig
from synth.poses.joint_limits import JointAngleLimits
from synth.scene import BONES, JOINTS

LIMITS_FOLDER = "akhter_black_joint_limits"

_BI = {b: i for i, b in enumerate(BONES)}
SYMMETRIC_PAIRS = [
    (_BI[("neck", "right_shoulder")], _BI[("neck", "left_shoulder")]),
    (_BI[("right_shoulder", "right_elbow")], _BI[("left_shoulder", "left_elbow")]),
    (_BI[("right_elbow", "right_wrist")], _BI[("left_elbow", "left_wrist")]),
    (_BI[("pelvis", "right_hip")], _BI[("pelvis", "left_hip")]),
    (_BI[("right_hip", "right_knee")], _BI[("left_hip", "left_knee")]),
    (_BI[("right_knee", "right_ankle")], _BI[("left_knee", "left_ankle")]),
]
# Each bone's share of the summed bone length, min and max over the CMU MoCap poses of the
# mirror (subjects 01, 06, 13, 14, 16, 49; 5138 thinned poses), in BONES order. The spine and
# neck shares vary within a subject because those "bones" span bending chains.
MOCAP_SHARE_RANGES = np.array([
    [0.0797, 0.0914], [0.0662, 0.0789], [0.0445, 0.0500], [0.0749, 0.0831], [0.0440, 0.0534],
    [0.0456, 0.0517], [0.0712, 0.0790], [0.0467, 0.0533], [0.0339, 0.0359], [0.0979, 0.1085],
    [0.1046, 0.1184], [0.0344, 0.0372], [0.0985, 0.1060], [0.1035, 0.1165]])
# Summed bone length (m) of the canonical CMU rest skeleton (synth.poses.ik.rest_joints).
REFERENCE_SKELETON_LENGTH = 3.99

# Capsule segments (joint a, joint b) and the pairs tested.
SEGMENTS = {
    "torso": ("pelvis", "neck"),
    "right_upper_arm": ("right_shoulder", "right_elbow"), "right_forearm": ("right_elbow", "right_wrist"),
    "left_upper_arm": ("left_shoulder", "left_elbow"), "left_forearm": ("left_elbow", "left_wrist"),
    "right_thigh": ("right_hip", "right_knee"), "right_shin": ("right_knee", "right_ankle"),
    "left_thigh": ("left_hip", "left_knee"), "left_shin": ("left_knee", "left_ankle"),
}
COLLISION_PAIRS = [
    ("torso", "right_forearm"), ("torso", "left_forearm"), ("torso", "right_upper_arm"),
    ("torso", "left_upper_arm"), ("torso", "right_shin"), ("torso", "left_shin"),
    ("right_forearm", "left_forearm"), ("right_upper_arm", "left_forearm"), ("left_upper_arm", "right_forearm"),
    ("right_upper_arm", "left_upper_arm"),
    *[(arm, leg) for arm in ("right_forearm", "left_forearm")
      for leg in ("right_thigh", "right_shin", "left_thigh", "left_shin")],
    ("right_thigh", "left_thigh"), ("right_shin", "left_shin"), ("right_thigh", "left_shin"),
    ("left_thigh", "right_shin"),
]
@dataclass
class ValidityResult:
    angle_ok: np.ndarray
    bones_ok: np.ndarray
    collision_ok: np.ndarray
    valid: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.valid = self.angle_ok & self.bones_ok & self.collision_ok

    def summary(self) -> dict:
        """Rejection rates (share of poses failing) per criterion and overall."""
        n = int(len(self.valid))

        def rate(ok):
            return float(1.0 - ok.mean()) if n else 0.0

        return {"n": n, "rejected": rate(self.valid), "rejected_angle": rate(self.angle_ok),
                "rejected_bones": rate(self.bones_ok), "rejected_collision": rate(self.collision_ok)}


def bone_lengths(joints_3d: np.ndarray) -> np.ndarray:
    """(N, 15, 3) -> (N, 14) lengths of `BONES`."""
    a = [JOINTS.index(p) for p, _ in BONES]
    b = [JOINTS.index(c) for _, c in BONES]
    return np.linalg.norm(joints_3d[:, b] - joints_3d[:, a], axis=-1)


def segment_distance(p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray) -> np.ndarray:
    """Least distance between segments p0-p1 and q0-q1, (N, 3) each -> (N,) (Ericson, RTCD 5.1.9)."""
    d1, d2, r = p1 - p0, q1 - q0, p0 - q0
    a = np.sum(d1 * d1, -1)
    e = np.sum(d2 * d2, -1)
    f = np.sum(d2 * r, -1)
    c = np.sum(d1 * r, -1)
    b = np.sum(d1 * d2, -1)
    eps = 1e-12
    denom = a * e - b * b
    s = np.where(denom > eps, np.clip((b * f - c * e) / np.where(denom > eps, denom, 1.0), 0.0, 1.0), 0.0)
    s = np.where(a <= eps, 0.0, s)
    t = np.where(e > eps, (b * s + f) / np.where(e > eps, e, 1.0), 0.0)
    # t outside [0, 1]: clamp it and recompute s for the clamped t
    t_low, t_high = t < 0.0, t > 1.0
    t = np.clip(t, 0.0, 1.0)
    a_safe = np.where(a > eps, a, 1.0)
    s = np.where(t_low, np.clip(-c / a_safe, 0.0, 1.0), s)
    s = np.where(t_high, np.clip((b - c) / a_safe, 0.0, 1.0), s)
    s = np.where(a <= eps, 0.0, s)
    t = np.where(e <= eps, 0.0, t)
    closest = (p0 + d1 * s[:, None]) - (q0 + d2 * t[:, None])
    return np.linalg.norm(closest, axis=-1)


def _radius(settings: ValidityConfig, segment: str) -> float:
    key = "torso" if segment == "torso" else segment.split("_", 1)[1]
    return float(getattr(settings.radii, key))


class PoseValidator:
    """Checks 15-joint poses against the three criteria; `check(joints) -> ValidityResult`."""

    def __init__(self, limits: JointAngleLimits, settings: ValidityConfig | None = None):
        s = settings if settings is not None else ValidityConfig()
        self.limits = limits
        self.settings = s
        margin = float(s.share_margin)
        self.share_low = MOCAP_SHARE_RANGES[:, 0] / (1.0 + margin)
        self.share_high = MOCAP_SHARE_RANGES[:, 1] * (1.0 + margin)
        self.symmetry_tolerance = float(s.symmetry_tolerance)
        self._pairs = [(SEGMENTS[a], SEGMENTS[b], _radius(s, a) + _radius(s, b)) for a, b in COLLISION_PAIRS]

    @classmethod
    def from_data_dir(cls, data_dir: str | Path, settings: ValidityConfig | None = None) -> "PoseValidator":
        """The validator with the joint-angle model of `data_dir/akhter_black_joint_limits`
        (InputError naming the file when it is missing or bad); `settings`: the config's
        `poses.validity` section (None: its defaults)."""
        return cls(JointAngleLimits.from_dir(Path(data_dir) / LIMITS_FOLDER), settings)

    def bones_ok(self, joints_3d: np.ndarray) -> np.ndarray:
        L = bone_lengths(joints_3d)
        total = L.sum(axis=1, keepdims=True)
        share = L / np.maximum(total, 1e-12)
        ok = np.all((share >= self.share_low) & (share <= self.share_high), axis=1) & (total[:, 0] > 1e-6)
        for r, l in SYMMETRIC_PAIRS:
            ok &= np.abs(L[:, r] - L[:, l]) <= self.symmetry_tolerance * 0.5 * (L[:, r] + L[:, l])
        return ok

    def collision_ok(self, joints_3d: np.ndarray) -> np.ndarray:
        total = bone_lengths(joints_3d).sum(axis=1)
        J = joints_3d * (REFERENCE_SKELETON_LENGTH / np.maximum(total, 1e-12))[:, None, None]
        ok = np.ones(len(J), dtype=bool)
        idx = {j: i for i, j in enumerate(JOINTS)}
        for (a0, a1), (b0, b1), reach in self._pairs:
            d = segment_distance(J[:, idx[a0]], J[:, idx[a1]], J[:, idx[b0]], J[:, idx[b1]])
            ok &= d >= reach
        return ok

    def check(self, joints_3d: np.ndarray) -> ValidityResult:
        J = np.asarray(joints_3d, dtype=np.float64)
        if J.ndim != 3 or J.shape[1:] != (len(JOINTS), 3):
            raise ValueError(f"joints_3d must be (N, {len(JOINTS)}, 3), got {J.shape}")
        finite = np.all(np.isfinite(J), axis=(1, 2))
        J = np.where(finite[:, None, None], J, 0.0)
        return ValidityResult(angle_ok=self.limits.check(J) & finite, bones_ok=self.bones_ok(J) & finite,
                              collision_ok=self.collision_ok(J) & finite)
