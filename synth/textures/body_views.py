"""The body side of garment transfer: candidate poses, their frontal (and back) orthographic
projections, and the garment regions' silhouettes in them (Chen et al. 2016, Sec. 3.2).

A candidate pose is the body's own rest pose (Anny's A-pose) with the arms swung to a given angle
from the torso (elbows straight), or the legs together / apart. Poses are PoseSets whose rest
directions are the neutral body's own bone directions, so retargeting adds no swing: each
rotation is exactly the world delta applied to that bone (synth.body.retarget).

A view is the posed mesh projected orthographically (frontal: seen from -Y, the person's left on
the image right; back: seen from +Y) and rasterised with a numpy z-buffer: for every pixel the
visible face (-1 = background), its barycentric coordinates and depth. From the part of each face
and its rest height, the pixel belongs to the upper garment region (torso above the waist minus an
overlap, and the arms) and/or the lower one (torso below the waist plus the overlap, and the legs);
the two overlap around the waist so that each garment's contour is matched to a silhouette that
reaches under the other one. Pure numpy: no bpy.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from synth.body.retarget import minimal_rotation
from synth.poses.kinematics import BONE_NAMES
from synth.poses.posefile import PoseSet
from synth.scene import JOINTS, PART_IDS

# Bones that move with each limb (the hand and finger bones keep their rest angle to the forearm).
ARM_CHAIN = {"Left": ["LeftArm", "LeftForeArm", "LeftHand", "LThumb", "LeftFingerBase", "LeftHandFinger1"],
             "Right": ["RightArm", "RightForeArm", "RightHand", "RThumb", "RightFingerBase", "RightHandFinger1"]}
LEG_CHAIN = {"Left": ["LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase"],
             "Right": ["RightUpLeg", "RightLeg", "RightFoot", "RightToeBase"]}
UPPER_LONG = ["torso", "right_upper_arm", "right_forearm", "left_upper_arm", "left_forearm"]
UPPER_SHORT = ["torso", "right_upper_arm", "left_upper_arm"]
LOWER_LONG = ["torso", "right_thigh", "right_lower_leg", "left_thigh", "left_lower_leg"]
LOWER_SHORT = ["torso", "right_thigh", "left_thigh"]


@dataclass
class Candidate:
    """One candidate pose for one garment region."""
    name: str           # e.g. "arms_45" / "legs_apart_12"
    region: str         # upper | lower
    angle_deg: float    # arm angle from the torso / each leg's angle from the vertical


def candidate_list(arm_angles_deg, leg_angles_deg) -> list[Candidate]:
    out = [Candidate(f"arms_{a:g}", "upper", float(a)) for a in arm_angles_deg]
    out += [Candidate(f"legs_{a:g}", "lower", float(a)) for a in leg_angles_deg]
    return out


def neutral_rest_directions(body) -> np.ndarray:
    """(31, 3) unit rest directions of the neutral Anny body's bones (BONE_NAMES order)."""
    rest = body.rest({k: 0.5 for k in body.phenotype_labels})
    heads = rest["rest_bone_heads"][0].numpy().astype(np.float64)
    tails = rest["rest_bone_tails"][0].numpy().astype(np.float64)
    d = tails - heads
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def candidate_poses(candidates: list[Candidate], rest_dirs: np.ndarray) -> PoseSet:
    """A PoseSet with one pose per candidate: the rest pose with straightened, swung limbs.

    Arms: the upper arm and forearm point down-and-out at `angle` from the downward vertical in
    the frontal (XZ) plane; legs: each leg `angle` out from the vertical. The limb's distal bones
    (hand, fingers / foot, toes) turn with the forearm / lower leg, keeping their rest angle.
    """
    n = len(candidates)
    B = len(BONE_NAMES)
    rot = np.tile(np.eye(3), (n, B, 1, 1))
    for i, c in enumerate(candidates):
        a = np.radians(c.angle_deg)
        chains = ARM_CHAIN if c.region == "upper" else LEG_CHAIN
        for side, chain in chains.items():
            sign = 1.0 if side == "Left" else -1.0       # the person's left is +X
            target = np.array([sign * np.sin(a), 0.0, -np.cos(a)])
            idx = [BONE_NAMES.index(b) for b in chain]
            # upper segment and the straightened lower segment both point along the target
            rot[i, idx[0]] = minimal_rotation(rest_dirs[idx[0]], target)
            g_lower = minimal_rotation(rest_dirs[idx[1]], target)
            for b in idx[1:]:
                rot[i, b] = g_lower
    # joints_3d: BodyViews fills them in from the posed neutral body
    return PoseSet(joints_3d=np.zeros((n, len(JOINTS), 3)), rotations=rot,
                   rest_directions=np.broadcast_to(rest_dirs, (n, B, 3)), facing_yaw=np.zeros(n),
                   source=np.array(["candidate"] * n), pose_id=np.array([f"candidate/{c.name}" for c in candidates]),
                   subject=np.array(["anny_neutral"] * n))


def rasterize(tri_px: np.ndarray, tri_depth: np.ndarray | None, height: int, width: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Z-buffer rasterisation of triangles given in pixel coordinates (pixel centres at integers).

    tri_px (F, 3, 2) x, y; tri_depth (F, 3) (smaller = nearer) or None (any covering face wins).
    Returns face index (H, W) int32 (-1 = none), barycentrics (H, W, 3) float32, depth (H, W)
    float32 (inf = none). Vectorised over all faces: each face's bounding box of pixel centres is
    enumerated up to the largest box size, in blocks of faces of similar size.
    """
    face = np.full(height * width, -1, np.int32)
    bary = np.zeros((height * width, 3), np.float32)
    depth = np.full(height * width, np.inf, np.float32)
    # the pixel centres a triangle may contain: ceil(min) .. floor(max), clipped to the image
    lo = np.maximum(np.ceil(tri_px.min(1) - 1e-6).astype(np.int64), 0)
    hi = np.floor(tri_px.max(1) + 1e-6).astype(np.int64)
    hi[:, 0] = np.minimum(hi[:, 0], width - 1)
    hi[:, 1] = np.minimum(hi[:, 1], height - 1)
    ext = np.maximum(hi - lo + 1, 0).max(1)
    ok = (ext > 0) & (hi[:, 0] >= lo[:, 0]) & (hi[:, 1] >= lo[:, 1])
    cand_pix, cand_face, cand_bary, cand_depth = [], [], [], []
    for size in np.unique(ext[ok]):
        fi = np.nonzero(ok & (ext == size))[0]
        oy, ox = np.mgrid[0:size, 0:size]
        px = lo[fi, 0, None] + ox.ravel()[None]              # (f, size^2)
        py = lo[fi, 1, None] + oy.ravel()[None]
        a, b, c = tri_px[fi, 0], tri_px[fi, 1], tri_px[fi, 2]
        v0, v1 = b - a, c - a
        den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
        good = np.abs(den) > 1e-12
        den = np.where(good, den, 1.0)
        dx = px - a[:, 0, None]
        dy = py - a[:, 1, None]
        w1 = (dx * v1[:, 1, None] - v1[:, 0, None] * dy) / den[:, None]
        w2 = (v0[:, 0, None] * dy - dx * v0[:, 1, None]) / den[:, None]
        w0 = 1.0 - w1 - w2
        eps = -1e-6
        inside = (w0 >= eps) & (w1 >= eps) & (w2 >= eps) & good[:, None] & (px <= hi[fi, 0, None]) \
            & (py <= hi[fi, 1, None])
        if not inside.any():
            continue
        r, k = np.nonzero(inside)
        cand_pix.append(py[r, k] * width + px[r, k])
        cand_face.append(fi[r])
        wb = np.stack([w0[r, k], w1[r, k], w2[r, k]], 1)
        cand_bary.append(wb)
        cand_depth.append((wb * tri_depth[fi[r]]).sum(1) if tri_depth is not None else np.zeros(len(r)))
    if not cand_pix:
        return face.reshape(height, width), bary.reshape(height, width, 3), depth.reshape(height, width)
    pix = np.concatenate(cand_pix)
    fc = np.concatenate(cand_face)
    wb = np.concatenate(cand_bary)
    dp = np.concatenate(cand_depth)
    order = np.lexsort((dp, pix))                # per pixel, nearest first
    pix, fc, wb, dp = pix[order], fc[order], wb[order], dp[order]
    first = np.ones(len(pix), bool)
    first[1:] = pix[1:] != pix[:-1]
    face[pix[first]] = fc[first]
    bary[pix[first]] = wb[first]
    depth[pix[first]] = dp[first]
    return face.reshape(height, width), bary.reshape(height, width, 3), depth.reshape(height, width)


@dataclass
class ViewFrame:
    """The orthographic frame shared by all views of one candidate set: metres -> pixels."""
    scale: float        # pixels per metre
    x0: float           # world X at pixel column 0 (front view)
    z0: float           # world Z at pixel row 0
    height: int
    width: int

    def front_px(self, X: np.ndarray) -> np.ndarray:
        """World points (..., 3) -> front-view pixel (x, y): seen from -Y, the person's left on the right."""
        return np.stack([(X[..., 0] - self.x0) * self.scale, (self.z0 - X[..., 2]) * self.scale], -1)

    def back_px(self, X: np.ndarray) -> np.ndarray:
        """Seen from +Y: the front image mirrored left-right."""
        p = self.front_px(X)
        p[..., 0] = self.width - 1 - p[..., 0]
        return p


@dataclass
class BodyView:
    """One candidate pose seen from the front and the back."""
    candidate: Candidate
    vertices: np.ndarray                 # (V, 3) posed vertices (neutral body)
    face_front: np.ndarray               # (H, W) int32 visible face, -1 = background
    bary_front: np.ndarray               # (H, W, 3)
    depth_front: np.ndarray              # (H, W) metres along +Y (nearer = smaller)
    face_back: np.ndarray
    bary_back: np.ndarray
    depth_back: np.ndarray               # metres along -Y
    region_masks: dict = field(default_factory=dict)   # "upper_long" etc. -> (H, W) bool, front view

    def uv_at(self, face_map: np.ndarray, bary_map: np.ndarray, face_uvs: np.ndarray) -> np.ndarray:
        """(H, W, 2) texture coordinate of every pixel (NaN on background)."""
        out = np.full(face_map.shape + (2,), np.nan, np.float32)
        m = face_map >= 0
        out[m] = np.einsum("nk,nkc->nc", bary_map[m], face_uvs[face_map[m]])
        return out


class BodyViews:
    """The neutral body in every candidate pose, projected and rasterised once.

    `regions[name]` is a boolean per face for each garment region variant: upper_long (torso above
    the waist - overlap, upper arms, forearms), upper_short (no forearms), lower_long (torso below
    the waist + overlap, thighs, lower legs), lower_short (no lower legs).
    """

    def __init__(self, body, candidates: list[Candidate], size: int = 384, overlap_m: float = 0.06):
        self.body = body
        self.candidates = candidates
        self.rest_dirs = neutral_rest_directions(body)
        self.rest_vertices, self.waist_z = body.neutral_rest()
        self.rest_vertices = np.asarray(self.rest_vertices, np.float64)
        self.faces = body.faces
        self.face_uvs = body.face_uvs
        self.face_parts = body.face_parts
        self.poses = candidate_poses(candidates, self.rest_dirs)
        phen = {k: 0.5 for k in body.phenotype_labels}
        meshes = [body.pose(self.poses.rotations[i], self.poses.rest_directions[i], phen)
                  for i in range(len(candidates))]
        self.poses.joints_3d[:] = np.stack([m.joints for m in meshes])
        allv = np.concatenate([m.vertices for m in meshes])
        lo, hi = allv.min(0), allv.max(0)
        margin = 0.04
        span = max(hi[0] - lo[0], hi[2] - lo[2]) + 2 * margin
        scale = size / span
        width = int(np.ceil((hi[0] - lo[0] + 2 * margin) * scale))
        self.frame = ViewFrame(scale=scale, x0=float(lo[0] - margin), z0=float(hi[2] + margin),
                               height=size, width=width)
        self.regions = self._face_regions(overlap_m)
        self.views = [self._view(c, m.vertices.astype(np.float64)) for c, m in zip(candidates, meshes)]

    def _face_regions(self, overlap_m: float) -> dict[str, np.ndarray]:
        centres_z = self.rest_vertices[self.faces].mean(1)[:, 2]
        names = np.array([{v: k for k, v in PART_IDS.items()}[int(p)] for p in self.face_parts])
        torso = names == "torso"
        out = {}
        for key, parts in (("upper_long", UPPER_LONG), ("upper_short", UPPER_SHORT),
                           ("lower_long", LOWER_LONG), ("lower_short", LOWER_SHORT)):
            m = np.isin(names, [p for p in parts if p != "torso"])
            if key.startswith("upper"):
                m |= torso & (centres_z > self.waist_z - overlap_m)
            else:
                m |= torso & (centres_z <= self.waist_z + overlap_m)
            out[key] = m
        return out

    def _view(self, c: Candidate, verts: np.ndarray) -> BodyView:
        fr = self.frame
        tri = verts[self.faces]                                 # (F, 3, 3)
        ff, bf, df = rasterize(fr.front_px(tri), tri[..., 1], fr.height, fr.width)
        fb, bb, db = rasterize(fr.back_px(tri), -tri[..., 1], fr.height, fr.width)
        # A region's silhouette is its own faces' projection, whatever lies in front of them (a hand
        # over the thigh does not cut a hole in the trousers' outline).
        px = np.round(fr.front_px(tri) * 16).astype(np.int32)   # 4 fractional bits
        masks = {}
        for key, fm in self.regions.items():
            img = np.zeros((fr.height, fr.width), np.uint8)
            cv2.fillPoly(img, list(px[fm]), 1, lineType=cv2.LINE_8, shift=4)
            masks[key] = img.astype(bool)
        return BodyView(c, verts, ff, bf, df, fb, bb, db, masks)

    def for_region(self, region: str) -> list[BodyView]:
        return [v for v in self.views if v.candidate.region == region]
