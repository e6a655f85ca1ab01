"""The GPU paths on a machine without a GPU: `synth doctor`, scripts/gpu_proof.sh and
benchmarks/bench_train_gpu.py each stop with one line (exit 2) where the GPU is missing; their
CPU modes (doctor --device cpu, PROOF_DEVICE=cpu, --device cpu) run the same code end to end
at a tiny size; and the trainer, its data loader and the training benchmark import and run
with bpy, anny and warp unimportable (the GPU training machine has none of them)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import CHECKER

REPO = Path(__file__).resolve().parents[1]
TINY = ["render.image_size=[48,48]", "render.samples=2", "poses.subjects=['16']"]

# A sys.meta_path finder that makes bpy, anny and warp (and Blender's own modules) unimportable.
BLOCK = """
import importlib.abc, sys
class _Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('bpy', '_bpy', 'mathutils', '_cycles', 'anny', 'warp'):
            raise ImportError(f'{name} is blocked: the GPU training machine has no Blender or Anny')
        return None
sys.meta_path.insert(0, _Blocked())
"""


def _env(**extra) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


def _error_lines(stderr: str, prefix: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [l for l in stderr.splitlines() if l.startswith(prefix)]


def test_doctor_without_a_gpu(shared_data, cache_dir, tmp_path):
    gpu = subprocess.run([sys.executable, "-m", "synth.cli", "doctor", "--device", "gpu", "--data-dir", str(shared_data)],
                         capture_output=True, text=True, timeout=300, env=_env(CUDA_VISIBLE_DEVICES=""))
    assert gpu.returncode == 2 and gpu.stdout == ""
    assert _error_lines(gpu.stderr, "synth doctor:") == [
        "synth doctor: error: --device gpu: no CUDA/OptiX GPU found (Cycles sees none; check the driver, "
        "NVIDIA_DRIVER_CAPABILITIES and CUDA_VISIBLE_DEVICES, or use --device cpu)"]
    # CPU only: the node report and the CPU render, timed
    report = tmp_path / "doctor.json"
    cpu = subprocess.run([sys.executable, "-m", "synth.cli", "doctor", "--data-dir", str(shared_data), "--json", str(report),
                          f"cache_dir={cache_dir}", *TINY], capture_output=True, text=True, timeout=600,
                         env=_env(CUDA_VISIBLE_DEVICES=""))
    assert cpu.returncode == 0, cpu.stderr
    assert "Blender 5.0.1" in cpu.stdout and "Cycles devices: no GPU (CPU only)" in cpu.stdout
    assert "CPU render 48x48, 2 samples" in cpu.stdout and "same pixels twice: yes" in cpu.stdout
    doc = json.loads(report.read_text())
    assert doc["cycles_gpu_devices"] == [] and set(doc["renders"]) == {"cpu"} and "gpu_vs_cpu" not in doc
    assert doc["renders"]["cpu"]["render_s"] > 0 and doc["renders"]["cpu"]["deterministic"]


def test_gpu_proof_script_stops_in_one_line_without_a_gpu(tmp_path):
    script = REPO / "scripts" / "gpu_proof.sh"
    no_smi = ":".join(p for p in os.environ["PATH"].split(":") if not (Path(p) / "nvidia-smi").exists())
    run = subprocess.run([str(script), str(tmp_path / "a")], capture_output=True, text=True, timeout=60,
                         env=_env(PATH=no_smi))
    assert run.returncode == 2
    assert _error_lines(run.stderr, "gpu_proof:") == [
        "gpu_proof: error: no NVIDIA GPU here (nvidia-smi not found); run this on a GPU node"]
    assert run.stderr.strip().count("\n") == 0 and not (tmp_path / "a").exists()
    # an nvidia-smi that lists no GPU (a driver without devices)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text("#!/bin/sh\nexit 0\n")
    (fake / "nvidia-smi").chmod(0o755)
    run = subprocess.run([str(script), str(tmp_path / "b")], capture_output=True, text=True, timeout=60,
                         env=_env(PATH=f"{fake}:{no_smi}"))
    assert run.returncode == 2 and "nvidia-smi lists none" in run.stderr and run.stderr.strip().count("\n") == 0


def test_gpu_proof_script_steps_run_on_the_cpu(shared_data, cache_dir, tmp_path):
    """PROOF_DEVICE=cpu: doctor, K = 1, 2 worker processes, the checker on each, gpu_proof.json."""
    out = tmp_path / "proof"
    run = subprocess.run([str(REPO / "scripts" / "gpu_proof.sh"), str(out), f"cache_dir={cache_dir}", *TINY],
                         capture_output=True, text=True, timeout=900,
                         env=_env(PROOF_DEVICE="cpu", KS="1 2", SAMPLES="2", SHARDS_PER_WORKER="1",
                                  SYNTH=f"{sys.executable} -m synth.cli", PYTHON=sys.executable,
                                  CHECKER=str(CHECKER), SYNTH_DATA=str(shared_data)))
    assert run.returncode == 0, run.stdout + run.stderr
    proof = json.loads((out / "gpu_proof.json").read_text())
    assert proof["device"] == "cpu" and proof["backend"] == "CPU" and proof["image_size"] == [48, 48]
    assert set(proof["per_k"]) == {"1", "2"}
    for k, r in proof["per_k"].items():
        assert r["shards"] == int(k) and r["samples"] == 2 * int(k) and r["check"]["ok"]
        assert r["images_per_s_end_to_end"] > 0 and r["images_per_s_steady"] > 0
    assert proof["per_k"]["2"]["workers"] == 2


def test_trainer_and_loader_import_without_bpy_anny_warp():
    code = BLOCK + """
import synth.train, synth.train.trainer, synth.train.data, synth.train.evaluate, synth.train.real_data
import synth.train.augment, synth.train.adaptation, synth.train.models, synth.config
import synth.train.appearance, synth.train.pretrained, synth.train.efficientnet
try:
    import bpy
except ImportError:
    pass
else:
    raise SystemExit('the blocker does not work')
bad = sorted(m for m in sys.modules if m.split('.')[0] in ('bpy', 'anny', 'warp', 'synth.render', 'synth.body'))
print('loaded:', bad)
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=_env())
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "loaded: []"


def test_train_gpu_benchmark_without_cuda_and_its_cpu_check(rendered_dataset, tmp_path):
    bench = REPO / "benchmarks" / "bench_train_gpu.py"
    run = subprocess.run([sys.executable, str(bench), str(rendered_dataset)], capture_output=True, text=True,
                         timeout=300, env=_env(CUDA_VISIBLE_DEVICES=""))
    assert run.returncode == 2 and run.stdout == ""
    lines = _error_lines(run.stderr, "bench_train_gpu:")
    assert len(lines) == 1 and lines[0].startswith("bench_train_gpu: error: no CUDA device")
    # the benchmark's own code path, on the CPU, with bpy/anny/warp unimportable
    report = tmp_path / "train.json"
    code = BLOCK + f"""
import runpy
sys.argv = [{str(bench)!r}, {str(rendered_dataset)!r}, '--device', 'cpu', '--steps', '2', '--warmup', '1',
            '--sizes', '64', '--batch', '3', '--workers', '0', '--json', {str(report)!r}]
runpy.run_path({str(bench)!r}, run_name='__main__')
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=_env())
    assert run.returncode == 0, run.stderr
    figures = json.loads(report.read_text())
    row = figures["sizes"]["64"]
    # the default: the ImageNet-pretrained EfficientNet-Lite0 of the wheel, as the training recipes start
    assert figures["backbone"] == "efficientnet_lite0" and figures["pretrained"].endswith(".pth")
    assert row["train_images_per_s"] > 0 and row["step_images_per_s"] > 0
    assert row["final_loss"] > 0
