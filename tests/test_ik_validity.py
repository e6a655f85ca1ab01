"""IK (15 joints -> cmu_mb rotations) and pose validity, on real CMU MoCap, the real Anny body,
the real Akhter & Black model files and a real (tiny) Blender render."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from conftest import CHECKER, small_config
from synth.io_utils import InputError
from synth.poses.asf_amc import parse_asf
from synth.poses.ik import REST_DIRECTIONS, REST_HINGES, REST_LENGTHS, poseset_from_joints, rest_joints
from synth.poses.joint_limits import JointAngleLimits, plausible_rates
from synth.poses.kinematics import BONE_NAMES, CMU_MB_TO_ASF, Y_UP_TO_Z_UP, euler_to_matrix, motion_to_pose_arrays
from synth.poses.posefile import load_poses, save_poses
from synth.poses.sampling import load_pool
from synth.poses.validity import BONES, MOCAP_SHARE_RANGES, PoseValidator, bone_lengths, segment_distance
from synth.scene import JOINTS

# Bones whose body direction the IK sets exactly; the other three are offset by the Anny rig
# itself (its Hips bone lifts the spine's base; its clavicles start 7 cm below its neck joint).
EXACT_BONES = [i for i, b in enumerate(BONES)
               if b not in (("pelvis", "neck"), ("neck", "right_shoulder"), ("neck", "left_shoulder"))]
SPINE = BONES.index(("pelvis", "neck"))
CLAVICLES = [BONES.index(("neck", "right_shoulder")), BONES.index(("neck", "left_shoulder"))]


def bone_dirs(joints: np.ndarray) -> np.ndarray:
    a = [JOINTS.index(p) for p, _ in BONES]
    b = [JOINTS.index(c) for _, c in BONES]
    d = joints[..., b, :] - joints[..., a, :]
    return d / np.linalg.norm(d, axis=-1, keepdims=True)


def angle_deg(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip(np.sum(u * v, axis=-1), -1.0, 1.0)))


@pytest.fixture(scope="module")
def pool16(shared_data, cache_dir):
    return load_pool(shared_data, subjects=["16"], progress=False, cache_dir=cache_dir / "poses")


@pytest.fixture(scope="module")
def limits_dir(shared_data) -> Path:
    return shared_data / "akhter_black_joint_limits"


# ---------------------------------------------------------------- IK

def test_canonical_rest_skeleton_is_subject_16s_asf(shared_data):
    sk = parse_asf(shared_data / "cmu_mocap" / "asf" / "16.asf")
    arrays = motion_to_pose_arrays(sk)
    np.testing.assert_allclose(REST_DIRECTIONS, arrays["rest_directions"][0], atol=1e-5)
    lengths = [0.0 if b == "Hips" else sk.bones[CMU_MB_TO_ASF[b]].length for b in BONE_NAMES]
    np.testing.assert_allclose(REST_LENGTHS, lengths, atol=1e-4)
    np.testing.assert_allclose(rest_joints(), arrays["joints_3d"][0], atol=1e-3)
    for upper, lower in (("LeftArm", "lradius"), ("RightArm", "rradius"), ("LeftUpLeg", "ltibia"),
                         ("RightUpLeg", "rtibia")):
        bone = sk.bones[lower]
        assert bone.dofs == ["rx"]
        x_axis = Y_UP_TO_Z_UP @ euler_to_matrix(bone.axis, bone.axis_order)[:, 0]
        np.testing.assert_allclose(REST_HINGES[upper], x_axis, atol=1e-5)


def test_ik_points_every_bone_along_the_joints_and_recovers_mocap_limb_rotations(pool16):
    poses = pool16
    ik = poseset_from_joints(poses.joints_3d, "cmu", poses.pose_id, poses.subject)
    assert len(ik) == len(poses) and ik.problem() is None
    np.testing.assert_allclose(ik.joints_3d, poses.joints_3d, atol=1e-6)
    np.testing.assert_allclose(ik.facing_yaw, poses.facing_yaw, atol=1e-5)
    # rotations are proper and take the rest directions onto the joints' directions
    R = ik.rotations.astype(np.float64)
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape), atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-5)
    posed = np.einsum("nbij,nbj->nbi", R, ik.rest_directions)
    J = poses.joints_3d.astype(np.float64)
    want = bone_dirs(J)
    for bone, (a, b) in {"LeftArm": ("left_shoulder", "left_elbow"), "RightForeArm": ("right_elbow", "right_wrist"),
                         "LeftLeg": ("left_knee", "left_ankle"), "RHipJoint": ("pelvis", "right_hip"),
                         "Spine1": ("pelvis", "neck"), "Head": ("neck", "head_top"),
                         "LeftShoulder": ("neck", "left_shoulder")}.items():
        err = angle_deg(posed[:, BONE_NAMES.index(bone)], want[:, BONES.index((a, b))])
        assert err.max() < 0.05, (bone, err.max())     # float32 storage
    # A MoCap elbow/knee has one dof, so where it is bent the IK's hinge-plane twist must give
    # back the MoCap upper-limb rotation itself.
    for bone, (a, b, c) in {"LeftArm": ("left_shoulder", "left_elbow", "left_wrist"),
                            "RightUpLeg": ("right_hip", "right_knee", "right_ankle")}.items():
        u = J[:, JOINTS.index(b)] - J[:, JOINTS.index(a)]
        v = J[:, JOINTS.index(c)] - J[:, JOINTS.index(b)]
        unit = np.linalg.norm
        bent = angle_deg(u / unit(u, axis=1, keepdims=True), v / unit(v, axis=1, keepdims=True)) > 30
        k = BONE_NAMES.index(bone)
        rel = np.einsum("nji,njk->nik", R[bent, k], poses.rotations[bent, k].astype(np.float64))
        diff = np.degrees(np.arccos(np.clip((np.trace(rel, axis1=1, axis2=2) - 1) / 2, -1, 1)))
        assert bent.sum() > 50 and diff.max() < 1.0, (bone, bent.sum(), diff.max())


def test_poseset_from_joints_arguments_and_file_roundtrip(pool16, tmp_path):
    J = pool16.joints_3d[:4] + np.array([0.3, -1.0, 0.9], dtype=np.float32)     # not root-relative
    ps = poseset_from_joints(J, ["lsp", "prior", "lsp", "prior"], [f"x/{i}" for i in range(4)], "lsp")
    np.testing.assert_allclose(ps.joints_3d[:, JOINTS.index("pelvis")], 0.0, atol=1e-6)
    assert list(ps.source) == ["lsp", "prior", "lsp", "prior"] and set(ps.subject) == {"lsp"}
    save_poses(tmp_path / "p.npz", ps)
    back = load_poses(tmp_path / "p.npz")
    np.testing.assert_array_equal(back.rotations, ps.rotations)
    with pytest.raises(ValueError, match="one id per pose"):
        poseset_from_joints(J, "lsp", ["a"], "lsp")
    with pytest.raises(ValueError, match=r"\(N, 15, 3\)"):
        poseset_from_joints(J[:, :14], "lsp", [f"x/{i}" for i in range(4)], "lsp")
    broken = J.copy()
    broken[2, JOINTS.index("left_wrist")] = broken[2, JOINTS.index("left_elbow")]
    with pytest.raises(ValueError, match="pose 2: joints left_elbow and left_wrist coincide"):
        poseset_from_joints(broken, "lsp", [f"x/{i}" for i in range(4)], "lsp")
    # degenerate but non-coincident geometry (hips on the spine's line, a straight arm) still
    # gives proper rotations
    odd = J[:1].astype(np.float64).copy()
    spine = odd[0, JOINTS.index("neck")] - odd[0, JOINTS.index("pelvis")]
    odd[0, JOINTS.index("left_hip")] = odd[0, JOINTS.index("pelvis")] - 0.1 * spine
    odd[0, JOINTS.index("right_hip")] = odd[0, JOINTS.index("pelvis")] + 0.1 * spine
    elbow, shoulder = odd[0, JOINTS.index("right_elbow")], odd[0, JOINTS.index("right_shoulder")]
    odd[0, JOINTS.index("right_wrist")] = elbow + 0.8 * (elbow - shoulder)
    R = poseset_from_joints(odd, "lsp", ["odd"], "lsp").rotations.astype(np.float64)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-4)


def test_anny_posed_by_ik_matches_the_joints_bone_directions(pool16):
    """The issue's "rendered 15 joints match the sampled pose up to the body's own proportions",
    on the real Anny body: IK rotations vs. the MoCap rotations of the same poses."""
    from synth.body.anny_body import AnnyBody
    body = AnnyBody()
    rng = np.random.default_rng(3)
    idx = rng.choice(len(pool16), size=6, replace=False)
    ik = poseset_from_joints(pool16.joints_3d[idx], "cmu", pool16.pose_id[idx], pool16.subject[idx])
    err_ik, err_mocap = [], []
    for k, i in enumerate(idx):
        phenotype = {name: float(rng.uniform(0.2, 0.8)) for name in body.phenotype_labels}
        want = bone_dirs(pool16.joints_3d[i].astype(np.float64))
        by_ik = body.pose(ik.rotations[k], ik.rest_directions[k], phenotype).joints
        by_mocap = body.pose(pool16.rotations[i], pool16.rest_directions[i], phenotype).joints
        err_ik.append(angle_deg(bone_dirs(by_ik.astype(np.float64)), want))
        err_mocap.append(angle_deg(bone_dirs(by_mocap.astype(np.float64)), want))
    err_ik, err_mocap = np.array(err_ik), np.array(err_mocap)
    print(f"IK body bone-direction error (deg): exact bones max {err_ik[:, EXACT_BONES].max():.3f}; "
          f"spine median {np.median(err_ik[:, SPINE]):.2f} max {err_ik[:, SPINE].max():.2f}; "
          f"clavicles median {np.median(err_ik[:, CLAVICLES]):.2f} (MoCap rotations: "
          f"{np.median(err_mocap[:, CLAVICLES]):.2f}); all 14 median {np.median(err_ik):.2f}")
    assert err_ik[:, EXACT_BONES].max() < 0.5
    assert err_ik[:, SPINE].max() < 6.0
    # the clavicle offset is the rig's: the MoCap rotations show it alike
    assert np.abs(err_ik[:, CLAVICLES] - err_mocap[:, CLAVICLES]).max() < 3.0
    assert np.median(err_ik) < 1.0


def test_render_of_an_ik_pose_file_labels_the_pose_files_joints(shared_data, cache_dir, tmp_path, pool16):
    """A pose file made by IK renders through the real pipeline (Blender, 64 px, 3 samples); each
    sample's labelled joints, back in the world frame, have the pose file's bone directions."""
    from synth.dataset.render_job import render_dataset
    rng = np.random.default_rng(5)
    idx = rng.choice(len(pool16), size=3, replace=False)
    ik = poseset_from_joints(pool16.joints_3d[idx], "prior", [f"prior/{i:06d}" for i in range(3)], "prior")
    pose_file = tmp_path / "ik_poses.npz"
    save_poses(pose_file, ik)
    cfg = small_config(shared_data, cache_dir, **{"render.image_size": "[64, 64]", "dataset.shards": 1,
                                                  "dataset.pose_file": str(pose_file)})
    out = tmp_path / "ds"
    render_dataset(cfg, out, progress=False)
    r = subprocess.run([sys.executable, str(CHECKER), str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    seen = 0
    with tarfile.open(out / "shards" / "shard-000000.tar") as tf:
        for m in tf.getmembers():
            if not m.name.endswith(".json"):
                continue
            lab = json.loads(tf.extractfile(m).read())
            assert lab["pose"]["source"] == "prior"
            k = list(ik.pose_id).index(lab["pose"]["id"])
            Xc = np.asarray(lab["joints_3d_cam"], dtype=np.float64)
            R, t = np.asarray(lab["cam_R"]), np.asarray(lab["cam_t"])
            world = (Xc - t) @ R          # R^T (X_cam - t), row-wise
            world -= world[JOINTS.index("pelvis")]
            err = angle_deg(bone_dirs(world), bone_dirs(ik.joints_3d[k].astype(np.float64)))
            assert err[EXACT_BONES].max() < 0.5, err
            assert err[SPINE] < 6.0, err
            seen += 1
    assert seen == 3


# ---------------------------------------------------------------- joint-angle limits

def test_joint_limit_chain_assignment_is_the_one_mocap_supports(pool16, limits_dir):
    rates = plausible_rates(limits_dir, pool16.joints_3d)
    print("plausible share of CMU subject 16 by assignment:", rates)
    chosen = JointAngleLimits.from_dir(limits_dir)
    assert (chosen.chain_a_side, chosen.mirror) == ("right", True)
    assert rates["chain_a=right,mirror=True"] > 0.8
    # the mirror-inconsistent choices reject nearly every real pose
    assert rates["chain_a=right,mirror=False"] < 0.05 and rates["chain_a=left,mirror=True"] < 0.05
    assert rates["chain_a=right,mirror=True"] >= rates["chain_a=left,mirror=False"]


def _bent_knee(joints: np.ndarray, forward: bool) -> np.ndarray:
    """The rest pose with the left knee bent 90 degrees: shin backward (flexion) or forward."""
    J = joints.copy()
    knee, ankle = JOINTS.index("left_knee"), JOINTS.index("left_ankle")
    shin = np.linalg.norm(J[ankle] - J[knee])
    J[ankle] = J[knee] + shin * np.array([0.0, -1.0 if forward else 1.0, 0.0])   # the person faces -Y
    return J


def test_joint_limits_tell_a_flexed_knee_from_a_hyperextended_one(limits_dir):
    lim = JointAngleLimits.from_dir(limits_dir)
    rest = rest_joints()
    flags = lim.bone_flags(np.stack([rest, _bent_knee(rest, forward=False), _bent_knee(rest, forward=True)]))
    leg = "shin_b"     # chain B is the person's left
    assert flags[leg].tolist() == [True, True, False]
    assert lim.check(np.stack([_bent_knee(rest, forward=False)]))[0]


def test_joint_limit_files_missing_or_bad_are_one_line_errors(tmp_path, limits_dir):
    with pytest.raises(InputError) as e:
        PoseValidator.from_data_dir(tmp_path)
    assert "jointAngleModel_v2.mat" in str(e.value) and "\n" not in str(e.value)
    folder = tmp_path / "akhter_black_joint_limits"
    folder.mkdir()
    (folder / "jointAngleModel_v2.mat").write_bytes(b"not a mat file at all")
    shutil.copy(limits_dir / "staticPose.mat", folder / "staticPose.mat")
    with pytest.raises(InputError) as e:
        PoseValidator.from_data_dir(tmp_path)
    assert str(folder / "jointAngleModel_v2.mat") in str(e.value) and "\n" not in str(e.value)


# ---------------------------------------------------------------- validity

def test_segment_distance_against_a_dense_search():
    rng = np.random.default_rng(0)
    P = rng.normal(size=(120, 4, 3))
    P[:10, 1] = P[:10, 0]                       # degenerate (point) segments
    P[10:20, 3] = P[10:20, 2] + (P[10:20, 1] - P[10:20, 0])   # parallel segments
    d = segment_distance(P[:, 0], P[:, 1], P[:, 2], P[:, 3])
    s = np.linspace(0.0, 1.0, 201)
    a = P[:, None, None, 0] + s[None, :, None, None] * (P[:, None, None, 1] - P[:, None, None, 0])
    b = P[:, None, None, 2] + s[None, None, :, None] * (P[:, None, None, 3] - P[:, None, None, 2])
    dense = np.linalg.norm(a - b, axis=-1).min(axis=(1, 2))
    assert np.all(d <= dense + 1e-9) and np.all(dense - d < 0.02)


def test_validator_on_mocap_and_on_broken_skeletons(pool16, shared_data):
    v = PoseValidator.from_data_dir(shared_data)
    res = v.check(pool16.joints_3d)
    summary = res.summary()
    print("CMU subject 16 validity:", summary)
    assert summary["n"] == len(pool16)
    assert res.bones_ok.all()                   # real proportions are inside the MoCap ranges
    assert summary["rejected_collision"] < 0.01
    assert summary["rejected"] < 0.25
    # the share ranges are the MoCap ones
    L = bone_lengths(pool16.joints_3d.astype(np.float64))
    share = L / L.sum(1, keepdims=True)
    assert np.all(share >= MOCAP_SHARE_RANGES[:, 0] - 1e-4) and np.all(share <= MOCAP_SHARE_RANGES[:, 1] + 1e-4)

    good = pool16.joints_3d[np.flatnonzero(res.valid)[:3]].astype(np.float64)
    # a shin twice as long: asymmetric and out of proportion
    long_shin = good.copy()
    knee, ankle = JOINTS.index("right_knee"), JOINTS.index("right_ankle")
    long_shin[:, ankle] = long_shin[:, knee] + 2.0 * (long_shin[:, ankle] - long_shin[:, knee])
    # a forearm driven through the chest: wrist put behind the spine
    through = good.copy()
    chest = 0.5 * (through[:, JOINTS.index("pelvis")] + through[:, JOINTS.index("neck")])
    elbow = JOINTS.index("left_elbow")
    through[:, JOINTS.index("left_wrist")] = chest + (chest - through[:, elbow]) * 0.3
    r = v.check(np.concatenate([good, long_shin, through]))
    assert r.valid[:3].all()
    assert not r.bones_ok[3:6].any() and r.collision_ok[3:6].all()
    assert not r.collision_ok[6:9].any()
    assert not r.valid[3:].any()
    assert r.summary()["rejected"] == pytest.approx(6 / 9)
    # non-finite joints are invalid, not an exception
    bad = good[:1].copy()
    bad[0, 3, 0] = np.nan
    assert not v.check(bad).valid[0]


def test_validator_settings_come_from_the_config(shared_data):
    from synth.config import load_config
    cfg = load_config(None, ["poses.validity.radii.torso=0.3"])
    strict = PoseValidator.from_data_dir(shared_data, cfg.poses.validity)
    default = PoseValidator.from_data_dir(shared_data, load_config(None, []).poses.validity)
    J = rest_joints()[None]
    # a 30 cm torso core swallows the T-posed upper arms' shoulder ends
    assert default.check(J).collision_ok[0] and not strict.check(J).collision_ok[0]

