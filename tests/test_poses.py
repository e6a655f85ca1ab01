"""synth.poses on the real CMU MoCap files of ../shared/data/cmu_mocap."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED_DATA
from synth.io_utils import InputError
from synth.poses import (BONE_NAMES, PoseSet, asf_path_for_clip, forward_kinematics, load_clips,
                         load_poses, motion_to_pose_arrays, parse_amc, parse_asf, sample_poses,
                         save_poses, thin)
from synth.poses.kinematics import ASF_TO_CMU_MB, Y_UP_TO_Z_UP, euler_to_matrix
from synth.poses.sampling import canonical_joints, clip_poses
from synth.scene import JOINTS

DATA = SHARED_DATA   # SYNTH_TEST_DATA, else ../shared/data beside the checkout
CMU = DATA / "cmu_mocap"
WALK = "16_15"          # "walk" (official description in the manifest), 471 frames


def J(name: str) -> int:
    return JOINTS.index(name)


@pytest.fixture(scope="module")
def skeleton16():
    return parse_asf(CMU / "asf" / "16.asf")


@pytest.fixture(scope="module")
def walk(skeleton16):
    return parse_amc(CMU / "amc" / "16" / f"{WALK}.amc", skeleton16)


@pytest.fixture(scope="module")
def manifest():
    with open(CMU / "index" / "clips_main.csv", newline="") as f:
        return {row["clip_id"]: row for row in csv.DictReader(f)}


def _single_line_error(excinfo, path: Path, *fragments: str) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    assert str(path) in msg
    for frag in fragments:
        assert frag in msg, msg
    return msg


# ---------------------------------------------------------------- parsing

def test_parse_asf_real(skeleton16):
    sk = skeleton16
    assert sk.metres_per_unit == pytest.approx(0.0254 / 0.45)
    assert sk.root_order == ["TX", "TY", "TZ", "RX", "RY", "RZ"]
    assert sk.root_axis_order == "XYZ"
    assert len(sk.bones) == 30
    assert set(sk.bones) | {"root"} == set(ASF_TO_CMU_MB)
    femur = sk.bones["lfemur"]
    assert femur.dofs == ["rx", "ry", "rz"]
    assert femur.axis == pytest.approx([0, 0, 20])
    assert femur.axis_order == "XYZ"
    assert femur.limits[0] == (-160.0, 20.0)
    assert femur.length == pytest.approx(7.03469 * 0.0254 / 0.45)
    assert np.linalg.norm(femur.direction) == pytest.approx(1.0)
    assert sk.parent["lfemur"] == "lhipjoint" and sk.parent["lhipjoint"] == "root"
    order = sk.topological_order()
    assert all(sk.parent[b] == "root" or order.index(sk.parent[b]) < order.index(b) for b in order)


@pytest.mark.parametrize("subject", ["01", "06", "13", "14", "16", "49"])
def test_bone_lengths_plausible_metres(subject):
    sk = parse_asf(CMU / "asf" / f"{subject}.asf")
    for side in "lr":
        leg = sk.bones[f"{side}femur"].length + sk.bones[f"{side}tibia"].length
        assert 0.8 <= leg <= 0.9
    # Real skeletons are nearly, not exactly, symmetric (CMU: up to 4 cm, subject 13's humerus).
    for bone in ("hipjoint", "femur", "tibia", "foot", "toes", "clavicle", "humerus", "radius", "hand"):
        left, right = sk.bones["l" + bone].length, sk.bones["r" + bone].length
        assert abs(left - right) < 0.05, (bone, left, right)
    # Mirror-image rest directions: x flips sign, y and z agree.
    for bone in ("hipjoint", "femur", "tibia", "humerus", "radius"):
        left, right = sk.bones["l" + bone].direction, sk.bones["r" + bone].direction
        assert left[0] * right[0] <= 0 and abs(left[0] + right[0]) < 0.1


def test_parse_amc_real(walk, manifest, skeleton16):
    assert len(walk) == int(manifest[WALK]["n_frames"])
    assert walk.frame_numbers[0] == 1 and np.all(np.diff(walk.frame_numbers) == 1)
    assert walk.values["root"].shape == (len(walk), 6)
    assert walk.values["lfemur"].shape == (len(walk), 3)
    assert walk.values["ltibia"].shape == (len(walk), 1)
    assert "lhipjoint" not in walk.values          # no dofs, no AMC line
    # Standing height of the root: TY ~ 16.6 units ~ 0.94 m.
    assert 0.8 < np.median(walk.root_translation[:, 1]) < 1.1
    # First frame values straight from the file.
    lines = (CMU / "amc" / "16" / f"{WALK}.amc").read_text().splitlines()
    root_line = next(line for line in lines if line.startswith("root "))
    assert walk.values["root"][0] == pytest.approx([float(v) for v in root_line.split()[1:]])


def test_fast_and_line_by_line_parse_agree(tmp_path, skeleton16, walk):
    # Blank lines between frames push the parser onto its line-by-line path.
    text = (CMU / "amc" / "16" / f"{WALK}.amc").read_text()
    spaced = tmp_path / f"{WALK}.amc"
    spaced.write_text(text.replace("\n2\n", "\n\n2\n"))
    slow = parse_amc(spaced, skeleton16)
    assert np.array_equal(slow.frame_numbers, walk.frame_numbers)
    for name, values in walk.values.items():
        assert np.array_equal(slow.values[name], values)


# ---------------------------------------------------------------- bad input

def _amc_lines() -> list[str]:
    return (CMU / "amc" / "16" / f"{WALK}.amc").read_text().splitlines(keepends=True)


def test_truncated_amc(tmp_path, skeleton16):
    lines = _amc_lines()
    cut = tmp_path / "cut.amc"
    # Cut in the middle of the last frame, inside a bone line ("lfemur a b c" -> "lfemur a").
    last_frame = max(i for i, line in enumerate(lines) if line.strip().isdigit())
    femur = next(i for i in range(last_frame, len(lines)) if lines[i].startswith("rfemur"))
    cut.write_text("".join(lines[:femur]) + lines[femur].split()[0] + " " + lines[femur].split()[1] + "\n")
    with pytest.raises(InputError) as e:
        parse_amc(cut, skeleton16)
    _single_line_error(e, cut, f":{femur + 1}:", "missing values")
    # Cut after a complete bone line: the last frame lacks bone lines.
    cut.write_text("".join(lines[:femur]))
    with pytest.raises(InputError) as e:
        parse_amc(cut, skeleton16)
    _single_line_error(e, cut, f":{last_frame + 1}:", "incomplete")


def test_malformed_number_unknown_bone_frame_sequence(tmp_path, skeleton16):
    lines = _amc_lines()
    i = next(k for k, line in enumerate(lines) if line.startswith("lradius"))
    bad = tmp_path / "bad.amc"
    bad.write_text("".join(lines[:i] + ["lradius 1.2.3\n"] + lines[i + 1:]))
    with pytest.raises(InputError) as e:
        parse_amc(bad, skeleton16)
    _single_line_error(e, bad, f":{i + 1}:", "malformed number", "1.2.3")

    bad.write_text("".join(lines[:i] + ["lelbow 12.0\n"] + lines[i + 1:]))
    with pytest.raises(InputError) as e:
        parse_amc(bad, skeleton16)
    _single_line_error(e, bad, f":{i + 1}:", "unknown bone name", "lelbow")

    frame_lines = [k for k, line in enumerate(lines) if line.strip().isdigit()]
    k = frame_lines[5]
    bad.write_text("".join(lines[:k] + ["9\n"] + lines[k + 1:]))
    with pytest.raises(InputError) as e:
        parse_amc(bad, skeleton16)
    _single_line_error(e, bad, f":{k + 1}:", "out of sequence")


def test_asf_missing_section(tmp_path):
    text = (CMU / "asf" / "16.asf").read_text()
    bad = tmp_path / "16.asf"
    bad.write_text(text[:text.index(":hierarchy")])
    with pytest.raises(InputError) as e:
        parse_asf(bad)
    _single_line_error(e, bad, ":hierarchy")
    bad.write_text(text.replace("length 7.03469", "length 7.0x3469"))
    with pytest.raises(InputError) as e:
        parse_asf(bad)
    _single_line_error(e, bad, "malformed number")


def _mini_data_dir(tmp_path: Path, with_asf: bool = True) -> Path:
    data = tmp_path / "data"
    (data / "cmu_mocap" / "amc" / "16").mkdir(parents=True)
    (data / "cmu_mocap" / "asf").mkdir(parents=True)
    for clip in (WALK, "16_36"):
        shutil.copy(CMU / "amc" / "16" / f"{clip}.amc", data / "cmu_mocap" / "amc" / "16")
    if with_asf:
        shutil.copy(CMU / "asf" / "16.asf", data / "cmu_mocap" / "asf")
    return data


def test_missing_asf(tmp_path):
    data = _mini_data_dir(tmp_path, with_asf=False)
    with pytest.raises(InputError) as e:
        asf_path_for_clip(data, WALK)
    _single_line_error(e, data / "cmu_mocap" / "asf" / "16.asf", f"no ASF for clip {WALK}", "expected")
    with pytest.warns(UserWarning, match="no ASF for clip"):
        assert len(load_clips(data, progress=False)) == 0
    with pytest.raises(InputError):
        load_clips(data, progress=False, strict=True)


def test_bad_clip_skipped_with_warning(tmp_path):
    data = _mini_data_dir(tmp_path)
    bad = data / "cmu_mocap" / "amc" / "16" / "16_36.amc"
    bad.write_text(bad.read_text()[:-40])
    with pytest.warns(UserWarning, match="16_36"):
        poses = load_clips(data, fps=30, progress=False)
    assert set(poses.clip_of()) == {f"cmu/{WALK}"}
    with pytest.raises(InputError, match="16_36"):
        load_clips(data, progress=False, strict=True)


# ---------------------------------------------------------------- kinematics

def test_euler_convention():
    a = np.array([10.0, 20.0, 30.0])
    rx, ry, rz = (euler_to_matrix(np.eye(3)[i] * a[i], "XYZ") for i in range(3))
    assert euler_to_matrix(a, "XYZ") == pytest.approx(rz @ ry @ rx)
    assert euler_to_matrix(a, "ZYX") == pytest.approx(rx @ ry @ rz)
    # Right-handed: +90 deg about z takes x to y.
    assert euler_to_matrix([0, 0, 90]) @ [1, 0, 0] == pytest.approx([0, 1, 0], abs=1e-12)


def test_rest_pose_is_t_pose(skeleton16):
    pose = motion_to_pose_arrays(skeleton16)
    j = pose["joints_3d"][0]
    assert np.allclose(j[J("pelvis")], 0)
    for side, sign in (("left", 1), ("right", -1)):
        sh, el, wr = j[J(f"{side}_shoulder")], j[J(f"{side}_elbow")], j[J(f"{side}_wrist")]
        # Arms horizontal (Z up), pointing out to the person's side (left = +X).
        assert el[2] == pytest.approx(sh[2], abs=1e-4) and wr[2] == pytest.approx(sh[2], abs=1e-4)
        assert sign * (wr[0] - el[0]) > 0.15 and sign * (el[0] - sh[0]) > 0.2
        assert j[J(f"{side}_ankle")][2] < j[J(f"{side}_knee")][2] < j[J(f"{side}_hip")][2] < 0
    assert j[J("head_top")][2] > j[J("neck")][2] > 0.3
    assert np.allclose(pose["rotations"][0], np.eye(3), atol=1e-6)
    assert pose["facing_yaw"][0] == pytest.approx(0.0, abs=1e-6)
    # The feet point forward, i.e. towards -Y in the Z-up frame.
    foot = pose["rest_directions"][0, BONE_NAMES.index("LeftFoot")]
    assert foot[1] < -0.9


def test_walk_feet_on_ground_head_above_pelvis(skeleton16, walk):
    fk = forward_kinematics(skeleton16, walk)
    height = fk.ends[..., 1]                                        # Y up in the ASF frame
    feet = [fk.index(b) for b in ("lfoot", "ltoes", "rfoot", "rtoes", "ltibia", "rtibia")]
    lowest = height.min(axis=1)
    # The lowest point of the body is a foot in every frame and the feet stay near the ground.
    assert np.all(np.isin(height.argmin(axis=1), feet))
    assert np.all(lowest - lowest.min() < 0.1)
    assert lowest.min() > -0.1
    pose = motion_to_pose_arrays(skeleton16, walk)
    head = pose["joints_3d"][:, J("head_top"), 2]
    assert np.all(head > 0.45)
    assert np.all(pose["joints_3d"][:, J("left_ankle"), 2] < -0.6)


def test_pose_arrays_consistent_with_fk(skeleton16, walk):
    frames = np.arange(0, len(walk), 7)
    pose = motion_to_pose_arrays(skeleton16, walk, frames)
    n = len(frames)
    assert pose["rotations"].shape == (n, 31, 3, 3) and pose["rotations"].dtype == np.float32
    assert pose["rest_directions"].shape == (n, 31, 3)
    assert pose["joints_3d"].shape == (n, 15, 3)
    assert np.allclose(pose["joints_3d"][:, J("pelvis")], 0)
    R = pose["rotations"].astype(np.float64)
    assert np.allclose(R @ np.swapaxes(R, -1, -2), np.eye(3), atol=1e-5)
    assert np.allclose(np.linalg.det(R), 1.0, atol=1e-5)
    assert np.allclose(np.linalg.norm(pose["rest_directions"], axis=-1), 1.0, atol=1e-6)

    fk = forward_kinematics(skeleton16, walk, frames)
    ends = fk.ends @ Y_UP_TO_Z_UP.T
    posed = np.einsum("nbij,nbj->nbi", R, pose["rest_directions"])
    for b, name in enumerate(BONE_NAMES):
        asf = {v: k for k, v in ASF_TO_CMU_MB.items()}[name]
        if asf == "root":
            continue
        bone = skeleton16.bones[asf]
        vec = ends[:, fk.index(asf)] - ends[:, fk.index(skeleton16.parent[asf])]
        # FK keeps every bone's length in every frame ...
        assert np.allclose(np.linalg.norm(vec, axis=-1), bone.length, atol=1e-6)
        # ... and the rotation maps the rest direction onto the posed bone.
        if bone.length > 1e-3:
            unit = vec / np.linalg.norm(vec, axis=-1, keepdims=True)
            assert np.allclose(posed[:, b], unit, atol=1e-5), name
    # Joints are the FK ends, root-relative, in the Z-up frame.
    neck = ends[:, fk.index("thorax")] - ends[:, 0]
    assert np.allclose(pose["joints_3d"][:, J("neck")], neck, atol=1e-5)


def test_facing_yaw_follows_walking_direction(skeleton16, walk):
    pose = motion_to_pose_arrays(skeleton16, walk)
    root = walk.root_translation @ Y_UP_TO_Z_UP.T
    travel = root[60:, :2] - root[:-60, :2]
    travel /= np.linalg.norm(travel, axis=1, keepdims=True)
    yaw = pose["facing_yaw"][30:-30].astype(np.float64)
    forward = np.stack([np.sin(yaw), -np.cos(yaw)], axis=1)
    assert np.all((forward * travel).sum(axis=1) > 0.9)
    # With the yaw removed, everyone faces -Y: the left hip is on +X.
    poses = clip_poses(skeleton16, walk.path, fps=30)
    canon = canonical_joints(poses)
    assert np.all(canon[:, J("left_hip"), 0] > canon[:, J("right_hip"), 0])


# ---------------------------------------------------------------- pose file, thinning, sampling

@pytest.fixture(scope="module")
def walk_poses(skeleton16):
    return clip_poses(skeleton16, CMU / "amc" / "16" / f"{WALK}.amc", fps=30)


def test_clip_poses_ids(walk_poses, walk):
    assert len(walk_poses) == len(range(0, len(walk), 4))
    assert walk_poses.pose_id[0] == f"cmu/{WALK}/f000000"
    assert walk_poses.pose_id[1] == f"cmu/{WALK}/f000004"
    assert set(walk_poses.source) == {"cmu"} and set(walk_poses.subject) == {"16"}


def test_pose_file_round_trip(tmp_path, walk_poses):
    path = tmp_path / "poses.npz"
    save_poses(path, walk_poses)
    assert [p.name for p in tmp_path.iterdir()] == ["poses.npz"]     # no temp files left
    back = load_poses(path)
    assert len(back) == len(walk_poses)
    for key in ("joints_3d", "rotations", "rest_directions", "facing_yaw", "source", "pose_id", "subject"):
        assert np.array_equal(getattr(back, key), getattr(walk_poses, key)), key
    with np.load(path) as z:
        assert z["joints_3d"].shape == (len(walk_poses), 15, 3) and z["joints_3d"].dtype == np.float32
        assert z["joint_names"].tolist() == JOINTS
        assert z["bone_names"].tolist() == BONE_NAMES
    sub = back.subset([3, 1])
    assert sub.pose_id.tolist() == [walk_poses.pose_id[3], walk_poses.pose_id[1]]


def test_pose_file_validation(tmp_path, walk_poses):
    path = tmp_path / "poses.npz"
    save_poses(path, walk_poses)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    broken = dict(arrays)
    del broken["rotations"]
    bad = tmp_path / "missing.npz"
    np.savez(bad, **broken)
    with pytest.raises(InputError) as e:
        load_poses(bad)
    _single_line_error(e, bad, "missing key 'rotations'")
    broken = dict(arrays, joints_3d=arrays["joints_3d"][:, :14])
    bad = tmp_path / "shape.npz"
    np.savez(bad, **broken)
    with pytest.raises(InputError) as e:
        load_poses(bad)
    _single_line_error(e, bad, "'joints_3d'", "shape")
    bad = tmp_path / "junk.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InputError) as e:
        load_poses(bad)
    _single_line_error(e, bad)


def _mean_joint_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b, axis=-1).mean())


def test_thin_removes_repeated_frames(walk_poses):
    # A clip in which every frame appears twice (the copy one 120 Hz frame later).
    n = len(walk_poses)
    doubled = walk_poses.subset(np.repeat(np.arange(n), 2))
    frames = walk_poses.frame_index()
    doubled.pose_id = np.array([f"cmu/{WALK}/f{f + k:06d}" for f in frames for k in (0, 1)])
    thinned = thin(doubled, 0.02)
    kept = thinned.frame_index()
    assert np.all(kept % 4 == 0)                      # no copy survives
    assert len(thinned) == len(thin(walk_poses, 0.02))
    # Every pair of kept frames within a second is at least min_distance apart.
    canon = canonical_joints(thinned)
    for i in range(len(thinned)):
        for k in range(i + 1, len(thinned)):
            if kept[k] - kept[i] <= 120:
                assert _mean_joint_distance(canon[i], canon[k]) >= 0.02
    assert len(thin(walk_poses, 0.0)) == n
    assert len(thin(walk_poses, 0.05)) < n


def test_sample_poses_reproducible_and_cached(tmp_path):
    cache = tmp_path / "cache"
    a = sample_poses(DATA, 50, np.random.default_rng(7), subjects=["06"], progress=False, cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 1
    b = sample_poses(DATA, 50, np.random.default_rng(7), subjects=["06"], progress=False, cache_dir=cache)
    c = sample_poses(DATA, 50, np.random.default_rng(8), subjects=["06"], progress=False, cache_dir=cache)
    assert a.pose_id.tolist() == b.pose_id.tolist()
    assert np.array_equal(a.rotations, b.rotations)
    assert a.pose_id.tolist() != c.pose_id.tolist()
    assert len(set(a.pose_id)) == 50                  # without replacement
    assert set(a.subject) == {"06"}
    assert np.allclose(a.joints_3d[:, J("pelvis")], 0)
    with pytest.raises(InputError, match="subject"):
        sample_poses(DATA, 5, np.random.default_rng(0), subjects=["77"], progress=False, cache_dir=cache)


def test_pose_set_rejects_inconsistent_arrays(walk_poses):
    with pytest.raises(ValueError, match="rotations"):
        PoseSet(joints_3d=walk_poses.joints_3d, rotations=walk_poses.rotations[:, :30],
                rest_directions=walk_poses.rest_directions, facing_yaw=walk_poses.facing_yaw,
                source=walk_poses.source, pose_id=walk_poses.pose_id, subject=walk_poses.subject)
