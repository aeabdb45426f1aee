"""The calibration maths: pure numpy functions over a histogram of |x| given as (counts, bin width).

Nothing here knows about ONNX or files; `calibrators.py` wraps these into `compute_amax`.
"""

from __future__ import annotations

import numpy as np

LEVELS = 128  # int8 magnitudes: 0..127 plus sign; TensorRT's entropy search merges into 128 levels
START_BIN = 128
QMAX = 127
TIE_RTOL = 1e-12  # divergences this close to the minimum count as ties (the last one wins)


def _xlogx(v: np.ndarray) -> np.ndarray:
    out = np.zeros_like(v, dtype=np.float64)
    positive = v > 0
    out[positive] = v[positive] * np.log(v[positive])
    return out


def entropy_divergences(counts: np.ndarray, *, levels: int = LEVELS, start: int = START_BIN) -> tuple[np.ndarray, np.ndarray]:
    """KL(P||Q) for every candidate number of kept bins i = start..len(counts).

    NVIDIA's algorithm (GTC 2017 "8-bit Inference with TensorRT", as reimplemented in
    pytorch-quantization): the zero bin's count is replaced by bin 1's; P = bins[0:i] with every bin
    beyond i folded into bin i-1; Q = bins[0:i] merged into `levels` levels (bin j goes to level
    floor(j * levels / i)), each level's mass spread evenly over its non-empty bins; both normalised.
    A candidate whose last bin is empty while outliers exist has P > 0 where Q = 0: divergence inf.

    Vectorised with prefix sums: per candidate only the `levels` level sums are formed, so the cost
    is O(candidates * levels) with no Python loop. Returns (candidates, divergences).
    """
    c = np.asarray(counts, dtype=np.float64).copy()
    n = len(c)
    if n == 0 or c.sum() == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    if n > 1:
        c[0] = c[1]
    total = c.sum()
    prefix = np.concatenate([[0.0], np.cumsum(c)])  # prefix[i] = sum c[:i]
    nonzero = np.concatenate([[0.0], np.cumsum(c > 0, dtype=np.float64)])
    plogp = np.concatenate([[0.0], np.cumsum(_xlogx(c))])
    cand = np.arange(min(start, n), n + 1, dtype=np.int64)
    cand = cand[cand >= 1]
    outliers = total - prefix[cand]
    last = c[cand - 1]
    p_last = last + outliers
    sum_plogp = plogp[cand - 1] + _xlogx(p_last)
    # level k of candidate i covers bins [ceil(k*i/levels), ceil((k+1)*i/levels))
    k = np.arange(levels + 1, dtype=np.int32)  # int32 arithmetic: k * i < 2**31 for up to 2**24 bins
    starts = -((-k[None, :] * cand[:, None].astype(np.int32)) // levels)
    mass = np.diff(prefix[starts], axis=1)
    filled = np.diff(nonzero[starts], axis=1)
    spread = mass / np.maximum(filled, 1.0)  # each non-empty bin's share of its level (0 for empty levels)
    log_spread = np.log(np.where(spread > 0, spread, 1.0))
    level_term = np.einsum("ij,ij->i", mass, log_spread)
    rows = np.arange(len(cand))
    k_last = ((cand - 1) * levels) // cand
    outlier_term = outliers * log_spread[rows, k_last]  # outliers sit in bin i-1 of P, valued at its Q
    with np.errstate(divide="ignore"):
        kl = (sum_plogp - level_term - outlier_term) / total - np.log(total) + np.log(prefix[cand])
    kl = np.where((outliers > 0) & (last == 0), np.inf, np.maximum(kl, 0.0))
    return cand, kl


def entropy_amax(counts: np.ndarray, width: float) -> tuple[float, float, int]:
    """(amax, divergence, i): the last candidate with the smallest KL; amax = upper edge of bin i-1."""
    cand, kl = entropy_divergences(counts)
    if len(cand) == 0:
        return 0.0, 0.0, 0
    best = float(kl.min())
    ties = np.flatnonzero(kl <= best + TIE_RTOL * max(1.0, abs(best)))
    i = int(cand[ties[-1]])
    return i * width, best, i


def quantization_mse(counts: np.ndarray, width: float, amaxes: np.ndarray | float, *, block: int = 1 << 20) -> np.ndarray:
    """Expected squared error of symmetric int8 quantisation (scale amax/127) for each candidate amax.

    Each bin's mass sits at its centre; values above amax clip to amax. Only non-empty bins are
    evaluated, in blocks of candidates so memory stays bounded.
    """
    c = np.asarray(counts, dtype=np.float64)
    where = np.flatnonzero(c)
    amaxes = np.atleast_1d(np.asarray(amaxes, dtype=np.float64))
    if len(where) == 0:
        return np.zeros(len(amaxes))
    mass = c[where] / c.sum()
    centres = (where + 0.5) * width
    out = np.empty(len(amaxes))
    step = max(1, block // len(where))
    for lo in range(0, len(amaxes), step):
        a = amaxes[lo : lo + step, None]
        scale = np.where(a > 0, a / QMAX, 1.0)
        q = np.minimum(np.rint(centres[None, :] / scale), QMAX) * scale
        q = np.where(a > 0, q, 0.0)
        out[lo : lo + step] = ((centres[None, :] - q) ** 2) @ mass
    return out


def mse_amax(counts: np.ndarray, width: float, *, stride: int = 1) -> tuple[float, float]:
    """(amax, mse): the bin edge with the smallest expected quantisation error (the last on ties).

    stride 1 tries every edge. A larger stride tries every `stride`-th edge, then every edge within
    `stride` of the best one: about 2*stride + n/stride candidates instead of n, close to the optimum
    on smooth error curves (used by the entropy guard, where speed matters more than the last digit).
    """
    n = len(counts)
    if n == 0 or not np.any(counts):
        return 0.0, 0.0
    index = np.arange(0, n, max(1, stride))
    if index[-1] != n - 1:
        index = np.append(index, n - 1)
    errors = quantization_mse(counts, width, (index + 1) * width)
    if stride > 1:
        best = int(index[np.argmin(errors)])
        near = np.arange(max(0, best - stride), min(n, best + stride + 1))
        index = np.concatenate([index, near])
        errors = np.concatenate([errors, quantization_mse(counts, width, (near + 1) * width)])
        order = np.argsort(index, kind="stable")
        index, errors = index[order], errors[order]
    lowest = float(errors.min())
    i = int(index[np.flatnonzero(errors <= lowest * (1 + TIE_RTOL))[-1]])
    return (i + 1) * width, lowest


def percentile_amax(counts: np.ndarray, width: float, percentile: float) -> float:
    """Upper edge of the bin where the cumulative count first reaches `percentile` % of all values."""
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum()
    if total == 0:
        return 0.0
    cdf = np.cumsum(c) / total
    i = int(np.searchsorted(cdf, percentile / 100.0 * (1 - 1e-12), side="left"))
    return min(i + 1, len(c)) * width
