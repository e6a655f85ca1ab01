"""3D pose metrics (pure numpy; torch tensors are accepted and converted).

Convention for evaluation: the network predicts normalised root-relative joints (bone lengths
summing to `skeleton_length`). Metrics are computed in millimetres after undoing the
normalisation: the prediction is made root-relative (its own pelvis subtracted) and multiplied
by the *ground truth's* normalisation factor, then compared with the root-relative ground truth.
So the evaluation is given the true skeleton size (as in Chen et al. 2016's normalised protocol)
and measures the pose, not the scale-depth ambiguity of a single image. Means run over all J
joints, the root included (its error is 0 by construction, as in the Human3.6M protocol).

- MPJPE: mean Euclidean joint error.
- PA-MPJPE: MPJPE after the similarity transform (scale, rotation, translation; no reflection)
  that best aligns each prediction with its ground truth (Procrustes / Umeyama).
- 3DPCK@150: share of joints within 150 mm (Mehta et al. 2017).
- AUC: mean 3DPCK over the thresholds 0, 5, ..., 150 mm (31 thresholds; Mehta et al. 2017).
"""
from __future__ import annotations

import numpy as np

PCK_THRESHOLD_MM = 150.0
AUC_THRESHOLDS_MM = np.linspace(0.0, 150.0, 31)


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def joint_errors(pred, gt) -> np.ndarray:
    """(N, J) Euclidean distances between (N, J, 3) predictions and ground truths."""
    pred, gt = _np(pred), _np(gt)
    if pred.shape != gt.shape or pred.shape[-1] != 3:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} must both be (N, J, 3)")
    return np.linalg.norm(pred - gt, axis=-1)


def mpjpe(pred, gt) -> float:
    return float(joint_errors(pred, gt).mean())


def procrustes_align(pred, gt) -> np.ndarray:
    """Each prediction (N, J, 3) moved by the best similarity transform onto its ground truth.

    Minimises sum ||s R p_i + t - g_i||^2 over s > 0, R in SO(3) (Umeyama 1991): with
    M = P0^T G0 = U S V^T, R = V D U^T where D = diag(1, 1, sign det(V U^T)) forbids a
    reflection, and s = tr(S D) / |P0|^2.
    """
    pred, gt = _np(pred), _np(gt)
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


def pa_mpjpe(pred, gt) -> float:
    return mpjpe(procrustes_align(pred, gt), gt)


def pck(errors, threshold: float = PCK_THRESHOLD_MM) -> float:
    """Share of joint errors (any shape, mm) at or below `threshold`."""
    return float((_np(errors) <= threshold).mean())


def auc(errors, thresholds=AUC_THRESHOLDS_MM) -> float:
    """Mean PCK over `thresholds` (default 0..150 mm in 5 mm steps)."""
    e = _np(errors).reshape(-1)
    return float(np.mean([(e <= t).mean() for t in thresholds]))


def to_millimetres(pose_normalised, scale_m, root_index: int = 0) -> np.ndarray:
    """Normalised poses (N, J, 3) -> root-relative millimetres, with (N,) metres per unit."""
    p = _np(pose_normalised)
    p = p - p[:, root_index:root_index + 1]
    return p * _np(scale_m).reshape(-1, 1, 1) * 1000.0


def pose_metrics(pred_mm, gt_mm, joint_names: list[str] | None = None) -> dict:
    """All metrics for root-relative poses (N, J, 3) in millimetres."""
    pred_mm, gt_mm = _np(pred_mm), _np(gt_mm)
    err = joint_errors(pred_mm, gt_mm)
    pa_err = joint_errors(procrustes_align(pred_mm, gt_mm), gt_mm)
    names = joint_names or [str(i) for i in range(err.shape[1])]
    return {
        "mpjpe_mm": float(err.mean()),
        "pa_mpjpe_mm": float(pa_err.mean()),
        "pck150": pck(err),
        "auc": auc(err),
        "per_joint_mpjpe_mm": {n: float(v) for n, v in zip(names, err.mean(0))},
        "samples": int(err.shape[0]),
    }
