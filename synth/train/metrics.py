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

from synth.geometry import procrustes_align as _procrustes_align
from synth.scene import JOINTS

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
    """synth.geometry.procrustes_align on arrays or tensors."""
    return _procrustes_align(_np(pred), _np(gt))


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


# A network whose predictions vary between samples by less than this share of the labels' own
# variation has collapsed to (nearly) one pose: its errors are those of a mean pose.
COLLAPSED_SPREAD = 0.05


def prediction_spread(pred: np.ndarray, gt: np.ndarray) -> float:
    """How much the predictions (N, J, D) vary between samples, as a share of how much the labels
    do: the joints' mean standard deviation across samples, predicted / labelled. About 0 for a
    network that predicts one pose for every input (a collapse the mean errors alone do not
    show: they are then those of a mean pose); nan for fewer than two samples."""
    pred, gt = _np(pred), _np(gt)
    if len(pred) < 2:
        return float("nan")
    label = float(gt.std(0).mean())
    return float(pred.std(0).mean() / label) if label > 0 else float("nan")


def pose_metrics(pred_mm, gt_mm, joint_names: list[str] | None = None) -> dict:
    """All metrics for root-relative poses (N, J, 3) in millimetres (`spread`: prediction_spread)."""
    pred_mm, gt_mm = _np(pred_mm), _np(gt_mm)
    err = joint_errors(pred_mm, gt_mm)
    pa_err = joint_errors(procrustes_align(pred_mm, gt_mm), gt_mm)
    names = joint_names or [str(i) for i in range(err.shape[1])]
    return {
        "mpjpe_mm": float(err.mean()),
        "pa_mpjpe_mm": float(pa_err.mean()),
        "pck150": pck(err),
        "auc": auc(err),
        "spread": prediction_spread(pred_mm, gt_mm),
        "per_joint_mpjpe_mm": {n: float(v) for n, v in zip(names, err.mean(0))},
        "samples": int(err.shape[0]),
    }


# --- 2D metrics on real photos ----------------------------------------------------------------
#
# PCK@0.2 of a 3D prediction against 2D labels (the standard LSP protocol after alignment): the
# predicted root-relative pose is projected orthographically (its camera-frame x, y: the image's
# x right, y down) and moved onto the labels by the scale s >= 0 and translation t that minimise
# sum over the visible joints of ||s p + t - g||^2 (closed form: centre both point sets on their
# visible means, s = <p0, g0> / |p0|^2). A joint is correct when its aligned position lies within
# 0.2 × the torso size of its label; the torso size is the distance between the right shoulder and
# the left hip (the definition used by the LSP PCK evaluations, e.g. Yang & Ramanan's code).

PCK2D_THRESHOLD = 0.2
# The 2D loss's floor on the prediction/label correlation (aligned_2d_residual explains it).
MIN_ALIGN_CORRELATION = 0.1
TORSO_JOINTS = ("right_shoulder", "left_hip")


def _torso_indices(joint_names) -> tuple[int, int]:
    names = list(joint_names) if joint_names is not None else JOINTS
    return names.index(TORSO_JOINTS[0]), names.index(TORSO_JOINTS[1])


def align_2d(pred_xy, gt_2d, visible) -> np.ndarray:
    """(N, J, 2) predictions moved by the best scale (>= 0) and translation onto the visible
    labels; a sample with fewer than two visible joints is only translated."""
    p, g, v = _np(pred_xy), _np(gt_2d), _np(visible)
    w = v[..., None]
    n = np.maximum(v.sum(1), 1e-12)[:, None, None]
    mp, mg = (p * w).sum(1, keepdims=True) / n, (g * w).sum(1, keepdims=True) / n
    p0, g0 = (p - mp) * w, (g - mg) * w
    den = (p0 ** 2).sum((1, 2))
    s = np.where(den > 1e-12, (p0 * g0).sum((1, 2)) / np.maximum(den, 1e-12), 0.0).clip(min=0.0)
    s = np.where(v.sum(1) >= 2, s, 1.0)
    return s[:, None, None] * (p - mp) + mg


def pck_2d_aligned(pred_3d, gt_2d, visible, threshold: float = PCK2D_THRESHOLD,
                   joint_names: list[str] | None = None) -> dict:
    """Torso-normalised PCK of (N, J, 3) root-relative predictions against (N, J, 2) labels,
    counted over the joints where `visible` (N, J) is nonzero (which are also the joints the
    alignment fits). Returns {"pck": overall, "per_joint": {name: pck or None}, "samples": N,
    "joints_counted": total}."""
    pred, gt, vis = _np(pred_3d), _np(gt_2d), _np(visible) > 0
    if pred.shape[:2] != gt.shape[:2] or pred.shape[-1] != 3 or gt.shape[-1] != 2 or vis.shape != gt.shape[:2]:
        raise ValueError(f"pred {pred.shape}, gt {gt.shape}, visible {vis.shape}: need (N,J,3), (N,J,2), (N,J)")
    return pck_2d(align_2d(pred[..., :2], gt, vis), gt, vis, threshold, joint_names)


def pck_2d(pred_2d, gt_2d, visible, threshold: float = PCK2D_THRESHOLD,
           joint_names: list[str] | None = None) -> dict:
    """Torso-normalised PCK of (N, J, 2) 2D predictions, in the labels' pixels and without any
    alignment (the 2D head's own positions), against (N, J, 2) labels over the joints where
    `visible` is nonzero; the result as pck_2d_aligned's."""
    pred, gt, vis = _np(pred_2d), _np(gt_2d), _np(visible) > 0
    if pred.shape != gt.shape or gt.shape[-1] != 2 or vis.shape != gt.shape[:2]:
        raise ValueError(f"pred {pred.shape}, gt {gt.shape}, visible {vis.shape}: need (N,J,2), (N,J,2), (N,J)")
    names = list(joint_names) if joint_names is not None else JOINTS
    rs, lh = _torso_indices(names)
    torso = np.linalg.norm(gt[:, rs] - gt[:, lh], axis=-1)
    correct = np.linalg.norm(pred - gt, axis=-1) <= threshold * torso[:, None]
    counted = vis.sum(0)
    per_joint = {n: (float((correct[:, j] & vis[:, j]).sum() / counted[j]) if counted[j] else None)
                 for j, n in enumerate(names)}
    total = int(vis.sum())
    return {"pck": float((correct & vis).sum() / total) if total else float("nan"),
            "per_joint": per_joint, "samples": int(pred.shape[0]), "joints_counted": total,
            "threshold": float(threshold)}


def aligned_2d_residual(pred_3d, gt_2d, visible, joint_names: list[str] | None = None,
                        torso_normalised: bool = False):
    """Differentiable (torch) (B, J, 2) residual between the aligned orthographic projection of
    (B, J, 3) predictions and (B, J, 2) labels, zero where `visible` (B, J) is 0: the 2D loss of
    joint 2D/3D training. Gradients flow through the closed-form alignment.

    The least-squares scale is s = (|g0| / |p0|) · cos θ, θ the angle between the centred point
    sets. Wherever cos θ >= MIN_ALIGN_CORRELATION this is `align_2d`'s scale exactly. Below, the
    metric's scale would be clamped at 0 and the residual would then be constant, with no gradient
    to correct a prediction that starts anti-correlated or collapsed; the loss instead keeps the
    small positive scale (|g0| / |p0|) · MIN_ALIGN_CORRELATION, whose residual pulls the projection
    towards the labels. With `torso_normalised` the residual is divided by each sample's label
    torso size (right shoulder to left hip), which makes it independent of the crop size."""
    import torch        # the loss is torch's; the metrics above stay numpy and load no torch
    v = visible.to(pred_3d.dtype)
    w = v.unsqueeze(-1)
    p, g = pred_3d[..., :2], gt_2d.to(pred_3d.dtype)
    n = v.sum(1).clamp(min=1e-6)[:, None, None]
    mp, mg = (p * w).sum(1, keepdim=True) / n, (g * w).sum(1, keepdim=True) / n
    p0, g0 = (p - mp) * w, (g - mg) * w
    p_norm = torch.sqrt((p0 ** 2).sum((1, 2)) + 1e-12)
    g_norm = torch.sqrt((g0 ** 2).sum((1, 2)) + 1e-12)
    cos = (p0 * g0).sum((1, 2)) / (p_norm * g_norm)
    s = g_norm / p_norm * cos.clamp(min=MIN_ALIGN_CORRELATION)
    s = torch.where(v.sum(1) >= 2, s, torch.ones_like(s))
    residual = (s[:, None, None] * (p - mp) + mg - g) * w
    if torso_normalised:
        rs, lh = _torso_indices(joint_names)
        torso = (g[:, rs] - g[:, lh]).norm(dim=-1).clamp(min=1e-6)
        residual = residual / torso[:, None, None]
    return residual
