"""Cycles' render-cost settings (config `render.samples`, `render.denoise`, `render.cycles.*`), as
plain data: importable without Blender, applied by `synth.render.Renderer`.

What each costs and gains at 256x256 is measured by benchmarks/bench_render_levers.py (time per
sample, PSNR of the person's pixels against a 128-sample reference of the same scenes).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import get_args

from synth.config import DenoisePrefilter, DenoiseQuality, RenderConfig

DENOISE_QUALITIES = get_args(DenoiseQuality)
DENOISE_PREFILTERS = get_args(DenoisePrefilter)


@dataclass(frozen=True)
class CyclesSettings:
    """The renderer's settings; the defaults are `RenderConfig()`'s (see render.cycles.* in
    synth/defaults.yaml for what each does)."""
    samples: int = 16
    denoise: bool = True
    adaptive_threshold: float = 0.0     # > 0: adaptive sampling stops a pixel at this noise level; 0: every pixel gets `samples`
    adaptive_min_samples: int = 0       # samples every pixel gets before adaptive sampling may stop it (0: Cycles' automatic choice)
    max_bounces: int = 4
    diffuse_bounces: int = 2
    glossy_bounces: int = 2
    transmission_bounces: int = 2
    transparent_bounces: int = 4
    denoise_quality: str = "HIGH"       # OpenImageDenoise: HIGH | BALANCED | FAST
    denoise_prefilter: str = "FAST"     # of the albedo/normal guides: NONE | FAST | ACCURATE
    denoise_on_gpu: bool = True         # with a GPU device: OIDN on the GPU where Cycles supports it
    tile_size: int = 0                  # 0: the whole image in one tile; else square tiles of this side
    persistent_data: bool = False       # keep Cycles' scene between renders (see config: off by default)

    def __post_init__(self):
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")
        if self.denoise_quality not in DENOISE_QUALITIES:
            raise ValueError(f"denoise_quality must be one of {DENOISE_QUALITIES}, got {self.denoise_quality!r}")
        if self.denoise_prefilter not in DENOISE_PREFILTERS:
            raise ValueError(f"denoise_prefilter must be one of {DENOISE_PREFILTERS}, got {self.denoise_prefilter!r}")

    @classmethod
    def from_config(cls, render: RenderConfig) -> "CyclesSettings":
        """From the `render` section: samples, denoise and every one of its `cycles` levers."""
        return cls(samples=render.samples, denoise=render.denoise, **render.cycles.model_dump())

    def replace(self, **changes) -> "CyclesSettings":
        return replace(self, **changes)
