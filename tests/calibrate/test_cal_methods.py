"""Calibrator maths on known distributions, and against slow references written from the papers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from generator.calibrate import methods
from generator.calibrate.calibrators import AmaxSettings, compute_amax
from generator.calibrate.histogram import Histogram


def histogram_of(x: np.ndarray) -> Histogram:
    hist = Histogram()
    hist.update(np.asarray(x, dtype=np.float32))
    return hist


@pytest.fixture(scope="module")
def relu_with_outlier() -> Histogram:
    x = np.maximum(np.random.default_rng(0).standard_normal(1_000_000), 0.0)
    x[123] = 40.0
    return histogram_of(x)


@pytest.fixture(scope="module")
def spike() -> Histogram:
    rng = np.random.default_rng(1)
    n = 1_000_000
    x = np.where(rng.random(n) < 0.8, 0.424, rng.uniform(0.0, 2.8, n))
    return histogram_of(x)


# ------------------------------------------------------------------ entropy on known distributions


def test_entropy_ignores_a_single_outlier(relu_with_outlier: Histogram) -> None:
    result = compute_amax(relu_with_outlier, AmaxSettings(method="entropy"))
    assert relu_with_outlier.amax == pytest.approx(40.0)
    assert 4.2 < result.amax < 4.6  # NVIDIA-style entropy: ~4.41 (the reference's measurement)
    assert not result.guarded and result.method == "entropy"


def test_minmax_takes_the_outlier(relu_with_outlier: Histogram) -> None:
    assert compute_amax(relu_with_outlier, AmaxSettings(method="minmax")).amax == 40.0


def test_literal_entropy_clips_a_dominant_spike(spike: Histogram) -> None:
    literal = compute_amax(spike, AmaxSettings(method="entropy", guard=False))
    assert literal.amax == pytest.approx(0.427, abs=0.01)
    assert not literal.guarded


def test_guard_replaces_the_spike_threshold(spike: Histogram) -> None:
    literal = compute_amax(spike, AmaxSettings(method="entropy", guard=False))
    guarded = compute_amax(spike, AmaxSettings(method="entropy", guard=True))
    assert guarded.guarded and guarded.method == "mse"
    assert guarded.rejected_amax == literal.amax
    assert guarded.amax > 2.0  # keeps the uniform part instead of clipping it at the spike
    assert guarded.mse * 10 < literal.mse
    optimum = compute_amax(spike, AmaxSettings(method="mse"))  # every edge tried; the guard searches coarse-to-fine
    assert guarded.mse <= 1.05 * optimum.mse and guarded.amax == pytest.approx(optimum.amax, rel=0.02)


def test_ties_take_the_last_candidate() -> None:
    # mass only in the first 64 bins, all equal: every candidate quantises P exactly -> KL 0 for all
    counts = np.zeros(2048, dtype=np.int64)
    counts[:64] = 100
    cand, kl = methods.entropy_divergences(counts)
    assert np.allclose(kl, 0.0, atol=1e-12)
    amax, _, index = methods.entropy_amax(counts, 0.5)
    assert index == 2048 and amax == 1024.0


# ------------------------------------------------------------------ slow references (loops allowed here)


def reference_entropy(counts: np.ndarray) -> tuple[int, float]:
    """NVIDIA's pseudocode (GTC 2017) with pytorch-quantization's details, written as plainly as possible.

    bins[0] = bins[1]; for i in 128..n: P = bins[:i] with the outliers added to P[i-1]; Q = bins[:i]
    quantised into 128 levels (bin j -> level floor(j*128/i)), each level's mass spread over its
    non-empty bins; KL(P||Q) after normalising both; keep the last i with the smallest KL.
    """
    bins = [float(c) for c in counts]
    bins[0] = bins[1]
    n = len(bins)
    best_i, best_kl = -1, math.inf
    for i in range(128, n + 1):
        p = bins[:i]
        p[i - 1] += sum(bins[i:])
        level_mass = [0.0] * 128
        level_filled = [0] * 128
        for j in range(i):
            level = (j * 128) // i
            level_mass[level] += bins[j]
            level_filled[level] += bins[j] != 0
        q = [level_mass[(j * 128) // i] / level_filled[(j * 128) // i] if bins[j] != 0 else 0.0 for j in range(i)]
        sp, sq = sum(p), sum(q)
        kl = 0.0
        for pj, qj in zip(p, q):
            if pj == 0:
                continue
            if qj == 0:
                kl = math.inf
                break
            kl += (pj / sp) * math.log((pj / sp) / (qj / sq))
        if kl <= best_kl:
            best_i, best_kl = i, kl
    return best_i, best_kl


def random_histogram(rng: np.random.Generator) -> np.ndarray:
    n = int(rng.integers(200, 420))
    decay = rng.uniform(20, 200)
    profile = 2000 * np.exp(-np.arange(n) / decay) + rng.uniform(0, 20)
    counts = rng.poisson(profile)
    counts[rng.random(n) < rng.uniform(0, 0.4)] = 0  # empty bins, as in discrete data
    counts[-int(rng.integers(1, 5)):] += rng.integers(0, 3, size=1)  # a few outliers at the top
    counts[0] = rng.integers(0, 100_000)  # the zero bin (ReLU outputs): replaced by bin 1's count
    return counts.astype(np.int64)


@pytest.mark.parametrize("seed", range(8))
def test_entropy_matches_the_reference(seed: int) -> None:
    counts = random_histogram(np.random.default_rng(seed))
    expected_index, expected_kl = reference_entropy(counts)
    _, kl, index = methods.entropy_amax(counts, 1.0)
    assert index == expected_index
    assert kl == pytest.approx(expected_kl, rel=1e-6, abs=1e-12)


def reference_mse(counts: np.ndarray, width: float) -> tuple[float, float]:
    """Every bin edge as amax; error of each bin centre after symmetric int8 rounding and clipping."""
    total = float(sum(counts))
    best_amax, best = 0.0, math.inf
    for i in range(1, len(counts) + 1):
        amax = i * width
        scale = amax / 127
        error = 0.0
        for j, c in enumerate(counts):
            x = (j + 0.5) * width
            q = min(round(x / scale), 127) * scale
            error += c * (x - q) ** 2
        if error / total <= best:
            best_amax, best = amax, error / total
    return best_amax, best


@pytest.mark.parametrize("seed", range(3))
def test_mse_matches_the_reference(seed: int) -> None:
    counts = random_histogram(np.random.default_rng(100 + seed))[:160]
    expected_amax, expected = reference_mse(counts, 0.01)
    amax, error = methods.mse_amax(counts, 0.01)
    assert amax == pytest.approx(expected_amax) and error == pytest.approx(expected)
    coarse_amax, coarse = methods.mse_amax(counts, 0.01, stride=16)
    assert coarse <= expected * 1.05  # the guard's fast search lands near the optimum


def test_quantization_mse_by_hand() -> None:
    counts = np.array([0, 0, 4, 0])  # all mass at centre 2.5 * 0.1 = 0.25
    # amax 0.4 -> scale 0.4/127; 0.25 / scale = 79.375 -> 79 -> 0.248819 ; error (0.25 - 0.248819)^2
    expected = (0.25 - 79 * 0.4 / 127) ** 2
    assert methods.quantization_mse(counts, 0.1, 0.4)[0] == pytest.approx(expected)
    # amax 0.1 clips 0.25 to 0.1
    assert methods.quantization_mse(counts, 0.1, 0.1)[0] == pytest.approx(0.15**2)


def test_percentile() -> None:
    x = np.abs(np.random.default_rng(3).standard_normal(400_000))
    hist = histogram_of(x)
    median = compute_amax(hist, AmaxSettings(method="percentile", percentile=50.0)).amax
    assert median == pytest.approx(0.6745, abs=2 * hist.width + 0.005)
    high = compute_amax(hist, AmaxSettings(method="percentile")).amax  # 99.99 by default
    assert high == pytest.approx(float(np.quantile(x, 0.9999)), abs=2 * hist.width)
    assert compute_amax(hist, AmaxSettings(method="percentile", percentile=100.0)).amax == pytest.approx(hist.amax)


def test_all_zero_tensor_gets_a_positive_amax() -> None:
    hist = histogram_of(np.zeros(100))
    for method in ("entropy", "minmax", "percentile", "mse"):
        result = compute_amax(hist, AmaxSettings(method=method))
        assert result.amax > 0 and result.max == 0.0


# ------------------------------------------------------------------ the streaming histogram


def test_histogram_matches_numpy_on_one_batch() -> None:
    x = np.random.default_rng(4).normal(size=50_000).astype(np.float32)
    hist = histogram_of(x)
    expected, _ = np.histogram(np.abs(x), bins=2048, range=(0.0, float(np.abs(x).max())))
    assert np.abs(hist.counts - expected).sum() <= 4  # a value on a bin edge may land either side
    assert hist.total == x.size and hist.min == x.min() and hist.max == x.max()


def test_histogram_extends_with_same_width_bins() -> None:
    rng = np.random.default_rng(5)
    hist = Histogram()
    first = rng.uniform(-1, 1, 10_000).astype(np.float32)
    hist.update(first)
    width, before = hist.width, hist.counts.copy()
    hist.update(np.array([3.0, -2.5, 0.5], dtype=np.float32))
    assert hist.width == width  # never re-binned
    assert len(hist.counts) > 2048 and len(hist.counts) * width >= 3.0
    assert hist.counts[int(3.0 / width)] >= 1 and hist.counts[int(2.5 / width)] >= 1
    grown = hist.counts[:2048] - before
    assert grown.sum() == 1  # only 0.5 landed in the old range
    assert hist.total == 10_003 and hist.amax == 3.0


def test_histogram_zeros_before_the_first_nonzero_batch() -> None:
    hist = Histogram()
    hist.update(np.zeros(10, np.float32))
    hist.update(np.array([0.0, 2.0], np.float32))
    assert hist.counts[0] == 11 and hist.counts[-1] == 1 and hist.total == 12


def test_histogram_caps_bins_by_exact_merging() -> None:
    hist = Histogram(max_bins=4096)
    hist.update(np.linspace(0, 1, 1000, dtype=np.float32))
    hist.update(np.array([100.0], np.float32))  # would need ~205k bins at the first width
    assert len(hist.counts) <= 4096 and hist.counts.sum() == 1001 and hist.counts[-1] == 1


@pytest.mark.parametrize("bad, kind", [(np.nan, "NaN"), (np.inf, "Inf"), (-np.inf, "Inf")])
def test_histogram_refuses_non_finite(bad: float, kind: str) -> None:
    from generator.calibrate.histogram import NonFiniteError

    hist = Histogram()
    with pytest.raises(NonFiniteError) as info:
        hist.update(np.array([1.0, bad, 2.0], np.float32))
    assert info.value.kind == kind and hist.total == 0
