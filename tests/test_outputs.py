"""What a rendered output offers other tools and later runs: the webdataset / wids readers with the
right decoders, the dataset card, the identity and software checks, and the command line's
hygiene (--help, --config everywhere, one-line errors, --debug; a clean stdout: test_install.py)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile

import cv2
import numpy as np
import pytest

from conftest import small_config
from synth import cli
from synth.dataset import open_webdataset, open_wids, render_dataset
from synth.io_utils import InputError


def _members(tar_path):
    out: dict[str, dict[str, bytes]] = {}
    with tarfile.open(tar_path) as tf:
        for m in tf.getmembers():
            key, _, field = m.name.partition(".")
            out.setdefault(key, {})[field] = tf.extractfile(m).read()
    return out


@pytest.fixture()
def dataset_copy(rendered_dataset, tmp_path):
    """A private copy of the session's rendered dataset (2 shards x 3 samples at 96x96)."""
    out = tmp_path / "ds"
    shutil.copytree(rendered_dataset, out)
    return out


# --- readers -----------------------------------------------------------------------------------

def test_open_webdataset_gives_millimetres_and_part_ids(rendered_dataset):
    raw = {k: v for tar in sorted((rendered_dataset / "shards").glob("*.tar")) for k, v in _members(tar).items()}
    samples = list(open_webdataset(rendered_dataset))
    assert [s["__key__"] for s in samples] == sorted(raw)
    for s in samples:
        m = raw[s["__key__"]]
        depth = cv2.imdecode(np.frombuffer(m["depth.png"], np.uint8), cv2.IMREAD_UNCHANGED)
        parts = cv2.imdecode(np.frombuffer(m["parts.png"], np.uint8), cv2.IMREAD_UNCHANGED)
        assert s["depth_mm"].dtype == np.uint16 and np.array_equal(s["depth_mm"], depth)
        assert s["parts"].dtype == np.uint8 and s["parts"].ndim == 2 and np.array_equal(s["parts"], parts)
        assert set(np.unique(s["parts"])) <= set(range(15)) and s["parts"].max() > 0
        assert s["mask"].dtype == np.uint8 and set(np.unique(s["mask"])) <= {0, 255}
        assert np.array_equal(s["mask"] > 0, s["parts"] > 0)
        assert s["rgb"].shape == (96, 96, 3) and s["rgb"].dtype == np.uint8
        assert s["labels"]["key"] == s["__key__"] and len(s["labels"]["joints_3d_cam"]) == 15
        # a depth in millimetres: the person stands metres away
        assert 500 < np.median(s["depth_mm"][s["depth_mm"] > 0]) < 20000
    # the plain library's own decoder gets depth wrong: what open_webdataset saves the user from
    import webdataset as wds
    plain = next(iter(wds.WebDataset(str(sorted((rendered_dataset / "shards").glob("*.tar"))[0]),
                                     shardshuffle=False).decode("rgb8")))
    assert plain["depth.png"].dtype == np.uint8 and plain["depth.png"].ndim == 3


def test_wids_index_gives_random_access(rendered_dataset):
    index = json.loads((rendered_dataset / "index.wids.json").read_text())
    assert index["wids_version"] == 1 and [s["nsamples"] for s in index["shardlist"]] == [3, 3]
    ds = open_wids(rendered_dataset)
    assert len(ds) == 6
    keys = sorted(k for tar in sorted((rendered_dataset / "shards").glob("*.tar")) for k in _members(tar))
    for i in (4, 0, 5, 2):
        s = ds[i]
        assert s["__key__"] == keys[i] and s["depth_mm"].dtype == np.uint16 and s["labels"]["key"] == keys[i]


def test_dataset_card_lists_holdings_and_input_licences(rendered_dataset):
    card = (rendered_dataset / "README.md").read_text()
    assert "2 shards x 3 samples = 6 samples planned; 2 shards (6 samples) complete" in card
    assert "96x96" in card and "open_webdataset" in card and 'data_files={"train":' in card
    for name in ("cmu_mocap", "backgrounds", "clothing", "hdri", "anny"):
        assert f"| {name} |" in card
    assert "CC BY-NC 4.0" in card and "research" in card.lower() and "CC0" in card
    assert "In short: Research use only" in card
    assert "mocap.cs.cmu.edu" in card          # quoted from cmu_mocap/SOURCE.md


# --- identity and software ------------------------------------------------------------------------

def test_train_assets_and_executor_keys_never_block_new_shards(dataset_copy, shared_data, cache_dir):
    cfg = small_config(shared_data, cache_dir, **{"train.lr": "1e-5", "assets.timeout_s": 5, "train.epochs": 9,
                                                  "executor.shard_retries": 0, "dataset.max_retries": 1,
                                                  "textures.size": 128, "poses.n": 7})
    assert render_dataset(cfg, dataset_copy, progress=False)["skipped_complete"] == 2


def test_a_changed_render_key_is_refused_naming_it(dataset_copy, shared_data, cache_dir):
    before = sorted(p.name for p in (dataset_copy / "shards").iterdir())
    cfg = small_config(shared_data, cache_dir, **{"render.samples": 5})
    with pytest.raises(InputError, match=r"dataset\.json: this output was made with a different configuration "
                                         r"\(render\.samples: 4 -> 5\)"):
        render_dataset(cfg, dataset_copy, progress=False)
    cfg = small_config(shared_data, cache_dir, **{"poses.fps": 20})     # the MoCap pool it draws from
    with pytest.raises(InputError, match=r"poses\.fps: 30\.0 -> 20\.0"):
        render_dataset(cfg, dataset_copy, progress=False)
    assert sorted(p.name for p in (dataset_copy / "shards").iterdir()) == before


def test_other_software_versions_are_refused_unless_allowed(dataset_copy, shared_data, cache_dir):
    meta_path = dataset_copy / "dataset.json"
    meta = json.loads(meta_path.read_text())
    assert set(meta["software"]) == {"synth", "git_commit", "bpy", "torch", "anny", "numpy"}
    assert meta["software"]["bpy"] == "5.0.1" and meta["software"]["numpy"] == np.__version__
    meta["software"]["torch"] = "1.0.0"
    meta_path.write_text(json.dumps(meta))
    cfg = small_config(shared_data, cache_dir)
    with pytest.raises(InputError, match=r"other software \(software\.torch: '1\.0\.0' -> '[^']+'\); .*"
                                         r"--allow-version-mismatch"):
        render_dataset(cfg, dataset_copy, progress=False)
    assert render_dataset(cfg, dataset_copy, progress=False, allow_version_mismatch=True)["skipped_complete"] == 2
    # a dataset.json from before versions were recorded
    del meta["software"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(InputError, match=r"recorded no software versions"):
        render_dataset(cfg, dataset_copy, progress=False)


# --- command line --------------------------------------------------------------------------------

def _synth(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "synth.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_help_shows_defaults():
    r = _synth("render", "--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    assert "(default: 0)" in text                                # --threads
    assert "config dataset.shards, 2" in text and "default: 900" in text
    assert "--allow-version-mismatch" in text


def test_every_subcommand_takes_config_and_overrides(rendered_dataset, tmp_path, capsys):
    for cmd in ("assets", "sample-poses", "pose-gallery", "render", "check", "train", "eval", "predict", "gallery",
                "dress"):
        r = _synth(cmd, "--help")
        assert r.returncode == 0 and "--config" in r.stdout and "key=value" in r.stdout, cmd
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  batch_size: 2.5\n")
    # gallery: checked, then the page is written
    assert cli.main(["gallery", str(rendered_dataset), "--out", str(tmp_path / "g.html"), "train.batch_size=2"]) == 0
    assert "gallery:" in capsys.readouterr().out
    assert cli.main(["gallery", str(rendered_dataset), "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.yaml: config key 'train.batch_size' must be an integer" in err[0]
    # eval: applied over the checkpoint's configuration (checked before any model is built)
    assert cli.main(["eval", "--run", str(tmp_path / "no-run"), "--data", str(rendered_dataset),
                     "--config", str(bad)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_errors_have_one_prefix_and_debug_shows_the_traceback(tmp_path):
    r = _synth("eval", "--run", str(tmp_path))
    assert r.returncode == 2 and r.stderr.strip() == "synth eval: error: give --data DATASET and/or --real LSPDIR[:a-b]"
    r = _synth("render", "--out", str(tmp_path / "o"), "render.samples=0")
    assert r.returncode == 2 and r.stderr.count("synth render: error:") == 1 and "Traceback" not in r.stderr
    r = _synth("--debug", "render", "--out", str(tmp_path / "o"), "render.samples=0")
    assert r.returncode == 2 and "Traceback" in r.stderr and "render.samples" in r.stderr.strip().splitlines()[-1]
    r = _synth("render", "--debug", "--out", str(tmp_path / "o"), "render.samples=0")
    assert r.returncode == 2 and "Traceback" in r.stderr
