"""Per-step timings of `synth.render.Renderer` on a body-sized mesh.

A UV sphere of ~14k vertices / ~27k triangles (built with numpy, 14 part bands, spherical UVs),
256x256, 16 samples, denoised, a new texture, vertex wobble, camera, lights and HDRI rotation on
every render (as in dataset generation). Prints the first (building) render and the mean/std over
the following renders. Run: python benchmarks/bench_render.py [--renders 20] [--size 256]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout without installing
from synth.render import Renderer
from synth.scene import BodyMesh, Camera, Environment, Light, SceneSpec

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def resident_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def uv_sphere(n_lat: int = 85, n_lon: int = 166, radius: float = 0.9):
    """(vertices, faces, face_uvs, face_parts) of a UV sphere; parts are 14 latitude bands."""
    theta = np.linspace(0, np.pi, n_lat + 1)[1:-1]                 # ring polar angles
    phi = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    st, ct = np.sin(theta)[:, None], np.cos(theta)[:, None]
    rings = np.stack([st * np.cos(phi), st * np.sin(phi), np.broadcast_to(ct, (len(theta), len(phi)))], -1).reshape(-1, 3)
    verts = np.concatenate([[[0, 0, 1]], rings, [[0, 0, -1]]]) * radius
    top, bottom = 0, len(verts) - 1
    ring = lambda i, j: 1 + i * n_lon + (j % n_lon)               # noqa: E731
    faces = []
    for j in range(n_lon):
        faces.append((top, ring(0, j), ring(0, j + 1)))
        faces.append((bottom, ring(n_lat - 2, j + 1), ring(n_lat - 2, j)))
    for i in range(n_lat - 2):
        for j in range(n_lon):
            a, b, c, d = ring(i, j), ring(i + 1, j), ring(i + 1, j + 1), ring(i, j + 1)
            faces += [(a, b, c), (a, c, d)]
    faces = np.array(faces, np.int32)
    v = verts[faces] / radius                                      # (F, 3, 3)
    u = (np.arctan2(v[..., 1], v[..., 0]) / (2 * np.pi)) % 1.0
    w = 1.0 - np.arccos(np.clip(v[..., 2], -1, 1)) / np.pi
    face_uvs = np.stack([u, w], -1).astype(np.float32)
    centre_z = v[..., 2].mean(1)
    face_parts = (1 + np.clip(((1 - centre_z) / 2 * 14).astype(int), 0, 13)).astype(np.uint8)
    return verts.astype(np.float32), faces, face_uvs, face_parts


def camera_looking_at(eye, target, width, height, fov_deg=40.0) -> Camera:
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    z = (target - eye) / np.linalg.norm(target - eye)
    x = np.cross(z, [0, 0, 1.0])
    x /= np.linalg.norm(x)
    R = np.stack([x, np.cross(z, x), z])
    f = 0.5 * width / np.tan(np.radians(fov_deg) / 2)
    K = np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]])
    return Camera(K=K, R=R, t=-R @ eye, width=width, height=height)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--renders", type=int, default=20)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--no-denoise", action="store_true")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--texture", type=int, default=1024, help="texture side in pixels")
    ap.add_argument("--save", type=Path, help="write the last render's rgb and parts PNGs with this prefix")
    args = ap.parse_args()

    size = args.size
    verts, faces, face_uvs, face_parts = uv_sphere()
    print(f"mesh: {len(verts)} vertices, {len(faces)} triangles; {size}x{size}, {args.samples} samples, "
          f"denoise={not args.no_denoise}, texture {args.texture}^2")
    rng = np.random.default_rng(0)
    hdris = sorted((DATA / "hdri").glob("*.hdr"))
    background = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)

    def scene(i: int) -> SceneSpec:
        wobble = 1.0 + 0.03 * np.sin(5 * verts[:, 2:3] + i)          # same topology, new positions
        body = BodyMesh(verts * wobble + [0, 0, 1.0], faces, face_uvs, face_parts, np.zeros((15, 3), np.float32))
        azimuth = rng.uniform(0, 2 * np.pi)
        eye = [3.5 * np.cos(azimuth), 3.5 * np.sin(azimuth), 1.0 + rng.uniform(-0.5, 1.0)]
        lights = [Light(kind, rng.uniform(-3, 3, 3) + [0, 0, 3], np.array([0, 0, -1.0]),
                        4.0 if kind == "SUN" else 800.0, (1, 1, 1), 0.3)
                  for kind in rng.choice(["POINT", "AREA", "SUN", "SPOT"], rng.integers(1, 5))]
        env = Environment(hdri_path=str(hdris[i % len(hdris)]), strength=1.0, rotation_z=rng.uniform(0, 6.28)) \
            if hdris else Environment(color=(0.1, 0.1, 0.1))
        texture = rng.integers(0, 256, (args.texture, args.texture, 3), dtype=np.uint8)
        cam = camera_looking_at(eye, [0, 0, 1.0], size, size)
        return SceneSpec(body, texture, cam, lights, env, background, seed=i)

    renderer = Renderer(size, size, samples=args.samples, denoise=not args.no_denoise, threads=args.threads)
    try:
        t0 = time.perf_counter()
        first = renderer.render(scene(0))
        print(f"first render (builds the scene): {time.perf_counter() - t0:.3f} s  "
              + "  ".join(f"{k}={v * 1000:.1f}ms" for k, v in first.timings.items()))
        rss_after_first = resident_mib()
        rows = []
        for i in range(1, args.renders + 1):
            t0 = time.perf_counter()
            out = renderer.render(scene(i))
            out.timings["total"] = time.perf_counter() - t0
            rows.append(out.timings)
        rss_at_end = resident_mib()
    finally:
        renderer.close()
    if args.save:
        import cv2
        cv2.imwrite(f"{args.save}.rgb.png", out.rgb[..., ::-1])
        cv2.imwrite(f"{args.save}.parts.png", (out.parts.astype(np.uint16) * 18).clip(0, 255).astype(np.uint8))
    print(f"resident memory: {rss_after_first:.0f} MiB after the first render, {rss_at_end:.0f} MiB after the last")
    print(f"mean over {len(rows)} renders (each with a new texture, vertices, camera, lights, HDRI):")
    for key in ("scene_update", "render", "readback", "composite", "total"):
        vals = np.array([r[key] for r in rows]) * 1000
        print(f"  {key:13s} {vals.mean():8.1f} ms  (std {vals.std():6.1f}, min {vals.min():7.1f}, max {vals.max():7.1f})")


if __name__ == "__main__":
    main()
