"""Garment image and contour math on real product photos: segmentation against the data's own
masks, continuous DTW on real garment contours, MLS warping (identity, interpolation of control
points, and a real garment mask warped onto a different silhouette)."""

import cv2
import numpy as np
import pytest

from synth.io_utils import InputError
from synth.textures.contours import (align_bbox, contour_distance, contour_mask, mask_contour,
                                     point_polyline_distance, resample_closed, signed_area)
from synth.textures.dtw import match_closed_contours
from synth.textures.mls import MODES, mls_deform, mls_warp
from synth.textures.segment import (list_garment_photos, load_given_mask, mask_iou,
                                    segment_garment)

# Three VITON-HD tops with given masks; their measured IoU is 0.964-0.991 (bench_garments.py).
MASKED = ["01260_00", "03751_00", "08348_00"]
# A flat-lay photo: a white t-shirt on a red sheet.
FLAT = ["upper/t-shirt/a9b25869-8ee5-4fbd-b3e8-e5067c5f73e7.jpg"]


@pytest.fixture(scope="module")
def photos(shared_data):
    return list_garment_photos(shared_data)


def by_name(photos, part):
    return next(p for p in photos if part in p.id)


@pytest.fixture(scope="module")
def tshirt(photos):
    """A real garment (a t-shirt on a red sheet), segmented once."""
    seg = segment_garment(by_name(photos, FLAT[0]))
    assert seg.ok, seg.reason
    return seg


def test_photo_list_matches_manifest_and_folders(photos, shared_data):
    manifest = (shared_data / "clothing" / "manifest.csv").read_text().strip().splitlines()
    assert len(photos) == len(manifest) - 1
    assert {p.category for p in photos} == {"upper", "lower"}
    for p in photos:
        assert p.path.is_file() and (shared_data / p.id) == p.path
        if "/upper/" in p.id or "/lower/" in p.id:
            assert f"/{p.category}/" in p.id
    assert sum(p.mask_path is not None for p in photos) == 13


def test_bad_manifest_is_one_line_error(tmp_path):
    (tmp_path / "clothing").mkdir()
    (tmp_path / "clothing" / "manifest.csv").write_text("file,mask,category,subcategory\nx.jpg,,middle,top\n")
    with pytest.raises(InputError, match=r"manifest.csv:2: category 'middle'"):
        list_garment_photos(tmp_path)


@pytest.mark.parametrize("name", MASKED)
def test_segmentation_agrees_with_given_masks(photos, name):
    photo = by_name(photos, name)
    seg = segment_garment(photo)
    given = load_given_mask(photo, seg.mask.shape)
    assert seg.ok, seg.reason
    assert mask_iou(seg.mask, given) > 0.93


def test_segmentation_of_flat_lays_is_plausible(photos):
    for sub in ("lower/pants/", "lower/skirt/", "upper/longsleeve/"):
        photo = next(p for p in photos if sub in p.id)
        seg = segment_garment(photo, max_side=384)
        assert max(seg.image.shape[:2]) == 384 and seg.mask.shape == seg.image.shape[:2]
        assert seg.ok, (photo.id, seg.reason)
        assert 0.1 < seg.area_share < 0.85 and seg.n_blobs == 1
        # The garment is unlike the surface it lies on: its mean colour differs from the border's.
        img = seg.image.astype(float)
        assert np.linalg.norm(img[seg.mask].mean(0) - img[~seg.mask].mean(0)) > 20


def test_implausible_mask_is_rejected_with_reason(tmp_path, photos):
    # A crop of the middle of a garment photo: the garment runs off every edge.
    img = cv2.imread(str(by_name(photos, FLAT[0]).path))
    h, w = img.shape[:2]
    crop = tmp_path / "crop.jpg"
    cv2.imwrite(str(crop), img[h // 4: 3 * h // 4, w // 4: 3 * w // 4])
    seg = segment_garment(crop)
    assert not seg.ok and seg.reason
    # The garment cut by the frame (top 60% of the photo): its colour is then part of the
    # border's colour model, and what is left of the mask is rejected.
    cv2.imwrite(str(crop), img[: int(0.6 * h)])
    seg = segment_garment(crop)
    assert not seg.ok and seg.reason.startswith("touches border")
    # The bare surface: a patch of the photo's own border, tiled, has no garment at all.
    sheet = tmp_path / "sheet.jpg"
    cv2.imwrite(str(sheet), np.tile(img[:40, :40], (8, 6, 1)))
    seg = segment_garment(sheet)
    assert not seg.ok and seg.reason


def test_unreadable_photo_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(InputError, match="bad.jpg: unreadable garment photo"):
        segment_garment(bad)


def test_mask_contour_is_ccw_and_even(tshirt):
    c = mask_contour(tshirt.mask, 128)
    assert c.shape == (128, 2) and signed_area(c) > 0
    step = np.linalg.norm(np.diff(np.vstack([c, c[:1]]), axis=0), axis=1)
    assert step.max() < 1.5 * step.mean()
    assert abs(signed_area(c) - tshirt.mask.sum()) < 0.03 * tshirt.mask.sum()


@pytest.mark.parametrize("shift", [0, 17, 90])
def test_dtw_recovers_cyclic_shift(tshirt, shift):
    a = mask_contour(tshirt.mask, 128)
    b = np.roll(a, -shift, axis=0) * 0.6 + [40.0, -25.0]      # and translated and scaled
    m = match_closed_contours(a, b)
    assert m.start_shift == (-shift) % 128
    assert np.allclose(m.b_pts, a * 0.6 + [40.0, -25.0], atol=1e-6)
    assert m.cost < 1e-9 and m.deformation < 1e-9


def test_dtw_recovers_nonuniform_resampling(tshirt):
    """b: the same real contour, 100 samples bunched unevenly along it, reversed, shifted.
    Continuous DTW puts each of a's samples back on (nearly) itself."""
    a = mask_contour(tshirt.mask, 128)
    dense = resample_closed(a, 4096)
    u = np.linspace(0, 1, 100, endpoint=False)
    u = (u + 0.04 * np.sin(2 * np.pi * u)) % 1.0
    b = dense[(u * 4096).astype(int)]
    b = np.roll(b, -30, axis=0)[::-1]
    m = match_closed_contours(a, b)
    assert signed_area(b) < 0      # the match normalised b's orientation itself
    err = np.linalg.norm(m.b_pts - a, axis=1)
    size = np.ptp(a, axis=0).max()
    assert err.mean() < 0.005 * size and np.median(err) < 0.003 * size
    assert m.deformation < 0.02
    # The continuous parameter (b's own indexing) runs once around b, backwards since b was
    # given clockwise: monotone modulo m, one wrap in all.
    steps = (-np.diff(np.r_[m.b_param, m.b_param[0]])) % 100
    assert (steps < 10).all() and np.isclose(steps.sum(), 100)


def test_dtw_deformation_ranks_shapes(tshirt, photos):
    """A t-shirt contour needs less deformation to match another t-shirt than to match pants."""
    a = mask_contour(tshirt.mask, 128)
    other_shirt = mask_contour(segment_garment(by_name(photos, "upper/t-shirt/e7090cf1")).mask, 128)
    pants = mask_contour(segment_garment(next(p for p in photos if "lower/pants/" in p.id)).mask, 128)
    assert match_closed_contours(a, other_shirt).deformation < match_closed_contours(a, pants).deformation


@pytest.mark.parametrize("mode", MODES)
def test_mls_identity_and_interpolation(tshirt, mode):
    rng = np.random.default_rng(0)
    p = mask_contour(tshirt.mask, 32)
    v = rng.uniform(0, 300, (200, 2))
    assert np.abs(mls_deform(v, p, p, mode) - v).max() < 1e-6
    q = p + rng.normal(scale=8.0, size=p.shape)
    assert np.abs(mls_deform(p, p, q, mode) - q).max() < 1e-6
    img = tshirt.image
    warped, valid = mls_warp(img, p, p, img.shape[:2], mode=mode)
    assert valid.all()
    assert np.abs(warped.astype(int) - img.astype(int)).max() <= 1


def test_mls_reproduces_global_motions_its_mode_can_express():
    p = np.array([[0, 0], [100, 0], [100, 50], [0, 50], [30, 10]], float)
    R = np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]])
    A = np.array([[1.2, 0.3], [-0.1, 0.8]])
    v = np.random.default_rng(1).uniform(-50, 150, (100, 2))
    motions = {"rigid": lambda x: x @ R.T + [10, 20],
               "similarity": lambda x: 1.5 * x @ R.T + [10, 20],
               "affine": lambda x: x @ A.T + [10, 20]}
    for k, (kind, f) in enumerate(motions.items()):
        for mode in MODES[k:]:      # rigid < similarity < affine: each expresses the ones before
            assert np.allclose(mls_deform(v, p, f(p), mode), f(v), atol=1e-6), (kind, mode)
    # Rigid MLS does not scale: fitting a 1.5x similarity, it moves points by local rotations only.
    out = mls_deform(v, p, motions["similarity"](p), "rigid")
    assert not np.allclose(out, motions["similarity"](v), atol=1.0)


def test_mls_prealign_lets_rigid_fit_a_scaled_garment(tshirt):
    """Rigid MLS keeps local scale: control points on a garment photographed 1.6x larger only
    reach their targets once the global similarity is taken out first (prealign)."""
    p = mask_contour(tshirt.mask, 64)
    q = (p - p.mean(0)) / 1.6 + [256.0, 256.0]
    H, W = 512, 512
    warped, valid = mls_warp(tshirt.image, p, q, (H, W), mode="rigid", src_mask=tshirt.mask)
    raw, raw_valid = mls_warp(tshirt.image, p, q, (H, W), mode="rigid", src_mask=tshirt.mask, prealign=False)
    target = contour_mask(q, (H, W))
    assert mask_iou(valid, target) > 0.95
    assert mask_iou(valid, target) > mask_iou(raw_valid, target)


def test_smoothed_correspondences_stay_on_b_and_near_the_match(tshirt, photos):
    body = mask_contour(silhouette_with_sleeves(), 128)
    garment = mask_contour(tshirt.mask, 128)
    plain = match_closed_contours(body, garment)
    smooth = match_closed_contours(body, garment, smooth=9)
    size = np.ptp(garment, axis=0).max()
    assert point_polyline_distance(smooth.b_pts, garment).max() < 1e-6
    assert np.linalg.norm(smooth.b_pts - plain.b_pts, axis=1).mean() < 0.03 * size
    # Smoothing removes the DP's staircase: the steps along b vary less.
    def step_spread(pts):
        d = np.linalg.norm(np.diff(np.vstack([pts, pts[:1]]), axis=0), axis=1)
        return d.std()
    assert step_spread(smooth.b_pts) < step_spread(plain.b_pts)


def silhouette_with_sleeves(shape=(512, 512)) -> np.ndarray:
    """A body-like upper silhouette: a torso rectangle with two slanted sleeves (cv2-drawn)."""
    m = np.zeros(shape, np.uint8)
    cv2.rectangle(m, (170, 130), (340, 420), 1, -1)
    cv2.fillPoly(m, [np.array([[170, 130], [100, 200], [130, 240], [175, 200]])], 1)
    cv2.fillPoly(m, [np.array([[340, 130], [410, 200], [380, 240], [335, 200]])], 1)
    return m.astype(bool)


@pytest.mark.parametrize("mode", MODES)
def test_warping_real_garment_onto_silhouette_shrinks_contour_distance(tshirt, mode):
    target = silhouette_with_sleeves()
    body = mask_contour(target, 128)
    garment = mask_contour(tshirt.mask, 128)
    m = match_closed_contours(body, garment)
    warped, valid = mls_warp(tshirt.image, m.b_pts, body, target.shape, mode=mode, src_mask=tshirt.mask)
    after = contour_distance(mask_contour(valid, 128), body)
    before = contour_distance(align_bbox(garment, body), body)
    # Measured on this photo: before 13.1 px (bbox-fitted), after 3.0 / 2.3 / 1.9 px (rigid /
    # similarity / affine), IoU with the silhouette 0.94-0.96.
    assert after < 0.4 * before
    assert mask_iou(valid, target) > 0.9
    # The garment's pixels are what fills the silhouette: mostly the t-shirt's light colour.
    assert warped[valid & target].mean() > 150
