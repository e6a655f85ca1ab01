"""Draws everything one sample needs — pose, body shape, clothing, camera, lights, background —
from an explicit rng, and assembles the renderer-agnostic SceneSpec.

A sample's rng is the RENDER_SAMPLE stream of (seed, shard index, sample index, attempt) alone
(synth.rng), so a shard's content does not depend on which worker renders it or on what it
rendered before. With mesh clothing (render.clothing.mode=mesh, synth.dataset.dressing) what the
sample wears comes from its own MESH_DRESSING stream of the same indices.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from synth.body import create_body_model, sample_phenotype
from synth.body.clothing.catalog import list_assets
from synth.config import CameraConfig, Config, FramingConfig, LightsConfig
from synth.dataset.dressing import MeshDresser, check_wardrobe
from synth.dataset.occluders import draw_occluder
from synth.dataset.grounding import draw_exposure, ground_exposure_rng, place_ground
from synth.decoded_images import DecodedImages
from synth.geometry import focal_from_fov, intrinsics, look_at
from synth.image_files import open_image
from synth.io_utils import InputError
from synth.poses.posefile import load_poses
from synth.render.buffers import DegenerateSceneError
from synth.poses.sampling import find_clips, load_pool
from synth.resources import resolve_data_path
from synth.rng import Stream, stream
from synth.scene import JOINTS, Camera, Environment, Light, SceneSpec, WornMesh
from synth.textures.library import TextureLibrary
from synth.textures.simple import (UVRegions, garment_library, load_skin_tones, make_texture, skin_texture,
                                   skin_tone_label)

BACKGROUND_SUFFIXES = {".jpg", ".jpeg", ".png"}


def sample_rng(seed: int, shard: int, index: int, attempt: int = 0) -> np.random.Generator:
    return stream(seed, Stream.RENDER_SAMPLE, shard, index, attempt)


def framing_rng(seed: int, shard: int, index: int, attempt: int = 0) -> np.random.Generator:
    """A sample's photo-like framing (render.framing): its own stream, so that the framing changes
    the camera alone."""
    return stream(seed, Stream.FRAMING, shard, index, attempt)


def occluder_rng(seed: int, shard: int, index: int, attempt: int = 0) -> np.random.Generator:
    """Whether and what occludes a sample's person (render.occluders): its own stream."""
    return stream(seed, Stream.OCCLUDER, shard, index, attempt)


def dressing_rng(seed: int, shard: int, index: int, attempt: int = 0) -> np.random.Generator:
    """What a sample wears with render.clothing.mode=mesh: its own stream, so that changing the
    wardrobe (render.clothing.mesh.*) leaves each sample's pose, shape, camera, lights and
    background as they were (one ablation changes one thing)."""
    return stream(seed, Stream.MESH_DRESSING, shard, index, attempt)


def list_backgrounds(data_dir: Path) -> list[Path]:
    root = Path(data_dir) / "backgrounds"
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in BACKGROUND_SUFFIXES)
    if not files:
        raise InputError(f"{root}: no background images; run `synth assets fetch`")
    return files


def _open_rgb(path: Path):
    """The image at `path`, which must open as RGB within the size limits of
    synth.image_files (InputError naming the file otherwise)."""
    im = open_image(path, "background image")
    if im.mode != "RGB":
        im.close()
        raise InputError(f"{path}: background image mode {im.mode} is not RGB")
    return im


def check_background(path: Path) -> None:
    """Header check (no decode): the file opens as an RGB image."""
    _open_rgb(path).close()


def decode_background(path: Path) -> np.ndarray:
    """The background photo at `path` as an (H, W, 3) uint8 RGB array."""
    try:
        with _open_rgb(path) as im:
            return np.asarray(im)
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{path}: unreadable background image ({e.__class__.__name__})") from None


def load_background(path: Path, width: int, height: int, rng: np.random.Generator,
                    images: DecodedImages | None = None) -> tuple[np.ndarray, dict]:
    """A random crop of the photo at the target aspect, scaled to cover W x H, maybe mirrored
    (the decoded photo comes from `images` when given)."""
    arr = images.get(path, decode_background) if images is not None else decode_background(path)
    h, w = arr.shape[:2]
    scale = rng.uniform(1.0, 1.5)   # zoom in a little for variety
    cw = min(w, int(round(w / scale)))
    ch = int(round(cw * height / width))
    if ch > h:
        ch = h
        cw = int(round(ch * width / height))
    x0 = int(rng.integers(0, w - cw + 1))
    y0 = int(rng.integers(0, h - ch + 1))
    crop = arr[y0:y0 + ch, x0:x0 + cw]
    flip = bool(rng.random() < 0.5)
    if flip:
        crop = crop[:, ::-1]
    out = cv2.resize(np.ascontiguousarray(crop), (width, height), interpolation=cv2.INTER_AREA)
    return out, {"crop_xywh": [x0, y0, cw, ch], "flip": flip}


def blackbody_rgb(kelvin: float) -> tuple[float, float, float]:
    """Approximate linear RGB of a black body (Tanner Helland's fit), normalised to max 1."""
    t = kelvin / 100.0
    r = 255.0 if t <= 66 else 329.698727446 * (t - 60) ** -0.1332047592
    g = 99.4708025861 * math.log(t) - 161.1195681661 if t <= 66 else 288.1221695283 * (t - 60) ** -0.0755148492
    b = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.5177312231 * math.log(t - 10) - 305.0447927307)
    rgb = np.clip([r, g, b], 1, 255) / 255.0
    rgb = rgb ** 2.2   # sRGB-ish -> linear
    return tuple(float(c) for c in rgb / rgb.max())


def facing_direction(joints: np.ndarray) -> np.ndarray:
    """Unit vector on the ground the body faces: (left - right) x up, from hips and shoulders."""
    j = {n: joints[i] for i, n in enumerate(JOINTS)}
    left = (j["left_hip"] - j["right_hip"]) + (j["left_shoulder"] - j["right_shoulder"])
    f = np.cross(left, [0.0, 0.0, 1.0])
    f[2] = 0.0
    n = np.linalg.norm(f)
    return f / n if n > 1e-6 else np.array([0.0, -1.0, 0.0])


def bounding_box_centre(vertices: np.ndarray) -> np.ndarray:
    """Centre of the axis-aligned bounding box of (N, 3) points. cv2.reduce gives numpy's exact
    per-axis min/max in a quarter of the time of `v.min(0)` on an (N, 3) array."""
    v = np.ascontiguousarray(vertices)
    if v.dtype in (np.float32, np.float64) and len(v):
        lo, hi = cv2.reduce(v, 0, cv2.REDUCE_MIN)[0], cv2.reduce(v, 0, cv2.REDUCE_MAX)[0]
    else:
        lo, hi = v.min(0), v.max(0)
    return 0.5 * (lo + hi)


def sample_camera(cc: CameraConfig, width: int, height: int, body, rng: np.random.Generator,
                  worn: Sequence[WornMesh] = (), centre: np.ndarray | None = None,
                  framing: FramingConfig | None = None,
                  framing_rng: np.random.Generator | None = None) -> tuple[Camera, dict]:
    """A camera around the body's facing direction (the `render.camera` distributions) and its labels.

    Without `framing` (or with it off) the bounding sphere of the body and what it wears fills
    render.camera.fill of the image, centred. With it, the camera stands at framing.camera_height_m
    above the body's lowest point, at the distance that makes the person's projected box span
    framing.person_size, and aims so that the box sits off-centre or, in some samples, is cut by
    the image border (`frame_person`); those draws come from `framing_rng`, so that switching the
    framing on changes the camera alone (the sample's own draws stay as they were).
    `centre`: the bounding-box centre of those vertices when the caller has it already."""
    W, H = width, height
    fov = math.radians(rng.uniform(cc.fov_deg.low, cc.fov_deg.high))   # vertical
    fill = rng.uniform(cc.fill.low, cc.fill.high)
    # framed on everything seen: the body and what it wears (hair, a skirt, a hat)
    v = np.concatenate([body.vertices] + [w.vertices for w in worn]) if worn else body.vertices
    if centre is None:
        centre = bounding_box_centre(v)
    radius = float(np.linalg.norm(v - centre, axis=1).max())
    # the sphere's angular radius takes `fill` of the half field of view (of the narrower side)
    half = math.atan(math.tan(fov / 2) * min(W, H) / H)
    dist = radius / math.sin(fill * half)
    fwd = facing_direction(body.joints)
    base_az = math.atan2(fwd[1], fwd[0])
    az = base_az + math.radians(rng.normal(0, cc.azimuth_std_deg))
    el = math.radians(cc.base_elevation_deg + rng.normal(0, cc.elevation_std_deg))
    el = max(-math.radians(80), min(math.radians(80), el))
    roll = math.radians(rng.normal(0, cc.roll_std_deg))
    K = intrinsics(focal_from_fov(fov, H), W, H)
    if framing is not None and framing.enabled:
        if framing_rng is None:
            raise ValueError("sample_camera: framing needs its own framing_rng")
        R, t, pos, frame_info = frame_person(framing, framing_rng, K, W, H, np.asarray(v, np.float64),
                                             np.asarray(centre, np.float64), az, roll, dist)
    else:
        pos = centre + dist * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
        R, t = look_at(pos, centre, roll)
        frame_info = {"mode": "sphere"}
    lo, hi = projected_box(R, t, K, np.asarray(v, np.float64))
    d = np.asarray(centre, np.float64) - pos
    info = {"fov_y_deg": math.degrees(fov), "distance": float(np.linalg.norm(d)),
            "azimuth_from_facing_deg": math.degrees(az - base_az),
            "elevation_deg": math.degrees(math.asin(float(np.clip(-d[2] / max(np.linalg.norm(d), 1e-9), -1, 1)))),
            "pitch_deg": math.degrees(math.asin(float(np.clip(R[2, 2], -1.0, 1.0)))),
            "roll_deg": math.degrees(roll), "position": pos.tolist(),
            "height_above_ground_m": float(pos[2] - np.asarray(v)[:, 2].min()),
            "framing": {**frame_info, "person_box": [float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])]}}
    return Camera(K=K, R=R, t=t, width=W, height=H), info


def projected_box(R: np.ndarray, t: np.ndarray, K: np.ndarray, vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(min (2,), max (2,)) pixel corners of the points' projection; points at or behind the camera
    plane are left out (the framing keeps the camera away from the body)."""
    Xc = _to_camera(R, t, vertices)
    z = Xc[:, 2]
    front = z > 1e-3
    if not front.any():
        return np.zeros(2), np.zeros(2)
    Xf = Xc[front]
    u = (K[0, 0] * Xf[:, 0] + K[0, 1] * Xf[:, 1]) / Xf[:, 2] + K[0, 2]
    v = K[1, 1] * Xf[:, 1] / Xf[:, 2] + K[1, 2]
    return np.array([u.min(), v.min()]), np.array([u.max(), v.max()])


def _mm3(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """A @ B of 3×3 matrices in elementwise arithmetic (see _to_camera)."""
    return (A[:, :, None] * B[None, :, :]).sum(axis=1)


def _mv3(A: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A @ x of a 3×3 matrix and a 3-vector in elementwise arithmetic (see _to_camera)."""
    return (A * np.asarray(x, np.float64)[None, :]).sum(axis=1)


def _pixel_ray(K: np.ndarray, uv) -> np.ndarray:
    """The camera-frame direction through pixel uv of the pinhole K (zero skew), unnormalised."""
    y = (uv[1] - K[1, 2]) / K[1, 1]
    return np.array([(uv[0] - K[0, 2] - K[0, 1] * y) / K[0, 0], y, 1.0])


def _project(camera: Camera, X: np.ndarray) -> np.ndarray:
    """Pixels (N, 2) of world points X (N, 3), as Camera.project, in elementwise arithmetic."""
    Xc = _to_camera(camera.R, camera.t, X)
    K = camera.K
    return np.stack([(K[0, 0] * Xc[:, 0] + K[0, 1] * Xc[:, 1]) / Xc[:, 2] + K[0, 2],
                     K[1, 1] * Xc[:, 1] / Xc[:, 2] + K[1, 2]], axis=1)


def _to_camera(R: np.ndarray, t: np.ndarray, X: np.ndarray) -> np.ndarray:
    """X (N, 3) world -> camera frame, in elementwise arithmetic. The framing avoids BLAS: its
    calls from the scene-drawing thread were measured to change a later shard's pixels (the same
    scenes rendered after other shards differed from a fresh process's by up to 16/255), so
    a shard would depend on what its worker rendered before."""
    X = np.asarray(X, np.float64)
    return (X[:, :1] * R[:, 0] + X[:, 1:2] * R[:, 1] + X[:, 2:3] * R[:, 2]) + t


def _axis_angle(k: np.ndarray, angle: float) -> np.ndarray:
    """The rotation by `angle` radians about the unit axis k (Rodrigues)."""
    Kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(angle) * Kx + (1 - math.cos(angle)) * _mm3(Kx, Kx)


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking unit vector a to unit vector b."""
    axis = np.cross(a, b)
    s, c = float(np.linalg.norm(axis)), float(np.dot(a, b))
    if s < 1e-12:
        return np.eye(3)
    return _axis_angle(axis / s, math.atan2(s, c))


MIN_BODY_EXTENT_M = 0.2   # a body (and what it wears) smaller than this along every axis is degenerate


def frame_person(fc: FramingConfig, rng: np.random.Generator, K: np.ndarray, W: int, H: int, vertices: np.ndarray,
                 centre: np.ndarray, azimuth: float, roll: float, start_distance: float):
    """Photo-like framing of the points `vertices` (the body and what it wears): the camera at
    fc.camera_height_m above their lowest point on the `azimuth` side, at the horizontal distance
    that makes their projected box span the drawn person_size (a few fixed-point steps: the
    box's size goes as one over the distance), then turned (pan and tilt about its own centre, so
    that its height stays) until the box centre lands where the drawn offset or truncation puts it.
    Returns (R, t, camera position, labels)."""
    size = float(rng.uniform(fc.person_size.low, fc.person_size.high))
    cam_h = float(rng.uniform(fc.camera_height_m.low, fc.camera_height_m.high))
    off = rng.uniform(fc.offset.low, fc.offset.high, size=2)
    truncated = bool(rng.random() < fc.truncation_probability)
    side = str(fc.truncation_sides[int(rng.integers(len(fc.truncation_sides)))])
    cut = float(rng.uniform(fc.truncation.low, fc.truncation.high))
    pts = vertices[:: max(1, len(vertices) // 4000)]          # the box of a subset while searching
    ground = float(vertices[:, 2].min())
    horiz = np.array([math.cos(azimuth), math.sin(azimuth)])
    extent = float(np.ptp(vertices, axis=0).max())
    if not np.isfinite(extent) or extent < MIN_BODY_EXTENT_M:
        # a collapsed body (e.g. all-zero bone rotations): nothing a camera could frame
        raise DegenerateSceneError(f"the body spans {extent:.3g} m: nothing to frame")
    r = max(start_distance, 0.5)
    min_r = 0.3 + 0.5 * extent                                 # never inside (or touching) the body
    for _ in range(6):
        pos = np.array([centre[0] + r * horiz[0], centre[1] + r * horiz[1], ground + cam_h])
        R, t = look_at(pos, centre, roll)
        lo, hi = projected_box(R, t, K, pts)
        now = max((hi[1] - lo[1]) / H, (hi[0] - lo[0]) / W)
        r_new = max(min_r, r * now / size)
        if abs(r_new - r) < 1e-3 * r:
            r = r_new
            break
        r = r_new
    pos = np.array([centre[0] + r * horiz[0], centre[1] + r * horiz[1], ground + cam_h])
    R, t = look_at(pos, centre, roll)
    for _ in range(3):
        for _ in range(4):
            lo, hi = projected_box(R, t, K, pts)
            bw, bh = hi - lo
            target = np.array([W / 2 + off[0] * max(W - bw, 0.0) / 2, H / 2 + off[1] * max(H - bh, 0.0) / 2])
            if truncated:
                # pixel centres on whole numbers: the image spans [-0.5, W - 0.5]
                if side == "bottom":
                    target[1] = H - 0.5 + cut * bh - bh / 2
                elif side == "top":
                    target[1] = -0.5 - cut * bh + bh / 2
                elif side == "right":
                    target[0] = W - 0.5 + cut * bw - bw / 2
                else:
                    target[0] = -0.5 - cut * bw + bw / 2
            now = (lo + hi) / 2
            if np.abs(now - target).max() < 0.25:
                break
            a = _pixel_ray(K, now)
            b = _pixel_ray(K, target)
            # turn the camera so that the ray now through the box centre goes through the target pixel
            R = _mm3(_rotation_between(a / np.linalg.norm(a), b / np.linalg.norm(b)), R)
            t = -_mv3(R, pos)
        # off the optical axis the box grows (perspective): step the distance again, keeping the aim
        lo, hi = projected_box(R, t, K, pts)
        now_size = max((hi[1] - lo[1]) / H, (hi[0] - lo[0]) / W)
        if abs(now_size / size - 1.0) < 0.01:
            break
        r = max(min_r, r * now_size / size)
        pos = np.array([centre[0] + r * horiz[0], centre[1] + r * horiz[1], ground + cam_h])
        t = -_mv3(R, pos)
    # a photographer tilts only so far: beyond the pitch range the camera keeps the nearest pitch
    # and moves up or down instead (the ground stays where a photo would have it)
    pitch = math.asin(float(np.clip(R[2, 2], -1.0, 1.0)))
    want = float(np.clip(pitch, math.radians(fc.pitch_deg.low), math.radians(fc.pitch_deg.high)))
    if want != pitch:
        axis = np.cross(R[2], [0.0, 0.0, 1.0])
        axis /= max(np.linalg.norm(axis), 1e-12)
        options = [_mm3(R, _axis_angle(axis, sign * (want - pitch)).T) for sign in (1.0, -1.0)]
        R = min(options, key=lambda Ro: abs(math.asin(float(np.clip(Ro[2, 2], -1, 1))) - want))
        for _ in range(4):
            t = -_mv3(R, pos)
            lo, hi = projected_box(R, t, K, pts)
            z_c = float(np.median(_to_camera(R, t, pts)[:, 2]))
            dv = target[1] - (lo[1] + hi[1]) / 2
            if abs(dv) < 0.25:
                break
            pos = pos + np.array([0.0, 0.0, dv * z_c / K[1, 1] / max(math.cos(want), 0.2)])
        t = -_mv3(R, pos)
    info = {"mode": "photo", "person_size": size, "camera_height_m": cam_h,
            "offset": [float(off[0]), float(off[1])],
            "truncation": {"side": side, "share": cut} if truncated else None}
    return R, t, pos, info


@dataclass
class RenderInputs:
    """The input files a render draws from, listed and checked (headers only, nothing decoded)."""
    data_dir: Path
    backgrounds: list[Path]
    garments: dict
    hdris: list[Path]
    texture_library: object | None      # a TextureLibrary with render.clothing.mode=library
    mesh_assets: dict | None            # with render.clothing.mode=mesh: the MakeHuman assets by kind


def render_inputs(cfg: Config, poses_given: bool = False) -> RenderInputs:
    """List and check what a render of `cfg` reads (the pose file or MoCap unless `poses_given`);
    InputError (one line, naming the file) when something is missing. Cheap enough to run before
    anything is written, so that a run without its data stops before an output records
    fingerprints of the wrong files."""
    data_dir = cfg.paths().data
    if not data_dir.is_dir():
        raise InputError(f"{data_dir}: data directory not found; run `synth assets fetch` "
                         "or set data_dir / $SYNTH_DATA")
    pose_file = cfg.dataset.pose_file
    if not poses_given and pose_file and not Path(pose_file).is_file():
        raise InputError(f"{pose_file}: pose file not found")
    if not poses_given and not pose_file:
        find_clips(data_dir, cfg.poses.subjects)
    garments = garment_library(data_dir)
    if cfg.render.clothing.mode in ("photo", "mesh"):
        # the photos a sample's garments are cut from (mesh: fabric patches for the garment meshes)
        for photos in garments.values():
            for photo in photos:
                open_image(photo.path, "garment photo").close()
    mesh_assets = None
    if cfg.render.clothing.mode == "mesh":
        # the MakeHuman assets: listed from their .mhclo headers, each with its .obj beside it;
        # the wardrobe's asset names and hair palette
        mesh_assets = list_assets(data_dir)
        check_wardrobe(cfg.render.clothing.mesh, mesh_assets)
    texture_library = None
    if cfg.render.clothing.mode == "library":
        # dressed-body textures from `synth dress` (textures.library)
        texture_library = TextureLibrary(Path(cfg.textures.library))
    backgrounds = list_backgrounds(data_dir)
    for b in backgrounds:
        check_background(b)
    return RenderInputs(data_dir, backgrounds, garments, sorted((data_dir / "hdri").glob("*.hdr")),
                        texture_library, mesh_assets)


class SceneSampler:
    """Everything one worker needs to draw scenes; built once, then `scene(shard, index, attempt)`."""

    def __init__(self, cfg: Config, poses=None):
        self.cfg = cfg
        inputs = render_inputs(cfg, poses_given=poses is not None)
        self.data_dir = inputs.data_dir
        self.render = cfg.render
        self.poses = poses if poses is not None else self._load_poses()
        self.body = create_body_model(cfg.body)
        rest_vertices, waist_z = self.body.neutral_rest()
        self.regions = UVRegions(self.body.faces, self.body.face_uvs, self.body.face_parts,
                                 rest_vertices, waist_z=waist_z)
        self.garments = inputs.garments
        self.texture_library = inputs.texture_library
        self.skin_tones, self.skin_jitter = load_skin_tones(
            resolve_data_path(cfg.render.skin.tones, "render.skin.tones"))
        self.backgrounds = inputs.backgrounds
        self.hdris = inputs.hdris
        self.dresser = None
        if inputs.mesh_assets is not None:
            # MakeHuman garment, shoe and hair meshes fitted to the body (synth.dataset.dressing;
            # the configuration has checked that the body is Anny's)
            self.dresser = MeshDresser(cfg.render.clothing, self.body, self.regions, inputs.mesh_assets,
                                       self.garments, cache_dir=cfg.paths().cache)
        # decoded backgrounds and garment photos, reused between samples (same pixels, less CPU)
        self.images = DecodedImages(int(cfg.executor.image_cache_mb * 2**20))

    def _load_poses(self):
        pose_file = self.cfg.dataset.pose_file
        if pose_file:
            return load_poses(Path(pose_file))
        pc = self.cfg.poses
        return load_pool(self.data_dir, subjects=pc.subjects, fps=pc.fps, min_distance=pc.min_pose_distance,
                         cache_dir=self.cfg.paths().cache / "poses")

    def scene(self, shard: int, index: int, attempt: int = 0) -> tuple[SceneSpec, dict]:
        """The scene of one sample and the per-stage times (pose, body, textures...)."""
        cfg = self.cfg
        rng = sample_rng(cfg.seed, shard, index, attempt)
        times = {}
        t0 = time.perf_counter()
        pi = int(rng.integers(len(self.poses)))
        rotations = self.poses.rotations[pi]
        rest_dirs = self.poses.rest_directions[pi]
        pose_label = {"source": str(self.poses.source[pi]), "id": str(self.poses.pose_id[pi])}
        times["pose"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        phenotype = sample_phenotype(cfg.body.phenotype, rng)
        if self.dresser is not None:
            body, posed_rig = self.body.pose_rigged(rotations, rest_dirs, phenotype)
        else:
            body = self.body.pose(rotations, rest_dirs, phenotype)
        times["body"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        clothing = self.render.clothing
        worn, worn_labels = [], {}
        if self.dresser is not None:
            skin, skin_rgb, tone = skin_texture(self.regions.size, self.skin_tones, self.skin_jitter, rng)
            # times["fit"] and times["texture"] are the dresser's
            body, texture, worn, worn_labels = self.dresser.dress(
                body, posed_rig, phenotype, skin, dressing_rng(cfg.seed, shard, index, attempt), times)
            tex_info = {"garments": worn_labels.pop("garments"), "skin_tone": skin_tone_label(skin_rgb, tone)}
        else:
            if self.texture_library is not None:
                texture, tex_info = self.texture_library.draw(rng)
            else:
                texture, tex_info = make_texture(self.regions, self.garments, self.skin_tones, self.skin_jitter,
                                                 clothing.flat_probability, clothing.mode, rng, images=self.images)
            times["texture"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        # the lights centre on the body; the camera frames the body and what it wears
        centre = bounding_box_centre(body.vertices)
        camera, cam_info = sample_camera(self.render.camera, self.render.width, self.render.height, body, rng,
                                         worn, None if worn else centre, self.render.framing,
                                         framing_rng(cfg.seed, shard, index, attempt))
        lights, environment, light_info = self._lights(self.render.lights, body, rng, centre)
        bg_path = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
        background, bg_info = load_background(bg_path, camera.width, camera.height, rng, self.images)
        # an occluder cut from another photo, over part of the person's projected box
        foreground = None
        if self.render.occluders.probability > 0:
            foreground = draw_occluder(self.render.occluders, occluder_rng(cfg.seed, shard, index, attempt),
                                       cam_info["framing"]["person_box"], camera.width, camera.height,
                                       self.backgrounds, self.data_dir,
                                       lambda p: self.images.get(p, decode_background), exclude=bg_path,
                                       joints_2d=_project(camera, body.joints))
        # the ground plane and the exposure: their own stream (synth.dataset.grounding)
        look_rng = ground_exposure_rng(cfg.seed, shard, index, attempt)
        ground, ground_info = place_ground(self.render.ground, body, worn, camera, lights, look_rng)
        exposure, exposure_info = draw_exposure(self.render.exposure, look_rng)
        times["scene_sample"] = time.perf_counter() - t0

        labels = {
            "body": {"backend": body.backend, **body.shape},
            "pose": pose_label,
            "garments": tex_info["garments"],
            "skin_tone": tex_info["skin_tone"],
            **({"texture_library": tex_info["texture_library"]} if "texture_library" in tex_info else {}),
            **worn_labels,
            "background": {"id": str(bg_path.relative_to(self.data_dir)), **bg_info},
            "lights": light_info,
            "camera": cam_info,
            "ground": ground_info,
            "exposure": exposure_info,
        }
        spec = SceneSpec(body=body, texture=texture, camera=camera, lights=lights, environment=environment,
                         background=background, seed=int(rng.integers(0, 2**31 - 1)), labels=labels, worn=worn,
                         foreground=foreground, ground=ground, exposure=exposure)
        return spec, times

    def _lights(self, lc: LightsConfig, body, rng: np.random.Generator,
                centre: np.ndarray | None = None) -> tuple[list[Light], Environment, dict]:
        if centre is None:
            centre = bounding_box_centre(body.vertices)
        n = int(rng.integers(lc.count.low, lc.count.high + 1))
        lights, info = [], []
        for _ in range(n):
            kind = str(rng.choice(lc.types))
            az = rng.uniform(0, 2 * math.pi)
            el = rng.uniform(math.radians(10), math.radians(75))
            d = rng.uniform(2.0, 5.0)
            loc = centre + d * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
            direction = (centre - loc) / np.linalg.norm(centre - loc)
            kelvin = rng.uniform(lc.color_temperature_k.low, lc.color_temperature_k.high)
            colour = blackbody_rgb(kelvin)
            if kind == "SUN":
                energy = rng.uniform(lc.energy_sun.low, lc.energy_sun.high)
                size = math.radians(rng.uniform(0.5, 10))
            else:
                energy = rng.uniform(lc.energy_point_w.low, lc.energy_point_w.high) * (d / 3.0) ** 2
                size = rng.uniform(0.1, 1.5)
            lights.append(Light(kind=kind, location=loc, direction=direction, energy=float(energy),
                                color=colour, size=float(size)))
            info.append({"type": kind, "location": [round(float(x), 4) for x in loc],
                         "energy": round(float(energy), 3), "kelvin": round(float(kelvin), 1),
                         "size": round(float(size), 4)})
        if self.hdris and rng.random() < lc.hdri_probability:
            h = self.hdris[int(rng.integers(len(self.hdris)))]
            env = Environment(hdri_path=str(h), strength=float(rng.uniform(lc.hdri_strength.low, lc.hdri_strength.high)),
                              rotation_z=float(rng.uniform(0, 2 * math.pi)))
            env_info = {"type": "hdri", "id": str(h.relative_to(self.data_dir)), "strength": env.strength,
                        "rotation_z_deg": math.degrees(env.rotation_z)}
        else:
            g = float(rng.uniform(0.05, 0.4))
            tint = np.array(blackbody_rgb(rng.uniform(4000, 9000)))
            env = Environment(color=tuple(float(c) for c in g * tint))
            env_info = {"type": "uniform", "color": [round(float(c), 4) for c in g * tint]}
        if not lights and env.hdri_path is None:
            env = Environment(color=(0.6, 0.6, 0.6))   # never a black image
            env_info = {"type": "uniform", "color": [0.6, 0.6, 0.6]}
        return lights, env, {"lights": info, "environment": env_info}
