"""The CPU-side ceiling of a render worker: the real pipeline with the render as cheap as Cycles
allows, i.e. the rate at which one worker process could feed a GPU that renders in no time.

    python benchmarks/bench_cpu_side.py [--samples 48] [--repeats 3] [--size 256] [--workers 1,2]
                                        [--data ../shared/data] [--profile OUT.html] [key=value ...]

Cycles at 1 sample, no denoising, the same passes (Combined RGBA, Depth, Material Index) and the
same scenes as `synth render`. Three figures:

1. per-stage milliseconds on the critical path: each stage run in turn in this thread and timed
   with the thread's CPU clock (`time.thread_time`: what the stage itself costs, whatever else
   runs on the machine), the helper libraries at one thread as in a worker. The `render` row is
   the calling thread's CPU inside Blender's render call (depsgraph, Cycles' scene sync, the EXR
   write), its wall time beside it (Cycles' own threads render then). A worker runs the stages
   in three threads (prepare | Blender | finish); the critical path is the longest of the three
   when each has a core and they overlap fully, and the sum of all stages if they did not
   overlap at all (the GIL: Python code serialises, Blender's render call and the numpy, OpenCV
   and torch kernels release it). Target: <= 25 ms per sample, >= 40 samples/s per worker.
2. samples/s of one worker process: `render_shard`, the three overlapping stage threads of
   `synth render`, wall clock, with its process CPU time per sample.
3. samples/s with K worker processes on this machine (`synth render --workers K`, the local
   pool: Cycles threads = cores / K), wall clock over 2K shards, start-up excluded.

Each figure is the median over --repeats rounds with the spread (min-max); the machine may be
shared, so the CPU-clock figures (1) are the ones to compare between runs.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from synth.config import Config, load_config  # noqa: E402
from synth.dataset.render_job import encode_members, finish_labels, render_dataset, render_shard  # noqa: E402
from synth.dataset.identity import input_fingerprints  # noqa: E402
from synth.dataset.scene_sampler import SceneSampler  # noqa: E402
from synth.dataset.shards import ShardWriter, read_sidecar, sample_key, write_or_check_meta  # noqa: E402
from synth.render.factory import open_renderer  # noqa: E402

SCENE_STAGES = ("pose", "body", "texture", "scene_sample")
ROWS = ("pose", "body", "texture", "scene_sample", "prepare", "scene_update", "render", "readback",
        "composite", "encode", "write")


class StageClock:
    """CPU (this thread) and wall seconds of named stages, summed over samples."""

    def __init__(self):
        self.cpu: dict[str, list[float]] = {k: [] for k in ROWS}
        self.wall: dict[str, list[float]] = {k: [] for k in ROWS}

    def add(self, name: str, cpu: float, wall: float) -> None:
        self.cpu[name].append(cpu)
        self.wall[name].append(wall)


def _timed(clock: StageClock, name: str, fn, *args):
    c0, w0 = time.thread_time(), time.perf_counter()
    out = fn(*args)
    clock.add(name, time.thread_time() - c0, time.perf_counter() - w0)
    return out


def sequential_stages(sampler: SceneSampler, renderer, cfg: Config, out: Path, shard: int, n: int) -> StageClock:
    """Every stage of n samples in turn in this thread, each timed on the thread's CPU clock."""
    clock = StageClock()
    rc = cfg.render
    writer = ShardWriter(out / "shards", shard)
    renderer.reset_persistent_data()
    sampler_timers = _SceneTimers(sampler)
    try:
        for i in range(n):
            spec, _ = sampler_timers.scene(clock, shard, i)
            prep = _timed(clock, "prepare", renderer.prepare, spec)
            passes = _render_timed(clock, renderer, prep)
            result = _timed(clock, "composite", renderer.finish, passes)
            key = sample_key(shard, i)
            # the occluder laid over the render and the labels of the final layers, as the render loop does
            result, labels = _timed(clock, "composite", finish_labels, result, spec, key, 0)
            members = _timed(clock, "encode", encode_members, result, labels, rc.image_format, rc.jpeg_quality)
            _timed(clock, "write", writer.add, key, members)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return clock


class _SceneTimers:
    """SceneSampler.scene with the CPU time of each of its steps (it times them in wall clock
    itself; the same steps are re-timed here by wrapping the sampler's parts)."""

    def __init__(self, sampler: SceneSampler):
        self.sampler = sampler

    def scene(self, clock: StageClock, shard: int, index: int):
        s = self.sampler
        body_pose, lights = s.body.pose, s._lights
        marks: dict[str, tuple[float, float]] = {}

        def wrap(name, fn):
            def inner(*a, **k):
                c0, w0 = time.thread_time(), time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    c, w = marks.get(name, (0.0, 0.0))
                    marks[name] = (c + time.thread_time() - c0, w + time.perf_counter() - w0)
            return inner

        import synth.dataset.scene_sampler as ss
        make_tex, load_bg, camera, centre = ss.make_texture, ss.load_background, ss.sample_camera, ss.bounding_box_centre
        s.body.pose = wrap("body", body_pose)
        ss.make_texture = wrap("texture", make_tex)
        if s.texture_library is not None:
            draw = s.texture_library.draw
            s.texture_library.draw = wrap("texture", draw)
        s._lights = wrap("scene_sample", lights)
        ss.sample_camera, ss.bounding_box_centre = wrap("scene_sample", camera), wrap("scene_sample", centre)
        ss.load_background = wrap("scene_sample", load_bg)
        c0, w0 = time.thread_time(), time.perf_counter()
        try:
            spec, times = s.scene(shard, index)
        finally:
            s.body.pose, ss.make_texture = body_pose, make_tex
            del s._lights       # back to the class's method
            ss.sample_camera, ss.bounding_box_centre, ss.load_background = camera, centre, load_bg
            if s.texture_library is not None:
                s.texture_library.draw = draw
        total_c, total_w = time.thread_time() - c0, time.perf_counter() - w0
        for name in ("body", "texture", "scene_sample"):
            c, w = marks.get(name, (0.0, 0.0))
            clock.add(name, c, w)
        # the rest of scene(): the pose draw, the rng, the labels
        clock.add("pose", total_c - sum(c for c, _ in marks.values()), total_w - sum(w for _, w in marks.values()))
        return spec, times


def _render_timed(clock: StageClock, renderer, prep):
    """render_passes with the thread's CPU time split at its steps: the scene update (until the
    render starts), the render (inside the _QuietOutput block around bpy.ops.render.render) and
    the EXR readback (read_exr_channels)."""
    from synth.render import blender_scene as bs
    marks: dict[str, float] = {}
    quiet, read = bs._QuietOutput, bs.read_exr_channels

    class TimedQuiet(quiet):
        def __enter__(self):
            marks["render0"] = time.thread_time()
            return super().__enter__()

        def __exit__(self, *exc):
            out = super().__exit__(*exc)
            marks["render1"] = time.thread_time()
            return out

    def timed_read(path):
        c0 = time.thread_time()
        try:
            return read(path)
        finally:
            marks["readback"] = time.thread_time() - c0

    bs._QuietOutput, bs.read_exr_channels = TimedQuiet, timed_read
    try:
        c0 = time.thread_time()
        passes = renderer.render_passes(prep)
    finally:
        bs._QuietOutput, bs.read_exr_channels = quiet, read
    t = passes.timings
    clock.add("scene_update", marks["render0"] - c0, t["scene_update"])
    clock.add("render", marks["render1"] - marks["render0"], t["render"])
    clock.add("readback", marks["readback"], t["readback"])
    return passes


def _median_spread(values: list[float]) -> str:
    return f"{statistics.median(values):7.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=48, help="samples per round")
    ap.add_argument("--repeats", type=int, default=3, help="rounds of each measurement")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--warmup", type=int, default=600, help="scenes drawn before measuring (fills the photo cache)")
    ap.add_argument("--workers", default="1,2", help="worker process counts for figure 3 ('' = skip)")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--profile", type=Path, help="write a pyinstrument profile of the last round of figure 1 here (.html, else text)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args()
    n = a.samples
    cfg = load_config(None, [f"data_dir={a.data}", "dataset.shards=64", f"dataset.samples_per_shard={n}",
                             f"render.image_size=[{a.size},{a.size}]", "render.samples=1", "render.denoise=false",
                             *a.overrides])
    sampler = SceneSampler(cfg)
    renderer = open_renderer(cfg.render)
    figures: dict = {"size": a.size, "samples_per_round": n, "repeats": a.repeats, "cpu_count": os.cpu_count(),
                     "load_average_start": os.getloadavg()}
    renderer.render(sampler.scene(63, 0)[0])             # warm-up: kernels, images, BVH
    # a long-running worker has decoded its photos and loaded its HDRIs already: draw scenes
    # until it would have (the decoded-photo cache, executor.image_cache_mb)
    for i in range(a.warmup):
        spec, _ = sampler.scene(62, i)
        if spec.environment.hdri_path and spec.environment.hdri_path not in renderer._hdri_cache:
            renderer._update_world(spec.environment)
    images = getattr(sampler, "images", None)
    if images is not None:
        figures["image_cache"] = {"entries": len(images._items), "mib": images.nbytes / 2**20}
        images.hits = images.misses = 0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ds"
        (out / "shards").mkdir(parents=True)
        write_or_check_meta(out, cfg, input_fingerprints(cfg))
        # 1. stages in turn, CPU clock; helper libraries at one thread, as in a worker's stage threads
        clocks = []
        cv2_threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            with threadpool_limits(1):
                profiler = None
                if a.profile:
                    try:
                        from pyinstrument import Profiler
                    except ImportError:
                        sys.exit("bench_cpu_side: error: --profile needs pyinstrument (pip install 'synth[profile]')")
                    profiler = Profiler(interval=0.0005)
                for r in range(a.repeats):
                    if profiler is not None and r == a.repeats - 1:
                        profiler.start()
                    clocks.append(sequential_stages(sampler, renderer, cfg, out, 40 + r, n))
                    if profiler is not None and r == a.repeats - 1:
                        profiler.stop()
                if profiler is not None:
                    a.profile.write_text(profiler.output_html() if a.profile.suffix == ".html"
                                         else profiler.output_text(unicode=True, show_all=False))
        finally:
            cv2.setNumThreads(cv2_threads)
        # 2. one worker process: the overlapping pipeline
        pipe_rates, pipe_cpu = [], []
        for r in range(a.repeats):
            c0, t0 = time.process_time(), time.perf_counter()
            render_shard(sampler, renderer, out, r, cfg)
            wall = time.perf_counter() - t0
            pipe_rates.append(n / wall)
            pipe_cpu.append(1000 * (time.process_time() - c0) / n)
    renderer.close()

    stage_cpu = {k: [1000 * sum(c.cpu[k]) / n for c in clocks] for k in ROWS}
    stage_wall = {k: [1000 * sum(c.wall[k]) / n for c in clocks] for k in ROWS}
    W = H = a.size
    print(f"CPU side of a render worker at {W}x{H}: Cycles at 1 sample, no denoising, same passes; "
          f"{n} samples x {a.repeats} rounds; {os.cpu_count()} cores, load average at start "
          f"{figures['load_average_start'][0]:.2f}")
    print("\n1. stages in turn (ms/sample; median over rounds, min-max in brackets)")
    print(f"   {'stage':14s} {'CPU (this thread)':>22s} {'wall':>22s}")
    for k in ROWS:
        print(f"   {k:14s} {_median_spread(stage_cpu[k]):>22s} {_median_spread(stage_wall[k]):>22s}")
    no_render = [sum(stage_cpu[k][r] for k in ROWS) for r in range(a.repeats)]
    scene_side = [sum(stage_cpu[k][r] for k in (*SCENE_STAGES, "prepare")) for r in range(a.repeats)]
    blender_side = [sum(stage_cpu[k][r] for k in ("scene_update", "render", "readback")) for r in range(a.repeats)]
    finish_side = [sum(stage_cpu[k][r] for k in ("composite", "encode", "write")) for r in range(a.repeats)]
    longest = [max(a_, b_, c_) for a_, b_, c_ in zip(scene_side, blender_side, finish_side)]
    print(f"   stage threads (CPU ms/sample): prepare (pose..prepare) {statistics.median(scene_side):.1f}, "
          f"Blender (scene_update + render call + readback) {statistics.median(blender_side):.1f}, "
          f"finish (composite + encode + write) {statistics.median(finish_side):.1f}")
    print(f"   critical path = the longest stage thread: {_median_spread(longest)} ms/sample -> "
          f"{1000 / statistics.median(longest):.1f} samples/s per worker when each thread has a core "
          "(target <= 25 ms, >= 40 samples/s)")
    print(f"   all CPU work in one thread (no overlap at all): {_median_spread(no_render)} ms/sample -> "
          f"{1000 / statistics.median(no_render):.1f} samples/s")
    print(f"   Cycles' 1-sample render: {statistics.median(stage_wall['render']):.1f} ms wall")
    if images is not None:
        total = images.hits + images.misses
        print(f"   decoded-photo cache: {figures['image_cache']['entries']} photos, "
              f"{figures['image_cache']['mib']:.0f} MiB after {a.warmup} warm-up scenes; "
              f"hit rate while measuring {images.hits / max(total, 1):.1%}")
    import resource
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n2. one worker process, the three overlapping stage threads (render_shard), wall clock:")
    print(f"   {_median_spread(pipe_rates)} samples/s; process CPU {statistics.median(pipe_cpu):.1f} ms/sample "
          f"(Cycles' render threads included); peak RSS of this worker {rss:.0f} MiB")
    figures["worker_peak_rss_mib"] = rss
    figures.update(stage_cpu_ms=stage_cpu, stage_wall_ms=stage_wall, cpu_without_render_ms=no_render,
                   critical_path_ms=longest,
                   worker_samples_per_s=pipe_rates, worker_process_cpu_ms=pipe_cpu)

    ks = [int(k) for k in a.workers.split(",") if k.strip()]
    if ks:
        print("\n3. K worker processes (synth render --workers K, Cycles threads = cores / K), 2K shards each:")
        figures["pool"] = {}
        for k in ks:
            rates = []
            for r in range(a.repeats):
                with tempfile.TemporaryDirectory() as tmp:
                    rates.append(_pool_rate(cfg, Path(tmp) / "ds", k, n))
            figures["pool"][k] = rates
            print(f"   K = {k}: {_median_spread(rates)} samples/s")
    if a.json:
        a.json.write_text(json.dumps(figures, indent=2))


def _pool_rate(cfg: Config, out: Path, workers: int, n: int) -> float:
    """samples/s of the local pool with `workers` processes over 2*workers shards, from the sum
    of the shards' wall times per worker (worker start-up, Anny and Blender set-up excluded)."""
    cfg = load_config(None, [f"executor.workers={workers}", f"dataset.shards={2 * workers}"],
                      base=cfg.model_dump(mode="json"))
    summary = render_dataset(cfg, out, progress=False)
    sides = [read_sidecar(out / "shards", s) for s in summary["rendered"]]
    busy = sum(side["wall_seconds_per_sample"] * side["num_samples"] for side in sides)
    samples = sum(side["num_samples"] for side in sides)
    return samples / (busy / workers)


if __name__ == "__main__":
    main()
