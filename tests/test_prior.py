"""The normalised pose representation, the pose prior (sparse non-parametric Bayesian network)
and the source mixing of `synth sample-poses`, on real CMU MoCap poses."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.sparse.csgraph import minimum_spanning_tree

from synth.io_utils import InputError
from synth.poses.kinematics import facing_yaw_of
from synth.config import PriorConfig
from synth.poses.prior import PART_NAMES, PARTS, PosePrior, chow_liu_tree, novelty
from synth.poses.representation import (BONE_CHILD, BONE_PARENT, canonical_lengths, nearest_distances,
                                        remove_yaw, to_directions, to_joints)
from synth.poses.sampling import load_pool

from conftest import small_config


@pytest.fixture(scope="module")
def pool(shared_data, cache_dir):
    """Subjects 16 and 06 at 30 Hz, thinned (about 1300 poses)."""
    return load_pool(shared_data, ["16", "06"], fps=30, min_distance=0.05, progress=False,
                     cache_dir=cache_dir / "poses")


@pytest.fixture(scope="module")
def prior(pool):
    return PosePrior(PriorConfig(k=6, kernel_sigma=0.03, mi_bins=12)).fit(pool.joints_3d, np.random.default_rng(0))


def test_representation_round_trip_and_yaw(pool):
    d, lengths, yaw = to_directions(pool.joints_3d)
    np.testing.assert_allclose(np.linalg.norm(d, axis=-1), 1.0, atol=1e-9)
    np.testing.assert_allclose(yaw, pool.facing_yaw, atol=1e-4)
    canon, _ = remove_yaw(pool.joints_3d)
    np.testing.assert_allclose(to_joints(d, lengths), canon, atol=1e-6)
    np.testing.assert_allclose(facing_yaw_of(canon), 0.0, atol=1e-6)
    # the yaw-free form does not change under a turn of the pose about the vertical
    c, s = np.cos(1.1), np.sin(1.1)
    turned = pool.joints_3d @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T
    np.testing.assert_allclose(to_directions(turned)[0], d, atol=1e-5)
    assert nearest_distances(turned[:50], pool.joints_3d).max() < 1e-5
    # canonical lengths are symmetric and near the data's
    L = canonical_lengths(lengths)
    assert L[2] == L[5] and L[9] == L[12] and np.all(np.abs(L - np.median(lengths, 0)) < 0.02)


def test_chow_liu_is_the_maximum_spanning_tree(prior):
    mi = prior.mi
    parent = chow_liu_tree(mi, PART_NAMES.index("torso"))
    assert (parent < 0).sum() == 1 and parent[PART_NAMES.index("torso")] == -1
    total = sum(mi[c, p] for c, p in enumerate(parent) if p >= 0)
    best = -minimum_spanning_tree(-(mi + 1e-9) * (1 - np.eye(len(mi)))).toarray().sum()
    assert total == pytest.approx(best, abs=1e-6)
    assert np.array_equal(parent, prior.parent)
    # the strongest learned dependencies join neighbouring parts (e.g. upper arm - forearm)
    edges = {(a, b) for a, b, _ in prior.edges()} | {(b, a) for a, b, _ in prior.edges()}
    assert ("left_upper_arm", "left_forearm") in edges or ("right_upper_arm", "right_forearm") in edges


def test_samples_are_poses_of_one_body_composed_from_several_sources(prior, pool):
    rng = np.random.default_rng(1)
    d, source_of = prior.sample_directions(3000, rng)
    joints = to_joints(d, prior.lengths)
    bones = np.linalg.norm(joints[:, BONE_CHILD] - joints[:, BONE_PARENT], axis=-1)
    np.testing.assert_allclose(bones, np.broadcast_to(prior.lengths, bones.shape), atol=1e-9)
    np.testing.assert_allclose(facing_yaw_of(joints), 0.0, atol=0.15)   # the torso keeps facing -Y
    # parts come from different training poses: most samples mix >= 3 source poses
    mixed = np.array([len(set(r)) for r in source_of])
    assert np.mean(mixed >= 3) > 0.5
    # ... so some samples are far from every training pose, while the marginals follow the data
    share, dist = novelty(joints[:1000], pool.joints_3d, threshold_m=0.1)
    assert 0.01 < share < 0.9 and np.median(dist) > 0.02
    train_d = to_directions(pool.joints_3d)[0]
    assert np.abs(d.mean(0) - train_d.mean(0)).max() < 0.08
    # ancestral sampling keeps the dependencies: forearm given upper arm as in the data
    ua, fa = PARTS["left_upper_arm"][0], PARTS["left_forearm"][0]
    elbow = lambda x: np.einsum("ni,ni->n", x[:, ua], x[:, fa])   # noqa: E731 - cos of the elbow
    assert abs(np.median(elbow(d)) - np.median(elbow(train_d))) < 0.1


def test_sampling_is_reproducible_and_the_file_round_trips(prior, tmp_path):
    a = prior.sample(200, np.random.default_rng(5))
    b = prior.sample(200, np.random.default_rng(5))
    c = prior.sample(200, np.random.default_rng(6))
    assert a.shape == (200, 15, 3) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    prior.save(tmp_path / "prior.npz")
    again = PosePrior.load(tmp_path / "prior.npz")
    assert np.array_equal(again.sample(200, np.random.default_rng(5)), a)
    assert again.edges() == prior.edges()
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="bad.npz"):
        PosePrior.load(tmp_path / "bad.npz")


def test_source_weights_steer_the_densities(pool):
    """Poses of weight 0 are never used: every part of every sample comes from weighted poses."""
    w = (pool.subject == "06").astype(float)
    prior = PosePrior(PriorConfig(k=4, mi_bins=8)).fit(pool.joints_3d, np.random.default_rng(2), weights=w)
    _, source_of = prior.sample_directions(2000, np.random.default_rng(3))
    assert np.all(w[source_of] > 0)


def _synth(*args, env=None):
    return subprocess.run([sys.executable, "-m", "synth.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def test_sample_poses_mixes_cmu_and_prior_with_source_tags(shared_data, cache_dir, tmp_path):
    """`synth sample-poses --sources cmu,prior`: the counts follow poses.mix, every pose carries its
    source tag and id, prior poses pass the validator and carry IK rotations; a report is written."""
    from synth.poses.posefile import load_poses
    from synth.poses.validity import PoseValidator
    out = tmp_path / "poses.npz"
    r = _synth("sample-poses", "--sources", "cmu,prior", "--n", "300", "--out", str(out), "--quiet",
               f"data_dir={shared_data}", "poses.subjects=['16']", "poses.mix.cmu=1", "poses.mix.prior=2",
               "poses.prior.fit_mix.lsp=0", "poses.prior.fit_fps=10", "poses.prior.batch=500",
               env={"SYNTH_CACHE": str(cache_dir)})
    assert r.returncode == 0, r.stderr
    poses = load_poses(out)
    assert len(poses) == 300
    src = poses.source
    assert (src == "cmu").sum() == 100 and (src == "prior").sum() == 200
    assert all(p.startswith("cmu/16_") for p in poses.pose_id[src == "cmu"])
    assert len(set(poses.pose_id[src == "prior"])) == 200
    prior_joints = poses.joints_3d[src == "prior"]
    assert PoseValidator.from_data_dir(shared_data).check(prior_joints).valid.all()
    # the stored rotations drive the bones along the sampled joints (IK)
    assert not np.allclose(poses.rotations[src == "prior"], np.eye(3), atol=1e-3)
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["counts"] == {"cmu": 100, "prior": 200}
    pr = report["sources"]["prior"]
    assert pr["drawn"] >= 200 and 0.0 <= pr["rejection_rate"] < 1.0 and len(pr["fit"]["edges"]) == 11
    assert "prior: 200 valid of" in r.stdout


def test_unknown_source_and_zero_mix_are_config_errors(tmp_path):
    r = _synth("sample-poses", "--sources", "cmu,smpl", "--out", str(tmp_path / "p.npz"))
    assert r.returncode == 2 and "poses.sources[1]" in r.stderr and "got 'smpl'" in r.stderr
    r = _synth("sample-poses", "--sources", "prior", "--out", str(tmp_path / "p.npz"), "poses.mix.prior=0")
    assert r.returncode == 2 and "poses.mix" in r.stderr


def test_oblique_view_keeps_up_up_and_sides_apart():
    from synth.gallery.pose_space import oblique, skeleton_svg
    from synth.poses.ik import rest_joints
    uv = oblique(rest_joints())
    from synth.scene import JOINTS
    assert uv[JOINTS.index("head_top"), 1] < uv[JOINTS.index("pelvis"), 1] < uv[JOINTS.index("left_ankle"), 1]
    assert uv[JOINTS.index("left_wrist"), 0] > uv[JOINTS.index("right_wrist"), 0]   # left = +X drawn right
    svg = skeleton_svg(rest_joints(), "rest")
    assert svg.count("<line") == 14 + 1 and "rest" in svg


def test_pose_space_page(shared_data, cache_dir, tmp_path):
    """The page on two subjects (06 held out for coverage), MoCap-only prior: embedding, skeleton grid,
    coverage table with one row per N, the network's edges."""
    from synth.gallery.pose_space import coverage, write_pose_space_page
    cfg = small_config(shared_data, cache_dir, **{"poses.subjects": "['16', '06']", "poses.prior.fit_mix.lsp": 0,
                                                  "poses.prior.fit_fps": 10, "poses.prior.batch": 2000,
                                                  "poses.prior.coverage_holdout_subjects": "['06']"})
    path = write_pose_space_page(cfg.poses, tmp_path / "g", seed=cfg.seed, paths=cfg.paths(), per_group=150, grid=6,
                                 tsne=False, coverage_ns=(100, 800))
    page = path.read_text()
    assert path.name == "pose_space.html" and page.count("<svg") == 1 + 6
    assert "PCA of the pose representation" in page and "Chow-Liu" in page and "No lifted LSP poses" in page
    cov = coverage(cfg.poses, cfg.paths(), cfg.seed, ns=(100, 800))
    assert cov["holdout_subjects"] == ["06"] and "06" not in cov["training_poses"]
    rows = cov["rows"]
    assert [r["N"] for r in rows] == [100, 800]
    # more poses cover the held-out subject better, for the prior and for the sources alike
    assert rows[1]["prior_mm"] < rows[0]["prior_mm"] and rows[1]["sources_mm"] < rows[0]["sources_mm"]
    assert f"<td>{rows[1]['prior_mm']}</td>" in page
