"""The render stage end to end on real components: dataset layout, the independent checker,
resume, determinism by (seed, shard), bad input, the CLI."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import CHECKER, small_config
from synth.config import ConfigError, load_config
from synth.dataset.render_job import parse_shard_selection, render_dataset
from synth.dataset.scene_sampler import SceneSampler
from synth.io_utils import InputError
from synth.scene import JOINTS, PARTS


def _members(tar_path: Path) -> dict[str, dict[str, bytes]]:
    out: dict[str, dict[str, bytes]] = {}
    with tarfile.open(tar_path) as tf:
        for m in tf.getmembers():
            key, _, field = m.name.partition(".")
            out.setdefault(key, {})[field] = tf.extractfile(m).read()
    return out


def test_rendered_dataset_passes_the_independent_checker(rendered_dataset):
    r = subprocess.run([sys.executable, str(CHECKER), str(rendered_dataset)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "check_dataset: OK (6 samples in 2 shards)" in r.stdout


def test_dataset_layout_and_labels(rendered_dataset):
    meta = json.loads((rendered_dataset / "dataset.json").read_text())
    assert meta["schema"] == "synth-pose/1" and meta["joints"] == JOINTS
    assert [meta["parts"][str(i + 1)] for i in range(len(PARTS))] == PARTS
    assert meta["image_size"] == [96, 96] and meta["num_shards"] == 2 and meta["samples_per_shard"] == 3
    assert meta["config"]["seed"] == meta["seed"]
    assert (rendered_dataset / "config.yaml").is_file()
    for s in range(2):
        tar = rendered_dataset / "shards" / f"shard-{s:06d}.tar"
        side = json.loads((rendered_dataset / "shards" / f"shard-{s:06d}.json").read_text())
        samples = _members(tar)
        assert sorted(samples) == side["keys"] and side["num_samples"] == 3
        for key, m in samples.items():
            assert "." not in key
            assert set(m) == {"rgb.jpg", "mask.png", "parts.png", "depth.png", "json"}
            lab = json.loads(m["json"])
            for field in ("joints_3d_cam", "joints_2d", "K", "cam_R", "cam_t", "body", "pose", "garments",
                          "background", "lights", "seed"):
                assert field in lab, field
            assert lab["body"]["backend"] == "anny" and 0 <= lab["body"]["height"] <= 1
            assert lab["pose"]["source"] == "cmu" and lab["pose"]["id"].startswith("cmu/16_")
            assert {g["region"] for g in lab["garments"]} == {"upper", "lower"}
            assert (Path(os.environ.get("SYNTH_TEST_DATA", "")) / lab["background"]["id"]).is_file() or \
                lab["background"]["id"].startswith("backgrounds/")
            depth = np.asarray(Image.open(io.BytesIO(m["depth.png"])))
            assert depth.dtype == np.uint16
            z = np.asarray(lab["joints_3d_cam"])[:, 2]
            assert 500 < np.median(depth[depth > 0]) < 20000
            assert abs(np.median(depth[depth > 0]) / 1000 - z.mean()) < 0.5


def test_label_pngs_decode_to_what_the_previous_encoder_wrote(rendered_dataset):
    """The label PNGs are written with zlib's run-length strategy (smaller, faster): bytes differ
    from the earlier default-strategy files, the decoded arrays do not."""
    import cv2
    for key, m in _members(rendered_dataset / "shards" / "shard-000000.tar").items():
        for field in ("mask.png", "parts.png", "depth.png"):
            arr = cv2.imdecode(np.frombuffer(m[field], np.uint8), cv2.IMREAD_UNCHANGED)
            ok, previous = cv2.imencode(".png", arr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
            assert ok and previous.tobytes() != m[field]
            again = cv2.imdecode(previous, cv2.IMREAD_UNCHANGED)
            assert again.dtype == arr.dtype and np.array_equal(again, arr), (key, field)
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(m[field]))), arr)   # another decoder agrees


def test_decoded_photo_cache_changes_no_scene(shared_data, cache_dir):
    """Backgrounds and garment photos decoded once and kept (executor.image_cache_mb): the
    scenes are the same as with every photo decoded again, and the cache stays in its budget."""
    from synth.decoded_images import DecodedImages
    cached = SceneSampler(small_config(shared_data, cache_dir))
    fresh = SceneSampler(small_config(shared_data, cache_dir, **{"executor.image_cache_mb": 0}))
    for i in list(range(6)) * 2:                           # the second round hits the cache
        a, _ = cached.scene(0, i)
        b, _ = fresh.scene(0, i)
        assert np.array_equal(a.background, b.background) and np.array_equal(a.texture, b.texture)
        assert a.labels == b.labels
    assert cached.images.hits >= 6 and fresh.images.nbytes == 0 and fresh.images.hits == 0
    photo = cached.backgrounds[0]
    small = DecodedImages(budget_bytes=1)                  # too small for any photo: nothing kept
    from synth.dataset.scene_sampler import decode_background
    arr = small.get(photo, decode_background)
    assert small.nbytes == 0 and not arr.flags.writeable
    budget = DecodedImages(budget_bytes=3 * arr.nbytes)
    for p in cached.backgrounds[:10]:
        budget.get(p, decode_background)
        assert budget.nbytes <= 3 * arr.nbytes
    with pytest.raises(InputError, match="unreadable background image"):
        budget.get(shared_data / "backgrounds" / "manifest.csv", decode_background)


def test_rerun_skips_complete_shards(rendered_dataset, shared_data, cache_dir):
    cfg = small_config(shared_data, cache_dir)
    before = {p.name: p.stat().st_mtime_ns for p in (rendered_dataset / "shards").glob("*.tar")}
    summary = render_dataset(cfg, rendered_dataset, progress=False)
    assert summary["skipped_complete"] == 2 and summary["rendered"] == []
    after = {p.name: p.stat().st_mtime_ns for p in (rendered_dataset / "shards").glob("*.tar")}
    assert before == after


def test_shard_content_depends_on_seed_and_index_only(rendered_dataset, shared_data, cache_dir, tmp_path):
    """Shard 1 rendered alone, by a fresh worker, equals shard 1 of the full run."""
    cfg = small_config(shared_data, cache_dir)
    render_dataset(cfg, tmp_path / "alone", shards=[1], progress=False)
    assert not (tmp_path / "alone" / "shards" / "shard-000000.tar").exists()
    a = _members(rendered_dataset / "shards" / "shard-000001.tar")
    b = _members(tmp_path / "alone" / "shards" / "shard-000001.tar")
    assert sorted(a) == sorted(b)
    for key in a:
        assert json.loads(a[key]["json"]) == json.loads(b[key]["json"])
        for f in ("mask.png", "parts.png", "depth.png", "rgb.jpg"):
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(a[key][f]))),
                                  np.asarray(Image.open(io.BytesIO(b[key][f])))), (key, f)


def test_a_different_configuration_cannot_reuse_an_output(rendered_dataset, shared_data, cache_dir):
    cfg = small_config(shared_data, cache_dir, seed=7)
    with pytest.raises(InputError, match=r"dataset\.json.*different configuration.*seed"):
        render_dataset(cfg, rendered_dataset, progress=False)


def _data_dir_with_bad_background(shared_data: Path, tmp_path: Path, image: Image.Image, name: str) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    for sub in ("cmu_mocap", "clothing", "hdri", "makehuman_assets"):
        (d / sub).symlink_to(shared_data / sub)
    (d / "backgrounds").mkdir()
    image.save(d / "backgrounds" / name)
    return d / "backgrounds" / name


def test_non_rgb_background_is_a_one_line_error_and_no_shard_is_left(shared_data, cache_dir, tmp_path):
    bad = _data_dir_with_bad_background(shared_data, tmp_path, Image.new("L", (64, 48), 128), "grey.jpg")
    cfg = small_config(tmp_path / "data", cache_dir)
    with pytest.raises(InputError) as e:
        render_dataset(cfg, tmp_path / "out", progress=False)
    msg = str(e.value)
    assert str(bad) in msg and "not RGB" in msg and "\n" not in msg
    assert not list((tmp_path / "out").rglob("*shard-*"))


def test_unreadable_background_is_a_one_line_error(shared_data, cache_dir, tmp_path):
    d = _data_dir_with_bad_background(shared_data, tmp_path, Image.new("RGB", (64, 48)), "broken.jpg")
    d.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    cfg = small_config(tmp_path / "data", cache_dir)
    with pytest.raises(InputError, match=r"broken\.jpg: unreadable background image"):
        SceneSampler(cfg)


def test_missing_data_dir_is_a_clear_error(cache_dir, tmp_path):
    cfg = small_config(tmp_path / "nowhere", cache_dir)
    with pytest.raises(InputError, match=r"nowhere: data directory not found"):
        SceneSampler(cfg)


def test_a_run_without_its_inputs_stops_before_writing_anything(shared_data, cache_dir, tmp_path):
    """Missing data or a missing pose file stop `synth render` in one line before dataset.json
    exists, so the output is not tied to the wrong inputs and the same command works once the
    data is there."""
    out = tmp_path / "ds"
    with pytest.raises(InputError, match=r"nowhere: data directory not found"):
        render_dataset(small_config(tmp_path / "nowhere", cache_dir), out, progress=False)
    with pytest.raises(InputError, match=r"missing\.npz: pose file not found"):
        render_dataset(small_config(shared_data, cache_dir, **{"dataset.pose_file": str(tmp_path / "missing.npz")}),
                       out, progress=False)
    assert not (out / "dataset.json").exists()


def test_a_failing_render_leaves_no_complete_shard(shared_data, cache_dir, tmp_path, monkeypatch):
    """A crash in the middle of a shard (here: the process is interrupted while writing) leaves
    neither shard-000000.tar nor its partial under a final name."""
    import synth.dataset.render_job as job
    cfg = small_config(shared_data, cache_dir, **{"dataset.shards": 1})
    calls = {"n": 0}
    real = job.encode_png

    def interrupted(arr):
        calls["n"] += 1
        if calls["n"] == 6:        # the second sample's encoding
            raise KeyboardInterrupt
        return real(arr)

    monkeypatch.setattr(job, "encode_png", interrupted)
    with pytest.raises(KeyboardInterrupt):
        render_dataset(cfg, tmp_path / "out", progress=False)
    shards = tmp_path / "out" / "shards"
    assert list(shards.glob("shard-*.tar")) == [] and list(shards.glob("*.json")) == []
    assert list(shards.glob(".*partial")) == []


def test_invalid_config_values_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"render\.samples"):
        load_config(None, ["render.samples=0"])
    with pytest.raises(ConfigError, match=r"unknown config key 'render\.sampels'"):
        load_config(None, ["render.sampels=8"])
    with pytest.raises(ConfigError, match=r"render\.image_size"):
        load_config(None, ["render.image_size=[96]"])
    with pytest.raises(ConfigError, match=r"'seed' = -1 is out of range \(must be >= 0\)"):
        load_config(None, ["seed=-1"])
    for override, key in (("render.cycles.max_bounces=-1", "render.cycles.max_bounces"),
                          ("render.cycles.denoise_quality=BEST", "render.cycles.denoise_quality"),
                          ("render.cycles.adaptive_threshold=2", "render.cycles.adaptive_threshold"),
                          ("render.cycles.tile_size=4", "render.cycles.tile_size"),
                          ("executor.image_cache_mb=-1", "executor.image_cache_mb")):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_config(None, [override])
    with pytest.raises(ConfigError, match=r"'render.cycles.tile_size' must be 0 \(one tile\) or a tile side in "
                                          r"\[8, 8192\], got 4"):
        load_config(None, ["render.cycles.tile_size=4"])
    with pytest.raises(ConfigError, match=r"'render.cycles.adaptive_min_samples' = 32 is above render.samples \(16\)"):
        load_config(None, ["render.cycles.adaptive_threshold=0.05", "render.cycles.adaptive_min_samples=32"])
    # every render.cycles key reaches the renderer's settings
    from synth.render.settings import CyclesSettings
    levers = load_config(None, ["render.samples=32", "render.cycles.adaptive_threshold=0.05",
                                "render.cycles.glossy_bounces=0", "render.cycles.denoise_quality=FAST",
                                "render.cycles.tile_size=64", "render.cycles.persistent_data=true"]).render
    assert CyclesSettings.from_config(levers) == CyclesSettings(
        samples=32, adaptive_threshold=0.05, glossy_bounces=0, denoise_quality="FAST", tile_size=64,
        persistent_data=True)
    assert CyclesSettings.from_config(load_config(None).render) == CyclesSettings()
    bad = tmp_path / "bad.yaml"
    bad.write_text("render:\n  samples: [1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        load_config(bad)
    user = tmp_path / "user.yaml"
    user.write_text("render:\n  samples: 32\n  camera:\n    azimuth_std_deg: 30\n")
    cfg = load_config(user, ["render.samples=8"])
    assert cfg.render.samples == 8 and cfg.render.camera.azimuth_std_deg == 30
    assert cfg.render.camera.elevation_std_deg == 15


def test_shard_selection():
    assert parse_shard_selection(10) == list(range(10))
    assert parse_shard_selection(10, shard_index=3) == [3]
    assert parse_shard_selection(10, shard_range="2:5") == [2, 3, 4]
    for kwargs in ({"shard_index": 10}, {"shard_range": "5:2"}, {"shard_range": "x"}):
        with pytest.raises(InputError):
            parse_shard_selection(10, **kwargs)


def _synth(*args, env=None):
    return subprocess.run([sys.executable, "-m", "synth.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("cmd", ["assets", "sample-poses", "render", "train", "eval", "gallery"])
def test_every_subcommand_has_help(cmd):
    r = _synth(cmd, "--help")
    assert r.returncode == 0 and "usage: synth" in r.stdout


def test_cli_errors_are_one_line(tmp_path):
    r = _synth("render", "--out", str(tmp_path / "o"), "render.samples=many")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "render.samples" in lines[0] and "must be an integer" in lines[0]
    r = _synth("render", "--out", str(tmp_path / "o"), f"data_dir={tmp_path / 'missing'}")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert "data directory not found" in lines[-1] and str(tmp_path / "missing") in lines[-1]


def test_sample_poses_then_render_from_the_pose_file(shared_data, cache_dir, tmp_path):
    env = {"SYNTH_CACHE": str(cache_dir)}
    out = tmp_path / "poses.npz"
    r = _synth("sample-poses", "--n", "20", "--out", str(out), f"data_dir={shared_data}",
               "poses.subjects=['16']", "--seed", "5", env=env)
    assert r.returncode == 0, r.stderr
    from synth.poses.posefile import load_poses
    poses = load_poses(out)
    assert len(poses) == 20 and poses.joints_3d.shape == (20, 15, 3)
    assert (out.with_suffix(".config.yaml")).is_file()
    cfg = small_config(shared_data, cache_dir, **{"dataset.shards": 1, "dataset.samples_per_shard": 2,
                                                  "dataset.pose_file": str(out)})
    render_dataset(cfg, tmp_path / "ds", progress=False)
    ids = {json.loads(m["json"])["pose"]["id"] for m in _members(tmp_path / "ds" / "shards" / "shard-000000.tar").values()}
    assert ids <= set(poses.pose_id.tolist())


def test_sample_poses_reports_and_skips_bad_clips_one_line_each(shared_data, tmp_path):
    """A truncated AMC and an AMC whose subject has no ASF: each reported on one line naming the
    file, the good clip still used."""
    mocap = tmp_path / "data" / "cmu_mocap"
    (mocap / "asf").mkdir(parents=True)
    (mocap / "amc" / "16").mkdir(parents=True)
    (mocap / "amc" / "02").mkdir(parents=True)
    (mocap / "asf" / "16.asf").write_bytes((shared_data / "cmu_mocap/asf/16.asf").read_bytes())
    good = (shared_data / "cmu_mocap/amc/16/16_03.amc").read_bytes()
    (mocap / "amc/16/16_03.amc").write_bytes(good)
    text = (shared_data / "cmu_mocap/amc/16/16_02.amc").read_text()
    (mocap / "amc/16/16_02.amc").write_text(text[: len(text) // 2].rsplit("\n", 3)[0] + "\n")
    (mocap / "amc/02/02_01.amc").write_bytes(good)
    r = _synth("sample-poses", "--n", "5", "--out", str(tmp_path / "p.npz"), f"data_dir={tmp_path / 'data'}",
               f"cache_dir={tmp_path / 'cache'}")
    assert r.returncode == 0, r.stderr
    warnings = [ln for ln in r.stderr.replace("\r", "\n").splitlines() if "warning:" in ln]
    assert len(warnings) == 2
    assert any("16_02.amc" in w for w in warnings)
    assert any("02_01.amc" in w and "no ASF" in w and "02.asf" in w for w in warnings)



def test_garment_library_follows_the_clothing_manifest(shared_data):
    """The render's garment photos are the manifest's, with its categories: the same reader the
    dressing stage uses (textures.segment.list_garment_photos)."""
    import csv
    from synth.textures.simple import garment_library
    with open(shared_data / "clothing" / "manifest.csv", newline="") as f:
        rows = {f"clothing/{r['file']}": (r["category"], r["subcategory"]) for r in csv.DictReader(f)}
    lib = garment_library(shared_data)
    got = {g.id: (g.category, g.subcategory) for photos in lib.values() for g in photos}
    assert got == rows
    assert all(g.category == region for region, photos in lib.items() for g in photos)


def _tiny_render_args(data_dir: Path, cache_dir: Path, *extra: str) -> list[str]:
    return ["--quiet", f"data_dir={data_dir}", f"cache_dir={cache_dir}", "render.image_size=[32, 32]",
            "render.samples=1", "dataset.shards=1", "dataset.samples_per_shard=1", "poses.subjects=['16']", *extra]


def _error_lines(err: str, command: str = "render") -> list[str]:
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if line.startswith(f"synth {command}: error:")]


def _data_dir_linked(shared_data: Path, root: Path) -> Path:
    """A data directory whose backgrounds are copies (to damage) and the rest links to the mirror."""
    import shutil
    root.mkdir(parents=True)
    for entry in shared_data.iterdir():
        if entry.name != "backgrounds":
            (root / entry.name).symlink_to(entry)
    shutil.copytree(shared_data / "backgrounds", root / "backgrounds")
    return root


def test_a_truncated_background_stops_the_run_before_the_output_records_it(shared_data, cache_dir, tmp_path, capsys):
    """Every file dataset.json fingerprints is decoded before it is written: a truncated background
    is one line naming it, nothing is written, and once the file is fixed the same command works."""
    from synth import cli
    data = _data_dir_linked(shared_data, tmp_path / "data")
    victim = sorted((data / "backgrounds").rglob("*.jpg"))[-1]
    good = victim.read_bytes()
    victim.write_bytes(good[: len(good) // 2])
    argv = ["render", "--out", str(tmp_path / "ds"), *_tiny_render_args(data, cache_dir)]
    assert cli.main(argv) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and str(victim) in lines[0] and "truncated" in lines[0], lines
    assert not (tmp_path / "ds" / "dataset.json").exists()
    victim.write_bytes(good)
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert (tmp_path / "ds" / "shards" / "shard-000000.tar").is_file()


def _pose_file(shared_data: Path, cache_dir: Path, path: Path, degenerate: bool = False) -> Path:
    from synth.poses.posefile import save_poses
    from synth.poses.sampling import load_pool
    pool = load_pool(shared_data, subjects=["16"], fps=30, min_distance=0.05, progress=False,
                     cache_dir=cache_dir / "poses")
    poses = pool.subset([0, 1])
    if degenerate:
        poses.rotations[:] = 0.0       # every bone collapsed onto the root: no sample can be rendered
    save_poses(path, poses)
    return path


def _warned(recwarn) -> str:
    """The warnings the command gave (pytest records them instead of letting them print)."""
    text = "\n".join(str(w.message) for w in recwarn)
    recwarn.clear()
    return text


def test_a_fixed_pose_file_is_accepted_by_the_same_command(shared_data, cache_dir, tmp_path, capsys, recwarn):
    """A truncated pose file is one line before dataset.json exists; a pose file that parses but
    cannot be rendered stops the run after dataset.json recorded it, with no shard complete: the
    fixed file is then taken (with a warning), not refused as "other input files"."""
    from synth import cli
    poses = tmp_path / "poses.npz"
    argv = ["render", "--out", str(tmp_path / "ds"), *_tiny_render_args(shared_data, cache_dir),
            f"dataset.pose_file={poses}", "dataset.max_retries=0"]
    good = _pose_file(shared_data, cache_dir, poses).read_bytes()
    poses.write_bytes(good[: len(good) // 2])
    assert cli.main(argv) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and str(poses) in lines[0] and "not a readable .npz" in lines[0], lines
    assert not (tmp_path / "ds" / "dataset.json").exists()

    _pose_file(shared_data, cache_dir, poses, degenerate=True)
    assert cli.main(argv) == 1
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "failed 1 times" in lines[0], lines
    assert (tmp_path / "ds" / "dataset.json").exists() and not list((tmp_path / "ds" / "shards").glob("*.tar"))

    poses.write_bytes(good)
    assert cli.main(argv) == 0
    assert "no shard was complete, so this output now records the new input files (inputs.pose_file_sha256" \
        in _warned(recwarn)
    meta = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    import hashlib
    assert meta["inputs"]["pose_file_sha256"] == hashlib.sha256(good).hexdigest()
    # with a complete shard, other input files are refused as before
    _pose_file(shared_data, cache_dir, poses, degenerate=True)
    assert cli.main(argv) == 2
    assert "made from other input files" in _error_lines(capsys.readouterr().err)[0]


def test_a_damaged_shard_is_found_reported_and_rendered_again(rendered_dataset, shared_data, cache_dir, tmp_path,
                                                              capsys, recwarn):
    """The sidecar records the tar's size and sha256: `synth check` names a truncated shard and a
    shard with a flipped byte; `synth render` renders the truncated one again (always: sizes are
    checked on every run) and, with --verify, the altered one; both come back byte for byte."""
    import shutil
    from synth import cli
    out = tmp_path / "ds"
    shutil.copytree(rendered_dataset, out)
    tars = [out / "shards" / f"shard-{s:06d}.tar" for s in (0, 1)]
    original = [t.read_bytes() for t in tars]
    for t, data in zip(tars, original):
        side = json.loads(t.with_suffix(".json").read_text())
        assert side["tar_bytes"] == len(data) and side["tar_sha256"] == __import__("hashlib").sha256(data).hexdigest()
    assert cli.main(["check", str(out)]) == 0
    assert "OK: 2 of 2 shard(s) complete and intact" in capsys.readouterr().out

    with open(tars[1], "r+b") as f:
        f.truncate(len(original[1]) // 2)
    import tarfile
    with tarfile.open(tars[0]) as tf:       # a byte in the middle of an image: the tar still reads
        rgb = next(m for m in tf.getmembers() if m.name.endswith(".rgb.jpg"))
    flipped = bytearray(original[0])
    flipped[rgb.offset_data + rgb.size // 2] ^= 0xFF
    tars[0].write_bytes(bytes(flipped))
    assert cli.main(["check", str(out)]) == 1
    captured = capsys.readouterr()
    bad = [l for l in captured.err.splitlines() if l.startswith("synth check:")]
    assert len(bad) == 2, captured.err
    assert str(tars[0]) in bad[0] and "sha256 differs" in bad[0]
    assert str(tars[1]) in bad[1] and f"{len(original[1]) // 2} bytes, its sidecar records {len(original[1])}" in bad[1]
    assert "PROBLEMS: 0 of 2" in captured.out

    argv = ["render", "--out", str(out), "--quiet", *(f"{k}={v}" for k, v in {
        "data_dir": shared_data, "cache_dir": cache_dir, "render.image_size": "[96, 96]", "render.samples": 4,
        "dataset.shards": 2, "dataset.samples_per_shard": 3, "poses.subjects": "['16']"}.items())]
    assert cli.main(argv) == 0
    warned = _warned(recwarn)
    assert f"{tars[1]}: {len(original[1]) // 2} bytes, its sidecar records {len(original[1])}; rendering it again" \
        in warned and str(tars[0]) not in warned
    captured = capsys.readouterr()
    assert json.loads(captured.out[captured.out.index("{"):])["rendered"] == [1]
    assert tars[1].read_bytes() == original[1] and tars[0].read_bytes() == bytes(flipped)
    assert cli.main([*argv[:3], "--verify", *argv[3:]]) == 0
    assert f"{tars[0]}: sha256 differs from the one its sidecar records; rendering it again" in _warned(recwarn)
    assert tars[0].read_bytes() == original[0]
    assert cli.main(["check", str(out)]) == 0


def test_shard_and_sidecar_faults_are_named_by_both_checks(rendered_dataset, tmp_path):
    """The resume check (shards.shard_problem) and `synth check` (verify.check_shard) name the
    same fault, from one sidecar reading: no tar, no sidecar, a sidecar that is not JSON or not an
    object, a tar shorter than its sidecar records; `synth check` also wants the sidecar's keys."""
    import shutil
    from synth.dataset.shards import shard_problem
    from synth.dataset.verify import check_shard
    out = tmp_path / "ds"
    shutil.copytree(rendered_dataset, out)
    shards = out / "shards"
    tar, side = shards / "shard-000000.tar", shards / "shard-000000.json"
    good = side.read_text()

    def both() -> tuple:
        return shard_problem(shards, 0, digest=True), check_shard(shards, 0, "rgb.jpg", 3)

    assert both() == (None, None)
    for text in ("{not json", "[1, 2]"):
        side.write_text(text)
        assert both() == ("sidecar shard-000000.json unreadable",) * 2
    side.write_text(json.dumps({k: v for k, v in json.loads(good).items() if k != "keys"}))
    assert both() == (None, "sidecar shard-000000.json unreadable")
    side.write_text(good)
    data = tar.read_bytes()
    tar.write_bytes(data[:-512])
    assert both() == (f"{len(data) - 512} bytes, its sidecar records {len(data)}",) * 2
    side.unlink()
    assert both() == ("no sidecar (its writer stopped before the end)",) * 2
    tar.unlink()
    assert both() == ("missing",) * 2
