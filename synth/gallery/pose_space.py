"""The pose-space page (`synth pose-gallery --out DIR`), after Chen et al. 2016, Figure 2.

One self-contained HTML file (inline SVG, no scripts, no images to fetch):
- a 2D embedding (PCA, and t-SNE when asked) of MoCap, lifted LSP and prior-sampled poses in three
  colours, computed on the normalised representation (yaw-free unit bone directions,
  synth.poses.representation.pose_features: the pose's shape whatever the body's size);
- a grid of sampled skeletons drawn in 3D (oblique orthographic view), each with its distance to
  the nearest training pose;
- the coverage figures: for held-out MoCap poses (whole subjects left out of the prior's fit,
  poses.prior.coverage_holdout_subjects), the mean distance to the nearest of N prior samples
  versus N poses drawn from the sources the prior was fitted on, for several N. Distances are mean
  per-joint distances in mm, root-relative, facing yaw removed, every pose rebuilt with the
  prior's canonical bone lengths (so that only the pose, not the subject's size, counts);
- the lifter's report (held-out errors), the validity rates and the pose file's report when given.
"""
from __future__ import annotations

import html
import json
import time
from pathlib import Path

import numpy as np

from synth.config import Paths, PosesConfig
from synth.gallery.page import CSS, SIDE_RGB, compact_json
from synth.io_utils import InputError, atomic_write_text
from synth.poses.prior import novelty
from synth.poses.sampling import _clip_subject, find_clips, load_pool
from synth.poses.sources import fitted_prior, lsp_for_prior, prior_training_set, sample_valid
from synth.poses.validity import PoseValidator
from synth.rng import Stream, stream
from synth.poses.representation import (BONE_CHILD, BONE_PARENT, BONES, nearest_distances,
                                        pose_features, to_directions, to_joints)

GROUP_RGB = {"MoCap (cmu)": (40, 110, 255), "lifted LSP (lsp)": (240, 140, 20),
             "prior samples (prior)": (30, 170, 60)}
SIDE_OF_BONE = ["centre" if "right" not in b and "left" not in b else ("right" if "right" in b else "left")
                for _, b in BONES]


def _rgb(c) -> str:
    return f"rgb({c[0]},{c[1]},{c[2]})"


def scatter_svg(points: dict[str, np.ndarray], title: str, size: int = 420) -> str:
    """An SVG scatter plot of 2D points per group (coloured by GROUP_RGB), with a legend."""
    allp = np.concatenate([p for p in points.values() if len(p)])
    lo, hi = allp.min(0), allp.max(0)
    span = np.where(hi - lo > 1e-12, hi - lo, 1.0)
    pad = 12
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size + 30 + 16 * len(points)}" '
             f'style="background:#fff;border:1px solid #ccc">',
             f'<text x="8" y="16" font-size="13" font-weight="600">{html.escape(title)}</text>']
    for name, p in points.items():
        xy = pad + (p - lo) / span * (size - 2 * pad)
        col = _rgb(GROUP_RGB[name])
        parts.append(f'<g fill="{col}" fill-opacity="0.55">' + "".join(
            f'<circle cx="{x:.1f}" cy="{size - y + 20:.1f}" r="2"/>' for x, y in xy) + "</g>")
    for i, name in enumerate(points):
        y = size + 34 + 16 * i
        x = 8
        parts.append(f'<circle cx="{x + 5}" cy="{y - 4}" r="5" fill="{_rgb(GROUP_RGB[name])}"/>'
                     f'<text x="{x + 14}" y="{y}" font-size="12">{html.escape(name)} ({len(points[name])})</text>')
    parts.append("</svg>")
    return "".join(parts)


def oblique(joints: np.ndarray, azimuth_deg: float = 30.0, elevation_deg: float = 15.0) -> np.ndarray:
    """(..., 15, 3) Z-up joints -> (..., 15, 2) image coordinates (x right, y down) of an
    orthographic view from the front-left, slightly above."""
    a, e = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    # camera looks along +Y at a person facing -Y, turned by the azimuth about Z, tilted down by e
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    p = joints @ rz.T
    x = p[..., 0]
    up = p[..., 2] * np.cos(e) + p[..., 1] * np.sin(e)
    return np.stack([x, -up], axis=-1)


def skeleton_svg(joints: np.ndarray, caption: str, size: int = 150) -> str:
    """One pose drawn as an SVG (bones coloured by side), scaled to fit."""
    uv = oblique(np.asarray(joints, dtype=np.float64))
    lo, hi = uv.min(0), uv.max(0)
    scale = (size - 16) / max(float((hi - lo).max()), 1e-6)
    xy = (uv - (lo + hi) / 2) * scale + size / 2
    lines = "".join(
        f'<line x1="{xy[a, 0]:.1f}" y1="{xy[a, 1]:.1f}" x2="{xy[b, 0]:.1f}" y2="{xy[b, 1]:.1f}" '
        f'stroke="{_rgb(SIDE_RGB[s])}" stroke-width="3" stroke-linecap="round"/>'
        for a, b, s in zip(BONE_PARENT, BONE_CHILD, SIDE_OF_BONE))
    ground = float(xy[:, 1].max())
    return (f'<figure><svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
            f'style="background:#fff;border:1px solid #ccc">'
            f'<line x1="4" y1="{ground + 2:.1f}" x2="{size - 4}" y2="{ground + 2:.1f}" stroke="#bbb"/>'
            f'{lines}</svg><figcaption>{html.escape(caption)}</figcaption></figure>')


def _canonical(joints: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    return to_joints(to_directions(joints)[0], lengths)


def coverage(pc: PosesConfig, paths: Paths, seed: int, ns=(1000, 10000, 100000), max_queries: int = 1000,
             progress: bool = False, rng: np.random.Generator | None = None) -> dict:
    """Held-out coverage: mean distance (mm) from held-out MoCap poses to the nearest of N prior
    samples (valid ones) vs N poses drawn from the prior's own training sources."""
    rng = rng if rng is not None else stream(seed, Stream.POSE_GALLERY, 0)
    held = [str(s) for s in pc.prior.coverage_holdout_subjects]
    if not held:
        return {"skipped": "poses.prior.coverage_holdout_subjects is empty"}
    t0 = time.perf_counter()
    prior, fit_report = fitted_prior(pc, paths, seed, progress, exclude_subjects=held)
    train_joints, train_w, train_src, counts = prior_training_set(pc, paths, progress, exclude_subjects=held)
    present = sorted({_clip_subject(p) for p in find_clips(paths.data)} & set(held))
    if not present:
        return {"skipped": f"no MoCap poses of the held-out subjects {held} in the data directory"}
    queries = load_pool(paths.data, present, pc.fps, pc.min_pose_distance, progress=progress,
                        cache_dir=paths.cache / "poses").joints_3d
    if len(queries) == 0:
        return {"skipped": f"no MoCap poses of the held-out subjects {held} in the data directory"}
    if len(queries) > max_queries:
        queries = queries[rng.choice(len(queries), max_queries, replace=False)]
    q = _canonical(queries, prior.lengths)
    validator = PoseValidator.from_data_dir(paths.data, pc.validity)
    n_max = max(ns)
    sampled, draw = sample_valid(prior, validator, n_max, rng, batch=pc.prior.batch)
    p_w = train_w / train_w.sum()
    drawn_idx = rng.choice(len(train_joints), size=n_max, replace=True, p=p_w)
    from_sources = _canonical(train_joints[drawn_idx], prior.lengths)
    rows = []
    for n in ns:
        d_prior = nearest_distances(q, sampled[:n])
        d_src = nearest_distances(q, from_sources[:n])
        rows.append({"N": int(n), "prior_mm": round(float(d_prior.mean()) * 1000, 1),
                     "sources_mm": round(float(d_src.mean()) * 1000, 1),
                     "distinct_source_poses": int(len(np.unique(drawn_idx[:n])))})
    return {"holdout_subjects": held, "queries": int(len(q)), "training_poses": counts,
            "prior_rejection_rate": round(1.0 - draw["valid"] / draw["drawn"], 4), "rows": rows,
            "fit": fit_report, "seconds": round(time.perf_counter() - t0, 1)}


def _table(rows: list[dict]) -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r.values()) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _lsp_group(pc: PosesConfig, paths: Paths, progress: bool):
    """(lifted LSP joints the prior learns from or None, lifter report, validity rates, a note)."""
    if pc.prior.fit_mix.lsp <= 0 and "lsp" not in pc.sources:
        return None, None, None, "<p>No lifted LSP poses: poses.prior.fit_mix.lsp is 0 and lsp is not a chosen source.</p>"
    try:
        usable, lift = lsp_for_prior(pc, paths, progress)
    except InputError as e:
        return None, None, None, f'<p class="warn">lifted LSP poses unavailable: {html.escape(str(e))}</p>'
    plaus = np.asarray(lift.plausible, dtype=bool)
    rates = {"lifted": int(len(plaus)), "plausible": int(plaus.sum()),
             "rejection_rate": round(1 - float(plaus.mean()), 4),
             "angles_and_clearance_ok (what the prior learns from)": int(len(usable))}
    return usable, lift.report, rates, None


def write_pose_space_page(pc: PosesConfig, out_dir: Path, *, seed: int, paths: Paths, pose_file: Path | None = None,
                          per_group: int = 600, grid: int = 24, tsne: bool = True,
                          coverage_ns=(1000, 10000, 100000), progress: bool = False) -> Path:
    """Write out_dir/pose_space.html for the `poses` section and return its path."""
    from sklearn.decomposition import PCA        # scikit-learn: loaded by this page only
    rng = stream(seed, Stream.POSE_GALLERY, 1)
    sections: list[str] = []

    # the three groups
    pool = load_pool(paths.data, pc.subjects, pc.fps, pc.min_pose_distance, progress=progress,
                     cache_dir=paths.cache / "poses")
    groups: dict[str, np.ndarray] = {"MoCap (cmu)": pool.joints_3d}
    usable, lift_report, lsp_rates, note = _lsp_group(pc, paths, progress)
    if usable is not None:
        groups["lifted LSP (lsp)"] = usable
    if note:
        sections.append(note)
    prior, fit_report = fitted_prior(pc, paths, seed, progress)
    validator = PoseValidator.from_data_dir(paths.data, pc.validity)
    samples, draw = sample_valid(prior, validator, max(per_group, grid), rng)
    groups["prior samples (prior)"] = samples
    picked = {k: v[rng.choice(len(v), min(per_group, len(v)), replace=False)] for k, v in groups.items()}

    feats = {k: pose_features(v) for k, v in picked.items()}
    allf = np.concatenate(list(feats.values()))
    splits = np.cumsum([len(v) for v in feats.values()])[:-1]
    emb = PCA(n_components=2, random_state=0).fit_transform(allf)
    plots = [scatter_svg(dict(zip(feats, np.split(emb, splits))), "PCA of the pose representation")]
    if tsne and len(allf) >= 10:
        from sklearn.manifold import TSNE        # scikit-learn: loaded by this page only
        t = TSNE(n_components=2, perplexity=min(30.0, len(allf) / 4), init="pca", random_state=0)
        plots.append(scatter_svg(dict(zip(feats, np.split(t.fit_transform(allf), splits))), "t-SNE of the pose representation"))
    sections.append("<h2>Pose space</h2><p>Each dot is a pose: its 14 unit bone directions with the facing "
                    "yaw removed (the pose's shape, not the body's size). Up to "
                    f"{per_group} poses per group: the MoCap pool, the lifted LSP poses the prior learns from "
                    "(joint angles and limb clearances valid; their bone lengths do not matter here) and valid "
                    "prior samples.</p><div class='grid'>" + "".join(plots) + "</div>")

    # skeleton grid
    show = samples[:grid]
    _, dist = novelty(show, prior.training_joints(), pc.prior.novelty_threshold)
    figs = "".join(skeleton_svg(j, f"nearest {d * 1000:.0f} mm") for j, d in zip(show, dist))
    sections.append(f"<h2>Sampled skeletons</h2><p>{len(show)} valid prior samples (oblique view, right side red, "
                    "left blue); under each, its mean joint distance to the nearest training pose.</p>"
                    f"<div class='grid'>{figs}</div>")

    # coverage
    cov = coverage(pc, paths, seed, ns=coverage_ns, progress=progress)
    if "rows" in cov:
        sections.append(
            "<h2>Coverage of held-out MoCap subjects</h2>"
            f"<p>{cov['queries']} poses of subjects {', '.join(cov['holdout_subjects'])} (left out of the prior's "
            "fit). Mean distance (mm, root-relative, yaw removed, canonical bone lengths) to the nearest of N "
            "valid prior samples versus N poses drawn (with replacement, by the prior's source weights) from "
            f"the poses the prior was fitted on ({html.escape(json.dumps(cov['training_poses']))}).</p>"
            + _table([{"N": r["N"], "prior samples (mm)": r["prior_mm"], "source poses (mm)": r["sources_mm"],
                       "distinct source poses": r["distinct_source_poses"]} for r in cov["rows"]]))
    else:
        sections.append(f"<h2>Coverage</h2><p class='warn'>{html.escape(cov['skipped'])}</p>")

    # structure, validity, lifter, pose file
    sections.append("<h2>The network</h2><p>Chow-Liu tree over body parts (parent &rarr; child, mutual information "
                    "in nats):</p>" + _table([{"parent": a, "child": b, "MI": round(m, 3)} for a, b, m in prior.edges()]))
    validity = {"prior samples": {"drawn": draw["drawn"], "rejection_rate": round(1 - draw["valid"] / draw["drawn"], 4),
                                  "rejected_by": draw["rejected_by"]}}
    if lsp_rates:
        validity["lifted LSP"] = lsp_rates
    sections.append(f"<h2>Validity</h2><pre>{html.escape(compact_json(validity))}</pre>")
    if lift_report is not None:
        sections.append(f"<details open><summary>Lifter report (Wang et al. 2019)</summary>"
                        f"<pre>{html.escape(compact_json(lift_report))}</pre></details>")
    if pose_file is not None:
        rep = Path(pose_file).with_suffix(".report.json")
        if rep.is_file():
            sections.append(f"<details open><summary>Pose file report: {html.escape(str(pose_file))}</summary>"
                            f"<pre>{html.escape(rep.read_text())}</pre></details>")
        else:
            sections.append(f"<p class='warn'>no report beside {html.escape(str(pose_file))}</p>")
    sections.append(f"<details><summary>Prior fit</summary><pre>{html.escape(compact_json(fit_report))}</pre></details>")
    sections.append(f"<details><summary>Coverage details</summary><pre>{html.escape(compact_json(cov))}</pre></details>")

    page = ("<!doctype html><html><head><meta charset='utf-8'><title>synth pose space</title>"
            f"<style>{CSS} figure svg{{display:block}} figcaption{{font-size:11px}}</style></head><body>"
            "<h1>Pose space: MoCap, lifted LSP and prior samples</h1>" + "".join(sections) + "</body></html>")
    out = Path(out_dir) / "pose_space.html"
    atomic_write_text(out, page)
    return out
