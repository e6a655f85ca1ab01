"""`synth gallery LIBRARY --dress`: the steps of garment transfer, like Chen et al. 2016, Figs. 4-5.

For a few garments of a `synth dress` library: the photo, its segmentation mask, the matched
contours (body region silhouette in the chosen candidate pose, the similarity-placed garment
contour, and lines joining corresponding control points), the deformation of every candidate
pose, the MLS-warped photo over the silhouette, and the dressed body rendered with Cycles from the
front, the side and the back. Below, a grid of dressed bodies (front renders). One Renderer per
process (bpy is global state); renders are tiny so that the page builds in about a minute.
"""
from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

import cv2
import numpy as np

from synth.config import load_config
from synth.geometry import focal_from_fov, intrinsics, look_at
from synth.io_utils import InputError, atomic_write_text
from synth.scene import Camera, Environment, Light, SceneSpec
from synth.textures.library import TextureLibrary, dresser_for

CSS = """
body{font-family:system-ui,sans-serif;margin:16px;background:#f4f4f4;color:#222}
h1{font-size:20px;margin:0 0 8px} h2{font-size:16px;margin:18px 0 6px}
.row{display:flex;gap:6px;flex-wrap:wrap;background:#fff;border:1px solid #ccc;padding:8px;margin-bottom:10px}
figure{margin:0;text-align:center;font-size:12px}
figure img{height:200px;width:auto;border:1px solid #999;background:#000}
.grid figure img{height:170px}
table{border-collapse:collapse;font-size:12px;background:#fff}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}
.small{font-size:12px;color:#555;max-width:1300px}
"""


def _png(img: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(img[..., ::-1]) if img.ndim == 3 else img)
    if not ok:   # pragma: no cover
        raise RuntimeError("PNG encoding failed")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode()


def _fig(img: np.ndarray, caption: str) -> str:
    return f'<figure><img src="{_png(img)}" alt="{html.escape(caption)}"><figcaption>{caption}</figcaption></figure>'


def mask_overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The photo dimmed outside the mask, the mask's outline in green."""
    out = image.astype(np.float32)
    out[~mask] *= 0.3
    out = out.astype(np.uint8)
    cnts, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, cnts, -1, (0, 255, 0), 2)
    return out


def contour_panel(fit, frame_shape: tuple[int, int], silhouette: np.ndarray) -> np.ndarray:
    """Body silhouette (grey) with its contour (red), the similarity-placed garment contour (blue)
    and yellow lines between corresponding control points (garment -> body)."""
    H, W = frame_shape
    s = 2   # drawn at twice the view size for legible lines
    img = np.full((H * s, W * s, 3), 30, np.uint8)
    img[cv2.resize(silhouette.astype(np.uint8), (W * s, H * s), interpolation=cv2.INTER_NEAREST) > 0] = 90
    m = fit.match
    garment = (m.scale * fit.garment_contour @ np.asarray(m.R).T + np.asarray(m.t))
    for pts, col in ((fit.body_contour, (255, 60, 60)), (garment, (80, 140, 255))):
        cv2.polylines(img, [np.round(pts * s).astype(np.int32)], True, col, 2, cv2.LINE_AA)
    for a, b in zip(fit.src_pts, fit.dst_pts):
        cv2.line(img, tuple(int(round(v * s)) for v in a), tuple(int(round(v * s)) for v in b), (255, 230, 0), 1,
                 cv2.LINE_AA)
    return img


def warped_panel(fit, silhouette: np.ndarray) -> np.ndarray:
    """The warped garment inside its mask over the dimmed silhouette, the silhouette contour red."""
    out = np.full(fit.warped.shape, 30, np.uint8)
    out[silhouette] = 90
    out[fit.warped_mask] = fit.warped[fit.warped_mask]
    cv2.polylines(out, [np.round(fit.body_contour).astype(np.int32)], True, (255, 60, 60), 1, cv2.LINE_AA)
    return out


def _camera_around(body, azimuth_deg: float, size: int):
    """A camera at the body's height looking at it from azimuth (0 = in front, facing -Y)."""
    v = body.vertices
    centre = 0.5 * (v.min(0) + v.max(0))
    fov = math.radians(30)
    radius = float(np.linalg.norm(v - centre, axis=1).max())
    dist = radius / math.sin(0.9 * fov / 2)
    az = math.radians(-90 + azimuth_deg)      # front: camera on -Y
    pos = centre + dist * np.array([math.cos(az), math.sin(az), 0.08])
    R, t = look_at(pos, centre, 0.0)
    return Camera(K=intrinsics(focal_from_fov(fov, size), size, size), R=R, t=t, width=size, height=size)


def render_views(renderer, body, texture: np.ndarray, azimuths: list[float], size: int) -> list[np.ndarray]:
    """The dressed body rendered from each azimuth: a sun from the camera's side and grey ambient."""
    out = []
    for az in azimuths:
        cam = _camera_around(body, az, size)
        pos = -cam.R.T @ cam.t
        centre = 0.5 * (body.vertices.min(0) + body.vertices.max(0))
        d = (centre - pos) / np.linalg.norm(centre - pos)
        d = d + np.array([0.2, 0.0, -0.5])
        light = Light(kind="SUN", location=pos + np.array([0, 0, 2.0]), direction=d / np.linalg.norm(d),
                      energy=3.0, color=(1.0, 1.0, 1.0), size=0.1)
        spec = SceneSpec(body=body, texture=texture, camera=cam, lights=[light],
                         environment=Environment(color=(0.35, 0.35, 0.35)),
                         background=np.full((size, size, 3), 235, np.uint8), seed=0)
        out.append(renderer.render(spec).rgb)
    return out


def write_dressing_page(library: Path, out_html: Path | None = None, max_bodies: int = 12,
                        n_garment_bodies: int = 3, render_size: int = 200, samples: int = 8,
                        overrides: list[str] | tuple[str, ...] = (), config: Path | None = None) -> Path:
    """Write LIBRARY/gallery/dressing.html (or out_html); returns its path. The dresser is rebuilt
    from the library's config.yaml, with `config` (a file) and `overrides` (key=value) over it:
    e.g. data_dir=... when the garment photos are elsewhere on this machine."""
    from synth.render.blender_scene import Renderer      # bpy: loaded only to render the views
    library = Path(library)
    lib = TextureLibrary(library)
    cfg_path = library / "config.yaml"
    if not cfg_path.is_file():
        raise InputError(f"{cfg_path}: the library's config is missing")
    cfg = load_config(config, overrides, base=load_config(cfg_path).model_dump(mode="json"))
    dresser = dresser_for(cfg)
    views = dresser.views
    by_id = {p.id: p for ps in dresser.photos.values() for p in ps}
    phen = {k: 0.5 for k in views.body.phenotype_labels}
    # render in the middle arm candidate (or the first): a natural standing pose
    upper = [i for i, v in enumerate(views.views) if v.candidate.region == "upper"]
    pose_i = upper[len(upper) // 2]
    body = views.body.pose(views.poses.rotations[pose_i], views.poses.rest_directions[pose_i], phen)

    renderer = Renderer(render_size, render_size, samples=samples, denoise=True)
    try:
        parts = [f"<h1>Garment transfer: {html.escape(str(library))}</h1>",
                 '<p class="small">Per garment: the photo; its mask (green outline); the body region\'s '
                 "silhouette in the chosen candidate pose (red) with the similarity-placed garment contour "
                 "(blue) and the MLS control-point correspondences (yellow, garment to body); the MLS-warped "
                 "photo on the silhouette; the deformation of every candidate pose (least wins) and the contour "
                 "distance before (similarity only) and after warping. Then the dressed body rendered from the "
                 "front, the side and the back.</p>"]
        for k in range(min(n_garment_bodies, len(lib))):
            tex, info = lib.load(k)
            parts.append(f"<h2>{html.escape(info['name'])}</h2>")
            for g in info["garments"]:
                photo = by_id.get(g["id"])
                if photo is None:
                    raise InputError(f"{library / (info['name'] + '.json')}: photo {g['id']} is not in the data")
                seg = dresser.segmentation(photo)
                fit = dresser.fit(photo, seg)
                sil = views.views[fit.view_index].region_masks[fit.variant]
                table = "".join(f"<tr><td>{html.escape(c)}</td><td>{d:.4f}</td></tr>"
                                for c, d in zip(fit.candidate_names, fit.deformations))
                dist = g["contour_distance_px"]
                parts.append('<div class="row">'
                             + _fig(seg.image, html.escape(f"{g['region']}: {g['subcategory']}"))
                             + _fig(mask_overlay(seg.image, seg.mask), "mask")
                             + _fig(contour_panel(fit, sil.shape, sil), f"matched: {html.escape(g['candidate'])}")
                             + _fig(warped_panel(fit, sil), "MLS-warped")
                             + f"<div><table><tr><th>candidate</th><th>deformation</th></tr>{table}</table>"
                             f"<p class='small'>contour distance (px): before {dist['before']:.2f}, "
                             f"after {dist['after']:.2f}<br>{html.escape(g['id'])}</p></div></div>")
            renders = render_views(renderer, body, tex, [0.0, 90.0, 180.0], render_size)
            parts.append('<div class="row">' + _fig(tex, "texture") + "".join(
                _fig(r, n) for r, n in zip(renders, ("front", "side", "back"))) + "</div>")
        parts.append("<h2>Dressed bodies</h2><div class='row grid'>")
        for k in range(min(max_bodies, len(lib))):
            tex, info = lib.load(k)
            img = render_views(renderer, body, tex, [20.0], render_size)[0]
            parts.append(_fig(img, html.escape(info["name"])))
        parts.append("</div>")
    finally:
        renderer.close()
    out = Path(out_html) if out_html else library / "gallery" / "dressing.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>synth dressing</title>"
            f"<style>{CSS}</style></head><body>{''.join(parts)}"
            f"<h2>Library index</h2><pre class='small'>{html.escape(json.dumps(lib_summary(library), indent=1))}"
            "</pre></body></html>")
    atomic_write_text(out, page)
    return out


def lib_summary(library: Path) -> dict:
    from synth.textures.library import read_stats
    index = {**json.loads((Path(library) / "library.json").read_text()), **read_stats(Path(library))}
    return {k: index.get(k) for k in ("n", "seed", "summary", "time_per_body_s", "rejected_photos",
                                      "photos_segmented")}
