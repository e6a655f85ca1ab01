"""Moving-least-squares image deformation (Schaefer, McPhail & Warren 2006, "Image deformation
using moving least squares", SIGGRAPH): affine, similarity and rigid closed forms, vectorised
over evaluation points.

For an evaluation point v, control points p_i -> q_i get weights w_i = 1 / |p_i - v|^(2 alpha);
with weighted centroids p*, q* and p^_i = p_i - p*, q^_i = q_i - q*, the deformation is
  affine:      f(v) = (v - p*) M + q*,  M = (sum w p^T p^)^-1 sum w p^T q^   (row vectors)
  similarity:  f(v) = (v - p*) z + q*,  z = sum w conj(p^) q^ / sum w |p^|^2  (points as complex numbers)
  rigid:       f(v) = (v - p*) z/|z| + q*
The similarity/rigid forms are the paper's (its A_i matrices are multiplication by a complex
number; the rigid form normalises f_r's length to |v - p*|, i.e. z to unit modulus).

Images are warped backwards: every output pixel needs a source position, so the deformation is
set up from the destination control points to the source ones, evaluated on a coarse grid,
interpolated bilinearly to every pixel, and sampled with cv2.remap. Pure numpy/OpenCV.
"""
from __future__ import annotations

import cv2
import numpy as np

from synth.textures.contours import similarity_fit

MODES = ("rigid", "similarity", "affine")


def mls_deform(points: np.ndarray, p: np.ndarray, q: np.ndarray, mode: str = "rigid",
               alpha: float = 1.0) -> np.ndarray:
    """The MLS deformation taking control points p (k, 2) to q (k, 2), evaluated at points (N, 2)."""
    if mode not in MODES:
        raise ValueError(f"MLS mode {mode!r} is not one of {', '.join(MODES)}")
    p = np.asarray(p, np.float64)
    q = np.asarray(q, np.float64)
    # Centre the coordinates: the moment sums below subtract large near-equal terms otherwise.
    pc, qc = p.mean(0), q.mean(0)
    p, q = p - pc, q - qc
    v = np.asarray(points, np.float64) - pc
    # |v - p|^2 expanded into one matrix product (the (N, k, 2) difference array is slow).
    d2 = np.maximum((v ** 2).sum(1)[:, None] + (p ** 2).sum(1)[None] - 2.0 * v @ p.T, 0.0)   # (N, k)
    # At a control point the weight is infinite; the floor (distance 1e-4 px) keeps the sums
    # finite while f still interpolates the point to ~1e-8 px. Rows are scaled to max 1 (f is
    # invariant to a common factor of the weights).
    w = 1.0 / (np.maximum(d2, 1e-8) if alpha == 1.0 else np.maximum(d2, 1e-8) ** alpha)
    w /= w.max(1, keepdims=True)
    W = w.sum(1)
    p_star = w @ p / W[:, None]                                    # (N, 2)
    q_star = w @ q / W[:, None]
    vp = v - p_star
    # The weighted moments of the centred points p^ = p - p*, q^ = q - q* expand into moments of
    # p and q minus the centroid terms, so each is one (N, k) @ (k, c) product, never (N, k, 2).
    if mode == "affine":
        pp = (w @ (p[:, :, None] * p[:, None, :]).reshape(-1, 4)).reshape(-1, 2, 2)
        pq = (w @ (p[:, :, None] * q[:, None, :]).reshape(-1, 4)).reshape(-1, 2, 2)
        A = pp - W[:, None, None] * p_star[:, :, None] * p_star[:, None, :]
        B = pq - W[:, None, None] * p_star[:, :, None] * q_star[:, None, :]
        # Tiny ridge: with collinear local control points A is singular.
        A = A + np.eye(2)[None] * (1e-9 * np.trace(A, axis1=1, axis2=2) + 1e-12)[:, None, None]
        M = np.linalg.solve(A, B)
        return np.einsum("ni,nij->nj", vp, M) + q_star + qc
    pz, qz = p[:, 0] + 1j * p[:, 1], q[:, 0] + 1j * q[:, 1]
    psz, qsz = p_star[:, 0] + 1j * p_star[:, 1], q_star[:, 0] + 1j * q_star[:, 1]
    num = w @ (np.conj(pz) * qz) - W * np.conj(psz) * qsz             # sum w conj(p^) q^
    den = w @ (np.abs(pz) ** 2) - W * np.abs(psz) ** 2                # sum w |p^|^2
    z = num / np.maximum(den, 1e-12)
    if mode == "rigid":
        z = np.where(np.abs(z) > 0, z / np.maximum(np.abs(z), 1e-300), 1.0)
    out = (vp[:, 0] + 1j * vp[:, 1]) * z
    return np.stack([out.real, out.imag], axis=1) + q_star + qc


def mls_backward_map(src_pts: np.ndarray, dst_pts: np.ndarray, out_shape: tuple[int, int],
                     mode: str = "rigid", grid_step: int = 8, alpha: float = 1.0,
                     prealign: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(map_x, map_y) float32 (H, W): for each output pixel, where to sample the source image so
    that src_pts land on dst_pts.

    prealign: first bring src_pts onto dst_pts by their best global similarity S and let MLS do
    only the rest (the map is then S^-1 after MLS(dst -> S src)). Rigid MLS keeps local scale,
    so without this a garment photographed at another size than the body cannot fit it; for the
    similarity and affine modes S commutes with MLS and changes nothing."""
    src_pts = np.asarray(src_pts, np.float64)
    dst_pts = np.asarray(dst_pts, np.float64)
    S = None
    if prealign:
        scale, R, t = similarity_fit(src_pts, dst_pts)
        src_pts = scale * src_pts @ R.T + t
        S = (scale, R, t)
    H, W = out_shape
    step = max(1, int(grid_step))
    gx = np.arange(0, W + step, step, dtype=np.float64)
    gy = np.arange(0, H + step, step, dtype=np.float64)
    gxx, gyy = np.meshgrid(gx, gy)
    grid = np.stack([gxx.ravel(), gyy.ravel()], axis=1)
    src = mls_deform(grid, dst_pts, src_pts, mode, alpha)
    if S is not None:
        scale, R, t = S
        src = (src - t) @ R / scale                         # S^-1 (R orthonormal: R^-1 = R^T)
    src = src.reshape(len(gy), len(gx), 2)
    if step == 1:
        return src[:H, :W, 0].astype(np.float32), src[:H, :W, 1].astype(np.float32)
    # Bilinear interpolation of the grid: grid node g sits at pixel g*step; output pixel x is at
    # grid coordinate x/step.
    xs = np.arange(W, dtype=np.float32) / step
    ys = np.arange(H, dtype=np.float32) / step
    mx, my = np.meshgrid(xs, ys)
    map_x = cv2.remap(src[..., 0].astype(np.float32), mx, my, cv2.INTER_LINEAR)
    map_y = cv2.remap(src[..., 1].astype(np.float32), mx, my, cv2.INTER_LINEAR)
    return map_x, map_y


def mls_warp(image: np.ndarray, src_pts: np.ndarray, dst_pts: np.ndarray, out_shape: tuple[int, int],
             mode: str = "rigid", grid_step: int = 8, alpha: float = 1.0,
             src_mask: np.ndarray | None = None, prealign: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Warp `image` so its points src_pts (k, 2, x/y pixels) move to dst_pts in an output of
    out_shape (H, W). Returns (warped image, valid mask): valid where the sampled position lies
    inside the source image (and inside src_mask, e.g. the garment, when given). See
    mls_backward_map for prealign."""
    if len(src_pts) != len(dst_pts) or len(src_pts) < 3:
        raise ValueError("MLS needs the same number (>= 3) of source and destination points")
    map_x, map_y = mls_backward_map(src_pts, dst_pts, out_shape, mode, grid_step, alpha, prealign)
    warped = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    h, w = image.shape[:2]
    valid = (map_x >= -0.5) & (map_x <= w - 0.5) & (map_y >= -0.5) & (map_y <= h - 0.5)
    if src_mask is not None:
        m = cv2.remap(src_mask.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
        valid &= m > 0.5
    return warped, valid
