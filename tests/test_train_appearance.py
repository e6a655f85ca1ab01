"""Appearance augmentation on the session's rendered samples (real renders, their masks and part
maps) and the data mirror's background photos: the person's pixels and the labels are unchanged,
the background comes from another photo, garments are recoloured by part, reproducibility."""
import numpy as np
import pytest
import torch

from synth.config import load_config
from synth.scene import PART_IDS
from synth.train.appearance import (LOWER_PARTS, UPPER_PARTS, AppearanceAugmenter, AppearanceParams,
                                    build_appearance, list_backgrounds)
from synth.train.data import PoseShardDataset, list_shards


def appearance_of(shared_data, seed: int = 0, **app):
    """The augmenter of `train.appearance` (on, with these settings) over the mirror's photos."""
    over = [f"data_dir={shared_data}", "train.appearance.enabled=true"]
    over += [f"train.appearance.{k}={v}" for k, v in app.items()]
    cfg = load_config(None, over)
    return build_appearance(cfg.train.appearance, seed, cfg.paths().data)


ONLY_BACKGROUND = dict(background_probability=1.0, recolour_probability=0.0, blur_probability=0.0,
                       noise_probability=0.0, jpeg_probability=0.0)


@pytest.fixture(scope="module")
def sample(rendered_dataset):
    ds = PoseShardDataset(rendered_dataset, list_shards(rendered_dataset), 64)
    rgb, labels = ds.load_raw(0)
    mask, parts = ds.load_layers(0)
    return rgb, mask, parts, labels


def test_recomposite_keeps_the_person_and_takes_another_photo(sample, shared_data):
    rgb, mask, parts, labels = sample
    app = appearance_of(shared_data, **ONLY_BACKGROUND)
    own = labels["background"]["id"]
    assert own in app._ids                      # the render's photo is one of the data's backgrounds
    person = mask > 127
    assert 0.02 < person.mean() < 0.9
    seen = set()
    for i in range(6):
        p = app.draw(app.item_rng(0, i))
        out, photo = app.recomposite(rgb, mask, labels, p)
        assert photo is not None and app._id(photo) != own
        seen.add(photo)
        # The person's pixels are the rendered ones, bit for bit.
        assert np.array_equal(out[person], rgb[person])
        # Every other pixel is the other photo's, fitted to the image as the renderer fits them.
        import cv2
        photo_rgb = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB)
        fitted = AppearanceAugmenter.fit_background(photo_rgb, rgb.shape[1], rgb.shape[0], p.background_crop)
        assert np.array_equal(out[~person], fitted[~person])
        assert np.abs(out[~person].astype(int) - rgb[~person].astype(int)).mean() > 10
    assert len(seen) >= 4                       # different samples get different photos
    # With no other photo than its own, the sample is left as rendered.
    lonely = AppearanceAugmenter(app.settings, [shared_data / own], shared_data, 0)
    assert lonely.recomposite(rgb, mask, labels, p)[1] is None


def test_recolouring_changes_only_the_garment_parts(sample, shared_data):
    rgb, mask, parts, labels = sample
    p = AppearanceParams(recolour=((90.0, 1.0, 1.0), (-120.0, 0.5, 0.8)))
    out = AppearanceAugmenter.recolour(rgb, mask, parts, p)
    person = mask > 127
    upper = person & np.isin(parts, [PART_IDS[n] for n in UPPER_PARTS])
    lower = person & np.isin(parts, [PART_IDS[n] for n in LOWER_PARTS])
    assert upper.sum() > 20 and lower.sum() > 20
    untouched = ~(upper | lower)
    assert np.array_equal(out[untouched], rgb[untouched])        # head, hands, feet, background
    diff = np.abs(out.astype(int) - rgb.astype(int)).sum(-1)
    # Coloured pixels move (grey ones have no hue to shift); the lower body also darkens.
    assert (diff[upper] > 0).mean() > 0.3 and (diff[lower] > 0).mean() > 0.5
    assert out[lower].mean() < rgb[lower].mean()


def test_items_keep_their_labels_and_are_reproducible(rendered_dataset, shared_data):
    every = dict(background_probability=1.0, recolour_probability=1.0, blur_probability=1.0,
                 noise_probability=1.0, jpeg_probability=1.0)
    shards = list_shards(rendered_dataset)
    plain = PoseShardDataset(rendered_dataset, shards, 64)
    a1 = PoseShardDataset(rendered_dataset, shards, 64, appearance=appearance_of(shared_data, 3, **every))
    a2 = PoseShardDataset(rendered_dataset, shards, 64, appearance=appearance_of(shared_data, 3, **every))
    for i in range(len(plain)):
        x, y, z = plain[i], a1[i], a2[i]
        for k in ("target", "joints_2d_crop", "visible_2d", "scale", "joints_3d"):
            assert torch.equal(x[k], y[k]), k                       # labels unchanged
        assert (x["image"] - y["image"]).abs().mean() > 0.05        # pixels changed
        assert torch.equal(y["image"], z["image"])                  # same (seed, epoch, index)
    first = a1[0]["image"]
    a1.set_epoch(1)
    assert not torch.equal(a1[0]["image"], first)                   # another epoch
    other = PoseShardDataset(rendered_dataset, shards, 64, appearance=appearance_of(shared_data, 4, **every))
    assert not torch.equal(other[0]["image"], first)                # another seed
    # Forked DataLoader workers draw the same (exact resume relies on it).
    from torch.utils.data import DataLoader
    serial = next(iter(DataLoader(a1, batch_size=len(a1), num_workers=0)))
    forked = next(iter(DataLoader(a1, batch_size=len(a1), num_workers=2)))
    assert torch.equal(serial["image"], forked["image"])


def test_camera_effects_and_settings(shared_data):
    crop = np.zeros((48, 48, 3), np.uint8)
    crop[:, 24:] = 200
    blurred = AppearanceAugmenter.apply_crop(crop, AppearanceParams(blur_sigma=1.5))
    assert 0 < blurred[20, 23, 0] < 200 and blurred[20, 5, 0] == 0     # the edge is soft, far pixels kept
    noisy = AppearanceAugmenter.apply_crop(crop, AppearanceParams(noise_std=5.0, noise_seed=1))
    assert 2.0 < (noisy.astype(float) - crop).std() < 8.0
    jpeg = AppearanceAugmenter.apply_crop(np.random.default_rng(0).integers(0, 256, (48, 48, 3)).astype(np.uint8),
                                          AppearanceParams(jpeg_quality=20))
    assert jpeg.shape == (48, 48, 3)
    assert build_appearance(load_config(None, []).train.appearance, 0, shared_data) is None      # off by default
    assert len(list_backgrounds(shared_data)) > 100
    from synth.config import ConfigError
    with pytest.raises(ConfigError, match="train.appearance.jpeg_probability"):
        load_config(None, ["train.appearance.jpeg_probability=1.5"])
    from synth.io_utils import InputError
    with pytest.raises(InputError, match="no background photos"):
        appearance_of("/nonexistent")
