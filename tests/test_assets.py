"""synth.assets: filling a data directory from a mirror folder, from an HTTP server, from (local
stand-ins for) the upstream URLs, and checking what is there. Real files from shared/data, a real
HTTP server on 127.0.0.1."""
from __future__ import annotations

import functools
import io
import hashlib
import http.server
import json
import os
import shutil
import socket
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image
import pytest
import scipy.io

from conftest import SHARED_DATA
from synth.assets import SET_NAMES, AssetError, fetch, require, verify, write_index
from synth.assets.download import download
from synth.assets.manifest import AKHTER_COMMIT, DREI_COMMIT, HDRI_NAMES
from synth.config import AssetsConfig
from synth.io_utils import InputError

SHARED = SHARED_DATA   # SYNTH_TEST_DATA, else ../shared/data beside the checkout
SMALL = ["akhter_black_joint_limits", "hdri", "lsp"]


def md5(p: Path) -> str:
    return hashlib.md5(p.read_bytes()).hexdigest()


def mirror_files(name: str) -> list[str]:
    return sorted(p.relative_to(SHARED).as_posix() for p in (SHARED / name).rglob("*") if p.is_file())


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def http_root(tmp_path):
    """A real HTTP server on 127.0.0.1 serving a folder; yields (folder, base URL)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_mirror_all_sets_linked_then_resumed(tmp_path):
    dest = tmp_path / "data"
    res = fetch(dest=dest, sets=list(SET_NAMES), mirror=SHARED, link=True, progress=False)
    assert res.report.ok, res.report.summary()
    manifest = json.loads((dest / "MANIFEST.json").read_text())
    for name in SET_NAMES:
        assert sorted(manifest["sets"][name]["files"]) == mirror_files(name)
        assert manifest["sets"][name]["file_count"] == len(mirror_files(name))
        assert manifest["sets"][name]["source"]["kind"] == "mirror"
    some = dest / "cmu_mocap" / "amc" / "16"
    amc = sorted(some.glob("*.amc"))[0]
    assert amc.is_symlink() and amc.read_bytes() == (SHARED / "cmu_mocap/amc/16" / amc.name).read_bytes()
    # Every clip's subject has its skeleton, as verification demands.
    subjects = {p.parent.name for p in (dest / "cmu_mocap" / "amc").glob("*/*.amc")}
    assert subjects == {p.stem for p in (dest / "cmu_mocap" / "asf").glob("*.asf")}
    again = fetch(dest=dest, sets=list(SET_NAMES), mirror=SHARED, link=True, progress=False)
    assert all(s.fetched == 0 and s.skipped == len(mirror_files(n)) for n, s in again.sets.items())


def test_mirror_copy_small_sets_deep_verify(tmp_path):
    dest = tmp_path / "data"
    settings = AssetsConfig(mirror=str(SHARED), sets=SMALL, timeout_s=5)
    res = fetch(settings, dest=dest, progress=False, deep_verify=True)
    assert res.dest == dest and res.report.ok
    for rel in mirror_files("akhter_black_joint_limits") + mirror_files("hdri"):
        p = dest / rel
        assert p.is_file() and not p.is_symlink()
        assert md5(p) == md5(SHARED / rel)
    joints = scipy.io.loadmat(dest / "lsp" / "joints_train.mat")["joints"]
    assert joints.shape[:2] == (3, 14) and joints.shape[2] == len(list((dest / "lsp/images").glob("*.jpg")))
    assert not any(p.name.endswith(".partial") for p in dest.rglob("*"))


def test_http_mirror_download_and_resume(tmp_path, http_root):
    served, base = http_root
    for rel in mirror_files("akhter_black_joint_limits") + mirror_files("hdri")[:4]:
        (served / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SHARED / rel, served / rel)
    write_index(served, ["akhter_black_joint_limits", "hdri"])
    dest = tmp_path / "data"
    res = fetch(dest=dest, sets=["akhter_black_joint_limits", "hdri"], base_url=base, progress=False, timeout_s=10)
    served_files = sorted(p.relative_to(served).as_posix() for p in served.rglob("*")
                          if p.is_file() and p.name != "MANIFEST.json")
    got = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file() and p.name != "MANIFEST.json")
    assert got == served_files
    assert all(md5(dest / r) == md5(served / r) for r in served_files)
    assert res.sets["hdri"].fetched == len([r for r in served_files if r.startswith("hdri/")])
    assert json.loads((dest / "MANIFEST.json").read_text())["sets"]["hdri"]["source"] == {"kind": "base_url", "where": base}

    # Resume: a deleted file and a truncated one are fetched again, the rest is skipped.
    hdrs = sorted((dest / "hdri").glob("*.hdr"))
    hdrs[0].unlink()
    with open(hdrs[1], "r+b") as f:
        f.truncate(1000)
    again = fetch(dest=dest, sets=["hdri"], base_url=base, progress=False, timeout_s=10)
    assert again.sets["hdri"].fetched == 2
    assert again.sets["hdri"].skipped == len(list((served / "hdri").iterdir())) - 2
    assert md5(hdrs[1]) == md5(served / "hdri" / hdrs[1].name)


def test_http_404_and_missing_index_are_one_line_errors(tmp_path, http_root):
    served, base = http_root
    shutil.copytree(SHARED / "akhter_black_joint_limits", served / "akhter_black_joint_limits")
    with pytest.raises(AssetError) as e:
        fetch(dest=tmp_path / "d0", sets=["akhter_black_joint_limits"], base_url=base, progress=False, retries=1)
    assert f"{base}/MANIFEST.json" in str(e.value) and "404" in str(e.value) and "\n" not in str(e.value)

    write_index(served, ["akhter_black_joint_limits"])
    (served / "akhter_black_joint_limits" / "staticPose.mat").unlink()
    with pytest.raises(AssetError) as e:
        fetch(dest=tmp_path / "d1", sets=["akhter_black_joint_limits"], base_url=base, progress=False, retries=2)
    msg = str(e.value)
    assert f"{base}/akhter_black_joint_limits/staticPose.mat" in msg and "HTTP 404" in msg and "\n" not in msg
    assert not (tmp_path / "d1" / "akhter_black_joint_limits" / "staticPose.mat").exists()
    # A set the index does not carry.
    with pytest.raises(AssetError, match="index has no set lsp"):
        fetch(dest=tmp_path / "d2", sets=["lsp"], base_url=base, progress=False)


def test_timeout_names_url(tmp_path):
    """A server that accepts the connection but never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/hdri/x_1k.hdr"
    try:
        with pytest.raises(AssetError) as e:
            download(url, tmp_path / "x.hdr", timeout_s=0.3, retries=2)
    finally:
        sock.close()
    assert str(e.value).startswith(url) and "timed out" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "x.hdr").exists()


def test_corrupt_files_are_detected(tmp_path):
    dest = tmp_path / "data"
    fetch(dest=dest, sets=SMALL, mirror=SHARED, progress=False)
    assert verify(dest, SMALL, deep=True).ok

    hdr = sorted((dest / "hdri").glob("*.hdr"))[0]
    data = bytearray(hdr.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = bytes(64)          # same size, different content
    hdr.write_bytes(bytes(data))
    assert verify(dest, ["hdri"]).ok                                  # quick check: sizes agree
    deep = verify(dest, ["hdri"], deep=True)
    assert not deep.ok and any(str(hdr) in p and "md5" in p for p in deep.sets["hdri"].problems)

    img = dest / "lsp" / "images" / "im0007.jpg"
    img.write_bytes(img.read_bytes()[:200])                           # truncated
    quick = verify(dest, ["lsp"])
    assert any(str(img) in p for p in quick.sets["lsp"].problems)
    assert any(str(img) in p and "readable" in p for p in verify(dest, ["lsp"], deep=True).sets["lsp"].problems)

    mat = dest / "akhter_black_joint_limits" / "staticPose.mat"
    mat.write_bytes(b"not a mat file" * 10)
    with pytest.raises(InputError, match="staticPose.mat"):
        require(dest, ["akhter_black_joint_limits"])

    # Refetching from the mirror repairs what the quick check sees (size) ...
    fetch(dest=dest, sets=["lsp", "akhter_black_joint_limits"], mirror=SHARED, progress=False)
    assert verify(dest, ["lsp", "akhter_black_joint_limits"], deep=True).ok


def test_missing_data_dir_and_set_give_clear_errors(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(InputError) as e:
        require(missing, ["lsp"])
    assert str(missing) in str(e.value) and "synth assets fetch" in str(e.value)
    report = verify(missing, ["lsp"])
    assert not report.ok and "does not exist" in report.problems[0]

    dest = tmp_path / "data"
    fetch(dest=dest, sets=["hdri"], mirror=SHARED, link=True, progress=False)
    with pytest.raises(InputError) as e:
        require(dest, ["hdri", "lsp"])
    assert str(e.value) == f"data directory {dest} is missing set lsp: run `synth assets fetch`"
    with pytest.raises(AssetError, match="not found in the mirror"):
        fetch(dest=dest, sets=["lsp"], mirror=tmp_path / "data", progress=False)
    with pytest.raises(InputError, match="unknown asset set"):
        verify(dest, ["lps"])


def _lsp_like_official_zip(path: Path) -> np.ndarray:
    """An archive laid out like lsp_dataset.zip (images/, joints.mat 3x14x2000, README.txt), from
    the mirror's train half; the 1000 test-half columns are a stand-in (reversed train columns)."""
    train = scipy.io.loadmat(SHARED / "lsp" / "joints_train.mat")["joints"]
    full = np.concatenate([train, train[:, :, ::-1]], axis=2)
    buf = path.parent / "joints.mat"
    scipy.io.savemat(buf, {"joints": full})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for img in sorted((SHARED / "lsp" / "images").glob("*.jpg")):
            zf.write(img, f"images/{img.name}")
        zf.write(SHARED / "lsp" / "images" / "im0001.jpg", "visualized/im0001.jpg")
        zf.write(buf, "joints.mat")
        zf.write(SHARED / "lsp" / "README_upstream.txt", "README.txt")
    return train


def test_upstream_path_extracts_layout(tmp_path, http_root):
    """The upstream recipes (archive rules, renames, the LSP slice, URL fallbacks) run for real
    against a local server that stands in for the upstream hosts via `url_map`."""
    served, base = http_root
    (served / "research").mkdir()
    train = _lsp_like_official_zip(served / "research" / "lsp_dataset.zip")
    (served / "drei" / "hdri").mkdir(parents=True)
    for n in HDRI_NAMES:
        os.symlink(SHARED / "hdri" / f"{n}_1k.hdr", served / "drei" / "hdri" / f"{n}_1k.hdr")
    shutil.copytree(SHARED / "akhter_black_joint_limits", served / "akhter")
    url_map = {
        "http://sam.johnson.io/research/": f"{base}/research/",
        # Poly Haven's CDN answers 404 here, so the second URL (drei-assets) must be used.
        "https://dl.polyhaven.org/file/ph-assets/HDRIs/hdr/1k/": f"{base}/polyhaven-gone/",
        f"https://raw.githubusercontent.com/pmndrs/drei-assets/{DREI_COMMIT}/hdri/": f"{base}/drei/hdri/",
        f"https://raw.githubusercontent.com/nicolocarissimi/tmp/{AKHTER_COMMIT}/": f"{base}/akhter/",
    }
    dest = tmp_path / "data"
    res = fetch(dest=dest, sets=SMALL, url_map=url_map, progress=False, timeout_s=10, retries=1)
    assert res.report.ok, res.report.summary()
    assert sorted(p.name for p in (dest / "lsp" / "images").iterdir()) == \
        sorted(p.name for p in (SHARED / "lsp" / "images").iterdir())
    assert md5(dest / "lsp/images/im0500.jpg") == md5(SHARED / "lsp/images/im0500.jpg")
    assert np.array_equal(scipy.io.loadmat(dest / "lsp" / "joints_train.mat")["joints"], train)
    assert (dest / "lsp" / "README_upstream.txt").read_bytes() == (SHARED / "lsp" / "README_upstream.txt").read_bytes()
    assert not (dest / "lsp" / "visualized").exists()
    for rel in mirror_files("hdri") + mirror_files("akhter_black_joint_limits"):
        if not rel.endswith("SOURCE.md"):
            assert md5(dest / rel) == md5(SHARED / rel)
    assert "sam.johnson.io" not in (dest / "lsp" / "SOURCE.md").read_text()   # it names the URL actually used
    assert not (dest / ".cache" / "downloads" / "lsp_dataset.zip").exists()  # archive removed after use

    # A re-run finds everything in place: nothing is downloaded again (the archive is even gone).
    (served / "research" / "lsp_dataset.zip").rename(served / "research" / "moved.zip")
    again = fetch(dest=dest, sets=SMALL, url_map=url_map, progress=False, timeout_s=10, retries=1)
    assert all(s.fetched == 0 for s in again.sets.values()) and again.report.ok
    # ... but a file lost since then makes the archive needed again.
    (dest / "lsp/images/im0003.jpg").unlink()
    with pytest.raises(AssetError, match="lsp_dataset.zip: HTTP 404"):
        fetch(dest=dest, sets=["lsp"], url_map=url_map, progress=False, timeout_s=10, retries=1)
    (served / "research" / "moved.zip").rename(served / "research" / "lsp_dataset.zip")
    assert fetch(dest=dest, sets=["lsp"], url_map=url_map, progress=False).sets["lsp"].fetched == 1002

    # A broken archive is a one-line fault naming the URL.
    (served / "research" / "lsp_dataset.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(AssetError) as e:
        fetch(dest=tmp_path / "d2", sets=["lsp"], url_map=url_map, progress=False, retries=1)
    assert f"{base}/research/lsp_dataset.zip: bad archive" in str(e.value) and "\n" not in str(e.value)


def test_upstream_cmu_clips_are_the_mirror_bytes(tmp_path, http_root):
    """Per-clip CMU URLs: the md5s recorded for the main split hold for the served files, and the
    regenerated clips_main.csv agrees with the mirror's (frame counts, sizes, md5s)."""
    served, base = http_root
    for asf in (SHARED / "cmu_mocap" / "asf").glob("*.asf"):
        (served / "subjects" / asf.stem).mkdir(parents=True, exist_ok=True)
        os.symlink(asf, served / "subjects" / asf.stem / asf.name)
    for amc in (SHARED / "cmu_mocap" / "amc").glob("*/*.amc"):
        os.symlink(amc, served / "subjects" / amc.parent.name / amc.name)
    (served / "gh").mkdir()
    os.symlink(SHARED / "cmu_mocap/index/cmu_database_listing.csv", served / "gh" / "CMU data.csv")
    url_map = {"http://mocap.cs.cmu.edu/subjects/": f"{base}/subjects/",
               "https://raw.githubusercontent.com/DragonForgedTheArtist/IClone-CMU-Mocap/"
               "79529f962ade3274163af53cd92179cee2ed9407/": f"{base}/gh/",
               # The optional Hahne spreadsheet is "gone": a warning, not a failure.
               "https://raw.githubusercontent.com/ScarletAnnaZ/": f"{base}/gone/"}
    dest = tmp_path / "data"
    res = fetch(dest=dest, sets=["cmu_mocap"], url_map=url_map, progress=False, retries=1)
    assert res.report.ok, res.report.summary()
    assert verify(dest, ["cmu_mocap"], deep=True).ok

    def rows(p):
        import csv
        with open(p, newline="") as f:
            return {r["clip_id"]: (r["amc_path"], r["n_frames"], r["bytes"], r["md5"], r["framerate_hz"],
                                   r["description"]) for r in csv.DictReader(f)}
    assert rows(dest / "cmu_mocap/index/clips_main.csv") == rows(SHARED / "cmu_mocap/index/clips_main.csv")
    assert not (dest / "cmu_mocap/index/cmu-mocap-index-spreadsheet.xls").exists()


def _github_zip(path: Path, top: str, files: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{top}/", b"")
        for rel, data in files.items():
            zf.writestr(f"{top}/{rel}", data)


def test_upstream_clothing_and_backgrounds_replay_the_selection(tmp_path, http_root):
    """GitHub-archive recipes: the recorded file lists pick, rename and re-encode exactly the
    mirror's files out of archives that also hold files that were not chosen. The archives are
    assembled from the mirror's own images in the upstream repositories' layouts."""
    from synth.assets import manifest as m
    from synth.assets import upstream_lists as lists

    served, base = http_root
    src = SHARED / "clothing"
    small = {}
    for rel in lists.CLOTHING_CC0:
        small[rel] = (SHARED / m._clothing_dest(rel)).read_bytes()
    small["train/t-shirt/00000000-not-chosen.jpg"] = next(iter(small.values()))
    small["train/hat/00000000-0000-hat.jpg"] = next(iter(small.values()))
    viton = {}
    for cid in lists.VITON_HD_IDS:
        viton[f"datasets/test/cloth/{cid}.jpg"] = (src / "viton_hd/cloth" / f"{cid}.jpg").read_bytes()
        mask = Image.open(src / "viton_hd/cloth_mask" / f"{cid}.png")
        buf = io.BytesIO()
        mask.resize((768, 1024)).save(buf, format="JPEG", quality=95)
        viton[f"datasets/test/cloth-mask/{cid}.jpg"] = buf.getvalue()
    bg = {}
    for n in lists.INRIA_NEGATIVES:
        bg[f"dataset/INRIA/{n}.jpg"] = (SHARED / f"backgrounds/inria_person_negatives/inria_neg_{n}.jpg").read_bytes()
    bg["dataset/INRIA/00616.jpg"] = bg[f"dataset/INRIA/{lists.INRIA_NEGATIVES[0]}.jpg"]   # not chosen
    for n in lists.LSP_DPM_NEGATIVES:
        buf = io.BytesIO()
        Image.open(SHARED / f"backgrounds/lsp_dpm_negatives/{n}.jpg").save(buf, format="PNG")
        bg[f"dataset/LSP/dpm-neg/{n}.png"] = buf.getvalue()
    gh = served / "gh"
    for repo, commit, files in (("alexeygrigorev/clothing-dataset-small", m.CLOTHING_SMALL_COMMIT, small),
                                ("agrikatheprogrammer/VITON-HD", m.VITON_FORK_COMMIT, viton),
                                ("ruananswer/Articulated_Pose_Estimation_1", m.POSE_REPO_COMMIT, bg)):
        (gh / repo / "archive").mkdir(parents=True)
        _github_zip(gh / repo / "archive" / f"{commit}.zip", f"{repo.split('/')[1]}-{commit}", files)
    dest = tmp_path / "data"
    res = fetch(dest=dest, sets=["clothing", "backgrounds"], url_map={"https://github.com/": f"{base}/gh/"},
                progress=False, retries=1, deep_verify=True)
    assert res.report.ok, res.report.summary()
    for name in ("clothing", "backgrounds"):
        want = sorted(r for r in mirror_files(name) if r.endswith((".jpg", ".png")))
        got = sorted(p.relative_to(dest).as_posix() for p in (dest / name).rglob("*") if p.suffix in (".jpg", ".png"))
        assert got == want
    with Image.open(dest / "clothing/viton_hd/cloth_mask" / f"{lists.VITON_HD_IDS[0]}.png") as im:
        assert im.mode == "L" and im.size == (384, 512) and set(np.unique(np.asarray(im))) <= {0, 255}
    for rel in mirror_files("backgrounds")[:40]:
        if rel.endswith(".jpg"):
            with Image.open(dest / rel) as a, Image.open(SHARED / rel) as b:
                assert a.size == b.size and a.mode == "RGB"
    import csv
    with open(dest / "clothing/manifest.csv", newline="") as f:
        mf = {r["file"]: r for r in csv.DictReader(f)}
    with open(SHARED / "clothing/manifest.csv", newline="") as f:
        ref = {r["file"]: r for r in csv.DictReader(f)}
    assert set(mf) == set(ref)
    assert all((mf[k]["mask"], mf[k]["category"], mf[k]["subcategory"], mf[k]["source_path"])
               == (ref[k]["mask"], ref[k]["category"], ref[k]["subcategory"], ref[k]["source_path"]) for k in ref)


class _OversizedHandler(http.server.BaseHTTPRequestHandler):
    """Serves an index that gives one file `size` bytes, and a body for it far longer than that
    (HTTP/1.0, no Content-Length unless `announce`: the client must stop by itself). Records how
    much it managed to send before the client hung up."""
    size = 1000
    body = 64 << 20
    announce = False
    sent: list[int] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.endswith("/MANIFEST.json"):
            data = json.dumps({"schema": "synth-assets/1", "sets": {"hdri": {"files": {
                "hdri/big_1k.hdr": {"size": self.size, "md5": "0" * 32}}}}}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(200)
        if self.announce:
            self.send_header("Content-Length", str(self.body))
        self.end_headers()
        block, total = b"#?RADIANCE garbage " * 3449, 0      # ~64 KiB
        try:
            while total < self.body:
                self.wfile.write(block)
                total += len(block)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.sent.append(total)


@pytest.mark.parametrize("announce", [False, True])
def test_a_download_stops_at_the_indexed_size(tmp_path, announce):
    """A server that sends (or announces) 64 MB for a file the index says is 1000 bytes: the
    download stops right after byte 1000 (or before reading the body), nothing is left under the
    final or the partial name."""
    handler = type("Handler", (_OversizedHandler,), {"announce": announce, "sent": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    dest = tmp_path / "data"
    try:
        with pytest.raises(AssetError) as e:
            fetch(dest=dest, sets=["hdri"], base_url=base, progress=False, timeout_s=10, retries=1)
        for _ in range(200):           # the server notices the hang-up
            if handler.sent:
                break
            time.sleep(0.05)
    finally:
        server.shutdown()
        server.server_close()
    msg = str(e.value)
    assert msg.startswith(f"{base}/hdri/big_1k.hdr: ") and "\n" not in msg
    assert ("announces 67108864 bytes, more than the indexed 1000" in msg if announce
            else "sends more than the indexed 1000 bytes; stopped there" in msg), msg
    assert handler.sent and handler.sent[0] < handler.body // 4, handler.sent   # not read to the end
    assert not (dest / "hdri" / "big_1k.hdr").exists()
    assert not [p for p in dest.rglob("*") if p.name.endswith(".partial")]


def test_index_entries_that_cannot_be_verified_are_refused(tmp_path, http_root, capsys):
    """An entry with neither size nor md5 is refused (nothing downloaded under its name) unless
    asked for with --allow-unverified; a non-numeric size is one line naming the index and the
    entry (through the real command)."""
    from synth import cli
    served, base = http_root
    for rel in mirror_files("hdri")[:4]:
        (served / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SHARED / rel, served / rel)
    write_index(served, ["hdri"])
    manifest = json.loads((served / "MANIFEST.json").read_text())
    files = manifest["sets"]["hdri"]["files"]
    bare = sorted(r for r in files if r.endswith(".hdr"))[0]
    files[bare] = {}
    (served / "MANIFEST.json").write_text(json.dumps(manifest))
    dest = tmp_path / "data"
    with pytest.raises(AssetError) as e:
        fetch(dest=dest, sets=["hdri"], base_url=base, progress=False, timeout_s=10)
    assert f"{base}/MANIFEST.json: entry {bare!r} gives neither size nor md5" in str(e.value)
    assert "--allow-unverified" in str(e.value) and not (dest / bare).exists()
    fetch(dest=dest, sets=["hdri"], base_url=base, progress=False, timeout_s=10, allow_unverified=True)
    assert md5(dest / bare) == md5(served / bare)

    files[bare] = {"size": "12kB", "md5": md5(served / bare)}
    (served / "MANIFEST.json").write_text(json.dumps(manifest))
    rc = cli.main(["assets", "fetch", "--base-url", base, "--sets", "hdri", f"data_dir={tmp_path / 'other'}"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines == [f"synth assets: error: {base}/MANIFEST.json: entry {bare!r}: size '12kB' is not a whole "
                     "number of bytes"], err
