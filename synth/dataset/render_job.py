"""`synth render`: render a range of shards of a dataset, skipping complete ones.

One SceneSampler and one Renderer per process: the Blender scene is built once and updated per
sample. A sample that fails for a reason other than bad input (a degenerate pose, a Blender error)
is retried with a derived seed (attempt + 1) and counted in the shard's sidecar.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import threading
import time
from collections import deque
from contextlib import ExitStack, contextmanager
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from synth.dataset.scene_sampler import SceneSampler, render_inputs
from synth.dataset.shards import (ShardWriter, complete_shards, encode_png, encode_rgb, sample_key,
                                  shard_name, write_or_check_meta, write_sidecar)
from synth.io_utils import InputError, file_digest

log = logging.getLogger("synth.render")
STAGES = ["pose", "body", "texture", "scene_sample", "prepare", "scene_update", "render", "readback", "composite",
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


_STAGE_POOLS: tuple[int, ThreadPoolExecutor, ThreadPoolExecutor] | None = None
_STAGE_NICE = 10


def _init_stage_thread() -> None:
    """Set up a prepare/finish thread so that it only fills the render's idle moments.

    - nice +_STAGE_NICE: on a CPU node Cycles keeps every core busy, and the stage threads should
      fill the gaps (scene sync, denoising, readback) before they slow the render down.
    - torch's intra-op OpenMP team of one in this thread (the body's forward pass): a team of N
      runs N-1 helpers at normal priority that spin-wait after each op, time taken from Cycles.
      torch keeps the OpenMP thread count per thread, set on its first parallel op, so the
      first op is triggered here and then lowered; other threads keep theirs.
    """
    if hasattr(os, "setpriority"):
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + _STAGE_NICE)
        except OSError:
            pass
    import torch                                      # loaded already by the body model
    torch.get_num_threads()                           # torch's per-thread OpenMP setup, now
    threadpool_limits(1, user_api="openmp")           # then one thread for this thread's ops


@contextmanager
def single_threaded_helper_libraries():
    """OpenBLAS (numpy) and OpenCV at one thread while a shard renders, restored afterwards.

    Their thread pools run at normal priority and spin-wait after each call, so a stage thread's
    matrix product or resize took CPU from Cycles' threads. Measured on 2 cores at 256x256,
    pipeline/bare-render ratio: 0.887 with their default pools, 0.930 with one thread each
    (benchmarks/bench_throughput.py)."""
    threads_cv2 = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with threadpool_limits(1, user_api="blas"):
            yield
    finally:
        cv2.setNumThreads(threads_cv2)


def _stage_pools() -> tuple[ThreadPoolExecutor, ThreadPoolExecutor]:
    """The prepare and finish threads of this process, made once and kept for every shard (new
    threads per shard would each bring their own malloc arena, and RSS would creep)."""
    global _STAGE_POOLS
    if _STAGE_POOLS is None or _STAGE_POOLS[0] != os.getpid():     # threads do not survive a fork
        _STAGE_POOLS = (os.getpid(),
                        ThreadPoolExecutor(1, thread_name_prefix="synth-prepare", initializer=_init_stage_thread),
                        ThreadPoolExecutor(1, thread_name_prefix="synth-finish", initializer=_init_stage_thread))
    return _STAGE_POOLS[1], _STAGE_POOLS[2]


def encode_members(result, labels: dict, image_format: str, jpeg_quality: int) -> dict[str, bytes]:
    """A rendered sample's shard members (SPEC: rgb, mask, parts, depth, json)."""
    return {
        f"rgb.{image_format}": encode_rgb(result.rgb, image_format, jpeg_quality),
        "mask.png": encode_png(result.mask),
        "parts.png": encode_png(result.parts),
        "depth.png": encode_png(result.depth_mm),
        "json": json.dumps(labels).encode(),
    }


class _SampleFailed(Exception):
    """A sample's scene or render failed for a reason other than bad input: retry it."""


def render_shard(sampler: SceneSampler, renderer, out: Path, shard: int, cfg: dict,
                 progress: tqdm | None = None) -> dict:
    """Render one shard into a hidden temp file, renamed when complete; returns the sidecar
    (see _render_shard)."""
    with single_threaded_helper_libraries():
        return _render_shard(sampler, renderer, out, shard, cfg, progress)


def _render_shard(sampler: SceneSampler, renderer, out: Path, shard: int, cfg: dict,
                  progress: tqdm | None) -> dict:
    """Render one shard into a hidden temp file, renamed when complete; returns the sidecar.

    Three stages overlap: a `prepare` thread draws sample i+1's scene (pose, body, texture,
    camera, lights, background) and converts it for Blender, the calling thread updates Blender
    and renders sample i (bpy releases the GIL while Cycles renders), and a `finish` thread
    composites, encodes and writes sample i-1. Each stage runs in one thread, in sample order,
    and every random draw depends on (seed, shard, index, attempt) only, so the shard is the same
    as a sequential render's, byte for byte.
    """
    n = cfg["dataset"]["samples_per_shard"]
    max_retries = cfg["dataset"]["max_retries"]
    rc = cfg["render"]
    writer = ShardWriter(out / "shards", shard)
    times = {s: 0.0 for s in STAGES}
    retries = 0
    failures: list[str] = []
    prepare_pool, finish_pool = _stage_pools()

    def prepare(i: int, attempt: int):
        try:
            spec, t = sampler.scene(shard, i, attempt)
            t0 = time.perf_counter()
            prep = renderer.prepare(spec)
            t["prepare"] = time.perf_counter() - t0
            return prep, t
        except InputError:
            raise
        except Exception as e:  # noqa: BLE001 - a degenerate sample: retried with a new seed
            raise _SampleFailed(f"{e.__class__.__name__}: {e}") from e

    def finish(passes, prep, i: int, key: str, attempt: int, t_scene: dict) -> None:
        result = renderer.finish(passes)
        t0 = time.perf_counter()
        members = encode_members(result, sample_labels(prep.spec, key, attempt), rc["image_format"],
                                 rc["jpeg_quality"])
        timings = {**result.timings, "encode": time.perf_counter() - t0}
        t1 = time.perf_counter()
        writer.add(key, members)
        t_all = {**t_scene, **timings, "write": time.perf_counter() - t1}
        for k, v in t_all.items():
            times[k] = times.get(k, 0.0) + v
        if progress is not None:
            progress.update(1)

    finished: deque = deque()
    future = next_future = None
    t_start = time.perf_counter()
    renderer.reset_persistent_data()
    try:
        next_future = prepare_pool.submit(prepare, 0, 0) if n else None
        for i in range(n):
            key = sample_key(shard, i)
            future, next_future, attempt = next_future, None, 0
            while True:
                try:
                    prep, t_scene = future.result()
                    if next_future is None and i + 1 < n:   # draw the next scene while this one renders
                        next_future = prepare_pool.submit(prepare, i + 1, 0)
                    try:
                        passes = renderer.render_passes(prep)
                    except InputError:
                        raise
                    except Exception as e:  # noqa: BLE001 - a Blender error: retried with a new seed
                        raise _SampleFailed(f"{e.__class__.__name__}: {e}") from e
                    break
                except _SampleFailed as e:
                    retries += 1
                    failures.append(f"{key} attempt {attempt}: {e}")
                    log.warning("sample %s attempt %d failed: %s", key, attempt, e)
                    if attempt >= max_retries:
                        raise RuntimeError(f"{shard_name(shard)}: sample {key} failed {attempt + 1} times: "
                                           f"{failures[-1]}") from None
                    attempt += 1
                    future = prepare_pool.submit(prepare, i, attempt)
            finished.append(finish_pool.submit(finish, passes, prep, i, key, attempt, t_scene))
            # collect finished samples (raising their errors now); at most two wait, which bounds memory
            while finished and (finished[0].done() or len(finished) > 2):
                finished.popleft().result()
        while finished:
            finished.popleft().result()
        t0 = time.perf_counter()
        writer.commit()
        times["write"] += time.perf_counter() - t0
    except BaseException:
        for f in [future, next_future, *finished]:   # let the stage threads finish what they hold
            if f is not None and not f.cancel():
                try:
                    f.result()
                except BaseException:  # noqa: BLE001 - the first error is the one raised
                    pass
        writer.abort()
        raise
    wall = time.perf_counter() - t_start
    sidecar = {"shard": shard, "keys": writer.keys, "num_samples": len(writer.keys), "retries": retries,
               "failures": failures, "seconds_per_sample": {k: v / n for k, v in times.items()},
               "wall_seconds_per_sample": wall / max(n, 1)}
    write_sidecar(out / "shards", shard, sidecar)
    return sidecar


def open_renderer(cfg: dict, threads: int = 0):
    """The Renderer for `cfg` (one per process). No usable GPU for render.device=gpu is bad input
    (one line, exit 2), not a crash."""
    from synth.render import Renderer
    from synth.render.settings import CyclesSettings
    rc = cfg["render"]
    W, H = rc["image_size"]
    # no usable GPU raises NoGpuError, an InputError: one line, exit 2
    return Renderer(W, H, device=rc["device"], threads=threads, cycles=CyclesSettings.from_config(rc))


def dataset_identity(cfg: dict) -> dict:
    """The configuration that decides a dataset's content: all but the `executor` block, so a
    re-run (or another node of a job array) may use other workers and still add to the output."""
    return {k: v for k, v in cfg.items() if k != "executor"}


# Configuration keys that only say where inputs are. They are left out when a re-run's
# configuration is compared with an output's, and the files they point at are fingerprinted
# instead (input_fingerprints): render nodes may mount the data at different paths.
LOCATION_KEYS = ("data_dir", "cache_dir", "assets.mirror", "body.smplx_model_dir", "textures.library",
                 "dataset.pose_file", "train.real.folder")
# data_dir folders a render reads (cmu_mocap only when no pose file is given)
_RENDER_INPUT_FOLDERS = ("backgrounds", "clothing", "hdri")


def _listing_digest(root: Path, folders: tuple[str, ...]) -> str:
    """sha256 of the sorted 'relative path, size' lines of every file under root/folder: cheap
    (no file is read) and enough to tell another copy of the data from the same one."""
    h = hashlib.sha256()
    for folder in folders:
        base = root / folder
        files = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []
        for p in files:
            h.update(f"{p.relative_to(root).as_posix()}\t{p.stat().st_size}\n".encode())
    return h.hexdigest()


def input_fingerprints(cfg: dict) -> dict:
    """What the render reads through the LOCATION_KEYS, fingerprinted: the data directory's
    listing (backgrounds, clothing, HDRIs; MoCap when no pose file is given), the pose file's and
    the texture library index's sha256."""
    from synth.config import data_dir
    root = data_dir(cfg)
    pose_file = cfg["dataset"]["pose_file"]
    folders = _RENDER_INPUT_FOLDERS + (() if pose_file else ("cmu_mocap",))
    library = cfg["textures"]["library"] if cfg["render"]["clothing"]["mode"] == "library" else None
    index = Path(library) / "library.json" if library else None
    return {
        "data_listing_sha256": _listing_digest(root, folders),
        "pose_file_sha256": file_digest(Path(pose_file)) if pose_file and Path(pose_file).is_file() else None,
        "texture_library_sha256": file_digest(index) if index is not None and index.is_file() else None,
    }


def render_dataset(cfg: dict, out: Path, shards: list[int] | None = None, progress: bool = True,
                   threads: int = 0) -> dict:
    """Render the selected shards into `out` (all by default), skipping complete ones; returns a
    summary. `executor.kind`/`executor.workers`/`executor.workers_per_gpu` pick where: this
    process (one worker), worker processes on this machine (executors.plan_local_workers: K per
    GPU with render.device=gpu) or a Ray cluster (synth.dataset.executors)."""
    from synth.dataset import executors
    out = Path(out)
    ex = cfg["executor"]
    num = cfg["dataset"]["shards"]
    shards = list(range(num)) if shards is None else shards
    todo = [s for s in shards if s not in complete_shards(out)]
    with ExitStack() as stack:
        # a missing GPU (or Ray cluster) fails before anything is written: dataset.json records
        # render.device, so a failed GPU attempt must not pin the output to it
        renderer = ray_session = plan = None
        if ex["kind"] == "ray":
            ray_session = stack.enter_context(executors.ray_session(cfg))
            pooled = True
        else:
            plan = executors.plan_local_workers(cfg, threads)
            if len(plan.slots) > 1 and ex["workers"] == 0 and executors.inside_blender_binary():
                plan = executors.WorkerPlan(plan.slots[:1], plan.workers_per_gpu,
                                            "1 worker: a stand-alone Blender renders in its own process")
            pooled = len(plan.slots) > 1 and len(todo) > 1
        if progress and (ray_session is not None and ray_session.message or pooled):
            print(f"synth render: {ray_session.message if ray_session is not None else plan.message}",
                  file=sys.stderr)
        # in this process: Cycles gets the cores this process may use (a container's CPU limit
        # included; Cycles' own count would see the whole node)
        own_threads = threads if threads > 0 else executors.available_cores()
        if not pooled and cfg["render"]["device"] == "gpu":
            renderer = open_renderer(cfg, own_threads)
            stack.callback(renderer.close)
        out.mkdir(parents=True, exist_ok=True)
        render_inputs(cfg)        # missing data stops the run here, before dataset.json records it
        write_or_check_meta(out, dataset_identity(cfg), input_fingerprints(cfg), LOCATION_KEYS)
        from synth.config import dump
        dump(cfg, out / "config.yaml")
        summary = {"requested": len(shards), "skipped_complete": len(shards) - len(todo), "rendered": [],
                   "failed": {}, "seconds": 0.0, "executor": ex["kind"]}
        if not todo:
            return summary
        t_start = time.perf_counter()
        n = cfg["dataset"]["samples_per_shard"]
        bar = stack.enter_context(tqdm(total=len(todo) * n, desc="render", unit="sample",
                                       disable=not progress))
        sidecars: dict[int, dict] = {}
        if pooled:
            if ray_session is not None:
                result = executors.run_ray(ray_session, cfg, out, todo, threads, bar)
                summary["worker_plan"] = ray_session.message or f"{result.workers} Ray worker(s)"
            else:
                result = executors.run_local(cfg, out, todo, plan, bar)
                summary["worker_plan"] = plan.message
            sidecars = result.sidecars
            summary["workers"] = result.workers
            summary["worker_processes"] = result.worker_info
            summary["failed"] = {str(s): msg for s, msg in sorted(result.failed.items())}
            summary["shard_attempts"] = {str(s): a for s, a in sorted(result.attempts.items()) if a > 1}
            summary["shard_errors"] = result.errors
        else:
            if renderer is None:
                renderer = open_renderer(cfg, own_threads)
                stack.callback(renderer.close)
            sampler = SceneSampler(cfg)
            for s in todo:
                sidecars[s] = render_shard(sampler, renderer, out, s, cfg, bar)
            summary["workers"] = 1
    summary["rendered"] = sorted(sidecars)
    summary["sample_retries"] = sum(side["retries"] for side in sidecars.values())
    summary["seconds"] = time.perf_counter() - t_start
    stage_sum: dict[str, float] = {}
    for side in sidecars.values():
        for k, v in side["seconds_per_sample"].items():
            stage_sum[k] = stage_sum.get(k, 0.0) + v
    if sidecars:
        summary["seconds_per_sample"] = {k: v / len(sidecars) for k, v in stage_sum.items()}
    return summary
