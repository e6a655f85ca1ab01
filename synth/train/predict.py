"""`synth predict`: a trained run applied to photos; the global 3D pose in the camera frame and,
on request, the Anny body fitted to it.

Per photo and person crop:

1. Crop: the whole photo padded to a square (person-centred photos, like LSP), or each box of a
   `--boxes` JSON file ({"photo.jpg": [[x0, y0, x1, y1], ...], ...}, in corner coordinates: the
   photo spans [0, W] x [0, H], as detectors report boxes; keyed by the file name or the path as
   given) padded to a square around its centre; resized to the run's
   input size. The network gives the normalised root-relative 3D joints and the 2D joints in the
   crop (synth.train.models.PoseOutput); the 2D joints are mapped back to the photo's pixels.
2. Metres: the normalised pose, rescaled so that its bones sum to `train.skeleton_length`
   exactly (the network only approximates it; one trained on 2D labels alone has no 3D scale),
   times the mean size of the run's training skeletons (the checkpoint's `skeleton_scale_m`, metres per
   normalised unit); a run without one (trained on 2D labels alone) uses the canonical CMU rest
   skeleton of synth.poses.ik (its 14 bones sum to 3.99 m).
3. Perspective correction: the network saw the crop, as if through a camera looking straight at
   the crop's centre. Its pose is taken to be in that virtual camera's frame and turned into the
   photo camera's frame by the rotation R_c that takes the optical axis (0, 0, 1) onto the ray
   K^-1 (c_x, c_y, 1) through the crop centre (least rotation, as in Mehta et al. 2017). For a
   centred crop R_c is the identity.
4. Global position (Mehta et al. 2017, eq. 1): the translation T that best aligns the perspective
   projection of P_rel + T with the predicted 2D joints K_j, given the intrinsics. With the
   normalised image coordinates (x_j, y_j) = K^-1 (u_j, v_j, 1), each joint gives the two linear
   equations (P_jx + T_x) - x_j (P_jz + T_z) = 0 and (P_jy + T_y) - y_j (P_jz + T_z) = 0, solved for
   T by linear least squares over the 15 joints (closed form; synth.geometry.root_translation).
   When the 2D joints are the exact projection of a 3D pose, T is exact.
   Intrinsics: `--focal` (pixels), else a horizontal field of view of `DEFAULT_FOV_DEG` (55°,
   between the renderer's 30-50° and a phone camera's ~65-70°), the principal point at the
   photo's centre.
5. `--mesh` (Chen et al. 2016 §4.5): the pose stage's inverse kinematics (synth.poses.ik) turns
   the 15 camera-frame joints into bone rotations of Anny's rig; the body (phenotype parameters
   0.5, gender and height the best fitting of a small grid) is posed by them and moved rigidly
   (rotation + translation, no scale: Kabsch, synth.geometry.rigid_align) onto the global joints,
   with one corrective IK pass
   (`BodyFitter`). Its joints then lie on the predicted ones up to the difference of bone
   lengths between that body and the predicted skeleton. Written as an .obj per person (camera
   frame, metres) with an overlay of the projected body.

Outputs under PRED: predictions.json (per photo: size, K, and per person the box, crop,
joints_2d, joints_3d_rel, joints_3d_cam, root_cam, reprojection error, mesh file), overlays/
(skeleton of the 2D joints and, thinner, the projection of joints_3d_cam) and with --mesh
meshes/*.obj and mesh_overlays/.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from synth.config import Config, load_config
from synth.geometry import (PHOTO_FOV_DEG, bone_index_pairs, focal_from_fov, intrinsics, project, rigid_align,
                            root_translation, rotation_onto)
from synth.image_files import cv2_imread, open_image, verify_image
from synth.io_utils import InputError, atomic_write_bytes, atomic_write_json, atomic_write_text
from synth.scene import JOINTS

DEFAULT_FOV_DEG = PHOTO_FOV_DEG
ROOT = JOINTS.index("pelvis")
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# The camera frame (x right, y down, z forward) -> the body stage's Z-up world frame
# (x, z_cam, -y_cam): a proper rotation.
CAM_TO_ZUP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


# --- geometry (the general parts in synth.geometry) -----------------------------------------------

def photo_intrinsics(width: int, height: int, focal_px: float | None = None,
                     fov_deg: float = DEFAULT_FOV_DEG) -> np.ndarray:
    """3×3 K of a photo: the principal point at its centre ((W-1)/2, (H-1)/2 in SPEC pixels) and
    the focal length `focal_px`, else the one of a horizontal field of view `fov_deg`."""
    f = float(focal_px) if focal_px else focal_from_fov(math.radians(fov_deg), width)
    return intrinsics(f, width, height)


def crop_rotation(K: np.ndarray, centre_px) -> np.ndarray:
    """R_c: the photo camera's optical axis onto the ray through the crop centre (pixels)."""
    ray = np.linalg.solve(K, np.array([centre_px[0], centre_px[1], 1.0]))
    return rotation_onto(np.array([0.0, 0.0, 1.0]), ray)


def place_pose(pose_crop_frame: np.ndarray, joints_2d: np.ndarray, K: np.ndarray,
               crop_centre_px) -> dict:
    """The global pose of a root-relative pose (J, 3, metres) predicted in the crop's virtual
    camera frame, given its 2D joints in the photo (pixels) and the crop centre: steps 3-4 of
    the module doc. Returns joints_3d_rel (camera frame), root_cam (T), joints_3d_cam and the
    crop rotation."""
    r_c = crop_rotation(K, crop_centre_px)
    rel = np.asarray(pose_crop_frame, dtype=np.float64) @ r_c.T
    rel = rel - rel[ROOT]
    t = root_translation(rel, joints_2d, K)
    return {"joints_3d_rel": rel, "root_cam": t, "joints_3d_cam": rel + t, "crop_rotation": r_c}


def _bone_sum(pose: np.ndarray) -> float:
    pairs = bone_index_pairs(JOINTS)
    return float(np.linalg.norm(pose[pairs[:, 1]] - pose[pairs[:, 0]], axis=-1).sum())


def to_metres(pose_normalised: np.ndarray, scale: float, skeleton_length: float = 1.0) -> np.ndarray:
    """A predicted normalised pose (J, 3) -> root-relative metres: first rescaled so that its
    bones sum to `skeleton_length` exactly (the target space's definition, which the network
    only approximates; a network trained on 2D labels alone has no scale at all), then × scale."""
    p = np.asarray(pose_normalised, dtype=np.float64)
    p = p - p[ROOT]
    total = _bone_sum(p)
    if total <= 1e-9:
        raise InputError("the network predicted a collapsed pose (all joints at one point)")
    return p * (skeleton_length / total) * scale


def default_skeleton_scale(skeleton_length: float = 1.0) -> float:
    """Metres per normalised unit of the canonical CMU rest skeleton (synth.poses.ik)."""
    from synth.poses.ik import rest_joints
    return _bone_sum(rest_joints()) / float(skeleton_length)


# --- body fitting --------------------------------------------------------------------------------

# Bodies tried for the predicted skeleton: Anny's `gender` and `height` phenotypes on this grid, the
# others at 0.5. On rendered samples (own phenotypes unknown to the fit) the grid's best body
# leaves 6-16 mm mean joint residual; height alone (gender 0.5) left 6-45 mm.
FIT_GENDERS = (0.0, 0.5, 1.0)
FIT_HEIGHTS = (0.1, 0.3, 0.5, 0.7, 0.9, 1.0)


class BodyFitter:
    """Anny posed by the IK of 15 camera-frame joints and aligned rigidly onto them (module doc,
    step 5). Builds the body model once.

    The IK points each rig bone along its SPEC bone, but Anny's clavicles do not start at its
    neck joint, so its neck-to-shoulder segments come out ~20° and ~25 mm off. One corrective
    pass fixes most of it: the IK is run again on the targets moved by the first fit's residual
    (measured on rendered samples with their own phenotype: mean joint residual 24-35 mm after
    the first pass, 1.6-7 mm after the second; further passes gain nothing and may diverge, so the
    better of the two is kept). The body's gender and height are those of the FIT_GENDERS x
    FIT_HEIGHTS grid that fit best (~0.1 s a body)."""

    def __init__(self, phenotype: dict | None = None):
        from synth.body.anny_body import AnnyBody
        self.body = AnnyBody()
        self.phenotype = dict(phenotype) if phenotype else None

    def _pose_and_align(self, targets: np.ndarray, joints_cam: np.ndarray, phenotype: dict) -> dict:
        from synth.poses.ik import REST_DIRECTIONS, joint_rotations
        world = np.asarray(targets, dtype=np.float64) @ CAM_TO_ZUP.T
        world = world - world[ROOT]
        rotations = joint_rotations(world[None])[0]
        mesh = self.body.pose(rotations.astype(np.float32), REST_DIRECTIONS.astype(np.float32), phenotype)
        # Body (Z-up world, pelvis at 0) -> camera frame, then the rigid motion onto the joints.
        b_joints = mesh.joints.astype(np.float64) @ CAM_TO_ZUP
        b_verts = mesh.vertices.astype(np.float64) @ CAM_TO_ZUP
        r, t = rigid_align(b_joints, joints_cam)
        joints = b_joints @ r.T + t
        return {"vertices": b_verts @ r.T + t, "faces": mesh.faces, "joints": joints,
                "residual_m": np.linalg.norm(joints - joints_cam, axis=1), "phenotype": phenotype}

    def _fit_phenotype(self, joints_cam: np.ndarray, phenotype: dict) -> dict:
        first = self._pose_and_align(joints_cam, joints_cam, phenotype)
        second = self._pose_and_align(joints_cam + (joints_cam - first["joints"]), joints_cam, phenotype)
        return min((first, second), key=lambda f: float(f["residual_m"].mean()))

    def fit(self, joints_cam: np.ndarray) -> dict:
        """{vertices (V, 3) camera frame, faces, joints (15, 3) of the fitted body, residual_m
        (15,), phenotype}."""
        joints_cam = np.asarray(joints_cam, dtype=np.float64)
        if self.phenotype is not None:
            return self._fit_phenotype(joints_cam, self.phenotype)
        fits = [self._fit_phenotype(joints_cam, {**{k: 0.5 for k in self.body.phenotype_labels},
                                                 "gender": g, "height": h})
                for g in FIT_GENDERS for h in FIT_HEIGHTS]
        return min(fits, key=lambda f: float(f["residual_m"].mean()))


def obj_text(vertices: np.ndarray, faces: np.ndarray) -> str:
    lines = ["# synth predict: fitted Anny body, camera frame (OpenCV: x right, y down, z forward), metres"]
    lines += [f"v {x:.5f} {y:.5f} {z:.5f}" for x, y, z in vertices]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    return "\n".join(lines) + "\n"


def draw_mesh(rgb: np.ndarray, vertices: np.ndarray, faces: np.ndarray, K: np.ndarray,
              alpha: float = 0.6) -> np.ndarray:
    """The photo with the body's projected faces blended on it, far faces first, shaded by
    their facing to the camera."""
    v = np.asarray(vertices, dtype=np.float64)
    front = v[:, 2] > 1e-3
    uv = np.full((len(v), 2), np.nan)
    uv[front] = project(v[front], K)
    tri = v[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    centre = tri.mean(1)
    facing = -(normal * centre).sum(1) / (np.linalg.norm(normal, axis=1) * np.linalg.norm(centre, axis=1) + 1e-12)
    keep = front[faces].all(1)
    layer = rgb.copy()
    cover = np.zeros(rgb.shape[:2], np.uint8)
    shift = 4
    for f in np.flatnonzero(keep)[np.argsort(-centre[keep, 2])]:
        pts = np.round(uv[faces[f]] * (1 << shift)).astype(np.int32)
        shade = 0.35 + 0.65 * abs(float(facing[f]))
        colour = tuple(int(c * shade) for c in (190, 200, 255))
        cv2.fillConvexPoly(layer, pts, colour, cv2.LINE_AA, shift)
        cv2.fillConvexPoly(cover, pts, 255, cv2.LINE_8, shift)
    m = (cover > 0)[..., None]
    return np.where(m, (alpha * layer + (1 - alpha) * rgb).astype(np.uint8), rgb)


# --- inputs --------------------------------------------------------------------------------------

def list_photos(inputs: list[str]) -> list[Path]:
    """Photos named directly, and the photos of named folders (sorted); InputError for a name
    that is neither."""
    out: list[Path] = []
    for name in inputs:
        p = Path(name)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in PHOTO_SUFFIXES)
            if not found:
                raise InputError(f"{p}: no photos ({', '.join(PHOTO_SUFFIXES)}) in this folder")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"{p}: no such photo or folder")
    return out


def check_photo(path: Path) -> tuple[int, int]:
    """(width, height) of a photo after decoding it once (synth.image_files: size limits, and
    InputError naming the file for one that does not decode)."""
    verify_image(path, "photo")
    with open_image(path, "photo") as im:
        return im.size


def read_photo(path: Path) -> np.ndarray:
    bgr = cv2_imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"{path}: not a readable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_boxes(path: Path | None) -> dict[str, list]:
    if path is None:
        return {}
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable JSON boxes file ({e.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: boxes must be a mapping photo -> [[x0, y0, x1, y1], ...]")
    return data


def crop_boxes(photo: Path, size: tuple[int, int], boxes: dict,
               boxes_path: Path | None) -> list[tuple[list, tuple]]:
    """[(box [x0, y0, x1, y1], crop (cx, cy, side)), ...] of one photo of `size` (W, H): its
    --boxes entries (by path as given, else by file name), else the whole photo."""
    w, h = size
    entry = boxes.get(str(photo), boxes.get(photo.name))
    if entry is None:
        # Pixel centres are whole numbers: the photo spans [-0.5, w - 0.5).
        return [([0.0, 0.0, float(w), float(h)], ((w - 1) / 2.0, (h - 1) / 2.0, float(max(w, h))))]
    out = []
    for b in entry if isinstance(entry, list) else [None]:
        ok = isinstance(b, (list, tuple)) and len(b) == 4 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in b)
        if not ok:
            raise InputError(f"{boxes_path}: box {b!r} of {photo.name} is not [x0, y0, x1, y1]")
        x0, y0, x1, y1 = (float(v) for v in b)
        if not (0.0 <= x0 < x1 <= w and 0.0 <= y0 < y1 <= h):
            raise InputError(f"{boxes_path}: box {list(b)} lies outside {photo.name} ({w}x{h} pixels) "
                             "or is empty")
        # Corner coordinates (the photo spans [0, W] x [0, H]) -> SPEC pixel centres (- 0.5).
        out.append(([x0, y0, x1, y1], ((x0 + x1) / 2.0 - 0.5, (y0 + y1) / 2.0 - 0.5, max(x1 - x0, y1 - y0))))
    return out


# --- the command ---------------------------------------------------------------------------------

def load_run(run: Path, device: torch.device, config: Path | None = None,
             overrides: list[str] | tuple = ()) -> tuple[torch.nn.Module, torch.nn.Module | None, dict, Config]:
    """(model in eval mode, SPA head or None, checkpoint, configuration) of a run folder or
    checkpoint file; the configuration is the checkpoint's with the file `config` and the
    key=value `overrides` over it (e.g. data_dir=... where the photos are on this machine)."""
    from synth.train.checkpoint import CHECKPOINT_NAME, load_checkpoint
    from synth.train.evaluate import _spa_head
    from synth.train.models import build_model
    run = Path(run)
    path = run / CHECKPOINT_NAME if run.is_dir() else run
    if run.is_dir() and not path.is_file():
        raise InputError(f"{run}: no {CHECKPOINT_NAME} in this run folder (train it first)")
    ckpt = load_checkpoint(path)
    cfg = load_config(config, overrides, base=ckpt["config"])
    model = build_model(cfg.train, len(ckpt["joint_names"])).to(device)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise InputError(f"{path}: model weights do not fit the model its config describes "
                         f"({str(e).splitlines()[0]})") from None
    if list(ckpt["joint_names"]) != JOINTS:
        raise InputError(f"{path}: joint order {ckpt['joint_names']} is not the SPEC order")
    post = _spa_head(ckpt)
    return model.eval(), (post.to(device) if post is not None else None), ckpt, cfg


def draw_prediction(rgb: np.ndarray, joints_2d: np.ndarray, reprojected: np.ndarray | None) -> np.ndarray:
    from synth.gallery.page import SIDE_RGB, draw_skeleton
    from synth.gallery.page import BONES as DRAWN_BONES
    out = draw_skeleton(rgb, joints_2d, JOINTS)
    if reprojected is not None and np.isfinite(reprojected).all():
        idx = {n: i for i, n in enumerate(JOINTS)}
        for a, b, side in DRAWN_BONES:
            pa = tuple(int(round(v * 16)) for v in reprojected[idx[a]])
            pb = tuple(int(round(v * 16)) for v in reprojected[idx[b]])
            cv2.line(out, pa, pb, tuple(int(0.5 * c + 127) for c in SIDE_RGB[side]), 1, cv2.LINE_AA, 4)
    return out


def _jpeg(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    return buf.tobytes()


@torch.no_grad()
def predict_photos(run: Path, inputs: list[str], out: Path, boxes_path: Path | None = None,
                   focal_px: float | None = None, fov_deg: float = DEFAULT_FOV_DEG, mesh: bool = False,
                   device: str = "auto", config: Path | None = None, overrides: list[str] | tuple = ()) -> dict:
    """Runs the module doc's steps on every photo; writes PRED (`out`) and returns the JSON.
    `config` / `overrides` apply over the run's own configuration (see `load_run`)."""
    from synth.train.augment import apply_affine, box_to_crop_matrix, crop_and_resize
    from synth.train.checkpoint import resolve_device
    from synth.train.data import make_item
    from synth.train.models import crop_pixels_from_normalised
    if focal_px is not None and not (math.isfinite(focal_px) and focal_px > 0):
        raise InputError(f"--focal {focal_px}: must be a positive number of pixels")
    if not 1.0 <= fov_deg <= 179.0:
        raise InputError(f"--fov {fov_deg}: must be a field of view in degrees, 1 to 179")
    dev = resolve_device(device, "--device")
    model, post, ckpt, cfg = load_run(run, dev, config, overrides)
    tc = cfg.train
    size = tc.input_size
    scale = ckpt.get("skeleton_scale_m") or default_skeleton_scale(tc.skeleton_length)
    photos = list_photos(inputs)
    boxes = read_boxes(boxes_path)
    # Every photo and box checked before any output; the photos are decoded one at a time below.
    crops = {p: crop_boxes(p, check_photo(p), boxes, boxes_path) for p in photos}
    fitter = BodyFitter() if mesh else None
    out = Path(out)
    (out / "overlays").mkdir(parents=True, exist_ok=True)
    if mesh:
        (out / "meshes").mkdir(exist_ok=True)
        (out / "mesh_overlays").mkdir(exist_ok=True)
    stems: dict[str, int] = {}
    result = {"run": str(run), "epoch": int(ckpt.get("epoch", 0)), "joints": JOINTS,
              "skeleton_scale_m": scale, "skeleton_scale_source": "checkpoint" if ckpt.get("skeleton_scale_m")
              else "canonical CMU rest skeleton", "intrinsics": (f"focal {focal_px} px" if focal_px else
                                                                 f"horizontal field of view {fov_deg} deg"),
              "images": []}
    for path in photos:
        rgb = read_photo(path)
        h, w = rgb.shape[:2]
        K = photo_intrinsics(w, h, focal_px, fov_deg)
        stem = path.stem if path.stem not in stems else f"{path.stem}_{stems[path.stem]}"
        stems[path.stem] = stems.get(path.stem, 0) + 1
        people = []
        overlay = rgb
        mesh_overlay = rgb
        for k, (box, crop) in enumerate(crops[path]):
            item = make_item(crop_and_resize(rgb, crop, size), np.zeros((15, 3)), False, 1.0,
                             np.zeros((15, 2)), np.zeros(15), 1, stem)
            res = model.predict(item["image"][None].to(dev))
            j3d = res.joints_3d.float()
            j3d = (post(j3d) if post is not None else j3d)[0].cpu().numpy().astype(np.float64)
            j2d_crop = crop_pixels_from_normalised(res.joints_2d.float(), size)[0].cpu().numpy().astype(np.float64)
            to_crop = np.vstack([box_to_crop_matrix(crop, size), [0.0, 0.0, 1.0]])
            j2d = apply_affine(np.linalg.inv(to_crop)[:2], j2d_crop)
            placed = place_pose(to_metres(j3d, scale, tc.skeleton_length), j2d, K, crop[:2])
            reproj = project(placed["joints_3d_cam"], K) if placed["root_cam"][2] > 0 else None
            person = {"box": [float(v) for v in box], "crop": [float(v) for v in crop],
                      "joints_2d": j2d.round(3).tolist(), "joints_3d_rel": placed["joints_3d_rel"].round(6).tolist(),
                      "joints_3d_cam": placed["joints_3d_cam"].round(6).tolist(),
                      "root_cam": placed["root_cam"].round(6).tolist(),
                      "reprojection_error_px": (float(np.linalg.norm(reproj - j2d, axis=1).mean())
                                                if reproj is not None else None)}
            overlay = draw_prediction(overlay, j2d, reproj)
            if fitter is not None:
                if placed["root_cam"][2] <= 0:
                    print(f"synth predict: warning: {path}: person {k} placed behind the camera; no mesh",
                          file=sys.stderr)
                else:
                    body = fitter.fit(placed["joints_3d_cam"])
                    name = f"meshes/{stem}_{k}.obj"
                    atomic_write_text(out / name, obj_text(body["vertices"], body["faces"]))
                    person["mesh"] = name
                    person["mesh_joint_residual_mm"] = float(1000 * body["residual_m"].mean())
                    mesh_overlay = draw_mesh(mesh_overlay, body["vertices"], body["faces"], K)
            people.append(person)
        atomic_write_bytes(out / "overlays" / f"{stem}.jpg", _jpeg(overlay))
        entry = {"image": str(path), "width": w, "height": h, "K": K.round(4).tolist(),
                 "overlay": f"overlays/{stem}.jpg", "people": people}
        if fitter is not None:
            atomic_write_bytes(out / "mesh_overlays" / f"{stem}.jpg", _jpeg(mesh_overlay))
            entry["mesh_overlay"] = f"mesh_overlays/{stem}.jpg"
        result["images"].append(entry)
    atomic_write_json(out / "predictions.json", result)
    return result
