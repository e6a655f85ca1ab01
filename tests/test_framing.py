"""Photo-like framing, occluders and the per-joint flags, on real Anny bodies, real background
photos and real tiny Cycles renders."""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import small_config
from synth.dataset.occluders import OWN_PART_IDS, composite_foreground, draw_occluder, person_labels
from synth.dataset.scene_sampler import SceneSampler, decode_background, projected_box
from synth.render.colour import MAX_GAIN_STOPS
from synth.scene import JOINTS, RenderOutput


def _samples(out: Path):
    """(key, members) of every sample of a rendered dataset, decoded."""
    for tar in sorted((out / "shards").glob("*.tar")):
        groups: dict[str, dict] = {}
        with tarfile.open(tar) as tf:
            for m in tf.getmembers():
                key, _, fld = Path(m.name).name.partition(".")
                groups.setdefault(key, {})[fld] = tf.extractfile(m).read()
        for key, g in sorted(groups.items()):
            yield key, {"labels": json.loads(g["json"]),
                        "rgb": np.asarray(Image.open(io.BytesIO(g.get("rgb.jpg") or g["rgb.png"])).convert("RGB")),
                        "mask": np.asarray(Image.open(io.BytesIO(g["mask.png"]))),
                        "parts": np.asarray(Image.open(io.BytesIO(g["parts.png"]))),
                        "depth": np.asarray(Image.open(io.BytesIO(g["depth.png"])))}


@pytest.fixture(scope="module")
def framed_dataset(tmp_path_factory, shared_data, cache_dir) -> Path:
    """2 shards × 2 samples at 64² where every person is cut by the bottom border and occluded."""
    from synth.dataset.render_job import render_dataset
    out = tmp_path_factory.mktemp("framed") / "ds"
    cfg = small_config(shared_data, cache_dir, **{
        "render.image_size": "[64, 64]", "dataset.samples_per_shard": 2, "render.clothing.mode": "flat",
        "render.framing.truncation_probability": 1.0, "render.framing.truncation_sides": "[bottom]",
        "render.framing.truncation": "{low: 0.3, high: 0.4}",
        "render.occluders.probability": 1.0, "render.occluders.height": "{low: 0.3, high: 0.4}"})
    render_dataset(cfg, out, progress=False)
    return out


def test_framing_size_height_pitch_and_truncation(shared_data, cache_dir):
    """The drawn person size is what the projected box spans; the camera stays within its height
    and pitch ranges; a bottom truncation puts the drawn share of the box below the border."""
    cfg = small_config(shared_data, cache_dir, **{
        "render.image_size": "[128, 96]", "render.clothing.mode": "flat", "render.occluders.probability": 0.0,
        "render.framing.truncation_probability": 0.5, "render.framing.truncation_sides": "[bottom, right]"})
    sampler = SceneSampler(cfg)
    fc = cfg.render.framing
    W, H = 128, 96
    cut_sides = set()
    for i in range(10):
        spec, _ = sampler.scene(0, i)
        cam = spec.labels["camera"]
        fr = cam["framing"]
        assert fr["mode"] == "photo"
        x0, y0, x1, y1 = fr["person_box"]
        lo, hi = projected_box(spec.camera.R, spec.camera.t, spec.camera.K, spec.body.vertices.astype(np.float64))
        assert np.allclose([x0, y0, x1, y1], [*lo, *hi], atol=1e-6)        # flat clothing: the body alone
        size = max((y1 - y0) / H, (x1 - x0) / W)
        assert size == pytest.approx(fr["person_size"], rel=0.06)
        assert fc.pitch_deg.low - 1e-6 <= cam["pitch_deg"] <= fc.pitch_deg.high + 1e-6
        if fc.pitch_deg.low + 0.1 < cam["pitch_deg"] < fc.pitch_deg.high - 0.1:
            # the camera moves up or down only where the pitch hit its bound
            assert cam["height_above_ground_m"] == pytest.approx(fr["camera_height_m"], abs=1e-6)
        t = fr["truncation"]
        if t is None:
            assert x0 >= -0.5 - 1 and x1 <= W - 0.5 + 1 and y0 >= -0.5 - 1 and y1 <= H - 0.5 + 1
        elif t["side"] == "bottom":
            cut_sides.add("bottom")
            assert (y1 - (H - 0.5)) / (y1 - y0) == pytest.approx(t["share"], abs=0.02)
        else:
            cut_sides.add("right")
            assert (x1 - (W - 0.5)) / (x1 - x0) == pytest.approx(t["share"], abs=0.02)
    assert cut_sides, "no sample was truncated at probability 0.5 in 10 draws"


def test_framing_off_is_the_sphere_framing(shared_data, cache_dir):
    """render.framing.enabled=false leaves the camera of render.camera alone (centred sphere), and
    the framing's own stream leaves every other draw of the sample unchanged."""
    on = SceneSampler(small_config(shared_data, cache_dir, **{"render.clothing.mode": "flat"}))
    off = SceneSampler(small_config(shared_data, cache_dir, **{"render.clothing.mode": "flat",
                                                              "render.framing.enabled": "false"}))
    a, _ = on.scene(1, 0)
    b, _ = off.scene(1, 0)
    assert b.labels["camera"]["framing"]["mode"] == "sphere"
    assert not np.allclose(a.camera.R, b.camera.R)
    assert a.labels["pose"] == b.labels["pose"] and a.labels["background"] == b.labels["background"]
    assert a.labels["lights"] == b.labels["lights"]
    x0, y0, x1, y1 = b.labels["camera"]["framing"]["person_box"]
    assert abs((x0 + x1) / 2 - 47.5) < 20 and abs((y0 + y1) / 2 - 47.5) < 20     # centred


def test_occluder_clears_the_labels_it_hides(rendered_dataset, shared_data, cache_dir):
    """An occluder cut from a real background photo over a real render: mask, parts and depth are
    cleared exactly where its alpha reaches 1/2 and untouched elsewhere, the RGB changes only
    under it, and the joints it hides lose their visible flag."""
    cfg = small_config(shared_data, cache_dir, **{"render.occluders.probability": 1.0,
                                                  "render.occluders.width": "{low: 0.8, high: 0.9}",
                                                  "render.occluders.height": "{low: 0.5, high: 0.6}",
                                                  "render.occluders.from_bottom_probability": 0.0})
    key, s = next(_samples(rendered_dataset))
    lab = s["labels"]
    out = RenderOutput(rgb=s["rgb"], mask=s["mask"], parts=s["parts"], depth_mm=s["depth"])
    photos = sorted((shared_data / "backgrounds").rglob("*.jpg"))[:5]
    H, W = s["mask"].shape
    fg = draw_occluder(cfg.render.occluders, np.random.default_rng(3), lab["bbox"], W, H, photos, shared_data,
                       decode_background)
    assert fg is not None and fg.labels["id"].startswith("backgrounds/")
    new, olab = composite_foreground(out, fg)
    hidden = fg.alpha >= 0.5
    assert hidden.any() and (s["mask"][hidden] > 0).any()
    for before, after in ((s["mask"], new.mask), (s["parts"], new.parts), (s["depth"], new.depth_mm)):
        assert (after[hidden] == 0).all()
        assert np.array_equal(after[~hidden], before[~hidden])
    assert np.array_equal(new.rgb[fg.alpha == 0], s["rgb"][fg.alpha == 0])
    assert olab["hidden_share"] == pytest.approx(((s["mask"] > 0) & hidden).sum() / (s["mask"] > 0).sum())
    flags = person_labels(np.asarray(lab["joints_3d_cam"]), np.asarray(lab["joints_2d"]), new.mask, new.parts)
    for j, (u, v) in enumerate(np.asarray(lab["joints_2d"])):
        x, y = int(round(u)), int(round(v))
        if flags["joints_in_image"][j] and hidden[max(0, y - 1):y + 2, max(0, x - 1):x + 2].all():
            assert not flags["joints_visible"][j]


def test_rendered_labels_carry_flags_and_boxes(rendered_dataset):
    """Every sample of the default-config render: `joints_in_image` is the joints' rounded pixel
    in the image, `joints_visible` only where the joint's own part is seen, `bbox` the mask's extent."""
    n = 0
    for key, s in _samples(rendered_dataset):
        lab = s["labels"]
        H, W = s["mask"].shape
        xy = np.rint(np.asarray(lab["joints_2d"]))
        inside = (xy[:, 0] >= 0) & (xy[:, 0] < W) & (xy[:, 1] >= 0) & (xy[:, 1] < H)
        assert lab["joints_in_image"] == inside.tolist(), key
        for j, name in enumerate(JOINTS):
            if lab["joints_visible"][j]:
                x, y = int(xy[j, 0]), int(xy[j, 1])
                win = s["parts"][max(0, y - 1):y + 2, max(0, x - 1):x + 2]
                assert OWN_PART_IDS[name] & set(np.unique(win).tolist()), (key, name)
        ys, xs = np.nonzero(s["mask"])
        assert lab["bbox"] == [xs.min(), ys.min(), xs.max(), ys.max()]
        assert "occluder" in lab
        # the default exposure is metered: the gain it applied is recorded (finite, within the
        # metering's limit either way)
        assert lab["exposure"]["metered"] and abs(lab["exposure"]["gain_stops"]) <= MAX_GAIN_STOPS, key
        n += 1
    assert n == 6


def test_truncated_and_occluded_render(framed_dataset):
    """A real render with every person cut at the bottom and occluded: feet leave the image, the
    occluder is recorded and hides some of the person, and mask and depth still agree."""
    n_out = 0
    for key, s in _samples(framed_dataset):
        lab = s["labels"]
        assert lab["camera"]["framing"]["truncation"]["side"] == "bottom"
        n_out += not all(lab["joints_in_image"])
        occ = lab["occluder"]
        assert occ is not None and 0.0 <= occ["hidden_share"] <= 1.0
        assert np.array_equal(s["mask"] > 0, s["depth"] > 0)
        assert np.array_equal(s["mask"] > 0, s["parts"] > 0)
    assert n_out >= 2
    assert any(lab_hidden > 0 for lab_hidden in (s["labels"]["occluder"]["hidden_share"]
                                                 for _, s in _samples(framed_dataset)))


def test_joint_outside_the_image_gets_no_2d_loss(framed_dataset):
    """The trainer's items: a joint outside the rendered image has zero 2D weight (even where the
    crop, padded beyond the image, still holds its position), so the 2D loss has no gradient
    toward it; its 3D target is kept."""
    from synth.train.adaptation import head_2d_loss
    from synth.train.data import PoseShardDataset, list_shards
    ds = PoseShardDataset(framed_dataset, list_shards(framed_dataset), 64)
    checked = 0
    for i in range(len(ds)):
        item = ds[i]
        lab = ds.labels(i)
        outside = ~np.asarray(lab["joints_in_image"])
        if not outside.any():
            continue
        vis = item["visible_2d"].numpy()
        assert (vis[outside] == 0).all()
        assert torch.isfinite(item["target"]).all()
        pred = torch.zeros(1, len(vis), 2, requires_grad=True)
        head_2d_loss(pred, item["joints_2d_crop"][None], item["visible_2d"][None], 64).backward()
        g = pred.grad[0].abs().sum(-1).numpy()
        assert (g[outside] == 0).all() and (g[vis > 0] > 0).all()
        checked += 1
    assert checked >= 2
