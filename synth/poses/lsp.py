"""The Leeds Sports Pose (LSP) format: `joints.mat` (3 x 14 x N) beside `images/im%04d.jpg`.

Verified in ../shared/data/lsp/SOURCE.md: rows are x (column), y (row), flag; the 14 joints are
in LSP's own order (below); coordinates are MATLAB 1-based; in the original LSP file the flag is
0 for visible and 1 for occluded (LSP-extended uses the opposite convention and a 14 x 3 x N
layout, which `load_lsp` also reads when told `flag_means_visible=True`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synth.io_utils import InputError
from synth.scene import JOINTS

LSP_JOINTS = ["right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
              "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
              "left_wrist", "neck", "head_top"]
# For each SPEC joint (synth.scene.JOINTS order) its LSP index; the pelvis (-1) is not annotated
# in LSP and is taken as the mid-point of the hips (Chen et al.'s 15th joint).
LSP_INDEX_OF_JOINT = [LSP_JOINTS.index(j) if j in LSP_JOINTS else -1 for j in JOINTS]


@dataclass
class LspSet:
    """images[i] is the photo of joints_2d[i] (15 x 2, 0-based pixels, SPEC joint order)."""
    images: list[Path]
    joints_2d: np.ndarray      # (N, 15, 2) float32
    visible: np.ndarray        # (N, 15) bool (the pelvis is visible when both hips are)

    def __len__(self) -> int:
        return len(self.images)


def lsp_to_spec(joints_lsp: np.ndarray) -> np.ndarray:
    """(..., 14, D) in LSP order -> (..., 15, D) in SPEC order, pelvis = mean of the hips."""
    out = np.empty(joints_lsp.shape[:-2] + (len(JOINTS), joints_lsp.shape[-1]), dtype=np.float32)
    for j, k in enumerate(LSP_INDEX_OF_JOINT):
        if k >= 0:
            out[..., j, :] = joints_lsp[..., k, :]
    hips = [LSP_JOINTS.index("right_hip"), LSP_JOINTS.index("left_hip")]
    out[..., JOINTS.index("pelvis"), :] = joints_lsp[..., hips, :].mean(axis=-2)
    return out


def load_lsp(folder: Path, mat_name: str | None = None, flag_means_visible: bool = False) -> LspSet:
    """An LSP-format folder: `images/` and a joints .mat (default: joints.mat or joints_train.mat)."""
    import scipy.io       # scipy's .mat reader: loaded only to read .mat files
    folder = Path(folder)
    if mat_name is None:
        candidates = [folder / n for n in ("joints.mat", "joints_train.mat")]
        mat = next((c for c in candidates if c.exists()), None)
        if mat is None:
            raise InputError(f"{folder}: no joints.mat or joints_train.mat (not an LSP-format folder)")
    else:
        mat = folder / mat_name
    try:
        raw = scipy.io.loadmat(mat)["joints"]
    except Exception as e:  # noqa: BLE001 - any unreadable file is an input fault
        raise InputError(f"{mat}: not a MATLAB file with a 'joints' variable ({e.__class__.__name__})") from None
    raw = np.asarray(raw, dtype=np.float64)
    if raw.ndim != 3:
        raise InputError(f"{mat}: 'joints' has shape {raw.shape}, expected 3 x 14 x N or 14 x 3 x N")
    if raw.shape[:2] == (3, 14):
        arr = raw.transpose(2, 1, 0)            # N x 14 x 3
    elif raw.shape[:2] == (14, 3):
        arr = raw.transpose(2, 0, 1)
    else:
        raise InputError(f"{mat}: 'joints' has shape {raw.shape}, expected 3 x 14 x N or 14 x 3 x N")
    xy = arr[..., :2] - 1.0                      # MATLAB 1-based -> 0-based pixel centres
    flag = arr[..., 2] > 0.5
    vis14 = flag if flag_means_visible else ~flag
    images = [folder / "images" / f"im{k + 1:04d}.jpg" for k in range(len(arr))]
    missing = [p for p in images if not p.exists()]
    if missing:
        raise InputError(f"{missing[0]}: image listed by {mat.name} is missing ({len(missing)} missing in all)")
    joints = lsp_to_spec(xy.astype(np.float32))
    vis = lsp_to_spec(vis14[..., None].astype(np.float32))[..., 0]
    hips = [LSP_JOINTS.index("right_hip"), LSP_JOINTS.index("left_hip")]
    vis[:, JOINTS.index("pelvis")] = vis14[:, hips].all(axis=1)
    return LspSet(images=images, joints_2d=joints, visible=vis > 0.5)
