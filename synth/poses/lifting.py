"""Lifting LSP's 2D poses to 3D: the stereo-inspired label generator of Wang et al. (2019).

Pipeline (config block `poses.lifting`):

1. Training pairs. Every MoCap pose of the non-held-out subjects (and its left/right mirror image)
   is seen through `cameras_per_pose` random pinhole cameras: yaw all around the person, elevation,
   distance and focal length drawn from the config, the camera aimed at the pelvis plus a jitter,
   a small roll. A second camera is the first shifted `baseline_m` along its own x axis.
2. The 2D input is made LSP-like: LSP has no pelvis, its 15th joint is the mid-point of the hips
   (`synth.poses.lsp`), so the input's pelvis is the mid-hips here too (the MoCap root, which the
   3D output keeps, lies ~10 cm above it). The input is centred on that point and divided by its
   RMS joint distance to it, which removes the image position and the scale (distance x focal).
3. Networks (`lifting_nets`): view synthesis (view 1 -> view 2, as a disparity in view 1's
   normalised units) and reconstruction (both views -> root-relative 3D pose, camera frame, metres).
4. Geometric search (Wang et al.'s): given the camera intrinsics K, the root's depth Z is stepped
   over `search_range_m` in `search_step_m` (1 mm) steps; for each candidate every annotated joint
   j is placed ON ITS RAY through its input pixel at depth Z + d_j (d_j the network's root-relative
   depth), so the pose re-projects onto the input 2D pose with zero error. The candidate kept is the
   one whose bone lengths agree best with the network's bone lengths (sum of squared differences
   over the 13 bones of `SEARCH_BONES`; each squared length is a quadratic in Z, so every candidate
   is scored in one vectorised pass). The pelvis (not annotated in LSP) is then put at the network's
   offset from the placed hips. Output: root-relative 3D poses, camera frame.
5. Evaluation on the held-out subjects (`holdout_subjects`, whole subjects never trained on):
   MPJPE / PA-MPJPE (mm, root-relative, the true skeleton size is NOT given) of the network alone
   and after the search, on clean 2D input and with `eval_noise_px` Gaussian noise per coordinate.
6. `lift_lsp`: all LSP training poses, with K assumed (LSP images are crops rescaled so the person
   is ~150 px tall; their focal length is unknown, so `lsp_focal_px`, default 500 px, with the
   principal point at the image centre; a 1.7 m person 150 px tall is then ~5.7 m away, mid-range of
   the training distances). The camera is assumed level: camera (x right, y down, z forward) ->
   world (x, z, -y), Z up, root-relative. Occluded LSP joints are lifted as well. Poses are
   converted with `poseset_from_joints` and flagged by `PoseValidator` (Akhter & Black limits,
   bone proportions, collisions) on the pose the body will take: the lifted bone directions on the
   canonical rest skeleton (`rest_proportioned`), since LSP's joint definitions (a higher neck) and
   its pixel-level annotation noise make the raw joints fail the MoCap bone-share/symmetry tests
   almost always; the report gives both rates.

Everything is cached under `cache_dir/lifter/` (atomic writes): `lifter-<key>.pt` (both networks,
keyed by the training config and the MoCap files), `lsp-<key>.npz` (lifted joints) and
`report-<key>.json`, plus `report.json`, a copy of the latest report (for the gallery page).
"""
from __future__ import annotations

import hashlib
import io
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from synth.config import ConfigError, LiftingConfig, PosesConfig
from synth.geometry import JOINT_INDEX, intrinsics, mpjpe, pa_mpjpe, project
from synth.io_utils import InputError, atomic_write_bytes, atomic_write_json
from synth.poses.ik import poseset_from_joints, rest_joints
from synth.poses.lsp import load_lsp
from synth.poses.sampling import _pool_key as pool_files_key
from synth.poses.sampling import _subject_id, find_clips, load_pool
from synth.poses.validity import PoseValidator
from synth.rng import Stream, stream, torch_seed
from synth.scene import BONES, JOINTS

# Bump when the networks, the training data or the lifted output would change for the same config.
LIFTER_VERSION = 2
# Bump when the held-out evaluation changes (re-evaluates cached networks, does not retrain them).
EVAL_VERSION = 4

J = JOINT_INDEX
PELVIS, R_HIP, L_HIP = J["pelvis"], J["right_hip"], J["left_hip"]
ANNOTATED = [i for i in range(len(JOINTS)) if i != PELVIS]   # the 14 joints LSP annotates
# Left <-> right (for the mirror augmentation).
MIRROR_PERM = [J[n.replace("left_", "#").replace("right_", "left_").replace("#", "right_")] for n in JOINTS]

# Bones the geometric search compares, (start, end) joints; "mid_hips" is the mid-point of the hips.
SEARCH_BONES = [
    ("neck", "head_top"), ("neck", "right_shoulder"), ("right_shoulder", "right_elbow"),
    ("right_elbow", "right_wrist"), ("neck", "left_shoulder"), ("left_shoulder", "left_elbow"),
    ("left_elbow", "left_wrist"), ("right_hip", "left_hip"), ("right_hip", "right_knee"),
    ("right_knee", "right_ankle"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
    ("mid_hips", "neck"),
]


def _bone_matrix() -> np.ndarray:
    """(B, 15): row b maps joint positions to the vector of bone b (end - start)."""
    c = np.zeros((len(SEARCH_BONES), len(JOINTS)))
    for b, (start, end) in enumerate(SEARCH_BONES):
        for name, sign in ((start, -1.0), (end, 1.0)):
            if name == "mid_hips":
                c[b, R_HIP] += 0.5 * sign
                c[b, L_HIP] += 0.5 * sign
            else:
                c[b, J[name]] += sign
    return c


BONE_MATRIX = _bone_matrix()

# Config keys that change the trained networks (the others only change search/evaluation/LSP).
TRAIN_KEYS = ("holdout_subjects", "cameras_per_pose", "distance_m", "elevation_deg", "roll_std_deg",
              "focal_px", "aim_jitter_m", "mirror", "input_noise_px", "baseline_m", "hidden", "blocks",
              "dropout", "epochs", "batch_size", "lr", "lr_decay", "seed")


class PoolParams(NamedTuple):
    """The MoCap pool the lifter is trained on: `poses.fps`, `poses.min_pose_distance`, and the
    subjects (None: every subject of the data directory, whatever `poses.subjects` says)."""
    fps: float
    min_pose_distance: float
    subjects: list | None = None

    @classmethod
    def of(cls, poses: PosesConfig) -> "PoolParams":
        return cls(float(poses.fps), float(poses.min_pose_distance))


# ---------------------------------------------------------------------------------------- cameras
@dataclass
class Cameras:
    """N pinhole cameras: X_cam = R @ X_world + t, pixels = (K @ X_cam)[:2] / z (SPEC conventions)."""
    R: np.ndarray   # (N, 3, 3)
    t: np.ndarray   # (N, 3)
    K: np.ndarray   # (N, 3, 3)


def random_cameras(n: int, rng: np.random.Generator, p: LiftingConfig) -> Cameras:
    """Cameras all around a root-relative person (pelvis at the origin, Z up), aimed at the pelvis
    plus a Gaussian jitter of `aim_jitter_m`, at `distance_m`, `elevation_deg` (positive: above,
    looking down), rolled by N(0, `roll_std_deg`), focal length `focal_px`, principal point 0."""
    yaw = rng.uniform(0.0, 2.0 * np.pi, n)
    elev = np.radians(rng.uniform(p.elevation_deg.low, p.elevation_deg.high, n))
    dist = rng.uniform(p.distance_m.low, p.distance_m.high, n)
    roll = np.radians(rng.normal(0.0, p.roll_std_deg, n))
    focal = rng.uniform(p.focal_px.low, p.focal_px.high, n)
    aim = rng.normal(0.0, p.aim_jitter_m, (n, 3))
    back = np.stack([np.cos(elev) * np.cos(yaw), np.cos(elev) * np.sin(yaw), np.sin(elev)], axis=1)
    centre = aim + dist[:, None] * back
    fwd = -back
    right = np.cross(fwd, np.array([0.0, 0.0, 1.0]))
    right /= np.linalg.norm(right, axis=1, keepdims=True)
    down = np.cross(fwd, right)
    R0 = np.stack([right, down, fwd], axis=1)                      # rows: camera axes in world
    c, s = np.cos(roll), np.sin(roll)
    Rz = np.zeros((n, 3, 3))
    Rz[:, 0, 0], Rz[:, 0, 1], Rz[:, 1, 0], Rz[:, 1, 1], Rz[:, 2, 2] = c, -s, s, c, 1.0
    R = Rz @ R0
    t = -np.einsum("nij,nj->ni", R, centre)
    K = np.zeros((n, 3, 3))
    K[:, 0, 0] = K[:, 1, 1] = focal
    K[:, 2, 2] = 1.0
    return Cameras(R, t, K)


def lsp_style(uv: np.ndarray) -> np.ndarray:
    """The 2D pose with its pelvis replaced by the mid-point of the hips, as LSP's 15th joint."""
    uv = np.array(uv, dtype=np.float64, copy=True)
    uv[:, PELVIS] = 0.5 * (uv[:, R_HIP] + uv[:, L_HIP])
    return uv


def normalise_2d(uv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LSP-style (N, 15, 2) pixels -> (normalised (N, 15, 2), centre (N, 2), scale (N,)): centred on
    the mid-hips, divided by the RMS distance of the joints to it."""
    centre = uv[:, PELVIS].copy()
    rel = uv - centre[:, None]
    scale = np.sqrt((rel ** 2).sum(-1).mean(-1))
    scale = np.maximum(scale, 1e-6)
    return rel / scale[:, None, None], centre, scale


@dataclass
class Pairs:
    """Training/evaluation samples: the same pose through two cameras `baseline_m` apart."""
    uv1: np.ndarray        # (N, 15, 2) pixels in camera 1, LSP-style pelvis
    uv2: np.ndarray        # (N, 15, 2) pixels in camera 2 (camera 1 shifted along its x axis)
    pose_cam: np.ndarray   # (N, 15, 3) metres, camera 1 frame, root-relative (true MoCap root)
    root_cam: np.ndarray   # (N, 3) metres, the root in camera 1's frame
    K: np.ndarray          # (N, 3, 3)

    @property
    def root_depth(self) -> np.ndarray:
        return self.root_cam[:, 2]


def make_pairs(joints_world: np.ndarray, cameras_per_pose: int, rng: np.random.Generator, p: LiftingConfig,
               mirror: bool = False) -> Pairs:
    """Project root-relative Z-up poses (P, 15, 3) through `cameras_per_pose` random cameras each."""
    poses = np.asarray(joints_world, dtype=np.float64)
    poses = poses - poses[:, PELVIS:PELVIS + 1]
    if mirror:   # the person's mirror image: x -> -x (left = +X) and left/right swapped
        flipped = poses[:, MIRROR_PERM] * np.array([-1.0, 1.0, 1.0])
        poses = np.concatenate([poses, flipped])
    poses = np.repeat(poses, cameras_per_pose, axis=0)
    cams = random_cameras(len(poses), rng, p)
    x1 = np.einsum("nij,nkj->nki", cams.R, poses) + cams.t[:, None]
    x2 = x1 - np.array([p.baseline_m, 0.0, 0.0])   # camera shifted +baseline along its x axis
    if np.any(x1[..., 2] < 0.1):
        raise ValueError("a camera sits inside the person: raise poses.lifting.distance_m.low")
    return Pairs(uv1=lsp_style(project(x1, cams.K)), uv2=lsp_style(project(x2, cams.K)),
                 pose_cam=x1 - x1[:, PELVIS:PELVIS + 1], root_cam=x1[:, PELVIS].copy(), K=cams.K)


# ---------------------------------------------------------------------------------- geometric search
def rays(uv: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(N, J, 3) rays K^-1 [u, v, 1] (z = 1) through the pixels."""
    Kinv = np.linalg.inv(np.broadcast_to(K, (len(uv), 3, 3)))
    h = np.concatenate([uv, np.ones(uv.shape[:-1] + (1,))], axis=-1)
    return np.einsum("nij,nkj->nki", Kinv, h)


def geometric_search(uv: np.ndarray, K: np.ndarray, pose_cam: np.ndarray, search_range_m=(1.0, 20.0),
                     step_m: float = 0.001, chunk_elements: int = 4_000_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Place the joints on their rays; returns (root-relative pose (N, 15, 3), root depth (N,),
    placed camera-frame joints (N, 15, 3)).

    uv: (N, 15, 2) input pixels (LSP-style; the pelvis entry is not used); K: (N, 3, 3) or (3, 3);
    pose_cam: (N, 15, 3) the network's root-relative camera-frame pose (metres). For each root depth
    candidate Z in [near, far] (step `step_m`), joint j sits at (Z + d_j) * ray_j; the chosen Z
    minimises sum_b (|bone_b(Z)| - |bone_b(network)|)^2. |bone_b(Z)|^2 = a Z^2 + 2 b Z + c exactly.
    """
    uv = np.asarray(uv, dtype=np.float64)
    pose_cam = np.asarray(pose_cam, dtype=np.float64)
    n = len(uv)
    r = rays(uv, K)                                            # (N, 15, 3)
    d = pose_cam[..., 2] - pose_cam[:, PELVIS:PELVIS + 1, 2]   # root-relative depths (N, 15)
    u = np.einsum("bj,njk->nbk", BONE_MATRIX, r)               # bone(Z) = Z u + w
    w = np.einsum("bj,njk->nbk", BONE_MATRIX, d[..., None] * r)
    qa, qb, qc = (u * u).sum(-1), (u * w).sum(-1), (w * w).sum(-1)   # (N, B)
    target = np.linalg.norm(np.einsum("bj,njk->nbk", BONE_MATRIX, pose_cam), axis=-1)   # (N, B)
    near, far = float(search_range_m[0]), float(search_range_m[1])
    z = near + step_m * np.arange(int(np.floor((far - near) / step_m + 1e-9)) + 1)   # (M,)
    # A candidate putting an annotated joint behind (or at) the camera is not a pose.
    min_d = d[:, ANNOTATED].min(axis=1)
    best = np.empty(n)
    per = max(1, chunk_elements // (len(z) * len(SEARCH_BONES)))
    # float32 over the (poses, bones, candidates) block: the search's hot loop.
    z32, z2 = z.astype(np.float32), (z ** 2).astype(np.float32)
    for s in range(0, n, per):
        sl = slice(s, s + per)
        length = qa[sl, :, None].astype(np.float32) * z2
        length += (2 * qb[sl, :, None]).astype(np.float32) * z32
        length += qc[sl, :, None].astype(np.float32)
        np.maximum(length, 0.0, out=length)
        np.sqrt(length, out=length)
        length -= target[sl, :, None].astype(np.float32)
        np.square(length, out=length)
        err = length.sum(axis=1)                                          # (n, M)
        err[z[None, :] + min_d[sl, None] <= 0.05] = np.inf
        best[sl] = z[np.argmin(err, axis=1)]
    placed = (best[:, None] + d)[..., None] * r                             # (N, 15, 3)
    # The pelvis has no pixel of its own (LSP): the network's offset from the mid-hips.
    mid = 0.5 * (placed[:, R_HIP] + placed[:, L_HIP])
    net_mid = 0.5 * (pose_cam[:, R_HIP] + pose_cam[:, L_HIP]) - pose_cam[:, PELVIS]
    placed[:, PELVIS] = mid - net_mid
    return placed - placed[:, PELVIS:PELVIS + 1], best, placed


# ------------------------------------------------------------------------------------------ lifter
@dataclass
class LiftOutput:
    network: np.ndarray          # (N, 15, 3) root-relative camera-frame pose from the network
    searched: np.ndarray | None  # (N, 15, 3) after the geometric search (None: not run)
    root_depth: np.ndarray | None
    view2: np.ndarray            # (N, 15, 2) synthesised second view, pixels


class Lifter:
    """The two trained networks and the search; `lift(uv, K)` is the whole label generator."""

    def __init__(self, view_net, recon_net, params: LiftingConfig):
        self.view_net, self.recon_net, self.params = view_net, recon_net, params

    def _view2_normalised(self, v1n: np.ndarray) -> np.ndarray:
        return self.view_net.predict(v1n.reshape(len(v1n), -1)).reshape(v1n.shape)   # disparity

    def lift(self, uv: np.ndarray, K: np.ndarray, search: bool = True) -> LiftOutput:
        uv = lsp_style(np.asarray(uv, dtype=np.float64))
        v1n, centre, scale = normalise_2d(uv)
        disp = self._view2_normalised(v1n)
        x = np.concatenate([v1n.reshape(len(uv), -1), disp.reshape(len(uv), -1)], axis=1)
        rel = self.recon_net.predict(x).reshape(len(uv), len(ANNOTATED), 3).astype(np.float64)
        net = np.zeros((len(uv), len(JOINTS), 3))
        net[:, ANNOTATED] = rel
        view2 = (v1n + disp) * scale[:, None, None] + centre[:, None]
        if not search:
            return LiftOutput(net, None, None, view2)
        searched, depth, _ = geometric_search(uv, K, net, self.params.search_range_m, self.params.search_step_m)
        return LiftOutput(net, searched, depth, view2)


def _rates(validator, joints: np.ndarray) -> dict:
    """Share of poses the validator passes: as they are, and with rest proportions (`rest_proportioned`)."""
    return {"raw_joints": round(float(np.mean(validator.check(joints).valid)), 4),
            "rest_proportioned": round(float(np.mean(validator.check(rest_proportioned(joints)).valid)), 4)}


def _noisy(uv: np.ndarray, sigma: float, rng: np.random.Generator, per_sample: bool = False) -> np.ndarray:
    """uv plus Gaussian pixel noise of std `sigma` (per_sample: each sample's std uniform in [0, sigma])."""
    if sigma <= 0:
        return uv
    std = rng.uniform(0.0, sigma, (len(uv), 1, 1)) if per_sample else sigma
    return lsp_style(uv + std * rng.standard_normal(uv.shape))


def train_lifter(train_joints: np.ndarray, p: LiftingConfig, progress: bool = False) -> tuple[Lifter, dict]:
    """Both networks trained on `train_joints` (P, 15, 3) root-relative Z-up; (lifter, training stats)."""
    import torch          # here, not at the top: the lifter's math without training needs no torch

    threads = torch.get_num_threads()
    torch.set_num_threads(int(p.threads))
    try:
        return _train_lifter(train_joints, p, progress)
    finally:
        torch.set_num_threads(threads)


def _train_lifter(train_joints: np.ndarray, p: LiftingConfig, progress: bool) -> tuple[Lifter, dict]:
    from synth.poses.lifting_nets import seeded_mlp, train_mlp     # torch: imported when training
    rng = stream(p.seed, Stream.LIFTER_TRAIN, 0)
    t0 = time.perf_counter()
    pairs = make_pairs(train_joints, p.cameras_per_pose, rng, p, mirror=p.mirror)
    uv1 = _noisy(pairs.uv1, p.input_noise_px, rng, per_sample=True)
    v1n, _, scale = normalise_2d(uv1)
    # The disparity target is the clean view-2 minus the clean view-1 (the network must not learn
    # the input noise), in the noisy view-1's normalised units (what it sees at test time).
    disp = (pairs.uv2 - pairs.uv1) / scale[:, None, None]
    n = len(v1n)
    common = dict(epochs=p.epochs, batch_size=p.batch_size, lr=p.lr, lr_decay=p.lr_decay, progress=progress)
    # Each network: initial weights (net, 0), batch order (net, 1) and dropout (net, 2) streams.
    view_net = seeded_mlp(torch_seed(p.seed, Stream.LIFTER_TRAIN, 1, 0), 30, 30, p.hidden, p.blocks, p.dropout)
    view_loss = train_mlp(view_net, v1n.reshape(n, -1), disp.reshape(n, -1),
                          order_rng=stream(p.seed, Stream.LIFTER_TRAIN, 1, 1),
                          torch_seed=torch_seed(p.seed, Stream.LIFTER_TRAIN, 1, 2), desc="view synthesis", **common)
    t1 = time.perf_counter()
    # The reconstruction network learns from the view the synthesis network predicts, as at test time.
    disp_pred = view_net.predict(v1n.reshape(n, -1))
    x = np.concatenate([v1n.reshape(n, -1), disp_pred], axis=1)
    y = pairs.pose_cam[:, ANNOTATED].reshape(n, -1)
    recon_net = seeded_mlp(torch_seed(p.seed, Stream.LIFTER_TRAIN, 2, 0), 60, 3 * len(ANNOTATED), p.hidden,
                           p.blocks, p.dropout)
    recon_loss = train_mlp(recon_net, x, y, order_rng=stream(p.seed, Stream.LIFTER_TRAIN, 2, 1),
                           torch_seed=torch_seed(p.seed, Stream.LIFTER_TRAIN, 2, 2), desc="reconstruction", **common)
    t2 = time.perf_counter()
    stats = {"training_samples": int(n), "training_poses": int(len(train_joints)),
             "view_synthesis_train_s": round(t1 - t0, 2), "reconstruction_train_s": round(t2 - t1, 2),
             "view_synthesis_final_loss": view_loss[-1], "reconstruction_final_loss": recon_loss[-1],
             "mean_pose_cam": pairs.pose_cam.mean(0).tolist(),
             "mean_disparity_px": float((pairs.uv2 - pairs.uv1)[..., 0].mean())}
    return Lifter(view_net, recon_net, p), stats


def _metrics(pred: np.ndarray, gt: np.ndarray) -> dict:
    return {"mpjpe_mm": round(1000 * mpjpe(pred, gt), 2), "pa_mpjpe_mm": round(1000 * pa_mpjpe(pred, gt), 2)}


def evaluate_lifter(lifter: Lifter, test_joints: np.ndarray, p: LiftingConfig, train_stats: dict,
                    validator=None) -> dict:
    """Errors on held-out poses (P, 15, 3), each seen by `eval_cameras_per_pose` random cameras;
    with a `PoseValidator`, also the share of plausible poses (true, network, searched): the checks
    are rotation-invariant, so camera-frame poses are checked as they are."""
    rng = stream(p.seed, Stream.LIFTER_EVAL)
    pairs = make_pairs(test_joints, p.eval_cameras_per_pose, rng, p)
    out: dict = {"samples": int(len(pairs.uv1)), "poses": int(len(test_joints))}
    mean_pose = np.broadcast_to(np.asarray(train_stats["mean_pose_cam"]), pairs.pose_cam.shape)
    out["baseline_mean_pose"] = _metrics(mean_pose, pairs.pose_cam)
    if validator is not None:
        out["plausible_rate_true_poses"] = _rates(validator, pairs.pose_cam)
    for label, sigma in (("clean", 0.0), (f"noise_{p.eval_noise_px:g}px", p.eval_noise_px)):
        uv = _noisy(pairs.uv1, sigma, rng)
        t0 = time.perf_counter()
        res = lifter.lift(uv, pairs.K, search=False)
        t1 = time.perf_counter()
        searched, depth, placed = geometric_search(uv, pairs.K, res.network, p.search_range_m, p.search_step_m)
        t2 = time.perf_counter()
        reproj = np.abs(project(placed[:, ANNOTATED], pairs.K) - uv[:, ANNOTATED]).max()
        vs_err = np.linalg.norm(res.view2 - pairs.uv2, axis=-1)[:, ANNOTATED].mean()
        shifted = uv + np.array([train_stats["mean_disparity_px"], 0.0])
        vs_base = np.linalg.norm(shifted - pairs.uv2, axis=-1)[:, ANNOTATED].mean()
        out[label] = {
            "network": _metrics(res.network, pairs.pose_cam),
            "geometric_search": _metrics(searched, pairs.pose_cam),
            "view_synthesis_px": round(float(vs_err), 3),
            "view_synthesis_baseline_px": round(float(vs_base), 3),   # view 1 + the mean disparity
            "root_depth_error_mm": round(float(1000 * np.abs(depth - pairs.root_depth).mean()), 1),
            "max_reprojection_error_px": float(reproj),
            "network_poses_per_s": round(len(uv) / max(t1 - t0, 1e-9), 1),
            "search_poses_per_s": round(len(uv) / max(t2 - t1, 1e-9), 1),
        }
        if validator is not None:
            out[label]["plausible_rate"] = {"network": _rates(validator, res.network),
                                            "geometric_search": _rates(validator, searched)}
    return out


# ----------------------------------------------------------------------------------------- caching
def _stat(path: Path) -> list:
    try:
        st = path.stat()
        return [str(path.name), st.st_size, st.st_mtime_ns]
    except OSError:
        return [str(path.name), -1, -1]


def _key(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _pool_key(data_dir: Path, pool: PoolParams) -> str:
    clips = find_clips(data_dir, pool.subjects)
    return pool_files_key(data_dir, clips, pool.fps, pool.min_pose_distance, 1.0)


def load_training_poses(data_dir: Path, cache_dir: Path, pool: PoolParams, p: LiftingConfig,
                        progress: bool = False) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(train joints, held-out joints, held-out subjects present) from the thinned MoCap pool."""
    poses = load_pool(data_dir, pool.subjects, pool.fps, pool.min_pose_distance, progress=progress,
                      cache_dir=cache_dir / "poses")
    held = {_subject_id(s) for s in p.holdout_subjects}
    test = np.isin(poses.subject, sorted(held))
    if test.all():
        raise ConfigError("config key 'poses.lifting.holdout_subjects' holds out every MoCap subject")
    present = sorted(set(poses.subject[test].tolist()))
    return poses.joints_3d[~test].astype(np.float64), poses.joints_3d[test].astype(np.float64), present


def get_lifter(data_dir: Path, cache_dir: Path, p: LiftingConfig | None = None, pool: PoolParams | None = None,
               progress: bool = False) -> tuple[Lifter, dict]:
    """The trained lifter and its report (training stats + held-out errors), from the cache or
    trained. `p`: the `poses.lifting` section (None: its defaults); `pool`: the MoCap pool
    (None: the defaults of `poses`, every subject)."""
    from synth.poses.lifting_nets import load_state, state_bytes     # torch: imported when used
    p = p if p is not None else LiftingConfig()
    pool = pool if pool is not None else PoolParams.of(PosesConfig())
    data_dir, cache_dir = Path(data_dir), Path(cache_dir)
    key = _key({"version": LIFTER_VERSION, "train": p.model_dump(mode="json", include=set(TRAIN_KEYS)),
                "pool": _pool_key(data_dir, pool), "pool_params": pool._asdict()})
    path = cache_dir / "lifter" / f"lifter-{key}.pt"
    shapes = {"view": (30, 30), "recon": (60, 3 * len(ANNOTATED))}
    eval_key = _key({"version": EVAL_VERSION, **p.model_dump(
        mode="json", include={"eval_cameras_per_pose", "eval_noise_px", "search_range_m", "search_step_m"})})
    lifter = meta = None
    if path.is_file():
        try:
            models, meta = load_state(path, shapes, p.hidden, p.blocks, p.dropout)
            lifter = Lifter(models["view"], models["recon"], p)
        except Exception as e:  # noqa: BLE001 - a damaged cache only costs a retraining
            warnings.warn(f"ignoring unreadable lifter cache {path} ({e.__class__.__name__})", stacklevel=2)
            lifter = meta = None
        if lifter is not None and meta.get("eval_key") == eval_key:
            return lifter, meta["report"]
    train_joints, test_joints, present = load_training_poses(data_dir, cache_dir, pool, p, progress)
    if lifter is None:
        lifter, stats = train_lifter(train_joints, p, progress)
    else:   # cached networks, evaluation settings changed: evaluate again only
        stats = meta["stats"]
    report = {"training": {k: v for k, v in stats.items() if k != "mean_pose_cam"},
              "holdout_subjects": present}
    if len(test_joints):
        report["heldout"] = evaluate_lifter(lifter, test_joints, p, stats, _validator(data_dir))
    atomic_write_bytes(path, state_bytes({"view": lifter.view_net, "recon": lifter.recon_net},
                                         {"report": report, "eval_key": eval_key, "stats": stats}))
    return lifter, report


# --------------------------------------------------------------------------------------------- LSP
@dataclass
class LiftResult:
    poses: object                  # synth.poses.posefile.PoseSet (source "lsp")
    plausible: np.ndarray          # (N,) bool, from PoseValidator
    report: dict
    joints_cam: np.ndarray = field(repr=False, default=None)    # (N, 15, 3) root-relative, camera frame
    report_path: Path | None = None


def lsp_intrinsics(images: list[Path], focal_px: float) -> np.ndarray:
    """(N, 3, 3): the assumed focal length, the principal point at each image's centre."""
    K = np.zeros((len(images), 3, 3))
    for i, path in enumerate(images):
        try:
            with Image.open(path) as im:
                w, h = im.size
        except OSError as e:
            raise InputError(f"{path}: not a readable image ({e.__class__.__name__})") from None
        K[i] = intrinsics(focal_px, w, h)
    return K


def camera_to_world(joints_cam: np.ndarray) -> np.ndarray:
    """Camera frame (x right, y down, z forward) of a level camera -> Z-up world (x, z, -y)."""
    return np.stack([joints_cam[..., 0], joints_cam[..., 2], -joints_cam[..., 1]], axis=-1)


def lift_lsp(data_dir: Path, cache_dir: Path, params: LiftingConfig | None = None, pool: PoolParams | None = None,
             progress: bool = False, limit: int | None = None) -> LiftResult:
    """All LSP training poses lifted to 3D (Z-up world, root-relative), flagged and as a PoseSet.

    The networks are trained from `params.seed` alone (rng streams LIFTER_*), so that they can be
    cached; the lifting itself is deterministic. `limit`: only the first `limit` LSP images (tests).
    """
    p = params if params is not None else LiftingConfig()
    data_dir, cache_dir = Path(data_dir), Path(cache_dir)
    lsp_dir = data_dir / "lsp"
    lsp = load_lsp(lsp_dir)
    n = len(lsp) if limit is None else min(int(limit), len(lsp))
    mat = next((m for m in (lsp_dir / "joints.mat", lsp_dir / "joints_train.mat") if m.exists()), None)
    lifter, lifter_report = get_lifter(data_dir, cache_dir, p, pool, progress)
    key = _key({"version": LIFTER_VERSION, "lifter": lifter_report.get("training"), "params": p.model_dump(mode="json"),
                "lsp": _stat(mat) if mat else None, "n": n})
    lifted_path = cache_dir / "lifter" / f"lsp-{key}.npz"
    joints_cam = None
    if lifted_path.is_file():
        try:
            with np.load(lifted_path) as z:
                joints_cam = z["joints_cam"]
                root_depth = z["root_depth"]
                lift_s = float(z["lift_s"])
            if joints_cam.shape != (n, len(JOINTS), 3):
                joints_cam = None
        except Exception:  # noqa: BLE001 - a damaged cache only costs a re-lift
            joints_cam = None
    if joints_cam is None:
        t0 = time.perf_counter()
        K = lsp_intrinsics(lsp.images[:n], p.lsp_focal_px)
        out = lifter.lift(lsp.joints_2d[:n], K, search=True)
        joints_cam, root_depth = out.searched, out.root_depth
        lift_s = time.perf_counter() - t0
        buf = io.BytesIO()
        np.savez(buf, joints_cam=joints_cam.astype(np.float32), root_depth=root_depth.astype(np.float32),
                 lift_s=np.float64(lift_s))
        atomic_write_bytes(lifted_path, buf.getvalue())
    joints_world = camera_to_world(joints_cam.astype(np.float64))
    ids = [f"lsp/{p_.stem}" for p_ in lsp.images[:n]]
    poses = poseset_from_joints(joints_world.astype(np.float32), "lsp", ids, ["lsp"] * n)
    plausible, validity = _plausibility(data_dir, poses.joints_3d)
    report = {
        "method": "Wang et al. 2019 stereo-inspired lifter: view synthesis + reconstruction MLPs + 1 mm geometric search",
        "lifter": lifter_report,
        "lsp": {"poses": int(n), "plausible": int(plausible.sum()), "plausible_rate": round(float(plausible.mean()), 4) if n else None,
                "validity": validity, "occluded_joints_kept": int((~lsp.visible[:n]).sum()),
                "assumed_focal_px": p.lsp_focal_px,
                "root_depth_m": {"median": round(float(np.median(root_depth)), 3) if n else None,
                                 "p5": round(float(np.percentile(root_depth, 5)), 3) if n else None,
                                 "p95": round(float(np.percentile(root_depth, 95)), 3) if n else None},
                "lift_s": round(lift_s, 3)},   # networks + search for all n poses, when first lifted
    }
    report_path = cache_dir / "lifter" / f"report-{key}.json"
    atomic_write_json(report_path, report)
    atomic_write_json(cache_dir / "lifter" / "report.json", report)
    return LiftResult(poses=poses, plausible=plausible, report=report, joints_cam=joints_cam, report_path=report_path)


def _validator(data_dir: Path):
    """P-IK's PoseValidator for the evaluation report, or None when its data is missing."""
    try:
        return PoseValidator.from_data_dir(data_dir)
    except InputError as e:
        warnings.warn(f"lifter report without plausibility rates: {e}", stacklevel=2)
        return None


def rest_proportioned(joints: np.ndarray) -> np.ndarray:
    """The pose as the body model takes it: every bone's direction kept, its length set to the
    canonical CMU rest skeleton's (`synth.poses.ik.rest_joints`), built outward from the pelvis.
    (The IK rotations of `poseset_from_joints` carry bone directions only.)"""
    rest = rest_joints()
    out = np.array(joints, dtype=np.float64, copy=True)
    for a, b in BONES:          # parents come before children in this list
        ia, ib = J[a], J[b]
        d = joints[:, ib] - joints[:, ia]
        d = d / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-12)
        out[:, ib] = out[:, ia] + np.linalg.norm(rest[ib] - rest[ia]) * d
    return out


def _plausibility(data_dir: Path, joints_world: np.ndarray) -> tuple[np.ndarray, dict]:
    """(flags, report): the PoseValidator's verdict on the pose the body will take (bone directions
    on the canonical skeleton; see `rest_proportioned`), with the verdict on the raw lifted joints
    beside it. The raw joints carry LSP's own joint definitions (its neck sits higher than CMU's
    thorax end, so the torso and head shares differ) and pixel-level annotation noise on small
    images (left/right limb lengths), which the validator's MoCap bone-share and symmetry tests
    reject almost always, although the body model never sees those lengths."""
    validator = PoseValidator.from_data_dir(data_dir)
    res = validator.check(rest_proportioned(joints_world))
    raw = validator.check(joints_world)
    return np.asarray(res.valid, dtype=bool), {"rest_proportioned": res.summary(), "raw_joints": raw.summary()}
