"""MakeHuman proxy assets: the `.mhclo` binding and the `.obj` mesh it binds.

A `.mhclo` file (MakeHuman 1.x, base mesh hm08) has header lines (`name`, `obj_file`,
`x_scale|y_scale|z_scale V1 V2 D`, `z_depth`, `material`, optional `delete_verts`, ...), then
after `verts 0` one line per vertex of the asset's `.obj`, in order: either `i j k wi wj wk dx dy
dz` (the vertex is wi*v_i + wj*v_j + wk*v_k of hm08 vertices plus the offset, scaled per axis by
the ratio of the fitted body's |v_V1 - v_V2| along that axis to D) or a single index (the vertex
is that hm08 vertex). `delete_verts` lists hm08 vertices the asset covers, as numbers and
`a - b` ranges over any number of lines. Coordinates are MakeHuman's: Y up, decimetres.

Both parsers are strict about what they use: a malformed line is an `InputError` naming the file
and line. Header keys this project does not use (uuid, tags, license, ...) are skipped.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synth.io_utils import InputError, located_error, read_text

AXES = ("x_scale", "y_scale", "z_scale")
# Keys whose value this project reads; every other header key is skipped.
_SKIPPED = {"uuid", "basemesh", "author", "license", "homepage", "version", "max_pole",
            "vertexboneweights_file", "special_pose", "description", "tags", "shadeless",
            "wireframe", "backface_cull", "transparent", "uvmap", "rigid", "clothes_verts"}


@dataclass
class ObjMesh:
    """A triangulated OBJ mesh with per-corner texture coordinates (MakeHuman frame)."""
    vertices: np.ndarray      # (V, 3) float64
    faces: np.ndarray         # (F, 3) int32, triangles (polygons fanned)
    face_uvs: np.ndarray      # (F, 3, 2) float32, zeros when the file has no UVs
    polygon_of_face: np.ndarray  # (F,) int32: the source polygon each triangle came from
    groups: dict[str, np.ndarray] = field(default_factory=dict)   # group name -> face indices


@dataclass
class Mhclo:
    """One proxy binding (see the module docstring). Indices are hm08's."""
    path: Path
    name: str
    obj_file: str
    ref_indices: np.ndarray   # (N, 3) int32 hm08 vertex indices per asset vertex
    ref_weights: np.ndarray   # (N, 3) float64 barycentric weights
    offsets: np.ndarray       # (N, 3) float64 offsets, MakeHuman frame, decimetres
    scale_refs: dict          # 'x_scale' | 'y_scale' | 'z_scale' -> (v1, v2, reference distance)
    delete_verts: np.ndarray  # (D,) int32 hm08 vertex indices, sorted, unique
    z_depth: int = 50
    material: str = ""
    tags: tuple[str, ...] = ()    # lower-case 'tag' values (female, male, shoes, long, ...)

    @property
    def obj_path(self) -> Path:
        return self.path.parent / self.obj_file


def _numbers(path: Path, lineno: int, words: list[str], kind, what: str):
    try:
        return [kind(w) for w in words]
    except ValueError:
        raise located_error(path, lineno, f"{what}: not a number in {' '.join(words)!r}") from None


def _parse_ranges(path: Path, lineno: int, words: list[str], out: list[int]) -> None:
    """`delete_verts` tokens: numbers and `a - b` ranges (inclusive)."""
    i = 0
    while i < len(words):
        a = _numbers(path, lineno, [words[i]], int, "delete_verts")[0]
        if i + 2 < len(words) and words[i + 1] == "-":
            b = _numbers(path, lineno, [words[i + 2]], int, "delete_verts")[0]
            if b < a:
                raise located_error(path, lineno, f"delete_verts: range {a} - {b} runs backwards")
            out.extend(range(a, b + 1))
            i += 3
        elif words[i + 1:i + 2] == ["-"]:
            raise located_error(path, lineno, f"delete_verts: range {a} - has no end")
        else:
            out.append(a)
            i += 1


def parse_mhclo(path: str | Path, n_base_vertices: int | None = None) -> Mhclo:
    """Parse a `.mhclo` file. `n_base_vertices`: when given, every index must be below it."""
    path = Path(path)
    text = read_text(path)
    header: dict = {}
    tags: list[str] = []
    scale_refs: dict = {}
    refs: list[tuple] = []
    deleted: list[int] = []
    section = "header"
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        key = words[0]
        starts_with_number = key[0].isdigit() or key[0] == "-"
        if section == "verts" and starts_with_number:
            if len(words) == 1:
                (i,) = _numbers(path, lineno, words, int, "vertex binding")
                refs.append((lineno, (i, i, i), (1.0, 0.0, 0.0), (0.0, 0.0, 0.0)))
            elif len(words) == 9:
                idx = _numbers(path, lineno, words[:3], int, "vertex binding")
                vals = _numbers(path, lineno, words[3:], float, "vertex binding")
                refs.append((lineno, tuple(idx), tuple(vals[:3]), tuple(vals[3:])))
            else:
                raise located_error(path, lineno, f"vertex binding has {len(words)} fields, "
                                                  "expected 1 or 9 (i j k wi wj wk dx dy dz)")
            continue
        if section == "delete_verts" and starts_with_number:
            _parse_ranges(path, lineno, words, deleted)
            continue
        # as in MakeHuman's loader, keyword lines (material, ...) may sit inside a block and
        # leave it open; numbers belong to the block opened last
        if key == "verts":
            section = "verts"
        elif key == "delete_verts":
            section = "delete_verts"
            if len(words) > 1:
                _parse_ranges(path, lineno, words[1:], deleted)
        elif key in AXES:
            if len(words) != 4:
                raise located_error(path, lineno, f"{key} needs 3 values (V1 V2 distance), got {len(words) - 1}")
            v1, v2 = _numbers(path, lineno, words[1:3], int, key)
            (d,) = _numbers(path, lineno, words[3:4], float, key)
            if not d > 0:
                raise located_error(path, lineno, f"{key}: reference distance {d} must be positive")
            scale_refs[key] = (v1, v2, d)
        elif key == "z_depth":
            if len(words) != 2:
                raise located_error(path, lineno, "z_depth needs one value")
            header["z_depth"] = _numbers(path, lineno, words[1:2], int, "z_depth")[0]
        elif key == "tag":
            tags.extend(w.lower() for w in words[1:])
        elif key in ("name", "obj_file", "material"):
            if len(words) < 2:
                raise located_error(path, lineno, f"{key} has no value")
            header[key] = line.split(None, 1)[1].strip()
        elif key in _SKIPPED or not starts_with_number:
            pass
        else:
            raise located_error(path, lineno, f"unexpected line {line[:40]!r} outside the verts block")
    for needed in ("name", "obj_file"):
        if needed not in header:
            raise located_error(path, None, f"no '{needed}' line")
    missing = [a for a in AXES if a not in scale_refs]
    if missing:
        raise located_error(path, None, f"no {', '.join(missing)} line(s)")
    if not refs:
        raise located_error(path, None, "no vertex bindings (a 'verts 0' block)")
    ref_indices = np.array([r[1] for r in refs], dtype=np.int64)
    ref_weights = np.array([r[2] for r in refs], dtype=np.float64)
    offsets = np.array([r[3] for r in refs], dtype=np.float64)
    delete = np.unique(np.array(deleted, dtype=np.int64))
    if n_base_vertices is not None:
        bad = np.nonzero((ref_indices < 0) | (ref_indices >= n_base_vertices))[0]
        if len(bad):
            r = refs[int(bad[0])]
            raise located_error(path, r[0], f"vertex index out of range 0..{n_base_vertices - 1}")
        for key, (v1, v2, _) in scale_refs.items():
            if not (0 <= v1 < n_base_vertices and 0 <= v2 < n_base_vertices):
                raise located_error(path, None, f"{key}: vertex index out of range 0..{n_base_vertices - 1}")
        if len(delete) and (delete[0] < 0 or delete[-1] >= n_base_vertices):
            raise located_error(path, None, f"delete_verts: index out of range 0..{n_base_vertices - 1}")
    return Mhclo(path=path, name=header["name"], obj_file=header["obj_file"],
                 ref_indices=ref_indices.astype(np.int32), ref_weights=ref_weights, offsets=offsets,
                 scale_refs=scale_refs, delete_verts=delete.astype(np.int32),
                 z_depth=int(header.get("z_depth", 50)), material=header.get("material", ""),
                 tags=tuple(tags))


def parse_obj(path: str | Path) -> ObjMesh:
    """Parse a Wavefront OBJ (v, vt, f with v, v/vt, v/vt/vn or v//vn corners; g groups).
    Polygons are fanned into triangles; the first `o` object only."""
    path = Path(path)
    text = read_text(path)
    verts: list[list[float]] = []
    uvs: list[list[float]] = []
    polys: list[tuple[int, list[int], list[int]]] = []
    groups: dict[str, list[int]] = {}
    group = None
    objects = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] == "#":
            continue
        words = line.split()
        key = words[0]
        if key == "v":
            if len(words) < 4:
                raise located_error(path, lineno, "vertex needs 3 coordinates")
            verts.append(_numbers(path, lineno, words[1:4], float, "vertex"))
        elif key == "vt":
            if len(words) < 3:
                raise located_error(path, lineno, "texture coordinate needs 2 values")
            uvs.append(_numbers(path, lineno, words[1:3], float, "texture coordinate"))
        elif key == "f":
            if len(words) < 4:
                raise located_error(path, lineno, f"face has {len(words) - 1} corners, needs at least 3")
            vi, ti = [], []
            for corner in words[1:]:
                parts = corner.split("/")
                try:
                    vi.append(int(parts[0]))
                    ti.append(int(parts[1]) if len(parts) > 1 and parts[1] else 0)
                except ValueError:
                    raise located_error(path, lineno, f"bad face corner {corner!r}") from None
            polys.append((lineno, vi, ti))
            if group is not None:
                groups.setdefault(group, []).append(len(polys) - 1)
        elif key == "g":
            group = words[1] if len(words) > 1 else None
        elif key == "o":
            objects += 1
            if objects > 1:
                break
    if not verts or not polys:
        raise located_error(path, None, "no vertices or no faces")
    V, T = len(verts), len(uvs)
    tri_v, tri_t, tri_poly = [], [], []
    for p, (lineno, vi, ti) in enumerate(polys):
        # OBJ indices are 1-based; negative ones count back from the end
        vi = [i - 1 if i > 0 else V + i for i in vi]
        ti = [i - 1 if i > 0 else (T + i if i < 0 else -1) for i in ti]
        if min(vi) < 0 or max(vi) >= V:
            raise located_error(path, lineno, f"face vertex index out of range 1..{V}")
        if T and (min(ti) < 0 or max(ti) >= T):
            raise located_error(path, lineno, f"face texture index out of range 1..{T}")
        for k in range(1, len(vi) - 1):
            tri_v.append((vi[0], vi[k], vi[k + 1]))
            tri_t.append((ti[0], ti[k], ti[k + 1]))
            tri_poly.append(p)
    faces = np.array(tri_v, dtype=np.int32)
    uv = np.array(uvs, dtype=np.float32).reshape(-1, 2)
    face_uvs = uv[np.array(tri_t)] if T else np.zeros((len(faces), 3, 2), np.float32)
    polygon_of_face = np.array(tri_poly, dtype=np.int32)
    # group -> triangle indices
    tri_groups = {}
    if groups:
        first_tri = np.searchsorted(polygon_of_face, np.arange(len(polys)))
        counts = np.bincount(polygon_of_face, minlength=len(polys))
        for g, plist in groups.items():
            pl = np.array(plist)
            tri_groups[g] = np.concatenate([np.arange(first_tri[p], first_tri[p] + counts[p]) for p in pl])
    return ObjMesh(vertices=np.array(verts, dtype=np.float64), faces=faces, face_uvs=face_uvs.astype(np.float32),
                   polygon_of_face=polygon_of_face, groups=tri_groups)


@dataclass
class ProxyAsset:
    """A parsed asset: its binding and its mesh, checked against each other."""
    binding: Mhclo
    mesh: ObjMesh

    @property
    def name(self) -> str:
        return self.binding.name


def load_proxy(mhclo_path: str | Path, n_base_vertices: int | None = None) -> ProxyAsset:
    """A `.mhclo` and its `.obj`; every obj vertex must have a binding line."""
    binding = parse_mhclo(mhclo_path, n_base_vertices)
    obj_path = binding.obj_path
    if not obj_path.is_file():
        raise InputError(f"{binding.path}: obj_file {binding.obj_file} not found beside it")
    mesh = parse_obj(obj_path)
    if len(mesh.vertices) != len(binding.ref_indices):
        raise InputError(f"{binding.path}: {len(binding.ref_indices)} vertex bindings but "
                         f"{obj_path.name} has {len(mesh.vertices)} vertices")
    return ProxyAsset(binding=binding, mesh=mesh)
