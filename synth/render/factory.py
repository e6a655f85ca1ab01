"""Opening the Renderer a configuration asks for, and how many Cycles threads a worker gets.
Imports no bpy until a renderer is opened."""
from __future__ import annotations

import math
import os

from synth.config import RenderConfig


def open_renderer(render: RenderConfig, threads: int = 0):
    """The Renderer for the `render` section (one per process), `threads` Cycles CPU threads
    (0 = all cores). No usable GPU for render.device=gpu raises NoGpuError, an InputError: one
    line, exit 2, not a crash."""
    from synth.render.blender_scene import Renderer      # bpy: loaded only by a process that renders
    return Renderer(render.width, render.height, samples=render.samples, denoise=render.denoise,
                    device=render.device, threads=threads)


def cycles_threads(requested: int, cpus: float) -> int:
    """Cycles threads of one worker: `requested` (--threads) when given, else the cores reserved
    for it (Ray's cpus_per_worker)."""
    return requested if requested > 0 else max(1, int(math.floor(cpus)))


def local_worker_threads(requested: int, workers: int) -> int:
    """Cycles threads of each of `workers` local worker processes: `requested` when given, else
    the machine's cores shared out evenly."""
    return requested if requested > 0 else max(1, (os.cpu_count() or 1) // max(workers, 1))
