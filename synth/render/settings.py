"""Cycles' render-cost settings (config `render.samples`, `render.denoise`, `render.cycles.*`), as
plain data: importable without Blender, applied by `synth.render.Renderer`.

What each costs and gains at 256x256 is measured by benchmarks/bench_render_levers.py (time per
sample, PSNR of the person's pixels against a 128-sample reference of the same scenes).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

DENOISE_QUALITIES = ("HIGH", "BALANCED", "FAST")
DENOISE_PREFILTERS = ("NONE", "FAST", "ACCURATE")


@dataclass(frozen=True)
class CyclesSettings:
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
    persistent_data: bool = True        # keep Cycles' scene between renders (dropped at each shard's start)

    def __post_init__(self):
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")
        if self.denoise_quality not in DENOISE_QUALITIES:
            raise ValueError(f"denoise_quality must be one of {DENOISE_QUALITIES}, got {self.denoise_quality!r}")
        if self.denoise_prefilter not in DENOISE_PREFILTERS:
            raise ValueError(f"denoise_prefilter must be one of {DENOISE_PREFILTERS}, got {self.denoise_prefilter!r}")

    @classmethod
    def from_config(cls, render_cfg: dict) -> "CyclesSettings":
        """From the `render` block: samples, denoise and the `cycles` sub-block."""
        cyc = render_cfg.get("cycles") or {}
        names = {f.name for f in fields(cls)}
        return cls(samples=int(render_cfg["samples"]), denoise=bool(render_cfg["denoise"]),
                   **{k: v for k, v in cyc.items() if k in names})

    def replace(self, **changes) -> "CyclesSettings":
        from dataclasses import replace
        return replace(self, **changes)
