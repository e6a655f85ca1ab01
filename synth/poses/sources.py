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

from synth.config import ConfigError, cache_dir, data_dir
from synth.io_utils import InputError
from synth.poses.posefile import PoseSet
from synth.poses.prior import PosePrior, PriorParams, novelty

SOURCES = ("cmu", "lsp", "prior")
PRIOR_VERSION = 1   # bump when the fit would change for the same inputs


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


def prior_params(cfg: dict) -> PriorParams:
    pc = cfg["poses"]["prior"]
    return PriorParams(k=int(pc["k"]), kernel_sigma=float(pc["kernel_sigma"]), mi_bins=int(pc["mi_bins"]))


def lifted_lsp(cfg: dict, progress: bool = False):
    """P-LIFT's lift of all LSP training poses (cached by lift_lsp itself)."""
    from synth.poses.lifting import lift_lsp
    pc = cfg["poses"]
    return lift_lsp(data_dir(cfg), cache_dir(cfg), rng=np.random.default_rng([cfg["seed"], 11]),
                    progress=progress, params=pc["lifting"],
                    pool_params={"fps": pc["fps"], "min_pose_distance": pc["min_pose_distance"]})


def lsp_for_prior(cfg: dict, progress: bool = False):
    """(joints (M, 15, 3) of the lifted LSP poses whose joint angles and limb clearances pass the
    PoseValidator, the LiftResult)."""
    from synth.poses.validity import PoseValidator
    lift = lifted_lsp(cfg, progress)
    res = PoseValidator.from_data_dir(data_dir(cfg), cfg["poses"]["validity"]).check(lift.poses.joints_3d)
    usable = np.asarray(res.angle_ok, dtype=bool) & np.asarray(res.collision_ok, dtype=bool)
    return lift.poses.joints_3d[usable], lift


def prior_training_set(cfg: dict, progress: bool = False, exclude_subjects=()) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(joints (N, 15, 3), weights (N,), source (N,) str, counts) the prior is fitted on: the MoCap
    pool at poses.prior.fit_fps / fit_min_pose_distance (without `exclude_subjects`) and the
    lifted LSP poses whose joint angles and limb clearances pass the PoseValidator, weighted by
    poses.prior.fit_mix."""
    from synth.poses.sampling import find_clips, load_pool
    pc = cfg["poses"]
    fit_mix = {k: float(v) for k, v in pc["prior"]["fit_mix"].items() if float(v) > 0}
    parts: list[tuple[str, np.ndarray]] = []
    if "cmu" in fit_mix:
        subjects = pc["subjects"]
        if exclude_subjects:
            from synth.poses.sampling import _clip_subject
            every = sorted({_clip_subject(p) for p in find_clips(data_dir(cfg), subjects)})
            subjects = [s for s in every if s not in set(exclude_subjects)]
            if not subjects:
                raise ConfigError(f"no MoCap subjects left after holding out {list(exclude_subjects)}")
        pool = load_pool(data_dir(cfg), subjects, fps=pc["prior"]["fit_fps"],
                         min_distance=pc["prior"]["fit_min_pose_distance"], progress=progress,
                         cache_dir=cache_dir(cfg) / "poses")
        parts.append(("cmu", pool.joints_3d))
    if "lsp" in fit_mix:
        # The prior keeps only bone directions (lengths come from its canonical body), so a lifted
        # pose qualifies when its joint angles and limb clearances pass; bone-length consistency,
        # which the lifter's depth search does not preserve, does not matter here.
        parts.append(("lsp", lsp_for_prior(cfg, progress)[0]))
    if not parts:
        raise ConfigError("config key 'poses.prior.fit_mix': no source with a positive weight")
    joints = np.concatenate([j for _, j in parts]).astype(np.float32)
    source = np.concatenate([np.full(len(j), s) for s, j in parts])
    weights = np.concatenate([np.full(len(j), fit_mix[s] / max(len(j), 1)) for s, j in parts])
    return joints, weights, source, {s: int(len(j)) for s, j in parts}


def fitted_prior(cfg: dict, progress: bool = False, exclude_subjects=()) -> tuple[PosePrior, dict]:
    """The prior for this configuration, from the cache or fitted (and cached); and a report."""
    joints, weights, source, counts = prior_training_set(cfg, progress, exclude_subjects)
    params = prior_params(cfg)
    h = hashlib.sha256()
    for a in (joints, weights.astype(np.float64)):
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(json.dumps({"v": PRIOR_VERSION, "params": params.__dict__, "seed": cfg["seed"]},
                        sort_keys=True).encode())
    path = cache_dir(cfg) / "prior" / f"prior-{h.hexdigest()[:20]}.npz"
    report = {"training_poses": counts, "fit_mix": cfg["poses"]["prior"]["fit_mix"],
              "params": params.__dict__, "cache": str(path)}
    if path.is_file():
        try:
            prior = PosePrior.load(path)
            report["fit_s"] = None
            report["edges"] = [list(e) for e in prior.edges()]
            return prior, report
        except InputError as e:
            warnings.warn(f"ignoring unreadable prior cache: {e}", stacklevel=2)
    t0 = time.perf_counter()
    prior = PosePrior(params).fit(joints, np.random.default_rng([cfg["seed"], 7]), weights=weights)
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


def sample_pose_set(cfg: dict, n: int, rng: np.random.Generator, progress: bool = False) -> tuple[PoseSet, dict]:
    """n poses from the configured sources and mix, each tagged with its source; and a report
    (counts per source, rejection rates, the prior's structure and novelty)."""
    from synth.limits import check_pose_counts
    from synth.poses.sampling import sample_poses
    check_pose_counts(cfg, n)
    pc = cfg["poses"]
    chosen = list(dict.fromkeys(pc["sources"]))
    counts = split_counts(n, {s: float(pc["mix"][s]) for s in chosen})
    report: dict = {"n": n, "mix": {s: float(pc["mix"][s]) for s in chosen}, "counts": counts, "sources": {}}
    sets: list[PoseSet] = []
    if counts.get("cmu", 0) > 0:
        t0 = time.perf_counter()
        poses = sample_poses(data_dir(cfg), counts["cmu"], rng, subjects=pc["subjects"], fps=pc["fps"],
                             min_distance=pc["min_pose_distance"], progress=progress,
                             cache_dir=cache_dir(cfg) / "poses")
        sets.append(poses)
        report["sources"]["cmu"] = {"poses": len(poses), "distinct": int(len(np.unique(poses.pose_id))),
                                    "seconds": round(time.perf_counter() - t0, 2)}
    if counts.get("lsp", 0) > 0:
        t0 = time.perf_counter()
        lift = lifted_lsp(cfg, progress)
        plausible = np.flatnonzero(np.asarray(lift.plausible, dtype=bool))
        if len(plausible) == 0:
            raise InputError(f"{data_dir(cfg) / 'lsp'}: no lifted LSP pose is plausible")
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
        from synth.poses.ik import poseset_from_joints
        from synth.poses.validity import PoseValidator
        t0 = time.perf_counter()
        prior, fit_report = fitted_prior(cfg, progress)
        validator = PoseValidator.from_data_dir(data_dir(cfg), cfg["poses"]["validity"])
        t1 = time.perf_counter()
        joints, draw = sample_valid(prior, validator, counts["prior"], rng,
                                    batch=int(pc["prior"]["batch"]), progress=progress)
        t2 = time.perf_counter()
        ids = [f"prior/s{cfg['seed']}/{i:07d}" for i in range(len(joints))]
        poses = poseset_from_joints(joints, "prior", ids, ["prior"] * len(joints))
        t3 = time.perf_counter()
        sets.append(poses)
        check = min(len(joints), 2000)
        share, dist = novelty(joints[:check], prior.training_joints(),
                              float(pc["prior"]["novelty_threshold"]))
        report["sources"]["prior"] = {
            "poses": len(poses), "drawn": draw["drawn"],
            "rejection_rate": round(1.0 - draw["valid"] / draw["drawn"], 4),
            "rejected_by": draw["rejected_by"], "fit": fit_report,
            "novelty": {"threshold_m": float(pc["prior"]["novelty_threshold"]), "checked": check,
                        "share_farther": round(share, 4),
                        "median_nearest_mm": round(float(np.median(dist)) * 1000, 1)},
            "seconds": {"fit_or_load": round(t1 - t0, 2), "sample_and_validate": round(t2 - t1, 2),
                        "ik": round(t3 - t2, 2)}}
    if len(sets) == 1:      # a single source keeps its own draw order (and no copy is made)
        return sets[0], report
    mixed = len(sets) > 1
    poses = PoseSet.concatenate(sets)
    sets.clear()            # at most two copies of the poses at a time (memory: synth/limits.py)
    if mixed:               # mixed sources: interleaved
        poses = poses.subset(rng.permutation(len(poses)))
    return poses, report


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
