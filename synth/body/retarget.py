"""Retargeting pure math (numpy): drive any rigged body from a pose's per-bone world rotations.

A pose (synth.poses) gives, per bone b, a world rotation G_b that takes the bone from the source
skeleton's rest pose to the posed orientation, and the source rest direction s_b it applies to.
A body whose rest pose differs (Anny rests in an A-pose, CMU in a T-pose) first swings its own
rest direction r_b onto s_b with the minimal rotation A_b, then applies G_b:

    posed world orientation of bone b  =  G_b @ A_b @ R_b        (R_b: the body's rest orientation)

The swing A_b carries no twist, so the twist comes from G_b alone, as in the source. The root
keeps A = I: its "direction" is a modelling choice of each rig, not an anatomical one.
"""
from __future__ import annotations

import numpy as np


def minimal_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation matrices R (..., 3, 3) with R @ a = b for unit vectors a, b (..., 3), of least angle.

    Antiparallel pairs rotate by pi about an axis perpendicular to a.
    """
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    v = np.cross(a, b)
    c = np.sum(a * b, axis=-1)
    shape = a.shape[:-1]
    R = np.broadcast_to(np.eye(3), shape + (3, 3)).copy()
    vx = np.zeros(shape + (3, 3))
    vx[..., 0, 1], vx[..., 0, 2] = -v[..., 2], v[..., 1]
    vx[..., 1, 0], vx[..., 1, 2] = v[..., 2], -v[..., 0]
    vx[..., 2, 0], vx[..., 2, 1] = -v[..., 1], v[..., 0]
    ok = c > -1 + 1e-8
    k = np.where(ok, 1.0 / (1.0 + np.where(ok, c, 0.0)), 0.0)
    R = R + vx + (vx @ vx) * k[..., None, None]
    if not ok.all():
        # pi about any axis perpendicular to a
        aa = a[~ok]
        helper = np.where(np.abs(aa[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
        axis = np.cross(aa, helper)
        axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
        R[~ok] = 2 * axis[:, :, None] * axis[:, None, :] - np.eye(3)
    return R


def world_deltas(rotations: np.ndarray, source_rest_dirs: np.ndarray,
                 body_rest_dirs: np.ndarray, root: int = 0) -> np.ndarray:
    """The rotations G_b @ A_b (B, 3, 3) that take each body bone from its rest to its posed direction."""
    A = minimal_rotation(body_rest_dirs, source_rest_dirs)
    A[root] = np.eye(3)
    return rotations @ A
