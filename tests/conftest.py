"""Shared fixtures: the real data mirror (../shared/data) and one small dataset rendered once per
session through the real pipeline (MoCap -> Anny -> Blender Cycles -> shards)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SYNTH_TEST_DATA", REPO.parent / "shared" / "data"))
CHECKER = SHARED_DATA.parent / "tools" / "check_dataset.py"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "cmu_mocap").is_dir():
        pytest.fail(f"the data mirror {SHARED_DATA} is missing (expected ../shared/data beside the repo)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """Derived caches (parsed MoCap pools) shared by the session's tests."""
    return Path(os.environ.get("SYNTH_CACHE") or tmp_path_factory.mktemp("synth-cache"))


def small_config(shared_data: Path, cache_dir: Path, **overrides):
    """A tiny render configuration: real components, small images, few samples."""
    from synth.config import load_config
    ov = [f"data_dir={shared_data}", f"cache_dir={cache_dir}", "render.image_size=[96, 96]",
          "render.samples=4", "dataset.shards=2", "dataset.samples_per_shard=3",
          "poses.subjects=['16']"]
    ov += [f"{k}={v}" for k, v in overrides.items()]
    return load_config(None, ov)


@pytest.fixture(scope="session")
def rendered_dataset(tmp_path_factory, shared_data, cache_dir) -> Path:
    """2 shards x 3 samples at 96x96, rendered once for the session."""
    from synth.dataset.render_job import render_dataset
    out = tmp_path_factory.mktemp("dataset") / "ds"
    cfg = small_config(shared_data, cache_dir)
    render_dataset(cfg, out, progress=False)
    return out
