"""Where a sample's ground plane goes, and its exposure draw (render.ground, render.exposure).

Both come from the sample's own GROUND_EXPOSURE stream (synth.rng), so that turning them on or
changing their settings leaves its pose, shape, clothing, camera, lights and background as
they were.

The ground: the posed body carries no world height of its own (its pelvis sits at the origin,
MoCap root heights are not kept), so whether it stands is read from its shape. It stands when its
lowest foot point (foot vertices, shoes) is within `max_feet_height_m` of the lowest point of the
body and what it wears; the plane then sits at that lowest point. Sitting, kneeling on the shins or
lying poses, whose feet are higher than what they rest on, get no plane rather than a plane at
their lowest point: a pose captured on a chair or a step would otherwise hover its feet over a
floor it does not touch, or rest its seat on an invisible one, with shadows telling so. (A jump
cannot be told from a stance without the root height: it is grounded.) Nor does a camera below
the plane (or barely above it, `min_camera_height_m`) get one: the plane would hide the person.
"""
from __future__ import annotations

import numpy as np

from synth.config import ExposureConfig, GroundConfig
from synth.rng import Stream, stream
from synth.scene import PART_IDS, BodyMesh, Camera, Exposure, Ground, Light, WornMesh

FOOT_PARTS = (PART_IDS["right_foot"], PART_IDS["left_foot"])
# the plane sits this far under the lowest vertex, so that no sole face lies in it
GROUND_GAP_M = 0.002
# the plane reaches this far beyond the footprint and the shadows, and the caught shadow fades
# out over its outer FADE_M: a shadow ends before the fade unless max_shadow_m cut it
MARGIN_M = 0.3
FADE_M = 0.3
# about this many of the vertices (evenly strided) are projected to find where the shadows fall
SHADOW_POINTS = 2000


def ground_exposure_rng(seed: int, shard: int, index: int, attempt: int = 0) -> np.random.Generator:
    return stream(seed, Stream.GROUND_EXPOSURE, shard, index, attempt)


def foot_points(body: BodyMesh, worn: list[WornMesh] | tuple = ()) -> np.ndarray:
    """(N, 3) the vertices of the body's foot faces and of the shoes it wears."""
    on_foot = np.isin(body.face_parts, FOOT_PARTS)
    points = [np.asarray(body.vertices)[np.unique(np.asarray(body.faces)[on_foot])]]
    points += [np.asarray(w.vertices) for w in worn if w.kind == "shoes"]
    return np.concatenate(points).reshape(-1, 3)


def shadow_extent(points: np.ndarray, height: float, lights: list[Light], centre: np.ndarray,
                  max_reach: float) -> tuple[float, float, float, float]:
    """The rectangle (x0, y0, x1, y1) on the plane z = `height` that holds the footprint of
    `points` (N, 3) and their shadows from each light (point-like lights from their position, SUN
    along its direction), each shadow point kept within `max_reach` of `centre` (x, y), grown by
    MARGIN_M. The environment's light casts a soft shadow under the body: the footprint."""
    pts = np.asarray(points, np.float64)
    spots = [pts[:, :2]]
    for light in lights:
        loc = np.asarray(light.location, np.float64)
        if str(light.kind).upper() == "SUN":
            d = np.asarray(light.direction, np.float64)
            if d[2] >= -1e-3:
                continue                     # a sun at or below the horizon: shadows reach the edge
            spots.append(pts[:, :2] + d[None, :2] * ((pts[:, 2] - height) / -d[2])[:, None])
        else:
            above = pts[:, 2] < loc[2] - 1e-3
            if not above.any():
                continue
            p = pts[above]
            scale = (loc[2] - height) / (loc[2] - p[:, 2])
            spots.append(loc[None, :2] + (p[:, :2] - loc[None, :2]) * scale[:, None])
    flat = np.concatenate(spots)
    off = flat - centre[None, :]
    r = np.linalg.norm(off, axis=1)
    far = r > max_reach
    flat[far] = centre[None, :] + off[far] * (max_reach / r[far])[:, None]
    lo, hi = flat.min(axis=0) - MARGIN_M, flat.max(axis=0) + MARGIN_M
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def place_ground(gc: GroundConfig, body: BodyMesh, worn, camera: Camera, lights: list[Light],
                 rng: np.random.Generator) -> tuple[Ground | None, dict]:
    """The ground plane under the feet, or None; and its labels. Draws the same numbers from `rng`
    whatever is decided (so what follows in the stream does not depend on it)."""
    wanted = rng.random() < gc.probability
    strength = float(rng.uniform(gc.strength.low, gc.strength.high))
    allv = np.concatenate([np.asarray(body.vertices).reshape(-1, 3)]
                          + [np.asarray(w.vertices).reshape(-1, 3) for w in worn])
    lowest = float(allv[:, 2].min())
    feet = foot_points(body, worn)
    feet_above = float(feet[:, 2].min()) - lowest if len(feet) else float("inf")
    camera_z = float((-np.asarray(camera.R).T @ np.asarray(camera.t))[2])
    height = lowest - GROUND_GAP_M
    if not wanted:
        return None, {"grounded": False, "why": "not drawn"}
    if feet_above > gc.max_feet_height_m:
        return None, {"grounded": False, "why": "feet off the ground", "feet_above_lowest_m": round(feet_above, 4)}
    if camera_z - height < gc.min_camera_height_m:
        return None, {"grounded": False, "why": "camera below the ground",
                      "camera_above_m": round(camera_z - height, 4)}
    centre = feet[:, :2].mean(axis=0) if len(feet) else allv[:, :2].mean(axis=0)
    extent = shadow_extent(allv[::max(1, len(allv) // SHADOW_POINTS)], height, lights, centre, gc.max_shadow_m)
    ground = Ground(height=height, extent=extent, fade=FADE_M, strength=strength)
    return ground, {"grounded": True, "height": round(height, 4), "strength": round(strength, 4),
                    "extent": [round(c, 3) for c in extent]}


def draw_exposure(ec: ExposureConfig, rng: np.random.Generator) -> tuple[Exposure | None, dict]:
    """The sample's view transform and metering offset, or None (render.exposure.enabled=false)."""
    offset = float(np.clip(rng.normal(0.0, 1.0), -2.0, 2.0)) * ec.spread_stops
    if not ec.enabled:
        return None, {"view": "Standard", "metered": False}
    exposure = Exposure(view=ec.view, offset_stops=offset, key_low=ec.key.low, key_high=ec.key.high)
    return exposure, {"view": ec.view, "metered": True, "offset_stops": round(offset, 4)}
