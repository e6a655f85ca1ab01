"""Rendering with Blender/Cycles: the only package that imports bpy."""
from synth.render.blender_scene import (DegenerateSceneError, NoGpuError, Renderer, camera_intrinsics_to_blender,
                                        camera_matrix_world)

__all__ = ["DegenerateSceneError", "NoGpuError", "Renderer", "camera_intrinsics_to_blender", "camera_matrix_world"]
