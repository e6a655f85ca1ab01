"""Blender/Cycles renderer: turns a `SceneSpec` into a `RenderOutput`.

The Blender scene is built once per `Renderer` (and afresh at each shard's start,
`reset_persistent_data`) and updated per sample: one body mesh (topology
built on the first render, vertex positions replaced later), the meshes it wears (one object per
asset, synth.render.blender_worn), texture pixels replaced in place (two
images used in turn, see `_build_static_scene`), a pool of reused lights, one camera and one
world with cached HDRIs. bpy holds global state, so only one
`Renderer` may be alive in a process at a time (close() it, or use it as a context manager).

Readback: Cycles writes one uncompressed multilayer OpenEXR per render (Combined RGBA, Depth,
Material Index) into a private temp dir, read back with `synth.render.exr` (no compositor needed).

Outputs:
- parts: the Material Index pass (one material slot per part, pass_index = part id). Cycles writes
  this data pass from one sample per pixel, so it is not anti-aliased (the tests check that no
  blended ids appear at part/part and part/background edges).
- mask: 255 where parts > 0, so mask and parts agree exactly.
- depth_mm: Cycles' Depth pass, which is planar camera z (tests/test_render.py checks it with a
  fronto-parallel plane off the optical axis), in millimetres where parts > 0.
- rgb: the render's premultiplied linear RGBA composited over `SceneSpec.background` in linear
  light (background sRGB -> linear, out = C + (1 - A) * S * bg, -> sRGB). S is 1, or with a
  `SceneSpec.ground` the shadow factor of the ground plane, a Cycles shadow catcher (its Shadow
  Catcher pass). With a `SceneSpec.exposure` the person's colour C goes through a metered gain
  and a view transform (AgX) first (synth.render.buffers, synth.render.colour). The Combined pass in an
  EXR is scene-linear with no view transform; the Standard view transform is set anyway so that
  any display conversion Blender does is the plain sRGB curve.
"""
from __future__ import annotations

import ctypes
import logging
import math
import os
import shutil
import tempfile
import time
import weakref
from pathlib import Path

import bpy
import mathutils
import numpy as np

from synth.io_utils import InputError
from synth.render.buffers import (DegenerateSceneError, PreparedScene, RenderPasses, _is_rotation,
                                  composite_outputs, prepare_scene)
from synth.render.blender_worn import WornMeshes
from synth.render.exr import read_exr_channels
from synth.render.settings import CyclesSettings
from synth.scene import PARTS, RenderOutput, SceneSpec

log = logging.getLogger(__name__)

_LIGHT_KINDS = ("POINT", "AREA", "SUN", "SPOT")
_SENSOR_WIDTH_MM = 36.0
# Cycles' pixel filter (Blackman-Harris) width in pixels: small so the single-sample data passes
# (parts, depth) and the anti-aliased colour stay within a fraction of a pixel of each other.
_FILTER_WIDTH_PX = 0.5
_ROUGHNESS = 0.6
_SPOT_CONE_RAD = math.radians(60.0)   # Light has no cone angle; a wide fixed cone
_WORLD_MAP_RESOLUTION = 256
_GROUND_ALBEDO = 0.25

_active_renderer: "Renderer | None" = None


class NoGpuError(InputError):
    """--device gpu on a machine (or in a process) where Cycles sees no CUDA/OptiX device."""


def _release_free_heap() -> None:
    """Hand the C heap's free pages back to the system (glibc malloc_trim). Renders allocate and
    free large buffers; without this the freed pages stay resident and RSS creeps up with heap
    fragmentation over thousands of samples. A no-op where glibc is not the allocator."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (AttributeError, OSError):
        pass


class _QuietOutput:
    """Sends the process's stdout/stderr (fds 1 and 2) to a log file while Blender works, so its
    progress lines do not flood the console; error and warning lines are re-logged (the CUDA/HIP
    loader's "initialization failed" on machines without those drivers only at debug level)."""

    _EXPECTED_WITHOUT_GPU = ("CUEW initialization failed", "HIPEW initialization failed")

    def __init__(self, log_path: Path, remove: bool = False):
        self.log_path = log_path
        self.remove = remove
        self._libc = ctypes.CDLL(None)

    def __enter__(self):
        self._libc.fflush(None)
        self._file = open(self.log_path, "wb")
        self._saved = [os.dup(1), os.dup(2)]
        os.dup2(self._file.fileno(), 1)
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc):
        self._libc.fflush(None)
        os.dup2(self._saved[0], 1)
        os.dup2(self._saved[1], 2)
        for fd in self._saved:
            os.close(fd)
        self._file.close()
        text = self.log_path.read_text(errors="replace")
        if self.remove:
            self.log_path.unlink(missing_ok=True)
        for line in text.splitlines():
            low = line.lower()
            if "error" in low or "warning" in low:
                expected = any(s in line for s in self._EXPECTED_WITHOUT_GPU)
                log.log(logging.DEBUG if expected else logging.WARNING, "blender: %s", line.strip())
        return False


def _enable_gpu(scene) -> str:
    """Enable every OptiX (preferred) or CUDA device Cycles sees; CUDA_VISIBLE_DEVICES is honoured
    by the drivers themselves. Returns the backend name or raises RuntimeError."""
    prefs = bpy.context.preferences.addons["cycles"].preferences
    for backend in ("OPTIX", "CUDA"):
        try:
            prefs.compute_device_type = backend
        except TypeError:      # backend not compiled into this build
            continue
        prefs.refresh_devices()
        gpus = [d for d in prefs.devices if d.type == backend]
        if not gpus:
            continue
        for dev in prefs.devices:
            dev.use = dev.type == backend
        scene.cycles.device = "GPU"
        return backend
    prefs.compute_device_type = "NONE"
    raise NoGpuError("--device gpu: no CUDA/OptiX GPU found (Cycles sees none; "
                     "check the driver and CUDA_VISIBLE_DEVICES, or use --device cpu)")


def _rotation_looking_along(direction: np.ndarray) -> mathutils.Matrix:
    """Rotation whose local -Z (where Blender lights and cameras point) is `direction`."""
    d = np.asarray(direction, dtype=np.float64)
    n = np.linalg.norm(d)
    d = d / n if n > 1e-12 else np.array([0.0, 0.0, -1.0])
    z_axis = -d
    helper = np.array([0.0, 0.0, 1.0]) if abs(z_axis[2]) < 0.99 else np.array([0.0, 1.0, 0.0])
    x_axis = np.cross(helper, z_axis)
    x_axis /= np.linalg.norm(x_axis)
    y_axis = np.cross(z_axis, x_axis)
    return mathutils.Matrix(np.stack([x_axis, y_axis, z_axis], axis=1).tolist())


def camera_matrix_world(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """OpenCV world->camera (R, t) -> Blender camera object's 4x4 matrix_world.

    Blender cameras look along local -Z with +Y up, OpenCV cameras along +Z with +Y down, so the
    Blender camera axes in world coordinates are R^T @ diag(1, -1, -1); the centre is -R^T t."""
    R = np.asarray(R, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64).reshape(3)
    M = np.eye(4)
    M[:3, :3] = R.T @ np.diag([1.0, -1.0, -1.0])
    M[:3, 3] = -R.T @ t
    return M


def camera_intrinsics_to_blender(K: np.ndarray, width: int, height: int) -> dict:
    """OpenCV K -> Blender camera lens/sensor/shift (sensor_fit HORIZONTAL, square pixels).

    With a horizontal sensor fit Blender measures shifts in units of the image width, and its
    pixel centres sit at i + 0.5 while OpenCV's sit at i, so cx = (W - 1) / 2 is no shift; the
    image's v axis points down while Blender's shift_y points up."""
    K = np.asarray(K, dtype=np.float64)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    if abs(fx - fy) > 1e-4 * fx or abs(K[0, 1]) > 1e-9:
        raise InputError(f"camera K: non-square pixels or skew are not supported (fx={fx}, fy={fy}, skew={K[0, 1]})")
    return {
        "sensor_fit": "HORIZONTAL",
        "sensor_width": _SENSOR_WIDTH_MM,
        "lens": fx * _SENSOR_WIDTH_MM / width,
        "shift_x": ((width - 1) / 2.0 - cx) / width,
        "shift_y": (cy - (height - 1) / 2.0) / width,
    }


def _empty_node_tree(idblock):
    """The node tree of a new material or world, emptied of Blender's default nodes."""
    if idblock.node_tree is None:
        idblock.use_nodes = True
    nt = idblock.node_tree
    for node in list(nt.nodes):
        nt.nodes.remove(node)
    return nt

class Renderer:
    """Cycles renderer for `SceneSpec`s at a fixed image size. See the module docstring."""

    def __init__(self, width: int, height: int, samples: int = 16, denoise: bool = True,
                 device: str = "cpu", threads: int = 0, cycles: CyclesSettings | None = None):
        """`cycles` (render-cost settings) overrides `samples` and `denoise` when given."""
        global _active_renderer
        if _active_renderer is not None:
            raise RuntimeError("a Renderer is already open in this process (bpy is global state); close() it first")
        if device not in ("cpu", "gpu"):
            raise ValueError(f"device must be 'cpu' or 'gpu', not {device!r}")
        settings = cycles if cycles is not None else CyclesSettings(samples=samples, denoise=denoise)
        if width < 1 or height < 1:
            raise ValueError(f"bad render size: {width}x{height}")
        self.width, self.height = int(width), int(height)
        self._closed = False
        self.device, self._threads, self.settings = device, threads, settings
        self._persist_after_render = False
        self._tmpdir = Path(tempfile.mkdtemp(prefix="synth-render-"))
        self._exr_path = self._tmpdir / "render.exr"
        # The temp dir goes even if the caller never closes the Renderer.
        self._tmp_finalizer = weakref.finalize(self, shutil.rmtree, str(self._tmpdir), True)
        try:
            self._new_scene()
        except BaseException:
            self._tmp_finalizer()
            raise
        _active_renderer = self

    def _new_scene(self) -> None:
        """Blender's factory state, then this renderer's settings and static scene (~0.2 s)."""
        device = self.device
        with _QuietOutput(Path(tempfile.gettempdir()) / f"synth-render-init-{os.getpid()}.log", remove=True):
            bpy.ops.wm.read_factory_settings(use_empty=True)
            scene = bpy.context.scene
            self.scene = scene
            scene.render.engine = "CYCLES"
            self.gpu_backend = _enable_gpu(scene) if device == "gpu" else None
            if device == "cpu":
                scene.cycles.device = "CPU"
            # Cycles probes its devices (and prints about missing CUDA/HIP) on first use.
            scene.cycles.denoiser = "OPENIMAGEDENOISE"
        self._configure_render(self._threads)
        self.apply_settings(self.settings)     # the latest settings applied (apply_settings keeps them)
        self._build_static_scene()

        self._mesh_obj = None
        self._mesh_key = None          # (faces, face_uvs, face_parts) of the current topology
        self._lights: list = []
        self._hdri_cache: dict[str, bpy.types.Image] = {}

    # ---------------------------------------------------------------- setup
    def _configure_render(self, threads: int) -> None:
        scene = self.scene
        r = scene.render
        r.resolution_x, r.resolution_y, r.resolution_percentage = self.width, self.height, 100
        r.pixel_aspect_x = r.pixel_aspect_y = 1.0
        r.film_transparent = True
        r.use_compositing = False
        r.use_sequencer = False
        r.threads_mode = "FIXED" if threads > 0 else "AUTO"
        if threads > 0:
            r.threads = threads
        r.filepath = str(self._exr_path)
        r.use_file_extension = False
        fmt = r.image_settings
        fmt.media_type = "MULTI_LAYER_IMAGE"     # Blender 5.0: multilayer EXR is a media type
        fmt.file_format = "OPEN_EXR_MULTILAYER"
        fmt.color_depth = "32"
        fmt.exr_codec = "NONE"             # read back with the tiny reader in synth.render.exr
        fmt.use_exr_interleave = True      # one part with all channels, not Blender 5's multi-part
        scene.view_settings.view_transform = "Standard"
        scene.view_settings.look = "None"
        scene.view_settings.exposure = 0.0
        scene.view_settings.gamma = 1.0

        c = scene.cycles
        c.use_animated_seed = False
        c.pixel_filter_type = "BLACKMAN_HARRIS"
        c.filter_width = _FILTER_WIDTH_PX
        c.volume_bounces = 0
        c.caustics_reflective = False
        c.caustics_refractive = False
        c.sample_clamp_indirect = 10.0       # fireflies from a few samples

        vl = scene.view_layers[0]
        vl.use_pass_combined = True
        vl.use_pass_z = True
        vl.use_pass_material_index = True
        # the ground plane's caught shadow, as a factor for the background (synth.render.buffers
        # shadow_factor); with the pass on, the Combined pass leaves the catcher out (alpha 0 there)
        vl.cycles.use_pass_shadow_catcher = True

    def apply_settings(self, settings: CyclesSettings) -> None:
        """Samples, denoising, bounces, adaptive sampling, tiles and persistent data (see
        synth.render.settings); takes effect from the next render."""
        c, r = self.scene.cycles, self.scene.render
        c.samples = settings.samples
        # adaptive sampling off: the same cost and noise for every sample; on: Cycles stops each
        # pixel once its noise is below the threshold (render.samples is then the cap)
        c.use_adaptive_sampling = settings.adaptive_threshold > 0
        if settings.adaptive_threshold > 0:
            c.adaptive_threshold = settings.adaptive_threshold
            c.adaptive_min_samples = settings.adaptive_min_samples     # 0: Cycles' automatic minimum
        c.use_denoising = bool(settings.denoise)
        if settings.denoise:
            c.denoiser = "OPENIMAGEDENOISE"
            c.denoising_input_passes = "RGB_ALBEDO_NORMAL"
            c.denoising_prefilter = settings.denoise_prefilter
            c.denoising_quality = settings.denoise_quality
            c.denoising_use_gpu = bool(settings.denoise_on_gpu and self.device == "gpu")
        # where OIDN runs: on the GPU when asked and Cycles' devices support it, else on the CPU
        self.denoiser_device = None
        if settings.denoise:
            on_gpu = (c.denoising_use_gpu and
                      bpy.context.preferences.addons["cycles"].preferences.has_oidn_gpu_devices())
            self.denoiser_device = "GPU" if on_gpu else "CPU"
        c.max_bounces = settings.max_bounces
        c.diffuse_bounces = settings.diffuse_bounces
        c.glossy_bounces = settings.glossy_bounces
        c.transmission_bounces = settings.transmission_bounces
        c.transparent_max_bounces = settings.transparent_bounces
        c.use_auto_tile = settings.tile_size > 0
        if settings.tile_size > 0:
            c.tile_size = settings.tile_size
        if r.use_persistent_data != settings.persistent_data:
            # keep Cycles' scene between renders (only deltas resync); see reset_persistent_data
            r.use_persistent_data = settings.persistent_data
        self.settings = settings

    def _build_static_scene(self) -> None:
        scene = self.scene
        # Camera
        cam_data = bpy.data.cameras.new("camera")
        cam_data.clip_start = 0.01
        cam_data.clip_end = 1000.0
        self._camera = bpy.data.objects.new("camera", cam_data)
        scene.collection.objects.link(self._camera)
        scene.camera = self._camera

        # Texture and the shared shader (a node group used by one material per part)
        # Two texture images used in turn: with persistent data Cycles keeps an image it already
        # holds and never re-reads its pixels, but it drops an image no shader uses any more, so
        # switching the node to the other image makes Cycles load the new pixels.
        self._textures = []
        for i in range(2):
            img = bpy.data.images.new(f"body_texture_{i}", 4, 4, alpha=False, float_buffer=False)
            img.colorspace_settings.name = "sRGB"
            self._textures.append(img)
        group = bpy.data.node_groups.new("body_shader", "ShaderNodeTree")
        group.interface.new_socket(name="Shader", in_out="OUTPUT", socket_type="NodeSocketShader")
        uv = group.nodes.new("ShaderNodeUVMap")
        uv.uv_map = "UVMap"
        tex = group.nodes.new("ShaderNodeTexImage")
        tex.image = self._textures[0]
        self._texture_node = tex
        tex.interpolation = "Linear"
        tex.extension = "EXTEND"
        bsdf = group.nodes.new("ShaderNodeBsdfPrincipled")
        bsdf.inputs["Roughness"].default_value = _ROUGHNESS
        out = group.nodes.new("NodeGroupOutput")
        group.links.new(uv.outputs["UV"], tex.inputs["Vector"])
        group.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
        group.links.new(bsdf.outputs["BSDF"], out.inputs["Shader"])
        self._materials = []
        for part_id, part_name in enumerate(PARTS, start=1):
            mat = bpy.data.materials.new(f"part_{part_id:02d}_{part_name}")
            nt = _empty_node_tree(mat)
            gnode = nt.nodes.new("ShaderNodeGroup")
            gnode.node_tree = group
            mout = nt.nodes.new("ShaderNodeOutputMaterial")
            nt.links.new(gnode.outputs["Shader"], mout.inputs["Surface"])
            mat.pass_index = part_id
            self._materials.append(mat)

        # World: environment texture (rotated by a Mapping node) or a uniform colour
        world = bpy.data.worlds.new("world")
        scene.world = world
        nt = _empty_node_tree(world)
        coord = nt.nodes.new("ShaderNodeTexCoord")
        self._world_mapping = nt.nodes.new("ShaderNodeMapping")
        self._world_env = nt.nodes.new("ShaderNodeTexEnvironment")
        self._world_bg = nt.nodes.new("ShaderNodeBackground")
        wout = nt.nodes.new("ShaderNodeOutputWorld")
        nt.links.new(coord.outputs["Generated"], self._world_mapping.inputs["Vector"])
        nt.links.new(self._world_mapping.outputs["Vector"], self._world_env.inputs["Vector"])
        nt.links.new(self._world_bg.outputs["Background"], wout.inputs["Surface"])
        # Cycles rebuilds the world's importance map on each render that touches shaders; at the
        # automatic resolution (1024 for a 1k HDRI) that costs ~2 s on 2 cores, at 256 ~nothing.
        world.cycles.sampling_method = "MANUAL"
        world.cycles.sample_map_resolution = _WORLD_MAP_RESOLUTION
        self._world = world
        # garments, shoes, hair... (synth.render.blender_worn)
        self._worn = WornMeshes(scene, _empty_node_tree)
        self._build_ground()

    def _build_ground(self) -> None:
        """A unit square (scaled and placed per sample) that is a Cycles shadow catcher: the camera
        sees through it, the shadows on it go to the Shadow Catcher pass. Its material index is 0
        (background), so it never enters the parts, mask or depth."""
        mesh = bpy.data.meshes.new("ground")
        mesh.from_pydata([(-0.5, -0.5, 0.0), (0.5, -0.5, 0.0), (0.5, 0.5, 0.0), (-0.5, 0.5, 0.0)], [], [(0, 1, 2, 3)])
        mesh.update()
        mat = bpy.data.materials.new("ground")
        nt = _empty_node_tree(mat)
        bsdf = nt.nodes.new("ShaderNodeBsdfDiffuse")
        # (the camera sees through a catcher; its colour is only what it would bounce)
        bsdf.inputs["Color"].default_value = (*[_GROUND_ALBEDO] * 3, 1.0)
        mout = nt.nodes.new("ShaderNodeOutputMaterial")
        nt.links.new(bsdf.outputs["BSDF"], mout.inputs["Surface"])
        mat.pass_index = 0
        mesh.materials.append(mat)
        self._ground = bpy.data.objects.new("ground", mesh)
        self._ground.is_shadow_catcher = True
        # seen by the camera only, so the body is lit the same with and without the ground (no
        # bounce off it, no light it blocks from below). Cycles drops a catcher that no secondary
        # ray sees (no shadow is caught, measured), so it stays visible to volume scattering
        # rays, which never occur here: the scene has no volumes.
        for ray in ("diffuse", "glossy", "transmission", "shadow"):
            setattr(self._ground, f"visible_{ray}", False)
        self._ground.visible_volume_scatter = True
        self.scene.collection.objects.link(self._ground)

    # ---------------------------------------------------------------- per-sample updates
    def _update_mesh(self, prep: PreparedScene) -> None:
        verts, faces, face_uvs, face_parts = prep.vertices, prep.faces, prep.face_uvs, prep.face_parts
        key = self._mesh_key
        same_topology = (self._mesh_obj is not None and len(verts) == 3 * len(self._mesh_obj.data.vertices)
                         and key is not None and np.array_equal(key[0], faces))
        if not same_topology:
            self._build_mesh(verts, faces, face_uvs, face_parts)
            return
        mesh = self._mesh_obj.data
        # the "position" attribute takes the array in one copy; vertices' "co" goes through
        # per-vertex RNA access (measured: 0.02 vs 1.24 ms for the 14k-vertex body, same pixels)
        mesh.attributes["position"].data.foreach_set("vector", verts)
        if not np.array_equal(key[1], face_uvs):
            mesh.uv_layers["UVMap"].data.foreach_set("uv", face_uvs.ravel())
        if not np.array_equal(key[2], face_parts):
            mesh.polygons.foreach_set("material_index", face_parts.astype(np.int32) - 1)
        self._mesh_key = (faces, face_uvs.copy(), face_parts.copy())
        mesh.update()

    def _build_mesh(self, verts, faces, face_uvs, face_parts) -> None:
        mesh = bpy.data.meshes.new("body")
        mesh.vertices.add(len(verts) // 3)
        mesh.vertices.foreach_set("co", verts)
        mesh.loops.add(faces.size)
        mesh.loops.foreach_set("vertex_index", faces.ravel())
        mesh.polygons.add(len(faces))
        mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
        uv_layer = mesh.uv_layers.new(name="UVMap")
        uv_layer.data.foreach_set("uv", face_uvs.ravel())
        for mat in self._materials:
            mesh.materials.append(mat)
        mesh.polygons.foreach_set("material_index", face_parts.astype(np.int32) - 1)
        mesh.update()
        mesh.shade_smooth()
        if self._mesh_obj is None:
            self._mesh_obj = bpy.data.objects.new("body", mesh)
            self.scene.collection.objects.link(self._mesh_obj)
        else:
            old = self._mesh_obj.data
            self._mesh_obj.data = mesh
            bpy.data.meshes.remove(old)      # no orphan meshes: memory stays flat
        self._mesh_key = (faces.copy(), face_uvs.copy(), face_parts.copy())

    def _update_texture(self, prep: PreparedScene) -> None:
        w, h = prep.texture_size
        img = self._textures[1] if self._texture_node.image == self._textures[0] else self._textures[0]
        if tuple(img.size) != (w, h):
            img.scale(w, h)
        img.pixels.foreach_set(prep.texture_rgba)
        img.update()
        self._texture_node.image = img

    def _update_camera(self, camera) -> None:
        if (camera.width, camera.height) != (self.width, self.height):
            raise InputError(f"camera is {camera.width}x{camera.height} but the renderer is {self.width}x{self.height}")
        R = np.asarray(camera.R, dtype=np.float64)
        if R.shape != (3, 3) or not _is_rotation(R):
            raise DegenerateSceneError("camera R: not a rotation matrix")
        self._camera.matrix_world = mathutils.Matrix(camera_matrix_world(R, camera.t).tolist())
        cam = self._camera.data
        for name, value in camera_intrinsics_to_blender(camera.K, self.width, self.height).items():
            setattr(cam, name, value)

    def _update_lights(self, lights) -> None:
        while len(self._lights) < len(lights):
            data = bpy.data.lights.new(f"light_{len(self._lights)}", "POINT")
            obj = bpy.data.objects.new(data.name, data)
            self.scene.collection.objects.link(obj)
            self._lights.append(obj)
        for obj, spec in zip(self._lights, lights):
            kind = str(spec.kind).upper()
            if kind not in _LIGHT_KINDS:
                raise InputError(f"light kind {spec.kind!r} is not one of {_LIGHT_KINDS}")
            if obj.data.type != kind:
                obj.data.type = kind
            data = obj.data                  # re-fetch: the RNA subtype follows the type
            data.energy = float(spec.energy)
            data.color = tuple(float(c) for c in spec.color)
            size = float(spec.size)
            if kind == "AREA":
                data.shape = "SQUARE"
                data.size = size
            elif kind == "SUN":
                data.angle = size
            else:
                data.shadow_soft_size = size
                if kind == "SPOT":
                    data.spot_size = _SPOT_CONE_RAD
                    data.spot_blend = 0.3
            M = _rotation_looking_along(spec.direction).to_4x4()
            M.translation = mathutils.Vector([float(x) for x in np.asarray(spec.location).reshape(3)])
            obj.matrix_world = M
            obj.hide_render = False
        for obj in self._lights[len(lights):]:
            obj.hide_render = True

    def _update_ground(self, ground) -> None:
        if ground is None:
            # parked, 1 mm wide, 1 m behind the camera, where no camera ray goes (and no other ray
            # sees it), instead of hidden: a catcher that comes and goes between renders switches
            # Cycles' shadow-catcher features, and a render then depended on the process's
            # history (measured: a shard rendered after another differed, up to 33/255)
            back = np.asarray(self._camera.matrix_world.col[2][:3], dtype=np.float64)     # camera +Z: backwards
            where = np.asarray(self._camera.matrix_world.translation, dtype=np.float64) + back
            self._ground.matrix_world = mathutils.Matrix.LocRotScale(
                mathutils.Vector(where.tolist()), None, mathutils.Vector((1e-3, 1e-3, 1.0)))
            return
        x0, y0, x1, y1 = (float(c) for c in ground.extent)
        if not (np.isfinite([x0, y0, x1, y1, float(ground.height)]).all() and x1 > x0 and y1 > y0):
            raise InputError(f"ground: extent {ground.extent} must be finite with x1 > x0, y1 > y0 "
                             f"(height {ground.height})")
        self._ground.matrix_world = mathutils.Matrix.LocRotScale(
            mathutils.Vector((0.5 * (x0 + x1), 0.5 * (y0 + y1), float(ground.height))), None,
            mathutils.Vector((x1 - x0, y1 - y0, 1.0)))

    def _update_world(self, env) -> None:
        nt = self._world.node_tree
        bg = self._world_bg
        link = next((l for l in nt.links if l.to_socket == bg.inputs["Color"]), None)
        if env.hdri_path:
            path = str(Path(env.hdri_path).resolve())
            img = self._hdri_cache.get(path)
            if img is None:
                if not os.path.isfile(path):
                    raise InputError(f"{path}: HDRI file not found")
                img = bpy.data.images.load(path, check_existing=True)
                if img.size[0] == 0 or img.size[1] == 0:     # Cycles would log and render without it
                    bpy.data.images.remove(img)
                    raise InputError(f"{path}: unreadable HDRI (not a Radiance/EXR image Blender can load)")
                self._hdri_cache[path] = img
            if self._world_env.image != img:
                self._world_env.image = img
            # Mapping rotates the lookup direction; rotating it by -a turns the environment by +a.
            self._world_mapping.inputs["Rotation"].default_value = (0.0, 0.0, -float(env.rotation_z))
            if link is None:
                nt.links.new(self._world_env.outputs["Color"], bg.inputs["Color"])
        else:
            if link is not None:
                nt.links.remove(link)
            bg.inputs["Color"].default_value = (*[float(c) for c in env.color], 1.0)
        bg.inputs["Strength"].default_value = float(env.strength)

    def reset_persistent_data(self) -> None:
        """Start again from a fresh scene: Cycles' persistent data (kept between renders for
        speed) and everything the scene gathered go (the body mesh, the worn meshes' objects, the
        pooled lights, the loaded HDRIs, which texture image is in use). A render with persistent
        data depends slightly on the scene rendered before it (measured: up to 25/255 on a
        2-sample render), and so does one in a scene whose objects were made in another order
        (lights pooled in an earlier shard, then worn meshes made after them: up to 22/255 at
        96x96, 4 samples). So a render loop calls this before each shard's first sample: a shard's
        pixels then depend on the shard alone, not on what its worker rendered before. It costs
        ~0.2 s (Blender's factory reset and the static scene), plus reloading the HDRIs a shard
        uses."""
        if self._closed:
            raise RuntimeError("Renderer is closed")
        self._new_scene()
        # Cycles' persistent session lives in the render slot, which a factory reset keeps (a
        # render after a reset depended on the shards before it, up to 14/255 at 48x48 with worn
        # meshes): the first render after a reset runs with persistent data off, which frees
        # that session, and later renders keep their own
        if self.scene.render.use_persistent_data:
            self.scene.render.use_persistent_data = False
            self._persist_after_render = True
        _release_free_heap()

    # ---------------------------------------------------------------- render
    def prepare(self, scene: SceneSpec) -> PreparedScene:
        """Check `scene` and convert its arrays for Blender. Thread-safe: no bpy calls."""
        return prepare_scene(scene, self.width, self.height)

    def render_passes(self, prep: PreparedScene) -> RenderPasses:
        """Update the Blender scene, render, read the passes back. Main thread only."""
        if self._closed:
            raise RuntimeError("Renderer is closed")
        scene = prep.spec
        timings = {}
        t0 = time.perf_counter()
        self._update_camera(scene.camera)
        self._update_mesh(prep)
        self._worn.update(prep)
        self._update_texture(prep)
        self._update_lights(scene.lights)
        self._update_world(scene.environment)
        self._update_ground(scene.ground)
        self.scene.cycles.seed = int(scene.seed) & 0x7FFFFFFF
        t1 = time.perf_counter()
        timings["scene_update"] = t1 - t0

        if self._exr_path.exists():
            self._exr_path.unlink()
        with _QuietOutput(self._tmpdir / "blender.log"):
            result = bpy.ops.render.render(write_still=True)
        if "FINISHED" not in result or not self._exr_path.exists():
            raise RuntimeError(f"Cycles render failed ({result}); see {self._tmpdir / 'blender.log'}")
        if self._persist_after_render:
            self.scene.render.use_persistent_data = True
            self._persist_after_render = False
        t2 = time.perf_counter()
        timings["render"] = t2 - t1

        channels = read_exr_channels(self._exr_path)
        timings["readback"] = time.perf_counter() - t2
        return RenderPasses(channels=channels, background=np.asarray(scene.background), timings=timings,
                            ground=scene.ground, exposure=scene.exposure, camera=scene.camera)

    def finish(self, passes: RenderPasses) -> RenderOutput:
        """Composite the passes into the outputs. Thread-safe: no bpy calls."""
        t0 = time.perf_counter()
        out = composite_outputs(passes.channels, passes.background, passes.ground, passes.exposure,
                                passes.camera)
        out.timings = {**passes.timings, "composite": time.perf_counter() - t0}
        return out

    def render(self, scene: SceneSpec) -> RenderOutput:
        """prepare + render_passes + finish, in this thread."""
        t0 = time.perf_counter()
        prep = self.prepare(scene)
        t_prep = time.perf_counter() - t0
        out = self.finish(self.render_passes(prep))
        out.timings["scene_update"] += t_prep
        return out

    # ---------------------------------------------------------------- lifetime
    def close(self) -> None:
        global _active_renderer
        if self._closed:
            return
        self._closed = True
        if _active_renderer is self:
            _active_renderer = None
        self._tmp_finalizer()
        # Drop the scene, meshes, images and Cycles' persistent data.
        bpy.ops.wm.read_factory_settings(use_empty=True)

    def __enter__(self) -> "Renderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
