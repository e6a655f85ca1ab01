"""Checking a data directory: is each asset set there, shaped as the stages expect, and intact?

Quick checks (default) look at structure, counts, file headers, sizes against the data directory's
MANIFEST.json, and load the small .mat files; they take well under a second. Deep checks
(`deep=True`) also compare md5s (MANIFEST.json, cmu_mocap/index/clips_main.csv) and decode every
image and HDRI, which finds files corrupted in place.

MANIFEST.json (written by `fetch` and `write_index`) is also the index a mirror served over HTTP
must carry (see synth.assets.fetch):

    {"schema": "synth-assets/1", "sets": {NAME: {"source": {...}, "written": ISO time,
     "file_count": N, "bytes": B, "files": {"NAME/rel/path": {"size": S, "md5": "..."}}}}}
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import cv2
from PIL import Image

from synth.assets.download import AssetError, md5_file
from synth.assets.manifest import SET_NAMES, SETS
from synth.io_utils import InputError, atomic_write_json

MANIFEST_NAME = "MANIFEST.json"
MANIFEST_SCHEMA = "synth-assets/1"


@dataclass
class SetReport:
    name: str
    present: bool = False
    file_count: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.present and not self.problems


@dataclass
class VerifyReport:
    dest: Path
    sets: dict[str, SetReport] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)     # about the data directory itself

    @property
    def ok(self) -> bool:
        return not self.problems and all(s.ok for s in self.sets.values())

    def all_problems(self) -> list[str]:
        return self.problems + [f"{n}: {p}" for n, s in self.sets.items() for p in s.problems]

    def summary(self) -> str:
        lines = [f"data directory {self.dest}: {'OK' if self.ok else 'PROBLEMS'}"]
        lines += [f"  {p}" for p in self.problems]
        for name, s in self.sets.items():
            state = "ok" if s.ok else ("missing" if not s.present else f"{len(s.problems)} problem(s)")
            counts = ", ".join(f"{k}: {v}" for k, v in s.counts.items())
            lines.append(f"  {name}: {state} ({s.file_count} files{'; ' + counts if counts else ''})")
            lines += [f"    {p}" for p in s.problems[:10]]
            if len(s.problems) > 10:
                lines.append(f"    ... and {len(s.problems) - 10} more")
        return "\n".join(lines)


def _check_names(sets) -> list[str]:
    names = list(SET_NAMES if sets is None else sets)
    unknown = [n for n in names if n not in SETS]
    if unknown:
        raise InputError(f"unknown asset set(s) {unknown}; known sets: {list(SET_NAMES)}")
    return names


def read_manifest(dest: Path) -> dict:
    path = Path(dest) / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise AssetError(f"{path}: not valid JSON ({e.__class__.__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("sets"), dict):
        raise AssetError(f"{path}: not a {MANIFEST_SCHEMA} index (no 'sets' mapping)")
    return data


def set_files(dest: Path, name: str) -> list[Path]:
    """The files of a set (following links), without hidden and temporary files."""
    root = Path(dest) / name
    out = []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if p.is_file():
            out.append(p)
    return sorted(out)


def verify(dest: Path | str, sets=None, deep: bool = False) -> VerifyReport:
    """Check the asset sets `sets` (default: all) in the data directory `dest`."""
    dest = Path(dest)
    names = _check_names(sets)
    report = VerifyReport(dest=dest)
    if not dest.is_dir():
        report.problems.append(f"data directory {dest} does not exist: run `synth assets fetch`")
        for n in names:
            report.sets[n] = SetReport(n)
        return report
    try:
        manifest = read_manifest(dest)
    except AssetError as e:
        report.problems.append(str(e))
        manifest = {}
    for n in names:
        s = SetReport(n)
        report.sets[n] = s
        root = dest / n
        if not root.is_dir():
            s.problems.append(f"{root} is missing")
            continue
        s.present = True
        files = set_files(dest, n)
        s.file_count = len(files)
        for pattern, minimum in SETS[n].expect.globs.items():
            count = sum(1 for p in root.glob(pattern) if p.is_file())
            s.counts[pattern] = count
            if count < minimum:
                s.problems.append(f"{root}/{pattern}: {count} files, need at least {minimum}")
        listed = manifest.get("sets", {}).get(n, {}).get("files", {})
        for rel, meta in listed.items():
            p = dest / rel
            if not p.is_file():
                s.problems.append(f"{p}: listed in {MANIFEST_NAME} but missing")
            elif p.stat().st_size != meta.get("size"):
                s.problems.append(f"{p}: {p.stat().st_size} bytes, {MANIFEST_NAME} says {meta.get('size')}")
            elif deep and meta.get("md5") and md5_file(p) != meta["md5"]:
                s.problems.append(f"{p}: md5 differs from {MANIFEST_NAME} (corrupt)")
        try:
            CHECKS[n](root, s, deep)
        except Exception as e:  # a checker must never crash the report
            s.problems.append(f"{root}: check failed ({e.__class__.__name__}: {e})")
    return report


def require(dest: Path | str, sets, deep: bool = False) -> VerifyReport:
    """Fail early, in one line, when a stage's asset sets are not all there and sound."""
    dest = Path(dest)
    names = _check_names(sets)
    if not dest.is_dir():
        raise InputError(f"data directory {dest} does not exist: run `synth assets fetch`")
    report = verify(dest, names, deep=deep)
    for n in names:
        s = report.sets[n]
        if not s.present:
            raise InputError(f"data directory {dest} is missing set {n}: run `synth assets fetch`")
        if s.problems:
            more = f" (+{len(s.problems) - 1} more)" if len(s.problems) > 1 else ""
            raise InputError(f"data directory {dest}: set {n} is incomplete: {s.problems[0]}{more}: "
                             f"run `synth assets fetch`")
    return report


# ------------------------------------------------------------------------------------------------
# Per-set checks: (set folder, report, deep) -> None, appending one-line problems


def _check_cmu(root: Path, s: SetReport, deep: bool) -> None:
    subjects_with_asf = {p.stem for p in (root / "asf").glob("*.asf")}
    for asf in (root / "asf").glob("*.asf"):
        head = asf.read_bytes()[:4096]
        if b":root" not in head and b":bonedata" not in head:
            s.problems.append(f"{asf}: not an ASF skeleton (no :root / :bonedata section)")
    for amc in sorted((root / "amc").glob("*/*.amc")):
        subject = amc.parent.name
        if not amc.stem.startswith(subject + "_"):
            s.problems.append(f"{amc}: name is not {subject}_TT.amc")
        if subject not in subjects_with_asf:
            s.problems.append(f"{amc}: subject {subject} has no asf/{subject}.asf")
        with open(amc, "rb") as f:
            head = f.read(512)
        if b":DEGREES" not in head and b":FULLY-SPECIFIED" not in head and not head.lstrip().startswith((b"#", b":")):
            s.problems.append(f"{amc}: not an AMC motion file (no header)")
    index = root / "index" / "clips_main.csv"
    if index.is_file():
        with open(index, newline="") as f:
            for row in csv.DictReader(f):
                p = root / row.get("amc_path", "")
                if not p.is_file():
                    s.problems.append(f"{index}: lists {row.get('amc_path')} which is missing")
                    continue
                if row.get("bytes") and str(p.stat().st_size) != row["bytes"]:
                    s.problems.append(f"{p}: {p.stat().st_size} bytes, clips_main.csv says {row['bytes']}")
                elif deep and row.get("md5") and md5_file(p) != row["md5"]:
                    s.problems.append(f"{p}: md5 differs from clips_main.csv (corrupt)")


def _check_lsp(root: Path, s: SetReport, deep: bool) -> None:
    import scipy.io       # scipy's .mat reader: loaded only to check .mat files

    mat = root / "joints_train.mat"
    if not mat.is_file():
        return  # already reported by the glob counts
    try:
        joints = scipy.io.loadmat(mat)["joints"]
    except Exception as e:
        s.problems.append(f"{mat}: not loadable ({e.__class__.__name__}: {e})")
        return
    if joints.ndim != 3 or joints.shape[:2] != (3, 14):
        s.problems.append(f"{mat}: joints has shape {joints.shape}, expected (3, 14, N)")
        return
    n = joints.shape[2]
    s.counts["joints_train.mat N"] = n
    missing = [f"im{k:04d}.jpg" for k in range(1, n + 1) if not (root / "images" / f"im{k:04d}.jpg").is_file()]
    if missing:
        s.problems.append(f"{root / 'images'}: {len(missing)} of the {n} annotated images are missing, e.g. {missing[0]}")
    if deep:
        for p in sorted((root / "images").glob("*.jpg")):
            _check_image(p, s)


def _check_clothing(root: Path, s: SetReport, deep: bool) -> None:
    for cloth in sorted((root / "viton_hd" / "cloth").glob("*.jpg")):
        mask = root / "viton_hd" / "cloth_mask" / (cloth.stem + ".png")
        if not mask.is_file():
            s.problems.append(f"{cloth}: its mask {mask.name} is missing")
    if deep:
        for p in sorted(root.rglob("*")):
            if p.suffix.lower() in (".jpg", ".png") and p.is_file():
                _check_image(p, s, rgb=p.parent.name != "cloth_mask")


def _check_backgrounds(root: Path, s: SetReport, deep: bool) -> None:
    if deep:
        for p in sorted(root.rglob("*.jpg")):
            _check_image(p, s, rgb=True)


def _check_hdri(root: Path, s: SetReport, deep: bool) -> None:
    for p in sorted(root.glob("*.hdr")):
        with open(p, "rb") as f:
            head = f.read(10)
        if not head.startswith((b"#?RADIANCE", b"#?RGBE")):
            s.problems.append(f"{p}: not a Radiance .hdr file (header {head[:10]!r})")
            continue
        if deep:

            img = cv2.imread(str(p), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR)
            if img is None or img.ndim != 3 or img.shape[2] != 3:
                s.problems.append(f"{p}: cannot be decoded as an RGB HDR image")
            elif img.shape[1] != 2 * img.shape[0]:
                s.problems.append(f"{p}: {img.shape[1]}x{img.shape[0]} is not an equirectangular 2:1 map")


def _check_akhter(root: Path, s: SetReport, deep: bool) -> None:
    import scipy.io       # scipy's .mat reader: loaded only to check .mat files

    wanted = {"staticPose.mat": "Si", "jointAngleModel.mat": "angleSprd",
              "jointAngleModel_v2.mat": "angleSprd", "skeleton_17Pts.mat": "edges"}
    for name, key in wanted.items():
        if not deep and name != "staticPose.mat":
            continue
        p = root / name
        if not p.is_file():
            continue
        try:
            data = scipy.io.loadmat(p)
        except Exception as e:
            s.problems.append(f"{p}: not loadable ({e.__class__.__name__}: {e})")
            continue
        if key not in data:
            s.problems.append(f"{p}: has no variable {key!r}")
        elif name == "staticPose.mat" and data[key].shape != (3, 17):
            s.problems.append(f"{p}: Si has shape {data[key].shape}, expected (3, 17)")


def _check_image(p: Path, s: SetReport, rgb: bool = True) -> None:

    try:
        with Image.open(p) as img:
            img.load()
            mode = img.mode
    except Exception as e:
        s.problems.append(f"{p}: not a readable image ({e.__class__.__name__})")
        return
    if rgb and mode not in ("RGB", "L", "P", "RGBA"):
        s.problems.append(f"{p}: image mode {mode} cannot be read as RGB")


CHECKS = {"cmu_mocap": _check_cmu, "lsp": _check_lsp, "clothing": _check_clothing,
          "backgrounds": _check_backgrounds, "hdri": _check_hdri, "akhter_black_joint_limits": _check_akhter}


# ------------------------------------------------------------------------------------------------
# The index


def index_entry(dest: Path, name: str, source: dict) -> dict:
    files = {}
    total = 0
    for p in set_files(dest, name):
        rel = p.relative_to(dest).as_posix()
        size = p.stat().st_size
        total += size
        files[rel] = {"size": size, "md5": md5_file(p)}
    return {"source": source, "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "file_count": len(files), "bytes": total, "files": files}


def write_index(dest: Path | str, sets=None, source: dict | None = None,
                sources: dict[str, dict] | None = None) -> Path:
    """Write (or update) DEST/MANIFEST.json for the sets present in `dest`: file counts, sizes, md5s.

    `fetch` calls it at the end; run it on a mirror folder before serving it over HTTP (`base_url`).
    Entries of sets not named are kept as they were. `sources` (per set) or `source` (all) records
    where the files came from.
    """
    dest = Path(dest)
    if not dest.is_dir():
        raise AssetError(f"{dest}: not a directory")
    names = [n for n in _check_names(sets) if (dest / n).is_dir()]
    try:
        manifest = read_manifest(dest)
    except AssetError:
        manifest = {}
    manifest["schema"] = MANIFEST_SCHEMA
    manifest.setdefault("sets", {})
    for n in names:
        origin = (sources or {}).get(n) or source or {"kind": "local", "where": str(dest)}
        manifest["sets"][n] = index_entry(dest, n, origin)
    manifest["sets"] = {k: manifest["sets"][k] for k in sorted(manifest["sets"])}
    path = dest / MANIFEST_NAME
    atomic_write_json(path, manifest)
    return path
