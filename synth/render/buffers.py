"""The renderer's pure-numpy side, importable without Blender (e.g. in a helper process).

`prepare_scene` checks a `SceneSpec` and converts it into the buffers Blender takes;
`composite_outputs` turns the read-back passes into the dataset's outputs (see
synth/render/blender_scene.py for what each pass is).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from synth.io_utils import InputError
from synth.render.colour import LUMINANCE, exposure_gain, to_display
from synth.scene import PARTS, Camera, Exposure, Ground, RenderOutput, SceneSpec

_DEPTH_MAX_MM = 65535


class DegenerateSceneError(RuntimeError):
    """A drawn scene Blender cannot take (non-finite vertices, a camera that is not a rotation).
    Not bad input: a render loop retries the sample with a derived seed."""


@dataclass
class PreparedScene:
    """A `SceneSpec` checked and converted into the buffers Blender takes (`Renderer.prepare`).

    Preparing touches no Blender state, so a render loop can prepare the next sample in a thread
    while Cycles renders the current one (bpy releases the GIL while it renders)."""
    spec: SceneSpec
    vertices: np.ndarray      # (V*3,) float32
    faces: np.ndarray         # (F, 3) int32
    face_uvs: np.ndarray      # (F, 3, 2) float32
    face_parts: np.ndarray    # (F,) uint8
    texture_rgba: np.ndarray  # (H*W*4,) float32, bottom row first, as Image.pixels takes it
    texture_size: tuple[int, int]   # (W, H)
    worn: list[PreparedWorn] = field(default_factory=list)
    worn_texture_rgba: np.ndarray | None = None   # the cloth texture of the worn meshes, as texture_rgba
    worn_texture_size: tuple[int, int] = (0, 0)


@dataclass
class PreparedWorn:
    """One worn mesh checked and converted for Blender (see `PreparedScene`)."""
    asset: str
    vertices: np.ndarray      # (N*3,) float32
    faces: np.ndarray         # (F, 3) int32
    face_uvs: np.ndarray      # (F, 3, 2) float32
    face_parts: np.ndarray    # (F,) uint8
    shader: str
    color: tuple[float, float, float]   # linear RGB
    roughness: float


@dataclass
class RenderPasses:
    """The raw passes of one render (`Renderer.render_passes`), before compositing (`finish`)."""
    channels: dict
    background: np.ndarray
    timings: dict
    ground: Ground | None = None        # the scene's shadow-catching ground (its Shadow Catcher pass)
    exposure: Exposure | None = None    # the scene's view transform and metered exposure
    camera: Camera | None = None        # the scene's camera (where a ground pixel lies on the plane)


def _is_rotation(R: np.ndarray) -> bool:
    """R (3, 3) is finite, orthonormal to 1e-5 and proper. (Plain arithmetic: np.allclose was
    measured at ~15 ms per call inside the render loop.)"""
    if not np.isfinite(R).all():
        return False
    err = np.abs(R @ R.T - np.eye(3)).max()
    return bool(err <= 1e-5) and float(np.linalg.det(R)) > 0.0


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * np.power(c, 1.0 / 2.4) - 0.055)


_SRGB8_TO_LINEAR = _srgb_to_linear(np.arange(256, dtype=np.float64) / 255.0).astype(np.float32)
# Linear [0, 1] quantised to 16 bits -> 8-bit sRGB: a table lookup instead of a power per pixel;
# a 16-bit step moves the sRGB value by at most 0.05 of an 8-bit level at the dark end.
_LINEAR_LEVELS = 65535
_LINEAR16_TO_SRGB8 = np.rint(_linear_to_srgb(np.arange(_LINEAR_LEVELS + 1, dtype=np.float64) / _LINEAR_LEVELS)
                             * 255.0).astype(np.uint8)


WORN_SHADERS = ("cloth", "solid", "hair")


def _texture_rgba(tex: np.ndarray, what: str) -> tuple[np.ndarray, tuple[int, int]]:
    tex = np.asarray(tex)
    if tex.ndim != 3 or tex.shape[2] != 3 or tex.dtype != np.uint8:
        raise InputError(f"{what}: expected (H, W, 3) uint8, got {tex.shape} {tex.dtype}")
    h, w = tex.shape[:2]
    # Blender takes bottom row first. Flipped and widened to RGBA as bytes, then scaled in one
    # contiguous pass: numpy's strided write into the RGB of an RGBA float array was ~10x slower.
    rgba_u8 = cv2.cvtColor(cv2.flip(np.ascontiguousarray(tex), 0), cv2.COLOR_RGB2RGBA)
    return np.multiply(rgba_u8, np.float32(1.0 / 255.0), dtype=np.float32).ravel(), (w, h)


def _check_mesh(what: str, verts: np.ndarray, faces: np.ndarray, face_uvs: np.ndarray,
                face_parts: np.ndarray) -> None:
    n_faces = len(faces)
    if len(face_uvs) != n_faces or len(face_parts) != n_faces:
        raise InputError(f"{what}: {n_faces} faces but {len(face_uvs)} face_uvs and {len(face_parts)} face_parts")
    if n_faces and (faces.min() < 0 or faces.max() >= len(verts)):
        raise InputError(f"{what}: face vertex index out of range")
    if n_faces and (face_parts.min() < 1 or face_parts.max() > len(PARTS)):
        raise InputError(f"{what}: face part ids must be 1..{len(PARTS)}, got {face_parts.min()}..{face_parts.max()}")
    if not np.isfinite(verts).all():
        raise DegenerateSceneError(f"{what}: non-finite vertex positions")


def _prepare_worn(scene: SceneSpec) -> tuple[list[PreparedWorn], np.ndarray | None, tuple[int, int]]:
    out, texture, size = [], None, (0, 0)
    for w in scene.worn:
        what = f"worn mesh {w.asset}"
        verts = np.ascontiguousarray(w.vertices, dtype=np.float32).reshape(-1, 3)
        faces = np.ascontiguousarray(w.faces, dtype=np.int32).reshape(-1, 3)
        face_uvs = np.ascontiguousarray(w.face_uvs, dtype=np.float32).reshape(-1, 3, 2)
        face_parts = np.ascontiguousarray(w.face_parts, dtype=np.uint8).reshape(-1)
        _check_mesh(what, verts, faces, face_uvs, face_parts)
        sf = w.surface
        if sf.shader not in WORN_SHADERS:
            raise InputError(f"{what}: shader {sf.shader!r} is not one of {WORN_SHADERS}")
        if sf.shader == "cloth":
            if sf.texture is None:
                raise InputError(f"{what}: a cloth surface needs a texture")
            if texture is not None:
                raise InputError(f"{what}: only one worn mesh per scene may have a cloth texture")
            texture, size = _texture_rgba(sf.texture, f"{what} texture")
        colour = tuple(float(c) for c in _srgb_to_linear(np.clip(np.asarray(sf.color, np.float64), 0, 1)))
        out.append(PreparedWorn(asset=w.asset, vertices=verts.ravel(), faces=faces, face_uvs=face_uvs,
                                face_parts=face_parts, shader=sf.shader, color=colour,
                                roughness=float(np.clip(sf.roughness, 0.0, 1.0))))
    if len({w.asset for w in out}) != len(out):
        raise InputError("worn meshes: an asset is worn twice")
    return out, texture, size


def prepare_scene(scene: SceneSpec, width: int, height: int) -> PreparedScene:
    """Check `scene` against a width x height renderer and convert its arrays for Blender."""
    body = scene.body
    verts = np.ascontiguousarray(body.vertices, dtype=np.float32).reshape(-1, 3)
    faces = np.ascontiguousarray(body.faces, dtype=np.int32).reshape(-1, 3)
    face_uvs = np.ascontiguousarray(body.face_uvs, dtype=np.float32).reshape(-1, 3, 2)
    face_parts = np.ascontiguousarray(body.face_parts, dtype=np.uint8).reshape(-1)
    n_faces = len(faces)
    if len(face_uvs) != n_faces or len(face_parts) != n_faces:
        raise InputError(f"body mesh: {n_faces} faces but {len(face_uvs)} face_uvs and {len(face_parts)} face_parts")
    if n_faces and (faces.min() < 0 or faces.max() >= len(verts)):
        raise InputError("body mesh: face vertex index out of range")
    if n_faces and (face_parts.min() < 1 or face_parts.max() > len(PARTS)):
        raise InputError(f"body mesh: face part ids must be 1..{len(PARTS)}, got {face_parts.min()}..{face_parts.max()}")
    if not np.isfinite(verts).all():
        raise DegenerateSceneError("body mesh: non-finite vertex positions")
    bg = np.asarray(scene.background)
    if bg.shape != (height, width, 3) or bg.dtype != np.uint8:
        raise InputError(f"background: expected ({height}, {width}, 3) uint8, got {bg.shape} {bg.dtype}")
    if (scene.camera.width, scene.camera.height) != (width, height):
        raise InputError(f"camera is {scene.camera.width}x{scene.camera.height} but the renderer is "
                         f"{width}x{height}")
    R = np.asarray(scene.camera.R, dtype=np.float64)
    if (R.shape != (3, 3) or not _is_rotation(R)
            or not np.isfinite(np.asarray(scene.camera.t, dtype=np.float64)).all()):
        raise DegenerateSceneError("camera R: not a rotation matrix (or t not finite)")
    rgba, size = _texture_rgba(scene.texture, "texture")
    worn, worn_rgba, worn_size = _prepare_worn(scene)
    return PreparedScene(spec=scene, vertices=verts.ravel(), faces=faces, face_uvs=face_uvs,
                         face_parts=face_parts, texture_rgba=rgba, texture_size=size,
                         worn=worn, worn_texture_rgba=worn_rgba, worn_texture_size=worn_size)


def _channel(channels: dict, layer_pass: str, suffix: str) -> np.ndarray:
    for name, arr in channels.items():
        if name.endswith(f"{layer_pass}.{suffix}"):
            return arr
    raise RuntimeError(f"render EXR lacks the {layer_pass}.{suffix} channel (has {sorted(channels)})")


def shadow_factor(channels: dict, ground: Ground, camera: Camera | None = None) -> np.ndarray:
    """(H, W) float32 in [0, 1]: what the ground's caught shadow multiplies the background by.

    Cycles' Shadow Catcher pass is the ratio of the light the catcher gets with the body to
    without it; above 1 where the body reflects light onto it (kept to 1: the photo is only ever
    darkened). A 3x3 median takes out the lone dark specks of paths that met the body by chance
    (a catcher pixel's ratio is a noisy estimate at a few samples). `ground.strength` scales the
    darkening, and with the `camera`, the darkening fades out over the plane rectangle's outer
    `ground.fade` metres (each pixel's point on the plane from the Depth pass)."""
    caught = cv2.merge([_channel(channels, "Shadow Catcher", c) for c in "RGB"]) @ LUMINANCE
    caught = np.clip(caught, 0.0, 1.0, out=caught).astype(np.float32)
    caught = cv2.medianBlur(caught, 3)
    darkening = 1.0 - caught
    if camera is not None and ground.fade > 0:
        shaded = darkening > 1e-4
        if shaded.any():
            vs, us = np.nonzero(shaded)
            z = _channel(channels, "Depth", "Z")[shaded].astype(np.float64)
            rays = np.stack([us, vs, np.ones_like(us)], axis=1).astype(np.float64) @ np.linalg.inv(camera.K).T
            world = (rays * z[:, None] - np.asarray(camera.t, np.float64)) @ np.asarray(camera.R, np.float64)
            x0, y0, x1, y1 = ground.extent
            inside = np.minimum.reduce([world[:, 0] - x0, x1 - world[:, 0], world[:, 1] - y0, y1 - world[:, 1]])
            darkening[shaded] *= np.clip(inside / ground.fade, 0.0, 1.0).astype(np.float32)
    return (1.0 - np.float32(ground.strength) * darkening).astype(np.float32)


def _exposed_person(rgb_lin: np.ndarray, alpha: np.ndarray, background_lin: np.ndarray,
                    exposure: Exposure) -> tuple[np.ndarray, float]:
    """(the person's premultiplied display-linear colour (H, W, 3), the gain): the scene-linear
    render un-premultiplied, times the metered gain, through the view transform, premultiplied
    again. The gain is 1.0 when no pixel is covered.

    Metering: the median luminance of the person's solid pixels (alpha >= 0.99; all covered
    pixels when there are none) is mapped, through the view's grey curve, to the background's
    median luminance times 2 ** offset_stops, kept within [key_low, key_high] (display sRGB)."""
    out = np.zeros_like(rgb_lin)
    covered = alpha > 1e-4
    if not covered.any():
        return out, 1.0
    a = alpha[covered][:, None]
    colour = np.maximum(rgb_lin[covered], 0.0) / a           # un-premultiplied scene-linear
    solid = alpha[covered] >= 0.99
    metered = colour[solid] if solid.any() else colour
    person_key = float(np.median(metered @ LUMINANCE))
    bg_key = float(np.median(background_lin.reshape(-1, 3) @ LUMINANCE))
    lo, hi = (float(_srgb_to_linear(np.float64(k))) for k in (exposure.key_low, exposure.key_high))
    target = float(np.clip(bg_key * 2.0 ** float(exposure.offset_stops), lo, hi))
    gain = exposure_gain(person_key, target, exposure.view)
    shown = _srgb_to_linear(to_display(colour * np.float32(gain), exposure.view)).astype(np.float32)
    out[covered] = shown * a
    return out, float(gain)


def composite_outputs(channels: dict, background: np.ndarray, ground: Ground | None = None,
                      exposure: Exposure | None = None, camera: Camera | None = None) -> RenderOutput:
    """mask, parts, depth and the RGB composited over `background` from the passes.

    `ground`: the background is first multiplied by the ground's shadow factor (linear light;
    `shadow_factor`). `exposure`: the person's colour goes through the metered gain and view
    transform (`_exposed_person`); without it the linear colour is composited as rendered (the
    Standard sRGB curve, clipped). Mask, parts and depth come from the data passes alone, so
    neither changes them."""
    def channel(layer_pass: str, suffix: str) -> np.ndarray:
        return _channel(channels, layer_pass, suffix)

    parts = np.rint(channel("Material Index", "X")).astype(np.int32)
    parts = np.clip(parts, 0, len(PARTS)).astype(np.uint8)
    on_body = parts > 0
    mask = on_body.view(np.uint8) * np.uint8(255)
    z = channel("Depth", "Z")
    depth_mm = np.where(on_body, np.clip(np.rint(z * 1000.0), 1, _DEPTH_MAX_MM), 0).astype(np.uint16)

    # out = C + (1 - A) * bg, in place where possible: the same float32 operations as the plain
    # expression (so the same bytes), ~45 % less CPU (5.4 -> 3.0 ms at 256x256). cv2.LUT is an
    # exact table lookup like numpy's fancy indexing, without its uint8 -> intp index copy.
    rgb_lin = cv2.merge([channel("Combined", c) for c in "RGB"])
    alpha = np.clip(channel("Combined", "A"), 0.0, 1.0)
    transparency = 1.0 - alpha
    comp = cv2.LUT(np.ascontiguousarray(background), _SRGB8_TO_LINEAR)
    gain = None
    if exposure is not None:
        rgb_lin, gain = _exposed_person(rgb_lin, alpha, comp, exposure)
    if ground is not None:
        transparency = transparency * shadow_factor(channels, ground, camera)
    comp *= cv2.merge([transparency] * 3)
    comp += rgb_lin                                  # Cycles' colour is premultiplied
    np.clip(comp, 0.0, 1.0, out=comp)
    comp *= np.float32(_LINEAR_LEVELS)
    rgb = np.take(_LINEAR16_TO_SRGB8, np.rint(comp, out=comp).astype(np.uint16))
    return RenderOutput(rgb=rgb, mask=mask, parts=parts, depth_mm=depth_mm, exposure_gain=gain)
