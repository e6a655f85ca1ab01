"""`pip install .` (a regular install, not editable) gives a package that runs from anywhere:
its runtime data is package data. Built as a wheel, installed into a fresh target folder, run
from a directory outside the checkout, it renders a dataset that ../shared/tools/check_dataset.py
accepts (about 40 s)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CHECKER

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.install
def test_installed_package_renders_a_checked_dataset_from_another_directory(shared_data, cache_dir, tmp_path):
    # a copy of the sources, so the build leaves nothing in the checkout
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(REPO / "pyproject.toml", src)
    shutil.copytree(REPO / "synth", src / "synth", ignore=shutil.ignore_patterns("__pycache__"))
    wheels, target, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src)], check=True,
                   cwd=tmp_path)
    wheel = next(wheels.glob("synth-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True, cwd=tmp_path)
    shutil.rmtree(src)                          # nothing may read the sources any more
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SYNTH_DATA", "SYNTH_CACHE")}
    env["PYTHONPATH"] = str(target)

    where = subprocess.run([sys.executable, "-c", "import synth, synth.resources as r; "
                            "print(synth.__file__); print(r.data_file('skin_tones.yaml'))"],
                           capture_output=True, text=True, cwd=elsewhere, env=env, check=True).stdout.split()
    assert all(Path(p).is_relative_to(target) for p in where), where

    out = elsewhere / "ds"
    r = subprocess.run([sys.executable, "-m", "synth.cli", "render", "--out", str(out), "--shards", "1",
                        "--samples-per-shard", "2", "--quiet", f"data_dir={shared_data}", f"cache_dir={cache_dir}",
                        "render.image_size=[64, 64]", "render.samples=1", "poses.subjects=['16']"],
                       capture_output=True, text=True, cwd=elsewhere, env=env)
    assert r.returncode == 0, r.stderr
    # stdout is the JSON summary alone, although Anny started Warp (whose banner went to stdout)
    assert json.loads(r.stdout)["rendered"] == [0]
    assert "Warp" in r.stderr and "Warp" not in r.stdout
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["software"]["synth"] and meta["software"]["git_commit"] is None   # not a checkout
    check = subprocess.run([sys.executable, str(CHECKER), str(out)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
