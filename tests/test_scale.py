"""Rendering at scale: the Ray and local-process executors, worker death and retry, SIGKILL and
resume, the stand-alone Blender entry script and the GPU checks, all through `synth render` with
real renders (3 shards x 3 samples at 48 px). Every output must equal, byte for byte, the same
shards rendered in one process by `render_dataset`: that is the reproducibility check (any
worker, any process, any order) as well as the correctness check."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from synth import cli
from synth.config import ConfigError, load_config
from synth.dataset.render_job import render_dataset
from synth.io_utils import InputError

REPO = Path(__file__).resolve().parents[1]
SHARDS, SAMPLES = 3, 3


def _overrides(shared_data: Path, cache_dir: Path) -> list[str]:
    return [f"data_dir={shared_data}", f"cache_dir={cache_dir}", f"dataset.shards={SHARDS}",
            f"dataset.samples_per_shard={SAMPLES}", "render.image_size=[48, 48]", "render.samples=2",
            "poses.subjects=['16']"]


@pytest.fixture(scope="module")
def args(shared_data, cache_dir) -> list[str]:
    """`synth render` arguments (after --out) for the test dataset."""
    return ["--quiet", *_overrides(shared_data, cache_dir)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, shared_data, cache_dir) -> Path:
    """The test dataset rendered in this process, one shard after another."""
    out = tmp_path_factory.mktemp("reference") / "ds"
    cfg = load_config(None, _overrides(shared_data, cache_dir))
    summary = render_dataset(cfg, out, progress=False)
    assert summary["rendered"] == list(range(SHARDS))
    return out


@pytest.fixture(scope="module")
def ray_cluster():
    """A real local Ray cluster on 127.0.0.1 with 2 CPUs and no GPU, shared by the module."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()      # another test's cluster: ours must have no GPU and 2 CPUs
    ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False,
             _node_ip_address="127.0.0.1", object_store_memory=80 * 1024 * 1024)
    yield ray
    ray.shutdown()


def _tar(out: Path, shard: int) -> Path:
    return out / "shards" / f"shard-{shard:06d}.tar"


def _partials(out: Path) -> list[Path]:
    return sorted((out / "shards").glob(".shard-*.partial")) if (out / "shards").is_dir() else []


def assert_same_dataset(out: Path, reference: Path) -> None:
    assert json.loads((out / "dataset.json").read_text()) == json.loads((reference / "dataset.json").read_text())
    for s in range(SHARDS):
        assert _tar(out, s).read_bytes() == _tar(reference, s).read_bytes(), f"shard {s} differs"
        side = json.loads(_tar(out, s).with_suffix(".json").read_text())
        assert side["keys"] == json.loads(_tar(reference, s).with_suffix(".json").read_text())["keys"]
    assert _partials(out) == []


def _summary(text: str) -> dict:
    """The JSON summary `synth render` prints last."""
    return json.loads(text[text.index("{\n"):])


def _run_killing_one_worker(argv: list[str], out: Path, sig: int = signal.SIGKILL) -> tuple[int, int]:
    """Run `synth render` in a thread; send `sig` (SIGKILL: dead; SIGSTOP: hung) to the worker
    process that is writing the first shard as soon as its hidden partial file appears (its name
    carries the worker's pid)."""
    result = {}
    thread = threading.Thread(target=lambda: result.update(rc=cli.main(argv)))
    thread.start()
    killed = None
    while thread.is_alive() and killed is None:
        for p in _partials(out):
            killed = int(p.name.split(".")[-2])
            os.kill(killed, sig)
            break
        time.sleep(0.01)
    thread.join(timeout=600)
    assert killed is not None, "no shard was ever seen mid-way"
    return result["rc"], killed


def test_ray_executor_retries_a_killed_worker_and_equals_in_process(ray_cluster, reference, args, tmp_path, capsys):
    out = tmp_path / "ray"
    rc, killed = _run_killing_one_worker(["render", "--out", str(out), "--executor", "ray", "--workers", "2",
                                          *args], out)
    summary = _summary(capsys.readouterr().out)
    assert rc == 0 and summary["failed"] == {} and summary["rendered"] == [0, 1, 2]
    assert summary["executor"] == "ray" and summary["workers"] == 2
    assert sum(summary["shard_attempts"].values()) == len(summary["shard_attempts"]) * 2 >= 2
    assert any("worker died" in e for e in summary["shard_errors"]), summary["shard_errors"]
    assert_same_dataset(out, reference)


def test_local_workers_retry_a_killed_worker_and_equal_in_process(reference, args, tmp_path, capsys):
    out = tmp_path / "local"
    rc, killed = _run_killing_one_worker(["render", "--out", str(out), "--workers", "2", *args], out)
    summary = _summary(capsys.readouterr().out)
    assert rc == 0 and summary["failed"] == {} and summary["rendered"] == [0, 1, 2]
    assert summary["workers"] == 2
    assert any(f"worker process {killed} died" in e for e in summary["shard_errors"]), summary["shard_errors"]
    assert_same_dataset(out, reference)
    # the executor block is not part of the dataset's identity: an in-process re-run adds to it
    cfg = load_config(None, args[1:])
    assert render_dataset(cfg, out, progress=False)["skipped_complete"] == SHARDS


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_a_hung_worker_is_killed_and_its_shard_rendered_again(executor, request, reference, args, tmp_path, capsys):
    """A worker stopped mid-shard (SIGSTOP: alive but making no progress, like a hung driver) is
    killed once its shard has finished no sample for executor.stall_timeout_s; the shard goes to
    a fresh worker and the dataset equals an uninterrupted run."""
    if executor == "ray":
        request.getfixturevalue("ray_cluster")
    out = tmp_path / executor
    rc, stopped = _run_killing_one_worker(["render", "--out", str(out), "--executor", executor, "--workers", "2",
                                           # the timeout counts the worker's set-up (Blender, Anny, the
                                           # wardrobe): 45 s leaves room for a loaded machine
                                           "--stall-timeout", "45", *args], out, signal.SIGSTOP)
    summary = _summary(capsys.readouterr().out)
    assert rc == 0 and summary["failed"] == {} and summary["rendered"] == [0, 1, 2]
    hung = [e for e in summary["shard_errors"] if "killed: no sample finished for" in e]
    assert len(hung) == 1 and "executor.stall_timeout_s=45" in hung[0], summary["shard_errors"]
    with pytest.raises(ProcessLookupError):       # the stopped worker is gone, not left behind
        for _ in range(100):
            os.kill(stopped, 0)
            time.sleep(0.1)
    assert_same_dataset(out, reference)


def test_sigkill_mid_shard_then_resume_equals_uninterrupted(reference, args, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "synth.cli", "render", "--out", str(out), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            mid = [p for p in _partials(out) if p.name.startswith(".shard-000001.")]
            if _tar(out, 0).with_suffix(".json").exists() and mid:
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed mid-shard"
    # no partial shard under a final name: the shard in progress is a hidden temp file
    assert not _tar(out, 1).exists() and not _tar(out, 2).exists()
    assert [p.name.split(".")[1] for p in _partials(out)] == ["shard-000001"]
    first = _tar(out, 0).stat().st_mtime_ns

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    summary = _summary(again.stdout)
    assert summary["skipped_complete"] == 1 and summary["rendered"] == [1, 2]
    assert _tar(out, 0).stat().st_mtime_ns == first
    assert_same_dataset(out, reference)


def test_blender_entry_script_equals_cli(reference, args, tmp_path):
    out = tmp_path / "blender_script"
    run = subprocess.run([sys.executable, str(REPO / "blender_scripts" / "render_shard.py"), "--", "render",
                          "--out", str(out), *args], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert _summary(run.stdout)["rendered"] == [0, 1, 2]
    assert_same_dataset(out, reference)


def _one_error_line(stderr: str) -> str:
    lines = [l for l in stderr.splitlines() if l.startswith("synth render:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_device_gpu_without_gpu_fails_in_one_line(ray_cluster, args, tmp_path, capsys, monkeypatch):
    # in this process's renderer: Cycles itself finds no CUDA/OptiX device (hidden from it here)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    run = subprocess.run([sys.executable, "-m", "synth.cli", "render", "--out", str(tmp_path / "a"),
                          "--device", "gpu", *args], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 2
    assert "--device gpu" in _one_error_line(run.stderr)
    assert not (tmp_path / "a" / "dataset.json").exists()    # nothing written
    # local worker processes: no visible GPU to hand out
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert cli.main(["render", "--out", str(tmp_path / "b"), "--device", "gpu", "--workers", "2", *args]) == 2
    assert "no GPU visible" in _one_error_line(capsys.readouterr().err)
    # Ray: the cluster has no GPUs to give
    assert cli.main(["render", "--out", str(tmp_path / "c"), "--device", "gpu", "--executor", "ray", *args]) == 2
    assert "Ray cluster has 0 GPUs" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_executor_config_is_validated():
    with pytest.raises(ConfigError, match="executor.kind"):
        load_config(None, ["executor.kind=slurm"])
    with pytest.raises(ConfigError, match="executor.workers"):
        load_config(None, ["executor.workers=-1"])
    with pytest.raises(ConfigError, match="executor.gpus_per_worker"):
        load_config(None, ["render.device=gpu", "executor.gpus_per_worker=0.5"])
    with pytest.raises(ConfigError, match="executor.shard_retries"):
        load_config(None, ["executor.shard_retries=-1"])
    with pytest.raises(ConfigError, match="executor.stall_timeout_s"):
        load_config(None, ["executor.stall_timeout_s=-5"])
    assert load_config(None, ["executor.kind=ray", "executor.workers=0"]).executor.workers == 0


def test_a_degenerate_pose_is_retried_with_a_derived_seed(shared_data, cache_dir, tmp_path):
    from synth.poses.posefile import save_poses
    from synth.poses.sampling import load_pool
    pool = load_pool(shared_data, subjects=["16"], fps=30, min_distance=0.05, progress=False,
                     cache_dir=cache_dir / "poses")
    poses = pool.subset([0, 1])
    poses.rotations[1] = 0.0          # a degenerate pose: every bone collapsed onto the root
    save_poses(tmp_path / "poses.npz", poses)
    cfg = load_config(None, _overrides(shared_data, cache_dir)
                      + [f"dataset.pose_file={tmp_path / 'poses.npz'}", "dataset.shards=1",
                         "dataset.max_retries=12"])   # half the poses are degenerate
    summary = render_dataset(cfg, tmp_path / "ds", progress=False)
    side = json.loads(_tar(tmp_path / "ds", 0).with_suffix(".json").read_text())
    assert side["num_samples"] == SAMPLES and side["retries"] >= 1
    assert summary["sample_retries"] == side["retries"] and len(side["failures"]) == side["retries"]


def test_stage_threads_and_helper_libraries_run_single_threaded_while_a_shard_renders():
    """The render's stage threads must not start OpenMP/OpenBLAS/OpenCV thread teams that compete
    with Cycles at normal priority (the pipeline's throughput depends on it); the process's own
    settings come back after the shard."""
    import cv2
    import torch
    from threadpoolctl import threadpool_info
    from synth.dataset.render_job import _stage_pools, single_threaded_helper_libraries

    def blas_threads() -> list[int]:
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before_cv2, before_blas, before_torch = cv2.getNumThreads(), blas_threads(), torch.get_num_threads()
    with single_threaded_helper_libraries():
        assert cv2.getNumThreads() == 1
        assert set(blas_threads()) == {1}
        for pool in _stage_pools():
            assert pool.submit(torch.get_num_threads).result() == 1      # torch's OpenMP team in that thread
            assert pool.submit(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())).result() >= 10
    assert (cv2.getNumThreads(), blas_threads(), torch.get_num_threads()) == (before_cv2, before_blas, before_torch)


def _data_copy(shared_data: Path, root: Path, drop: str | None = None) -> Path:
    """The data directory again at another path (links to the same files), without `drop`."""
    root.mkdir(parents=True)
    for entry in shared_data.iterdir():
        if entry.name != "backgrounds":
            (root / entry.name).symlink_to(entry)
    for f in (shared_data / "backgrounds").rglob("*"):
        if f.is_file() and f.relative_to(shared_data).as_posix() != drop:
            (root / f.relative_to(shared_data)).parent.mkdir(parents=True, exist_ok=True)
            (root / f.relative_to(shared_data)).symlink_to(f)
    return root


def test_a_node_with_the_data_at_another_path_adds_to_the_output(reference, shared_data, cache_dir, tmp_path):
    """Paths are not a dataset's identity, the files are: a node that mounts the same data and
    cache elsewhere renders the missing shards into the same output, byte for byte; a node whose
    data differs by one background photo is refused in one line before it writes anything."""
    out = tmp_path / "ds"
    first = load_config(None, _overrides(shared_data, cache_dir))
    assert render_dataset(first, out, shards=[0], progress=False)["rendered"] == [0]
    elsewhere = _data_copy(shared_data, tmp_path / "mnt" / "data")
    other = load_config(None, [*_overrides(elsewhere, tmp_path / "mnt" / "cache")])
    assert render_dataset(other, out, shards=[1, 2], progress=False)["rendered"] == [1, 2]
    assert_same_dataset(out, reference)

    dropped = sorted((shared_data / "backgrounds").rglob("*.jpg"))[0].relative_to(shared_data).as_posix()
    changed = load_config(None, _overrides(_data_copy(shared_data, tmp_path / "mnt2" / "data", drop=dropped),
                                           cache_dir))
    before = sorted(p.name for p in (out / "shards").iterdir())
    with pytest.raises(InputError, match=r"dataset\.json: this output was made from other input files "
                                         r"\(inputs\.data_listing_sha256"):
        render_dataset(changed, tmp_path / "ds", progress=False)
    assert sorted(p.name for p in (out / "shards").iterdir()) == before


def _stderr_reader(proc: subprocess.Popen) -> list[str]:
    """The process's stderr lines, collected by a thread as they come."""
    lines: list[str] = []

    def read():
        for line in iter(proc.stderr.readline, ""):
            lines.append(line)
    threading.Thread(target=read, daemon=True).start()
    return lines


def _wait_for(predicate, timeout: float = 300.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_two_render_processes_on_one_shard_do_not_destroy_each_other(reference, args, tmp_path):
    """A requeued job-array task while the first still runs: two real `synth render` processes on
    the same shard. The first is stopped mid-shard (its partial written, its lock held) while the
    second starts; the second waits for it and finds the shard complete. Both exit cleanly and
    the shard is byte for byte the single-writer render."""
    out = tmp_path / "two"
    cmd = [sys.executable, "-m", "synth.cli", "render", "--out", str(out), "--shard-index", "0", *args]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = None
    try:
        _wait_for(lambda: any(p.name.startswith(".shard-000000.") for p in _partials(out)) or first.poll() is not None,
                  what="the first writer's partial shard")
        os.kill(first.pid, signal.SIGSTOP)      # mid-shard: partial written, lock held
        assert first.poll() is None, "the first render ended before it could be caught mid-shard"
        second = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = _stderr_reader(second)
        _wait_for(lambda: any("shard-000000 is being written by" in l for l in lines) or second.poll() is not None,
                  what="the second writer to wait")
        os.kill(first.pid, signal.SIGCONT)
        out1, err1 = first.communicate(timeout=300)
        second.wait(timeout=300)
        out2 = second.stdout.read()
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
                p.kill()
                p.wait()
    err2 = "".join(lines)
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    assert "FileNotFoundError" not in err1 + err2 and "Traceback" not in err1 + err2
    assert "shard-000000 is being written by host" in err2 and f"pid {first.pid}" in err2
    assert _summary(out1)["rendered"] == [0]
    assert _summary(out2)["completed_by_another_writer"] == [0] and _summary(out2)["rendered"] == []
    assert _tar(out, 0).read_bytes() == _tar(reference, 0).read_bytes()
    assert _partials(out) == [] and list((out / "shards").glob(".*.lock")) == []


_HOLD_LOCK = """
import fcntl, json, os, socket, sys, time
from pathlib import Path
# another writer of shard N, as synth.dataset.locking describes one: flock on shards/.shard-N.lock
# (recording host and pid) while its partial exists
shards, n = Path(sys.argv[1]), int(sys.argv[2])
fd = os.open(shards / f".shard-{n:06d}.lock", os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.write(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": "then"}).encode())
Path(sys.argv[3]).write_bytes(b"half a shard")
print("locked", flush=True)
time.sleep(float(sys.argv[4]))
"""


def _partial_name(shard: int, pid: int) -> str:
    """A writer's partial tar: .shard-N.tar.HOST.PID.partial (the host without dots)."""
    host = "".join(c if c.isalnum() or c in "-_" else "-" for c in socket.gethostname())
    return f".shard-{shard:06d}.tar.{host}.{pid}.partial"


def test_a_writer_that_died_is_taken_over_and_a_busy_shard_waits(reference, shared_data, cache_dir, tmp_path):
    """Another process holds shard 1's lock with a partial of its own. A run of shards 1-2 renders
    shard 2 first, then waits for shard 1; the holder is killed (SIGKILL: its lock goes with it),
    and the run takes the shard over: the dead writer's partial is removed and the shard equals
    the single-writer render. A holder that makes no progress for executor.stall_timeout_s is
    reported in one line, not taken over."""
    out = tmp_path / "ds"
    (out / "shards").mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(out / "shards"), "1", "PARTIAL", "600"],
                              stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        assert holder.stdout.readline().strip() == "locked"
        partial = out / "shards" / _partial_name(1, holder.pid)
        (tmp_path / "PARTIAL").rename(partial)
        cfg = load_config(None, _overrides(shared_data, cache_dir))
        seen: dict = {}

        def kill_holder_once_waited_for():      # Blender renders in the main thread, so this one watches
            _wait_for(lambda: _tar(out, 2).with_suffix(".json").exists(), what="shard 2")
            time.sleep(1.0)
            seen["waiting"] = not _tar(out, 1).exists() and partial.exists()
            holder.kill()
        killer = threading.Thread(target=kill_holder_once_waited_for, daemon=True)
        killer.start()
        summary = render_dataset(cfg, out, [1, 2], progress=False)
        killer.join()
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()
    assert seen["waiting"]       # shard 2 done, shard 1 still the holder's while it lived
    assert summary["rendered"] == [1, 2]
    assert not partial.exists() and _partials(out) == []
    for s in (1, 2):
        assert _tar(out, s).read_bytes() == _tar(reference, s).read_bytes()

    # a holder alive but without progress: after the stall timeout, one line; nothing taken over
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(out / "shards"), "0", "PARTIAL", "600"],
                              stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        assert holder.stdout.readline().strip() == "locked"
        partial = out / "shards" / _partial_name(0, holder.pid)
        (tmp_path / "PARTIAL").rename(partial)
        stalled = load_config(None, _overrides(shared_data, cache_dir) + ["executor.stall_timeout_s=1"])
        with pytest.raises(RuntimeError, match=rf"shard-000000 is held by host \S+ pid {holder.pid} .*no progress "
                                               r"for more than 1 s"):
            render_dataset(stalled, out, [0], progress=False)
        assert holder.poll() is None and partial.exists() and not _tar(out, 0).exists()
    finally:
        holder.kill()
        holder.wait()


_HOLD_FILE_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("locked", flush=True)
time.sleep(600)
"""


def test_software_is_taken_over_only_without_a_complete_shard_and_the_index_waits_for_the_lock(
        reference, shared_data, cache_dir, tmp_path, recwarn, caplog):
    """An output without a complete shard holds nothing its recorded software made: a run with
    other versions takes it over (with a warning) instead of refusing; with a complete shard it
    refuses, and a writer whose output was taken over meanwhile does not commit into it. The
    dataset.json check and the index and card written from the complete shards wait for the
    output's lock (another process holds OUT/.dataset.lock here), so writers finishing together
    leave an index listing every shard."""
    from synth.dataset.identity import input_fingerprints, software_versions
    from synth.dataset.shards import check_meta_unchanged
    cfg = load_config(None, _overrides(shared_data, cache_dir))
    out = tmp_path / "ds"
    out.mkdir()
    meta = json.loads((reference / "dataset.json").read_text())
    meta["software"]["torch"] = "1.0.0"
    (out / "dataset.json").write_text(json.dumps(meta))
    assert render_dataset(cfg, out, [0], progress=False)["rendered"] == [0]
    warned = "\n".join(str(w.message) for w in recwarn)
    assert "no shard was complete, so this output now records the new software (software.torch: '1.0.0' -> " in warned
    assert json.loads((out / "dataset.json").read_text())["software"] == software_versions()
    assert _tar(out, 0).read_bytes() == _tar(reference, 0).read_bytes()

    (out / "dataset.json").write_text(json.dumps(meta))     # other versions again, now with shard 0 complete
    with pytest.raises(InputError, match=r"other software \(software\.torch: '1\.0\.0' -> '[^']+'\); it has 1 "
                                         r"complete shard\(s\): .*--allow-version-mismatch"):
        render_dataset(cfg, out, [1], progress=False)
    with pytest.raises(InputError, match=r"another run took this output over with other software \(software\.torch"):
        check_meta_unchanged(out, input_fingerprints(cfg), software_versions())
    check_meta_unchanged(out, input_fingerprints(cfg), None)       # --allow-version-mismatch: versions not checked
    meta["software"] = software_versions()
    (out / "dataset.json").write_text(json.dumps(meta))

    holder = subprocess.Popen([sys.executable, "-c", _HOLD_FILE_LOCK, str(out / ".dataset.lock")],
                              stdout=subprocess.PIPE, text=True)
    seen: dict = {}

    def release_after_a_while():          # Blender renders in the main thread, so this one watches
        time.sleep(2.0)
        seen["waiting"] = not (out / "shards" / ".shard-000001.lock").exists() and not _tar(out, 1).exists()
        holder.kill()
    try:
        assert holder.stdout.readline().strip() == "locked"
        watcher = threading.Thread(target=release_after_a_while, daemon=True)
        watcher.start()
        summary = render_dataset(cfg, out, [1], progress=False)
        watcher.join()
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()
    assert seen["waiting"] and summary["rendered"] == [1]      # it waited at dataset.json, then rendered
    assert f"{out}/dataset.json is being written by" in caplog.text
    index = json.loads((out / "index.wids.json").read_text())
    assert [s["url"] for s in index["shardlist"]] == ["shards/shard-000000.tar", "shards/shard-000001.tar"]
    assert "2 shards (6 samples) complete" in (out / "README.md").read_text()
    assert not (out / ".dataset.lock").exists()
