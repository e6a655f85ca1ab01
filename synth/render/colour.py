"""View transforms and metered exposure for the person's scene-linear colour, without Blender.

Cycles' Combined pass is scene-linear (Rec.709 primaries, Blender's `scene_linear` role) with no
view transform. A photo's person has been through a camera's tone curve: highlights roll off
instead of clipping. `to_display` applies Blender's own view transforms (AgX, Standard) to such
colour with OpenColorIO and Blender's bundled OCIO config (the very transforms Blender's colour
management applies), and `exposure_gain` picks the gain that puts the person's median
luminance where the background photo's sits.

Only the location of bpy's data files is looked up (importlib), bpy itself is not imported, so
this runs in any thread or helper process.
"""
from __future__ import annotations

import functools
import importlib.util
import math
import os
from pathlib import Path

import numpy as np

from synth.io_utils import InputError

VIEWS = ("AgX", "Standard")
DISPLAY = "sRGB"
# Rec.709 / sRGB luminance weights (linear light)
LUMINANCE = np.array([0.2126, 0.7152, 0.0722], np.float32)
# the gain stays within +- this many stops: a person far darker or brighter than that is a
# drawn-lighting extreme, not something a camera's metering would fully undo
MAX_GAIN_STOPS = 8.0
# grey-curve samples for inverting a view transform: log2 scene-linear from -16 to +12 stops
_GREY_LOG2 = np.linspace(-16.0, 12.0, 1121)


def ocio_config_path() -> Path:
    """Blender's OCIO config (bpy/<version>/datafiles/colormanagement/config.ocio), or $OCIO."""
    env = os.environ.get("OCIO")
    if env:
        return Path(env)
    spec = importlib.util.find_spec("bpy")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            found = sorted(Path(root).glob("*/datafiles/colormanagement/config.ocio"))
            if found:
                return found[-1]
    raise InputError("render.exposure: Blender's colour management config (bpy/*/datafiles/colormanagement/"
                     "config.ocio) not found; install bpy or set $OCIO")


@functools.lru_cache(maxsize=None)
def _processor(view: str):
    try:
        import PyOpenColorIO as ocio
    except ImportError:
        raise InputError("render.exposure: the view transform needs OpenColorIO (pip install opencolorio)") from None
    if view not in VIEWS:
        raise InputError(f"render.exposure.view: {view!r} is not one of {VIEWS}")
    config = ocio.Config.CreateFromFile(str(ocio_config_path()))
    proc = config.getProcessor(ocio.ROLE_SCENE_LINEAR, DISPLAY, view, ocio.TRANSFORM_DIR_FORWARD)
    return proc.getDefaultCPUProcessor()


def to_display(rgb_linear: np.ndarray, view: str) -> np.ndarray:
    """Scene-linear RGB (..., 3) -> display sRGB-encoded values in [0, 1] (float32, a new array)
    through Blender's `view` transform for the sRGB display."""
    out = np.ascontiguousarray(np.maximum(rgb_linear, 0.0), dtype=np.float32).copy()
    if out.size:
        _processor(view).applyRGB(out.reshape(-1))
    return np.clip(out, 0.0, 1.0)


@functools.lru_cache(maxsize=None)
def _grey_curve(view: str) -> np.ndarray:
    """Display-linear luminance of a grey of each scene-linear level 2 ** _GREY_LOG2."""
    grey = np.repeat(np.exp2(_GREY_LOG2).astype(np.float32)[:, None], 3, axis=1)
    shown = srgb_to_linear(to_display(grey, view).astype(np.float64)) @ LUMINANCE.astype(np.float64)
    return np.maximum.accumulate(shown)      # monotone for np.interp (flat ends where it saturates)


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def exposure_gain(person_luminance: float, target_luminance: float, view: str) -> float:
    """The gain g for which a grey of scene-linear luminance `person_luminance` is shown with
    display-linear luminance `target_luminance` through `view` (within +- MAX_GAIN_STOPS)."""
    if not (person_luminance > 0.0 and math.isfinite(person_luminance)):
        return 1.0
    curve = _grey_curve(view)
    target = float(np.clip(target_luminance, curve[0], curve[-1]))
    # the first level reaching the target (the curve is flat where the view saturates)
    log2_needed = float(np.interp(target, curve, _GREY_LOG2))
    stops = float(np.clip(log2_needed - math.log2(person_luminance), -MAX_GAIN_STOPS, MAX_GAIN_STOPS))
    return 2.0 ** stops
