"""`synth render`: render a range of shards of a dataset, skipping complete ones.

One SceneSampler and one Renderer per process: the Blender scene is built once and updated per
sample. A sample that fails for a reason other than bad input (a degenerate pose, a Blender error)
is retried with a derived seed (attempt + 1) and counted in the shard's sidecar.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from synth.dataset.scene_sampler import SceneSampler
from synth.dataset.shards import (ShardWriter, complete_shards, encode_png, encode_rgb, sample_key,
                                  shard_name, write_or_check_meta, write_sidecar)
from synth.io_utils import InputError

log = logging.getLogger("synth.render")
STAGES = ["pose", "body", "texture", "scene_sample", "scene_update", "render", "readback", "composite",
          "encode", "write"]


def parse_shard_selection(num_shards: int, shard_index: int | None = None,
                          shard_range: str | None = None) -> list[int]:
    if shard_index is not None and shard_range is not None:
        raise InputError("--shard-index and --shard-range exclude each other")
    if shard_index is not None:
        if not 0 <= shard_index < num_shards:
            raise InputError(f"--shard-index {shard_index} is outside 0..{num_shards - 1}")
        return [shard_index]
    if shard_range is not None:
        try:
            a, b = (int(x) for x in shard_range.split(":"))
        except ValueError:
            raise InputError(f"--shard-range {shard_range!r} is not of the form A:B") from None
        if not 0 <= a < b <= num_shards:
            raise InputError(f"--shard-range {shard_range} must satisfy 0 <= A < B <= {num_shards}")
        return list(range(a, b))
    return list(range(num_shards))


def sample_labels(spec, key: str, attempt: int) -> dict:
    cam = spec.camera
    Xc, uv = cam.project(spec.body.joints.astype(np.float64))
    return {
        "key": key,
        "joints_3d_cam": Xc.tolist(),
        "joints_2d": uv.tolist(),
        "joints_3d_world": spec.body.joints.astype(np.float64).tolist(),
        "K": cam.K.tolist(),
        "cam_R": cam.R.tolist(),
        "cam_t": cam.t.tolist(),
        **spec.labels,
        "seed": spec.seed,
        "attempt": attempt,
    }


def render_shard(sampler: SceneSampler, renderer, out: Path, shard: int, cfg: dict,
                 progress: tqdm | None = None) -> dict:
    n = cfg["dataset"]["samples_per_shard"]
    rc = cfg["render"]
    writer = ShardWriter(out / "shards", shard)
    times = {s: 0.0 for s in STAGES}
    retries = 0
    failures: list[str] = []
    try:
        for i in range(n):
            key = sample_key(shard, i)
            for attempt in range(cfg["dataset"]["max_retries"] + 1):
                try:
                    spec, t_scene = sampler.scene(shard, i, attempt)
                    result = renderer.render(spec)
                    break
                except InputError:
                    raise
                except Exception as e:  # a degenerate sample or a Blender error: retry with a new seed
                    retries += 1
                    failures.append(f"{key} attempt {attempt}: {e.__class__.__name__}: {e}")
                    log.warning("sample %s attempt %d failed: %s", key, attempt, e)
            else:
                raise RuntimeError(f"{shard_name(shard)}: sample {key} failed {attempt + 1} times: {failures[-1]}")
            for k, v in {**t_scene, **result.timings}.items():
                times[k] = times.get(k, 0.0) + v
            t0 = time.perf_counter()
            labels = sample_labels(spec, key, attempt)
            members = {
                f"rgb.{rc['image_format']}": encode_rgb(result.rgb, rc["image_format"], rc["jpeg_quality"]),
                "mask.png": encode_png(result.mask),
                "parts.png": encode_png(result.parts),
                "depth.png": encode_png(result.depth_mm),
                "json": json.dumps(labels).encode(),
            }
            times["encode"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            writer.add(key, members)
            times["write"] += time.perf_counter() - t0
            if progress is not None:
                progress.update(1)
        t0 = time.perf_counter()
        writer.commit()
        times["write"] += time.perf_counter() - t0
    except BaseException:
        writer.abort()
        raise
    sidecar = {"shard": shard, "keys": writer.keys, "num_samples": len(writer.keys), "retries": retries,
               "failures": failures, "seconds_per_sample": {k: v / n for k, v in times.items()}}
    write_sidecar(out / "shards", shard, sidecar)
    return sidecar


def render_dataset(cfg: dict, out: Path, shards: list[int] | None = None, progress: bool = True,
                   threads: int = 0) -> dict:
    """Render the selected shards into `out` (all by default); returns a summary."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_or_check_meta(out, cfg)
    from synth.config import dump
    dump(cfg, out / "config.yaml")
    num = cfg["dataset"]["shards"]
    shards = list(range(num)) if shards is None else shards
    done = complete_shards(out)
    todo = [s for s in shards if s not in done]
    summary = {"requested": len(shards), "skipped_complete": len(shards) - len(todo), "rendered": [],
               "seconds": 0.0}
    if not todo:
        return summary
    t_start = time.perf_counter()
    sampler = SceneSampler(cfg)
    from synth.render import Renderer
    rc = cfg["render"]
    W, H = rc["image_size"]
    renderer = Renderer(W, H, samples=rc["samples"], denoise=rc["denoise"], device=rc["device"],
                        threads=threads)
    n = cfg["dataset"]["samples_per_shard"]
    bar = tqdm(total=len(todo) * n, desc="render", unit="sample", disable=not progress)
    stage_sum: dict[str, float] = {}
    try:
        for s in todo:
            side = render_shard(sampler, renderer, out, s, cfg, bar)
            summary["rendered"].append(s)
            for k, v in side["seconds_per_sample"].items():
                stage_sum[k] = stage_sum.get(k, 0.0) + v
    finally:
        bar.close()
        renderer.close()
    summary["seconds"] = time.perf_counter() - t_start
    summary["seconds_per_sample"] = {k: v / len(summary["rendered"]) for k, v in stage_sum.items()}
    return summary
