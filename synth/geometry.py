"""Geometry shared by the stages: pinhole intrinsics and projection, look-at cameras, rotations,
Procrustes and rigid alignment, mesh vertex normals, a pose's camera-frame translation from its
2D joints, and joint index maps. Plain numpy, SPEC conventions (synth.scene): OpenCV camera frame,
X_cam = R @ X_world + t, pixel centres on whole numbers (the top-left pixel's centre is (0, 0)).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from synth.scene import BONES, JOINTS


# ------------------------------------------------------------------------------------ cameras
# The horizontal field of view assumed for a photo without intrinsics (`synth predict`): between
# the renderer's 30-50 degrees and a phone camera's ~65-70.
PHOTO_FOV_DEG = 55.0


def intrinsics(focal_px: float, width: float, height: float) -> np.ndarray:
    """(3, 3) K of a pinhole with square pixels and the principal point at the image centre,
    ((W - 1) / 2, (H - 1) / 2) with pixel centres on whole numbers."""
    return np.array([[focal_px, 0.0, (width - 1) / 2.0], [0.0, focal_px, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def focal_from_fov(fov_rad: float, extent_px: float) -> float:
    """The focal length (pixels) at which `extent_px` pixels span the field of view `fov_rad`."""
    return (extent_px / 2.0) / math.tan(fov_rad / 2.0)


def project(points, K) -> np.ndarray:
    """Camera-frame points -> pixels: (..., 3) points with one (3, 3) K, or (N, J, 3) points with
    (N, 3, 3) intrinsics (one camera per set)."""
    x, K = np.asarray(points, dtype=np.float64), np.asarray(K, dtype=np.float64)
    h = x @ K.T if K.ndim == 2 else np.einsum("nij,nkj->nki", np.broadcast_to(K, (len(x), 3, 3)), x)
    return h[..., :2] / h[..., 2:3]


def root_translation(p_rel, joints_2d, K, weights=None) -> np.ndarray:
    """The translation T (3,) that best aligns the perspective projection of P_rel + T with the
    2D joints (Mehta et al. 2017, eq. 1): with (x_j, y_j) = K^-1 (u_j, v_j, 1), each joint gives the
    linear equations (P_jx + T_x) - x_j (P_jz + T_z) = 0 and (P_jy + T_y) - y_j (P_jz + T_z) = 0,
    solved by (weighted) linear least squares in closed form. Exact when the 2D joints are the
    projection of P_rel + T. p_rel (J, 3) camera-frame, joints_2d (J, 2) pixels, weights (J,)."""
    p = np.asarray(p_rel, dtype=np.float64)
    uv1 = np.concatenate([np.asarray(joints_2d, dtype=np.float64), np.ones((len(p), 1))], 1)
    xy = np.linalg.solve(np.asarray(K, dtype=np.float64), uv1.T).T[:, :2]
    w = np.ones(len(p)) if weights is None else np.asarray(weights, dtype=np.float64)
    a = np.zeros((2 * len(p), 3))
    b = np.zeros(2 * len(p))
    a[0::2, 0], a[0::2, 2], b[0::2] = 1.0, -xy[:, 0], xy[:, 0] * p[:, 2] - p[:, 0]
    a[1::2, 1], a[1::2, 2], b[1::2] = 1.0, -xy[:, 1], xy[:, 1] * p[:, 2] - p[:, 1]
    sw = np.sqrt(np.repeat(w, 2))
    t, *_ = np.linalg.lstsq(a * sw[:, None], b * sw, rcond=None)
    return t


def look_at(position: np.ndarray, target: np.ndarray, roll: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV world->camera (R, t) of a camera at `position` looking at `target` (world Z up),
    rolled by `roll` radians about its optical axis."""
    position = np.asarray(position, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64) - position
    z /= np.linalg.norm(z)
    up = np.array([0.0, 0.0, 1.0])
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-6:          # looking straight up/down
        x = np.array([1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c, s = math.cos(roll), math.sin(roll)
    x, y = c * x + s * y, -s * x + c * y
    R = np.stack([x, y, z])
    return R, -R @ position


# ---------------------------------------------------------------------------------- rotations
def axis_rotation(axis: str, angles_rad) -> np.ndarray:
    """(...,) angles -> (..., 3, 3) rotations about the x, y or z axis (right-handed)."""
    angles_rad = np.asarray(angles_rad, dtype=np.float64)
    c, s = np.cos(angles_rad), np.sin(angles_rad)
    one, zero = np.ones_like(c), np.zeros_like(c)
    if axis == "x":
        rows = [[one, zero, zero], [zero, c, -s], [zero, s, c]]
    elif axis == "y":
        rows = [[c, zero, s], [zero, one, zero], [-s, zero, c]]
    elif axis == "z":
        rows = [[c, -s, zero], [s, c, zero], [zero, zero, one]]
    else:
        raise ValueError(f"unknown axis {axis!r}")
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def euler_to_matrix(angles_deg, order: str = "XYZ") -> np.ndarray:
    """(..., 3) degrees about x, y, z -> (..., 3, 3); the first axis of `order` is applied first
    (static axes): "XYZ" gives Rz @ Ry @ Rx."""
    angles = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    out = None
    for axis in order.lower():
        r = axis_rotation(axis, angles[..., "xyz".index(axis)])
        out = r if out is None else r @ out
    return out


def rotation_onto(a, b) -> np.ndarray:
    """(3, 3) least rotation taking the direction a onto the direction b (Rodrigues)."""
    a = np.asarray(a, dtype=np.float64) / np.linalg.norm(a)
    b = np.asarray(b, dtype=np.float64) / np.linalg.norm(b)
    v, c = np.cross(a, b), float(a @ b)
    if c < -1.0 + 1e-12:
        raise ValueError("opposite directions have no least rotation")
    vx = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


def rotation_z_deg(angle_deg: float) -> np.ndarray:
    """(3, 3) rotation about z by `angle_deg`; in the camera frame it turns image x towards
    image y (clockwise on screen)."""
    return axis_rotation("z", math.radians(angle_deg))


# --------------------------------------------------------------------------------- Procrustes
def procrustes_align(pred, gt) -> np.ndarray:
    """Each prediction (N, J, 3) moved by the best similarity transform onto its ground truth.

    Minimises sum ||s R p_i + t - g_i||^2 over s > 0, R in SO(3) (Umeyama 1991): with
    M = P0^T G0 = U S V^T, R = V D U^T where D = diag(1, 1, sign det(V U^T)) forbids a
    reflection, and s = tr(S D) / |P0|^2.
    """
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    mu_p, mu_g = pred.mean(1, keepdims=True), gt.mean(1, keepdims=True)
    p0, g0 = pred - mu_p, gt - mu_g
    m = np.einsum("nji,njk->nik", p0, g0)
    u, s, vt = np.linalg.svd(m)
    v = np.swapaxes(vt, 1, 2)
    ut = np.swapaxes(u, 1, 2)
    d = np.ones_like(s)
    d[:, -1] = np.sign(np.linalg.det(v @ ut))
    d[d == 0] = 1.0
    rot = v @ (d[:, :, None] * ut)
    norm_p = (p0 ** 2).sum((1, 2))
    # A collapsed prediction (all joints at one point) has no rotation or scale to fit.
    scale = np.where(norm_p > 1e-12, (s * d).sum(1) / np.maximum(norm_p, 1e-12), 0.0)
    return scale[:, None, None] * np.einsum("nij,nkj->nki", rot, p0) + mu_g


def rigid_align(source, target) -> tuple[np.ndarray, np.ndarray]:
    """(R, t) of the rigid motion (proper rotation, no scale) minimising sum |R s_i + t - g_i|^2
    of two (J, 3) point sets (Kabsch; `procrustes_align` with the scale fixed at 1)."""
    s, g = np.asarray(source, dtype=np.float64), np.asarray(target, dtype=np.float64)
    ms, mg = s.mean(0), g.mean(0)
    u, _, vt = np.linalg.svd((s - ms).T @ (g - mg))
    d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    r = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return r, mg - r @ ms


def mpjpe(pred, gt) -> float:
    """Mean Euclidean joint error of (N, J, 3) poses, in their units."""
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.shape[-1] != 3:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} must both be (N, J, 3)")
    return float(np.linalg.norm(pred - gt, axis=-1).mean())


def pa_mpjpe(pred, gt) -> float:
    """MPJPE after Procrustes alignment of each prediction."""
    return mpjpe(procrustes_align(pred, gt), gt)


# ------------------------------------------------------------------------------------ meshes
def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals of a triangle mesh (zero for vertices no face uses)."""
    v = vertices[faces]
    fn = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    idx = faces.ravel()
    n = np.stack([np.bincount(idx, weights=np.repeat(fn[:, c], 3), minlength=len(vertices))
                  for c in range(3)], axis=1)
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return n / np.maximum(length, 1e-12)


# ----------------------------------------------------------------------------- joint indices
JOINT_INDEX = {name: i for i, name in enumerate(JOINTS)}


def joint_index(names: Sequence[str] = JOINTS) -> dict[str, int]:
    """name -> position in `names` (a dataset's joint order)."""
    return {str(n): i for i, n in enumerate(names)}


def bone_index_pairs(joint_names: Sequence[str] = JOINTS, bones=BONES) -> np.ndarray:
    """(len(bones), 2) (parent, child) positions of `bones` in the given joint order."""
    pos = joint_index(joint_names)
    return np.array([(pos[a], pos[b]) for a, b in bones], dtype=np.int64)
