"""synth.poses.bvh: the BVH parser, its CMU skeleton mapping and its ingest beside AMC clips.

There is no BVH in the data mirror, so real AMC clips are written as BVH (synth.poses.bvh.write_bvh,
the CMU conversion's layout) and the parsed poses are compared with the AMC forward kinematics.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from synth.io_utils import InputError
from synth.poses.asf_amc import INCH_M, parse_amc, parse_asf
from synth.poses.bvh import (bvh_clip_poses, bvh_to_pose_arrays, detect_scale, parse_bvh, write_bvh)
from synth.poses.kinematics import motion_to_pose_arrays
from synth.poses.sampling import clip_poses, find_clips, load_clips

CLIP = "16_49"          # 127 frames at 120 Hz (the shortest clip of the mirror)


@pytest.fixture(scope="module")
def amc(shared_data):
    skeleton = parse_asf(shared_data / "cmu_mocap" / "asf" / "16.asf")
    return skeleton, parse_amc(shared_data / "cmu_mocap" / "amc" / "16" / f"{CLIP}.amc", skeleton)


@pytest.mark.parametrize("order,unit_m", [("ZYX", INCH_M / 0.45), ("XYZ", 0.01), ("YZX", 1.0), ("ZXY", INCH_M)])
def test_bvh_from_amc_gives_the_amc_poses(amc, tmp_path, order, unit_m):
    """Any rotation-channel order and unit: the parsed rotations, rest directions and joints equal
    the AMC forward kinematics, and the unit is detected from the skeleton's height."""
    skeleton, motion = amc
    frames = np.arange(0, len(motion), 9)
    path = tmp_path / f"{CLIP}.bvh"
    write_bvh(path, skeleton, motion, frames, order=order, unit_m=unit_m)
    bvh = parse_bvh(path)
    assert len(bvh) == len(frames) and bvh.joints[0].name == "Hips"
    assert bvh.joints[1].channels == [f"{a}rotation" for a in order]
    assert detect_scale(bvh) == pytest.approx(unit_m)
    got = bvh_to_pose_arrays(bvh)
    want = motion_to_pose_arrays(skeleton, motion, frames)
    np.testing.assert_allclose(got["joints_3d"], want["joints_3d"], atol=2e-5)   # metres
    np.testing.assert_allclose(got["rotations"], want["rotations"], atol=2e-5)
    np.testing.assert_allclose(got["rest_directions"], want["rest_directions"], atol=2e-5)
    np.testing.assert_allclose(got["facing_yaw"], want["facing_yaw"], atol=1e-4)
    # an explicit scale overrides the detection
    half = bvh_to_pose_arrays(bvh, scale=unit_m / 2)
    np.testing.assert_allclose(half["joints_3d"], want["joints_3d"] / 2, atol=2e-5)


def test_bvh_clips_are_ingested_like_amc_clips(shared_data, amc, tmp_path):
    """A data directory with a BVH clip (and a broken one): find_clips/load_clips read the good one
    at the requested rate, the same poses as the AMC clip, and skip the bad one with a warning."""
    skeleton, motion = amc
    bvh_dir = tmp_path / "data" / "cmu_mocap" / "bvh" / "16"
    bvh_dir.mkdir(parents=True)
    write_bvh(bvh_dir / f"{CLIP}.bvh", skeleton, motion, frame_time=1 / 120)
    text = (bvh_dir / f"{CLIP}.bvh").read_text()
    (bvh_dir / "16_99.bvh").write_text(text[: int(len(text) * 0.7)])      # truncated in MOTION
    clips = find_clips(tmp_path / "data")
    assert [p.name for p in clips] == [f"{CLIP}.bvh", "16_99.bvh"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        poses = load_clips(tmp_path / "data", fps=30, progress=False)
    msgs = [str(w.message) for w in caught]
    assert len(msgs) == 1 and "16_99.bvh" in msgs[0] and "truncated" in msgs[0]
    want = clip_poses(skeleton, shared_data / "cmu_mocap" / "amc" / "16" / f"{CLIP}.amc", fps=30)
    assert poses.pose_id.tolist() == want.pose_id.tolist()
    assert set(poses.source) == {"cmu"} and set(poses.subject) == {"16"}
    np.testing.assert_allclose(poses.joints_3d, want.joints_3d, atol=2e-5)
    np.testing.assert_allclose(poses.rotations, want.rotations, atol=2e-5)
    # subject selection covers BVH clips too
    assert find_clips(tmp_path / "data", subjects=["16"]) == clips
    with pytest.raises(InputError, match="no clips for subject"):
        find_clips(tmp_path / "data", subjects=["02"])


def test_bvh_clip_poses_resamples_by_frame_time(amc, tmp_path):
    skeleton, motion = amc
    path = tmp_path / "60hz.bvh"
    write_bvh(path, skeleton, motion, np.arange(0, 60), frame_time=1 / 60)
    poses = bvh_clip_poses(path, fps=30, subject="16")
    assert len(poses) == 30 and poses.pose_id[1] == "cmu/60hz/f000002"


def _good(amc, tmp_path) -> str:
    skeleton, motion = amc
    path = tmp_path / "good.bvh"
    write_bvh(path, skeleton, motion, np.arange(3))
    return path.read_text()


@pytest.mark.parametrize("edit,fault", [
    (lambda t: t[: t.index("MOTION") // 2], "file ends inside the hierarchy"),
    (lambda t: t.split("MOTION")[0], "no MOTION section"),
    (lambda t: t.replace("CHANNELS 3 Zrotation", "CHANNELS 3 Wrotation", 1), "unknown channel 'Wrotation'"),
    (lambda t: t.replace("OFFSET", "OFFSET x", 2), "is not a number"),
    (lambda t: t.replace("Frame Time:", "Frametime:"), "no 'Frame Time:' line"),
    (lambda t: t.rstrip("\n").rsplit("\n", 1)[0] + "\n", "truncated"),
    (lambda t: t.rstrip("\n") + " 1.0\n", "values, expected"),
    (lambda t: t.replace("Frames: 3", "Frames: 0"), "Frames must be >= 1"),
    (lambda t: t.replace("JOINT LeftForeArm", "JOINT LeftLowerArm"), "no joint 'LeftForeArm'"),
    (lambda t: "Hello\n" + t, "not a BVH file"),
])
def test_malformed_bvh_is_one_line_naming_the_file(amc, tmp_path, edit, fault):
    path = tmp_path / "bad.bvh"
    path.write_text(edit(_good(amc, tmp_path)))
    with pytest.raises(InputError) as e:
        bvh_to_pose_arrays(parse_bvh(path))
    msg = str(e.value)
    assert fault in msg and str(path) in msg and "\n" not in msg
