"""What Blender/Cycles offers on this machine: its version and the GPU devices Cycles sees (for
`synth doctor`). Probing devices loads the CUDA/OptiX/HIP/oneAPI drivers that exist; their
loaders' complaints on machines without them are kept off the console."""
from __future__ import annotations

import tempfile
from pathlib import Path

import bpy

from synth.render.blender_scene import _QuietOutput

GPU_BACKENDS = ("OPTIX", "CUDA", "HIP", "ONEAPI", "METAL")


def blender_version() -> str:
    build = bpy.app.build_hash
    build = build.decode() if isinstance(build, bytes) else str(build)
    return f"{bpy.app.version_string} (build {build})"


def cycles_gpu_devices() -> list[dict]:
    """Every non-CPU device Cycles can use, per backend: name, backend, id, whether
    OpenImageDenoise can run on it and whether it has the OptiX denoiser."""
    import _cycles          # Cycles' module, registered by bpy
    found = []
    log = Path(tempfile.gettempdir()) / "synth-doctor-devices.log"
    with _QuietOutput(log, remove=True):
        for backend in GPU_BACKENDS:
            try:
                devices = _cycles.available_devices(backend)
            except (RuntimeError, ValueError, TypeError):   # backend not compiled into this build
                continue
            for d in devices:
                if d[1] == "CPU":
                    continue
                found.append({"name": d[0], "backend": d[1], "id": d[2],
                              "oidn_on_gpu": bool(d[5]) if len(d) > 5 else False,
                              "optix_denoiser": bool(d[6]) if len(d) > 6 else False})
    return found
