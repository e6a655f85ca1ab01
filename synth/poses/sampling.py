"""The pose pool: every CMU clip of the data directory, resampled, thinned of near-duplicate
frames, cached; and random draws from it.

Layout read: data_dir/cmu_mocap/amc/SS/SS_TT.amc with its skeleton data_dir/cmu_mocap/asf/SS.asf.
The source frame rate of a clip comes from data_dir/cmu_mocap/index/clips_main.csv when it lists
the clip, else 120 Hz (every clip of the CMU ASF/AMC mirror is 120 Hz; AMC files carry no rate).
"""
from __future__ import annotations

import csv
import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from synth.io_utils import InputError
from synth.poses.asf_amc import Skeleton, asf_path_for_clip, parse_amc, parse_asf
from synth.poses.bvh import bvh_clip_poses, bvh_subject
from synth.poses.kinematics import motion_to_pose_arrays, resample_indices, yaw_matrix  # noqa: F401  (resample_indices: re-exported)
from synth.poses.posefile import PoseSet, load_poses, save_poses

DEFAULT_SOURCE_FPS = 120.0
SOURCE = "cmu"
# Bump when the pool's content would change for the same files and parameters.
POOL_VERSION = 1


def find_clips(data_dir: str | Path, subjects=None) -> list[Path]:
    """Clip files of the data directory (sorted): AMC files data_dir/cmu_mocap/amc/SS/*.amc, and BVH
    files anywhere under data_dir/cmu_mocap/bvh/ or beside the AMC files (subject: the folder when it
    is a number, else the file name up to "_"). Optionally only those of `subjects` ("01", ...)."""
    amc_root = Path(data_dir) / "cmu_mocap" / "amc"
    bvh_root = Path(data_dir) / "cmu_mocap" / "bvh"
    if not amc_root.is_dir() and not bvh_root.is_dir():
        raise InputError(f"{amc_root}: CMU MoCap folder not found (fetch the cmu_mocap asset set)")
    wanted = None if subjects is None else {_subject_id(s) for s in subjects}
    clips = []
    if amc_root.is_dir():
        for folder in sorted(p for p in amc_root.iterdir() if p.is_dir()):
            if wanted is not None and folder.name not in wanted:
                continue
            clips.extend(sorted([*folder.glob("*.amc"), *folder.glob("*.bvh")]))
    if bvh_root.is_dir():
        clips.extend(p for p in sorted(bvh_root.rglob("*.bvh"))
                     if wanted is None or bvh_subject(p) in wanted)
    if wanted is not None:
        found = {_clip_subject(p) for p in clips}
        missing = sorted(wanted - found)
        if missing:
            raise InputError(f"{amc_root}: no clips for subject(s) {', '.join(missing)}")
    return clips


def _clip_subject(path: Path) -> str:
    return bvh_subject(path) if path.suffix == ".bvh" else path.parent.name


def _subject_id(s) -> str:
    return f"{int(s):02d}" if isinstance(s, int) or str(s).isdigit() else str(s)


def source_rates(data_dir: str | Path) -> dict[str, float]:
    """clip id -> frame rate (Hz) from the mirror's manifest, when there is one."""
    manifest = Path(data_dir) / "cmu_mocap" / "index" / "clips_main.csv"
    rates: dict[str, float] = {}
    if manifest.is_file():
        with open(manifest, newline="") as f:
            for row in csv.DictReader(f):
                try:
                    rates[row["clip_id"]] = float(row["framerate_hz"])
                except (KeyError, TypeError, ValueError):
                    continue
    return rates


def clip_poses(skeleton: Skeleton, amc_path: str | Path, fps: float = 30,
               source_fps: float = DEFAULT_SOURCE_FPS) -> PoseSet:
    """One clip as poses, resampled to `fps`."""
    amc_path = Path(amc_path)
    motion = parse_amc(amc_path, skeleton)
    frames = resample_indices(len(motion), source_fps, fps)
    arrays = motion_to_pose_arrays(skeleton, motion, frames)
    clip = amc_path.stem
    subject = amc_path.parent.name
    n = len(frames)
    return PoseSet(**arrays, source=np.full(n, SOURCE),
                   pose_id=np.array([f"{SOURCE}/{clip}/f{i:06d}" for i in frames]),
                   subject=np.full(n, subject))


def load_clips(data_dir: str | Path, subjects=None, fps: float = 30, progress: bool = True,
               strict: bool = False) -> PoseSet:
    """Every clip of the data directory (or of `subjects`) as poses at `fps`. A bad file is skipped
    with a warning naming it (strict=True: its InputError is raised)."""
    data_dir = Path(data_dir)
    clips = find_clips(data_dir, subjects)
    rates = source_rates(data_dir)
    skeletons: dict[str, Skeleton | InputError] = {}
    sets = []
    for amc in tqdm(clips, desc="CMU clips", unit="clip", disable=not progress):
        clip = amc.stem
        try:
            if amc.suffix == ".bvh":
                sets.append(bvh_clip_poses(amc, fps, source=SOURCE))
                continue
            subject = amc.parent.name
            if subject not in skeletons:
                try:
                    skeletons[subject] = parse_asf(asf_path_for_clip(data_dir, clip))
                except InputError as e:
                    skeletons[subject] = e
            skeleton = skeletons[subject]
            if isinstance(skeleton, InputError):
                raise InputError(f"{amc}: skipped, its skeleton is bad: {skeleton}")
            sets.append(clip_poses(skeleton, amc, fps, rates.get(clip, DEFAULT_SOURCE_FPS)))
        except InputError as e:
            if strict:
                raise
            warnings.warn(f"skipping bad clip {clip}: {e}", stacklevel=2)
    return PoseSet.concatenate(sets)


def canonical_joints(poses: PoseSet) -> np.ndarray:
    """(N, 15, 3) root-relative joints with the facing yaw removed (every pose faces -Y)."""
    return np.einsum("nij,nkj->nki", yaw_matrix(-poses.facing_yaw.astype(np.float64)),
                     poses.joints_3d.astype(np.float64))


def thin(poses: PoseSet, min_distance: float, window_s: float | None = 1.0,
         source_fps: float = DEFAULT_SOURCE_FPS) -> PoseSet:
    """Drop near-duplicate frames within each clip.

    Frames of a clip are visited in time order; a frame is kept when its mean joint distance
    (root-relative, facing yaw removed) to every kept frame of the same clip within the last
    `window_s` seconds (None: the whole clip so far) is >= min_distance metres. Poses whose id has
    no frame index are their own clip and always kept. The order of the kept poses is preserved.
    """
    if len(poses) == 0 or min_distance <= 0:
        return poses
    joints = canonical_joints(poses)
    clips = poses.clip_of()
    frames = poses.frame_index()
    window = np.inf if window_s is None else window_s * source_fps
    keep = np.zeros(len(poses), dtype=bool)
    order = np.lexsort((frames, clips))
    start = 0
    while start < len(order):
        end = start
        while end < len(order) and clips[order[end]] == clips[order[start]]:
            end += 1
        members = order[start:end]
        kept_joints: list[np.ndarray] = []
        kept_frames: list[int] = []
        first = 0   # first kept frame still inside the window
        for i in members:
            while first < len(kept_frames) and frames[i] - kept_frames[first] > window:
                first += 1
            if first < len(kept_frames):
                recent = np.asarray(kept_joints[first:])
                dist = np.linalg.norm(recent - joints[i], axis=-1).mean(axis=-1)
                if dist.min() < min_distance:
                    continue
            keep[i] = True
            kept_joints.append(joints[i])
            kept_frames.append(int(frames[i]))
        start = end
    return poses.subset(np.flatnonzero(keep))


def _pool_key(data_dir: Path, clips: list[Path], fps: float, min_distance: float,
              window_s: float | None) -> str:
    files = []
    for amc in clips:
        subject = amc.parent.name
        asf = data_dir / "cmu_mocap" / "asf" / f"{subject}.asf"
        for p in ((amc,) if amc.suffix == ".bvh" else (amc, asf)):
            try:
                st = p.stat()
                files.append([str(p.relative_to(data_dir)), st.st_size, st.st_mtime_ns])
            except OSError:
                files.append([str(p.relative_to(data_dir)), -1, -1])
    manifest = data_dir / "cmu_mocap" / "index" / "clips_main.csv"
    if manifest.is_file():
        st = manifest.stat()
        files.append(["manifest", st.st_size, st.st_mtime_ns])
    blob = json.dumps({"version": POOL_VERSION, "fps": float(fps), "min_distance": float(min_distance),
                       "window_s": window_s, "files": files}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def load_pool(data_dir: str | Path, subjects=None, fps: float = 30, min_distance: float = 0.05,
              window_s: float | None = 1.0, progress: bool = True, cache_dir: str | Path | None = None,
              strict: bool = False) -> PoseSet:
    """The thinned pose pool, cached in `cache_dir` (default data_dir/.cache) under a key made of
    the files' sizes and mtimes and the parameters. An unwritable cache only costs time."""
    data_dir = Path(data_dir)
    clips = find_clips(data_dir, subjects)
    cache_dir = data_dir / ".cache" if cache_dir is None else Path(cache_dir)
    cache = cache_dir / f"poses-cmu-{_pool_key(data_dir, clips, fps, min_distance, window_s)}.npz"
    if cache.is_file():
        try:
            return load_poses(cache)
        except InputError as e:
            warnings.warn(f"ignoring unreadable pose cache: {e}", stacklevel=2)
    pool = thin(load_clips(data_dir, subjects, fps, progress, strict), min_distance, window_s)
    if len(pool) == 0:
        raise InputError(f"{data_dir / 'cmu_mocap'}: no usable poses")
    try:
        save_poses(cache, pool)
    except OSError as e:
        warnings.warn(f"cannot write pose cache {cache} ({e.strerror}); the pool will be rebuilt next time",
                      stacklevel=2)
    return pool


def sample_poses(data_dir: str | Path, n: int, rng: np.random.Generator, subjects=None,
                 fps: float = 30, min_distance: float = 0.05, progress: bool = True,
                 cache_dir: str | Path | None = None) -> PoseSet:
    """n poses drawn from the thinned pool, without replacement while the pool lasts (n larger than
    the pool: whole shuffled passes over it, then a draw without replacement for the rest)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    pool = load_pool(data_dir, subjects, fps, min_distance, progress=progress, cache_dir=cache_dir)
    full, rest = divmod(n, len(pool))
    parts = [rng.permutation(len(pool)) for _ in range(full)]
    parts.append(rng.choice(len(pool), size=rest, replace=False))
    return pool.subset(np.concatenate(parts).astype(np.int64))
