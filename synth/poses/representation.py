"""The normalised pose representation shared by the pose prior, the coverage figures and the
pose-space gallery: global yaw removed, bone lengths factored out.

A pose of the 15 SPEC joints (synth.scene.JOINTS, Z up, root-relative) becomes
- `directions` (N, 14, 3): the unit direction of each of the 14 bones of `BONES` (parent joint ->
  child joint) in the yaw-free body frame: the pose rotated about +Z so that it faces -Y
  (facing yaw 0, see kinematics.facing_yaw_of);
- `lengths` (N, 14): the bone lengths in metres;
- `yaw` (N,): the facing yaw that was removed.
`to_joints(directions, lengths)` is the inverse (root at the origin, facing -Y); with the canonical
lengths of a training set it maps any set of directions to a pose of one body.

Directions are in the yaw-free body frame rather than in each parent bone's frame: the facing
frame is defined for every pose (also lifted 2D poses, which carry no bone rolls), and a
direction there is what a renderer and a joint-angle check see.
"""
from __future__ import annotations

import numpy as np

from synth.poses.kinematics import facing_yaw_of, yaw_matrix
from synth.scene import BONES, JOINTS

BONE_PARENT = np.array([JOINTS.index(a) for a, _ in BONES])
BONE_CHILD = np.array([JOINTS.index(b) for _, b in BONES])
PELVIS = JOINTS.index("pelvis")
assert PELVIS == 0 and all(BONE_CHILD[i] not in BONE_PARENT[:i] for i in range(len(BONES)))


def remove_yaw(joints_3d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 15, 3) -> (root-relative joints facing -Y (N, 15, 3) float64, removed yaw (N,))."""
    joints = np.asarray(joints_3d, dtype=np.float64)
    joints = joints - joints[:, PELVIS:PELVIS + 1]
    yaw = facing_yaw_of(joints)
    return np.einsum("nij,nkj->nki", yaw_matrix(-yaw), joints), yaw


def to_directions(joints_3d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 15, 3) joints -> (directions (N, 14, 3), lengths (N, 14), yaw (N,)). A zero-length bone
    gets the direction (0, 0, 1)."""
    canon, yaw = remove_yaw(joints_3d)
    vec = canon[:, BONE_CHILD] - canon[:, BONE_PARENT]
    lengths = np.linalg.norm(vec, axis=-1)
    safe = np.where(lengths > 1e-9, lengths, 1.0)
    directions = np.where(lengths[..., None] > 1e-9, vec / safe[..., None], np.array([0.0, 0.0, 1.0]))
    return directions, lengths, yaw


def normalise_directions(directions: np.ndarray) -> np.ndarray:
    """Rescale (..., 3) vectors to unit length (a zero vector becomes (0, 0, 1))."""
    norm = np.linalg.norm(directions, axis=-1, keepdims=True)
    out = directions / np.where(norm > 1e-12, norm, 1.0)
    return np.where(norm > 1e-12, out, np.array([0.0, 0.0, 1.0], dtype=out.dtype))


def to_joints(directions: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Inverse of `to_directions`: (N, 14, 3) directions and (14,) or (N, 14) lengths -> (N, 15, 3)
    joints, pelvis at the origin, facing -Y."""
    directions = np.asarray(directions, dtype=np.float64)
    lengths = np.broadcast_to(np.asarray(lengths, dtype=np.float64), directions.shape[:2])
    joints = np.zeros((directions.shape[0], len(JOINTS), 3))
    for b in range(len(BONES)):   # parents come first
        joints[:, BONE_CHILD[b]] = joints[:, BONE_PARENT[b]] + lengths[:, b, None] * directions[:, b]
    return joints


def canonical_lengths(lengths: np.ndarray) -> np.ndarray:
    """(N, 14) -> (14,) one body's bone lengths: the median of each bone, left and right averaged
    so that the canonical body is symmetric."""
    med = np.median(np.asarray(lengths, dtype=np.float64), axis=0)
    names = [f"{a}>{b}" for a, b in BONES]
    out = med.copy()
    for i, name in enumerate(names):
        if "right" in name:
            j = names.index(name.replace("right", "left"))
            out[i] = out[j] = 0.5 * (med[i] + med[j])
    return out


def pose_features(joints_3d: np.ndarray) -> np.ndarray:
    """(N, 15, 3) -> (N, 42) float32: the flattened yaw-free directions, the vector the pose-space
    embedding is computed on (a pose's shape, whatever the body's size)."""
    return to_directions(joints_3d)[0].reshape(len(joints_3d), -1).astype(np.float32)


def nearest_distances(queries: np.ndarray, pool: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Mean per-joint distance (metres) from each query pose to its nearest pose of `pool`, both
    (N, 15, 3), compared root-relative and with the facing yaw removed. Exact (chunked brute force
    on squared joint distances: the nearest in summed squared distance, then its mean distance)."""
    q = remove_yaw(queries)[0].reshape(len(queries), -1).astype(np.float32)
    p = remove_yaw(pool)[0].reshape(len(pool), -1).astype(np.float32)
    p_sq = (p * p).sum(1)
    out = np.empty(len(q))
    for s in range(0, len(q), chunk):
        qc = q[s:s + chunk]
        d2 = (qc * qc).sum(1)[:, None] + p_sq[None] - 2.0 * qc @ p.T
        best = np.argmin(d2, axis=1)
        diff = (qc - p[best]).reshape(len(qc), len(JOINTS), 3)
        out[s:s + chunk] = np.linalg.norm(diff, axis=-1).mean(axis=1)
    return out
