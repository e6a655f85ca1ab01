"""Models (backbones, regression and integral heads), augmentation, real-photo loaders, 2D metrics
and evaluation, on hand-checkable cases, the real LSP folder and the session's rendered dataset."""
import io
import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from synth.config import AugmentConfig, load_config
from synth.io_utils import InputError
from synth.poses.lsp import LSP_JOINTS
from synth.scene import JOINTS
from synth.train.augment import Augmenter, AugmentParams, build_augmenter
from synth.train.data import PoseShardDataset, crop_box, list_shards, normalise_pose
from synth.train.evaluate import evaluate
from synth.train.metrics import align_2d, aligned_2d_residual, pck_2d_aligned
from synth.train.models import BACKBONES, IntegralHead, build_model, soft_argmax_3d
from synth.train.real_data import LspDataset, PhotoFolderDataset, parse_image_range, split_indices

ROOT = JOINTS.index("pelvis")


def train_cfg(*overrides: str):
    return load_config(None, list(overrides)).train


def augment_cfg(**kw):
    return AugmentConfig(**kw)


# --- models ----------------------------------------------------------------------------------

@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("head", ["regression", "integral"])
def test_every_backbone_and_head_gives_features_and_poses(backbone, head):
    torch.manual_seed(0)
    tc = train_cfg(f"train.backbone={backbone}", f"train.head={head}", "train.width=8",
                   "train.model.deconv_channels=16", "train.model.depth_bins=8")
    model = build_model(tc).eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        fmap = model.extract(x)
        out = model(x)
        assert torch.equal(out, model.regress(fmap))
    assert fmap.shape == (2, model.feature_channels, 96 // model.feature_stride, 96 // model.feature_stride)
    assert out.shape == (2, 15, 3) and torch.isfinite(out).all()
    # Both heads start near the mean (zero) pose.
    assert out.abs().max() < 0.05


def test_soft_argmax_recovers_a_known_peak():
    d, h, w = 8, 6, 10
    logits = torch.full((1, 2, d, h, w), -30.0)
    logits[0, 0, 5, 1, 7] = 30.0               # a sharp peak in cell (z=5, y=1, x=7)
    logits[0, 1, 2, 4, 0] = 30.0
    xyz = soft_argmax_3d(logits)[0]
    centre = lambda i, n: (2 * i + 1) / n - 1   # noqa: E731  cell centres on [-1, 1]
    torch.testing.assert_close(xyz[0], torch.tensor([centre(7, w), centre(1, h), centre(5, d)]), atol=1e-6, rtol=0)
    torch.testing.assert_close(xyz[1], torch.tensor([centre(0, w), centre(4, h), centre(2, d)]), atol=1e-6, rtol=0)
    # Two equal peaks: the expectation is their mid-point (the integral, not the argmax).
    logits[0, 0, 1, 1, 7] = 30.0
    assert soft_argmax_3d(logits)[0, 0, 2].item() == pytest.approx((centre(5, d) + centre(1, d)) / 2, abs=1e-6)


def test_integral_head_maps_the_volume_onto_the_target_cube_and_learns():
    torch.manual_seed(0)
    head = IntegralHead(channels=4, num_joints=3, depth_bins=4, deconv_layers=0, half_extent=0.3)
    assert head(torch.randn(1, 4, 2, 2)).abs().max() < 1e-2   # near-uniform volumes: the centre
    with torch.no_grad():   # put joint 0's volume on the last corner cell: x, y, z = 3/4 of 0.3
        head.heatmaps.weight.zero_()
        head.heatmaps.bias.zero_()
        head.heatmaps.bias[0 * 4 + 3] = 40.0
    fmap = torch.zeros(1, 4, 2, 2)
    fmap[..., 1, 1] = 1.0
    with torch.no_grad():
        head.heatmaps.weight[0 * 4 + 3, 0] = 40.0                 # only where the feature map is 1
        out = head(fmap)[0, 0]
    torch.testing.assert_close(out, torch.tensor([0.15, 0.15, 0.225]), atol=1e-4, rtol=0)
    # Gradients reach the heatmap layer: a few steps move the output towards a target.
    torch.manual_seed(1)
    head = IntegralHead(channels=4, num_joints=3, depth_bins=8, deconv_layers=1, deconv_channels=8)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    x, target = torch.randn(2, 4, 3, 3), torch.full((2, 3, 3), 0.1)
    first = None
    for _ in range(30):
        loss = torch.nn.functional.l1_loss(head(x), target)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first


# --- augmentation ----------------------------------------------------------------------------

def _planar_person(rng):
    """A camera-frame pose on the plane z = 4 m (so the projection is an exact similarity), its
    projection, and an image with a bright 3×3 dot on the right wrist."""
    j3d = np.concatenate([rng.normal(scale=0.3, size=(15, 2)) + [0.05, 0.1], np.full((15, 1), 4.0)], 1)
    f, c = 300.0, np.array([100.0, 90.0])
    j2d = j3d[:, :2] / j3d[:, 2:] * f + c
    image = np.zeros((180, 200, 3), np.uint8)
    wrist = JOINTS.index("right_wrist")
    u, v = np.round(j2d[wrist]).astype(int)
    image[v - 1:v + 2, u - 1:u + 2] = 255
    # Move the wrist onto the dot's centre pixel, in 2D and (back-projected) in 3D.
    j2d[wrist] = (u, v)
    j3d[wrist, :2] = (j2d[wrist] - c) / f * j3d[wrist, 2]
    return j3d, j2d, image, wrist


@pytest.mark.parametrize("angle,zoom", [(0.0, 1.0), (25.0, 1.2), (-30.0, 0.8)])
def test_augmented_labels_follow_the_pixels(angle, zoom):
    rng = np.random.default_rng(0)
    j3d, j2d, image, wrist = _planar_person(rng)
    target, _ = normalise_pose(j3d)
    box = crop_box(j2d)
    aug = Augmenter(augment_cfg(rotation_deg=0.0, colour_jitter=0.0, occlusion_probability=0.0), seed=0)
    crop, j2d_crop, target_rot, _ = aug(image, box, 64, j2d, target, rng,
                                        params=AugmentParams(angle_deg=angle, zoom=zoom))
    # The drawn dot sits where the label went (its brightness centroid, within a pixel).
    grey = crop[..., 0].astype(np.float64)
    ys, xs = np.nonzero(grey > 20)
    centroid = np.array([(xs * grey[ys, xs]).sum(), (ys * grey[ys, xs]).sum()]) / grey[ys, xs].sum()
    assert np.linalg.norm(centroid - j2d_crop[wrist]) < 1.0
    # The 3D target turned with the image: its x, y project onto the crop's joints by one
    # positive scale (the pose lies on a fronto-parallel plane), and its depth is unchanged.
    d2 = j2d_crop - j2d_crop[ROOT]
    d3 = target_rot[:, :2]
    s = (d2 * d3).sum() / (d3 ** 2).sum()
    assert s > 0 and np.abs(s * d3 - d2).max() < 1e-6 * np.abs(d2).max() + 1e-6
    np.testing.assert_allclose(target_rot[:, 2], target[:, 2], atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(target_rot, axis=1), np.linalg.norm(target, axis=1), atol=1e-12)


def test_augmentation_is_reproducible_per_seed_epoch_and_item():
    rng = np.random.default_rng(3)
    _, j2d, image, _ = _planar_person(rng)
    image = cv2.GaussianBlur(rng.integers(0, 255, image.shape).astype(np.uint8), (5, 5), 0)
    box, zeros = crop_box(j2d), np.zeros((15, 3))
    a1 = build_augmenter(train_cfg().augment, seed=7)
    a2 = build_augmenter(train_cfg().augment, seed=7)
    other = lambda r: np.full((50, 50, 3), 200, np.uint8)  # noqa: E731
    run = lambda a, e, i: a(image, box, 48, j2d, zeros, a.item_rng(e, i), other)  # noqa: E731
    same = [run(a, 2, 5) for a in (a1, a2)]
    assert np.array_equal(same[0][0], same[1][0]) and same[0][3] == same[1][3]
    assert not np.array_equal(run(a1, 3, 5)[0], same[0][0])          # another epoch
    assert not np.array_equal(run(a1, 2, 6)[0], same[0][0])          # another item
    assert not np.array_equal(run(build_augmenter(train_cfg().augment, 7, domain=1), 2, 5)[0], same[0][0])  # real
    assert build_augmenter(train_cfg("train.augment.enabled=false").augment, 7) is None


def test_occluders_and_colour_jitter():
    image = np.full((100, 100, 3), 100, np.uint8)
    box = (49.5, 49.5, 100.0)
    j2d, zeros = np.full((15, 2), 49.5), np.zeros((15, 3))
    flat = Augmenter(augment_cfg(rotation_deg=0.0, scale={"low": 1.0, "high": 1.0}, colour_jitter=0.0,
                                 occlusion_probability=1.0, cutout_share=0.0), seed=0)
    crop, _, _, p = flat(image, box, 40, j2d, zeros, flat.item_rng(0, 0))
    x0, y0, w, h = p.occluder
    inside = crop[max(y0, 0):y0 + h, max(x0, 0):x0 + w]
    assert inside.size and (inside == np.array(p.occluder_colour, np.uint8)).all()
    assert (crop == 100).all(-1).mean() > 0.3        # the rest is untouched
    cut = Augmenter(augment_cfg(rotation_deg=0.0, colour_jitter=0.0, occlusion_probability=1.0,
                                cutout_share=1.0), seed=0)
    crop, _, _, p = cut(image, box, 40, j2d, zeros, cut.item_rng(0, 0), lambda r: np.full((30, 30, 3), 7, np.uint8))
    assert p.occluder_colour is None and (crop == 7).all(-1).sum() > 0
    jitter = Augmenter(augment_cfg(rotation_deg=0.0, colour_jitter=0.5, occlusion_probability=0.0), seed=1)
    crops = [jitter(image, box, 40, j2d, zeros, jitter.item_rng(0, i))[0] for i in range(4)]
    assert len({int(c.mean()) for c in crops}) > 1


def test_synthetic_items_with_augmentation(rendered_dataset):
    shards = list_shards(rendered_dataset)
    aug = build_augmenter(train_cfg().augment, seed=0)
    plain = PoseShardDataset(rendered_dataset, shards, 64)
    ds = PoseShardDataset(rendered_dataset, shards, 64, augment=aug)
    keys = {"image", "target", "has_3d", "scale", "joints_2d_crop", "visible_2d", "domain", "key", "joints_3d"}
    for i in range(min(len(ds), 3)):
        a, p = ds[i], plain[i]
        assert set(a) == keys and a["domain"].item() == 0 and a["has_3d"].item()
        assert a["image"].shape == (3, 64, 64) and a["visible_2d"].shape == (15,)
        # Rotation about the camera z axis: lengths from the pelvis and depths are kept.
        torch.testing.assert_close(a["target"].norm(dim=1), p["target"].norm(dim=1), atol=1e-5, rtol=0)
        torch.testing.assert_close(a["target"][:, 2], p["target"][:, 2], atol=1e-6, rtol=0)
        # unaugmented: every joint in the rendered image is on the crop, and only those count
        in_image = torch.tensor(plain.labels(i)["joints_in_image"], dtype=torch.float32)
        assert torch.equal(p["visible_2d"], in_image)
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["image"], PoseShardDataset(rendered_dataset, shards, 64, augment=aug)[0]["image"])
    # Worker processes draw the same augmentations as the main process (exact resume relies on it).
    from torch.utils.data import DataLoader
    serial = next(iter(DataLoader(ds, batch_size=len(ds), num_workers=0)))
    forked = next(iter(DataLoader(ds, batch_size=len(ds), num_workers=2)))
    assert torch.equal(serial["image"], forked["image"]) and torch.equal(serial["target"], forked["target"])


# --- real photos -----------------------------------------------------------------------------

def test_lsp_dataset_reads_the_real_folder(shared_data):
    lsp = shared_data / "lsp"
    ds = LspDataset(lsp, 64)
    assert len(ds) == 1000
    # SOURCE.md: in images 1-1000, 7.1 % of the (14 joints x 1000) flags are 1 (occluded).
    labelled = np.array([j in LSP_JOINTS for j in JOINTS])
    occluded = 1.0 - ds.lsp.visible[:, labelled].mean()
    assert occluded == pytest.approx(0.071, abs=0.0006)
    # The joint order: heads above necks, knees above ankles, shoulders above hips in most photos.
    y = ds.lsp.joints_2d[..., 1]
    ix = {n: JOINTS.index(n) for n in JOINTS}
    assert (y[:, ix["head_top"]] < y[:, ix["neck"]]).mean() > 0.8
    assert (y[:, ix["left_knee"]] < y[:, ix["left_ankle"]]).mean() > 0.8
    assert (y[:, ix["right_shoulder"]] < y[:, ix["right_hip"]]).mean() > 0.8
    item = LspDataset(lsp, 64, indices=[0, 1])[1]
    assert item["key"] == "im0002" and item["domain"].item() == 1 and not item["has_3d"].item()
    assert item["image"].shape == (3, 64, 64) and item["image"].std() > 0.1
    j = item["joints_2d_crop"].numpy()[labelled]
    assert j.min() >= 0 and j.max() <= 63 and (j.max(0) - j.min(0)).max() > 0.6 * 64
    np.testing.assert_array_equal(item["visible_2d"].numpy(), ds.lsp.visible[1].astype(np.float32))
    # Augmented: joints that leave the crop are no longer marked visible; the 3D target stays empty.
    aug = LspDataset(lsp, 64, indices=list(range(8)), augment=build_augmenter(train_cfg().augment, 0))
    for i in range(8):
        a = aug[i]
        j = a["joints_2d_crop"].numpy()
        inside = ((j >= -0.5) & (j <= 63.5)).all(1)
        assert (a["visible_2d"].numpy() <= inside).all() and a["target"].abs().sum() == 0
    assert parse_image_range("801-1000", 1000) == list(range(800, 1000))
    with pytest.raises(InputError, match="1-1000"):
        parse_image_range("990-1001", 1000)
    kept, held = split_indices(1000, 0.2, seed=0)
    assert len(held) == 200 and sorted(kept + held) == list(range(1000)) and held == split_indices(1000, 0.2, 0)[1]


def test_photo_folder_crops_unlabelled_photos(shared_data, tmp_path):
    for k in (1, 2, 3):
        shutil.copy(shared_data / "lsp" / "images" / f"im{k:04d}.jpg", tmp_path / f"p{k}.jpg")
    (tmp_path / "notes.txt").write_text("not a photo")
    ds = PhotoFolderDataset(tmp_path, 48, augment=build_augmenter(train_cfg().augment, 0))
    assert len(ds) == 3
    item = ds[2]
    assert item["key"] == "p3" and item["image"].shape == (3, 48, 48) and item["visible_2d"].sum() == 0
    # Unaugmented, the whole photo is in the crop: a photo as wide as tall fills it exactly.
    square = tmp_path / "sq"
    square.mkdir()
    cv2.imwrite(str(square / "a.png"), np.full((30, 30, 3), 255, np.uint8))
    assert PhotoFolderDataset(square, 20)[0]["image"].min() > 1.0   # white everywhere, no black border
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no photos"):
        PhotoFolderDataset(tmp_path / "empty", 32)


# --- 2D metrics ------------------------------------------------------------------------------

def test_pck_of_the_lifted_ground_truth_is_one_and_degrades_with_noise():
    rng = np.random.default_rng(0)
    gt = rng.uniform(20, 180, size=(40, 15, 2))
    vis = rng.random((40, 15)) > 0.1
    lifted = np.concatenate([gt, np.zeros((40, 15, 1))], -1)
    assert pck_2d_aligned(lifted, gt, vis)["pck"] == 1.0
    # Any scale and translation of the prediction is aligned away.
    assert pck_2d_aligned(lifted * 0.003 + [1.0, -2.0, 5.0], gt, vis)["pck"] == pytest.approx(1.0)
    torso = np.linalg.norm(gt[:, JOINTS.index("right_shoulder")] - gt[:, JOINTS.index("left_hip")], axis=-1)
    scores = []
    for sigma in (0.1, 0.3, 0.6):
        noisy = lifted.copy()
        noisy[..., :2] += rng.normal(size=gt.shape) * sigma * torso[:, None, None]
        scores.append(pck_2d_aligned(noisy, gt, vis)["pck"])
    assert 1.0 > scores[0] > scores[1] > scores[2]
    r = pck_2d_aligned(lifted, gt, vis)
    assert set(r["per_joint"]) == set(JOINTS) and r["joints_counted"] == int(vis.sum())


def test_torch_aligned_residual_matches_numpy_and_has_gradients():
    rng = np.random.default_rng(1)
    gt = torch.tensor(rng.uniform(0, 64, size=(3, 15, 2)))
    vis = torch.tensor(rng.random((3, 15)) > 0.2, dtype=torch.float64)
    # A prediction correlated with the labels: exactly the metric's alignment.
    lifted = torch.cat([gt * 0.01, torch.zeros(3, 15, 1, dtype=torch.float64)], -1)
    pred = (lifted + torch.tensor(rng.normal(scale=0.1, size=(3, 15, 3)))).requires_grad_(True)
    res = aligned_2d_residual(pred, gt, vis)
    expected = (align_2d(pred.detach().numpy()[..., :2], gt.numpy(), vis.numpy()) - gt.numpy()) * vis.numpy()[..., None]
    np.testing.assert_allclose(res.detach().numpy(), expected, atol=1e-9)
    res.abs().sum().backward()
    assert pred.grad[..., :2].abs().sum() > 0 and (pred.grad[..., 2] == 0).all()
    # An upside-down prediction (best metric scale 0) still gets a gradient, and following it
    # lowers the metric's aligned error.
    pred = (-lifted).clone().requires_grad_(True)

    def metric_error(x):
        a = align_2d(x.detach().numpy()[..., :2], gt.numpy(), vis.numpy())
        return float((np.linalg.norm(a - gt.numpy(), axis=-1) * vis.numpy()).sum())

    before = metric_error(pred)
    opt = torch.optim.Adam([pred], lr=0.03)
    for _ in range(100):
        loss = aligned_2d_residual(pred, gt, vis, torso_normalised=True).norm(dim=-1).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert metric_error(pred) < 0.2 * before


# --- evaluation ------------------------------------------------------------------------------

def _checkpoint(tmp_path, *overrides):
    """A checkpoint in the trainer's format holding a freshly initialised (untrained) model."""
    from synth.train.trainer import CHECKPOINT_SCHEMA
    cfg = load_config(None, ["train.width=8", "train.input_size=64", "train.batch_size=4", "train.workers=0",
                             *overrides])
    torch.manual_seed(0)
    model = build_model(cfg.train)
    buf = io.BytesIO()
    torch.save({"schema": CHECKPOINT_SCHEMA, "epoch": 1, "model": model.state_dict(),
                "config": cfg.model_dump(mode="json"),
                "joint_names": list(JOINTS)}, buf)
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(buf.getvalue())
    return run


def test_evaluate_on_rendered_shards_and_lsp_photos(rendered_dataset, shared_data, tmp_path, capsys):
    run = _checkpoint(tmp_path, "train.head=integral", "train.model.deconv_channels=16", "train.model.depth_bins=8")
    lsp = shared_data / "lsp"
    out = tmp_path / "eval.json"
    result = evaluate(run / "checkpoint.pt", rendered_dataset, out, device="cpu", real_dirs=[f"{lsp}:3-6"],
                      print_table=False)
    saved = json.loads(out.read_text())
    assert saved["mpjpe_mm"] == pytest.approx(result["mpjpe_mm"]) and result["mpjpe_mm"] > 0
    real = saved["real"][f"{lsp}:3-6"]
    assert real["samples"] == 4 and real["images"] == "3-6" and 0.0 <= real["pck"] <= 1.0
    assert set(real["per_joint"]) == set(LSP_JOINTS)           # the pelvis is not an LSP joint
    # The command line: a table on stdout, JSON beside the run; a bad range is one line, exit 2.
    from synth.cli import main
    assert main(["eval", "--run", str(run), "--real", f"{lsp}:1-3", "--device", "cpu"]) == 0
    printed = capsys.readouterr()
    assert "PCK@0.2" in printed.out and "right_wrist" in printed.out
    assert json.loads((run / "eval.json").read_text())["real"][f"{lsp}:1-3"]["samples"] == 3
    assert main(["eval", "--run", str(run), "--real", f"{lsp}:0-3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "0-3" in err[0]
