"""The pose set: what drives the body model and labels one sample, and its `.npz` file.

A pose is source-agnostic: CMU MoCap frames (source "cmu") today; 3D poses lifted from LSP or
samples of a pose prior later carry their own `source` tag and rotations obtained by IK, in the
same arrays:

- `joints_3d` (N, 15, 3) float32, metres, root-relative (pelvis at the origin), Z up, any facing
  direction, in `synth.scene.JOINTS` order (SPEC "A pose set").
- `rotations` (N, 31, 3, 3) float32: each `cmu_mb` bone's world delta rotation in the Z-up frame,
  i.e. the rotation taking the bone's rest world direction to its posed world direction
  (`rotations[:, b] @ rest_directions[:, b]` is the posed direction). Bones in `BONE_NAMES` order.
- `rest_directions` (N, 31, 3) float32: each bone's unit rest direction in the Z-up frame, from the
  skeleton the pose was captured on (Hips: +Z). The body model retargets from these.
- `facing_yaw` (N,) float32 radians: yaw about +Z of the person's forward direction, 0 = facing -Y
  (see `kinematics.facing_yaw_of`).
- `source`, `pose_id`, `subject` (N,) str. CMU pose ids are "cmu/<clip>/f<index>", the index of the
  frame at the clip's original rate (120 Hz), counted from 0.

The file also holds `joint_names` and `bone_names`; loading checks them against the code's lists.
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synth.io_utils import InputError, atomic_open
from synth.poses.kinematics import BONE_NAMES
from synth.scene import JOINTS

FORMAT = "synth-poses/1"
_FLOAT_FIELDS = {  # name -> shape after N (None: free)
    "joints_3d": (len(JOINTS), 3),
    "rotations": (len(BONE_NAMES), 3, 3),
    "rest_directions": (len(BONE_NAMES), 3),
    "facing_yaw": (),
}
_STR_FIELDS = ("source", "pose_id", "subject")


@dataclass
class PoseSet:
    joints_3d: np.ndarray
    rotations: np.ndarray
    rest_directions: np.ndarray
    facing_yaw: np.ndarray
    source: np.ndarray
    pose_id: np.ndarray
    subject: np.ndarray
    joint_names: tuple[str, ...] = tuple(JOINTS)
    bone_names: tuple[str, ...] = tuple(BONE_NAMES)

    def __post_init__(self) -> None:
        for name in _FLOAT_FIELDS:
            setattr(self, name, np.ascontiguousarray(getattr(self, name), dtype=np.float32))
        for name in _STR_FIELDS:
            setattr(self, name, np.asarray(getattr(self, name), dtype=str))
        self.joint_names = tuple(self.joint_names)
        self.bone_names = tuple(self.bone_names)
        problem = self.problem()
        if problem:
            raise ValueError(f"invalid PoseSet: {problem}")

    def problem(self) -> str | None:
        """None when the arrays are consistent, else what is wrong (naming the key)."""
        if list(self.joint_names) != JOINTS:
            return "key 'joint_names' differs from synth.scene.JOINTS"
        if list(self.bone_names) != BONE_NAMES:
            return "key 'bone_names' differs from the cmu_mb bone list"
        n = len(self.joints_3d)
        for name, tail in _FLOAT_FIELDS.items():
            a = getattr(self, name)
            if a.shape != (n, *tail):
                return f"key '{name}' has shape {a.shape}, expected {(n, *tail)}"
            if not np.all(np.isfinite(a)):
                return f"key '{name}' holds non-finite values"
        for name in _STR_FIELDS:
            a = getattr(self, name)
            if a.shape != (n,):
                return f"key '{name}' has shape {a.shape}, expected {(n,)}"
        return None

    def __len__(self) -> int:
        return len(self.joints_3d)

    def subset(self, indices) -> "PoseSet":
        idx = np.asarray(indices)
        return PoseSet(**{name: getattr(self, name)[idx] for name in (*_FLOAT_FIELDS, *_STR_FIELDS)})

    @staticmethod
    def empty() -> "PoseSet":
        return PoseSet(**{name: np.zeros((0, *tail), np.float32) for name, tail in _FLOAT_FIELDS.items()},
                       **{name: np.zeros((0,), str) for name in _STR_FIELDS})

    @staticmethod
    def concatenate(sets: list["PoseSet"]) -> "PoseSet":
        if not sets:
            return PoseSet.empty()
        return PoseSet(**{name: np.concatenate([getattr(s, name) for s in sets])
                          for name in (*_FLOAT_FIELDS, *_STR_FIELDS)})

    def clip_of(self) -> np.ndarray:
        """(N,) str: the clip a pose comes from ("cmu/16_36"), or its own id when it has none."""
        return np.array([pid.rsplit("/", 1)[0] if _frame_index(pid) >= 0 else pid for pid in self.pose_id],
                        dtype=str)

    def frame_index(self) -> np.ndarray:
        """(N,) int: the frame index in the pose id ("cmu/16_36/f000123" -> 123), -1 when none."""
        return np.array([_frame_index(pid) for pid in self.pose_id], dtype=np.int64)


def _frame_index(pose_id: str) -> int:
    last = pose_id.rsplit("/", 1)[-1]
    if "/" in pose_id and last[:1] == "f" and last[1:].isdigit():
        return int(last[1:])
    return -1


def save_poses(path: str | os.PathLike, poses: PoseSet) -> None:
    """Write `poses` to `path` (.npz), atomically: a temporary file in the same folder, then rename."""
    path = Path(path)
    arrays = {name: getattr(poses, name) for name in (*_FLOAT_FIELDS, *_STR_FIELDS)}
    arrays["joint_names"] = np.array(poses.joint_names, dtype=str)
    arrays["bone_names"] = np.array(poses.bone_names, dtype=str)
    arrays["format"] = np.array(FORMAT)
    with atomic_open(path) as f:    # straight to the file: no in-memory copy of the whole set
        _write_npz(f, arrays)


def _write_npz(f, arrays: dict[str, np.ndarray]) -> None:
    """np.savez's layout (one stored .npy member per array) into the open file `f`, closing the
    zip even when a write fails (np.savez leaves it to the garbage collector then, which prints
    an "Exception ignored" traceback after the one-line error)."""
    z = zipfile.ZipFile(f, "w", allowZip64=True)
    try:
        for name, arr in arrays.items():
            with z.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=False)
    except BaseException:
        try:
            z.close()
        except (OSError, ValueError):
            pass
        raise
    z.close()


def load_poses(path: str | os.PathLike) -> PoseSet:
    """Read a pose set; InputError naming the file and the key when it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: pose file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            for name in (*_FLOAT_FIELDS, *_STR_FIELDS, "joint_names", "bone_names"):
                if name not in keys:
                    raise InputError(f"{path}: missing key '{name}'")
            data = {name: z[name] for name in (*_FLOAT_FIELDS, *_STR_FIELDS, "joint_names", "bone_names")}
    except InputError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise InputError(f"{path}: not a readable .npz pose file ({e.__class__.__name__})") from None
    for name in _FLOAT_FIELDS:
        if data[name].dtype.kind not in "fiu":
            raise InputError(f"{path}: key '{name}' is not numeric (dtype {data[name].dtype})")
    for name in (*_STR_FIELDS, "joint_names", "bone_names"):
        if data[name].dtype.kind != "U":
            raise InputError(f"{path}: key '{name}' is not an array of strings (dtype {data[name].dtype})")
    data["joint_names"] = tuple(data["joint_names"].tolist())
    data["bone_names"] = tuple(data["bone_names"].tolist())
    try:
        return PoseSet(**data)
    except ValueError as e:
        raise InputError(f"{path}: {str(e).removeprefix('invalid PoseSet: ')}") from None
