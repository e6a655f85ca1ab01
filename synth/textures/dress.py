"""Dressing one body from two product photos (Chen et al. 2016, Sec. 3.2): segment the photos,
match each garment's contour to the silhouette of its body region in every candidate pose
(continuous DTW over closed curves), keep the pose needing the least deformation, MLS-warp the
photo onto that silhouette with the correspondences as control points, and bake the result (and
skin, hair, shoes) into the body's UV texture.

The correspondences run from the body contour (`a`, the view's pixels) to the garment contour
(`b`, the photo's pixels): for every body sample the matching point of the garment. MLS then maps
each output pixel (body view) back to the photo (backward warp), so the garment's outline lands
on the region's outline. "Before" is the photo placed by the best similarity of that same match.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from synth.config import TexturesConfig
from synth.io_utils import InputError
from synth.textures.bake import (TextureAtlas, bake_garment, fill_gutters, head_hands_feet, seam_heights,
                                 skin_layer)
from synth.textures.body_views import BodyViews, candidate_list
from synth.textures.contours import contour_distance, mask_contour
from synth.textures.dtw import match_closed_contours
from synth.textures.mls import mls_warp
from synth.textures.segment import GarmentPhoto, Segmentation, list_garment_photos, segment_garment

log = logging.getLogger(__name__)


# The body silhouette (body_views) a garment of each folder category is matched to. The code takes
# several per category and keeps the least deformed, but the photo's outline is a poor judge of
# sleeve length: long sleeves often lie folded along the body, and then a silhouette without
# forearms (or without arms) wins. Measured on a 20-body library: 3 of 6 long-sleeved shirts matched
# "short", 3 of 4 long-sleeved jackets "sleeveless". So the folder category decides.
SILHOUETTES = {
    "t-shirt": ("upper_short",), "top": ("upper_short",), "longsleeve": ("upper_long",),
    "shirt": ("upper_long",), "outwear": ("upper_long",),
    "pants": ("lower_long",), "shorts": ("lower_short",), "skirt": ("lower_short",),
}


def silhouettes_for(region: str, subcategory: str) -> tuple[str, ...]:
    """The candidate silhouettes of a garment (unknown categories: long and short)."""
    if subcategory in SILHOUETTES:
        return SILHOUETTES[subcategory]
    return ("upper_long", "upper_short") if region == "upper" else ("lower_long", "lower_short")


@dataclass
class GarmentFit:
    """One garment matched and warped onto its region."""
    photo: GarmentPhoto
    region: str
    variant: str                  # the chosen silhouette (upper_long, upper_short, ...)
    candidate_names: list         # "<pose>/<silhouette>" per candidate
    deformations: list            # per candidate (DTW's deformation measure)
    costs: list
    best: int                     # index into candidate_names
    view_index: int               # index into BodyViews.views
    body_contour: np.ndarray      # (n, 2) view pixels
    garment_contour: np.ndarray   # (n, 2) photo pixels
    src_pts: np.ndarray           # control points on the similarity-placed photo (view frame)
    dst_pts: np.ndarray           # ... and where they go in the view
    aligned_mask: np.ndarray      # garment mask placed by the similarity only (view frame)
    warped: np.ndarray            # (H, W, 3) MLS-warped photo (view frame)
    warped_mask: np.ndarray       # (H, W) bool warped garment mask
    distance_before: float        # contour distance (px) body silhouette vs similarity-placed garment
    distance_after: float         # ... vs MLS-warped garment
    match: object = None          # the chosen candidate's ContourMatch (similarity: scale, R, t)
    timings: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return {"id": self.photo.id, "region": self.region, "subcategory": self.photo.subcategory,
                "silhouette": self.variant, "candidate": self.candidate_names[self.best],
                "deformation": {n: round(float(d), 5) for n, d in zip(self.candidate_names, self.deformations)},
                "dtw_cost": {n: round(float(c), 5) for n, c in zip(self.candidate_names, self.costs)},
                "contour_distance_px": {"before": round(self.distance_before, 3),
                                        "after": round(self.distance_after, 3)}}


@dataclass
class DressedBody:
    texture: np.ndarray           # (T, T, 3) uint8
    info: dict                    # JSON-ready metadata
    fits: list                    # GarmentFit per region (upper, lower)


class Dresser:
    """Everything needed to dress bodies; built once (body views, texture atlas, photo list)."""

    def __init__(self, body, data_dir: Path, settings: TexturesConfig, skin_tones: np.ndarray,
                 skin_jitter: float):
        t0 = time.perf_counter()
        self.settings = s = settings
        self.data_dir = Path(data_dir)
        self.views = BodyViews(body, candidate_list(s.candidates.arm_angles_deg, s.candidates.leg_angles_deg),
                               size=s.view_size, overlap_m=s.region_overlap_m)
        self.atlas = TextureAtlas(self.views, s.size)
        photos = list_garment_photos(self.data_dir)
        self.photos = {r: [p for p in photos if p.category == r] for r in ("upper", "lower")}
        for r, ps in self.photos.items():
            if not ps:
                raise InputError(f"{self.data_dir}: no {r}-body garment photos")
        self.skin_tones, self.skin_jitter = skin_tones, skin_jitter
        self._segs: dict[str, Segmentation] = {}
        self.rejected: dict[str, str] = {}      # photo id -> reason
        self._body_contours: dict = {}
        self.setup_s = time.perf_counter() - t0

    @property
    def photos_segmented(self) -> int:
        return len(self._segs)

    def segmentation(self, photo: GarmentPhoto) -> Segmentation:
        seg = self._segs.get(photo.id)
        if seg is None:
            seg = segment_garment(photo, max_side=self.settings.photo_max_side)
            self._segs[photo.id] = seg
            if not seg.ok:
                self.rejected[photo.id] = seg.reason
                log.info("rejected garment photo %s: %s", photo.id, seg.reason)
        return seg

    def draw_photo(self, region: str, rng: np.random.Generator) -> tuple[GarmentPhoto, Segmentation, int]:
        """A random usable photo of the region (rejected ones are logged and redrawn)."""
        pool = self.photos[region]
        for draw in range(self.settings.max_draws):
            p = pool[int(rng.integers(len(pool)))]
            if p.id in self.rejected:
                continue
            seg = self.segmentation(p)
            if seg.ok:
                return p, seg, draw
        raise InputError(f"{self.data_dir}: no usable {region} garment photo in {self.settings.max_draws} draws "
                         f"({len(self.rejected)} rejected so far)")

    def body_contour(self, view_index: int, variant: str) -> np.ndarray:
        key = (view_index, variant)
        if key not in self._body_contours:
            mask = self.views.views[view_index].region_masks[variant]
            self._body_contours[key] = mask_contour(mask, self.settings.contour_points)
        return self._body_contours[key]

    def fit(self, photo: GarmentPhoto, seg: Segmentation) -> GarmentFit:
        """Match the garment to every candidate (pose x silhouette) of its region, warp onto the one
        needing the least deformation."""
        s = self.settings
        times = {}
        t0 = time.perf_counter()
        region = photo.category
        garment = mask_contour(seg.mask, s.contour_points)
        cands = [(i, sil) for sil in silhouettes_for(region, photo.subcategory)
                 for i, v in enumerate(self.views.views) if v.candidate.region == region]
        matches = [match_closed_contours(self.body_contour(i, sil), garment) for i, sil in cands]
        defs = [m.deformation for m in matches]
        best = int(np.argmin(defs))
        vi, variant = cands[best]
        m = matches[best]
        times["match"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        body = self.body_contour(vi, variant)
        H, W = self.views.frame.height, self.views.frame.width
        # Place the photo by the match's best similarity first ("before"): rigid MLS keeps local
        # scale, so it must start from a garment already at the body's size.
        M = np.concatenate([m.scale * np.asarray(m.R), np.asarray(m.t).reshape(2, 1)], 1)
        aligned_img = cv2.warpAffine(seg.image, M, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        aligned = cv2.warpAffine(seg.mask.astype(np.uint8), M, (W, H), flags=cv2.INTER_NEAREST) > 0
        # Outside the (slightly eroded) garment the image takes its nearest garment pixel, so that
        # interpolation at the garment's edge never blends in the surface the photo lay on (thin
        # sleeves would turn the colour of the sheet).
        core = cv2.erode(aligned.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        if core.any():
            _, (iy, ix) = ndimage.distance_transform_edt(~core, return_indices=True)
            aligned_img = aligned_img[iy, ix]
        step = max(1, len(m.a_idx) // s.control_points)
        dst = body[m.a_idx][::step].astype(np.float64)
        src = (m.scale * m.b_pts @ np.asarray(m.R).T + np.asarray(m.t))[::step]
        warped, warped_mask = mls_warp(aligned_img, src, dst, (H, W), mode=s.mls.mode,
                                       grid_step=s.mls.grid_step, src_mask=aligned)
        times["warp"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        before = contour_distance(body, mask_contour(aligned, s.contour_points)) if aligned.any() else float("inf")
        after = contour_distance(body, mask_contour(warped_mask, s.contour_points)) if warped_mask.any() \
            else float("inf")
        times["measure"] = time.perf_counter() - t0
        return GarmentFit(photo=photo, region=region, variant=variant,
                          candidate_names=[f"{self.views.views[i].candidate.name}/{sil.split('_')[1]}"
                                           for i, sil in cands],
                          deformations=defs, costs=[mm.cost for mm in matches], best=best, view_index=vi,
                          body_contour=body, garment_contour=garment, src_pts=src, dst_pts=dst,
                          aligned_mask=aligned, warped=warped, warped_mask=warped_mask,
                          distance_before=float(before), distance_after=float(after), match=m, timings=times)

    def dress(self, rng: np.random.Generator) -> DressedBody:
        """One dressed-body texture: an upper and a lower garment photo, skin, hair and shoes."""
        s = self.settings
        times: dict[str, float] = {"segment": 0.0, "match": 0.0, "warp": 0.0, "measure": 0.0}
        fits = []
        draws = {}
        for region in ("upper", "lower"):
            t0 = time.perf_counter()
            photo, seg, n_draws = self.draw_photo(region, rng)
            times["segment"] += time.perf_counter() - t0
            draws[region] = n_draws
            fit = self.fit(photo, seg)
            for k, v in fit.timings.items():
                times[k] += v
            fits.append(fit)
        t0 = time.perf_counter()
        atlas = self.atlas
        tex, skin = skin_layer(atlas, self.skin_tones, self.skin_jitter, rng)
        extras = head_hands_feet(atlas, tex, rng)
        seam = seam_heights(atlas, rng, s.seam.noise_m, s.seam.shift_m)
        tex_u8 = np.clip(tex, 0, 255).astype(np.uint8)
        coverage = {}
        # the seam splits the torso's texels between the two garments (no texel gets both)
        for fit in fits:
            texels = atlas.garment_texels(fit.variant, seam)
            coverage[fit.region] = bake_garment(tex_u8, atlas, fit.view_index, fit.warped, fit.warped_mask,
                                                texels)
        tex_u8 = fill_gutters(atlas, tex_u8)
        times["bake"] = time.perf_counter() - t0
        info = {"garments": [dict(f.summary(), coverage=coverage[f.region], draws=draws[f.region])
                             for f in fits],
                "skin_tone": skin, **extras,
                "mls_mode": s.mls.mode, "texture_size": s.size,
                "timings_s": {k: round(v, 4) for k, v in times.items()}}
        return DressedBody(texture=tex_u8, info=info, fits=fits)
