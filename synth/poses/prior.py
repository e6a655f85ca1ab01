"""A sparse non-parametric Bayesian network over body parts (after Lehrmann, Gehler & Nowozin,
"A Non-parametric Bayesian Network Prior of Human Pose", ICCV 2013).

Nodes are body parts (`PARTS`): the torso (spine and both hip bones) and, one node each, the
head, the clavicles, upper arms, forearms, thighs and shins, each the unit direction(s) of its
bone(s) in the yaw-free body frame (synth.poses.representation).

Structure: the Chow-Liu tree, i.e. the maximum spanning tree of the pairwise mutual information
between parts. MI is estimated on a discretisation of each part (k-means codes; the plug-in
estimate of a 2D histogram of codes), which is cheap for 100k+ poses and consistent across parts
of different dimension. The tree is rooted at the torso.

Conditionals are kernel densities over the training poses: p(child | parent) is the mixture, over
the training poses whose parent value is among the k nearest to the parent's value, of Gaussian
kernels around their child values (kNN kernel with uniform weights on the neighbours, times each
pose's source weight). Sampling is ancestral: a root value is drawn from the kernel density of the
torso; each child then picks one of the k training poses nearest in its parent's value, takes that
pose's child value and perturbs it with the child kernel (then renormalises the directions).
The neighbours are those of the training value the parent was drawn around (the kNN graph of each
parent part is computed once at fit time), not of the perturbed value: the same density up to the
kernel width, and sampling becomes table look-ups (no tree search per sample).
Because each part is taken from a different training pose, samples combine parts of different
source poses: they include poses found in no source.

The sampled directions are turned into joints with one body's (canonical, symmetric) bone
lengths, so every sample is a pose of one body, root at the origin, facing -Y.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from synth.config import PriorConfig
from synth.io_utils import InputError, atomic_write_bytes
from synth.poses.representation import (BONES, canonical_lengths, nearest_distances,
                                        normalise_directions, to_directions, to_joints)

FORMAT = "synth-pose-prior/1"
_BONE = {f"{a}>{b}": i for i, (a, b) in enumerate(BONES)}
# part name -> indices into representation.BONES
PARTS: dict[str, list[int]] = {
    "torso": [_BONE["pelvis>neck"], _BONE["pelvis>right_hip"], _BONE["pelvis>left_hip"]],
    "head": [_BONE["neck>head_top"]],
    "right_clavicle": [_BONE["neck>right_shoulder"]],
    "right_upper_arm": [_BONE["right_shoulder>right_elbow"]],
    "right_forearm": [_BONE["right_elbow>right_wrist"]],
    "left_clavicle": [_BONE["neck>left_shoulder"]],
    "left_upper_arm": [_BONE["left_shoulder>left_elbow"]],
    "left_forearm": [_BONE["left_elbow>left_wrist"]],
    "right_thigh": [_BONE["right_hip>right_knee"]],
    "right_shin": [_BONE["right_knee>right_ankle"]],
    "left_thigh": [_BONE["left_hip>left_knee"]],
    "left_shin": [_BONE["left_knee>left_ankle"]],
}
PART_NAMES = list(PARTS)
ROOT_PART = "torso"
assert sorted(i for v in PARTS.values() for i in v) == list(range(len(BONES)))


# The settings the network itself uses (the rest of `poses.prior` says what it is fitted on);
# stored in the prior file.
NETWORK_KEYS = ("k", "kernel_sigma", "mi_bins", "mi_max_poses")


def network_params(params: PriorConfig) -> dict:
    return params.model_dump(include=set(NETWORK_KEYS))


def _kmeans_codes(x: np.ndarray, n_codes: int, rng: np.random.Generator, fit_max: int,
                  iters: int = 15) -> np.ndarray:
    """(N, D) -> (N,) int code of the nearest of `n_codes` centres (plain Lloyd's, k-means++ seeds
    drawn with `rng` on at most `fit_max` points)."""
    n = len(x)
    n_codes = min(n_codes, n)
    fit = x[rng.choice(n, size=min(n, fit_max), replace=False)] if n > fit_max else x
    centres = [fit[rng.integers(len(fit))]]
    d2 = ((fit - centres[0]) ** 2).sum(1)
    for _ in range(1, n_codes):
        p = d2 / d2.sum() if d2.sum() > 0 else None
        centres.append(fit[rng.choice(len(fit), p=p)])
        d2 = np.minimum(d2, ((fit - centres[-1]) ** 2).sum(1))
    c = np.array(centres)
    for _ in range(iters):
        codes = cKDTree(c).query(fit, k=1)[1]
        for j in range(len(c)):
            members = fit[codes == j]
            if len(members):
                c[j] = members.mean(0)
    return cKDTree(c).query(x, k=1)[1].astype(np.int64)


def mutual_information(codes_a: np.ndarray, codes_b: np.ndarray, weights: np.ndarray) -> float:
    """Plug-in MI (nats) of two discrete variables from weighted samples."""
    na, nb = codes_a.max() + 1, codes_b.max() + 1
    joint = np.bincount(codes_a * nb + codes_b, weights=weights, minlength=na * nb).reshape(na, nb)
    joint /= joint.sum()
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum())


def chow_liu_tree(mi: np.ndarray, root: int) -> np.ndarray:
    """Maximum spanning tree of the (P, P) MI matrix (Prim's), as a parent array rooted at `root`
    (parent[root] = -1)."""
    p = len(mi)
    parent = np.full(p, -1)
    in_tree = np.zeros(p, dtype=bool)
    in_tree[root] = True
    best = mi[root].astype(np.float64).copy()
    best_from = np.full(p, root)
    for _ in range(p - 1):
        cand = np.where(in_tree, -np.inf, best)
        j = int(np.argmax(cand))
        in_tree[j] = True
        parent[j] = best_from[j]
        better = (~in_tree) & (mi[j] > best)
        best[better] = mi[j][better]
        best_from[better] = j
    return parent


def _topological(parent: np.ndarray) -> list[int]:
    order = [int(np.flatnonzero(parent < 0)[0])]
    for node in order:
        order.extend(int(c) for c in np.flatnonzero(parent == node))
    return order


class PosePrior:
    """The network: `fit` on (N, 15, 3) joints, `sample` (n, 15, 3) joints, `save`/`load`."""

    def __init__(self, params: PriorConfig | None = None):
        self.params = params if params is not None else PriorConfig()
        self.directions: np.ndarray | None = None    # (N, 14, 3) float32 training directions
        self.weights: np.ndarray | None = None       # (N,) float64, sums to 1
        self.lengths: np.ndarray | None = None       # (14,) canonical bone lengths, metres
        self.parent: np.ndarray | None = None        # (P,) parent part index, -1 for the root
        self.mi: np.ndarray | None = None            # (P, P) mutual information, nats
        self.neighbours: dict[int, np.ndarray] = {}  # parent part -> (N, k) int32 kNN of each pose

    # -- fitting --------------------------------------------------------------------------------
    def fit(self, joints_3d: np.ndarray, rng: np.random.Generator, weights: np.ndarray | None = None,
            progress: bool = False) -> "PosePrior":
        """Learn the structure and keep the training parts. `weights` (N,) >= 0: each pose's
        share in the kernel densities (e.g. to mix sources); None = uniform."""
        joints_3d = np.asarray(joints_3d)
        if joints_3d.ndim != 3 or joints_3d.shape[1:] != (15, 3) or len(joints_3d) < 2:
            raise ValueError(f"need (N>=2, 15, 3) joints, got {joints_3d.shape}")
        directions, lengths, _ = to_directions(joints_3d)
        w = np.ones(len(directions)) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (len(directions),) or not np.all(w >= 0) or w.sum() <= 0:
            raise ValueError("weights must be (N,) non-negative with a positive sum")
        self.directions = directions.astype(np.float32)
        self.weights = w / w.sum()
        self.lengths = canonical_lengths(lengths)
        values = [self._part_values(i) for i in range(len(PART_NAMES))]
        codes = [_kmeans_codes(v, self.params.mi_bins, rng, self.params.mi_max_poses) for v in values]
        p = len(PART_NAMES)
        mi = np.zeros((p, p))
        for a in range(p):
            for b in range(a + 1, p):
                mi[a, b] = mi[b, a] = mutual_information(codes[a], codes[b], self.weights)
        self.mi = mi
        self.parent = chow_liu_tree(mi, PART_NAMES.index(ROOT_PART))
        k = min(self.params.k, len(self.directions))
        self.neighbours = {}
        for part in sorted(set(int(q) for q in self.parent if q >= 0)):
            _, nbr = cKDTree(values[part]).query(values[part], k=k)
            self.neighbours[part] = nbr.reshape(len(values[part]), k).astype(np.int32)
        return self

    def _part_values(self, part: int) -> np.ndarray:
        return self.directions[:, PARTS[PART_NAMES[part]]].reshape(len(self.directions), -1)

    def edges(self) -> list[tuple[str, str, float]]:
        """(parent part, child part, MI in nats) of the learned tree."""
        self._check_fitted()
        return [(PART_NAMES[self.parent[c]], PART_NAMES[c], float(self.mi[self.parent[c], c]))
                for c in _topological(self.parent)[1:]]

    # -- sampling -------------------------------------------------------------------------------
    def sample_directions(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Ancestral sampling: ((n, 14, 3) directions, (n, P) index of the training pose each
        part was taken from)."""
        self._check_fitted()
        out = np.empty((n, len(BONES), 3))
        source_of = np.empty((n, len(PART_NAMES)), dtype=np.int64)
        cum_w = np.cumsum(self.weights)
        for part in _topological(self.parent):
            bones = PARTS[PART_NAMES[part]]
            par = self.parent[part]
            if par < 0:
                # inverse-CDF draw by source weight
                chosen = np.minimum(np.searchsorted(cum_w, rng.random(n) * cum_w[-1], side="right"),
                                    len(cum_w) - 1)
            else:
                nbr = self.neighbours[par][source_of[:, par]]
                k = nbr.shape[1]
                w = self.weights[nbr]
                cw = np.cumsum(w, axis=1)
                pick = (cw < rng.random((n, 1)) * cw[:, -1:]).sum(1)
                chosen = nbr[np.arange(n), np.minimum(pick, k - 1)]
            value = self.directions[chosen][:, bones].astype(np.float64)
            if self.params.kernel_sigma > 0:
                value = value + rng.normal(0.0, self.params.kernel_sigma, value.shape)
            out[:, bones] = normalise_directions(value)
            source_of[:, part] = chosen
        return out, source_of

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, 15, 3) float32 joints, metres, pelvis at the origin, Z up, facing -Y."""
        directions, _ = self.sample_directions(n, rng)
        return to_joints(directions, self.lengths).astype(np.float32)

    def training_joints(self) -> np.ndarray:
        """The training poses rebuilt with the canonical lengths (what the samples are compared to)."""
        self._check_fitted()
        return to_joints(self.directions, self.lengths).astype(np.float32)

    def _check_fitted(self) -> None:
        if self.directions is None:
            raise RuntimeError("the prior is not fitted (call fit or load)")

    # -- file -----------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """One .npz (atomically written): training directions, weights, lengths, structure, params."""
        self._check_fitted()
        buf = io.BytesIO()
        np.savez(buf, format=np.array(FORMAT), directions=self.directions, weights=self.weights,
                 lengths=self.lengths, parent=self.parent, mi=self.mi,
                 part_names=np.array(PART_NAMES), params=np.array(json.dumps(network_params(self.params))),
                 **{f"neighbours_{PART_NAMES[p]}": v for p, v in self.neighbours.items()})
        atomic_write_bytes(Path(path), buf.getvalue())

    @staticmethod
    def load(path: str | Path) -> "PosePrior":
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: pose prior file not found")
        try:
            with np.load(path, allow_pickle=False) as z:
                if "format" not in z.files or str(z["format"]) != FORMAT:
                    raise InputError(f"{path}: not a {FORMAT} file")
                if list(z["part_names"]) != PART_NAMES:
                    raise InputError(f"{path}: its parts differ from this version's")
                prior = PosePrior(PriorConfig(**json.loads(str(z["params"]))))
                prior.directions = z["directions"].astype(np.float32)
                prior.weights = z["weights"].astype(np.float64)
                prior.lengths = z["lengths"].astype(np.float64)
                prior.parent = z["parent"].astype(np.int64)
                prior.mi = z["mi"].astype(np.float64)
                prior.neighbours = {p: z[f"neighbours_{PART_NAMES[p]}"].astype(np.int32)
                                    for p in sorted(set(int(q) for q in prior.parent if q >= 0))}
        except InputError:
            raise
        except (zipfile.BadZipFile, ValueError, KeyError, OSError, EOFError, TypeError) as e:
            raise InputError(f"{path}: not a readable pose prior ({e.__class__.__name__})") from None
        n = len(prior.directions)
        if (prior.directions.shape[1:] != (len(BONES), 3) or len(prior.weights) != n
                or any(v.shape[0] != n or v.min() < 0 or v.max() >= n for v in prior.neighbours.values())):
            raise InputError(f"{path}: inconsistent array shapes")
        return prior


def novelty(samples: np.ndarray, sources: np.ndarray, threshold_m: float = 0.1) -> tuple[float, np.ndarray]:
    """Share of `samples` whose nearest pose of `sources` (mean per-joint distance, root-relative,
    yaw removed) is farther than `threshold_m`, and the (n,) distances."""
    d = nearest_distances(samples, sources)
    return float((d > threshold_m).mean()), d
