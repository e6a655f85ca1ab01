"""Appearance augmentation of rendered samples at training time (after Mehta et al. 2017, who
re-composite their studio captures over other backgrounds and recolour the clothing by part
masks so that the network sees many more appearances than were recorded).

Every rendered sample carries an exact person mask (KEY.mask.png) and part map (KEY.parts.png),
so, per sample and with the probabilities of `train.appearance`:

1. Background: the person is re-composited over a background photo of the data directory
   (`<data_dir>/backgrounds`, the photos the renderer draws from) other than the one it was
   rendered on (the label's `background.id`): a random crop of that photo at the image's aspect,
   zoomed 1-1.5× and maybe mirrored, as the renderer fits its backgrounds. The composite is
   binary: a pixel of the mask keeps its rendered value exactly, every other pixel is the new
   photo's. (The renderer's anti-aliased silhouette rim, outside the mask, goes with the old
   background; the camera effects of step 3 soften the new edge.)
2. Garment recolouring: the upper body (torso, upper arms) and the lower body (thighs, lower
   legs) each get a hue shift, a saturation and a brightness (HSV value) factor of their own,
   inside the mask only. Head, forearms, hands and feet are left alone because they are mostly
   skin (or shoes) in the renders: bare forearms and hands are the common case, and a hue shift
   of skin makes implausible people. The part map is body geometry, not garments, so bare skin
   inside the recoloured parts (short sleeves, shorts) is shifted too; this is the price of
   recolouring without a garment mask.
3. Camera effects on the final crop: Gaussian blur (defocus / motion), Gaussian noise (sensor)
   and JPEG re-encoding at a random quality (compression), each with its own probability.

Labels are unchanged by all three (no pixel moves). Reproducible: each item draws from the
TRAIN_APPEARANCE stream of (seed, epoch, item index) (synth.rng), a stream of its own, so turning
this on does not change the geometric augmentation's draws (synth.train.augment).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from synth.config import AppearanceConfig, IntRange, Range
from synth.image_files import cv2_imread, open_image
from synth.io_utils import InputError
from synth.rng import Stream, stream
from synth.scene import PART_IDS

BACKGROUND_SUFFIXES = (".jpg", ".jpeg", ".png")
UPPER_PARTS = ("torso", "right_upper_arm", "left_upper_arm")
LOWER_PARTS = ("right_thigh", "left_thigh", "right_lower_leg", "left_lower_leg")
# The renderer's background fit: a zoom of 1-1.5x into the photo (synth.dataset.scene_sampler).
BACKGROUND_ZOOM = (1.0, 1.5)


def list_backgrounds(data_dir: Path) -> list[Path]:
    """The background photos of a data directory: the renderer's list (<data_dir>/backgrounds,
    recursively, sorted; synth.dataset.scene_sampler.list_backgrounds, not imported because that
    module loads the body and texture stages)."""
    root = Path(data_dir) / "backgrounds"
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in BACKGROUND_SUFFIXES) if root.is_dir() else []
    if not files:
        raise InputError(f"{root}: no background photos for train.appearance (set data_dir)")
    return files


@dataclass(frozen=True)
class AppearanceParams:
    background: float | None = None        # u in [0, 1): which other photo; None = keep
    background_crop: tuple = (0.0, 0.0, 0.0, 0.0)   # zoom u, x u, y u, mirror u
    recolour: tuple | None = None           # ((hue deg, sat, val) upper, (hue, sat, val) lower) or None
    blur_sigma: float = 0.0                 # pixels of the crop; 0 = none
    noise_std: float = 0.0                  # 8-bit levels; 0 = none
    noise_seed: int = 0
    jpeg_quality: int = 0                   # 0 = none


class AppearanceAugmenter:
    """Draws and applies the appearance augmentation of the `train.appearance` settings."""

    def __init__(self, settings: AppearanceConfig, backgrounds: list[Path], data_dir: Path, seed: int):
        self.settings = settings
        self.backgrounds = [Path(b) for b in backgrounds]
        self.data_dir = Path(data_dir)
        self._ids = [self._id(b) for b in self.backgrounds]
        self.seed = int(seed)

    def _id(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.data_dir))
        except ValueError:
            return str(path)

    def item_rng(self, epoch: int, index: int) -> np.random.Generator:
        return stream(self.seed, Stream.TRAIN_APPEARANCE, int(epoch), int(index))

    def draw(self, rng: np.random.Generator) -> AppearanceParams:
        """One sample's parameters. Every draw is made whatever the settings, so a setting
        changes its own parameter and not the others'."""
        c = self.settings
        u = rng.random(16)

        def within(r: Range | IntRange, x: float) -> float:
            return float(r.low + x * (r.high - r.low))

        background = float(u[1]) if u[0] < c.background_probability else None
        recolour = None
        if u[6] < c.recolour_probability:
            h = c.hue_shift_deg
            recolour = tuple(((2 * u[7 + 3 * k] - 1) * h, within(c.saturation, u[8 + 3 * k]),
                              within(c.brightness, u[9 + 3 * k])) for k in range(2))
        blur = within(c.blur_sigma_px, u[13]) if u[12] < c.blur_probability else 0.0
        v = rng.random(4)
        noise = within(c.noise_std, v[1]) if v[0] < c.noise_probability else 0.0
        jpeg = int(round(within(c.jpeg_quality, v[3]))) if v[2] < c.jpeg_probability else 0
        return AppearanceParams(background, tuple(float(x) for x in u[2:6]), recolour, float(blur),
                                float(noise), int(rng.integers(0, 2 ** 31)), jpeg)

    def other_background(self, own_id: str | None, u: float) -> Path | None:
        """The photo picked by u in [0, 1) among the backgrounds other than `own_id`."""
        others = [b for b, i in zip(self.backgrounds, self._ids) if i != own_id]
        if not others:
            return None
        return others[min(int(u * len(others)), len(others) - 1)]

    @staticmethod
    def fit_background(photo: np.ndarray, width: int, height: int, crop_u: tuple) -> np.ndarray:
        """A crop of `photo` at the W:H aspect, zoomed in by 1-1.5x and maybe mirrored (from the
        four uniforms `crop_u`), resized to W×H."""
        h, w = photo.shape[:2]
        zoom = BACKGROUND_ZOOM[0] + crop_u[0] * (BACKGROUND_ZOOM[1] - BACKGROUND_ZOOM[0])
        cw = min(w, int(round(w / zoom)))
        ch = int(round(cw * height / width))
        if ch > h:
            ch = h
            cw = min(w, int(round(ch * width / height)))
        x0 = int(crop_u[1] * (w - cw + 1))
        y0 = int(crop_u[2] * (h - ch + 1))
        crop = photo[y0:y0 + ch, x0:x0 + cw]
        if crop_u[3] < 0.5:
            crop = crop[:, ::-1]
        interp = cv2.INTER_AREA if cw > width else cv2.INTER_LINEAR
        return cv2.resize(np.ascontiguousarray(crop), (width, height), interpolation=interp)

    def _read_background(self, path: Path) -> np.ndarray:
        open_image(path, "background photo (train.appearance)").close()      # the size limits
        bgr = cv2_imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise InputError(f"{path}: unreadable background photo (train.appearance)")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def recomposite(self, rgb: np.ndarray, mask: np.ndarray, labels: dict, p: AppearanceParams,
                    where: str = "sample") -> tuple[np.ndarray, Path | None]:
        """(image, photo used) with the person over another background photo; unchanged (photo
        None) when p.background is None or no other photo exists."""
        if p.background is None:
            return rgb, None
        if mask.shape != rgb.shape[:2]:
            raise InputError(f"{where}: mask {mask.shape} and image {rgb.shape[:2]} differ in size")
        own = (labels.get("background") or {}).get("id")
        path = self.other_background(own, p.background)
        if path is None:
            return rgb, None
        h, w = rgb.shape[:2]
        bg = self.fit_background(self._read_background(path), w, h, p.background_crop)
        person = mask > 127
        return np.where(person[..., None], rgb, bg), path

    @staticmethod
    def recolour(rgb: np.ndarray, mask: np.ndarray, parts: np.ndarray, p: AppearanceParams) -> np.ndarray:
        """Hue / saturation / value shifts of the upper and lower garment parts (inside the mask)."""
        if p.recolour is None:
            return rgb
        person = mask > 127
        regions = [person & np.isin(parts, [PART_IDS[n] for n in names]) for names in (UPPER_PARTS, LOWER_PARTS)]
        if not any(r.any() for r in regions):
            return rgb
        # Float HSV (H in degrees, S and V in [0, 1]): no 8-bit hue quantisation.
        hsv = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2HSV)
        for region, (hue, sat, val) in zip(regions, p.recolour):
            px = hsv[region]
            px[:, 0] = np.mod(px[:, 0] + hue, 360.0)
            px[:, 1] = np.clip(px[:, 1] * sat, 0.0, 1.0)
            px[:, 2] = np.clip(px[:, 2] * val, 0.0, 1.0)
            hsv[region] = px
        out = np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        # Pixels outside the recoloured parts keep their exact values (no round trip through HSV).
        touched = regions[0] | regions[1]
        return np.where(touched[..., None], out, rgb)

    def apply_full(self, rgb: np.ndarray, mask: np.ndarray, parts: np.ndarray, labels: dict,
                   p: AppearanceParams, where: str = "sample") -> np.ndarray:
        """Steps 1 and 2 (see the module doc) on the full rendered image."""
        out, _ = self.recomposite(rgb, mask, labels, p, where)
        return self.recolour(out, mask, parts, p)

    @staticmethod
    def apply_crop(crop: np.ndarray, p: AppearanceParams) -> np.ndarray:
        """Step 3 on the network's crop: blur, then noise, then JPEG."""
        out = crop
        if p.blur_sigma > 0:
            out = cv2.GaussianBlur(out, (0, 0), sigmaX=p.blur_sigma)
        if p.noise_std > 0:
            noise = np.random.default_rng(p.noise_seed).normal(0.0, p.noise_std, out.shape)
            out = np.clip(out.astype(np.float32) + noise + 0.5, 0, 255).astype(np.uint8)
        if p.jpeg_quality > 0:
            ok, buf = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR),
                                   [cv2.IMWRITE_JPEG_QUALITY, int(p.jpeg_quality)])
            if ok:
                out = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        return out


def build_appearance(settings: AppearanceConfig, seed: int, data_dir: Path) -> AppearanceAugmenter | None:
    """The appearance augmenter of the `train.appearance` section (backgrounds from `data_dir`,
    draws from `seed`), or None when it is not enabled."""
    if not settings.enabled:
        return None
    return AppearanceAugmenter(settings, list_backgrounds(data_dir), Path(data_dir), seed)
