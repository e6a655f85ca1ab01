"""The shadow-catching ground plane and the metered AgX exposure: tiny real Cycles renders of box
bodies (the catcher's shadow only darkens the background, the labels do not change), the placement
rules on box bodies, and the config keys."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from synth.config import ConfigError, load_config
from synth.dataset.grounding import draw_exposure, place_ground, shadow_extent
from synth.render.colour import exposure_gain, to_display
from synth.scene import PART_IDS, Environment, Exposure, Ground, Light
from test_render import boxes_body, make_camera, renderer_factory, spec  # noqa: F401 (fixture)

W = H = 64
FOOT, TORSO = PART_IDS["left_foot"], PART_IDS["torso"]


def standing_box():
    """A 1.6 m 'person' standing on z = 0: feet boxes under a torso box."""
    return boxes_body(((0.0, 0.0, 0.9), (0.4, 0.3, 1.4), TORSO),
                      ((-0.1, 0.0, 0.1), (0.15, 0.25, 0.2), FOOT), ((0.1, 0.0, 0.1), (0.15, 0.25, 0.2), FOOT))


def camera():
    # from above the head, looking down at the feet: the ground fills most of the image
    return make_camera(W, H, 40.0, (W - 1) / 2, (H - 1) / 2, eye=(0.5, -2.5, 2.8), target=(0.5, 0.0, 0.4))


def side_sun() -> list[Light]:
    # from the camera's left and above: the shadow falls to the image's right of the feet
    d = np.array([1.0, 0.3, -0.9])
    return [Light("SUN", np.array([-3.0, 0.0, 3.0]), d / np.linalg.norm(d), 4.0, (1, 1, 1), 0.02)]


def grey_background():
    return np.full((H, W, 3), 128, np.uint8)


def test_shadow_darkens_the_background_beside_the_feet_and_leaves_the_labels_alone(renderer_factory):
    r = renderer_factory(W, H, samples=4)
    scene = spec(standing_box(), camera(), lights=side_sun(), environment=Environment(color=(0.05, 0.05, 0.05)),
                 background=grey_background())
    off = r.render(scene)
    on = r.render(dataclasses.replace(scene, ground=Ground(height=0.0, extent=(-3, -3, 3, 3), fade=0.3)))
    # labels: the person's only, bit-identical
    np.testing.assert_array_equal(on.mask, off.mask)
    np.testing.assert_array_equal(on.parts, off.parts)
    np.testing.assert_array_equal(on.depth_mm, off.depth_mm)
    # the background only ever darkens
    bg = off.mask == 0
    diff = off.rgb.astype(int) - on.rgb.astype(int)
    assert diff[bg].min() >= 0
    # ... beside the feet, on the side away from the sun, by a lot
    ys, xs = np.nonzero(off.parts == FOOT)
    feet_row = slice(max(ys.min() - 2, 0), min(ys.max() + 3, H))
    right = np.zeros_like(bg)
    right[feet_row, xs.max() + 1:min(xs.max() + 12, W)] = True
    left = np.zeros_like(bg)
    left[feet_row, max(xs.min() - 12, 0):xs.min() - 1] = True
    assert diff[right & bg].mean() > 15
    assert diff[left & bg].mean() < 3
    # and not at all above the plane's horizon (the top rows show the photo, untouched)
    np.testing.assert_array_equal(on.rgb[:4], off.rgb[:4])
    # the person's pixels: the plane is seen by the camera only, so the body is lit as before
    person = off.mask > 0
    assert np.abs(diff[person]).mean() < 1.0


def test_ground_strength_zero_changes_nothing(renderer_factory):
    r = renderer_factory(W, H, samples=2)
    scene = spec(standing_box(), camera(), lights=side_sun(), background=grey_background())
    off = r.render(scene)
    on = r.render(dataclasses.replace(scene, ground=Ground(height=0.0, extent=(-3, -3, 3, 3), strength=0.0)))
    np.testing.assert_array_equal(on.rgb[off.mask == 0], off.rgb[off.mask == 0])


def clipped(out) -> float:
    person = out.mask > 0
    return float((out.rgb[person] >= 235).all(axis=1).mean())


def test_metered_agx_exposure_stops_the_clipping_of_a_bright_lit_body(renderer_factory):
    r = renderer_factory(W, H, samples=4)
    eye = np.array([0.0, -4.0, 1.4])
    blinding = [Light("POINT", eye + [0.3, 0.0, 0.5], -eye / np.linalg.norm(eye), 6000.0, (1, 1, 1), 0.2)]
    scene = spec(standing_box(), camera(), lights=blinding, background=grey_background())
    plain = r.render(scene)
    exposed = r.render(dataclasses.replace(scene, exposure=Exposure(view="AgX")))
    assert clipped(plain) > 0.5
    assert clipped(exposed) < 0.02
    np.testing.assert_array_equal(exposed.mask, plain.mask)
    np.testing.assert_array_equal(exposed.parts, plain.parts)
    np.testing.assert_array_equal(exposed.depth_mm, plain.depth_mm)
    # metered to the grey photo: the person's median brightness sits near the background's 128
    assert abs(np.median(exposed.rgb[exposed.mask > 0]) - 128) < 40
    # the background photo itself is untouched by the exposure
    np.testing.assert_array_equal(exposed.rgb[plain.mask == 0][:, 0] > 0, plain.rgb[plain.mask == 0][:, 0] > 0)
    # the metered gain is reported (a blinding light: the person is darkened, by several stops)
    assert plain.exposure_gain is None
    assert exposed.exposure_gain is not None and np.log2(exposed.exposure_gain) < -2


def test_agx_rolls_highlights_off_and_the_gain_inverts_its_grey_curve():
    grey = np.array([[0.18] * 3, [1.0] * 3, [16.0] * 3], np.float32)
    agx, standard = to_display(grey, "AgX"), to_display(grey, "Standard")
    assert standard[1, 0] == pytest.approx(1.0) and standard[2, 0] == pytest.approx(1.0)   # clipped
    assert agx[1, 0] < 0.85 and agx[2, 0] < 1.0 and agx[0, 0] < agx[1, 0] < agx[2, 0]
    # a gain that shows a grey of luminance 2.0 at display-linear 0.2
    g = exposure_gain(2.0, 0.2, "AgX")
    shown = to_display(np.full((1, 3), 2.0 * g, np.float32), "AgX")[0, 0]
    assert ((shown + 0.055) / 1.055) ** 2.4 == pytest.approx(0.2, rel=0.03)


def test_the_ground_goes_under_standing_feet_only_and_above_the_camera_only():
    cfg = load_config(None, ["render.ground.probability=1"])
    gc = cfg.render.ground
    rng = np.random.default_rng(0)
    standing = standing_box()
    ground, info = place_ground(gc, standing, [], camera(), side_sun(), rng)
    assert ground is not None and info["grounded"]
    assert ground.height == pytest.approx(0.0, abs=0.01) and ground.height <= 0.0
    x0, y0, x1, y1 = ground.extent
    assert x0 < -0.2 and x1 > 0.2 and y0 < -0.15 and y1 > 0.15      # the footprint, and more
    # the sun shines along +x: the shadow side reaches farther, up to max_shadow_m
    assert x1 > -x0 and x1 <= gc.max_shadow_m + 0.5
    # feet 0.5 m above the lowest point (sitting on something): no plane
    sitting = boxes_body(((0.0, 0.0, 0.3), (0.4, 0.4, 0.6), TORSO), ((0.0, 0.3, 0.6), (0.2, 0.2, 0.2), FOOT))
    ground, info = place_ground(gc, sitting, [], camera(), side_sun(), rng)
    assert ground is None and info["why"] == "feet off the ground"
    # a camera below the feet: no plane (it would hide the person)
    low = make_camera(W, H, 60.0, 31.5, 31.5, eye=(0.0, -4.0, -0.5), target=(0.0, 0.0, 0.5))
    ground, info = place_ground(gc, standing, [], low, side_sun(), rng)
    assert ground is None and info["why"] == "camera below the ground"
    never = gc.model_copy(update={"probability": 0.0})
    assert place_ground(never, standing, [], camera(), side_sun(), rng)[0] is None


def test_shadow_extent_follows_a_point_light_and_is_capped():
    pts = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.6]])
    light = Light("POINT", np.array([-1.0, 0.0, 2.0]), np.array([1.0, 0.0, -1.0]), 100.0, (1, 1, 1))
    x0, y0, x1, y1 = shadow_extent(pts, 0.0, [light], np.zeros(2), max_reach=10.0)
    # the head's shadow: from (-1, 0, 2) through (0, 0, 1.6) to the floor at x = 4
    assert x1 == pytest.approx(4.0 + 0.3, abs=1e-6)
    x0, y0, x1, y1 = shadow_extent(pts, 0.0, [light], np.zeros(2), max_reach=1.0)
    assert x1 == pytest.approx(1.0 + 0.3, abs=1e-6)


def test_exposure_draw_and_off_switch():
    cfg = load_config(None, [])
    e, info = draw_exposure(cfg.render.exposure, np.random.default_rng(1))
    assert e.view == "AgX" and abs(e.offset_stops) <= 2 * cfg.render.exposure.spread_stops and info["metered"]
    off = cfg.render.exposure.model_copy(update={"enabled": False})
    assert draw_exposure(off, np.random.default_rng(1))[0] is None


@pytest.mark.parametrize("override, pattern", [
    ("render.ground.probability=1.5", r"render\.ground\.probability"),
    ("render.ground.max_feet_height_m=-1", r"render\.ground\.max_feet_height_m"),
    ("render.ground.strength.low=2", r"render\.ground\.strength"),
    ("render.exposure.view=Filmic", r"render\.exposure\.view"),
    ("render.exposure.spread_stops=9", r"render\.exposure\.spread_stops"),
    ("render.exposure.key.high=1.5", r"render\.exposure\.key"),
])
def test_ground_and_exposure_keys_validate_with_one_line_errors(override, pattern):
    with pytest.raises(ConfigError, match=pattern) as e:
        load_config(None, [override])
    assert "\n" not in str(e.value)
