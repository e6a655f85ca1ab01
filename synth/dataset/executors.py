"""Spread a dataset's shards over worker processes: `local` (processes on this machine) or `ray`
(a Ray cluster, started here or joined with an address).

A shard is the unit of work. Each worker holds one job (synth.dataset.render_job.ShardJob, handed
in by the caller and pickled to the worker: this module imports no render code), which builds one
SceneSampler and one Renderer on its first shard and renders whole shards with `render_shard`,
which writes a hidden temporary tar and renames it when complete. A shard's content depends only on (configuration, seed, shard index),
so which worker renders it does not matter and a shard rendered again after a failure is the
same shard. A shard whose worker raised or died is handed to a fresh worker up to
`executor.shard_retries` more times, then reported as failed; bad input (`InputError`) stops the
whole run, since every other shard would fail the same way.

GPUs: with render.device=gpu the local pool gives each worker one CUDA_VISIBLE_DEVICES
(`plan_local_workers`: K = executor.workers_per_gpu workers per GPU, round robin, or disjoint
sets of executor.gpus_per_worker GPUs) and its share of the cores as Cycles threads; on Ray a
worker asks for num_gpus = 1/K (`ray_gpus_per_worker`) and Ray sets its CUDA_VISIBLE_DEVICES.

Progress: workers report each finished sample (local: over a pipe per worker; Ray: to a small
progress actor), and the driver shows one bar of samples across all workers, with shards done.
"""
from __future__ import annotations

import copy
import ctypes
import logging
import math
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_connections
from pathlib import Path

from tqdm import tqdm

from synth.config import Config
from synth.io_utils import InputError
from synth.render.factory import available_cores, cycles_threads

log = logging.getLogger("synth.render")

# environment a Ray worker (started by its node, not by this process) gets from the driver
_PASSED_ENV = ("SYNTH_DATA", "SYNTH_CACHE", "ANNY_CACHE_DIR")


@dataclass
class RunResult:
    """What an executor did with the shards it was given."""
    sidecars: dict[int, dict]          # shard -> sidecar of the attempt that completed it
    failed: dict[int, str]             # shard -> last error, after all attempts
    attempts: dict[int, int]           # shard -> attempts made (1 = first try succeeded)
    errors: list[str]                  # every failed attempt, "shard N attempt k: ..."
    workers: int
    worker_info: list[dict] = field(default_factory=list)   # describe_worker() of each worker started


# ------------------------------------------------------------------------------------ helpers
def visible_gpus() -> list[str]:
    """The GPU ids this process may use: CUDA_VISIBLE_DEVICES when set (empty = none), else the
    GPUs `nvidia-smi -L` lists. [] when there are none or they cannot be listed."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        ids = [d.strip() for d in env.split(",") if d.strip()]
        # CUDA stops at the first invalid id (e.g. -1, the usual way to hide all GPUs)
        out = []
        for d in ids:
            if d.startswith("-"):
                break
            out.append(d)
        return out
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        text = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(l for l in text.splitlines() if l.startswith("GPU "))]


def _no_gpu_message() -> str:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    where = (f"CUDA_VISIBLE_DEVICES={env!r}" if env is not None
             else "nvidia-smi lists none" if shutil.which("nvidia-smi") else "no nvidia-smi on PATH")
    return f"--device gpu: no GPU visible to this process ({where}); use --device cpu or a GPU node"


def inside_blender_binary() -> bool:
    """True inside a stand-alone Blender (not the bpy module): its bundled python cannot start
    `synth` worker processes (its sys.executable has no bpy module)."""
    bpy = sys.modules.get("bpy")
    return bpy is not None and bool(getattr(getattr(bpy, "app", None), "binary_path", ""))


def _refuse_inside_blender_binary(what: str) -> None:
    """Farms run one Blender per shard range instead (see inside_blender_binary)."""
    if inside_blender_binary():
        raise InputError(f"{what} cannot start worker processes inside a stand-alone Blender; run one "
                         "Blender per shard (--shard-index/--shard-range, e.g. a job array) instead")


# Cores one GPU render worker keeps busy. Its three stage threads (scene drawing | Blender's
# update, sync and readback | compositing, encoding, writing) take about 40 ms of CPU per sample
# together at 256x256, the longest about 20 ms (benchmarks/bench_cpu_side.py): a worker whose GPU
# renders in no time makes up to ~50 samples/s on two cores, and a third core would idle.
GPU_WORKER_CORES = 2
# Four such workers feed a GPU ~200 samples/s, 5 ms of GPU time per sample: more than a GPU
# renders 256x256 bodies at 16 samples with denoising (tens of ms each), so a fifth worker would
# only add its Blender scene (~1 GB of host memory) and its CUDA context.
MAX_AUTO_WORKERS_PER_GPU = 4


def auto_workers_per_gpu(cores: int, n_gpus: int) -> tuple[int, str]:
    """K = max(1, min(MAX_AUTO_WORKERS_PER_GPU, cores // (GPUs x GPU_WORKER_CORES))), and why."""
    k = max(1, min(MAX_AUTO_WORKERS_PER_GPU, cores // (max(1, n_gpus) * GPU_WORKER_CORES)))
    return k, (f"{k} per GPU (auto: {cores} cores // ({n_gpus} GPU(s) x {GPU_WORKER_CORES} cores per GPU worker), "
               f"1 to {MAX_AUTO_WORKERS_PER_GPU}; --workers-per-gpu K to choose)")


@dataclass(frozen=True)
class WorkerSlot:
    """What one local worker process gets: its CUDA_VISIBLE_DEVICES (None: inherited, for CPU
    renders) and its Cycles CPU threads."""
    gpus: str | None
    threads: int


@dataclass
class WorkerPlan:
    slots: list[WorkerSlot]
    workers_per_gpu: int | None      # None for CPU renders and multi-GPU workers
    message: str                     # one line: what was picked and why


def plan_local_workers(cfg: Config, threads: int = 0, gpus: list[str] | None = None,
                       cores: int | None = None) -> WorkerPlan:
    """The local pool's workers for `cfg`: how many, each one's CUDA_VISIBLE_DEVICES and Cycles
    threads. `gpus` (default: visible_gpus()) and `cores` (default: available_cores()) are the
    node's; InputError (one line) when the GPUs cannot hold the asked workers.

    - render.device=cpu: executor.workers processes (at least 1), cores split among them.
    - render.device=gpu, executor.gpus_per_worker = N > 1: disjoint sets of N GPUs per worker.
    - render.device=gpu, one GPU per worker: K = executor.workers_per_gpu workers share each GPU
      (0 = auto: from --workers when given, else auto_workers_per_gpu), given out round robin
      (worker i gets GPU i mod G, so fewer workers than K x G still spread over every GPU).
    Cycles threads per worker: `threads` when > 0, else cores // workers (at least 1).
    """
    ex = cfg.executor
    cores = available_cores() if cores is None else cores
    asked = ex.workers

    def split(n: int) -> int:
        return threads if threads > 0 else max(1, cores // n)

    if cfg.render.device != "gpu":
        n = max(1, asked)
        return WorkerPlan([WorkerSlot(None, split(n))] * n, None,
                          f"{n} worker process(es) on the CPU, {split(n)} Cycles thread(s) each")
    gpus = visible_gpus() if gpus is None else list(gpus)
    if not gpus:
        raise InputError(_no_gpu_message())
    per = int(ex.gpus_per_worker)      # a whole number with executor.kind=local (Config checks it)
    k = ex.workers_per_gpu             # > 1 only with one GPU per worker (Config checks it)
    if per > 1:
        fit = len(gpus) // per
        n = asked or max(1, fit)
        if n * per > len(gpus):
            raise InputError(f"--device gpu: {n} workers x {per} GPU(s) each need {n * per} GPUs but "
                             f"{len(gpus)} are visible ({','.join(gpus)}); use --workers {max(1, fit)}")
        slots = [WorkerSlot(",".join(gpus[i * per:(i + 1) * per]), split(n)) for i in range(n)]
        return WorkerPlan(slots, None, f"{n} worker(s) with {per} GPUs each, {split(n)} Cycles thread(s) each")
    if k >= 1:
        why = f"{k} per GPU (executor.workers_per_gpu)"
    elif asked:
        k = math.ceil(asked / len(gpus))
        why = f"{k} per GPU (--workers {asked} over {len(gpus)} GPU(s))"
    else:
        k, why = auto_workers_per_gpu(cores, len(gpus))
    n = asked or k * len(gpus)
    if n > k * len(gpus):
        need = math.ceil(n / k)
        raise InputError(f"--device gpu: {n} workers at {k} per GPU need {need} GPUs but {len(gpus)} are visible "
                         f"({','.join(gpus)}); use --workers {k * len(gpus)} or --workers-per-gpu "
                         f"{math.ceil(n / len(gpus))}")
    slots = [WorkerSlot(gpus[i % len(gpus)], split(n)) for i in range(n)]
    return WorkerPlan(slots, k, f"{n} worker(s) on {len(gpus)} GPU(s) ({','.join(gpus)}): {why}; "
                                f"{split(n)} Cycles CPU thread(s) each")


def describe_worker(threads: int) -> dict:
    """What a worker process runs with: its pid, the GPUs it may use (CUDA_VISIBLE_DEVICES as its
    environment has it) and its Cycles CPU threads (0 = Cycles' own choice)."""
    return {"pid": os.getpid(), "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "threads": threads}


class _Scheduler:
    """Driver-side book-keeping shared by both executors: the queue of shards, attempts,
    retries, failures and the progress bar."""

    def __init__(self, shards: list[int], samples_per_shard: int, retries: int, bar: tqdm,
                 stall_timeout_s: float = 0.0):
        self.pending = deque(shards)
        self.stall_timeout_s = stall_timeout_s
        self.last_change: dict[int, float] = {}  # shard -> when its attempt started or last finished a sample
        self.retries = retries
        self.n = samples_per_shard
        self.bar = bar
        self.total_shards = len(shards)
        self.attempts = {s: 0 for s in shards}
        self.sidecars: dict[int, dict] = {}
        self.failed: dict[int, str] = {}
        self.errors: list[str] = []
        self.in_flight: dict[int, int] = {}     # shard -> samples finished in its current attempt

    def next_shard(self) -> int:
        s = self.pending.popleft()
        self.attempts[s] += 1
        self.in_flight[s] = 0
        self.last_change[s] = time.monotonic()
        return s

    def progress(self, shard: int, samples: int) -> None:
        if shard in self.in_flight:
            if samples != self.in_flight[shard]:
                self.last_change[shard] = time.monotonic()
            self.in_flight[shard] = samples
            self._refresh()

    def stalled(self, shard: int) -> str | None:
        """Why `shard`'s attempt counts as hung (no sample finished for executor.stall_timeout_s,
        the worker's set-up included), or None."""
        if not self.stall_timeout_s or shard not in self.in_flight:
            return None
        idle = time.monotonic() - self.last_change[shard]
        if idle < self.stall_timeout_s:
            return None
        return (f"no sample finished for {idle:.0f} s (executor.stall_timeout_s={self.stall_timeout_s:g}) "
                f"after {self.in_flight[shard]} of {self.n}")

    def done(self, shard: int, sidecar: dict) -> None:
        self.in_flight.pop(shard, None)
        self.sidecars[shard] = sidecar
        self._refresh()

    def attempt_failed(self, shard: int, message: str) -> None:
        self.in_flight.pop(shard, None)
        line = f"shard {shard} attempt {self.attempts[shard]}: {message}"
        self.errors.append(line)
        if self.attempts[shard] <= self.retries:
            log.warning("%s; rendering it again", line)
            self.pending.append(shard)
        else:
            log.error("%s; giving up on it", line)
            self.failed[shard] = message
        self._refresh()

    def _refresh(self) -> None:
        self.bar.n = len(self.sidecars) * self.n + sum(self.in_flight.values())
        self.bar.set_postfix_str(f"shards {len(self.sidecars)}/{self.total_shards}"
                                 + (f", retried {sum(a > 1 for a in self.attempts.values())}"
                                    if any(a > 1 for a in self.attempts.values()) else "")
                                 + (f", failed {len(self.failed)}" if self.failed else ""), refresh=False)
        self.bar.refresh()

    def result(self, workers: int, worker_info: list[dict] | None = None) -> RunResult:
        return RunResult(self.sidecars, self.failed, {s: a for s, a in self.attempts.items() if a},
                         self.errors, workers, list(worker_info or []))


# -------------------------------------------------------------------------------- local pool
class _PipeProgress:
    """render_shard's progress sink in a local worker: sends the shard's sample count."""

    def __init__(self, conn, shard: int):
        self.conn, self.shard, self.count = conn, shard, 0

    def update(self, k: int = 1) -> None:
        self.count += k
        self.conn.send(("progress", self.shard, self.count))


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker when the driver dies (even by SIGKILL), so a killed
    run leaves no orphan rendering on; the shard it held stays a hidden partial."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _local_worker(conn, job, parent_pid: int) -> None:
    _die_with_parent()
    if os.getppid() != parent_pid:      # the driver died before prctl took effect
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)      # Ctrl-C is the driver's to handle
    # the driver's stdout carries its result only: what this worker's libraries print (Warp's
    # banner, Blender) goes to stderr
    sys.stdout.flush()
    os.dup2(2, 1)
    try:
        conn.send(("ready", None, job.warm()))
    except Exception as e:
        conn.send(("start_error", None, f"{e.__class__.__name__}: {e}"))
        os._exit(1)
    state = job
    try:
        while True:
            shard = conn.recv()
            if shard is None:
                break
            try:
                sidecar = state.render(shard, _PipeProgress(conn, shard))
                conn.send(("done", shard, sidecar))
            except InputError as e:
                conn.send(("input_error", shard, str(e)))
            except Exception as e:
                log.debug("shard %d failed:\n%s", shard, traceback.format_exc())
                conn.send(("error", shard, f"{e.__class__.__name__}: {e}"))
                state = state.fresh()          # a fresh Blender scene for the next shard
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass
    finally:
        state.close()
    # Everything is committed and the renderer closed: skip the interpreter's teardown of bpy,
    # torch and warp, which takes seconds.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _shadows_bpy_module(path: str) -> bool:
    """True for Blender's scripts/modules folder (put on sys.path by `import bpy`), whose Python
    `bpy` package needs Blender's built-in `_bpy` and so shadows the bpy module elsewhere."""
    return os.path.isfile(os.path.join(path, "bpy", "__init__.py"))


class _LocalWorker:
    def __init__(self, ctx, job, slot: WorkerSlot):
        gpus = slot.gpus
        job = copy.copy(job)             # this worker's copy (pickled to it), with its own threads
        job.threads = slot.threads
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_local_worker, args=(child, job, os.getpid()), daemon=True)
        saved = os.environ.get("CUDA_VISIBLE_DEVICES")
        saved_path = list(sys.path)
        try:
            if gpus is not None:     # the child inherits the environment at start
                os.environ["CUDA_VISIBLE_DEVICES"] = gpus
            # spawn hands the child this process's sys.path; once bpy is imported it holds
            # Blender's own scripts/modules, whose `bpy` package would shadow the bpy module there
            sys.path[:] = [p for p in sys.path if not _shadows_bpy_module(p)]
            self.proc.start()
        finally:
            sys.path[:] = saved_path
            if gpus is not None:
                if saved is None:
                    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
                else:
                    os.environ["CUDA_VISIBLE_DEVICES"] = saved
        child.close()
        self.job, self.slot = job, slot
        self.info: dict | None = None      # describe_worker() as the worker reported it
        self.ready = False                 # True once it has imported the render path
        self.shard: int | None = None
        self.hung: str | None = None       # why it was killed as hung

    def stop(self, kill: bool = False) -> None:
        if self.conn.closed:
            return
        if kill:
            if self.proc.is_alive():
                self.proc.kill()
        else:
            try:
                self.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        self.proc.join(timeout=None if not kill else 30)
        self.conn.close()


def start_local_workers(job, slots: list[WorkerSlot]) -> list[_LocalWorker]:
    """One worker process per slot, each with a copy of `job` given the slot's Cycles threads and
    started with the slot's CUDA_VISIBLE_DEVICES (spawned: bpy, torch and threads do not survive
    a fork)."""
    ctx = mp.get_context("spawn")
    return [_LocalWorker(ctx, job, slot) for slot in slots]


def run_local(cfg: Config, job, shards: list[int], plan: WorkerPlan, bar: tqdm) -> RunResult:
    """Render `shards` with the worker processes of `plan` (plan_local_workers) on this machine,
    each with a copy of `job` (a ShardJob: warm / render / fresh / close) given its slot's GPU and
    Cycles threads."""
    _refuse_inside_blender_binary("--workers > 1")
    ex = cfg.executor
    sched = _Scheduler(shards, cfg.dataset.samples_per_shard, ex.shard_retries, bar, ex.stall_timeout_s)
    ctx = mp.get_context("spawn")       # no fork: bpy, torch and threads do not survive it
    n_workers = min(len(plan.slots), len(shards))
    pool = [_LocalWorker(ctx, job, slot) for slot in plan.slots[:n_workers]]
    started: list[dict] = []            # describe_worker() of every worker that became ready
    fatal: str | None = None
    start_deaths = 0
    try:
        while fatal is None and (sched.pending or any(w.shard is not None for w in pool)):
            for w in pool:
                if w.ready and w.shard is None and sched.pending and not w.conn.closed:
                    w.shard = sched.next_shard()
                    try:
                        w.conn.send(w.shard)
                    except (BrokenPipeError, OSError):
                        pass           # found dead below
            live = [w for w in pool if not w.conn.closed]
            wait_connections([w.conn for w in live] + [w.proc.sentinel for w in live], timeout=1.0)
            for i, w in enumerate(pool):
                if w.conn.closed:              # died earlier, when no shard was left to give it
                    continue
                died = False
                try:
                    while w.conn.poll():
                        kind, shard, payload = w.conn.recv()
                        if kind == "ready":
                            w.ready = True
                            w.info = payload
                            started.append(payload)
                            start_deaths = 0
                        elif kind == "progress":
                            sched.progress(shard, payload)
                        elif kind == "done":
                            sched.done(shard, payload)
                            w.shard = None
                        elif kind in ("input_error", "start_error"):
                            fatal = payload if kind == "input_error" else f"a worker could not start: {payload}"
                            w.shard = None
                        else:
                            sched.attempt_failed(shard, payload)
                            w.shard = None
                except (EOFError, OSError):
                    died = True
                if w.shard is not None and w.hung is None and not died and fatal is None:
                    w.hung = sched.stalled(w.shard)
                    if w.hung is not None:          # hung, not dead: kill it, the shard goes again
                        w.proc.kill()
                        died = True
                if fatal is not None or not (died or not w.proc.is_alive()):
                    continue
                w.proc.join()
                w.conn.close()
                if w.shard is not None:
                    sched.attempt_failed(w.shard, f"worker process {w.proc.pid} killed: {w.hung}" if w.hung else
                                         f"worker process {w.proc.pid} died (exit code {w.proc.exitcode})")
                elif not w.ready:
                    start_deaths += 1
                    if start_deaths > ex.shard_retries + 1:
                        raise RuntimeError(f"worker processes die while starting (exit code {w.proc.exitcode})")
                if sched.pending:
                    pool[i] = _LocalWorker(ctx, job, w.slot)
    except BaseException:
        for w in pool:
            w.stop(kill=True)
        raise
    for w in pool:    # one still starting holds no shard: no need to wait for it
        w.stop(kill=fatal is not None or not w.ready)
    if fatal is not None:
        raise InputError(fatal)
    return sched.result(len(pool), started)


# ----------------------------------------------------------------------------------------- ray
class _RayProgress:
    """A tiny actor the workers report sample counts to: (shard, attempt) -> samples finished."""

    def __init__(self):
        self.counts: dict[tuple[int, int], int] = {}

    def set(self, shard: int, attempt: int, count: int) -> None:
        self.counts[(shard, attempt)] = count

    def get(self) -> dict[tuple[int, int], int]:
        return dict(self.counts)


class _ActorProgress:
    def __init__(self, handle, shard: int, attempt: int):
        self.handle, self.shard, self.attempt, self.count = handle, shard, attempt, 0

    def update(self, k: int = 1) -> None:
        self.count += k
        self.handle.set.remote(self.shard, self.attempt, self.count)     # fire and forget


class _RayShardWorker:
    """One Ray actor = one worker process with its own Blender scene (and GPU, when asked)."""

    def __init__(self, job, progress):
        self.state = job
        self.progress = progress

    def render(self, shard: int, attempt: int) -> dict:
        try:
            return self.state.render(shard, _ActorProgress(self.progress, shard, attempt))
        except InputError:
            raise
        except Exception:
            self.state = self.state.fresh()         # a fresh Blender scene for the next shard
            raise

    def warm(self) -> dict:
        return self.state.warm()

    def describe(self) -> dict:
        return describe_worker(self.state.threads)


def _with_absolute_paths(cfg: Config) -> Config:
    """The configuration with its data, cache and pose-file paths made absolute: a Ray worker does
    not run in the driver's working directory (the paths must still exist on every node)."""
    paths = cfg.paths()
    dataset = cfg.dataset
    if dataset.pose_file:
        dataset = dataset.model_copy(update={"pose_file": str(Path(dataset.pose_file).resolve())})
    return cfg.model_copy(update={"data_dir": str(paths.data.resolve()), "cache_dir": str(paths.cache.resolve()),
                                  "dataset": dataset})


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{e.__class__.__name__}: {text.splitlines()[0]}" if text else e.__class__.__name__


def _import_ray():
    try:
        import ray
    except ImportError:
        raise InputError("--executor ray needs Ray: pip install 'synth[ray]' (ray==2.60.0)") from None
    return ray


@dataclass
class RaySession:
    ray: object
    slots: int             # workers the cluster can hold at once with the asked resources
    cpus: float
    gpus: float            # num_gpus of each worker: 1/K when K workers share a GPU
    message: str = ""      # one line: the workers per GPU picked and why


def ray_gpus_per_worker(cfg: Config, cluster_cpus: float, cluster_gpus: float) -> tuple[float, str]:
    """num_gpus of a Ray worker with render.device=gpu, and why: 1/K for K = executor.workers_per_gpu
    (0 = auto from the cluster's CPUs per GPU, as auto_workers_per_gpu), or executor.gpus_per_worker
    when it is not 1 (several GPUs per worker, or a fraction as Ray allows). Config refuses K > 1
    with gpus_per_worker != 1."""
    ex = cfg.executor
    per, k = float(ex.gpus_per_worker), ex.workers_per_gpu
    if k >= 1 and per == 1:
        return 1.0 / k, f"{k} worker(s) per GPU (executor.workers_per_gpu): num_gpus {1.0 / k:.4g} each"
    if per != 1:
        return per, f"num_gpus {per:g} per worker (executor.gpus_per_worker)"
    k, why = auto_workers_per_gpu(int(cluster_cpus), max(1, int(cluster_gpus)))
    return 1.0 / k, f"{why}: num_gpus {1.0 / k:.4g} each"


@contextmanager
def ray_session(cfg: Config):
    """Connected to a Ray cluster (the one this process already uses, else executor.address, else
    a new local one, shut down on exit) that has the CPUs/GPUs a worker asks for."""
    _refuse_inside_blender_binary("--executor ray")
    ray = _import_ray()
    ex = cfg.executor
    started = False
    if not ray.is_initialized():
        kwargs = dict(include_dashboard=False, log_to_driver=log.isEnabledFor(logging.INFO))
        if ex.address:
            kwargs["address"] = ex.address
        try:
            ray.init(**kwargs)
        except ConnectionError as e:
            raise InputError(f"--address {ex.address}: cannot connect to a Ray cluster ({e})") from None
        started = True
    try:
        resources = ray.cluster_resources()
        cpus = float(ex.cpus_per_worker)
        have_cpu, have_gpu = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
        gpus, message = 0.0, ""
        if cfg.render.device == "gpu":
            gpus, message = ray_gpus_per_worker(cfg, have_cpu, have_gpu)
            if have_gpu < min(gpus, 1.0):
                raise InputError(f"--device gpu: the Ray cluster has {have_gpu:g} GPUs, a worker asks for "
                                 f"{gpus:.4g} (--gpus-per-worker / --workers-per-gpu); use --device cpu or a "
                                 "cluster with GPU nodes")
        if have_cpu < cpus:
            raise InputError(f"--cpus-per-worker {cpus:g}: the Ray cluster has only {have_cpu:g} CPUs")
        slots = math.floor(have_cpu / cpus + 1e-9)
        if gpus > 0:
            slots = min(slots, math.floor(have_gpu / gpus + 1e-6))
        yield RaySession(ray, max(1, slots), cpus, gpus, message)
    finally:
        if started:
            ray.shutdown()


def run_ray(session: RaySession, cfg: Config, job, shards: list[int], bar: tqdm) -> RunResult:
    """Render `shards` on the session's Ray cluster: one actor (process, Blender scene, GPU) per
    worker, each with a copy of `job` (a ShardJob); at most executor.workers of them (0 = as many
    as the cluster holds)."""
    ray = session.ray
    from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError   # ray: optional, heavy
    ex = cfg.executor
    n_workers = max(1, min(len(shards), ex.workers or session.slots))
    job.threads = cycles_threads(job.threads, session.cpus)
    # a Ray worker does not run in the driver's working directory
    job.cfg, job.out = _with_absolute_paths(job.cfg), Path(job.out).resolve()
    env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
    progress = ray.remote(num_cpus=0)(_RayProgress).remote()
    options = ray_actor_options(session)
    if env:
        options["runtime_env"] = {"env_vars": env}
    actor_cls = ray.remote(_RayShardWorker).options(**options)
    started: list[dict] = []      # describe_worker() of every worker that became ready

    sched = _Scheduler(shards, cfg.dataset.samples_per_shard, ex.shard_retries, bar, ex.stall_timeout_s)
    actors: list = [None] * n_workers
    starting: dict = {}         # ObjectRef of warm() -> actor slot; the slot is idle once it returns
    running: dict = {}          # ObjectRef of render() -> (actor slot, shard)
    idle: list[int] = []
    start_deaths = 0

    def start_actor(slot: int) -> None:
        actors[slot] = actor_cls.remote(job, progress)
        starting[actors[slot].warm.remote()] = slot

    for slot in range(n_workers):
        start_actor(slot)
    try:
        while sched.pending or running:
            while sched.pending and idle:
                slot = idle.pop()
                shard = sched.next_shard()
                running[actors[slot].render.remote(shard, sched.attempts[shard])] = (slot, shard)
            ready, _ = ray.wait(list(running) + list(starting), num_returns=1, timeout=0.5)
            try:
                for (shard, attempt), count in ray.get(progress.get.remote(), timeout=10).items():
                    if attempt == sched.attempts[shard]:      # not a failed earlier attempt's
                        sched.progress(shard, count)
            except GetTimeoutError:
                pass
            for ref, (slot, shard) in list(running.items()):
                hung = sched.stalled(shard)
                if hung is not None and ref not in ready:     # hung, not dead: a new actor takes its place
                    del running[ref]
                    ray.kill(actors[slot], no_restart=True)
                    sched.attempt_failed(shard, f"worker killed: {hung}")
                    start_actor(slot)
            for ref in ready:
                if ref in starting:
                    slot = starting.pop(ref)
                    try:
                        started.append(ray.get(ref))
                        idle.append(slot)
                        start_deaths = 0
                    except RayTaskError as e:
                        raise InputError(f"a Ray worker could not start: {e.cause or e}") from None
                    except RayActorError as e:
                        start_deaths += 1
                        if start_deaths > ex.shard_retries + 1:
                            raise RuntimeError(f"Ray workers die while starting ({_first_line(e)})") from None
                        start_actor(slot)
                    continue
                slot, shard = running.pop(ref)
                try:
                    sched.done(shard, ray.get(ref))
                    idle.append(slot)
                except RayTaskError as e:
                    cause = e.cause if e.cause is not None else e
                    if isinstance(cause, InputError):
                        raise InputError(str(cause)) from None
                    sched.attempt_failed(shard, f"{cause.__class__.__name__}: {cause}")
                    idle.append(slot)
                except RayActorError as e:
                    # the worker process (or its node) died: a new actor takes its place
                    sched.attempt_failed(shard, f"worker died ({_first_line(e)})")
                    ray.kill(actors[slot], no_restart=True)
                    start_actor(slot)
    finally:
        for a in actors:
            if a is not None:
                ray.kill(a, no_restart=True)
        ray.kill(progress, no_restart=True)
    return sched.result(n_workers, started)


def ray_actor_options(session: RaySession) -> dict:
    """Resources of one Ray render worker: its CPUs and its GPU share (Ray sets the actor's
    CUDA_VISIBLE_DEVICES to the GPU it assigns; K actors with num_gpus 1/K share one GPU)."""
    return dict(num_cpus=session.cpus, num_gpus=session.gpus, max_restarts=0)
