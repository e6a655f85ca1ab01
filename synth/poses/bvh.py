"""Biovision BVH motion files (the format most users hold CMU MoCap in), our own parser.

- HIERARCHY: ROOT / JOINT / End Site blocks with OFFSET and CHANNELS in any order and number
  (Xposition Yposition Zposition Xrotation Yrotation Zrotation); MOTION: `Frames:`, `Frame Time:`
  and one line of channel values per frame.
- Forward kinematics (the BVH convention): a joint's local rotation is the product of its rotation
  channels in the order listed (`Zrotation Yrotation Xrotation` -> Rz @ Ry @ Rx, X applied first);
  a joint's translation from its parent is its OFFSET, or its position channels when it has them
  (the root's); world rotation G_j = G_parent @ L_j, position p_j = p_parent + G_parent @ t_j.
  The rest pose (all channels 0) is the skeleton's rest pose, so G_j is the bone's world delta
  rotation from rest, as `PoseSet.rotations` wants it.
- The CMU skeleton: the joint names of the common CMU BVH conversion (Hips, LHipJoint, LeftUpLeg,
  ..., Spine1, Neck, Neck1, Head, LeftShoulder, LeftArm, ..., LeftHandIndex1 or LeftHandFinger1) are
  the `cmu_mb` bone names; a joint sits at the start of its bone, its bone ends at its child's
  origin (or its End Site). Y up, the person at rest facing +Z, as in the ASF; converted to synth's
  Z-up frame like the AMC poses.
- Units: `scale` metres per file unit, or None to detect it from the skeleton's standing height
  among metres, centimetres, millimetres, inches and CMU ASF units (1/0.45 inch, what the common
  CMU conversion writes).

Bad input raises `InputError` with one line "FILE[:LINE]: fault". `write_bvh` exports an ASF/AMC
motion (used by the tests to check the parser against the AMC forward kinematics).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from synth.io_utils import atomic_write_text, located_error, read_text
from synth.poses.asf_amc import INCH_M, Motion, Skeleton
from synth.geometry import axis_rotation
from synth.poses.kinematics import (ASF_TO_CMU_MB, BONE_NAMES, HIPS_REST_DIRECTION, _to_z_up_matrices,
                                    _to_z_up_vectors, facing_yaw_of, forward_kinematics, resample_indices)
from synth.poses.posefile import PoseSet
from synth.scene import JOINTS

CHANNELS = ("Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation")
# Other names for cmu_mb bones in BVH conversions.
ALIASES = {"LeftHandIndex1": "LeftHandFinger1", "RightHandIndex1": "RightHandFinger1"}
# SPEC joint -> BVH joint whose origin it is ("head_top": the end of Head).
JOINT_AT_ORIGIN = {
    "pelvis": "Hips", "neck": "Neck", "right_shoulder": "RightArm", "right_elbow": "RightForeArm",
    "right_wrist": "RightHand", "left_shoulder": "LeftArm", "left_elbow": "LeftForeArm",
    "left_wrist": "LeftHand", "right_hip": "RightUpLeg", "right_knee": "RightLeg",
    "right_ankle": "RightFoot", "left_hip": "LeftUpLeg", "left_knee": "LeftLeg", "left_ankle": "LeftFoot",
}
HEAD_TOP_BONE = "Head"
# Which child a bone ends at when it has several (else the first child with a non-zero offset).
CONTINUATION = {"Spine1": "Neck", "LeftHand": "LeftFingerBase", "RightHand": "RightFingerBase"}
# metres per unit -> name, for the automatic unit
UNITS = {1.0: "m", 0.01: "cm", 0.001: "mm", INCH_M: "inch", INCH_M / 0.45: "CMU ASF unit"}
STANDING_HEIGHT_M = 1.6   # ankle to head top, about, of an adult


@dataclass
class BvhJoint:
    name: str
    parent: int                      # index into BvhFile.joints, -1 for the root
    offset: np.ndarray               # (3,) file units
    channels: list[str]
    end_site: np.ndarray | None = None   # (3,) offset of the End Site, when it has one
    children: list[int] = field(default_factory=list)


@dataclass
class BvhFile:
    path: Path
    joints: list[BvhJoint]           # parents before children (file order)
    frame_time: float                # seconds
    values: np.ndarray               # (F, C) channel values in file order

    def __len__(self) -> int:
        return len(self.values)

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    def index(self, name: str) -> int:
        for i, j in enumerate(self.joints):
            if j.name == name:
                return i
        raise KeyError(name)


def parse_bvh(path: str | Path) -> BvhFile:
    """Read a BVH file (any channel order, any joint names)."""
    path = Path(path)
    lines = read_text(path).splitlines()
    tokens: list[tuple[int, str]] = []
    motion_line = None
    for lineno, line in enumerate(lines, 1):
        words = line.split()
        if words and words[0].upper() == "MOTION":
            motion_line = lineno
            break
        tokens.extend((lineno, w) for w in words)
    if not tokens or tokens[0][1].upper() != "HIERARCHY":
        raise located_error(path, tokens[0][0] if tokens else None, "does not start with HIERARCHY (not a BVH file?)")
    joints: list[BvhJoint] = []
    pos = 1

    def take(what: str) -> tuple[int, str]:
        nonlocal pos
        if pos >= len(tokens):
            raise located_error(path, tokens[-1][0], f"file ends inside the hierarchy (expected {what}; truncated?)")
        pos += 1
        return tokens[pos - 1]

    def number(what: str) -> float:
        lineno, word = take(what)
        try:
            v = float(word)
        except ValueError:
            raise located_error(path, lineno, f"{what}: {word!r} is not a number") from None
        if not math.isfinite(v):
            raise located_error(path, lineno, f"{what}: non-finite number {word!r}")
        return v

    def expect(word: str) -> None:
        lineno, got = take(word)
        if got.upper() != word.upper():
            raise located_error(path, lineno, f"expected {word!r}, got {got!r}")

    def block(parent: int, keyword_line: int) -> None:
        """After ROOT/JOINT: name { OFFSET .. CHANNELS .. (JOINT|End Site)* }"""
        lineno, name = take("a joint name")
        if name == "{":
            raise located_error(path, lineno, "joint without a name")
        if any(j.name == name for j in joints):
            raise located_error(path, lineno, f"joint name {name!r} used twice")
        expect("{")
        expect("OFFSET")
        offset = np.array([number("OFFSET") for _ in range(3)])
        lineno, word = take("CHANNELS")
        channels: list[str] = []
        if word.upper() == "CHANNELS":
            n = number("CHANNELS count")
            if n != int(n) or not 0 <= n <= 6:
                raise located_error(path, lineno, f"CHANNELS count must be 0..6, got {n:g}")
            for _ in range(int(n)):
                cl, ch = take("a channel name")
                canon = next((c for c in CHANNELS if c.lower() == ch.lower()), None)
                if canon is None:
                    raise located_error(path, cl, f"unknown channel {ch!r} (expected one of {' '.join(CHANNELS)})")
                if canon in channels:
                    raise located_error(path, cl, f"channel {canon} repeated in joint {name!r}")
                channels.append(canon)
        else:
            pos_back()
        me = len(joints)
        joints.append(BvhJoint(name=name, parent=parent, offset=offset, channels=channels))
        if parent >= 0:
            joints[parent].children.append(me)
        while True:
            lineno, word = take("JOINT, End Site or }")
            key = word.upper()
            if key == "}":
                return
            if key == "JOINT":
                block(me, lineno)
            elif key == "END":
                expect("Site")
                expect("{")
                expect("OFFSET")
                joints[me].end_site = np.array([number("End Site OFFSET") for _ in range(3)])
                expect("}")
            else:
                raise located_error(path, lineno, f"unexpected {word!r} in joint {name!r}")

    def pos_back() -> None:
        nonlocal pos
        pos -= 1

    lineno, word = take("ROOT")
    if word.upper() != "ROOT":
        raise located_error(path, lineno, f"expected ROOT, got {word!r}")
    block(-1, lineno)
    if pos != len(tokens):
        raise located_error(path, tokens[pos][0], f"unexpected {tokens[pos][1]!r} after the root's block")
    if motion_line is None:
        raise located_error(path, None, "no MOTION section (truncated file?)")

    rest = [(i, ln) for i, ln in enumerate(lines[motion_line:], motion_line + 1) if ln.strip()]
    header: dict[str, tuple[int, str]] = {}
    while rest and ":" in rest[0][1] and rest[0][1].split(":", 1)[0].strip().lower() in ("frames", "frame time"):
        lineno, ln = rest.pop(0)
        key, val = ln.split(":", 1)
        header[key.strip().lower()] = (lineno, val.strip())
    for key in ("frames", "frame time"):
        if key not in header:
            raise located_error(path, motion_line, f"MOTION has no '{key.title()}:' line")
    try:
        n_frames = int(header["frames"][1])
    except ValueError:
        raise located_error(path, header["frames"][0], f"Frames: {header['frames'][1]!r} is not an integer") from None
    try:
        frame_time = float(header["frame time"][1])
    except ValueError:
        raise located_error(path, header["frame time"][0], f"Frame Time: {header['frame time'][1]!r} is not a number") from None
    if not (frame_time > 0 and math.isfinite(frame_time)):
        raise located_error(path, header["frame time"][0], f"Frame Time must be positive, got {frame_time:g}")
    if n_frames < 1:
        raise located_error(path, header["frames"][0], f"Frames must be >= 1, got {n_frames}")
    n_channels = sum(len(j.channels) for j in joints)
    if len(rest) < n_frames:
        raise located_error(path, rest[-1][0] if rest else header["frame time"][0],
                    f"{len(rest)} frame lines for Frames: {n_frames} (truncated file?)")
    if len(rest) > n_frames:
        raise located_error(path, rest[n_frames][0], f"more frame lines than Frames: {n_frames}")
    try:
        values = np.array(" ".join(ln for _, ln in rest).split(), dtype=np.float64)
    except ValueError:
        values = None
    if values is None or values.size != n_frames * n_channels:
        for lineno, ln in rest:   # find the faulty line
            words = ln.split()
            if len(words) != n_channels:
                raise located_error(path, lineno, f"frame line has {len(words)} values, expected {n_channels}")
            try:
                [float(w) for w in words]
            except ValueError:
                raise located_error(path, lineno, "frame line holds a malformed number") from None
    values = values.reshape(n_frames, n_channels)
    if not np.all(np.isfinite(values)):
        bad = int(np.flatnonzero(~np.isfinite(values).all(1))[0])
        raise located_error(path, rest[bad][0], "frame line holds a non-finite number")
    return BvhFile(path=path, joints=joints, frame_time=frame_time, values=values)


@dataclass
class BvhFK:
    rotations: np.ndarray     # (F, J, 3, 3) world rotation of each joint (rest -> posed)
    origins: np.ndarray       # (F, J, 3) world position of each joint, file units
    ends: np.ndarray          # (F, J, 3) world position of each End Site (nan where none)


def bvh_forward_kinematics(bvh: BvhFile, frames: np.ndarray | None = None) -> BvhFK:
    """World rotations and positions of every joint for `frames` (all when None), file units."""
    idx = np.arange(len(bvh)) if frames is None else np.asarray(frames)
    vals = bvh.values[idx]
    n, nj = len(idx), len(bvh.joints)
    rot = np.empty((n, nj, 3, 3))
    org = np.empty((n, nj, 3))
    ends = np.full((n, nj, 3), np.nan)
    col = 0
    for j, joint in enumerate(bvh.joints):
        local = np.broadcast_to(np.eye(3), (n, 3, 3))
        trans = np.broadcast_to(joint.offset, (n, 3)).copy()
        for ch in joint.channels:
            v = vals[:, col]
            col += 1
            if ch.endswith("rotation"):
                local = local @ axis_rotation(ch[0].lower(), np.deg2rad(v))
            else:
                trans[:, "XYZ".index(ch[0])] = v
        if joint.parent < 0:
            rot[:, j] = local
            org[:, j] = trans
        else:
            rot[:, j] = rot[:, joint.parent] @ local
            org[:, j] = org[:, joint.parent] + np.einsum("nij,nj->ni", rot[:, joint.parent], trans)
        if joint.end_site is not None:
            ends[:, j] = org[:, j] + rot[:, j] @ joint.end_site
    return BvhFK(rotations=rot, origins=org, ends=ends)


def _rest_origins(bvh: BvhFile) -> np.ndarray:
    out = np.zeros((len(bvh.joints), 3))
    for j, joint in enumerate(bvh.joints):
        out[j] = joint.offset + (out[joint.parent] if joint.parent >= 0 else 0.0)
    return out


def _cmu_names(bvh: BvhFile) -> dict[str, int]:
    """cmu_mb bone name -> joint index (aliases resolved)."""
    return {ALIASES.get(j.name, j.name): i for i, j in enumerate(bvh.joints)}


def _head_top_rest(bvh: BvhFile, names: dict[str, int]) -> tuple[int, np.ndarray]:
    """(joint index of Head, rest offset of its end) - the End Site, else its first child."""
    h = names[HEAD_TOP_BONE]
    joint = bvh.joints[h]
    if joint.end_site is not None:
        return h, joint.end_site
    if joint.children:
        return h, bvh.joints[joint.children[0]].offset
    raise located_error(bvh.path, None, f"joint {HEAD_TOP_BONE!r} has no End Site or child (no head top)")


def detect_scale(bvh: BvhFile) -> float:
    """Metres per file unit: the unit of `UNITS` that makes the rest skeleton's ankle-to-head-top
    chain closest to an adult's (in ratio)."""
    names = _cmu_names(bvh)
    rest = _rest_origins(bvh)
    h, top = _head_top_rest(bvh, names)
    head_top = rest[h] + top
    leg = sum(np.linalg.norm(rest[names[a]] - rest[names[b]]) for a, b in
              (("LeftFoot", "LeftLeg"), ("LeftLeg", "LeftUpLeg")))
    height = leg + abs(head_top[1] - rest[names["LeftUpLeg"]][1])
    if not height > 0:
        raise located_error(bvh.path, None, "the rest skeleton has no height (cannot detect its unit)")
    return min(UNITS, key=lambda u: abs(math.log(height * u / STANDING_HEIGHT_M)))


def bvh_to_pose_arrays(bvh: BvhFile, frames: np.ndarray | None = None,
                       scale: float | None = None) -> dict[str, np.ndarray]:
    """The pose-set arrays (as kinematics.motion_to_pose_arrays) of a CMU-named BVH: rotations
    (F, 31, 3, 3), rest_directions (F, 31, 3), joints_3d (F, 15, 3) root-relative metres,
    facing_yaw (F,). A cmu_mb bone the file lacks takes its nearest present ancestor's rotation
    and rest direction."""
    names = _cmu_names(bvh)
    missing = [b for b in {*JOINT_AT_ORIGIN.values(), HEAD_TOP_BONE} if b not in names]
    if missing:
        raise located_error(bvh.path, None, f"no joint {sorted(missing)[0]!r} (expects the CMU BVH joint names: "
                                    f"Hips, LeftUpLeg, LeftLeg, ..., Head)")
    scale = detect_scale(bvh) if scale is None else float(scale)
    fk = bvh_forward_kinematics(bvh, frames)
    n = fk.rotations.shape[0]
    rest_origins = _rest_origins(bvh)

    rot = np.empty((n, len(BONE_NAMES), 3, 3))
    rest_dirs = np.empty((len(BONE_NAMES), 3))
    for b, bone in enumerate(BONE_NAMES):
        j = names.get(bone)
        if j is None:
            # nearest present ancestor in the ASF hierarchy of the same bone names
            # (BONE_NAMES lists parents first, so the ancestor is filled in already)
            anc = _CMU_PARENT.get(bone)
            while anc is not None and anc not in names:
                anc = _CMU_PARENT.get(anc)
            pb = BONE_NAMES.index(anc if anc is not None else "Hips")
            rot[:, b] = rot[:, pb]
            rest_dirs[b] = rest_dirs[pb]
            continue
        rot[:, b] = fk.rotations[:, j]
        rest_dirs[b] = _bone_rest_vector(bvh, j, rest_origins)
    rotations = _to_z_up_matrices(rot)
    rest_z = _to_z_up_vectors(rest_dirs)
    norm = np.linalg.norm(rest_z, axis=-1, keepdims=True)
    rest_z = np.where(norm > 1e-9, rest_z / np.where(norm > 1e-9, norm, 1.0), HIPS_REST_DIRECTION)
    rest_z[BONE_NAMES.index("Hips")] = HIPS_REST_DIRECTION

    pts = np.empty((n, len(JOINTS), 3))
    for k, joint in enumerate(JOINTS):
        if joint == "head_top":
            h, top = _head_top_rest(bvh, names)
            pts[:, k] = fk.origins[:, h] + fk.rotations[:, h] @ top
        else:
            pts[:, k] = fk.origins[:, names[JOINT_AT_ORIGIN[joint]]]
    joints = _to_z_up_vectors((pts - pts[:, :1]) * scale)
    return {
        "rotations": rotations.astype(np.float32),
        "rest_directions": np.broadcast_to(rest_z, (n, len(BONE_NAMES), 3)).astype(np.float32),
        "joints_3d": joints.astype(np.float32),
        "facing_yaw": facing_yaw_of(joints).astype(np.float32),
    }


# cmu_mb bone -> parent bone (the CMU ASF hierarchy, which every CMU subject shares)
_CMU_PARENT = {
    "LHipJoint": "Hips", "LeftUpLeg": "LHipJoint", "LeftLeg": "LeftUpLeg", "LeftFoot": "LeftLeg",
    "LeftToeBase": "LeftFoot", "RHipJoint": "Hips", "RightUpLeg": "RHipJoint", "RightLeg": "RightUpLeg",
    "RightFoot": "RightLeg", "RightToeBase": "RightFoot", "LowerBack": "Hips", "Spine": "LowerBack",
    "Spine1": "Spine", "Neck": "Spine1", "Neck1": "Neck", "Head": "Neck1",
    "LeftShoulder": "Spine1", "LeftArm": "LeftShoulder", "LeftForeArm": "LeftArm", "LeftHand": "LeftForeArm",
    "LThumb": "LeftHand", "LeftFingerBase": "LeftHand", "LeftHandFinger1": "LeftFingerBase",
    "RightShoulder": "Spine1", "RightArm": "RightShoulder", "RightForeArm": "RightArm",
    "RightHand": "RightForeArm", "RThumb": "RightHand", "RightFingerBase": "RightHand",
    "RightHandFinger1": "RightFingerBase",
}
assert sorted([*_CMU_PARENT, "Hips"]) == sorted(BONE_NAMES)
assert all(BONE_NAMES.index(p) < BONE_NAMES.index(c) for c, p in _CMU_PARENT.items())


def _bone_rest_vector(bvh: BvhFile, j: int, rest_origins: np.ndarray) -> np.ndarray:
    """Rest vector (file frame) of joint j's bone: to its continuation child, else its first child
    with a non-zero offset, else its End Site; zero when the bone has no length."""
    joint = bvh.joints[j]
    kids = joint.children
    want = CONTINUATION.get(ALIASES.get(joint.name, joint.name))
    for c in kids:
        if bvh.joints[c].name == want and np.linalg.norm(bvh.joints[c].offset) > 1e-9:
            return bvh.joints[c].offset
    for c in kids:
        if np.linalg.norm(bvh.joints[c].offset) > 1e-9:
            return bvh.joints[c].offset
    if joint.end_site is not None:
        return joint.end_site
    return np.zeros(3)


def bvh_clip_poses(path: str | Path, fps: float = 30, scale: float | None = None,
                   source: str = "cmu", subject: str | None = None) -> PoseSet:
    """One BVH clip as poses, resampled from its Frame Time to `fps`. Pose ids
    "<source>/<file stem>/f<frame index at the file's rate>"."""
    path = Path(path)
    bvh = parse_bvh(path)
    frames = resample_indices(len(bvh), bvh.fps, fps)
    arrays = bvh_to_pose_arrays(bvh, frames, scale)
    n = len(frames)
    subject = subject if subject is not None else bvh_subject(path)
    return PoseSet(**arrays, source=np.full(n, source),
                   pose_id=np.array([f"{source}/{path.stem}/f{i:06d}" for i in frames]),
                   subject=np.full(n, subject))


def bvh_subject(path: Path) -> str:
    """The subject of a clip file: its folder when that is a number ("01"), else the part of the
    file name before the first "_" ("01_02.bvh" -> "01")."""
    path = Path(path)
    return path.parent.name if path.parent.name.isdigit() else path.stem.split("_", 1)[0]


# ----------------------------------------------------------------------------------------------
# export (an ASF/AMC motion as BVH, in the CMU conversion's layout)

def write_bvh(path: str | Path, skeleton: Skeleton, motion: Motion, frames: np.ndarray | None = None,
              order: str = "ZYX", unit_m: float = INCH_M / 0.45, frame_time: float = 1.0 / 120) -> None:
    """Write `frames` of an AMC motion as a BVH with cmu_mb joint names: one joint per ASF bone at
    the bone's start, the root with 6 channels, rotation channels in `order` (e.g. "ZYX"),
    lengths in units of `unit_m` metres, Y up (the ASF frame)."""
    if sorted(order.upper()) != ["X", "Y", "Z"]:
        raise ValueError(f"order must be a permutation of XYZ, got {order!r}")
    order = order.upper()
    fk = forward_kinematics(skeleton, motion, frames)
    names = fk.names
    parent = {n: (skeleton.parent[n] if n != "root" else None) for n in names}
    vec = {n: (skeleton.bones[n].direction * skeleton.bones[n].length if n != "root" else np.zeros(3))
           for n in names}
    rot_ch = " ".join(f"{a}rotation" for a in order)
    out = ["HIERARCHY"]

    def emit(name: str, depth: int) -> None:
        pad = "\t" * depth
        kids = skeleton.children.get(name, [])
        offset = vec[parent[name]] / unit_m if parent[name] is not None else np.zeros(3)
        head = "ROOT" if parent[name] is None else "JOINT"
        out.append(f"{pad}{head} {ASF_TO_CMU_MB[name]}")
        out.append(f"{pad}{{")
        out.append(f"{pad}\tOFFSET {offset[0]:.6f} {offset[1]:.6f} {offset[2]:.6f}")
        if parent[name] is None:
            out.append(f"{pad}\tCHANNELS 6 Xposition Yposition Zposition {rot_ch}")
        else:
            out.append(f"{pad}\tCHANNELS 3 {rot_ch}")
        for k in kids:
            emit(k, depth + 1)
        if not kids:
            e = vec[name] / unit_m
            out.append(f"{pad}\tEnd Site")
            out.append(f"{pad}\t{{")
            out.append(f"{pad}\t\tOFFSET {e[0]:.6f} {e[1]:.6f} {e[2]:.6f}")
            out.append(f"{pad}\t}}")
        out.append(f"{pad}}}")

    emit("root", 0)
    # joints in the order they were written (depth-first, children in ASF order)
    written: list[str] = []

    def walk(name: str) -> None:
        written.append(name)
        for k in skeleton.children.get(name, []):
            walk(k)

    walk("root")
    n = fk.rotations.shape[0]
    cols = []
    for name in written:
        g = fk.rotations[:, names.index(name)]
        p = parent[name]
        local = g if p is None else np.swapaxes(fk.rotations[:, names.index(p)], -1, -2) @ g
        angles = Rotation.from_matrix(local).as_euler(order, degrees=True)   # intrinsic: R = R1 R2 R3
        if p is None:
            cols.append(fk.ends[:, 0] / unit_m)
        cols.append(angles)
    values = np.concatenate(cols, axis=1)
    out += ["MOTION", f"Frames: {n}", f"Frame Time: {frame_time:.8f}"]
    out += [" ".join(f"{v:.6f}" for v in row) for row in values]
    atomic_write_text(Path(path), "\n".join(out) + "\n")
