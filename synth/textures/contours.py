"""Closed 2-D contours of masks: extraction, arc-length resampling, orientation and distance.

Contours are (n, 2) float arrays of (x, y) pixel coordinates (OpenCV convention: pixel centres on
whole numbers, y down), closed implicitly (the last point joins the first). "Counter-clockwise"
means counter-clockwise as seen on screen, i.e. with y pointing down.
"""
from __future__ import annotations

import cv2
import numpy as np


def signed_area(curve: np.ndarray) -> float:
    """Shoelace area in (x, y) pixel coordinates: positive for counter-clockwise on screen
    (y down), negative for clockwise."""
    x, y = curve[:, 0], curve[:, 1]
    return -0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def make_ccw(curve: np.ndarray) -> np.ndarray:
    """The same closed curve, traversed counter-clockwise on screen."""
    return curve[::-1].copy() if signed_area(curve) < 0 else curve


def resample_closed(curve: np.ndarray, n_points: int) -> np.ndarray:
    """n_points spaced evenly by arc length along the closed polyline, starting at curve[0]."""
    curve = np.asarray(curve, np.float64)
    closed = np.vstack([curve, curve[:1]])
    seg = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    total = cum[-1]
    if total <= 0:
        raise ValueError("degenerate contour (zero length)")
    t = np.arange(n_points) * (total / n_points)
    x = np.interp(t, cum, closed[:, 0])
    y = np.interp(t, cum, closed[:, 1])
    return np.stack([x, y], axis=1)


def mask_contour(mask: np.ndarray, n_points: int = 256) -> np.ndarray:
    """The outer contour of the mask's largest region, resampled to n_points evenly by arc length,
    counter-clockwise on screen, starting at its topmost (then leftmost) boundary pixel."""
    m = np.ascontiguousarray(mask.astype(np.uint8))
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        raise ValueError("empty mask: no contour")
    c = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64)
    if len(c) < 3:
        raise ValueError("mask region too small for a contour")
    start = np.lexsort((c[:, 0], c[:, 1]))[0]
    c = np.roll(c, -start, axis=0)
    if signed_area(c) < 0:
        c = np.vstack([c[:1], c[:0:-1]])   # reverse, keeping the start point
    return resample_closed(c, n_points)


def contour_mask(curve: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Rasterise a closed contour into a bool mask of shape (H, W)."""
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(curve * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return m.astype(bool)


def point_polyline_distance(p: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """Distance from each point of p (k, 2) to the closed polyline through curve (n, 2)."""
    a = curve
    d = np.roll(curve, -1, axis=0) - a                       # segment vectors (n, 2)
    dd = np.maximum(np.einsum("ij,ij->i", d, d), 1e-12)
    rel = p[:, None, :] - a[None]                            # (k, n, 2)
    t = np.clip(np.einsum("knj,nj->kn", rel, d) / dd, 0.0, 1.0)
    diff = rel - t[..., None] * d[None]
    return np.sqrt(np.min(np.einsum("knj,knj->kn", diff, diff), axis=1))


def contour_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric mean closest-point distance (pixels) between two closed contours: the mean over
    a's samples of the distance to b's polyline, and vice versa, averaged."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return 0.5 * float(point_polyline_distance(a, b).mean() + point_polyline_distance(b, a).mean())


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity (Umeyama, no reflection) taking src onto dst point for point:
    returns (scale, R 2x2, t) with dst ~= scale * src @ R.T + t."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    U, S, Vt = np.linalg.svd(cov)
    D = np.diag([1.0, np.sign(np.linalg.det(U @ Vt)) or 1.0])
    R = U @ D @ Vt
    var = (s0 ** 2).sum() / len(src)
    scale = float(np.trace(np.diag(S) @ D) / var) if var > 0 else 1.0
    t = mu_d - scale * R @ mu_s
    return scale, R, t


def align_bbox(curve: np.ndarray, target: np.ndarray) -> np.ndarray:
    """curve translated and uniformly scaled so its bounding box fits the target's (same centre,
    the larger of the two axis ratios kept inside): the "before warping" placement."""
    lo, hi = curve.min(0), curve.max(0)
    tlo, thi = target.min(0), target.max(0)
    s = float(np.min((thi - tlo) / np.maximum(hi - lo, 1e-9)))
    return (curve - (lo + hi) / 2) * s + (tlo + thi) / 2
