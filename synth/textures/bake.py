"""Baking: garment images warped onto the frontal body view -> the body's UV texture, plus the
skin, hair and shoes that no garment covers.

The texture layout is the renderer's (synth.textures.simple, SceneSpec.texture): (T, T, 3) uint8
RGB, row 0 = v 1, texel centre (x + 0.5) / T. `TextureAtlas` rasterises the body's UV triangles
once, so every texel knows its face, barycentric coordinates, body part and rest position; for a
candidate pose it then knows where it lands in the front and back views and whether it is seen
there (depth test against the view's z-buffer).

Per garment (Chen et al. 2016): texels facing the front view take the warped image's colour at
their projection; texels facing the back view take the front image mirrored left-right (a back
view pixel shows the same world (X, Z) as the mirrored front pixel: the garment's back is its front
reflected); texels seen from neither side (flanks, armpits, between the legs) also take their
frontal projection. Where the warped garment does not reach its own silhouette, the image is
filled from its left-right mirror about the body's midline (else it keeps the garment colours that
dress.py spread beyond the garment's edge before warping). The seam between upper and lower
garment is a noisy waist line (random height, smooth wobble around the body); UV gutters are
filled from the nearest covered texel, so that texture filtering at island edges never pulls in
black.

Head, hands and feet (procedural, no photos): skin from the Monk scale (assets/skin_tones.yaml)
with per-channel jitter and a low-frequency blend toward a neighbouring tone (uneven complexion);
hair over the top and back of the skull with a noisy hairline, its colour drawn from a palette of
natural hair colours and perturbed by blending; shoes a base colour with fine noise and a sole band
of a second colour.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from synth.scene import PART_IDS
from synth.textures.body_views import BodyView, BodyViews, ViewFrame, rasterize

# Natural hair colours (sRGB): black, dark brown, brown, light brown, dark blond, blond, auburn,
# red, grey, white.
HAIR_PALETTE = np.array([[20, 17, 15], [45, 30, 22], [75, 50, 35], [110, 80, 55], [150, 115, 75],
                         [200, 170, 120], [120, 55, 30], [165, 75, 40], [140, 135, 130], [215, 210, 200]],
                        np.float32)
VISIBILITY_TOLERANCE_M = 0.01


def smooth_noise(shape: tuple[int, int], cells: int, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-ish low-frequency noise (H, W) float32: a cells x cells grid, bicubic."""
    g = rng.normal(0, 1, (cells, cells)).astype(np.float32)
    return cv2.resize(g, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


class TextureAtlas:
    """The body's UV texture, texel by texel: face, barycentrics, part, rest position."""

    def __init__(self, views: BodyViews, size: int = 512):
        T = self.size = size
        self.views = views
        uv = views.face_uvs
        px = np.stack([uv[..., 0] * T - 0.5, (1.0 - uv[..., 1]) * T - 0.5], -1)
        face, bary, _ = rasterize(px.astype(np.float64), None, T, T)
        self.face = face
        self.covered = face >= 0
        ys, xs = np.nonzero(self.covered)
        self.ys, self.xs = ys, xs
        self.tface = face[ys, xs]
        self.tbary = bary[ys, xs].astype(np.float64)
        self.tpart = views.face_parts[self.tface]
        rest = views.rest_vertices
        self.trest = np.einsum("nk,nkc->nc", self.tbary, rest[views.faces[self.tface]])
        self.azimuth = np.arctan2(self.trest[:, 0], -self.trest[:, 1])   # around the body's vertical axis
        # gutters: every uncovered texel copies its nearest covered one
        _, (gy, gx) = ndimage.distance_transform_edt(~self.covered, return_indices=True)
        self.gutter_src = (gy, gx)
        self._view_maps: dict[int, dict] = {}
        names = {v: k for k, v in PART_IDS.items()}
        self.tname = np.array([names[int(p)] for p in self.tpart])
        # boolean per covered texel for each part group (string tests are too slow per body)
        self.is_part = {g: np.char.endswith(self.tname, g)
                        for g in ("torso", "head", "upper_arm", "forearm", "thigh", "lower_leg", "foot")}
        head = views.face_parts == PART_IDS["head"]
        head_v = rest[views.faces[head]].reshape(-1, 3)
        self.head_top = float(head_v[:, 2].max())
        self.head_centre_y = float(head_v[:, 1].mean())
        feet = rest[views.faces[np.isin(views.face_parts, [PART_IDS["left_foot"], PART_IDS["right_foot"]])]]
        self.foot_bottom = float(feet.reshape(-1, 3)[:, 2].min())

    def view_maps(self, view_index: int) -> dict:
        """Per covered texel: front/back pixel position (float x, y) in the candidate's views and
        whether it is seen there. Cached per candidate."""
        if view_index in self._view_maps:
            return self._view_maps[view_index]
        v: BodyView = self.views.views[view_index]
        fr: ViewFrame = self.views.frame
        P = np.einsum("nk,nkc->nc", self.tbary, v.vertices[self.views.faces[self.tface]])
        front = fr.front_px(P)
        back = fr.back_px(P)

        def seen(px, depth_map, depth):
            xi = np.clip(np.round(px[:, 0]).astype(int), 0, fr.width - 1)
            yi = np.clip(np.round(px[:, 1]).astype(int), 0, fr.height - 1)
            return depth <= depth_map[yi, xi] + VISIBILITY_TOLERANCE_M

        maps = {"front": front.astype(np.float32), "back": back.astype(np.float32),
                "seen_front": seen(front, v.depth_front, P[:, 1]),
                "seen_back": seen(back, v.depth_back, -P[:, 1])}
        self._view_maps[view_index] = maps
        return maps

    def garment_texels(self, variant: str, seam_z: np.ndarray) -> np.ndarray:
        """Boolean per covered texel: the texels a garment matched to silhouette `variant`
        (body_views: upper_long / upper_short / lower_long / lower_short) covers; the
        torso is split at the per-texel seam height."""
        p = self.is_part
        torso = p["torso"]
        limbs = np.zeros_like(torso)
        if variant.startswith("upper"):
            limbs |= p["upper_arm"]
            if variant == "upper_long":
                limbs |= p["forearm"]
            return limbs | (torso & (self.trest[:, 2] > seam_z))
        limbs |= p["thigh"]
        if variant == "lower_long":
            limbs |= p["lower_leg"]
        return limbs | (torso & (self.trest[:, 2] <= seam_z))


def fill_garment_image(image: np.ndarray, valid: np.ndarray, frame: ViewFrame) -> np.ndarray:
    """The warped image with pixels outside `valid` taken from their left-right mirror about the
    body's midline (world X = 0) where that lies on the garment. (The rest keeps the warped
    image's own fill: dress.py extends the garment's colours beyond its edge before warping.)"""
    out = image.copy()
    W = valid.shape[1]
    if valid.any():
        cols = np.arange(W)
        mirror_cols = np.round(2 * (-frame.x0) * frame.scale - cols).astype(int)
        inside = (mirror_cols >= 0) & (mirror_cols < W)
        mc = np.clip(mirror_cols, 0, W - 1)
        take = ~valid & valid[:, mc] & inside[None, :]
        out[take] = image[:, mc][take]
    return out


def sample_bilinear(image: np.ndarray, px: np.ndarray) -> np.ndarray:
    """image (H, W, 3) uint8 sampled at float pixel positions px (N, 2) -> (N, 3) uint8."""
    n = len(px)
    cols = 1024   # cv2.remap wants maps of fewer than 32767 rows and columns
    rows = max(1, -(-n // cols))
    m = np.zeros((rows * cols, 2), np.float32)
    m[:n] = px
    m = m.reshape(rows, cols, 2)
    out = cv2.remap(image, m[..., 0], m[..., 1], interpolation=cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(-1, 3)[:n]


def seam_heights(atlas: TextureAtlas, rng: np.random.Generator, amplitude_m: float,
                 shift_m: float) -> np.ndarray:
    """Per covered texel, the height of the upper/lower seam: the waist moved by a random shift, plus
    a smooth random wobble (a few sinusoids) around the body's vertical axis."""
    theta = atlas.azimuth
    wobble = np.zeros_like(theta)
    for k in range(1, 5):
        wobble += rng.normal(0, 1) / k * np.sin(k * theta + rng.uniform(0, 2 * np.pi))
    wobble *= amplitude_m / max(1e-9, np.abs(wobble).max())
    return atlas.views.waist_z + rng.uniform(-shift_m, shift_m) + wobble


def skin_layer(atlas: TextureAtlas, tones: np.ndarray, jitter: float, rng: np.random.Generator
               ) -> tuple[np.ndarray, dict]:
    """(T, T, 3) float skin over the whole texture and its label (Monk index, RGB)."""
    T = atlas.size
    i = int(rng.integers(len(tones)))
    base = np.clip(tones[i] * (1 + rng.uniform(-jitter, jitter, 3)), 0, 255)
    # blend toward a neighbouring tone with low-frequency weights: uneven complexion
    j = int(np.clip(i + rng.choice([-1, 1]), 0, len(tones) - 1))
    other = tones[j]
    w = np.clip(0.5 + 0.5 * smooth_noise((T, T), 6, rng), 0, 1)[..., None] * rng.uniform(0.1, 0.35)
    shade = 1 + 0.04 * smooth_noise((T, T), 10, rng)[..., None]
    tex = ((1 - w) * base + w * other) * shade
    return tex, {"monk_index": i + 1, "rgb": [int(c) for c in base]}


def head_hands_feet(atlas: TextureAtlas, tex: np.ndarray, rng: np.random.Generator) -> dict:
    """Hair and shoes painted into tex (T, T, 3 float) in place; returns their labels."""
    T = atlas.size
    ys, xs = atlas.ys, atlas.xs
    z, y = atlas.trest[:, 2], atlas.trest[:, 1]
    head = atlas.is_part["head"]
    # hair: the top of the skull, and down the back by a random length; noisy hairline
    length = rng.uniform(0.10, 0.22)
    line = smooth_noise((T, T), 12, rng)[ys, xs] * 0.012
    hair = head & ((z > atlas.head_top - 0.05 + line)
                   | ((z > atlas.head_top - length + line) & (y > atlas.head_centre_y + 0.02)))
    hi = int(rng.integers(len(HAIR_PALETTE)))
    # brightness varies freely, hue only a little (a per-channel factor would tint grey hair green)
    hair_rgb = np.clip(HAIR_PALETTE[hi] * rng.uniform(0.8, 1.2) * rng.uniform(0.96, 1.04, 3), 0, 255)
    strands = 1 + 0.10 * cv2.resize(rng.normal(0, 1, (T // 2, T // 8)).astype(np.float32), (T, T))[ys, xs]
    bald = rng.random() < 0.05
    if not bald:
        tex[ys[hair], xs[hair]] = np.clip(hair_rgb[None] * strands[hair, None], 0, 255)
    # shoes: base colour with fine noise, a sole band of another colour at the bottom of the foot
    feet = atlas.is_part["foot"]
    dark = rng.random() < 0.6
    shoe = rng.uniform(10, 90, 3) if dark else rng.uniform(110, 245, 3)
    sole = rng.uniform(200, 250, 3) if rng.random() < 0.5 else rng.uniform(15, 60, 3)
    grain = 1 + 0.06 * rng.normal(0, 1, len(ys))
    col = np.clip(shoe[None] * grain[:, None], 0, 255)
    sole_m = feet & (z < atlas.foot_bottom + rng.uniform(0.015, 0.03))
    tex[ys[feet], xs[feet]] = col[feet]
    tex[ys[sole_m], xs[sole_m]] = sole
    return {"hair": {"palette_index": hi, "rgb": [int(c) for c in hair_rgb], "bald": bool(bald),
                     "length_m": round(float(length), 3)},
            "shoes": {"rgb": [int(c) for c in shoe], "sole_rgb": [int(c) for c in sole]}}


def bake_garment(tex: np.ndarray, atlas: TextureAtlas, view_index: int, warped: np.ndarray,
                 warped_valid: np.ndarray, texels: np.ndarray) -> dict:
    """Paint one warped garment (front-view image of candidate `view_index`) into tex over the
    boolean covered-texel selection `texels`; returns the coverage shares (front/back/neither)."""
    maps = atlas.view_maps(view_index)
    filled = fill_garment_image(warped, warped_valid, atlas.views.frame)
    mirrored = np.ascontiguousarray(filled[:, ::-1])
    front_sel = texels & (maps["seen_front"] | ~maps["seen_back"])
    back_sel = texels & ~front_sel
    ys, xs = atlas.ys, atlas.xs
    if front_sel.any():
        tex[ys[front_sel], xs[front_sel]] = sample_bilinear(filled, maps["front"][front_sel])
    if back_sel.any():
        tex[ys[back_sel], xs[back_sel]] = sample_bilinear(mirrored, maps["back"][back_sel])
    n = max(1, int(texels.sum()))
    return {"texels": int(texels.sum()),
            "front_share": round(float((texels & maps["seen_front"]).sum() / n), 4),
            "back_share": round(float((texels & maps["seen_back"] & ~maps["seen_front"]).sum() / n), 4),
            "unseen_share": round(float((texels & ~maps["seen_front"] & ~maps["seen_back"]).sum() / n), 4)}


def fill_gutters(atlas: TextureAtlas, tex: np.ndarray) -> np.ndarray:
    gy, gx = atlas.gutter_src
    return tex[gy, gx]
