"""The LSP 2D -> 3D lifter (Wang et al. 2019): cameras, geometric search, tiny real training on
real MoCap subjects, and `lift_lsp` on real LSP images."""
from __future__ import annotations

import json

import numpy as np
import pytest

from synth.config import ConfigError, LiftingConfig, load_config
from synth.poses import lifting as L
from synth.poses.sampling import load_pool
from synth.scene import JOINTS

# Small and fast: two CMU subjects (one held out), few cameras, a narrow MLP, a few hundred steps.
POOL = L.PoolParams(fps=30, min_pose_distance=0.05, subjects=["16", "49"])


def tiny_params(**more) -> LiftingConfig:
    return LiftingConfig(**{**dict(holdout_subjects=["49"], cameras_per_pose=4, eval_cameras_per_pose=1, hidden=128,
                                   blocks=1, epochs=4, batch_size=128, lr=0.002, search_range_m=[1.0, 12.0]),
                            **more})


@pytest.fixture(scope="module")
def lifter_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("lifter-cache")


@pytest.fixture(scope="module")
def trained(shared_data, lifter_cache):
    return L.get_lifter(shared_data, lifter_cache, tiny_params(), POOL)


@pytest.fixture(scope="module")
def heldout_poses(shared_data, lifter_cache):
    pool = load_pool(shared_data, POOL.subjects, POOL.fps, POOL.min_pose_distance, progress=False,
                     cache_dir=lifter_cache / "poses")
    return pool.joints_3d[pool.subject == "49"].astype(np.float64)


def test_cameras_look_at_the_person_upright(heldout_poses):
    p = tiny_params(aim_jitter_m=0.0, roll_std_deg=0.0, elevation_deg={"low": 0.0, "high": 0.0})
    pairs = L.make_pairs(heldout_poses[:50], 4, np.random.default_rng(1), p)
    assert np.abs(pairs.root_cam[:, :2]).max() < 1e-9          # aimed at the pelvis
    head, ankles = JOINTS.index("head_top"), [JOINTS.index("right_ankle"), JOINTS.index("left_ankle")]
    assert (pairs.uv1[:, head, 1] < pairs.uv1[:, ankles, 1].min(1)).mean() > 0.9   # y down: head on top
    assert np.all((pairs.root_depth > 2.9) & (pairs.root_depth < 8.1))
    # The second camera sits +baseline along x: every point moves left by f * b / z.
    x1 = pairs.pose_cam + pairs.root_cam[:, None]
    disparity = pairs.uv1[..., 0] - pairs.uv2[..., 0]
    expect = pairs.K[:, 0, 0, None] * p.baseline_m / x1[..., 2]
    assert np.allclose(disparity[:, L.ANNOTATED], expect[:, L.ANNOTATED], rtol=1e-9)


def test_search_finds_a_known_depth_and_reprojects_exactly(heldout_poses):
    p = tiny_params()
    pairs = L.make_pairs(heldout_poses[:40], 2, np.random.default_rng(2), p)
    posed, depth, placed = L.geometric_search(pairs.uv1, pairs.K, pairs.pose_cam, (1.0, 12.0), 0.001)
    # The true depth is off the 1 mm grid: the search lands on a neighbouring step.
    assert np.abs(depth - pairs.root_depth).max() <= 0.0005 + 1e-9
    assert np.abs(np.round((depth - 1.0) / 0.001) * 0.001 + 1.0 - depth).max() < 1e-9
    assert np.abs(posed - pairs.pose_cam).max() < 0.003
    assert np.abs(L.project(placed[:, L.ANNOTATED], pairs.K) - pairs.uv1[:, L.ANNOTATED]).max() < 1e-6
    # A wrong network pose still re-projects onto the input exactly: only the depths come from it.
    wrong = pairs.pose_cam + np.random.default_rng(3).normal(0, 0.05, pairs.pose_cam.shape)
    wrong[:, 0] = 0.0
    _, _, placed = L.geometric_search(pairs.uv1, pairs.K, wrong, (1.0, 12.0), 0.001)
    assert np.abs(L.project(placed[:, L.ANNOTATED], pairs.K) - pairs.uv1[:, L.ANNOTATED]).max() < 1e-6


def test_trained_networks_beat_trivial_baselines_on_heldout_subject(trained):
    lifter, report = trained
    assert report["holdout_subjects"] == ["49"]
    ev = report["heldout"]
    assert ev["samples"] > 100
    base = ev["baseline_mean_pose"]["mpjpe_mm"]
    for label in ("clean", "noise_5px"):
        row = ev[label]
        assert row["network"]["mpjpe_mm"] < 0.7 * base, row
        assert row["geometric_search"]["mpjpe_mm"] < 0.7 * base, row
        assert row["view_synthesis_px"] < row["view_synthesis_baseline_px"], row
        assert row["max_reprojection_error_px"] < 1e-6
    assert ev["clean"]["network"]["mpjpe_mm"] < ev["noise_5px"]["network"]["mpjpe_mm"]


def test_lift_lsp_returns_tagged_poseset_and_uses_the_cache(shared_data, lifter_cache, trained):
    res = L.lift_lsp(shared_data, lifter_cache, params=tiny_params(), pool=POOL, limit=6)
    poses = res.poses
    assert len(poses) == 6 and res.plausible.shape == (6,) and res.plausible.dtype == bool
    assert list(poses.source) == ["lsp"] * 6 and list(poses.subject) == ["lsp"] * 6
    assert list(poses.pose_id) == [f"lsp/im{i:04d}" for i in range(1, 7)]
    assert np.allclose(poses.joints_3d[:, 0], 0.0)
    # Z up: the head is above the ankles for most sports poses; sizes are human.
    head, ankle = JOINTS.index("head_top"), JOINTS.index("right_ankle")
    assert (poses.joints_3d[:, head, 2] > poses.joints_3d[:, ankle, 2]).mean() >= 0.5
    extent = np.linalg.norm(poses.joints_3d, axis=-1).max(1)
    assert np.all((extent > 0.3) & (extent < 1.5))
    on_disk = json.loads(res.report_path.read_text())
    assert on_disk["lsp"]["poses"] == 6 and "heldout" in on_disk["lifter"]
    assert set(on_disk["lsp"]["validity"]) == {"rest_proportioned", "raw_joints"}
    assert (lifter_cache / "lifter" / "report.json").is_file()
    # The search keeps every annotated LSP joint on its ray: re-projection = the annotation.
    from synth.poses.lsp import load_lsp
    lsp = load_lsp(shared_data / "lsp")
    K = L.lsp_intrinsics(lsp.images[:6], tiny_params().lsp_focal_px)
    lifter, _ = trained
    out = lifter.lift(lsp.joints_2d[:6], K)
    assert np.allclose(out.searched, res.joints_cam, atol=1e-5)
    _, _, placed = L.geometric_search(L.lsp_style(lsp.joints_2d[:6]), K, out.network, (1.0, 12.0), 0.001)
    assert np.abs(L.project(placed[:, L.ANNOTATED], K) - lsp.joints_2d[:6][:, L.ANNOTATED]).max() < 1e-3
    again = L.lift_lsp(shared_data, lifter_cache, params=tiny_params(), pool=POOL, limit=6)
    assert np.array_equal(again.poses.joints_3d, poses.joints_3d)
    assert len(list((lifter_cache / "lifter").glob("lifter-*.pt"))) == 1


def test_rest_proportioned_keeps_directions_and_takes_rest_lengths(heldout_poses):
    from synth.poses.ik import rest_joints
    from synth.poses.validity import BONES, bone_lengths
    J = heldout_poses[:20] * 1.3
    R = L.rest_proportioned(J)
    assert np.allclose(bone_lengths(R), bone_lengths(rest_joints()[None]), atol=1e-9)
    for a, b in BONES:
        d0 = J[:, JOINTS.index(b)] - J[:, JOINTS.index(a)]
        d1 = R[:, JOINTS.index(b)] - R[:, JOINTS.index(a)]
        cos = (d0 * d1).sum(-1) / np.linalg.norm(d0, axis=-1) / np.linalg.norm(d1, axis=-1)
        assert np.all(cos > 1 - 1e-9)


def test_bad_lifting_config_names_the_key():
    with pytest.raises(ConfigError, match="poses.lifting.search_range_m"):
        load_config(None, ["poses.lifting.search_range_m=[5.0, 2.0]"])
    with pytest.raises(ConfigError, match="poses.lifting.focal_px"):
        load_config(None, ["poses.lifting.focal_px={low: 900.0, high: 100.0}"])
    with pytest.raises(ConfigError, match="poses.lifting.search_step_m"):
        load_config(None, ["poses.lifting.search_step_m=0.0"])
    assert load_config(None, []).poses.lifting.search_step_m == 0.001


def test_training_depends_on_the_seed_alone(heldout_poses):
    """Two trainings with the same seed give the same networks whatever used torch's global RNG
    before (it once made two fresh `synth sample-poses` runs lift LSP differently), and leave that
    RNG as it was."""
    import torch
    p = tiny_params(epochs=1, cameras_per_pose=1)
    joints = heldout_poses[:200]

    def weights() -> list:
        lifter, _ = L.train_lifter(joints, p)
        return [v.clone() for m in (lifter.view_net, lifter.recon_net) for v in m.state_dict().values()]

    torch.manual_seed(123)
    first = weights()
    torch.rand(17)                    # another user of the global RNG in between
    state = torch.get_rng_state()
    second = weights()
    assert torch.equal(torch.get_rng_state(), state)
    assert len(first) == len(second) and all(torch.equal(a, b) for a, b in zip(first, second))
