"""`synth doctor [--device gpu|cpu]`: what a render node offers, checked by rendering.

Prints the Blender version, the GPU devices Cycles sees (OptiX/CUDA/..., names, whether OIDN
can denoise on them) with their memory (nvidia-smi), then renders one sample of the pipeline
(the configuration's image size, 256x256 by default) on the CPU and, where Cycles sees a GPU,
on the GPU, and compares the two (PSNR of the person's pixels, mask agreement) with their
timings. `--device gpu` on a machine where Cycles sees no GPU is one line and exit 2, before
anything is rendered; `--device cpu` renders on the CPU only. A GPU render that does not match
the CPU's is one line and exit 1.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from synth.config import Config, RenderConfig
from synth.io_utils import atomic_write_json

# A GPU and a CPU render of the same scene and seed differ only by floating-point detail and
# noise: below these the GPU path is broken (wrong colours, missing passes, a black image).
MIN_PSNR_DB = 25.0
MIN_MASK_IOU = 0.98


def nvidia_smi_gpus() -> list[dict]:
    """name, total and used memory (MiB) and driver of every GPU nvidia-smi lists; [] without it."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        text = subprocess.run(["nvidia-smi", "--query-gpu=index,name,memory.total,memory.used,driver_version",
                               "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 5:
            try:
                gpus.append({"index": int(parts[0]), "name": parts[1], "memory_total_mib": int(float(parts[2])),
                             "memory_used_mib": int(float(parts[3])), "driver": parts[4]})
            except ValueError:
                continue
    return gpus


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    d = a[where].astype(np.float64) - b[where].astype(np.float64)
    mse = float(np.mean(d * d)) if d.size else 0.0
    return float("inf") if mse == 0 else 10.0 * float(np.log10(255.0 ** 2 / mse))


def _render_on(render: RenderConfig, device: str, spec) -> dict:
    """One Renderer of the `render` section on `device`: built, the scene rendered twice (the
    first render loads kernels and builds the scene; the second is a worker's steady state),
    closed."""
    from synth.render.factory import available_cores, open_renderer
    t0 = time.perf_counter()
    # "cpu" / "gpu" are valid values of render.device, so the unvalidated copy is safe
    renderer = open_renderer(render.model_copy(update={"device": device}), available_cores())
    try:
        t_open = time.perf_counter() - t0
        prep = renderer.prepare(spec)
        t0 = time.perf_counter()
        first = renderer.render(spec)
        t_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = renderer.finish(renderer.render_passes(prep))
        t_again = time.perf_counter() - t0
        memory = nvidia_smi_gpus() if device == "gpu" else []
        return {"device": device, "backend": renderer.gpu_backend or "CPU", "denoiser": renderer.denoiser_device,
                "open_s": t_open, "first_render_s": t_first, "render_s": t_again,
                "render_only_s": again.timings["render"], "output": again, "deterministic":
                    bool(np.array_equal(first.rgb, again.rgb)), "gpu_memory_after": memory}
    finally:
        renderer.close()


def run_doctor(cfg: Config, device: str | None = None, json_path: Path | None = None, out=print) -> int:
    """The doctor's report (see the module docstring), one line at a time to `out`; returns the
    exit code. No GPU with `device="gpu"` raises NoGpuError (an InputError: one line, exit 2)."""
    from synth.render.devices import blender_version, cycles_gpu_devices
    gpus_seen = cycles_gpu_devices()
    if device == "gpu" and not gpus_seen:
        from synth.render import NoGpuError
        raise NoGpuError("--device gpu: no CUDA/OptiX GPU found (Cycles sees none; check the driver, "
                         "NVIDIA_DRIVER_CAPABILITIES and CUDA_VISIBLE_DEVICES, or use --device cpu)")
    from synth.dataset.executors import visible_gpus
    from synth.render.factory import available_cores
    report: dict = {"python": sys.version.split()[0], "blender": blender_version(), "cores": available_cores(),
                    "cuda_visible_devices": visible_gpus(), "cycles_gpu_devices": gpus_seen,
                    "nvidia_smi": nvidia_smi_gpus()}
    out(f"Blender {report['blender']}, Python {report['python']}, {report['cores']} CPU cores")
    if gpus_seen:
        for d in gpus_seen:
            out(f"Cycles device: {d['backend']:6s} {d['name']}  (id {d['id']}; OIDN on GPU: "
                f"{'yes' if d['oidn_on_gpu'] else 'no'}; OptiX denoiser: {'yes' if d['optix_denoiser'] else 'no'})")
    else:
        out("Cycles devices: no GPU (CPU only)")
    for g in report["nvidia_smi"]:
        out(f"nvidia-smi: GPU {g['index']} {g['name']}, {g['memory_total_mib']} MiB "
            f"({g['memory_used_mib']} MiB used), driver {g['driver']}")

    from synth.dataset.scene_sampler import SceneSampler
    W, H = cfg.render.image_size
    spec, _ = SceneSampler(cfg).scene(0, 0)
    devices = ["cpu"] if device == "cpu" or not gpus_seen else ["gpu", "cpu"]
    runs = {}
    for dev in devices:
        runs[dev] = _render_on(cfg.render, dev, spec)
        r = runs[dev]
        out(f"{dev.upper()} render {W}x{H}, {cfg.render.samples} samples (backend {r['backend']}, denoiser "
            f"{r['denoiser'] or 'off'}): open {r['open_s']:.2f} s, first render {r['first_render_s']:.2f} s, "
            f"then {r['render_s'] * 1000:.0f} ms per sample (Cycles {r['render_only_s'] * 1000:.0f} ms); "
            f"same pixels twice: {'yes' if r['deterministic'] else 'NO'}")
        if r["gpu_memory_after"]:
            out("GPU memory with the scene loaded: " + ", ".join(
                f"GPU {g['index']} {g['memory_used_mib']}/{g['memory_total_mib']} MiB" for g in r["gpu_memory_after"]))
    report["renders"] = {dev: {k: v for k, v in r.items() if k != "output"} for dev, r in runs.items()}
    code = 0
    if "gpu" in runs:
        g, c = runs["gpu"]["output"], runs["cpu"]["output"]
        person = (g.mask > 0) | (c.mask > 0)
        iou = float(((g.mask > 0) & (c.mask > 0)).sum() / max(int(person.sum()), 1))
        cmp = {"psnr_person_db": psnr(g.rgb, c.rgb, person), "psnr_image_db": psnr(g.rgb, c.rgb, np.ones_like(person)),
               "mask_iou": iou, "speedup": runs["cpu"]["render_s"] / runs["gpu"]["render_s"]}
        report["gpu_vs_cpu"] = cmp
        out(f"GPU vs CPU: PSNR {cmp['psnr_person_db']:.1f} dB on the person, {cmp['psnr_image_db']:.1f} dB on the "
            f"image; mask IoU {iou:.4f}; GPU {cmp['speedup']:.1f}x faster per sample")
        if cmp["psnr_person_db"] < MIN_PSNR_DB or iou < MIN_MASK_IOU:
            code = 1
            print(f"synth doctor: error: the GPU render differs from the CPU render (PSNR {cmp['psnr_person_db']:.1f} dB "
                  f"< {MIN_PSNR_DB} or mask IoU {iou:.4f} < {MIN_MASK_IOU})", file=sys.stderr)
    if json_path is not None:
        atomic_write_json(Path(json_path), json.loads(json.dumps(report, default=str)))
        out(f"report: {json_path}")
    return code

