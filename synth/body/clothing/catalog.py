"""The MakeHuman assets of a data directory (`makehuman_assets/`), by kind, and per-sample draws.

Kinds: outfit (a whole suit: top and bottom in one mesh, as all of MakeHuman's system outfits
are), shoes, hat, hair, eyebrows, eyelashes. An asset's id is its `.mhclo` path relative to the
data directory, as the project names every asset.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synth.io_utils import InputError, located_error

ASSETS_FOLDER = "makehuman_assets"
KINDS = ("outfit", "shoes", "hat", "hair", "eyebrows", "eyelashes")
GENDER_TAGS = ("female", "male")


@dataclass(frozen=True)
class AssetEntry:
    id: str             # path of the .mhclo relative to the data directory
    kind: str
    name: str
    path: Path
    tags: tuple[str, ...]

    @property
    def gender(self) -> str | None:
        """'female' | 'male' when the asset is tagged for one, else None (either)."""
        return next((g for g in GENDER_TAGS if g in self.tags), None)


def _header(path: Path) -> tuple[str, tuple[str, ...], str | None]:
    """The `name`, `tag`s and `obj_file` of a .mhclo, read from its header lines only (the file
    is read up to its `verts` line: a check of all assets costs a few ms)."""
    name, tags, obj_file = path.stem, [], None
    try:
        with open(path, "rb") as f:
            for raw in f:
                words = raw.decode("utf-8", errors="replace").split("#", 1)[0].split()
                if not words:
                    continue
                if words[0] == "verts":
                    break
                if words[0] == "name" and len(words) > 1:
                    name = words[1]
                elif words[0] == "obj_file" and len(words) > 1:
                    obj_file = words[1]
                elif words[0] == "tag":
                    tags.extend(w.lower() for w in words[1:])
    except OSError as e:
        raise located_error(path, None, f"cannot read ({e.strerror})") from None
    return name, tuple(tags), obj_file


def _kind(folder: str, name: str, tags: tuple[str, ...]) -> str:
    if folder == "clothes":
        if "shoes" in tags or name.startswith("shoes"):
            return "shoes"
        if "hats" in tags or "hat" in tags:
            return "hat"
        return "outfit"
    return {"hair": "hair", "eyebrows": "eyebrows", "eyelashes": "eyelashes"}[folder]


def list_assets(data_dir: Path) -> dict[str, list[AssetEntry]]:
    """Every asset under data_dir/makehuman_assets, by kind (each list sorted by id); InputError
    naming the file when a .mhclo names no .obj or its .obj is not beside it. Headers only: the
    bindings and meshes are parsed when an asset is first worn (synth.body.clothing.wardrobe)."""
    data_dir = Path(data_dir)
    root = data_dir / ASSETS_FOLDER
    if not root.is_dir():
        raise InputError(f"{root}: no MakeHuman assets (render.clothing.mode=mesh needs them); "
                         "run `synth assets fetch --sets makehuman_assets`")
    out: dict[str, list[AssetEntry]] = {k: [] for k in KINDS}
    for folder in ("clothes", "hair", "eyebrows", "eyelashes"):
        for path in sorted((root / folder).glob("*/*.mhclo")):
            name, tags, obj_file = _header(path)
            if obj_file is None:
                raise located_error(path, None, "no 'obj_file' line")
            if not (path.parent / obj_file).is_file():
                raise located_error(path, None, f"obj_file {obj_file} not found beside it")
            kind = _kind(folder, name, tags)
            out[kind].append(AssetEntry(id=path.relative_to(data_dir).as_posix(), kind=kind, name=path.stem,
                                        path=path, tags=tags))
    for kind in ("outfit", "hair"):
        if not out[kind]:
            raise InputError(f"{root}: no {kind} assets found")
    return out


def select(entries: list[AssetEntry], names: list[str] | None, key: str) -> list[AssetEntry]:
    """The entries named in `names` (all when None); an unknown name is an error naming `key`."""
    if names is None:
        return list(entries)
    by_name = {e.name: e for e in entries}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise InputError(f"config key '{key}': unknown asset(s) {unknown} (available: {sorted(by_name)})")
    return [by_name[n] for n in names]


def draw(entries: list[AssetEntry], rng: np.random.Generator, gender: str | None = None,
         gender_match: float = 0.0) -> AssetEntry:
    """One entry, uniformly; with probability `gender_match` among those tagged for `gender` or
    for neither (when there are any)."""
    pool = entries
    if gender is not None and rng.random() < gender_match:
        matching = [e for e in entries if e.gender in (None, gender)]
        pool = matching or entries
    return pool[int(rng.integers(len(pool)))]
