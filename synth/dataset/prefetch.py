"""Scenes drawn in a helper process, beside the render.

`render_shard` draws sample i+1's scene while Cycles renders sample i. In a thread, that work
(Anny body, texture, background: ~50 ms of CPU per sample) shares the render process's GIL and
measurably slows the render on a CPU node (the thread holds the GIL when the render-driving
thread wants it). `SceneProcess` draws the same scenes in a spawned process at a lower CPU
priority, with its own interpreter, and hands them over pickled; it has the `SceneSampler`
interface (`scene(shard, index, attempt)`), and the scenes are identical (every draw depends on
(seed, shard, index, attempt) only).
"""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from synth.io_utils import InputError

_SAMPLER = None
PROCESS_NICE = 10


def _start(cfg: dict) -> None:
    global _SAMPLER
    try:
        os.nice(PROCESS_NICE)
    except OSError:
        pass
    import torch
    torch.set_num_threads(1)        # one core's worth beside the render
    from synth.dataset.scene_sampler import SceneSampler
    _SAMPLER = SceneSampler(cfg)


def _scene(shard: int, index: int, attempt: int):
    return _SAMPLER.scene(shard, index, attempt)


class SceneProcess:
    """A SceneSampler living in a helper process (see the module docstring)."""

    def __init__(self, cfg: dict):
        self._pool = ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), initializer=_start,
                                         initargs=(cfg,))
        # fail here, not in the middle of a shard, when the sampler cannot start (bad data dir...)
        self._pool.submit(int, 0).result()

    def scene(self, shard: int, index: int, attempt: int = 0):
        try:
            return self._pool.submit(_scene, shard, index, attempt).result()
        except BrokenProcessPool as e:
            raise RuntimeError(f"the scene process died ({e})") from None

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "SceneProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_sampler(cfg: dict):
    """The scene source `executor.prefetch` asks for: 'thread' (a SceneSampler in this process,
    used from render_shard's prepare thread) or 'process' (SceneProcess; inside the local pool's
    daemonic worker processes, which may not start children, 'thread')."""
    mode = cfg["executor"]["prefetch"]
    if mode == "process" and mp.current_process().daemon:
        mode = "thread"         # the local pool's workers are daemonic: they may not have children
    if mode == "process":
        try:
            return SceneProcess(cfg)
        except BrokenProcessPool:
            # the child died while starting: build the sampler here to raise its real error
            from synth.dataset.scene_sampler import SceneSampler
            SceneSampler(cfg)
            raise
    if mode != "thread":
        raise InputError(f"config key 'executor.prefetch' = {mode!r} must be process or thread")
    from synth.dataset.scene_sampler import SceneSampler
    return SceneSampler(cfg)
