"""Metrics, pose normalisation, cropping and ResNet shapes, on hand-checkable cases."""
import numpy as np
import pytest
import torch

from synth.scene import JOINTS
from synth.train.data import BONES, crop_and_resize, crop_box, normalise_pose, split_shards
from synth.train.metrics import (AUC_THRESHOLDS_MM, auc, joint_errors, mpjpe, pa_mpjpe, pck,
                                 pose_metrics, procrustes_align, to_millimetres)
from synth.train.models import PoseNet


def random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def skeleton(rng, n=4) -> np.ndarray:
    """Random non-planar (n, 15, 3) poses in metres."""
    return rng.normal(scale=0.4, size=(n, 15, 3))


def test_bones_form_a_tree_over_the_15_joints():
    assert len(BONES) == 14
    children = [b for _, b in BONES]
    assert len(set(children)) == 14 and "pelvis" not in children
    assert {j for bone in BONES for j in bone} == set(JOINTS)


def test_mpjpe_of_known_offset():
    rng = np.random.default_rng(0)
    gt = skeleton(rng)
    pred = gt + np.array([3.0, 4.0, 0.0])   # every joint 5 units off
    assert mpjpe(pred, gt) == pytest.approx(5.0)
    assert joint_errors(pred, gt).shape == (4, 15)
    # Accepts torch tensors as well.
    assert mpjpe(torch.tensor(pred), torch.tensor(gt)) == pytest.approx(5.0)


def test_pa_mpjpe_of_similarity_transformed_copy_is_zero():
    rng = np.random.default_rng(1)
    gt = skeleton(rng, 6)
    pred = np.stack([2.7 * g @ random_rotation(rng).T + rng.normal(size=3) for g in gt])
    assert mpjpe(pred, gt) > 0.1
    assert pa_mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(procrustes_align(pred, gt), gt, atol=1e-9)


def test_pa_mpjpe_does_not_undo_a_reflection():
    rng = np.random.default_rng(2)
    gt = skeleton(rng, 5)
    mirrored = gt * np.array([-1.0, 1.0, 1.0])   # a reflection is not a rotation
    aligned = procrustes_align(mirrored, gt)
    assert pa_mpjpe(mirrored, gt) > 0.05
    # The fitted transform is a proper rotation: it preserves the handedness of the prediction.
    for a, m in zip(aligned, mirrored):
        a0, m0 = a - a.mean(0), m - m.mean(0)
        r, *_ = np.linalg.lstsq(m0, a0, rcond=None)
        assert np.linalg.det(r) > 0
    # Alignment never makes things worse than the plain centred comparison.
    assert pa_mpjpe(mirrored, gt) <= mpjpe(mirrored - mirrored.mean(1, keepdims=True) + gt.mean(1, keepdims=True), gt) + 1e-12


def test_pa_mpjpe_of_collapsed_prediction_is_distance_to_centroid():
    rng = np.random.default_rng(3)
    gt = skeleton(rng, 2)
    pred = np.zeros_like(gt)
    expected = np.linalg.norm(gt - gt.mean(1, keepdims=True), axis=-1).mean()
    assert pa_mpjpe(pred, gt) == pytest.approx(expected)


def test_pck_and_auc_of_known_error_sets():
    assert len(AUC_THRESHOLDS_MM) == 31 and AUC_THRESHOLDS_MM[1] == 5.0
    assert pck(np.zeros(10)) == 1.0 and auc(np.zeros(10)) == 1.0
    hundred = np.full(8, 100.0)
    assert pck(hundred) == 1.0
    assert auc(hundred) == pytest.approx(11 / 31)   # thresholds 100, 105, ..., 150
    mixed = np.array([0.0, 149.0, 150.0, 151.0])
    assert pck(mixed) == 0.75
    assert auc(np.full(3, 1000.0)) == 0.0
    # Half the joints perfect, half beyond range: AUC is a half.
    assert auc(np.array([0.0, 500.0])) == pytest.approx(0.5)


def test_pose_metrics_report():
    rng = np.random.default_rng(4)
    gt = skeleton(rng, 3) * 1000
    pred = gt + np.array([0.0, 0.0, 100.0])
    m = pose_metrics(pred, gt, JOINTS)
    assert m["mpjpe_mm"] == pytest.approx(100.0)
    assert m["pa_mpjpe_mm"] == pytest.approx(0.0, abs=1e-6)   # a translation only
    assert m["pck150"] == 1.0 and m["samples"] == 3
    assert set(m["per_joint_mpjpe_mm"]) == set(JOINTS)
    assert m["spread"] == pytest.approx(1.0)                  # a shift keeps the spread


def test_prediction_spread_finds_a_network_that_predicts_one_pose():
    """The spread is the predictions' variation between samples over the labels': 1 for the
    labels themselves (or scaled by s: s), 0 for one pose everywhere, and the trainer warns
    there (a collapse the mean errors do not show: they are then a mean pose's)."""
    import warnings
    from synth.train.metrics import COLLAPSED_SPREAD, prediction_spread
    from synth.train.trainer import warn_if_collapsed
    rng = np.random.default_rng(7)
    gt = skeleton(rng, 40) * 1000
    assert prediction_spread(gt, gt) == pytest.approx(1.0)
    assert prediction_spread(0.5 * gt, gt) == pytest.approx(0.5)
    mean_pose = np.broadcast_to(gt.mean(0), gt.shape)
    collapsed = pose_metrics(mean_pose, gt, JOINTS)
    assert collapsed["spread"] == pytest.approx(0.0, abs=1e-9)
    assert np.isnan(prediction_spread(gt[:1], gt[:1]))
    with pytest.warns(UserWarning, match=r"epoch 3: .*spread 0\.000 .*collapsed to one pose; lower train\.lr"):
        warn_if_collapsed(collapsed, "epoch 3", "lower train.lr")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_collapsed(pose_metrics(gt * (2 * COLLAPSED_SPREAD), gt, JOINTS), "epoch 3", "lower train.lr")
        warn_if_collapsed(None, "epoch 3", "lower train.lr")


def test_normalisation_sums_bone_lengths_and_inverts():
    rng = np.random.default_rng(5)
    poses = skeleton(rng, 3) + np.array([0.3, -0.2, 4.0])
    for length in (1.0, 4.5):
        norm, scale = normalise_pose(poses, JOINTS, length)
        assert norm.shape == poses.shape and scale.shape == (3,)
        np.testing.assert_allclose(norm[:, JOINTS.index("pelvis")], 0.0)
        idx = {n: i for i, n in enumerate(JOINTS)}
        total = sum(np.linalg.norm(norm[:, idx[b]] - norm[:, idx[a]], axis=-1) for a, b in BONES)
        np.testing.assert_allclose(total, length)
        root_rel = poses - poses[:, :1]
        np.testing.assert_allclose(norm * scale[:, None, None], root_rel, atol=1e-12)
        # The metric path: normalised pose and scale back to root-relative millimetres.
        np.testing.assert_allclose(to_millimetres(norm, scale), root_rel * 1000, atol=1e-9)


def test_crop_box_and_crop_follow_the_joints():
    j2d = np.array([[10.0, 20.0], [50.0, 100.0]])
    cx, cy, side = crop_box(j2d, margin=1.25)
    assert (cx, cy, side) == (30.0, 60.0, 100.0)
    image = np.zeros((120, 80, 3), np.uint8)
    image[55:66, 25:36] = 255            # a white square at the box centre
    crop = crop_and_resize(image, (cx, cy, side), 50)
    assert crop.shape == (50, 50, 3)
    assert crop[25, 25].min() == 255 and crop[2, 2].max() == 0   # corner lies outside: black


def test_split_is_by_whole_shards():
    shards = [f"shard-{i:06d}.tar" for i in range(10)]
    train, val = split_shards(shards, 0.2)
    assert val == shards[8:] and train == shards[:8]
    assert split_shards(shards[:2], 0.0) == (shards[:1], shards[1:2])    # at least one held out
    assert split_shards(shards[:3], 0.9) == (shards[:1], shards[1:3])     # at least one kept
    assert split_shards(shards[:1], 0.5) == (shards[:1], [])
    # 0.1 × 30 is 3.0000000000000004 in floating point: still three shards, not four.
    many = [f"shard-{i:06d}.tar" for i in range(30)]
    assert len(split_shards(many, 0.1)[1]) == 3


@pytest.mark.parametrize("backbone,width,channels", [("resnet18", 8, 64), ("resnet34", 8, 64),
                                                     ("resnet50", 4, 128)])
def test_resnet_output_shapes(backbone, width, channels):
    torch.manual_seed(0)
    model = PoseNet(backbone, width).eval()
    assert model.backbone.out_channels == channels
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = model.backbone(x)
        out = model(x)
    assert feats.shape == (2, channels, 2, 2)          # stride 32
    assert out.shape == (2, 15, 3) and torch.isfinite(out).all()


def test_resnet_standard_parameter_counts():
    # Backbone sizes of the standard nets (torchvision's resnet18/34/50 without the 1000-way fc).
    counts = {b: sum(p.numel() for p in PoseNet(b, 64).backbone.parameters())
              for b in ("resnet18", "resnet34", "resnet50")}
    assert counts == {"resnet18": 11_689_512 - 513_000, "resnet34": 21_797_672 - 513_000,
                      "resnet50": 25_557_032 - 2_049_000}
