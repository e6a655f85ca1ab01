"""Akhter & Black's pose-conditioned joint-angle limits (CVPR 2015), vectorised over poses.

Data: `jointAngleModel_v2.mat` and `staticPose.mat` of ../shared/data/akhter_black_joint_limits
(see its SOURCE.md). What is implemented (the paper's test, as the authors' released model
files define it):

1. Their 17-point skeleton (1 pelvis, 2 neck, 3-5 and 6-8 the two arms: shoulder, elbow, wrist,
   9 head, 10-13 and 14-17 the two legs: hip, knee, ankle, foot) and its 16 bones `edges`
   (parent -> child). A bone's vector is parent minus child (the convention of their files).
   The SPEC 15 joints fill points 1-12 and 14-16; the feet (13, 17) are absent, so the two
   foot bones are not tested. Nothing else needs them.
2. Global to local coordinates. Bones attached to the torso (upper arms, head, thighs) are
   expressed in a torso frame: u = across the shoulders (arms, head) or across the hips
   (thighs), v = the torso bone (pelvis - neck) made orthogonal to u, w = u x v. A bone below
   (forearm, shin) is expressed in the frame of its parent bone: u = the parent bone, v = the
   static reference vector `a` (staticPose.mat), carried by the frame the parent was expressed
   in, crossed with u (`di` of the parent bone instead when u is parallel to it), w = u x v.
3. Torso-attached bones (upper arms, head, thighs): the bone's azimuth (atan2(y, x)) and
   elevation (atan2(z, |xy|)) in its local frame, in `jmp` = 3 degree bins, must fall on an
   occupied cell of the bone's `angleSprd` grid (121 x 61).
4. Lower bones (forearms, shins), conditioned on the parent's bin: the unit bone must lie on the
   inner side of the half-space `sepPlane` (4-vector; n . x + d <= 0) of the parent's bin, and
   its coordinates in the plane (basis from the plane normal and `E2`, Gram-Schmidt) inside
   the box `bounds` (u-min, u-max, v-min, v-max). A parent bin with no data (NaN plane) rejects.

Doubts, and how they were settled: the model files do not say which arm/leg chain is left and
the handedness of their coordinates; both are equivalent to a choice of (chain A = left or
right) x (mirror or not). We measured the plausible rate of real CMU MoCap poses for all four
and fixed the best (module constants `CHAIN_A_SIDE`, `MIRROR`). On the mirror's whole thinned
CMU pool (5138 poses, 6 subjects) the share judged plausible is 87.7% with chain A = the
person's RIGHT in mirrored coordinates, 84.2% with chain A = LEFT unmirrored, and 0.08% under
either inconsistent choice (an arm bent the wrong way everywhere); the first is used. That
the two consistent choices differ only by 3.5 points is the weak part of this identification
(a third-party port of the authors' checker made the same choice: right chain first, one axis
flipped).
The v2 file's 11th `angleSprd` cell (a 121x61x121x61 grid for the second foot) and the
`boundries` polygons (used by the authors to project invalid poses to valid ones) are not used.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
from scipy.io.matlab import MatReadError

from synth.io_utils import InputError
from synth.scene import JOINTS

MODEL_FILE = "jointAngleModel_v2.mat"
STATIC_FILE = "staticPose.mat"
# Chain A of their skeleton (points 3-5 arm, 10-13 leg) is the person's right, in coordinates mirrored
# (x -> -x) relative to synth's; measured on CMU poses (see above).
CHAIN_A_SIDE = "right"
MIRROR = True

# The tested bones: name -> (model cell index (0-based `chlds` position), bone edge (0-based)).
# Torso-attached bones carry an occupancy grid; lower bones a parent-conditioned plane + box.
TORSO_CHILDREN = {"upper_arm_a": 0, "upper_arm_b": 2, "head": 4, "thigh_a": 5, "thigh_b": 8}
LOWER_BONES = {"forearm_a": (1, "upper_arm_a"), "forearm_b": (3, "upper_arm_b"),
               "shin_a": (6, "thigh_a"), "shin_b": (9, "thigh_b")}
BONE_NAMES = ["upper_arm_a", "forearm_a", "upper_arm_b", "forearm_b", "head", "thigh_a", "shin_a",
              "thigh_b", "shin_b"]
# (parent point, child point) of each tested bone and of the torso / shoulder / hip vectors, in
# their 1-based point numbers.
_EDGES = {"torso": (1, 2), "upper_arm_a": (3, 4), "forearm_a": (4, 5), "upper_arm_b": (6, 7),
          "forearm_b": (7, 8), "head": (2, 9), "thigh_a": (10, 11), "shin_a": (11, 12),
          "thigh_b": (14, 15), "shin_b": (15, 16)}
# their edge number (1-based) of each parent bone, for `di`
_DI_EDGE = {"upper_arm_a": 3, "upper_arm_b": 6, "thigh_a": 10, "thigh_b": 14}


def point_joints(chain_a_side: str) -> dict[int, str]:
    """Their point number (1-based) -> SPEC joint name, for chain A on the given side."""
    a, b = ("left", "right") if chain_a_side == "left" else ("right", "left")
    return {1: "pelvis", 2: "neck", 3: f"{a}_shoulder", 4: f"{a}_elbow", 5: f"{a}_wrist",
            6: f"{b}_shoulder", 7: f"{b}_elbow", 8: f"{b}_wrist", 9: "head_top",
            10: f"{a}_hip", 11: f"{a}_knee", 12: f"{a}_ankle", 14: f"{b}_hip", 15: f"{b}_knee",
            16: f"{b}_ankle"}


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _basis(u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Gram-Schmidt of the columns [u, v, w] (..., 3) -> (..., 3, 3) with those columns."""
    e1 = _unit(u)
    e2 = _unit(v - np.sum(v * e1, -1, keepdims=True) * e1)
    e3 = w - np.sum(w * e1, -1, keepdims=True) * e1 - np.sum(w * e2, -1, keepdims=True) * e2
    return np.stack([e1, e2, _unit(e3)], axis=-1)


def _local(R: np.ndarray, x: np.ndarray) -> np.ndarray:
    """R^T x for (N, 3, 3), (N, 3)."""
    return np.einsum("nji,nj->ni", R, x)


class JointAngleLimits:
    """The pose-conditioned joint-angle limit model; `.check(joints)` flags implausible bones."""

    def __init__(self, model: dict, static: dict, chain_a_side: str = CHAIN_A_SIDE, mirror: bool = MIRROR):
        if chain_a_side not in ("left", "right"):
            raise ValueError(f"chain_a_side must be left or right, got {chain_a_side!r}")
        self.jmp = float(np.asarray(model["jmp"]).item())
        self.a = np.asarray(static["a"], dtype=np.float64).reshape(3)
        self.di = np.asarray(static["di"], dtype=np.float64)          # (3, 16)
        cells = {k: np.asarray(model[k]).ravel() for k in ("angleSprd", "sepPlane", "E2", "bounds")}
        self.spread = {name: cells["angleSprd"][i].astype(bool) for name, i in TORSO_CHILDREN.items()}
        self.plane = {name: cells["sepPlane"][i].astype(np.float64) for name, (i, _) in LOWER_BONES.items()}
        self.e2 = {name: cells["E2"][i].astype(np.float64) for name, (i, _) in LOWER_BONES.items()}
        self.bounds = {name: cells["bounds"][i].astype(np.float64) for name, (i, _) in LOWER_BONES.items()}
        self.n_theta, self.n_phi = self.spread["upper_arm_a"].shape
        self.chain_a_side = chain_a_side
        self.mirror = bool(mirror)
        names = point_joints(chain_a_side)
        self._joint = {p: JOINTS.index(j) for p, j in names.items()}

    @classmethod
    def from_dir(cls, folder: str | Path, **kwargs) -> "JointAngleLimits":
        """Load the model files from `folder` (InputError naming the file when missing or bad)."""
        folder = Path(folder)
        model = _load_mat(folder / MODEL_FILE, ("jmp", "angleSprd", "sepPlane", "E2", "bounds"))
        static = _load_mat(folder / STATIC_FILE, ("a", "di"))
        path = folder / MODEL_FILE
        try:
            obj = cls(model, static, **kwargs)
        except (IndexError, ValueError, TypeError, AttributeError) as e:
            raise InputError(f"{path}: unexpected model layout ({e})") from None
        for name, grid in obj.spread.items():
            if grid.ndim != 2 or grid.shape != (int(round(360 / obj.jmp)) + 1, int(round(180 / obj.jmp)) + 1):
                raise InputError(f"{path}: angleSprd grid of {name} has shape {grid.shape}, "
                                 f"expected 360/jmp+1 x 180/jmp+1 for jmp={obj.jmp}")
        for name in LOWER_BONES:
            if obj.plane[name].shape != (obj.n_theta, obj.n_phi, 4) or obj.bounds[name].shape != (
                    obj.n_theta, obj.n_phi, 4) or obj.e2[name].shape != (obj.n_theta, obj.n_phi, 3):
                raise InputError(f"{path}: sepPlane/E2/bounds of {name} do not match the {obj.n_theta}x"
                                 f"{obj.n_phi} grid")
        if obj.di.shape != (3, 16):
            raise InputError(f"{folder / STATIC_FILE}: 'di' has shape {obj.di.shape}, expected (3, 16)")
        return obj

    def _bins(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        theta = np.degrees(np.arctan2(x[:, 1], x[:, 0]))
        phi = np.degrees(np.arctan2(x[:, 2], np.hypot(x[:, 0], x[:, 1])))
        t = np.clip(np.floor((theta + 180.0) / self.jmp).astype(np.int64), 0, self.n_theta - 1)
        p = np.clip(np.floor((phi + 90.0) / self.jmp).astype(np.int64), 0, self.n_phi - 1)
        return t, p

    def bone_flags(self, joints_3d: np.ndarray) -> dict[str, np.ndarray]:
        """(N, 15, 3) SPEC joints -> {bone name: (N,) bool plausible} for `BONE_NAMES`."""
        J = np.asarray(joints_3d, dtype=np.float64)
        if self.mirror:
            J = J * np.array([-1.0, 1.0, 1.0])

        def vec(bone):   # parent minus child, as in their files
            p, c = _EDGES[bone]
            return J[:, self._joint[p]] - J[:, self._joint[c]]

        torso = vec("torso")
        pt = self._joint
        shoulders = J[:, pt[3]] - J[:, pt[6]]
        hips = J[:, pt[10]] - J[:, pt[14]]
        frames = {"shoulder": _basis(shoulders, torso, np.cross(_unit(shoulders), _unit(torso))),
                  "hip": _basis(hips, torso, np.cross(_unit(hips), _unit(torso)))}
        out: dict[str, np.ndarray] = {}
        bins: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        local_frame: dict[str, np.ndarray] = {}
        for bone in TORSO_CHILDREN:
            R = frames["hip" if bone.startswith("thigh") else "shoulder"]
            local_frame[bone] = R
            t, p = self._bins(_local(R, vec(bone)))
            bins[bone] = (t, p)
            out[bone] = self.spread[bone][t, p]
        for bone, (_, parent) in LOWER_BONES.items():
            R_prev = local_frame[parent]
            u = _unit(vec(parent))
            ra = R_prev @ self.a
            parallel = (np.linalg.norm(u - ra, axis=-1) < 1e-4) | (np.linalg.norm(u + ra, axis=-1) < 1e-4)
            v = np.cross(ra, u)
            if parallel.any():
                rdi = R_prev[parallel] @ self.di[:, _DI_EDGE[parent] - 1]
                v[parallel] = np.cross(u[parallel], rdi)
            v = _unit(v)
            R = _basis(u, v, np.cross(u, v))
            child = _unit(_local(R, vec(bone)))
            t, p = bins[parent]
            plane = self.plane[bone][t, p]
            plane = plane / np.linalg.norm(plane[:, :3], axis=-1, keepdims=True)
            ok = np.all(np.isfinite(plane), axis=-1)
            plane = np.where(ok[:, None], plane, 0.0)
            ok &= np.sum(plane[:, :3] * child, axis=-1) + plane[:, 3] <= 0
            e1 = plane[:, :3]
            e2 = np.nan_to_num(self.e2[bone][t, p])
            T = _basis(e1, e2, np.cross(e1, e2))
            uv = np.stack([np.sum(T[:, :, 1] * child, -1), np.sum(T[:, :, 2] * child, -1)], axis=-1)
            bnd = self.bounds[bone][t, p]
            inside = (uv[:, 0] >= bnd[:, 0]) & (uv[:, 0] <= bnd[:, 1]) & (uv[:, 1] >= bnd[:, 2]) & (
                uv[:, 1] <= bnd[:, 3])
            out[bone] = ok & inside
        return {name: out[name] for name in BONE_NAMES}

    def check(self, joints_3d: np.ndarray) -> np.ndarray:
        """(N, 15, 3) -> (N,) bool: every tested bone within its limits."""
        flags = self.bone_flags(joints_3d)
        return np.logical_and.reduce(list(flags.values()))


def _load_mat(path: Path, keys: tuple[str, ...]) -> dict:
    if not path.is_file():
        raise InputError(f"{path}: joint-angle limit file not found (fetch the akhter_black_joint_limits asset set)")
    try:
        data = scipy.io.loadmat(path)
    except (MatReadError, ValueError, OSError, TypeError, NotImplementedError, IndexError, KeyError, EOFError) as e:
        # scipy's reader fails on garbage with many exception types
        raise InputError(f"{path}: not a readable MATLAB file ({e.__class__.__name__})") from None
    for k in keys:
        if k not in data:
            raise InputError(f"{path}: missing variable '{k}'")
    return data


def plausible_rates(limits_dir: str | Path, joints_3d: np.ndarray) -> dict[str, float]:
    """Share of `joints_3d` judged plausible under each (chain A side, mirror) choice."""
    out = {}
    for side in ("left", "right"):
        for mirror in (False, True):
            lim = JointAngleLimits.from_dir(limits_dir, chain_a_side=side, mirror=mirror)
            out[f"chain_a={side},mirror={mirror}"] = float(lim.check(joints_3d).mean())
    return out
