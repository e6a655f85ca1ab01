"""What makes two renders one dataset: the configuration keys that change a shard's bytes, the
input files they point at, and the software that renders.

Identity keys (`dataset_identity`), and why each is in or out:

- `seed`: every sample's stream derives from it.
- `render.*`, all of it: image size, engine, device (Cycles on CPU and GPU differ in the last
  bits), samples, denoising, the Cycles render-cost levers `render.cycles.*` (adaptive sampling,
  bounces, OIDN quality/prefilter/device, tiles, persistent data: each can change pixels), RGB
  format and quality, camera, lights, skin tones, clothing mode and the mesh wardrobe
  (`render.clothing.mesh.*`: outfits, hair, probabilities, hair palette, push-in).
- `body.*` but `body.smplx_model_dir` (a location): backend and phenotype distributions.
- `dataset.shards`, `dataset.samples_per_shard`: which samples there are. Not
  `dataset.max_retries` (a completed shard is the same whatever the retry budget) nor
  `dataset.pose_file` (a location: the file's sha256 is compared instead).
- `poses.subjects`, `poses.fps`, `poses.min_pose_distance`, only when no pose file is given: they
  make the MoCap pool the poses are drawn from. With a pose file, no `poses.*` key is read.
- Never: `textures.*` (a render reads only a `synth dress` library, whose index is fingerprinted,
  and that index records its own settings), `train.*`, `assets.*`, `executor.*`, `data_dir`,
  `cache_dir`.

Inputs (`input_fingerprints`): a listing (paths and sizes) of the data directory's backgrounds,
clothing, HDRIs, without a pose file MoCap, and with `render.clothing.mode=mesh` the MakeHuman
assets (`makehuman_assets/`: the garment, shoe and hair meshes a sample wears); the pose file's
and the texture library index's sha256. Paths themselves are never compared, so nodes may mount the data anywhere.

Software (`software_versions`): synth's version (and git commit when run from a checkout) and
the versions of bpy, torch, anny and numpy; a node whose versions differ is refused unless it
is told to accept them (`synth render --allow-version-mismatch`).
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path

from synth import __version__
from synth.body.clothing.catalog import ASSETS_FOLDER as MESH_ASSETS_FOLDER
from synth.config import Config
from synth.io_utils import file_digest

RENDER_INPUT_FOLDERS = ("backgrounds", "clothing", "hdri")    # + cmu_mocap without a pose file
SOFTWARE = ("synth", "git_commit", "bpy", "torch", "anny", "numpy")


def _pick(section, *keys: str) -> dict:
    section = section if isinstance(section, dict) else {}
    return {k: section.get(k) for k in keys}


def dataset_identity(config: dict) -> dict:
    """The identity keys of a configuration (its `model_dump(mode="json")`, or the `config` of a
    dataset.json written by an earlier version); see the module doc."""
    body = dict(config.get("body") or {})
    body.pop("smplx_model_dir", None)
    dataset = config.get("dataset") or {}
    ident = {"seed": config.get("seed"), "render": config.get("render"), "body": body,
             "dataset": _pick(dataset, "shards", "samples_per_shard")}
    if not dataset.get("pose_file"):
        ident["poses"] = _pick(config.get("poses"), "subjects", "fps", "min_pose_distance")
    return ident


def _listing_digest(root: Path, folders: tuple[str, ...]) -> str:
    """sha256 of the sorted 'relative path, size' lines of every file under root/folder: cheap
    (no file is read) and enough to tell another copy of the data from the same one."""
    h = hashlib.sha256()
    for folder in folders:
        base = root / folder
        files = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []
        for p in files:
            h.update(f"{p.relative_to(root).as_posix()}\t{p.stat().st_size}\n".encode())
    return h.hexdigest()


def input_fingerprints(cfg: Config) -> dict:
    """What the render reads through its location keys, fingerprinted (see the module doc)."""
    root = cfg.paths().data
    pose_file = cfg.dataset.pose_file
    folders = RENDER_INPUT_FOLDERS + (() if pose_file else ("cmu_mocap",))
    if cfg.render.clothing.mode == "mesh":
        folders += (MESH_ASSETS_FOLDER,)       # makehuman_assets
    library = cfg.textures.library if cfg.render.clothing.mode == "library" else None
    index = Path(library) / "library.json" if library else None
    return {
        "data_listing_sha256": _listing_digest(root, folders),
        "pose_file_sha256": _file_sha256(Path(pose_file)) if pose_file and Path(pose_file).is_file() else None,
        "texture_library_sha256": _file_sha256(index) if index is not None and index.is_file() else None,
    }


_DIGESTS: dict[tuple, str] = {}


def _file_sha256(path: Path) -> str:
    """file_digest(path), remembered per (path, size, mtime): a writer compares the inputs with
    dataset.json before each shard it commits, and the pose file can be gigabytes."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = file_digest(path)
    return _DIGESTS[key]


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        # e.g. bpy inside a stand-alone Blender, which has no package metadata
        module = sys.modules.get(dist)
        if dist == "bpy" and module is not None and hasattr(module, "app"):
            return str(module.app.version_string)
        return getattr(module, "__version__", None) if module is not None else None


def git_commit() -> str | None:
    """The checkout's HEAD commit when synth runs from a git checkout, else None."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        r = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                           timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() or None if r.returncode == 0 else None


_SOFTWARE: dict | None = None


def software_versions() -> dict:
    """{synth, git_commit, bpy, torch, anny, numpy} of this process (read from package metadata,
    so nothing heavy is imported); computed once."""
    global _SOFTWARE
    if _SOFTWARE is None:
        _SOFTWARE = {"synth": __version__, "git_commit": git_commit(),
                     **{name: _version(name) for name in ("bpy", "torch", "anny", "numpy")}}
    return dict(_SOFTWARE)


def software_difference(recorded: dict | None, mine: dict) -> str | None:
    """'software.torch: '2.13.0' -> '2.12.0'' for the first differing entry, or None."""
    if not isinstance(recorded, dict):
        return "made by a synth that recorded no software versions"
    for key in SOFTWARE:
        if recorded.get(key) != mine.get(key):
            return f"software.{key}: {recorded.get(key)!r} -> {mine.get(key)!r}"
    return None
