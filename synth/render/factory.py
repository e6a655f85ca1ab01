"""Opening the Renderer a configuration asks for, and how many Cycles threads a worker gets.
Imports no bpy until a renderer is opened."""
from __future__ import annotations

import math
import os
from pathlib import Path

from synth.config import RenderConfig
from synth.render.settings import CyclesSettings


def open_renderer(render: RenderConfig, threads: int = 0):
    """The Renderer for the `render` section (one per process), `threads` Cycles CPU threads
    (0 = all cores), with the render-cost levers of `render.cycles`. No usable GPU for
    render.device=gpu raises NoGpuError, an InputError: one line, exit 2, not a crash."""
    from synth.render.blender_scene import Renderer      # bpy: loaded only by a process that renders
    return Renderer(render.width, render.height, device=render.device, threads=threads,
                    cycles=CyclesSettings.from_config(render))


def cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs this process's cgroup may use by quota (a Kubernetes or Docker CPU limit), or None:
    cgroup v2 `cpu.max` ("QUOTA PERIOD" or "max PERIOD"), else v1 `cpu/cpu.cfs_quota_us` and
    `cpu/cpu.cfs_period_us` (quota -1 = none)."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


def available_cores(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """The CPU cores this process may use: its affinity mask (a SLURM or container cpuset),
    bounded by its cgroup's CPU quota (a Kubernetes/Docker CPU limit does not change the mask,
    and Cycles' own count would see the whole node)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota(cgroup_root)
    if quota is not None:
        cores = min(cores, max(1, math.floor(quota + 1e-9)))
    return cores


def cycles_threads(requested: int, cpus: float) -> int:
    """Cycles threads of one worker: `requested` (--threads) when given, else the cores reserved
    for it (Ray's cpus_per_worker)."""
    return requested if requested > 0 else max(1, int(math.floor(cpus)))


def local_worker_threads(requested: int, workers: int) -> int:
    """Cycles threads of each of `workers` local worker processes: `requested` when given, else
    the cores this process may use (available_cores) shared out evenly."""
    return requested if requested > 0 else max(1, available_cores() // max(workers, 1))
