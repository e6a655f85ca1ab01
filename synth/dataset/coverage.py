"""How well worn garments hide the body skin they cover: a z-buffer measurement, pure numpy.

The body and the garments are rasterised together in orthographic views around the body; a pixel
whose visible surface is a body face touching a covered vertex (one of the garment's
`delete_verts`, the skin it is meant to hide) counts as skin through the garment. The share is
taken over the pixels that show a garment or such skin: 0 when garments hide all they cover.
Skin poking through a tight garment and gaps that show the pushed-in skin both count.
"""
from __future__ import annotations

import math

import numpy as np

from synth.geometry import look_at
from synth.textures.body_views import rasterize


def _view_basis(azimuth: float, elevation: float) -> np.ndarray:
    """Rows: image x (right), image y (down), view direction (into the scene), world Z up: the
    rotation of a camera looking that way (OpenCV frame)."""
    d = np.array([-math.cos(elevation) * math.sin(azimuth), math.cos(elevation) * math.cos(azimuth),
                  -math.sin(elevation)])      # azimuth 0: looking along +Y (the body faces -Y)
    R, _ = look_at(np.zeros(3), d)
    return R


def skin_through(body_vertices: np.ndarray, body_faces: np.ndarray, covered: np.ndarray,
                 garments: list[tuple[np.ndarray, np.ndarray]], size: int = 256,
                 azimuths_deg=(0, 90, 180, 270), elevation_deg: float = 10.0) -> dict:
    """Pixels of covered skin and of garment over `len(azimuths_deg)` views of `size` px.

    covered: Anny vertex ids the garments cover. garments: (vertices, faces) of each garment.
    Returns {"skin_px", "garment_px", "share"} summed over the views."""
    covered_face = np.isin(body_faces, covered).any(1)
    verts = [body_vertices] + [g[0] for g in garments]
    faces, offset = [], 0
    kinds = []
    for i, (v, f) in enumerate([(body_vertices, body_faces)] + garments):
        faces.append(f + offset)
        offset += len(v)
        kinds.append(np.full(len(f), i, np.int32))
    V = np.concatenate(verts).astype(np.float64)
    F = np.concatenate(faces)
    kind = np.concatenate(kinds)
    is_cov = np.concatenate([covered_face, np.zeros(len(F) - len(body_faces), bool)])
    lo, hi = V.min(0), V.max(0)
    centre = 0.5 * (lo + hi)
    extent = float(np.linalg.norm(hi - lo)) * 0.55
    scale = (size / 2) / extent
    skin_px = garment_px = 0
    for az in azimuths_deg:
        B = _view_basis(math.radians(az), math.radians(elevation_deg))
        P = (V - centre) @ B.T
        px = P[:, :2] * scale + (size - 1) / 2
        face, _, _ = rasterize(px[F], P[F][:, :, 2], size, size)
        seen = face[face >= 0]
        skin_px += int(is_cov[seen].sum())
        garment_px += int((kind[seen] > 0).sum())
    total = skin_px + garment_px
    return {"skin_px": skin_px, "garment_px": garment_px, "share": skin_px / total if total else 0.0}
