"""Fitting a MakeHuman proxy asset to a body and skinning it into the body's pose (numpy only).

Per asset, once (`BoundAsset.from_proxy`):
- the binding in Anny's frame: three hm08 vertices and weights per asset vertex, the offset
  turned into Anny's axes, and the three x/y/z_scale reference pairs;
- skinning weights: MakeHuman's transfer, the barycentric blend of the three bound vertices'
  weights (hm08's own weights, helpers included), as a dense (N, bones) matrix;
- the part of each face: the body part of the bones carrying most of its vertices' weight, as
  the body's own faces get theirs (a skirt over the thigh is thigh, hair is head);
- the body vertices it covers (`delete_verts`, hm08 indices mapped to Anny's).

Per body (`fit_rest`): the asset at rest on that body's hm08 vertices, offsets scaled per axis by
|v1 - v2| on this body over the asset's reference distance (MakeHuman's proxy fitting), so it
follows gender, age, weight, height and proportions. Per pose (`skin`): linear blend skinning
with the body's own bone transforms, so it follows the body as the body follows its bones.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from synth.body.clothing.hm08 import HM08_VERTICES, MH_AXIS_IN_ANNY, MH_TO_ANNY, Hm08Rig
from synth.body.clothing.mhclo import AXES, ProxyAsset
from synth.geometry import vertex_normals
from synth.io_utils import atomic_write_bytes

BOUND_VERSION = 1      # bump when BoundAsset.from_proxy changes what it computes


@dataclass
class BoundAsset:
    """An asset bound to hm08 in Anny's frame, ready to fit to any body (see module docstring)."""
    name: str
    ref_indices: np.ndarray     # (N, 3) int32 hm08 vertices
    ref_weights: np.ndarray     # (N, 3) float32
    offsets: np.ndarray         # (N, 3) float32 MakeHuman-frame offsets (decimetres), unscaled
    scale_refs: tuple           # per MakeHuman axis: (v1, v2, Anny axis, reference distance dm)
    skin: np.ndarray            # (N, bones) float32 dense skinning weights, rows sum to 1
    faces: np.ndarray           # (F, 3) int32
    face_uvs: np.ndarray        # (F, 3, 2) float32
    face_parts: np.ndarray      # (F,) uint8 SPEC part ids
    covered_body: np.ndarray    # (D,) int32 Anny body vertices the asset covers (delete_verts)
    z_depth: int

    @classmethod
    def from_proxy(cls, proxy: ProxyAsset, rig: Hm08Rig, hm08_bone_indices: np.ndarray,
                   hm08_bone_weights: np.ndarray, bone_part_ids: np.ndarray) -> "BoundAsset":
        b = proxy.binding
        n_bones = len(bone_part_ids)
        if len(hm08_bone_indices) != HM08_VERTICES:
            raise ValueError("hm08 skin weights must cover all hm08 vertices")
        # MakeHuman's weight transfer: the bound vertices' weights, blended by the binding weights
        dense = np.zeros((len(b.ref_indices), n_bones), np.float64)
        rows = np.arange(len(b.ref_indices))
        for c in range(3):
            idx = hm08_bone_indices[b.ref_indices[:, c]]
            w = hm08_bone_weights[b.ref_indices[:, c]] * b.ref_weights[:, c:c + 1]
            np.add.at(dense, (np.repeat(rows, idx.shape[1]), idx.ravel()), w.ravel())
        np.clip(dense, 0.0, None, out=dense)
        dense /= np.maximum(dense.sum(1, keepdims=True), 1e-12)
        # face parts: vertex part = the part whose bones weigh most; face = majority of its corners
        n_parts = int(bone_part_ids.max()) + 1
        part_weight = np.zeros((len(dense), n_parts))
        for bone in range(n_bones):
            part_weight[:, bone_part_ids[bone]] += dense[:, bone]
        vpart = part_weight.argmax(1)
        fp = vpart[proxy.mesh.faces]
        face_parts = fp[:, 0].copy()
        same12 = fp[:, 1] == fp[:, 2]
        face_parts[same12] = fp[same12, 1]
        covered = rig.anny_index[b.delete_verts]
        scale_refs = tuple((b.scale_refs[a][0], b.scale_refs[a][1], MH_AXIS_IN_ANNY[n], b.scale_refs[a][2])
                           for n, a in enumerate(AXES))
        return cls(name=b.name, ref_indices=b.ref_indices.astype(np.int32),
                   ref_weights=b.ref_weights.astype(np.float32), offsets=b.offsets.astype(np.float32),
                   scale_refs=scale_refs, skin=dense.astype(np.float32), faces=proxy.mesh.faces,
                   face_uvs=proxy.mesh.face_uvs, face_parts=face_parts.astype(np.uint8),
                   covered_body=np.unique(covered[covered >= 0]).astype(np.int32), z_depth=b.z_depth)

    def save(self, path: Path) -> None:
        import io
        buf = io.BytesIO()
        arrays = {f.name: np.asarray(getattr(self, f.name)) for f in fields(self)}
        arrays["scale_refs"] = np.array(self.scale_refs, dtype=np.float64)
        np.savez(buf, version=BOUND_VERSION, **arrays)
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: Path) -> "BoundAsset | None":
        try:
            with np.load(path) as z:
                if int(z["version"]) != BOUND_VERSION:
                    return None
                kw = {f.name: z[f.name] for f in fields(cls)}
        except (OSError, KeyError, ValueError):
            return None
        kw["name"] = str(kw["name"])
        kw["z_depth"] = int(kw["z_depth"])
        kw["scale_refs"] = tuple((int(a), int(b), int(c), float(d)) for a, b, c, d in kw["scale_refs"])
        return cls(**kw)

    @property
    def n_vertices(self) -> int:
        return len(self.ref_indices)

    def offset_scale(self, hm08_rest: np.ndarray) -> np.ndarray:
        """(3,) per MakeHuman axis: this body's reference-pair distance over the asset's."""
        s = np.empty(3, np.float32)
        for n, (v1, v2, axis, ref) in enumerate(self.scale_refs):
            s[n] = abs(float(hm08_rest[v1, axis] - hm08_rest[v2, axis])) * 10.0 / ref   # m -> dm
        return s

    def fit_rest(self, hm08_rest: np.ndarray) -> np.ndarray:
        """(N, 3) float32 asset vertices on a body at rest (all 19158 hm08 vertices given)."""
        v = hm08_rest[self.ref_indices]                                   # (N, 3, 3)
        pos = np.einsum("nc,ncd->nd", self.ref_weights, v)
        off = (self.offsets * self.offset_scale(hm08_rest)) @ MH_TO_ANNY.T.astype(np.float32)
        return (pos + off).astype(np.float32)


def skin(rest: np.ndarray, weights: np.ndarray, bone_transforms: np.ndarray) -> np.ndarray:
    """Linear blend skinning: (N, 3) rest points, (N, B) weights, (B, 4, 4) rest -> posed."""
    B = bone_transforms.shape[0]
    blend = (weights @ bone_transforms[:, :3, :].reshape(B, 12)).reshape(-1, 3, 4)
    return np.einsum("nij,nj->ni", blend[:, :, :3], rest) + blend[:, :, 3]


def faces_around(faces: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """The faces with a corner among `covered` (the faces whose normals the covered vertices need)."""
    mask = np.zeros(int(faces.max()) + 1, bool)
    mask[covered] = True
    return faces[mask[faces].any(1)]


def push_in(vertices: np.ndarray, faces: np.ndarray, covered: np.ndarray, depth: float,
            near_faces: np.ndarray | None = None) -> np.ndarray:
    """The body with its `covered` vertices moved `depth` metres inward along their normals,
    behind the garment that covers them: MakeHuman deletes them (`delete_verts`); pushing them in
    keeps the body's topology (one mesh for every outfit) and leaves no hole where a garment's
    edge lifts off. Faces with a covered corner lean inward with it, under the garment's edge.
    `near_faces`: `faces_around(faces, covered)` when the caller keeps it."""
    if len(covered) == 0 or depth <= 0:
        return vertices
    if near_faces is None:
        near_faces = faces_around(faces, covered)
    n = vertex_normals(vertices, near_faces)
    out = vertices.copy()
    out[covered] -= depth * n[covered].astype(out.dtype)
    return out
