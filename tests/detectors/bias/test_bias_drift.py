"""Drift scores on known shifted and unshifted samples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detectors.bias.drift import BINS, bin_index, js_distance, mmd2, mmd_test, psi


def _hist(values: np.ndarray, metric: str) -> list[int]:
    counts = [0] * (len(BINS[metric]) + 1)
    for v in values:
        counts[bin_index(metric, float(v))] += 1
    return counts


def test_psi_by_hand() -> None:
    # (0.5-0.25)ln(0.5/0.25) + (0.5-0.75)ln(0.5/0.75)
    expected = 0.25 * math.log(2) + (-0.25) * math.log(0.5 / 0.75)
    assert psi([50, 50], [25, 75]) == pytest.approx(expected)
    assert psi([10, 20, 30], [10, 20, 30]) == 0.0
    # an empty bin is filled with 1e-4 (Evidently's convention) instead of dividing by zero
    assert math.isfinite(psi([100, 0], [50, 50]))


def test_js_distance_by_hand() -> None:
    assert js_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert js_distance([5, 5], [5, 5]) == 0.0
    p, q, m = np.array([0.5, 0.5]), np.array([0.25, 0.75]), np.array([0.375, 0.625])
    div = 0.5 * np.sum(p * np.log2(p / m)) + 0.5 * np.sum(q * np.log2(q / m))
    assert js_distance([50, 50], [25, 75]) == pytest.approx(math.sqrt(div))


def test_shifted_sample_drifts_and_unshifted_does_not() -> None:
    rng = np.random.default_rng(7)
    reference = _hist(rng.normal(0.3, 0.3, 5000), "sentiment")
    same = _hist(rng.normal(0.3, 0.3, 2000), "sentiment")
    shifted = _hist(rng.normal(-0.1, 0.3, 2000), "sentiment")
    assert psi(reference, same) < 0.02
    assert psi(reference, shifted) > 0.25
    assert js_distance(reference, same) < 0.05 < 0.2 < js_distance(reference, shifted)


def test_bins_are_half_open() -> None:
    assert bin_index("sentiment", -0.7) == 0
    assert bin_index("sentiment", -0.6) == 1
    assert bin_index("sentiment", 0.95) == len(BINS["sentiment"])


def test_mmd_on_embeddings() -> None:
    rng = np.random.default_rng(3)

    def unit(x: np.ndarray) -> np.ndarray:
        out: np.ndarray = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out

    base = unit(rng.normal(size=(60, 16)))
    same = unit(rng.normal(size=(60, 16)))
    moved = unit(rng.normal(size=(60, 16)) + 1.5 * np.eye(16)[0])
    _, p_same = mmd_test(base, same, permutations=50)
    stat, p_moved = mmd_test(base, moved, permutations=50)
    assert p_same > 0.05
    assert p_moved < 0.05 and stat > mmd2(base, same)
