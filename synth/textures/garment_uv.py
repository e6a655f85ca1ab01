"""Textures for mesh garments from the real garment photos, in the garment's own UV layout.

A MakeHuman outfit is one mesh whose UV map lays its pieces out as islands (the jacket's front
and back, the sleeves, the trouser legs...). Once per asset, `GarmentLayout` gives each island a
region — upper (top) or lower (bottom) — by the majority of its surface (a face on a leg, or on
the torso below `waist_z`, is lower): a shirt panel that hangs over the hips stays a top, a
trouser leg with its waistband a bottom. It also measures the garment's texel scale (metres of surface per
unit of UV). Per sample, `garment_texture` fills each region with a garment photo's central crop
(upper photos for the top, lower photos for the bottom), tiled with mirrored repeats so that one
tile covers about `PHOTO_TILE_M` of fabric (the crop of a flat-lay photo shows ~30 cm of the
garment), or with a flat colour.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from synth.scene import PART_IDS
from synth.textures.simple import _photo_layer

UPPER, LOWER = 1, 2
REGIONS = {"upper": UPPER, "lower": LOWER}
PHOTO_TILE_M = 0.3
_LOWER_PARTS = {PART_IDS[p] for p in ("right_thigh", "right_lower_leg", "right_foot",
                                       "left_thigh", "left_lower_leg", "left_foot")}


def uv_islands(face_uvs: np.ndarray) -> np.ndarray:
    """(F,) island id of each face: faces sharing a UV corner are in one island."""
    keys = np.round(face_uvs.reshape(-1, 2) * 1e5).astype(np.int64)
    _, corner_point = np.unique(keys, axis=0, return_inverse=True)
    corner_point = corner_point.ravel()
    F = len(face_uvs)
    faces = np.repeat(np.arange(F), 3)
    P = int(corner_point.max()) + 1
    # bipartite face - UV point graph; components over faces
    g = coo_matrix((np.ones(3 * F), (faces, F + corner_point)), shape=(F + P, F + P))
    _, labels = connected_components(g, directed=False)
    return labels[:F]


class GarmentLayout:
    """A garment's UV regions (see the module docstring), rasterised at `size` x `size`."""

    def __init__(self, face_uvs: np.ndarray, face_parts: np.ndarray, rest_vertices: np.ndarray,
                 faces: np.ndarray, waist_z: float, size: int = 512):
        self.size = size
        centres_z = rest_vertices[faces][:, :, 2].mean(1)
        face_region = np.where(np.isin(face_parts, list(_LOWER_PARTS))
                               | ((face_parts == PART_IDS["torso"]) & (centres_z < waist_z)), LOWER, UPPER)
        islands = uv_islands(face_uvs)
        n = int(islands.max()) + 1
        v = rest_vertices[faces]
        face_area = 0.5 * np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1)
        lower_area = np.bincount(islands, weights=face_area * (face_region == LOWER), minlength=n)
        island_region = np.where(lower_area > 0.5 * np.bincount(islands, weights=face_area, minlength=n),
                                 LOWER, UPPER)
        self.face_region = island_region[islands].astype(np.uint8)
        # texel scale: metres of garment surface per UV unit
        area3 = face_area.sum()
        uv = face_uvs.astype(np.float64)
        d1, d2 = uv[:, 1] - uv[:, 0], uv[:, 2] - uv[:, 0]
        area_uv = 0.5 * np.abs(d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]).sum()
        self.metres_per_uv = float(np.sqrt(area3 / max(area_uv, 1e-12)))
        self.tiles = max(1, int(round(self.metres_per_uv / PHOTO_TILE_M)))
        T = size
        img = np.zeros((T, T), np.uint8)
        px = face_uvs.astype(np.float64).copy()
        px[..., 0] = px[..., 0] * T - 0.5
        px[..., 1] = (1.0 - px[..., 1]) * T - 0.5
        pts = np.round(px * 16).astype(np.int32)   # 4 fractional bits
        for r in (UPPER, LOWER):
            polys = list(pts[self.face_region == r])
            if polys:
                cv2.fillPoly(img, polys, int(r), lineType=cv2.LINE_8, shift=4)
        # grow the regions a few texels into the empty space so bilinear lookups at island
        # edges never read the background
        grown = cv2.dilate(img, np.ones((5, 5), np.uint8))
        img = np.where(img > 0, img, grown)
        self.masks = {name: (img == r).astype(np.uint8) for name, r in REGIONS.items()}
        self.has = {name: bool(m.any()) for name, m in self.masks.items()}


def _tiled(layer: np.ndarray, tiles: int, size: int) -> np.ndarray:
    """`layer` repeated tiles x tiles times, every other copy mirrored (seamless), at size^2."""
    if tiles <= 1:
        return layer
    row = np.concatenate([layer if i % 2 == 0 else layer[:, ::-1] for i in range(tiles)], axis=1)
    full = np.concatenate([row if i % 2 == 0 else row[::-1] for i in range(tiles)], axis=0)
    return cv2.resize(full, (size, size), interpolation=cv2.INTER_AREA)


def garment_texture(layout: GarmentLayout, photos: dict, flat: bool, rng: np.random.Generator
                    ) -> tuple[np.ndarray, list[dict]]:
    """One texture (T, T, 3) uint8 for the garment and the labels of what it is made of.
    `photos`: region name -> list of GarmentPhoto (synth.textures.segment)."""
    T = layout.size
    tex = np.zeros((T, T, 3), np.uint8)
    labels = []
    for name in ("upper", "lower"):
        if not layout.has[name]:
            continue
        lib = photos[name]
        g = lib[int(rng.integers(len(lib)))]
        if flat:
            colour = rng.uniform(20, 235, 3)
            tex[layout.masks[name] > 0] = colour.astype(np.uint8)
            labels.append({"id": f"flat:{name}:" + "".join(f"{int(c):02x}" for c in colour), "region": name,
                           "kind": "flat", "colour": [int(c) for c in colour]})
        else:
            tile = max(16, T // layout.tiles)
            layer = _tiled(_photo_layer(g.path, tile, rng), layout.tiles, T)
            cv2.copyTo(layer, layout.masks[name], tex)
            labels.append({"id": g.id, "region": name, "kind": "photo", "category": g.subcategory,
                           "tiles": layout.tiles})
    return tex, labels
