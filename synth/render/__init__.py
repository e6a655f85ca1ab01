"""Rendering with Blender/Cycles: the only package that imports bpy.

`synth.render.buffers` (scene checks, Blender buffers, compositing) is plain numpy and imports
without Blender, as does `synth.render.factory` (opening the configured Renderer, Cycles thread
counts); the Blender-backed names below are imported on first use, so a process that only
prepares or composites (e.g. the scene helper process) never loads bpy.
"""
from synth.render.factory import cycles_threads, local_worker_threads, open_renderer

_BLENDER_NAMES = ("DegenerateSceneError", "NoGpuError", "Renderer", "camera_intrinsics_to_blender",
                  "camera_matrix_world")

__all__ = list(_BLENDER_NAMES) + ["cycles_threads", "local_worker_threads", "open_renderer"]


def __getattr__(name: str):
    if name in _BLENDER_NAMES:
        from synth.render import blender_scene     # bpy: imported when a Blender name is first used
        return getattr(blender_scene, name)
    raise AttributeError(f"module 'synth.render' has no attribute {name!r}")
