"""Pose sources and their mix, as `synth sample-poses` uses them.

- "cmu": MoCap frames from the thinned pool (synth.poses.sampling), rotations from the AMC/BVH
  forward kinematics;
- "lsp": LSP 2D poses lifted to 3D (synth.poses.lifting.lift_lsp), the plausible ones, rotations by
  inverse kinematics;
- "prior": samples of the pose prior (synth.poses.prior) fitted on MoCap plus lifted LSP, kept when
  the PoseValidator accepts them, rotations by inverse kinematics.

`poses.mix` gives each chosen source's share of the n poses (renormalised over the chosen
sources); `poses.prior.fit_mix` the weight of each source's poses in the prior's densities. The
fitted prior is cached under cache_dir/prior, keyed by a hash of its training poses, weights and
parameters.
"""
from __future__ import annotations

import hashlib
import json
import time
import warnings

import numpy as np
from tqdm import tqdm

from synth.config import ConfigError, Paths, PosesConfig
from synth.io_utils import InputError
from synth.limits import MAX_POSES, check_count
from synth.poses.ik import poseset_from_joints
from synth.poses.lifting import LiftResult, PoolParams, lift_lsp
from synth.poses.posefile import PoseSet
from synth.poses.prior import PosePrior, network_params, novelty
from synth.poses.sampling import _clip_subject, find_clips, load_pool, sample_poses
from synth.poses.validity import PoseValidator
from synth.rng import Stream, stream

SOURCES = ("cmu", "lsp", "prior")
PRIOR_VERSION = 2   # bump when the fit would change for the same inputs


def split_counts(n: int, shares: dict[str, float]) -> dict[str, int]:
    """n split by `shares` (renormalised), largest remainder, so the counts sum to n."""
    total = sum(shares.values())
    if total <= 0:
        raise ConfigError(f"config key 'poses.mix': the chosen sources {list(shares)} all have share 0")
    exact = {k: n * v / total for k, v in shares.items()}
    counts = {k: int(np.floor(v)) for k, v in exact.items()}
    rest = n - sum(counts.values())
    for k in sorted(exact, key=lambda k: counts[k] - exact[k])[:rest]:
        counts[k] += 1
    return counts


def lifted_lsp(poses: PosesConfig, paths: Paths, progress: bool = False) -> LiftResult:
    """P-LIFT's lift of all LSP training poses (cached by lift_lsp itself; the lifter is trained
    on every MoCap subject at poses.fps / poses.min_pose_distance from poses.lifting.seed)."""
    return lift_lsp(paths.data, paths.cache, poses.lifting, PoolParams.of(poses), progress=progress)


def lsp_for_prior(poses: PosesConfig, paths: Paths, progress: bool = False):
    """(joints (M, 15, 3) of the lifted LSP poses whose joint angles and limb clearances pass the
    PoseValidator, the LiftResult)."""
    lift = lifted_lsp(poses, paths, progress)
    res = PoseValidator.from_data_dir(paths.data, poses.validity).check(lift.poses.joints_3d)
    usable = np.asarray(res.angle_ok, dtype=bool) & np.asarray(res.collision_ok, dtype=bool)
    return lift.poses.joints_3d[usable], lift


def prior_training_set(poses: PosesConfig, paths: Paths, progress: bool = False,
                       exclude_subjects=()) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(joints (N, 15, 3), weights (N,), source (N,) str, counts) the prior is fitted on: the MoCap
    pool at poses.prior.fit_fps / fit_min_pose_distance (without `exclude_subjects`) and the
    lifted LSP poses whose joint angles and limb clearances pass the PoseValidator, weighted by
    poses.prior.fit_mix."""
    fit_mix = {k: float(v) for k, v in poses.prior.fit_mix.model_dump().items() if float(v) > 0}
    parts: list[tuple[str, np.ndarray]] = []
    if "cmu" in fit_mix:
        subjects = poses.subjects
        if exclude_subjects:
            every = sorted({_clip_subject(p) for p in find_clips(paths.data, subjects)})
            subjects = [s for s in every if s not in set(exclude_subjects)]
            if not subjects:
                raise ConfigError(f"no MoCap subjects left after holding out {list(exclude_subjects)}")
        pool = load_pool(paths.data, subjects, fps=poses.prior.fit_fps,
                         min_distance=poses.prior.fit_min_pose_distance, progress=progress,
                         cache_dir=paths.cache / "poses")
        parts.append(("cmu", pool.joints_3d))
    if "lsp" in fit_mix:
        # The prior keeps only bone directions (lengths come from its canonical body), so a lifted
        # pose qualifies when its joint angles and limb clearances pass; bone-length consistency,
        # which the lifter's depth search does not preserve, does not matter here.
        parts.append(("lsp", lsp_for_prior(poses, paths, progress)[0]))
    if not parts:
        raise ConfigError("config key 'poses.prior.fit_mix': no source with a positive weight")
    joints = np.concatenate([j for _, j in parts]).astype(np.float32)
    source = np.concatenate([np.full(len(j), s) for s, j in parts])
    weights = np.concatenate([np.full(len(j), fit_mix[s] / max(len(j), 1)) for s, j in parts])
    return joints, weights, source, {s: int(len(j)) for s, j in parts}


def fitted_prior(poses: PosesConfig, paths: Paths, seed: int, progress: bool = False,
                 exclude_subjects=()) -> tuple[PosePrior, dict]:
    """The prior for this configuration, from the cache or fitted (and cached); and a report."""
    joints, weights, source, counts = prior_training_set(poses, paths, progress, exclude_subjects)
    params = network_params(poses.prior)
    h = hashlib.sha256()
    for a in (joints, weights.astype(np.float64)):
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(json.dumps({"v": PRIOR_VERSION, "params": params, "seed": seed}, sort_keys=True).encode())
    path = paths.cache / "prior" / f"prior-{h.hexdigest()[:20]}.npz"
    report = {"training_poses": counts, "fit_mix": poses.prior.fit_mix.model_dump(),
              "params": params, "cache": str(path)}
    if path.is_file():
        try:
            prior = PosePrior.load(path)
            report["fit_s"] = None
            report["edges"] = [list(e) for e in prior.edges()]
            return prior, report
        except InputError as e:
            warnings.warn(f"ignoring unreadable prior cache: {e}", stacklevel=2)
    t0 = time.perf_counter()
    prior = PosePrior(poses.prior).fit(joints, stream(seed, Stream.PRIOR_FIT), weights=weights)
    report["fit_s"] = round(time.perf_counter() - t0, 2)
    report["edges"] = [list(e) for e in prior.edges()]
    try:
        prior.save(path)
    except OSError as e:
        warnings.warn(f"cannot write the prior cache {path} ({e.strerror}); it will be fitted again",
                      stacklevel=2)
    return prior, report


def sample_valid(prior: PosePrior, validator, n: int, rng: np.random.Generator, batch: int = 20000,
                 progress: bool = False, max_rounds: int = 1000) -> tuple[np.ndarray, dict]:
    """n prior samples that the validator accepts; and counts of what was drawn and rejected."""
    kept: list[np.ndarray] = []
    have = drawn = valid_drawn = 0
    rejected = {"angle": 0, "bones": 0, "collision": 0}
    bar = tqdm(total=n, desc="prior poses", unit="pose", disable=not progress)
    rounds = 0
    while have < n:
        rounds += 1
        if rounds > max_rounds:
            raise InputError(f"the pose validator rejected {drawn - have} of {drawn} prior samples; "
                             f"stopped after {max_rounds} rounds")
        joints = prior.sample(batch, rng)
        res = validator.check(joints)
        drawn += batch
        for key, field in (("angle", "angle_ok"), ("bones", "bones_ok"), ("collision", "collision_ok")):
            rejected[key] += int((~np.asarray(getattr(res, field), dtype=bool)).sum())
        valid = np.asarray(res.valid, dtype=bool)
        valid_drawn += int(valid.sum())
        ok = joints[valid][: n - have]
        kept.append(ok)
        have += len(ok)
        bar.update(len(ok))
    bar.close()
    report = {"drawn": drawn, "valid": valid_drawn, "kept": have,
              "rejected_by": {k: round(v / drawn, 4) for k, v in rejected.items()}}
    return np.concatenate(kept)[:n], report


def sample_pose_set(poses: PosesConfig, n: int, *, seed: int, paths: Paths,
                    progress: bool = False) -> tuple[PoseSet, dict]:
    """n poses from the sources and mix of the `poses` section, each tagged with its source; and
    a report (counts per source, rejection rates, the prior's structure and novelty). Every draw
    comes from the POSE_SAMPLING stream of `seed` (the prior's fit from PRIOR_FIT)."""
    check_count("the number of poses to sample", n, MAX_POSES)   # poses.n is capped by its model
    rng = stream(seed, Stream.POSE_SAMPLING)
    mix = poses.mix.model_dump()
    chosen = list(dict.fromkeys(poses.sources))
    counts = split_counts(n, {s: float(mix[s]) for s in chosen})
    report: dict = {"n": n, "mix": {s: float(mix[s]) for s in chosen}, "counts": counts, "sources": {}}
    sets: list[PoseSet] = []
    if counts.get("cmu", 0) > 0:
        t0 = time.perf_counter()
        drawn = sample_poses(paths.data, counts["cmu"], rng, subjects=poses.subjects, fps=poses.fps,
                             min_distance=poses.min_pose_distance, progress=progress,
                             cache_dir=paths.cache / "poses")
        sets.append(drawn)
        report["sources"]["cmu"] = {"poses": len(drawn), "distinct": int(len(np.unique(drawn.pose_id))),
                                    "seconds": round(time.perf_counter() - t0, 2)}
    if counts.get("lsp", 0) > 0:
        t0 = time.perf_counter()
        lift = lifted_lsp(poses, paths, progress)
        plausible = np.flatnonzero(np.asarray(lift.plausible, dtype=bool))
        if len(plausible) == 0:
            raise InputError(f"{paths.data / 'lsp'}: no lifted LSP pose is plausible")
        m = counts["lsp"]
        idx = (rng.choice(plausible, size=m, replace=False) if m <= len(plausible)
               else rng.choice(plausible, size=m, replace=True))
        sets.append(lift.poses.subset(idx))
        report["sources"]["lsp"] = {
            "poses": m, "distinct": int(len(np.unique(idx))), "lifted": int(len(lift.poses)),
            "plausible": int(len(plausible)),
            "rejection_rate": round(1.0 - len(plausible) / max(len(lift.poses), 1), 4),
            "lifter": lift.report, "seconds": round(time.perf_counter() - t0, 2)}
    if counts.get("prior", 0) > 0:
        t0 = time.perf_counter()
        prior, fit_report = fitted_prior(poses, paths, seed, progress)
        validator = PoseValidator.from_data_dir(paths.data, poses.validity)
        t1 = time.perf_counter()
        joints, draw = sample_valid(prior, validator, counts["prior"], rng, batch=poses.prior.batch,
                                    progress=progress)
        t2 = time.perf_counter()
        ids = [f"prior/s{seed}/{i:07d}" for i in range(len(joints))]
        sampled = poseset_from_joints(joints, "prior", ids, ["prior"] * len(joints))
        t3 = time.perf_counter()
        sets.append(sampled)
        check = min(len(joints), 2000)
        share, dist = novelty(joints[:check], prior.training_joints(), poses.prior.novelty_threshold)
        report["sources"]["prior"] = {
            "poses": len(sampled), "drawn": draw["drawn"],
            "rejection_rate": round(1.0 - draw["valid"] / draw["drawn"], 4),
            "rejected_by": draw["rejected_by"], "fit": fit_report,
            "novelty": {"threshold_m": poses.prior.novelty_threshold, "checked": check,
                        "share_farther": round(share, 4),
                        "median_nearest_mm": round(float(np.median(dist)) * 1000, 1)},
            "seconds": {"fit_or_load": round(t1 - t0, 2), "sample_and_validate": round(t2 - t1, 2),
                        "ik": round(t3 - t2, 2)}}
    if len(sets) == 1:      # a single source keeps its own draw order (and no copy is made)
        return sets[0], report
    mixed = len(sets) > 1
    out = PoseSet.concatenate(sets)
    sets.clear()            # at most two copies of the poses at a time (memory: README.md, Limits)
    if mixed:               # mixed sources: interleaved
        out = out.subset(rng.permutation(len(out)))
    return out, report


def format_report(report: dict) -> str:
    """A few lines for the terminal."""
    lines = [f"{report['n']} poses: " + ", ".join(f"{s} {c}" for s, c in report["counts"].items())]
    for s, r in report["sources"].items():
        if s == "cmu":
            lines.append(f"  cmu: {r['poses']} poses ({r['distinct']} distinct MoCap frames)")
        elif s == "lsp":
            lines.append(f"  lsp: {r['poses']} poses ({r['distinct']} distinct) from {r['plausible']} plausible "
                         f"of {r['lifted']} lifted (rejection rate {r['rejection_rate']:.1%})")
        elif s == "prior":
            nov = r["novelty"]
            lines.append(f"  prior: {r['poses']} valid of {r['drawn']} sampled (rejection rate "
                         f"{r['rejection_rate']:.1%}: " + ", ".join(f"{k} {v:.1%}" for k, v in r["rejected_by"].items())
                         + f"); {nov['share_farther']:.1%} farther than {nov['threshold_m'] * 1000:.0f} mm "
                         f"from every training pose")
    return "\n".join(lines)
