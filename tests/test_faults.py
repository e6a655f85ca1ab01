"""Operating-system and decoder faults end in one line naming the file, never a traceback (that is
kept for --debug), at every command that writes; counts have upper bounds, so no input grows
memory without end. Real commands on real files: a read-only filesystem and a full one are real
mounts (a bind mount remounted read-only, a tiny tmpfs) in a private mount namespace of the
command's own (`unshare -m`), since the tests run as root, whom a chmod does not stop."""
from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from synth import cli

PY = sys.executable


def _can_unshare() -> bool:
    try:
        return subprocess.run(["unshare", "-m", "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _in_mount_namespace(tmp_path: Path, mounts: list[str], commands: dict[str, list[str]],
                        after: tuple[str, ...] = (), timeout: int = 600) -> dict[str, tuple[int, str]]:
    """Run `synth` commands (name -> argv after `synth`) one after another in a private mount
    namespace after the shell lines `mounts` (and before `after`); (exit status, stderr) per
    command."""
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    lines = ["set -e", *mounts, "set +e"]
    for name, argv in commands.items():
        quoted = " ".join("'" + a.replace("'", "'\\''") + "'" for a in argv)
        lines.append(f"{PY} -m synth.cli {quoted} >{logs}/{name}.out 2>{logs}/{name}.err; echo $? >{logs}/{name}.rc")
    lines += after
    run = subprocess.run(["unshare", "-m", "sh", "-c", "\n".join(lines)], capture_output=True, text=True,
                         timeout=timeout)
    assert run.returncode == 0, run.stderr
    return {name: (int((logs / f"{name}.rc").read_text()), (logs / f"{name}.err").read_text()) for name in commands}


def _one_error_line(command: str, err: str) -> str:
    assert "Traceback" not in err, err
    lines = [l for l in err.replace("\r", "\n").splitlines() if l.startswith(f"synth {command}: error:")]
    assert len(lines) == 1, err
    return lines[0]


def _render_args(shared_data: Path, cache_dir: Path, size: int = 32, per_shard: int = 1) -> list[str]:
    return ["--quiet", f"data_dir={shared_data}", f"cache_dir={cache_dir}", f"render.image_size=[{size}, {size}]",
            "render.samples=1", "dataset.shards=1", f"dataset.samples_per_shard={per_shard}", "poses.subjects=['16']"]


def test_read_only_output_is_one_line_for_every_command_that_writes(rendered_dataset, shared_data, cache_dir,
                                                                    tmp_path):
    """render, sample-poses, dress, train, gallery and assets index with their output on a
    read-only filesystem: exit 1 and one line naming the path and "Read-only file system"."""
    if not _can_unshare():
        pytest.skip("needs a private mount namespace (unshare -m) to make a read-only filesystem as root")
    ro = tmp_path / "ro"
    shutil.copytree(rendered_dataset, ro / "ds")
    shutil.copytree(shared_data / "akhter_black_joint_limits", ro / "data" / "akhter_black_joint_limits")
    env_args = [f"data_dir={shared_data}", f"cache_dir={cache_dir}", "poses.subjects=['16']"]
    commands = {
        "render": ["render", "--out", str(ro / "new"), *_render_args(shared_data, cache_dir)],
        "sample-poses": ["sample-poses", "--n", "5", "--out", str(ro / "poses.npz"), "--quiet", *env_args],
        "dress": ["dress", "--n", "1", "--out", str(ro / "lib"), "--quiet", *env_args],
        "train": ["train", "--data", str(rendered_dataset), "--out", str(ro / "run"), "train.epochs=1",
                  "train.batch_size=2", "train.input_size=32", "train.width=8", "train.workers=0",
                  "train.real.log_pck=false", *env_args],
        "gallery": ["gallery", str(ro / "ds")],        # writes DATASET/gallery/index.html
        "assets": ["assets", "index", "--sets", "akhter_black_joint_limits", f"data_dir={ro / 'data'}"],
    }
    results = _in_mount_namespace(tmp_path, [f"mount --bind {ro} {ro}", f"mount -o remount,bind,ro {ro}"], commands)
    for name, (rc, err) in results.items():
        line = _one_error_line(name, err)
        assert rc == 1, (name, err)
        assert f": error: {ro}/" in line and line.endswith("Read-only file system"), (name, line)
    assert not (ro / "ds" / "gallery").exists() and not (ro / "new").exists()


def test_full_disk_is_one_line_and_leaves_no_partial_file(shared_data, cache_dir, tmp_path):
    """A full filesystem (a 256 KiB tmpfs): sample-poses' pose file and render's shard do not fit.
    One line naming the file and "No space left on device"; no half-written file is left."""
    if not _can_unshare():
        pytest.skip("needs a private mount namespace (unshare -m) to mount a small tmpfs")
    full = tmp_path / "full"
    full.mkdir()
    commands = {
        "sample-poses": ["sample-poses", "--n", "2000", "--out", str(full / "poses.npz"), "--quiet",
                         f"data_dir={shared_data}", f"cache_dir={cache_dir}", "poses.subjects=['16']"],
        "render": ["render", "--out", str(full / "ds"), *_render_args(shared_data, cache_dir, size=256, per_shard=8)],
    }
    logs = tmp_path / "logs"
    results = _in_mount_namespace(tmp_path, [f"mount -t tmpfs -o size=256k tmpfs {full}"], commands,
                                  after=(f"ls -aR {full} > {logs}/left.txt",))
    for name, (rc, err) in results.items():
        line = _one_error_line(name, err)
        assert rc == 1, (name, err)
        assert f": error: {full}/" in line and line.endswith("No space left on device"), (name, line)
    assert f"{full}/poses.npz" in _one_error_line("sample-poses", results["sample-poses"][1])
    assert "/shards/.shard-000000.tar." in _one_error_line("render", results["render"][1])
    left = (logs / "left.txt").read_text()
    assert "poses.npz" not in left and ".partial" not in left and ".tmp" not in left, left
    assert "dataset.json" in left and "shard-000000.tar" not in left, left


def _data_dir_with(shared_data: Path, root: Path, backgrounds: dict[str, bytes] | None = None,
                   garments: dict[str, bytes] | None = None) -> Path:
    """A data directory linking the mirror's sets, with only the given backgrounds and/or garment
    photos (a manifest listing them as upper and lower)."""
    root.mkdir(parents=True)
    for entry in shared_data.iterdir():
        if entry.name not in {"backgrounds", "clothing"} or (entry.name == "backgrounds" and backgrounds is None) \
                or (entry.name == "clothing" and garments is None):
            (root / entry.name).symlink_to(entry)
    for name, data in (backgrounds or {}).items():
        (root / "backgrounds" / "x").mkdir(parents=True, exist_ok=True)
        (root / "backgrounds" / "x" / name).write_bytes(data)
    if garments is not None:
        rows = []
        for i, (name, data) in enumerate(garments.items()):
            cat = ("upper", "lower")[i % 2]
            (root / "clothing" / cat / "shirt").mkdir(parents=True, exist_ok=True)
            (root / "clothing" / cat / "shirt" / name).write_bytes(data)
            rows.append({"file": f"{cat}/shirt/{name}", "category": cat, "subcategory": "shirt", "mask": ""})
        with open(root / "clothing" / "manifest.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["file", "category", "subcategory", "mask"])
            w.writeheader()
            w.writerows(rows)
    return root


def _jpeg(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (120, 80, 40)).save(buf, "JPEG")
    return buf.getvalue()


def _jpeg_claiming(w: int, h: int) -> bytes:
    """A small JPEG whose header says it is w x h pixels: a decompression bomb."""
    data = bytearray(_jpeg(64, 64))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 7] = h.to_bytes(2, "big")
    data[sof + 7:sof + 9] = w.to_bytes(2, "big")
    return bytes(data)


def test_decoder_faults_in_backgrounds_are_one_line_naming_the_file(shared_data, cache_dir, tmp_path, capsys):
    """A background claiming 20000 x 20000 pixels (Pillow's DecompressionBombError) and a 1 x 1
    background (cv2.resize's assertion on an empty crop) are one line each, before anything is
    written; --debug adds the traceback."""
    cases = {"bomb.jpg": (_jpeg_claiming(20000, 20000), "has more than 89478485 pixels (the limit); use a smaller copy"),
             "dot.jpg": (_jpeg(1, 1), "is 1x1 pixels, smaller than the minimum 16x16")}
    for name, (data, fault) in cases.items():
        data_dir = _data_dir_with(shared_data, tmp_path / name / "data", backgrounds={name: data})
        out = tmp_path / name / "ds"
        assert cli.main(["render", "--out", str(out), *_render_args(data_dir, cache_dir)]) == 2
        line = _one_error_line("render", capsys.readouterr().err)
        assert line == f"synth render: error: {data_dir}/backgrounds/x/{name}: background image {fault}", line
        assert not (out / "dataset.json").exists()
    assert cli.main(["render", "--out", str(out), *_render_args(data_dir, cache_dir), "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.strip().splitlines()[-1].startswith("synth render: error:")


def test_a_one_pixel_garment_photo_is_one_line_in_dress(shared_data, cache_dir, tmp_path, capsys):
    """`synth dress` on garment photos of 1 x 1 pixels (cv2.kmeans' assertion on the border
    model): one line naming the photo."""
    data_dir = _data_dir_with(shared_data, tmp_path / "data", garments={"a.jpg": _jpeg(1, 1), "b.jpg": _jpeg(1, 1)})
    rc = cli.main(["dress", "--n", "1", "--out", str(tmp_path / "lib"), "--quiet", f"data_dir={data_dir}",
                   f"cache_dir={cache_dir}", "textures.size=256", "textures.view_size=256"])
    line = _one_error_line("dress", capsys.readouterr().err)
    assert rc == 2
    assert "/clothing/" in line and line.endswith("garment photo is 1x1 pixels, smaller than the minimum 16x16"), line


_MEASURE = """
import os, resource, subprocess, sys
def limit():
    resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]),) * 2)
proc = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL, preexec_fn=limit)
_, status, usage = os.wait4(proc.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def _run_measured(argv: list[str], address_space: int = 3 << 30) -> tuple[int, str, float, float]:
    """(exit status, stderr, peak RSS in MB, wall seconds) of `synth ARGV` under an address-space
    limit (so that a run that does grow stops there instead of taking the machine). A small
    Python in between starts it: a child forked from pytest itself would count pytest's own
    memory in its peak RSS."""
    t0 = time.monotonic()
    run = subprocess.run([PY, "-c", _MEASURE, str(address_space), PY, "-m", "synth.cli", *argv],
                         capture_output=True, text=True, timeout=300)
    rc, maxrss_kb = (int(x) for x in run.stdout.split())
    return rc, run.stderr, maxrss_kb / 1024, time.monotonic() - t0


def test_counts_above_their_limits_stop_at_once_in_one_line(shared_data, cache_dir, tmp_path, capsys):
    """`synth sample-poses --n 10000000000` stops at once (small RSS) with one line naming the
    flag and the limit, instead of growing until the machine dies; likewise shard counts and
    library sizes."""
    rc, err, rss_mb, wall = _run_measured(["sample-poses", "--n", "10000000000", "--out", str(tmp_path / "p.npz"),
                                           f"data_dir={shared_data}", f"cache_dir={cache_dir}", "--quiet"])
    line = _one_error_line("sample-poses", err)
    from synth.limits import MAX_LIBRARY_ENTRIES, MAX_POSES, MAX_SHARDS
    assert rc == 2 and line == (f"synth sample-poses: error: override 'poses.n=10000000000': config key 'poses.n' = "
                                f"10000000000 is above the limit of {MAX_POSES} (see README.md, Limits)"), err
    assert rss_mb < 300 and wall < 60, (rss_mb, wall)
    assert not (tmp_path / "p.npz").exists()

    assert cli.main(["render", "--out", str(tmp_path / "ds"), "--shards", "10000000000",
                     f"data_dir={shared_data}"]) == 2
    assert f"config key 'dataset.shards' = 10000000000 is above the limit of {MAX_SHARDS}" in \
        _one_error_line("render", capsys.readouterr().err)
    assert not (tmp_path / "ds").exists()
    assert cli.main(["dress", "--n", str(MAX_LIBRARY_ENTRIES + 1), "--out", str(tmp_path / "lib")]) == 2
    assert f"--n = {MAX_LIBRARY_ENTRIES + 1} is above the limit" in _one_error_line("dress", capsys.readouterr().err)
