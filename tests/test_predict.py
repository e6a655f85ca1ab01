"""`synth predict`: the global pose (eq. 1 with the crop's perspective correction) on rendered
labels and synthetic cameras, the body fitted to joints, end to end on real LSP photos with a run
trained from the pretrained recipe, and the one-line errors for bad input."""
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from synth.cli import main as cli_main
from synth.geometry import project, rigid_align, root_translation
from synth.scene import JOINTS
from synth.train.data import PoseShardDataset, list_shards
from synth.train.predict import BodyFitter, crop_rotation, photo_intrinsics, place_pose

REPO = Path(__file__).resolve().parents[1]
ROOT = JOINTS.index("pelvis")


def test_eq1_places_rendered_poses_back_within_a_millimetre(rendered_dataset):
    ds = PoseShardDataset(rendered_dataset, list_shards(rendered_dataset), 64)
    for i in range(len(ds)):
        labels = ds.labels(i)
        j3d = np.asarray(labels["joints_3d_cam"], dtype=np.float64)
        K = np.asarray(labels["K"], dtype=np.float64)
        j2d = np.asarray(labels["joints_2d"], dtype=np.float64)
        rel = j3d - j3d[ROOT]
        t = root_translation(rel, j2d, K)
        err = np.linalg.norm(rel + t - j3d, axis=1).max()
        print(f"sample {i}: root at {np.round(j3d[ROOT], 3)} m, placed within {1000 * err:.4f} mm")
        assert err < 1e-3


@pytest.mark.parametrize("offset_x", [0.0, 1.6])
def test_eq1_with_the_crops_perspective_correction(offset_x):
    """A pose seen through a known camera, off-centre or not: the network would see it in the
    crop's virtual camera (rotated onto the crop centre's ray); undoing that rotation and solving
    eq. 1 gives back the camera-frame pose within 1 mm."""
    rng = np.random.default_rng(0)
    from synth.poses.ik import rest_joints
    pose = rest_joints() @ np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]]).T     # Z-up -> camera (y down)
    pose = pose + rng.normal(scale=0.03, size=pose.shape)
    true = pose - pose[ROOT] + np.array([offset_x, 0.3 if offset_x else 0.0, 4.5])
    K = photo_intrinsics(640, 480, fov_deg=60.0)
    uv = project(true, K)
    lo, hi = uv.min(0), uv.max(0)
    # Off-centre: a crop around the projected joints; centred: a crop on the principal point.
    centre = (lo + hi) / 2 if offset_x else K[:2, 2]
    r_c = crop_rotation(K, centre)
    seen = (true - true[ROOT]) @ r_c            # = R_c^T (P - root): the pose in the crop's frame
    placed = place_pose(seen, uv, K, centre)
    err = np.linalg.norm(placed["joints_3d_cam"] - true, axis=1).max()
    print(f"offset {offset_x} m: crop centre {np.round(centre, 1)} px, placed within {1000 * err:.4f} mm")
    assert err < 1e-3
    if offset_x:
        # Without the correction the off-centre pose is placed wrongly.
        naive = root_translation(seen, uv, K) + seen
        assert np.linalg.norm(naive - true, axis=1).max() > 0.02
    else:
        np.testing.assert_allclose(r_c, np.eye(3), atol=1e-9)


def test_fitted_body_joints_lie_on_the_predicted_ones(rendered_dataset):
    """Predicted joints = a rendered sample's label (an Anny body's own joints, camera frame) ->
    IK -> Anny -> rigid alignment. With the sample's own phenotype the bones have the label's
    lengths, so the fitted joints must lie on the label's: mean within 10 mm, each within 20 mm
    (what is left is the IK's corrected clavicle offset, see BodyFitter; measured 1.6-7 mm mean).
    With the average body of the best gender and height (what `synth predict` does, not knowing
    the person) the bone lengths differ a little more: mean within 30 mm (measured 6-16 mm on the
    session's samples). Either is far closer than the rest
    pose aligned the same way."""
    ds = PoseShardDataset(rendered_dataset, list_shards(rendered_dataset), 64)
    labels = ds.labels(0)
    j3d = np.asarray(labels["joints_3d_cam"], dtype=np.float64)
    average = BodyFitter()
    shape = labels["body"].get("shape") or labels["body"]
    own = BodyFitter({k: float(shape[k]) for k in average.body.phenotype_labels})
    own.body = average.body
    fit_own, fit_avg = own.fit(j3d), average.fit(j3d)
    for name, fit in (("own phenotype", fit_own), ("average body", fit_avg)):
        res = fit["residual_m"]
        print(f"{name}: fitted joints mean {1000 * res.mean():.1f} mm, max {1000 * res.max():.1f} mm from the label")
    assert fit_own["residual_m"].mean() < 0.010 and fit_own["residual_m"].max() < 0.020
    assert fit_avg["residual_m"].mean() < 0.030
    body = fit_avg
    assert body["vertices"].shape[1] == 3 and body["faces"].max() < len(body["vertices"])
    # The body stands where the joints are: around them, in front of the camera.
    assert np.linalg.norm(body["vertices"].mean(0) - j3d.mean(0)) < 0.2 and body["vertices"][:, 2].min() > 0
    from synth.poses.ik import rest_joints
    rest = rest_joints() @ np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]]).T
    r, t = rigid_align(rest, j3d)
    assert np.linalg.norm(rest @ r.T + t - j3d, axis=1).mean() > 3 * fit_avg["residual_m"].mean()


@pytest.fixture(scope="module")
def pretrained_run(rendered_dataset, shared_data, tmp_path_factory) -> Path:
    """A run of the pretrained synthetic recipe as written (EfficientNet-Lite0 from ImageNet,
    appearance augmentation), two steps: the suite's one run of the pretrained path end to end."""
    run = tmp_path_factory.mktemp("predict") / "run"
    rc = cli_main(["train", "--config", str(REPO / "train" / "synthetic.yaml"), "--data", str(rendered_dataset),
                   "--out", str(run), f"data_dir={shared_data}", "train.steps=2", "train.input_size=64",
                   "train.batch_size=3", "train.workers=0", "train.device=cpu", "train.real.log_pck=false",
                   "train.val_fraction=0.5", "train.tensorboard=false"])
    assert rc == 0
    return run


def test_predict_on_lsp_photos_writes_poses_overlays_and_meshes(pretrained_run, shared_data, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for k in (3, 7):
        shutil.copy(shared_data / "lsp" / "images" / f"im{k:04d}.jpg", photos)
    out = tmp_path / "pred"
    rc = cli_main(["predict", "--run", str(pretrained_run), str(photos), "--out", str(out), "--mesh",
                   "--device", "cpu"])
    assert rc == 0, capsys.readouterr().err
    pred = json.loads((out / "predictions.json").read_text())
    assert pred["joints"] == JOINTS and pred["skeleton_scale_source"] == "checkpoint"
    assert [Path(i["image"]).name for i in pred["images"]] == ["im0003.jpg", "im0007.jpg"]
    for entry in pred["images"]:
        w, h = entry["width"], entry["height"]
        (person,) = entry["people"]
        j2d = np.array(person["joints_2d"])
        rel, cam, root = (np.array(person[k]) for k in ("joints_3d_rel", "joints_3d_cam", "root_cam"))
        assert j2d.shape == (15, 2) and rel.shape == cam.shape == (15, 3)
        # 2D joints in the photo's pixels (the padded square may reach past its short side).
        side = max(w, h)
        assert (j2d > -side).all() and (j2d < 2 * side).all()
        np.testing.assert_allclose(rel[ROOT], 0.0, atol=1e-6)
        # Metres: the bones sum to the training skeletons' mean size (metres per normalised unit).
        from synth.scene import BONES
        idx = {n: i for i, n in enumerate(JOINTS)}
        bones = sum(np.linalg.norm(rel[idx[b]] - rel[idx[a]]) for a, b in BONES)
        assert bones == pytest.approx(pred["skeleton_scale_m"], rel=1e-4) and 3.0 < bones < 5.0
        np.testing.assert_allclose(cam, rel + root, atol=2e-6)
        # eq. 1's T is the least-squares optimum for the written joints (rounded to 0.001 px, 1 um:
        # the depth is the most sensitive to it, the more the farther the pose is placed; an
        # untrained network's small poses may be placed >10 m away).
        K = np.array(entry["K"])
        np.testing.assert_allclose(root_translation(rel, j2d, K), root, atol=1e-3, rtol=1e-3)
        # Overlays and the body.
        overlay = cv2.imread(str(out / entry["overlay"]))
        assert overlay.shape[:2] == (h, w)
        if root[2] > 0:
            obj = (out / person["mesh"]).read_text().splitlines()
            verts = np.array([list(map(float, line.split()[1:])) for line in obj if line.startswith("v ")])
            assert len(verts) > 1000 and sum(line.startswith("f ") for line in obj) > 1000
            assert np.isfinite(verts).all() and np.linalg.norm(verts.mean(0) - cam.mean(0)) < 2.0
            assert np.isfinite(person["mesh_joint_residual_mm"])   # an untrained pose need not fit a body
            assert cv2.imread(str(out / entry["mesh_overlay"])).shape[:2] == (h, w)
    # Boxes: a box per person; the crop is the box padded to a square.
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"im0003.jpg": [[10, 20, 90, 140], [0, 0, 60, 60]]}))
    rc = cli_main(["predict", "--run", str(pretrained_run), str(photos / "im0003.jpg"), "--out", str(tmp_path / "b"),
                   "--boxes", str(boxes), "--focal", "600", "--device", "cpu"])
    assert rc == 0
    pred = json.loads((tmp_path / "b" / "predictions.json").read_text())
    people = pred["images"][0]["people"]
    assert [p["crop"] for p in people] == [[49.5, 79.5, 120.0], [29.5, 29.5, 60.0]]
    assert pred["images"][0]["K"][0][0] == 600.0


def test_bad_input_is_one_line_naming_the_file(pretrained_run, shared_data, tmp_path, capsys):
    def run(*args):
        rc = cli_main(["predict", *args, "--device", "cpu"])
        err = capsys.readouterr().err.strip().splitlines()
        return rc, err

    bad = tmp_path / "broken.jpg"
    bad.write_text("not an image")
    rc, err = run("--run", str(pretrained_run), str(bad), "--out", str(tmp_path / "p1"))
    assert rc == 2 and len(err) == 1 and "broken.jpg" in err[0] and "readable" in err[0]
    assert not (tmp_path / "p1" / "predictions.json").exists()
    (tmp_path / "empty_run").mkdir()
    photo = shared_data / "lsp" / "images" / "im0001.jpg"
    rc, err = run("--run", str(tmp_path / "empty_run"), str(photo), "--out", str(tmp_path / "p2"))
    assert rc == 2 and len(err) == 1 and "empty_run" in err[0] and "checkpoint" in err[0]
    w = cv2.imread(str(photo)).shape[1]
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"im0001.jpg": [[10, 10, w + 40, 100]]}))
    rc, err = run("--run", str(pretrained_run), str(photo), "--out", str(tmp_path / "p3"), "--boxes", str(boxes))
    assert rc == 2 and len(err) == 1 and "boxes.json" in err[0] and "outside im0001.jpg" in err[0]
    rc, err = run("--run", str(pretrained_run), str(tmp_path / "nothing_here"), "--out", str(tmp_path / "p4"))
    assert rc == 2 and len(err) == 1 and "nothing_here" in err[0]
    # Overrides apply over the run's configuration, checked as everywhere.
    rc, err = run("--run", str(pretrained_run), str(photo), "--out", str(tmp_path / "p5"), "train.batch_size=2.5")
    assert rc == 2 and len(err) == 1 and "config key 'train.batch_size' must be an integer" in err[0]
    rc, err = run("--run", str(pretrained_run), str(photo), "--out", str(tmp_path / "p6"), "--fov", "0")
    assert rc == 2 and len(err) == 1 and "--fov" in err[0]
    assert not (tmp_path / "p5").exists() and not (tmp_path / "p6").exists()


def test_prediction_page_of_a_run(pretrained_run, shared_data, capsys):
    rc = cli_main(["gallery", str(pretrained_run), "--real", f"{shared_data / 'lsp'}:801-806", "--device", "cpu"])
    assert rc == 0, capsys.readouterr().err
    page = (pretrained_run / "gallery" / "predictions.html").read_text()
    assert "images 801-806" in page and page.count("<figure>") == 6 + 2 * 6     # all, best 6, worst 6
    assert "Per-joint PCK@0.2" in page and "right_wrist" in page and "pelvis</td>" not in page
    from synth.train.evaluate import evaluate
    res = evaluate(pretrained_run / "checkpoint.pt", None, None, "cpu", [f"{shared_data / 'lsp'}:801-806"],
                   print_table=False)["real"][f"{shared_data / 'lsp'}:801-806"]
    assert f"<b>{100 * res['pck']:.1f} %</b>" in page and f"<b>{100 * res['pck_2d_head']:.1f} %</b>" in page
    # Without --real: the run's train.real photos, with overrides over its configuration.
    out = pretrained_run / "gallery" / "overridden.html"
    rc = cli_main(["gallery", str(pretrained_run), "--out", str(out), "--device", "cpu", f"data_dir={shared_data}",
                   "train.real.eval_range=[800,803]"])
    assert rc == 0, capsys.readouterr().err
    assert "images 801-803" in out.read_text() and out.read_text().count("<figure>") == 3 + 2 * 3
