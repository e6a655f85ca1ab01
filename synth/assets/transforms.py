"""Turning upstream files into the data-directory layout: per-member transforms (bytes in, bytes out)
and per-set post steps that write the index files the mirror carries (manifest.csv, clips_main.csv).

The re-encoding parameters are those stated in the reference mirror's SOURCE.md files.
"""
from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from synth.io_utils import InputError, atomic_write_text


@dataclass
class Extracted:
    """One file written by the upstream path: where it went, where it came from, what was done."""
    dest: str                      # relative to the data directory
    source: str                    # URL, or URL#member for archive members
    info: dict = field(default_factory=dict)


def copy(data: bytes, where: str) -> tuple[bytes, dict]:
    return data, {}


def _open_rgb(data: bytes, where: str) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception as e:  # PIL raises several types for broken images
        raise InputError(f"{where}: not a readable image ({e.__class__.__name__}: {e})") from None
    return img.convert("RGB")


def _jpeg(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def jpeg_long512_q90(data: bytes, where: str) -> tuple[bytes, dict]:
    """RGB baseline JPEG q90, downscaled (Lanczos) so the long side is at most 512 px, never upscaled."""
    img = _open_rgb(data, where)
    w, h = img.size
    scale = 512.0 / max(w, h)
    if scale < 1.0:
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)
    return _jpeg(img, 90), {"orig_size": (w, h), "size": img.size}


def viton_cloth(data: bytes, where: str) -> tuple[bytes, dict]:
    """VITON-HD cloth 768x1024 -> 384x512 (Lanczos, JPEG q92)."""
    img = _open_rgb(data, where)
    orig = img.size
    img = img.resize((384, 512), Image.LANCZOS)
    return _jpeg(img, 92), {"orig_size": orig, "size": img.size}


def viton_mask(data: bytes, where: str) -> tuple[bytes, dict]:
    """VITON-HD cloth mask (1- or 3-channel JPEG) -> 1-channel PNG 384x512, binarised at 127."""
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception as e:
        raise InputError(f"{where}: not a readable image ({e.__class__.__name__}: {e})") from None
    orig = img.size
    grey = img.convert("L").resize((384, 512), Image.BILINEAR)
    binary = Image.fromarray(np.where(np.asarray(grey) > 127, 255, 0).astype(np.uint8), mode="L")
    buf = io.BytesIO()
    binary.save(buf, format="PNG")
    return buf.getvalue(), {"orig_size": orig, "size": binary.size}


def lsp_joints_train(data: bytes, where: str) -> tuple[bytes, dict]:
    """LSP joints.mat (3, 14, 2000) -> the train half joints[:, :, :1000], values unchanged."""
    import scipy.io       # scipy's .mat reader: loaded only to read .mat files

    try:
        joints = scipy.io.loadmat(io.BytesIO(data))["joints"]
    except Exception as e:
        raise InputError(f"{where}: not a MATLAB file with a 'joints' variable ({e.__class__.__name__})") from None
    if joints.ndim != 3 or joints.shape[:2] != (3, 14) or joints.shape[2] < 1000:
        raise InputError(f"{where}: 'joints' has shape {joints.shape}, expected (3, 14, 2000)")
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"joints": np.ascontiguousarray(joints[:, :, :1000])})
    return buf.getvalue(), {"orig_shape": list(joints.shape)}


TRANSFORMS = {f.__name__: f for f in (copy, jpeg_long512_q90, viton_cloth, viton_mask, lsp_joints_train)}


# ---------------------------------------------------------------------------------------------
# Post steps: (data_dir, records of this set) -> None


def _size_str(size) -> str:
    return f"{size[0]}x{size[1]}" if size else ""


def clothing_manifest(root: Path, records: list[Extracted]) -> None:
    """clothing/manifest.csv with the mirror's columns (border_std, a selection score, left empty)."""
    rows = []
    for r in sorted(records, key=lambda r: r.dest):
        rel = r.dest.removeprefix("clothing/")
        if rel.startswith("viton_hd/cloth_mask/"):
            continue
        repo, member = r.source, ""
        if "#" in r.source:
            repo, member = r.source.split("#", 1)
        if rel.startswith("viton_hd/cloth/"):
            mask = rel.replace("/cloth/", "/cloth_mask/").removesuffix(".jpg") + ".png"
            cat, sub = "upper", "top"
        else:
            mask = ""
            cat, sub = rel.split("/")[1], rel.split("/")[2]
        rows.append([rel, mask, cat, sub, repo, member, _size_str(r.info.get("orig_size")),
                     _size_str(r.info.get("size")), ""])
    _write_csv(root / "clothing" / "manifest.csv",
               ["file", "mask", "category", "subcategory", "source_repo", "source_path", "orig_size",
                "size", "border_std"], rows)


def backgrounds_manifest(root: Path, records: list[Extracted]) -> None:
    rows = []
    for r in sorted(records, key=lambda r: r.dest):
        if not r.dest.endswith(".jpg"):
            continue
        member = r.source.split("#", 1)[-1]
        (ow, oh), (w, h) = r.info.get("orig_size", (0, 0)), r.info.get("size", (0, 0))
        rows.append([r.dest.removeprefix("backgrounds/"), member, ow, oh, w, h])
    _write_csv(root / "backgrounds" / "manifest.csv",
               ["file", "source_path_in_repo", "orig_w", "orig_h", "w", "h"], rows)


def count_amc_frames(path: Path) -> int:
    """Frames in an AMC file: the lines holding only a frame number after the header."""
    n = 0
    with open(path, "rb") as f:
        for line in f:
            s = line.strip()
            if s and s.isdigit():
                n += 1
    return n


def cmu_clips_csv(root: Path, records: list[Extracted]) -> None:
    """cmu_mocap/index/clips_main.csv from the fetched AMC files (the mirror's leading columns), with
    descriptions and frame rates from the CMU database listing when it was fetched."""
    listing: dict[str, tuple[str, str]] = {}
    listing_path = root / "cmu_mocap" / "index" / "cmu_database_listing.csv"
    if listing_path.is_file():
        with open(listing_path, newline="", encoding="utf-8", errors="replace") as f:
            for row in csv.DictReader(f):
                try:
                    clip = f"{int(row['Subject']):02d}_{int(row['Trial #']):02d}"
                except (KeyError, ValueError):
                    continue
                listing[clip] = (row.get("Motion Description", ""), row.get("framerate", ""))
    sources = {r.dest: r.source for r in records}
    rows = []
    for amc in sorted((root / "cmu_mocap" / "amc").glob("*/*.amc")):
        clip = amc.stem
        subject = clip.split("_")[0]
        rel = f"amc/{subject}/{amc.name}"
        desc, rate = listing.get(clip, ("", ""))
        data = amc.read_bytes()
        rows.append([clip, subject, rel, desc, "", rate, count_amc_frames(amc), len(data),
                     hashlib.md5(data).hexdigest(), sources.get(f"cmu_mocap/{rel}", ""), "", "",
                     sources.get(f"cmu_mocap/asf/{subject}.asf", "")])
    _write_csv(root / "cmu_mocap" / "index" / "clips_main.csv",
               ["clip_id", "subject", "amc_path", "description", "subject_description", "framerate_hz",
                "n_frames", "bytes", "md5", "source_repo", "source_commit", "source_path", "asf_source_path"],
               rows)


POST_STEPS = {f.__name__: f for f in (clothing_manifest, backgrounds_manifest, cmu_clips_csv)}


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())
