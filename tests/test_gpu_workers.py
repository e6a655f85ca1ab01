"""Several render workers per GPU, on a machine without one: the GPU list is faked
(CUDA_VISIBLE_DEVICES, or the `gpus` a plan is made for; Ray's declared GPUs), and what is
checked is what each worker process is given — its CUDA_VISIBLE_DEVICES and its Cycles CPU
threads — as the real worker processes report it, plus the one-line errors."""
from __future__ import annotations

import os
import time
from collections import Counter

import pytest

from synth import cli
from synth.config import Config, ConfigError, load_config
from synth.dataset import executors
from synth.dataset.executors import plan_local_workers
from synth.dataset.render_job import ShardJob
from synth.io_utils import InputError
from synth.render.factory import available_cores, cgroup_cpu_quota, cycles_threads


def gpu_cfg(*overrides: str) -> Config:
    return load_config(None, ["render.device=gpu", *overrides])


def slots(plan) -> list[tuple[str | None, int]]:
    return [(s.gpus, s.threads) for s in plan.slots]


def test_auto_workers_per_gpu_follows_cores_per_gpu():
    # K = max(1, min(4, cores // (GPUs x 2)))
    plan = plan_local_workers(gpu_cfg(), gpus=["0"], cores=16)
    assert plan.workers_per_gpu == 4 and slots(plan) == [("0", 4)] * 4
    assert "4 per GPU (auto: 16 cores // (1 GPU(s) x 2 cores per GPU worker)" in plan.message
    plan = plan_local_workers(gpu_cfg(), gpus=["0", "1"], cores=6)      # 6 // 4 = 1
    assert plan.workers_per_gpu == 1 and slots(plan) == [("0", 3), ("1", 3)]
    plan = plan_local_workers(gpu_cfg(), gpus=["0"], cores=2)           # never 0
    assert slots(plan) == [("0", 2)]
    plan = plan_local_workers(gpu_cfg(), gpus=[str(i) for i in range(8)], cores=64)
    assert plan.workers_per_gpu == 4 and len(plan.slots) == 32
    assert Counter(s.gpus for s in plan.slots) == {str(i): 4 for i in range(8)}
    assert {s.threads for s in plan.slots} == {2}


def test_explicit_k_workers_round_robin_and_threads_split():
    plan = plan_local_workers(gpu_cfg("executor.workers_per_gpu=3"), gpus=["0"], cores=12)
    assert slots(plan) == [("0", 4)] * 3
    # fewer workers than K x GPUs still use every GPU
    plan = plan_local_workers(gpu_cfg("executor.workers_per_gpu=2", "executor.workers=3"), gpus=["2", "5"], cores=16)
    assert slots(plan) == [("2", 5), ("5", 5), ("2", 5)]
    # --workers alone: K follows from it
    plan = plan_local_workers(gpu_cfg("executor.workers=4"), gpus=["0", "1"], cores=16)
    assert plan.workers_per_gpu == 2 and [s.gpus for s in plan.slots] == ["0", "1", "0", "1"]
    # --threads wins over the split
    plan = plan_local_workers(gpu_cfg("executor.workers_per_gpu=2"), threads=3, gpus=["0"], cores=16)
    assert slots(plan) == [("0", 3)] * 2
    # several GPUs per worker: disjoint sets, as before
    plan = plan_local_workers(gpu_cfg("executor.gpus_per_worker=2"), gpus=["0", "1", "2", "3"], cores=8)
    assert slots(plan) == [("0,1", 4), ("2,3", 4)]
    # CPU renders: no GPU set, cores split
    plan = plan_local_workers(load_config(None, ["executor.workers=2"]), cores=8)
    assert slots(plan) == [(None, 4), (None, 4)]


def test_the_gpu_list_comes_from_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert executors.visible_gpus() == ["3", "5"]
    plan = plan_local_workers(gpu_cfg("executor.workers_per_gpu=2"), cores=8)
    assert slots(plan) == [("3", 2), ("5", 2), ("3", 2), ("5", 2)]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,-1,1")       # CUDA stops at the first invalid id
    assert executors.visible_gpus() == ["0"]


def test_cores_follow_the_affinity_mask_and_a_cgroup_cpu_limit(tmp_path):
    mask = len(os.sched_getaffinity(0))
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("max 100000\n")                 # no limit
    assert cgroup_cpu_quota(v2) is None and available_cores(v2) == mask
    (v2 / "cpu.max").write_text("150000 100000\n")              # a Kubernetes limit of 1.5 CPUs
    assert cgroup_cpu_quota(v2) == 1.5 and available_cores(v2) == 1
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(v1) is None
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text(f"{100000 * (mask + 8)}\n")   # above the mask: the mask wins
    assert available_cores(v1) == mask


def test_bad_worker_settings_are_one_line_errors():
    with pytest.raises(InputError, match=r"5 workers at 2 per GPU need 3 GPUs but 2 are visible \(0,1\); "
                                         r"use --workers 4 or --workers-per-gpu 3"):
        plan_local_workers(gpu_cfg("executor.workers=5", "executor.workers_per_gpu=2"), gpus=["0", "1"], cores=8)
    with pytest.raises(InputError, match="3 workers x 2 GPU"):
        plan_local_workers(gpu_cfg("executor.workers=3", "executor.gpus_per_worker=2"), gpus=["0", "1"], cores=8)
    with pytest.raises(InputError, match="no GPU visible"):
        plan_local_workers(gpu_cfg(), gpus=[], cores=8)
    with pytest.raises(ConfigError, match=r"'executor.workers_per_gpu' = -1 is out of range \(must be >= 0\)"):
        gpu_cfg("executor.workers_per_gpu=-1")
    with pytest.raises(ConfigError, match=r"'executor.workers_per_gpu' must be an integer, got 1.5"):
        gpu_cfg("executor.workers_per_gpu=1.5")
    with pytest.raises(ConfigError, match=r"'executor.workers_per_gpu' = 65 is out of range \(must be <= 64\)"):
        gpu_cfg("executor.workers_per_gpu=65")
    # K > 1 shares one GPU per worker: several GPUs (or a fraction, on Ray) per worker conflict with it
    for per in ("2", "0.5"):
        with pytest.raises(ConfigError, match=r"config key 'executor.workers_per_gpu' = 2 conflicts with "
                                              rf"executor.gpus_per_worker = {per}: workers either share a GPU"):
            gpu_cfg("executor.kind=ray", "executor.workers_per_gpu=2", f"executor.gpus_per_worker={per}")
    # K = 1 with several GPUs per worker is no conflict: one worker per set of GPUs
    assert gpu_cfg("executor.workers_per_gpu=1", "executor.gpus_per_worker=2").executor.gpus_per_worker == 2
    with pytest.raises(ConfigError, match=r"'executor.image_cache_mb' = -1 is out of range"):
        load_config(None, ["executor.image_cache_mb=-1"])


def _one_error_line(stderr: str) -> str:
    lines = [l for l in stderr.splitlines() if l.startswith("synth render:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_cli_errors_are_one_line_and_write_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    out = tmp_path / "ds"
    for argv, expected in (
            (["--workers", "5", "--workers-per-gpu", "2"], "need 3 GPUs but 2 are visible"),
            (["--workers-per-gpu", "0.5"], "--workers-per-gpu: invalid int value"),
            (["--workers-per-gpu=-2"], "executor.workers_per_gpu"),
            (["--workers-per-gpu", "2", "--gpus-per-worker", "2"], "conflict")):
        try:
            rc = cli.main(["render", "--out", str(out), "--device", "gpu", *argv])
        except SystemExit as e:        # argparse's own error: --workers-per-gpu takes whole numbers
            rc = e.code
        assert rc == 2, argv
        assert expected in _one_error_line(capsys.readouterr().err), argv
    assert not out.exists()


def test_local_worker_processes_get_their_gpu_and_threads(monkeypatch, tmp_path):
    """The real worker processes, spawned as `synth render --workers` spawns them: each reports
    the CUDA_VISIBLE_DEVICES and Cycles threads it runs with; the driver's environment is left
    as it was."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    cfg = gpu_cfg("executor.workers_per_gpu=2", "executor.workers=3")
    plan = plan_local_workers(cfg, cores=7)
    assert slots(plan) == [("0", 2), ("1", 2), ("0", 2)]
    pool = executors.start_local_workers(ShardJob(cfg, str(tmp_path), 0), plan.slots)
    try:
        reports = []
        deadline = time.monotonic() + 300
        for w in pool:
            while not w.conn.poll(1.0):
                assert w.proc.is_alive() and time.monotonic() < deadline, "a worker did not start"
            kind, _, info = w.conn.recv()
            assert kind == "ready", info
            reports.append(info)
    finally:
        for w in pool:
            w.stop()
    assert [r["pid"] for r in reports] == [w.proc.pid for w in pool]
    assert [(r["cuda_visible_devices"], r["threads"]) for r in reports] == [("0", 2), ("1", 2), ("0", 2)]
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"


@pytest.fixture()
def ray_with_two_fake_gpus():
    """A real local Ray cluster that declares 2 GPUs (none exist): Ray still hands them out and
    sets each actor's CUDA_VISIBLE_DEVICES."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(address="local", num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False,
             _node_ip_address="127.0.0.1", object_store_memory=80 * 1024 * 1024)
    yield ray
    ray.shutdown()


def test_ray_workers_share_a_gpu_with_fractional_num_gpus(ray_with_two_fake_gpus):
    ray = ray_with_two_fake_gpus
    cfg = gpu_cfg("executor.kind=ray", "executor.workers_per_gpu=2", "executor.cpus_per_worker=0.5")
    with executors.ray_session(cfg) as session:
        assert session.gpus == 0.5 and session.slots == 4
        assert "2 worker(s) per GPU" in session.message
        options = executors.ray_actor_options(session)
        assert options["num_gpus"] == 0.5
        actor_cls = ray.remote(executors._RayShardWorker).options(**options)
        actors = [actor_cls.remote(ShardJob(cfg, "/nonexistent", cycles_threads(0, session.cpus)), None)
                  for _ in range(session.slots)]
        try:
            reports = ray.get([a.describe.remote() for a in actors], timeout=180)
        finally:
            for a in actors:
                ray.kill(a, no_restart=True)
    assert Counter(r["cuda_visible_devices"] for r in reports) == {"0": 2, "1": 2}
    assert {r["threads"] for r in reports} == {1}
    # auto: the cluster's 2 CPUs per 2 GPUs give one worker per GPU
    with executors.ray_session(gpu_cfg("executor.kind=ray")) as session:
        assert session.gpus == 1.0 and "1 per GPU (auto: 2 cores" in session.message
