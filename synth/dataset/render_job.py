"""`synth render`: render a range of shards of a dataset, skipping complete ones.

One SceneSampler and one Renderer per process: the Blender scene is built once and updated per
sample. A sample that fails for a reason other than bad input (a degenerate pose, a Blender error)
is retried with a derived seed (attempt + 1) and counted in the shard's sidecar.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import warnings
from collections import deque
from contextlib import ExitStack, contextmanager
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from synth.config import Config, save_config
from synth.dataset import executors
from synth.dataset.card import write_card
from synth.dataset.identity import input_fingerprints, software_difference, software_versions
from synth.dataset.locking import ShardBusy
from synth.dataset.occluders import composite_foreground, person_labels
from synth.dataset.readers import write_wids_index
from synth.dataset.scene_sampler import SceneSampler, render_inputs
from synth.dataset.shards import (ShardWriter, check_meta_unchanged, claim_shard, dataset_lock, discard_damaged,
                                  encode_png, encode_rgb, inspect_shards, sample_key, shard_name,
                                  write_or_check_meta, write_sidecar)
from synth.dataset.verify import verify_render_inputs
from synth.io_utils import InputError
from synth.render.factory import available_cores, open_renderer

log = logging.getLogger("synth.render")
STAGES = ["pose", "body", "fit", "texture", "scene_sample", "prepare", "scene_update", "render", "readback", "composite",
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


def finish_labels(result, spec, key: str, attempt: int):
    """The render with the scene's foreground (an occluder) laid over it, and the sample's labels:
    `sample_labels` plus the per-joint flags and boxes of the final layers (occluders.person_labels)
    and `occluder` (null without one)."""
    occluder = None
    if spec.foreground is not None:
        result, occluder = composite_foreground(result, spec.foreground)
    labels = sample_labels(spec, key, attempt)
    labels.update(person_labels(np.asarray(labels["joints_3d_cam"]), np.asarray(labels["joints_2d"]),
                                result.mask, result.parts))
    labels["occluder"] = occluder
    if result.exposure_gain is not None and isinstance(labels.get("exposure"), dict):
        # the gain metered on the render itself (known only after it): what the person's linear
        # colour was multiplied by before the view transform, in stops
        labels["exposure"] = {**labels["exposure"], "gain_stops": round(float(np.log2(result.exposure_gain)), 4)}
    return result, labels


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
    import torch            # loaded already by the body model; imported here only to set this thread up
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


def render_shard(sampler: SceneSampler, renderer, out: Path, shard: int, cfg: Config,
                 progress: tqdm | None = None, wait: bool = True, software: dict | None = None) -> dict:
    """Render one shard into a hidden temp file, renamed when complete; returns the sidecar
    (see _render_shard). The shard's lock is held meanwhile (synth.dataset.locking): another
    live writer of it makes this one wait (ShardBusy at once when not `wait`), and a shard that
    writer completed is not rendered again. When the shard is committed, dataset.json must still
    record this process's inputs (and, when given, its `software` versions): another run may
    have taken over an output that had no complete shard."""
    guard = partial(check_meta_unchanged, out, input_fingerprints(cfg), software)
    with claim_shard(out / "shards", shard, wait, cfg.executor.stall_timeout_s, guard) as claim:
        if claim.sidecar is not None:
            if progress is not None:
                progress.update(cfg.dataset.samples_per_shard)
            return claim.sidecar
        with single_threaded_helper_libraries():
            return _render_shard(sampler, renderer, out, shard, cfg, progress, claim)


def _render_shard(sampler: SceneSampler, renderer, out: Path, shard: int, cfg: Config,
                  progress: tqdm | None, claim=None) -> dict:
    """Render one shard into a hidden temp file, renamed when complete; returns the sidecar.

    Three stages overlap: a `prepare` thread draws sample i+1's scene (pose, body, texture,
    camera, lights, background) and converts it for Blender, the calling thread updates Blender
    and renders sample i (bpy releases the GIL while Cycles renders), and a `finish` thread
    composites, encodes and writes sample i-1. Each stage runs in one thread, in sample order,
    and every random draw depends on (seed, shard, index, attempt) only, so the shard is the same
    as a sequential render's, byte for byte.
    """
    n = cfg.dataset.samples_per_shard
    max_retries = cfg.dataset.max_retries
    rc = cfg.render
    writer = ShardWriter(out / "shards", shard, claim)
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
        result, labels = finish_labels(result, prep.spec, key, attempt)
        result.timings["composite"] = result.timings.get("composite", 0.0) + time.perf_counter() - t0
        t0 = time.perf_counter()
        members = encode_members(result, labels, rc.image_format, rc.jpeg_quality)
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
               "wall_seconds_per_sample": wall / max(n, 1), **writer.record}
    write_sidecar(out / "shards", shard, sidecar)
    return sidecar


class ShardJob:
    """One worker's SceneSampler and Renderer, built on its first shard (so that a start-up
    error, e.g. no GPU, is reported as that shard's error rather than as a dead worker). The
    executors (synth.dataset.executors) build one per worker process and call `warm`, `render`
    and `close`; it travels to the worker pickled (spawn, Ray)."""

    def __init__(self, cfg: Config, out: str, threads: int, allow_version_mismatch: bool = False):
        self.cfg, self.out, self.threads = cfg, Path(out), threads
        self.allow_version_mismatch = allow_version_mismatch
        self.sampler = None
        self.renderer = None

    def warm(self) -> dict:
        """Import the render path (torch, anny, bpy: seconds) before a worker says it is ready, so
        that no shard waits on a worker that is still starting; returns what the worker runs with
        (executors.describe_worker: pid, CUDA_VISIBLE_DEVICES, Cycles threads)."""
        import synth.render.blender_scene  # noqa: F401  (bpy: loaded in the worker, not the driver)
        return executors.describe_worker(self.threads)

    def render(self, shard: int, progress) -> dict:
        if self.renderer is None:
            self._check_versions()
            self.renderer = open_renderer(self.cfg.render, self.threads)
            self.sampler = SceneSampler(self.cfg)
        return render_shard(self.sampler, self.renderer, self.out, shard, self.cfg, progress,
                            software=None if self.allow_version_mismatch else software_versions())

    def _check_versions(self) -> None:
        """A worker (e.g. a Ray node) whose software differs from the dataset's is bad input."""
        path = self.out / "dataset.json"
        if self.allow_version_mismatch or not path.is_file():
            return
        try:
            recorded = json.loads(path.read_text()).get("software")
        except (OSError, json.JSONDecodeError):
            return
        diff = software_difference(recorded, software_versions())
        if diff is not None:
            raise InputError(f"{path}: this worker (pid {os.getpid()}) runs other software ({diff}); use the "
                             "same versions on every node, or --allow-version-mismatch")

    def fresh(self) -> "ShardJob":
        """A new job with the same settings (a fresh Blender scene after a failed shard)."""
        self.close()
        return ShardJob(self.cfg, str(self.out), self.threads, self.allow_version_mismatch)

    def close(self) -> None:
        if self.renderer is not None:
            self.renderer.close()
            self.renderer = None


def publish(out: Path, cfg: Config) -> None:
    """Write the wids index and the dataset card from the shards complete now. Under the
    dataset's lock: of writers finishing at once, the last to write has seen every shard the
    others completed (each file is written atomically either way)."""
    with dataset_lock(out):
        write_wids_index(out)
        write_card(out, cfg)


def render_dataset(cfg: Config, out: Path, shards: list[int] | None = None, progress: bool = True,
                   threads: int = 0, allow_version_mismatch: bool = False, verify: bool = False) -> dict:
    """Render the selected shards into `out` (all by default), skipping complete ones; returns a
    summary. `executor.kind`/`executor.workers`/`executor.workers_per_gpu` pick where: this
    process (one worker), worker processes on this machine (executors.plan_local_workers: K per
    GPU with render.device=gpu) or a Ray cluster (synth.dataset.executors).
    `out` gets dataset.json (identity, inputs and software checked against an earlier run's:
    synth.dataset.identity), config.yaml, the dataset card README.md and the wids index.

    Complete shards are checked against their sidecars (size; sha256 too with `verify`) and a
    damaged one is rendered again. The files dataset.json fingerprints are decoded before it is
    written, so a broken one stops the run before the output is tied to it; an output without a
    complete shard (and no live writer) takes new inputs or software instead of refusing them."""
    out = Path(out)
    ex = cfg.executor
    # in this process: Cycles gets the cores this process may use (a container's CPU limit
    # included; Cycles' own count would see the whole node)
    own_threads = threads if threads > 0 else available_cores()
    with ExitStack() as stack:
        # a missing GPU (or Ray cluster) fails before anything is written: dataset.json records
        # render.device, so a failed GPU attempt must not pin the output to it
        renderer = ray_session = plan = None
        if ex.kind == "ray":
            ray_session = stack.enter_context(executors.ray_session(cfg))
        else:
            plan = executors.plan_local_workers(cfg, threads)
            if len(plan.slots) > 1 and ex.workers == 0 and executors.inside_blender_binary():
                plan = executors.WorkerPlan(plan.slots[:1], plan.workers_per_gpu,
                                            "1 worker: a stand-alone Blender renders in its own process")
            if len(plan.slots) == 1 and cfg.render.device == "gpu":
                renderer = open_renderer(cfg.render, own_threads)
                stack.callback(renderer.close)
        out.mkdir(parents=True, exist_ok=True)
        inputs = render_inputs(cfg)   # missing data stops the run here, before dataset.json records it
        software = software_versions()
        with dataset_lock(out):       # one run at a time checks (and writes) dataset.json
            write_or_check_meta(out, cfg, input_fingerprints(cfg), software, allow_version_mismatch,
                                before_write=partial(verify_render_inputs, cfg, inputs))
            save_config(cfg, out / "config.yaml")
        num = cfg.dataset.shards
        shards = list(range(num)) if shards is None else shards
        done, damaged = inspect_shards(out, shards, digest=verify)
        for s, problem in sorted(damaged.items()):
            if discard_damaged(out, s):
                warnings.warn(f"{out / 'shards' / shard_name(s)}.tar: {problem}; rendering it again", stacklevel=2)
        todo = [s for s in shards if s not in done]
        # a pool for two shards or more; one shard renders in this process
        pooled = ray_session is not None or (len(plan.slots) > 1 and len(todo) > 1)
        if progress and (ray_session is not None and ray_session.message or pooled):
            print(f"synth render: {ray_session.message if ray_session is not None else plan.message}",
                  file=sys.stderr)
        summary = {"requested": len(shards), "skipped_complete": len(shards) - len(todo), "rendered": [],
                   "failed": {}, "seconds": 0.0, "executor": ex.kind}
        if damaged:
            summary["damaged_rendered_again"] = sorted(damaged)
        publish(out, cfg)             # the card, and an index without the shards discarded above
        if not todo:
            return summary
        t_start = time.perf_counter()
        n = cfg.dataset.samples_per_shard
        bar = stack.enter_context(tqdm(total=len(todo) * n, desc="render", unit="sample",
                                       disable=not progress))
        sidecars: dict[int, dict] = {}
        if pooled:
            job = ShardJob(cfg, str(out), threads, allow_version_mismatch)
            if ray_session is not None:
                result = executors.run_ray(ray_session, cfg, job, todo, bar)
                summary["worker_plan"] = ray_session.message or f"{result.workers} Ray worker(s)"
            else:
                result = executors.run_local(cfg, job, todo, plan, bar)
                summary["worker_plan"] = plan.message
            sidecars = result.sidecars
            summary["workers"] = result.workers
            summary["worker_processes"] = result.worker_info
            summary["failed"] = {str(s): msg for s, msg in sorted(result.failed.items())}
            summary["shard_attempts"] = {str(s): a for s, a in sorted(result.attempts.items()) if a > 1}
            summary["shard_errors"] = result.errors
        else:
            if renderer is None:
                renderer = open_renderer(cfg.render, own_threads)
                stack.callback(renderer.close)
            sampler = SceneSampler(cfg)
            # a shard another live writer holds goes to the back of the queue; once only such
            # shards are left, this process waits for them (and renders one whose writer died)
            pending, busy = deque(todo), 0
            while pending:
                s = pending.popleft()
                try:
                    sidecars[s] = render_shard(sampler, renderer, out, s, cfg, bar, wait=busy >= len(pending),
                                               software=None if allow_version_mismatch else software)
                    busy = 0
                except ShardBusy:
                    pending.append(s)
                    busy += 1
            summary["workers"] = 1
    by_others = sorted(s for s, side in sidecars.items() if side.get("completed_by_another_writer"))
    if by_others:
        summary["completed_by_another_writer"] = by_others
        sidecars = {s: side for s, side in sidecars.items() if s not in by_others}
    publish(out, cfg)
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
