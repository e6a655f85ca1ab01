"""Textures for mesh garments from the real garment photos, in the garment's own UV layout.

A MakeHuman outfit is one mesh whose UV map lays its pieces out as islands (the jacket's front
and back, the sleeves, the trouser legs...). Once per asset, `GarmentLayout` gives each island a
region — upper (top) or lower (bottom) — by the majority of its surface (a face on a leg, or on
the torso below `waist_z`, is lower): a shirt panel that hangs over the hips stays a top, a
trouser leg with its waistband a bottom. It also measures the garment's texel scale (metres of
surface per unit of UV).

Per sample, `garment_texture` fills each region with fabric from a garment photo (upper photos
for the top, lower photos for the bottom) or a flat colour. The fabric is a square patch cut
from inside the photo's garment (the pixels far from the border's colours, as
synth.textures.segment's colour prior measures them; computed once per photo and kept:
`FabricPatches`), around a point drawn among those deepest inside the garment, so no surface the
garment lies on shows; the patch's size in metres follows from the garment's width in the photo,
and it is tiled over the UV square with mirrored repeats at the garment's own texel scale.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from synth.scene import PART_IDS

UPPER, LOWER = 1, 2
REGIONS = {"upper": UPPER, "lower": LOWER}
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
        T = size
        img = np.zeros((T, T), np.uint8)
        px = face_uvs.astype(np.float64).copy()
        px[..., 0] = px[..., 0] * T - 0.5
        px[..., 1] = (1.0 - px[..., 1]) * T - 0.5
        pts = np.round(px * 16).astype(np.int32)   # 4 fractional bits
        # one triangle at a time: fillPoly with many polygons fills by the even-odd rule, which
        # cuts holes where UV islands overlap (a piece and its mirror image)
        for tri, r in zip(pts, self.face_region):
            cv2.fillConvexPoly(img, tri, int(r), lineType=cv2.LINE_8, shift=4)
        # grow the regions a few texels into the empty space so bilinear lookups at island
        # edges never read the background
        grown = cv2.dilate(img, np.ones((5, 5), np.uint8))
        img = np.where(img > 0, img, grown)
        self.masks = {name: (img == r).astype(np.uint8) for name, r in REGIONS.items()}
        self.has = {name: bool(m.any()) for name, m in self.masks.items()}


def _tiled(layer: np.ndarray, tiles: int, size: int) -> np.ndarray:
    """`layer` repeated tiles x tiles times, every other copy mirrored (seamless), at size^2."""
    if tiles <= 1:
        return cv2.resize(layer, (size, size), interpolation=cv2.INTER_AREA)
    row = np.concatenate([layer if i % 2 == 0 else layer[:, ::-1] for i in range(tiles)], axis=1)
    full = np.concatenate([row if i % 2 == 0 else row[::-1] for i in range(tiles)], axis=0)
    return cv2.resize(full, (size, size), interpolation=cv2.INTER_AREA)


# A flat-laid garment's width (the widest extent of its mask), for the patch's scale: about a
# chest width for tops and a hip width for bottoms.
GARMENT_WIDTH_M = {"upper": 0.55, "lower": 0.45}
_PHOTO_SIDE = 256           # photos are segmented and cut at this long side
_MIN_DEPTH_PX = 10          # a mask whose deepest point is shallower than this is not used
_CANDIDATES = 64            # patch centres kept per photo
_FABRIC_PRIOR = 2.0         # colour distance to the border colours (in their spreads) above which a pixel is fabric


@dataclass
class _Fabric:
    image: np.ndarray          # (h, w, 3) uint8 at _PHOTO_SIDE
    centres: np.ndarray        # (n, 2) int (y, x) points deep inside the garment
    half: int                  # half side of the patch, pixels
    metres_per_px: float
    segmented: bool            # False: the mask was unusable, patches come from the photo's centre


class FabricPatches:
    """Fabric patches cut from inside each garment photo, found once per photo (~20 ms with the
    photo's decoding) and kept (bounded by the photos of the data, ~250, ~100 KB each)."""

    def __init__(self):
        self._fabric: dict[str, _Fabric] = {}

    def _prepare(self, photo, region: str) -> _Fabric:
        from synth.textures.segment import border_colour_distance, load_given_mask, load_photo
        image = load_photo(photo.path, _PHOTO_SIDE)
        h, w = image.shape[:2]
        # fabric: far from every colour of the photo's border (the surface the garment lies on),
        # in the largest such component; a given mask (VITON-HD) narrows it further. No GrabCut:
        # the patch only needs a region deep inside the garment (~10 ms instead of ~130 ms).
        prior = border_colour_distance(image, max(2, round(0.02 * max(h, w))))
        mask = cv2.morphologyEx((prior > _FABRIC_PRIOR).astype(np.uint8), cv2.MORPH_OPEN,
                                np.ones((5, 5), np.uint8))
        n, comp, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
        mask = comp == (1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))) if n > 1 else mask > 0
        given = load_given_mask(photo, mask.shape)
        if given is not None:
            mask = mask & given
        depth = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
        deepest = float(depth.max())
        h, w = image.shape[:2]
        if deepest >= _MIN_DEPTH_PX:
            ys, xs = np.nonzero(depth >= 0.8 * deepest)
            half = int(0.85 * deepest / np.sqrt(2))     # a square inside the deepest disc, with a margin
            cols = np.nonzero(mask.any(0))[0]
            width_px = float(cols.max() - cols.min() + 1)
            segmented = True
        else:   # no usable mask: the photo's centre, where the garment lies
            ys, xs = np.array([h // 2]), np.array([w // 2])
            half = int(0.2 * min(h, w))
            width_px = 0.8 * w
            segmented = False
        keep = np.linspace(0, len(ys) - 1, min(len(ys), _CANDIDATES)).astype(int)
        return _Fabric(image=image, centres=np.stack([ys[keep], xs[keep]], 1), half=max(half, 4),
                       metres_per_px=GARMENT_WIDTH_M[region] / width_px, segmented=segmented)

    def patch(self, photo, region: str, rng: np.random.Generator) -> tuple[np.ndarray, float, dict]:
        """A square fabric patch (uint8), its side in metres, and where it was cut."""
        fab = self._fabric.get(photo.id)
        if fab is None:
            fab = self._prepare(photo, region)
            self._fabric[photo.id] = fab
        y, x = fab.centres[int(rng.integers(len(fab.centres)))]
        flip, turns = bool(rng.random() < 0.5), int(rng.integers(4))
        h, w = fab.image.shape[:2]
        r = fab.half
        y0, x0 = int(np.clip(y - r, 0, max(h - 2 * r, 0))), int(np.clip(x - r, 0, max(w - 2 * r, 0)))
        patch = fab.image[y0:y0 + 2 * r, x0:x0 + 2 * r]
        if flip:
            patch = patch[:, ::-1]
        patch = np.ascontiguousarray(np.rot90(patch, turns))
        return patch, 2 * r * fab.metres_per_px, {"patch_xy": [x0, y0], "patch_px": 2 * r,
                                                  "segmented": fab.segmented}


def garment_texture(layout: GarmentLayout, photos: dict, fabric: FabricPatches, flat: bool,
                    rng: np.random.Generator) -> tuple[np.ndarray, list[dict]]:
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
            continue
        patch, side_m, where = fabric.patch(g, name, rng)
        tiles = int(np.clip(round(layout.metres_per_uv / max(side_m, 1e-3)), 1, 24))
        layer = _tiled(patch, tiles, T)
        cv2.copyTo(layer, layout.masks[name], tex)
        labels.append({"id": g.id, "region": name, "kind": "photo", "category": g.subcategory,
                       "tiles": tiles, **where})
    return tex, labels
