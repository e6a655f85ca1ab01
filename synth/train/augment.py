"""Training-time augmentation of person crops: rotation, scale, colour jitter, synthetic occlusion.

The geometry is one affine map from the source image to the S×S crop, so the labels follow the
pixels exactly: the 2D joints go through the same map, and the root-relative 3D target turns about
the camera's z axis by the same angle (the camera frame is OpenCV's, x right, y down, like the
image, so an in-plane image rotation by R is the rotation diag(R, 1) of the camera-frame pose;
scaling the crop leaves the normalised 3D target unchanged). Occluders are rectangles of a flat
random colour or cut from another sample's image (as in Mehta et al. 2017 / Sárándi et al. 2018);
they change no label: the joints behind them are still where they were.

Reproducibility: every item draws its parameters from its own generator, the TRAIN_AUGMENT
stream of (seed, domain, epoch, item index) (synth.rng), so the same config seed gives the same
augmentations in any worker process, in any order, and after resuming from a checkpoint
(datasets carry the epoch: `set_epoch`); synthetic (domain 0) and real (1) crops never share one.

Pixel convention: coordinates are in pixels with pixel centres on whole numbers (as the rendered
labels and LSP's 0-based joints), so the crop's top-left pixel centre is (0, 0).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from synth.config import AugmentConfig
from synth.geometry import rotation_z_deg
from synth.rng import Stream, stream

# The intermediate crop around the box is this much larger than the output, so a rotated square
# still lies inside it (sqrt 2 = the half-diagonal of a unit square, rounded up).
ROTATION_PAD = 1.42


@dataclass(frozen=True)
class AugmentParams:
    angle_deg: float = 0.0          # image rotation; positive turns x towards y (clockwise on screen)
    zoom: float = 1.0               # > 1: the person looks larger
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    occluder: tuple | None = None   # (x0, y0, w, h) in crop pixels, or None
    occluder_colour: tuple | None = None   # RGB of a flat occluder; None: cut from another image


def crop_and_resize(image: np.ndarray, box: tuple[float, float, float], size: int) -> np.ndarray:
    """The square `box` of `image` resized to size×size; outside the image is black.

    Cut on whole pixels, padded where the box leaves the image, then resized with area
    averaging when shrinking (no aliasing) and bilinear when enlarging.
    """
    cx, cy, side = box
    h, w = image.shape[:2]
    side_px = max(int(round(side)), 1)
    # Pixel centres are on whole numbers, so the box [cx - side/2, cx + side/2) starts at this pixel.
    x0 = int(math.floor(cx - side_px / 2.0 + 0.5))
    y0 = int(math.floor(cy - side_px / 2.0 + 0.5))
    x1, y1 = x0 + side_px, y0 + side_px
    inner = image[max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)]
    if inner.size == 0:
        patch = np.zeros((side_px, side_px) + image.shape[2:], dtype=image.dtype)
    else:
        patch = cv2.copyMakeBorder(inner, max(-y0, 0), max(y1 - h, 0), max(-x0, 0), max(x1 - w, 0),
                                   cv2.BORDER_CONSTANT, value=0)
    interp = cv2.INTER_AREA if side_px > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interp)


def box_to_crop_matrix(box: tuple[float, float, float], size: int) -> np.ndarray:
    """2×3 affine from source pixels to the pixels of `crop_and_resize(image, box, size)`.

    Follows crop_and_resize's own rounding: it cuts the whole-pixel square of side_px starting at
    x0, y0 and resizes it, which maps a source pixel centre p to (p - x0 + 0.5) · size / side_px - 0.5.
    """
    cx, cy, side = box
    side_px = max(int(round(side)), 1)
    x0 = int(math.floor(cx - side_px / 2.0 + 0.5))
    y0 = int(math.floor(cy - side_px / 2.0 + 0.5))
    k = size / side_px
    return np.array([[k, 0.0, (0.5 - x0) * k - 0.5], [0.0, k, (0.5 - y0) * k - 0.5]])


def _h(m: np.ndarray) -> np.ndarray:
    return np.vstack([m, [0.0, 0.0, 1.0]])


def apply_affine(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 2) points through a 2×3 affine."""
    points = np.asarray(points, dtype=np.float64)
    return points @ m[:, :2].T + m[:, 2]


# 3×3 rotation about the camera z axis that turns image x towards image y by the angle.
rotation_z = rotation_z_deg


def crop_matrix(box: tuple[float, float, float], size: int, angle_deg: float = 0.0,
                zoom: float = 1.0) -> np.ndarray:
    """2×3 affine from source pixels to the pixels of `warp_crop(image, box, size, angle_deg,
    zoom)`: the box centre goes to the crop centre, turned by the angle, at size·zoom/side crop
    pixels per source pixel (crop_and_resize's own rounding without rotation or zoom). Label maps
    (depth, part ids) are warped with it by nearest neighbour, so they follow the RGB crop."""
    if angle_deg == 0.0 and zoom == 1.0:
        return box_to_crop_matrix(box, size)
    cx, cy, side = box
    k = size * zoom / side
    rot = rotation_z(angle_deg)[:2, :2]
    centre_out = (size - 1) / 2.0
    return np.hstack([k * rot, (np.array([centre_out, centre_out]) - k * rot @ np.array([cx, cy]))[:, None]])


def warp_crop(image: np.ndarray, box: tuple[float, float, float], size: int,
              angle_deg: float = 0.0, zoom: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(crop size×size, 2×3 affine source px -> crop px) of `box`, rotated about its centre by
    `angle_deg` and zoomed by `zoom`. Outside the image is black.

    Without rotation or zoom this is crop_and_resize itself. Otherwise a square ROTATION_PAD
    times larger is first cut and resized with crop_and_resize (area averaging when shrinking:
    no aliasing), then rotated and cut to size with one bilinear warp."""
    if angle_deg == 0.0 and zoom == 1.0:
        return crop_and_resize(image, box, size), box_to_crop_matrix(box, size)
    cx, cy, side = box
    big_size = int(math.ceil(size * ROTATION_PAD))
    big_box = (cx, cy, side / zoom * big_size / size)
    big = crop_and_resize(image, big_box, big_size)
    to_big = box_to_crop_matrix(big_box, big_size)
    wanted = crop_matrix(box, size, angle_deg, zoom)
    big_to_out = (_h(wanted) @ np.linalg.inv(_h(to_big)))[:2]
    crop = cv2.warpAffine(big, big_to_out, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return crop, wanted


def jitter_colour(rgb: np.ndarray, brightness: float, contrast: float, saturation: float) -> np.ndarray:
    """Brightness (gain), contrast (about the mean grey) and saturation (about each pixel's
    grey) of a uint8 RGB image, in that order; uint8 out."""
    img = rgb.astype(np.float32) * brightness
    grey = img @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    img = (img - grey.mean()) * contrast + grey.mean()
    grey = (img @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
    img = grey + (img - grey) * saturation
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


class Augmenter:
    """Draws and applies augmentations; `settings` is the `train.augment` section; `seed` and
    `domain` (0 synthetic, 1 real) choose its streams (see the module doc); `tag` is the stream
    (another training stage may draw its own crops from a stream of its own)."""

    def __init__(self, settings: AugmentConfig, seed: int, domain: int = 0, tag: Stream = Stream.TRAIN_AUGMENT):
        self.enabled = settings.enabled
        self.rotation_deg = settings.rotation_deg
        self.scale = (settings.scale.low, settings.scale.high)
        self.colour_jitter = settings.colour_jitter
        self.occlusion_probability = settings.occlusion_probability
        self.occluder_size = (settings.occluder_size.low, settings.occluder_size.high)
        self.cutout_share = settings.cutout_share
        self.seed, self.domain, self.tag = int(seed), int(domain), Stream(tag)

    def item_rng(self, epoch: int, index: int) -> np.random.Generator:
        return stream(self.seed, self.tag, self.domain, int(epoch), int(index))

    def draw(self, rng: np.random.Generator, size: int) -> AugmentParams:
        """Parameters for one crop of size×size. Every draw is made whatever the settings, so a
        setting changes its own parameter and not the others'."""
        u = rng.random(9)
        j = self.colour_jitter
        angle = (2 * u[0] - 1) * self.rotation_deg
        zoom = self.scale[0] + u[1] * (self.scale[1] - self.scale[0])
        bri, con, sat = (1 + (2 * u[2:5] - 1) * j).tolist()
        occluder = colour = None
        if u[5] < self.occlusion_probability:
            lo, hi = self.occluder_size
            w, h = (np.round((lo + rng.random(2) * (hi - lo)) * size).astype(int).clip(1, size)).tolist()
            cx, cy = rng.random(2) * size
            occluder = (int(round(cx - w / 2)), int(round(cy - h / 2)), w, h)
            if u[6] >= self.cutout_share:
                colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        return AugmentParams(float(angle), float(zoom), bri, con, sat, occluder, colour)

    def __call__(self, image: np.ndarray, box: tuple[float, float, float], size: int,
                 joints_2d: np.ndarray, target_3d: np.ndarray, rng: np.random.Generator,
                 occluder_source: Callable[[np.random.Generator], np.ndarray] | None = None,
                 params: AugmentParams | None = None):
        """(crop uint8 (S, S, 3), joints in crop px (J, 2), rotated 3D target (J, 3), params)
        of the source `image` (uint8 RGB) with its labels (source-pixel joints, root-relative
        camera-frame target). `occluder_source(rng)` returns another uint8 RGB image to cut
        occluders from; without it every occluder is a flat colour. `params` replaces the
        random draw (to apply a chosen augmentation)."""
        p = params if params is not None else (self.draw(rng, size) if self.enabled else AugmentParams())
        crop, m = warp_crop(image, box, size, p.angle_deg, p.zoom)
        j2d = apply_affine(m, joints_2d)
        target = np.asarray(target_3d, dtype=np.float64) @ rotation_z(p.angle_deg).T
        if p.occluder is not None:
            crop = self._occlude(crop, p, rng, occluder_source)
        if (p.brightness, p.contrast, p.saturation) != (1.0, 1.0, 1.0):
            crop = jitter_colour(crop, p.brightness, p.contrast, p.saturation)
        return crop, j2d, target, p

    @staticmethod
    def _occlude(crop: np.ndarray, p: AugmentParams, rng: np.random.Generator,
                 occluder_source: Callable[[np.random.Generator], np.ndarray] | None) -> np.ndarray:
        size = crop.shape[0]
        x0, y0, w, h = p.occluder
        xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + w, size), min(y0 + h, size)
        if xb <= xa or yb <= ya:
            return crop
        crop = crop.copy()
        if p.occluder_colour is not None or occluder_source is None:
            crop[ya:yb, xa:xb] = p.occluder_colour if p.occluder_colour is not None else (127, 127, 127)
            return crop
        other = occluder_source(rng)
        oh, ow = other.shape[:2]
        # A random window of the other image at the occluder's size (enlarged when it is smaller).
        if oh < h or ow < w:
            k = max(h / oh, w / ow)
            other = cv2.resize(other, (max(int(math.ceil(ow * k)), w), max(int(math.ceil(oh * k)), h)))
            oh, ow = other.shape[:2]
        sy, sx = int(rng.integers(0, oh - h + 1)), int(rng.integers(0, ow - w + 1))
        patch = other[sy:sy + h, sx:sx + w]
        crop[ya:yb, xa:xb] = patch[ya - y0:yb - y0, xa - x0:xb - x0]
        return crop


def build_augmenter(settings: AugmentConfig, seed: int, domain: int = 0,
                    tag: Stream = Stream.TRAIN_AUGMENT) -> Augmenter | None:
    """The augmenter of the `train.augment` section (drawing from the stream `tag`), or None when it
    is not enabled."""
    return Augmenter(settings, seed, domain, tag) if settings.enabled else None
