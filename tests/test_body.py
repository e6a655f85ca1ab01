"""The body stage: retargeting math, real Anny bodies driven by real MoCap frames, SMPL-X errors."""
from __future__ import annotations

import numpy as np
import pytest

from synth.body import BodyModelError, create_body_model, sample_phenotype
from synth.body.retarget import minimal_rotation, world_deltas
from synth.config import load_config
from synth.scene import JOINTS, PARTS, PART_IDS

BONES = [("pelvis", "neck"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
         ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"), ("left_hip", "left_knee"),
         ("left_knee", "left_ankle"), ("right_hip", "right_knee"), ("right_knee", "right_ankle")]


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_minimal_rotation_maps_a_to_b_including_antiparallel():
    rng = np.random.default_rng(0)
    a = _unit(rng.normal(size=(200, 3)))
    b = _unit(rng.normal(size=(200, 3)))
    b[:5] = -a[:5]            # antiparallel
    b[5:10] = a[5:10]         # identical
    R = minimal_rotation(a, b)
    assert np.allclose(np.einsum("nij,nj->ni", R, a), b, atol=1e-9)
    assert np.allclose(R @ R.transpose(0, 2, 1), np.eye(3), atol=1e-9)
    assert np.allclose(np.linalg.det(R), 1.0)
    assert np.allclose(R[5:10], np.eye(3), atol=1e-9)
    # least angle: the rotation angle equals the angle between a and b
    angle = np.arccos(np.clip((np.trace(R, axis1=1, axis2=2) - 1) / 2, -1, 1))
    assert np.allclose(angle, np.arccos(np.clip((a * b).sum(1), -1, 1)), atol=1e-6)


def test_world_deltas_put_body_bones_on_the_posed_directions():
    rng = np.random.default_rng(1)
    from scipy.spatial.transform import Rotation
    G = Rotation.random(31, random_state=2).as_matrix()
    src = _unit(rng.normal(size=(31, 3)))
    body = _unit(rng.normal(size=(31, 3)))
    D = world_deltas(G, src, body)
    posed_body = np.einsum("nij,nj->ni", D, body)
    posed_src = np.einsum("nij,nj->ni", G, src)
    assert np.allclose(posed_body[1:], posed_src[1:], atol=1e-9)
    assert np.allclose(D[0], G[0])          # the root keeps its own orientation


@pytest.fixture(scope="module")
def anny():
    return create_body_model(load_config().body)


@pytest.fixture(scope="module")
def mocap_frames(shared_data):
    from synth.poses.sampling import load_clips
    poses = load_clips(shared_data, subjects=["16"], fps=10, progress=False)
    rng = np.random.default_rng(0)
    return poses.subset(rng.choice(len(poses), 12, replace=False))


def test_anny_follows_mocap_limb_directions(anny, mocap_frames):
    """The posed body's 15 joints match the MoCap pose up to the body's own proportions."""
    cfg = load_config()
    rng = np.random.default_rng(3)
    idx = {n: i for i, n in enumerate(JOINTS)}
    cosines = []
    for k in range(len(mocap_frames)):
        ph = sample_phenotype(cfg.body.phenotype, rng)
        mesh = anny.pose(mocap_frames.rotations[k], mocap_frames.rest_directions[k], ph)
        src = mocap_frames.joints_3d[k]
        for a, b in BONES:
            cosines.append(float(_unit(mesh.joints[idx[b]] - mesh.joints[idx[a]])
                                 @ _unit(src[idx[b]] - src[idx[a]])))
    cosines = np.array(cosines)
    assert np.median(cosines) > 0.99
    assert cosines.min() > 0.9


def test_anny_mesh_labels_are_consistent(anny, mocap_frames):
    ph = {k: 0.5 for k in anny.phenotype_labels}
    mesh = anny.pose(mocap_frames.rotations[0], mocap_frames.rest_directions[0], ph)
    assert mesh.vertices.shape == (13718, 3) and mesh.faces.shape[1] == 3
    assert mesh.face_uvs.shape == (len(mesh.faces), 3, 2)
    assert (mesh.face_uvs >= 0).all() and (mesh.face_uvs <= 1).all()
    assert set(np.unique(mesh.face_parts)) == set(range(1, len(PARTS) + 1))
    assert np.allclose(mesh.joints[JOINTS.index("pelvis")], 0, atol=1e-5)
    # every joint except head_top sits among the vertices of its own limbs: near the mesh
    from scipy.spatial import cKDTree
    d, _ = cKDTree(mesh.vertices).query(mesh.joints)
    assert d.max() < 0.12
    # head_top lies inside the skull, below its highest point along the head axis
    head_v = mesh.vertices[np.unique(mesh.faces[mesh.face_parts == PART_IDS["head"]])]
    neck, top = mesh.joints[JOINTS.index("neck")], mesh.joints[JOINTS.index("head_top")]
    axis = _unit(top - neck)
    assert ((head_v - neck) @ axis).max() > (top - neck) @ axis
    # the body is a plausible adult: 1.3-2.1 m from feet to head top when standing-ish
    assert 1.0 < np.ptp(mesh.vertices[:, 2]) < 2.3


def test_phenotype_changes_the_body(anny, mocap_frames):
    r, d = mocap_frames.rotations[0], mocap_frames.rest_directions[0]
    base = {k: 0.5 for k in anny.phenotype_labels}
    tall = anny.pose(r, d, {**base, "height": 0.95})
    short = anny.pose(r, d, {**base, "height": 0.05})
    heavy = anny.pose(r, d, {**base, "weight": 0.95})
    assert np.ptp(tall.vertices[:, 2]) > np.ptp(short.vertices[:, 2]) + 0.1 or \
        np.linalg.norm(tall.vertices - short.vertices, axis=1).max() > 0.1
    assert not np.allclose(heavy.vertices, anny.pose(r, d, base).vertices, atol=1e-3)


def test_sample_phenotype_respects_the_configured_ranges():
    cfg = load_config(None, ["body.phenotype.age={low: 0.6, high: 0.7}"])
    rng = np.random.default_rng(0)
    draws = [sample_phenotype(cfg.body.phenotype, rng) for _ in range(200)]
    ages = np.array([d["age"] for d in draws])
    assert ages.min() >= 0.6 and ages.max() <= 0.7
    assert set(draws[0]) == {"gender", "age", "muscle", "weight", "height", "proportions"}


def test_smplx_backend_without_model_files_fails_clearly(tmp_path):
    cfg = load_config(None, ["body.backend=smplx"])
    with pytest.raises(BodyModelError, match="smplx_model_dir"):
        create_body_model(cfg.body)
    cfg = load_config(None, ["body.backend=smplx", f"body.smplx_model_dir={tmp_path}"])
    with pytest.raises(BodyModelError, match=r"no SMPL-X model files.*SMPLX_NEUTRAL\.npz"):
        create_body_model(cfg.body)
