"""What stands in front of the person, and what of the person is seen.

`draw_occluder` cuts a patch from another background photo with an irregular soft edge and
places it over part of the person's projected box (render.occluders); `composite_foreground`
lays it over a finished render, in linear light, and clears the labels it hides: mask, parts and
depth stay the person's VISIBLE pixels (../shared/SPEC.md). `person_labels` derives the per-joint
`joints_in_image` / `joints_visible` flags and the person's boxes from the final mask and parts.

Pure numpy/OpenCV: no Blender. The render loop (synth.dataset.render_job) applies the layer after
the renderer has composited the person over the background.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from synth.config import OccluderConfig
from synth.scene import JOINTS, PARTS, Foreground, RenderOutput

# A pixel whose occluder alpha reaches this shows more occluder than person: it leaves the labels.
HIDDEN_ALPHA = 0.5
# The body parts whose surface at a joint's pixel means the joint itself is what is seen there
# (its own limb; the pelvis and hips under the torso's and thighs' surface): another part there
# (an arm across the hip) or no surface at all (an occluder's cleared pixels) hides it.
_OWN_PARTS = {"pelvis": ("torso", "left_thigh", "right_thigh"), "neck": ("head", "torso"), "head_top": ("head",)}
for _s in ("left", "right"):
    _OWN_PARTS.update({f"{_s}_shoulder": ("torso", f"{_s}_upper_arm"),
                       f"{_s}_elbow": (f"{_s}_upper_arm", f"{_s}_forearm"),
                       f"{_s}_wrist": (f"{_s}_forearm", f"{_s}_hand"),
                       f"{_s}_hip": ("torso", f"{_s}_thigh"),
                       f"{_s}_knee": (f"{_s}_thigh", f"{_s}_lower_leg"),
                       f"{_s}_ankle": (f"{_s}_lower_leg", f"{_s}_foot")})
OWN_PART_IDS = {j: frozenset(PARTS.index(p) + 1 for p in parts) for j, parts in _OWN_PARTS.items()}


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


_SRGB8_TO_LINEAR = _srgb_to_linear(np.arange(256, dtype=np.float64) / 255.0).astype(np.float32)
_LEVELS = 4095
_LINEAR12_TO_SRGB8 = np.rint(np.where(
    (x := np.arange(_LEVELS + 1, dtype=np.float64) / _LEVELS) <= 0.0031308, x * 12.92,
    1.055 * np.power(x, 1 / 2.4) - 0.055) * 255.0).astype(np.uint8)


def _smooth_noise(rng: np.random.Generator, w: int, h: int, cells: int = 5) -> np.ndarray:
    """(h, w) float32 smooth random field in about [-1, 1]: a coarse uniform grid, upsampled."""
    grid = rng.uniform(-1.0, 1.0, size=(cells, cells)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def occluder_shape(rng: np.random.Generator, w: int, h: int, from_bottom: bool, softness_px: float) -> np.ndarray:
    """(h, w) float32 alpha of an irregular object: a noisy blob, or (`from_bottom`) a body whose
    top edge wavers and whose sides lean (something standing on the ground in front)."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    xn = (xs + 0.5) / w * 2 - 1              # -1..1 across
    yn = (ys + 0.5) / h * 2 - 1
    noise = _smooth_noise(rng, w, h)
    if from_bottom:
        top = -0.7 + 0.25 * _smooth_noise(rng, w, 1, 4)[0]          # the top edge, per column
        lean = 0.9 + 0.1 * _smooth_noise(rng, 1, h, 4)[:, 0]         # the half width, per row
        inside = (yn >= top[None, :]) & (np.abs(xn) <= lean[:, None])
    else:
        inside = (1.0 - xn ** 2 - yn ** 2 + 0.45 * noise) > 0.0
    alpha = inside.astype(np.float32)
    if softness_px > 0:
        alpha = cv2.GaussianBlur(alpha, (0, 0), float(softness_px))
    return alpha


PLACEMENT_TRIES = 8   # placements drawn before a sample goes without its occluder


def _hidden_joints(alpha_local: np.ndarray, ox: int, oy: int, joints: np.ndarray, W: int, H: int) -> int:
    """How many of the joints (J, 2) rounded pixels in the image the occluder at (ox, oy) hides."""
    n = 0
    for x, y in joints:
        if 0 <= x < W and 0 <= y < H:
            lx, ly = x - ox, y - oy
            n += bool(0 <= ly < alpha_local.shape[0] and 0 <= lx < alpha_local.shape[1]
                      and alpha_local[ly, lx] >= HIDDEN_ALPHA)
    return n


def draw_occluder(oc: OccluderConfig, rng: np.random.Generator, person_box: Sequence[float], width: int,
                  height: int, photos: Sequence[Path], data_dir: Path,
                  load_photo: Callable[[Path], np.ndarray], exclude: Path | None = None,
                  joints_2d: np.ndarray | None = None) -> Foreground | None:
    """With probability oc.probability, an occluder over part of the person's projected box
    (x0, y0, x1, y1 pixels, which may reach beyond the image): a patch of one of `photos`
    (decoded by `load_photo`, another than `exclude` when there is one), its size a drawn share
    of the box, placed over the box's visible part (or rising from the image bottom). With
    `joints_2d` (J, 2 pixels) a placement hides at most oc.max_hidden_joints of the joints in the
    image (PLACEMENT_TRIES draws, else no occluder)."""
    if rng.random() >= oc.probability:
        return None
    W, H = int(width), int(height)
    x0, y0, x1, y1 = (float(c) for c in person_box)
    bw, bh = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    vx0, vy0, vx1, vy1 = max(x0, 0.0), max(y0, 0.0), min(x1, W - 1.0), min(y1, H - 1.0)
    if vx1 <= vx0 or vy1 <= vy0:
        return None
    joints = None if joints_2d is None else np.rint(np.asarray(joints_2d, np.float64)).astype(np.int64)
    for _ in range(PLACEMENT_TRIES):
        ow = int(np.clip(round(rng.uniform(oc.width.low, oc.width.high) * bw), 6, 2 * W))
        oh = int(np.clip(round(rng.uniform(oc.height.low, oc.height.high) * bh), 6, 2 * H))
        from_bottom = bool(rng.random() < oc.from_bottom_probability)
        cx = rng.uniform(vx0, vx1)
        if from_bottom:
            # it stands on the ground in front: from the image bottom up to oh above the box's
            # lowest visible row (whatever is below the image border is hidden anyway)
            top = vy1 - oh
            oh = int(round(H - top))
            ox, oy = int(round(cx - ow / 2)), int(round(top))
        else:
            cy = rng.uniform(vy0, vy1)
            ox, oy = int(round(cx - ow / 2)), int(round(cy - oh / 2))
        alpha_local = occluder_shape(rng, ow, oh, from_bottom, oc.edge_softness_px)
        if joints is None or _hidden_joints(alpha_local, ox, oy, joints, W, H) <= oc.max_hidden_joints:
            break
    else:
        return None
    choices = [p for p in photos if p != exclude] or list(photos)
    photo_path = choices[int(rng.integers(len(choices)))]
    photo = load_photo(photo_path)
    ph, pw = photo.shape[:2]
    # a region of the photo at the occluder's aspect, a fifth to a half of the photo wide
    cw = int(np.clip(round(rng.uniform(0.2, 0.5) * pw), 4, pw))
    ch = int(round(cw * oh / ow))
    if ch > ph:
        ch = ph
        cw = max(4, min(pw, int(round(ch * ow / oh))))
    px = int(rng.integers(0, pw - cw + 1))
    py = int(rng.integers(0, ph - ch + 1))
    patch = cv2.resize(np.ascontiguousarray(photo[py:py + ch, px:px + cw]), (ow, oh), interpolation=cv2.INTER_AREA)

    rgb = np.zeros((H, W, 3), np.uint8)
    alpha = np.zeros((H, W), np.float32)
    # the part of the occluder's rectangle inside the image
    ix0, iy0, ix1, iy1 = max(ox, 0), max(oy, 0), min(ox + ow, W), min(oy + oh, H)
    if ix1 <= ix0 or iy1 <= iy0:
        return None
    rgb[iy0:iy1, ix0:ix1] = patch[iy0 - oy:iy1 - oy, ix0 - ox:ix1 - ox]
    alpha[iy0:iy1, ix0:ix1] = alpha_local[iy0 - oy:iy1 - oy, ix0 - ox:ix1 - ox]
    try:
        photo_id = str(Path(photo_path).relative_to(data_dir))
    except ValueError:
        photo_id = str(photo_path)
    labels = {"kind": "photo_patch", "placement": "from_bottom" if from_bottom else "floating", "id": photo_id,
              "crop_xywh": [px, py, cw, ch], "box": [ix0, iy0, ix1, iy1]}
    return Foreground(rgb=rgb, alpha=alpha, labels=labels)


def composite_foreground(out: RenderOutput, fg: Foreground) -> tuple[RenderOutput, dict]:
    """`fg` over the render `out` (blended in linear light); the person's pixels it hides
    (alpha >= HIDDEN_ALPHA) leave mask, parts and depth. Returns the new output and the
    foreground's labels with `hidden_share`: the share of the person's pixels it hid."""
    a = np.clip(np.asarray(fg.alpha, np.float32), 0.0, 1.0)
    lin = cv2.LUT(np.ascontiguousarray(out.rgb), _SRGB8_TO_LINEAR)
    over = cv2.LUT(np.ascontiguousarray(fg.rgb), _SRGB8_TO_LINEAR)
    a3 = a[:, :, None]
    lin = lin * (1.0 - a3) + over * a3
    rgb = _LINEAR12_TO_SRGB8[np.rint(np.clip(lin, 0.0, 1.0) * _LEVELS).astype(np.int32)]
    hidden = a >= HIDDEN_ALPHA
    person = out.mask > 0
    n_person = int(person.sum())
    mask, parts, depth = out.mask.copy(), out.parts.copy(), out.depth_mm.copy()
    mask[hidden], parts[hidden], depth[hidden] = 0, 0, 0
    labels = {**fg.labels, "hidden_share": float((person & hidden).sum() / n_person) if n_person else 0.0}
    return RenderOutput(rgb=rgb, mask=mask, parts=parts, depth_mm=depth, timings=dict(out.timings),
                        exposure_gain=out.exposure_gain), labels


def person_labels(joints_3d_cam: np.ndarray, joints_2d: np.ndarray, mask: np.ndarray, parts: np.ndarray,
                  joint_names: Sequence[str] = JOINTS) -> dict:
    """Per-joint flags and the person's boxes from the final layers (pixel centres on whole numbers):
    - `joints_in_image` (J bools): the joint is in front of the camera and its rounded pixel lies
      in the image;
    - `joints_visible` (J bools): in the image, and the joint's own body part (OWN_PART_IDS) is
      seen in its pixel's 3×3 neighbourhood (as the checker reads a joint's pixel): neither an
      occluder (which clears the person's pixels) nor another part of the body hides it;
    - `bbox` [x0, y0, x1, y1]: the mask's visible pixels, inclusive pixel indices (null when no
      pixel of the person is seen);
    - `bbox_joints` [x0, y0, x1, y1]: the 2D joints' extent, which may reach beyond the image."""
    J = np.asarray(joints_3d_cam, np.float64)
    uv = np.asarray(joints_2d, np.float64)
    H, W = mask.shape
    in_image, visible = [], []
    for name, (u, v), z in zip(joint_names, uv, J[:, 2]):
        inside = bool(z > 0 and np.isfinite(u) and np.isfinite(v))
        x, y = (int(round(u)), int(round(v))) if inside else (-1, -1)
        inside = inside and 0 <= x < W and 0 <= y < H
        seen = False
        if inside:
            win = parts[max(0, y - 1):min(H, y + 2), max(0, x - 1):min(W, x + 2)]
            seen = bool(OWN_PART_IDS[name].intersection(np.unique(win).tolist()))
        in_image.append(inside)
        visible.append(seen)
    ys, xs = np.nonzero(mask)
    bbox = [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())] if len(xs) else None
    lo, hi = uv.min(0), uv.max(0)
    return {"joints_in_image": in_image, "joints_visible": visible, "bbox": bbox,
            "bbox_joints": [float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])]}
