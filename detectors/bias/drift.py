"""Distribution drift with effect-size scores: PSI, Jensen-Shannon distance, and MMD on embeddings.

PSI follows Evidently's `psi` (sum of (ref% - cur%) * ln(ref% / cur%), empty
bins filled with 1e-4; rule of thumb < 0.1 none, 0.1-0.25 moderate, > 0.25
major). Jensen-Shannon is the distance (square root of the divergence, base 2,
in [0, 1]) as Evidently and NannyML report it. Both take histogram counts over
shared bins, so the detector can keep bounded per-bucket histograms instead of
raw values. MMD is the unbiased squared MMD with an RBF kernel whose bandwidth
is the median pairwise distance, with a permutation p-value; it is for
sub-sampled answer embeddings (a few hundred per window), not per request.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["BINS", "bin_index", "js_distance", "mmd2", "mmd_test", "psi"]

Matrix = npt.NDArray[np.float64]

# Fixed bin edges per outcome metric (upper edges; the last bin is open).
BINS: dict[str, tuple[float, ...]] = {
    "sentiment": (-0.6, -0.2, -0.05, 0.05, 0.2, 0.4, 0.6, 0.8, 0.9),
    "length": (5, 10, 20, 40, 80, 120, 160, 240, 320, 480, 640, 1000),
    "latency": (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0),
    "hallucination_risk": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
}

_EPS = 1e-4


def bin_index(metric: str, value: float) -> int:
    """The histogram bin of `value`: bin i holds values below edge i and at or above edge i-1."""
    return bisect.bisect_right(BINS[metric], value)


def _shares(counts: Sequence[float]) -> list[float]:
    total = float(sum(counts))
    if total <= 0:
        raise ValueError("a histogram with no counts has no distribution")
    return [max(c / total, _EPS) for c in counts]


def psi(reference: Sequence[float], current: Sequence[float]) -> float:
    """Population stability index of `current` against `reference` (counts over the same bins)."""
    if len(reference) != len(current):
        raise ValueError(f"bins differ: {len(reference)} reference vs {len(current)} current")
    ref, cur = _shares(reference), _shares(current)
    return float(sum((r - c) * math.log(r / c) for r, c in zip(ref, cur, strict=True)))


def js_distance(reference: Sequence[float], current: Sequence[float]) -> float:
    """Jensen-Shannon distance (base 2) between two histograms over the same bins, in [0, 1]."""
    if len(reference) != len(current):
        raise ValueError(f"bins differ: {len(reference)} reference vs {len(current)} current")
    rt, ct = float(sum(reference)), float(sum(current))
    if rt <= 0 or ct <= 0:
        raise ValueError("a histogram with no counts has no distribution")
    divergence = 0.0
    for r, c in zip(reference, current, strict=True):
        p, q = r / rt, c / ct
        m = (p + q) / 2
        if p > 0:
            divergence += 0.5 * p * math.log2(p / m)
        if q > 0:
            divergence += 0.5 * q * math.log2(q / m)
    return math.sqrt(max(0.0, divergence))


def _kernel(x: Matrix, y: Matrix, gamma: float) -> Matrix:
    sq = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return np.asarray(np.exp(-gamma * np.maximum(sq, 0.0)), dtype=np.float64)


def mmd2(x: Matrix, y: Matrix, gamma: float | None = None) -> float:
    """Unbiased squared MMD with an RBF kernel (median-heuristic bandwidth when `gamma` is None)."""
    if len(x) < 2 or len(y) < 2:
        raise ValueError("MMD needs at least two samples on each side")
    if gamma is None:
        gamma = _median_gamma(np.vstack([x, y]))
    kxx, kyy, kxy = _kernel(x, x, gamma), _kernel(y, y, gamma), _kernel(x, y, gamma)
    m, n = len(x), len(y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2.0 * kxy.mean()
    )


def _median_gamma(z: Matrix) -> float:
    sq = (z * z).sum(1)[:, None] + (z * z).sum(1)[None, :] - 2.0 * z @ z.T
    upper = np.sqrt(np.maximum(sq[np.triu_indices(len(z), 1)], 0.0))
    median = float(np.median(upper)) if upper.size else 1.0
    return 1.0 / (2.0 * median * median) if median > 0 else 1.0


def _mmd2_from_kernel(k: Matrix, xs: npt.NDArray[np.intp], ys: npt.NDArray[np.intp]) -> float:
    m, n = len(xs), len(ys)
    kxx, kyy, kxy = k[np.ix_(xs, xs)], k[np.ix_(ys, ys)], k[np.ix_(xs, ys)]
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2.0 * kxy.mean()
    )


def mmd_test(x: Matrix, y: Matrix, permutations: int = 100, seed: int = 0) -> tuple[float, float]:
    """MMD² and its permutation p-value (the kernel bandwidth fixed from the pooled sample).

    The pooled kernel matrix is computed once; each permutation only re-indexes it.
    """
    if len(x) < 2 or len(y) < 2:
        raise ValueError("MMD needs at least two samples on each side")
    z = np.vstack([x, y])
    k = _kernel(z, z, _median_gamma(z))
    m = len(x)
    idx = np.arange(len(z))
    observed = _mmd2_from_kernel(k, idx[:m], idx[m:])
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(permutations):
        order = rng.permutation(len(z))
        if _mmd2_from_kernel(k, order[:m], order[m:]) >= observed:
            hits += 1
    return observed, (hits + 1) / (permutations + 1)
