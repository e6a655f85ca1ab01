"""Continuous dynamic time warping between two closed contours (after Munich & Perona 1999,
"Continuous dynamic time warping for translation-invariant curve alignment with applications to
signature verification", ICCV).

Plain DTW matches sample to sample, so two samplings of one curve that are offset by half a
sample never match exactly. Continuous DTW lets a sample of curve `a` correspond to any point of
curve `b`, interpolated linearly between b's samples. Here the DP runs over cells (i, j) =
"a[i] lies on b's segment j" (from b[j] to b[j+1]); the cell's cost is the distance from a[i] to
its closest point on that segment, at parameter t in [0, 1] (the linear interpolation inside the
DP). Steps:
  diagonal   (i-1, j-1) -> (i, j)   free;
  vertical   (i-1, j)   -> (i, j)   a[i-1] and a[i] on the same segment, allowed only if t does
                                     not run backwards (the correspondence stays monotone), + penalty;
  horizontal (i, j-1)   -> (i, j)   a[i] spans b's vertex j (b is locally denser), + penalty.
The penalty keeps the path near the diagonal so a stretch of one curve is not collapsed onto a
point of the other.

Invariances: both curves are centred on their centroid and scaled to unit RMS radius before the
DP, so the cost is invariant to translation and scale; both are traversed counter-clockwise.
Closed curves: the start of b is unknown, so every cyclic shift of b is tried (coarse on ~64
samples, then refined around the best coarse shifts at full resolution); the DP is vectorised over
all shifts at once and along each row (the horizontal recurrence is a running minimum), leaving a
Python loop over a's samples only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.textures.contours import signed_area, similarity_fit

COARSE_SAMPLES = 64
SHIFT_CHUNK_CELLS = 2_000_000


@dataclass
class ContourMatch:
    a_idx: np.ndarray        # (n,) indices into a (all of them: the match is dense)
    b_pts: np.ndarray        # (n, 2) the point of b matched to a[a_idx], interpolated between b's samples
    b_param: np.ndarray      # (n,) continuous index along b (original indexing, in [0, m))
    start_shift: int         # the b sample at which a[0]'s correspondence lies (floor of b_param[0])
    cost: float              # DP cost per sample of a, in units of the RMS radius (scale-free)
    deformation: float       # RMS residual of b_pts -> a after the best similarity, / a's RMS radius
    scale: float             # that similarity: a ~= scale * b_pts @ R.T + t
    R: np.ndarray
    t: np.ndarray


def _normalise(c: np.ndarray) -> np.ndarray:
    """Centre on the polyline's arc-length centroid and scale to unit arc-length RMS radius.
    Integrals along the curve, not sample means, so that a denser sampling of one part of the
    curve does not move the centre (the samples' mean would, and the DP would see a shifted curve)."""
    nxt = np.roll(c, -1, axis=0)
    L = np.linalg.norm(nxt - c, axis=1)
    total = max(float(L.sum()), 1e-12)
    centre = ((c + nxt) / 2 * L[:, None]).sum(0) / total
    p0, p1 = c - centre, nxt - centre
    second = (L * ((p0 ** 2).sum(1) + (p0 * p1).sum(1) + (p1 ** 2).sum(1)) / 3).sum() / total
    return p0 / max(float(np.sqrt(second)), 1e-12)


def _segment_costs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dist[i, k], t[i, k]: a[i]'s distance to, and parameter of its closest point on, b's closed
    segment k (b[k] -> b[k+1 mod m])."""
    d = np.roll(b, -1, axis=0) - b                               # (m, 2)
    dd = np.maximum(np.einsum("kj,kj->k", d, d), 1e-12)
    rel = a[:, None, :] - b[None]                                 # (n, m, 2)
    t = np.clip(np.einsum("ikj,kj->ik", rel, d) / dd, 0.0, 1.0)
    diff = rel - t[..., None] * d[None]
    return np.sqrt(np.einsum("ikj,ikj->ik", diff, diff)), t


def _dp(cost: np.ndarray, tpar: np.ndarray, shifts: np.ndarray, penalty: float,
        keep_rows: bool = False):
    """The DP for each cyclic shift s of b at once: path from (0, 0) to (n-1, m-1) over
    c[s, i, j] = cost[i, (s + j) % m]. Returns the end cost per shift (and the D rows if asked)."""
    n, m = cost.shape
    cols = (shifts[:, None] + np.arange(m)[None]) % m              # (S, m)
    c = cost[:, cols]                                              # (n, S, m)
    t = tpar[:, cols]
    # A vertical step keeps the segment; it must not move backwards along it.
    mono = np.ones_like(t, bool)
    mono[1:] = t[1:] >= t[:-1] - 1e-9
    inf = np.inf
    S = len(shifts)
    rows = np.empty((n, S, m)) if keep_rows else None

    def horizontal(E: np.ndarray, ci: np.ndarray) -> np.ndarray:
        # D[j] = min(E[j], D[j-1] + c[j] + penalty) = G[j] + min_{k<=j}(E[k] - G[k]), G = cumsum(c + penalty)
        G = np.cumsum(ci + penalty, axis=1)
        return G + np.minimum.accumulate(E - G, axis=1)

    E = np.full((S, m), inf)
    E[:, 0] = c[0, :, 0]
    D = horizontal(E, c[0])
    if keep_rows:
        rows[0] = D
    for i in range(1, n):
        ci = c[i]
        diag = np.full((S, m), inf)
        diag[:, 1:] = D[:, :-1]
        vert = np.where(mono[i], D + penalty, inf)
        E = ci + np.minimum(diag, vert)
        D = horizontal(E, ci)
        if keep_rows:
            rows[i] = D
    return D[:, -1], rows, c, mono


def _backtrack(rows: np.ndarray, c: np.ndarray, mono: np.ndarray, penalty: float) -> np.ndarray:
    """For each row i of the best shift's DP, the column j of the path cell where a[i] is
    matched (the cheapest of the row's path cells when a horizontal run spans several)."""
    n, m = rows.shape
    best_j = np.full(n, -1)
    best_c = np.full(n, np.inf)
    i, j = n - 1, m - 1
    while True:
        if c[i, j] < best_c[i]:
            best_c[i], best_j[i] = c[i, j], j
        if i == 0 and j == 0:
            break
        cands = []
        if j > 0:
            cands.append((rows[i, j - 1] + penalty, i, j - 1))
        if i > 0 and j > 0:
            cands.append((rows[i - 1, j - 1], i - 1, j - 1))
        if i > 0 and mono[i, j]:
            cands.append((rows[i - 1, j] + penalty, i - 1, j))
        _, i, j = min(cands, key=lambda x: x[0])
    return best_j


def _search(an: np.ndarray, bn: np.ndarray, penalty: float, shifts: np.ndarray | None) -> np.ndarray:
    """Cyclic shifts of bn worth running at full resolution (coarse-to-fine when bn is long)."""
    m = len(bn)
    if shifts is not None:
        return np.asarray(shifts) % m
    if m <= COARSE_SAMPLES * 3 // 2:
        return np.arange(m)
    ra = max(1, round(len(an) / COARSE_SAMPLES))
    rb = max(1, round(m / COARSE_SAMPLES))
    ac, bc = an[::ra], bn[::rb]
    cost, tpar = _segment_costs(ac, bc)
    end, *_ = _dp(cost, tpar, np.arange(len(bc)), penalty)
    best = np.argsort(end)[:3]
    cand = (best[:, None] * rb + np.arange(-rb, rb + 1)[None]).ravel() % m
    return np.unique(cand)


def _smooth_along(b: np.ndarray, param: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Smooth correspondences along b: the matched positions, as arc length along b (unwrapped),
    minus their linear trend, get a circular moving average of `window` samples. DP paths are
    staircases (a point of b is held for a few samples, then jumps); MLS turns such tangential
    jitter into swirls inside the garment. Returns (points, params)."""
    m = len(b)
    nxt = np.roll(b, -1, axis=0)
    seg = np.linalg.norm(nxt - b, axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    total = cum[-1]
    j = np.floor(param).astype(int) % m
    s = cum[j] + (param - np.floor(param)) * seg[j]
    u = np.unwrap(s * 2 * np.pi / total) * total / (2 * np.pi)
    n = len(u)
    # The path runs once around b, so the linear trend's slope is one loop per n samples, and
    # the deviation from it is periodic (the moving average may wrap around).
    slope = np.sign(u[-1] - u[0] or 1.0) * total / n
    lin = u[0] + slope * np.arange(n)
    dev = u - lin
    window = window | 1                      # odd, so the average is centred
    pad = window // 2
    dev = np.convolve(np.r_[dev[-pad:], dev, dev[:pad]] if pad else dev, np.ones(window) / window, "valid")
    s2 = (lin + dev) % total
    k = np.clip(np.searchsorted(cum, s2, side="right") - 1, 0, m - 1)
    t = (s2 - cum[k]) / np.maximum(seg[k], 1e-12)
    return b[k] + t[:, None] * (nxt[k] - b[k]), k + t


def match_closed_contours(a: np.ndarray, b: np.ndarray, penalty: float = 0.02,
                          shifts: np.ndarray | None = None, smooth: int = 0) -> ContourMatch:
    """Dense continuous correspondences from closed contour a (n, 2) to closed contour b (m, 2).

    For each sample a[i] the match gives a point of b (between b's samples). The start point on b
    is searched over all cyclic shifts (or only `shifts`, indices into b after orientation).
    `penalty` is the cost of a non-diagonal step in units of the curves' RMS radius. `smooth` > 1
    averages the matched positions along b over that many samples of a (see _smooth_along): use
    it when the correspondences drive a warp."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    n, m = len(a), len(b)
    if n < 3 or m < 3:
        raise ValueError("contours need at least 3 points")
    a_rev = signed_area(a) < 0
    b_rev = signed_area(b) < 0
    aw = a[::-1] if a_rev else a
    bw = b[::-1] if b_rev else b
    an, bn = _normalise(aw), _normalise(bw)

    cand = _search(an, bn, penalty, shifts)
    cost, tpar = _segment_costs(an, bn)
    # Shifts in chunks: the DP holds (n, shifts, m) arrays; bound them to ~SHIFT_CHUNK_CELLS cells.
    chunk = max(1, SHIFT_CHUNK_CELLS // (n * m))
    end = np.concatenate([_dp(cost, tpar, cand[k:k + chunk], penalty)[0] for k in range(0, len(cand), chunk)])
    s_best = int(cand[int(np.argmin(end))])
    end1, rows, c1, mono1 = _dp(cost, tpar, np.array([s_best]), penalty, keep_rows=True)
    j = _backtrack(rows[:, 0], c1[:, 0], mono1[:, 0], penalty)

    k = (s_best + j) % m                                     # segment of bw, b_work indexing
    tt = tpar[np.arange(n), k]
    b_pts_w = bw[k] + tt[:, None] * (bw[(k + 1) % m] - bw[k])
    param_w = k + tt
    param = ((m - 1) - param_w) % m if b_rev else param_w % m
    b_pts = b_pts_w[::-1].copy() if a_rev else b_pts_w
    param = param[::-1].copy() if a_rev else param
    if smooth > 1:
        b_pts, param = _smooth_along(b, param, int(smooth))

    scale, R, t = similarity_fit(b_pts, a)
    resid = a - (scale * b_pts @ R.T + t)
    rms_a = float(np.sqrt(((a - a.mean(0)) ** 2).sum(1).mean()))
    deformation = float(np.sqrt((resid ** 2).sum(1).mean()) / max(rms_a, 1e-12))
    return ContourMatch(np.arange(n), b_pts, param, int(np.floor(param[0] + 1e-9)) % m,
                        float(end1[0] / n), deformation, scale, R, t)
