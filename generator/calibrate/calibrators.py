"""Calibrators: one signature, `compute_amax(hist, settings) -> AmaxResult`, per method.

- entropy: NVIDIA's KL-divergence search (TensorRT's EntropyCalibration2 maths), with the guard below.
- minmax: the largest |x| seen (exact, not from the histogram).
- percentile: the |x| below which `percentile` % of values fall (default 99.99).
- mse: the threshold with the smallest expected int8 quantisation error on the histogram.
- auto (the default): every candidate one histogram gives (entropy, MSE-optimal, percentiles
  99.9 / 99.99 / 99.999, minmax) is scored here by the tensor's own quantisation error; where the
  candidates disagree materially, `auto.py` then picks by the error each causes at the model's
  outputs on a held-out slice (see there). No single rule wins everywhere: entropy clips spikes,
  minmax wastes levels on outliers, percentiles and MSE clip outliers attention needs.

The entropy guard. KL(P||Q) does not weigh how far clipped values move, so when one value holds
most of a tensor's mass (a constant background after mean/std normalisation, a ReLU output that is
mostly one level) the search puts the threshold at that spike and clips everything above it. The
guard measures the expected quantisation MSE of entropy's threshold on the same histogram and
compares it with the MSE-optimal threshold's; if entropy's error is more than `GUARD_RATIO` (10)
times the optimum, the tensor takes the MSE-optimal threshold instead and is recorded as guarded.
(The guard's search is coarse-to-fine, so it can differ from `method: mse` by a few bins.)
Why 10: a clipped spike costs 3e3 to 3e4 times the optimum on synthetic checks (80 % mass at 0.424,
rest uniform on [0, 2.8]: about 1e4) and 4e3 to 7e3 on the MNIST example's first layers, while
ordinary shapes where entropy works as intended stay within 3.5 times (ReLU(N(0,1)) 1.1, N(0,1)
1.35, Laplace 1.1, exponential 1.03, Student-t(3) 3.4; the example's other tensors 1.0 to 1.6):
the rule catches the failure without overriding entropy's deliberate tail clipping. On the example,
literal entropy gives 39.95 % top-1 in INT8 (FP32 99.35 %); with the guard 99.30 %.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import GeneratorError
from ..spec.stages import Calibration
from . import methods
from .histogram import Histogram

GUARD_RATIO = 10.0
GUARD_STRIDE = 16  # the guard's MSE search is coarse-to-fine (methods.mse_amax): ~25x fewer candidates
EMPTY_AMAX = 1.0  # a tensor that was always exactly 0: any positive scale represents it exactly


@dataclass(frozen=True)
class AmaxSettings:
    """What the calibrators need from the spec's `Calibration` block."""

    method: str = "entropy"
    percentile: float = 99.99
    guard: bool = True
    guard_ratio: float = GUARD_RATIO

    @classmethod
    def from_spec(cls, calibration: Calibration) -> "AmaxSettings":
        return cls(method=calibration.method, percentile=calibration.percentile, guard=calibration.guard)


@dataclass(frozen=True)
class AmaxResult:
    """A tensor's threshold and how it was chosen.

    `method` is the rule whose threshold was used ("mse" when the guard replaced entropy's);
    `mse` is the expected quantisation error at `amax` on the histogram; `divergence` the KL at the
    entropy threshold (entropy only); `rejected_amax` entropy's own threshold when guarded.
    """

    amax: float
    method: str
    max: float
    mse: float
    divergence: float | None = None
    guarded: bool = False
    rejected_amax: float | None = None
    candidates: dict[str, float] | None = None  # auto: candidate -> amax
    candidate_mse: dict[str, float] | None = None  # auto: candidate -> own expected quantisation MSE
    reason: str | None = None  # auto: why this candidate won


Calibrator = Callable[[Histogram, AmaxSettings], AmaxResult]


def _result(hist: Histogram, amax: float, method: str, **extra: object) -> AmaxResult:
    amax = min(amax, hist.amax)  # an upper bin edge may lie just above the largest value seen
    error = float(methods.quantization_mse(hist.counts, hist.width, amax)[0])
    return AmaxResult(amax=float(amax), method=method, max=float(hist.amax), mse=error, **extra)  # type: ignore[arg-type]


def entropy(hist: Histogram, settings: AmaxSettings) -> AmaxResult:
    """KL-divergence threshold; with `settings.guard`, falls back to the MSE optimum on a clipped spike."""
    amax, divergence, _ = methods.entropy_amax(hist.counts, hist.width)
    chosen = _result(hist, amax, "entropy", divergence=divergence)
    if not settings.guard:
        return chosen
    best_amax, best_error = methods.mse_amax(hist.counts, hist.width, stride=GUARD_STRIDE)
    if chosen.mse <= settings.guard_ratio * best_error:
        return chosen
    return _result(hist, best_amax, "mse", divergence=divergence, guarded=True, rejected_amax=chosen.amax)


def minmax(hist: Histogram, settings: AmaxSettings) -> AmaxResult:
    """The largest |x| seen over all batches."""
    return _result(hist, hist.amax, "minmax")


def percentile(hist: Histogram, settings: AmaxSettings) -> AmaxResult:
    """Upper edge of the histogram bin where `settings.percentile` % of values are reached."""
    return _result(hist, methods.percentile_amax(hist.counts, hist.width, settings.percentile), "percentile")


def mse(hist: Histogram, settings: AmaxSettings) -> AmaxResult:
    """The bin edge that minimises the expected quantisation MSE (every edge tried)."""
    return _result(hist, methods.mse_amax(hist.counts, hist.width)[0], "mse")


AUTO_PERCENTILES = (99.9, 99.99, 99.999)


def auto_candidates(hist: Histogram) -> dict[str, float]:
    """Every threshold one histogram gives, by candidate name (clipped to the largest |x| seen)."""
    out = {"entropy": methods.entropy_amax(hist.counts, hist.width)[0],
           "mse": methods.mse_amax(hist.counts, hist.width, stride=GUARD_STRIDE)[0]}  # coarse-to-fine: ~25x cheaper
    for p in AUTO_PERCENTILES:
        out[f"percentile_{p:g}"] = methods.percentile_amax(hist.counts, hist.width, p)
    out["minmax"] = hist.amax
    return {name: float(min(value, hist.amax)) for name, value in out.items() if value > 0}


def auto(hist: Histogram, settings: AmaxSettings) -> AmaxResult:
    """The candidate with the smallest own quantisation error (the model-output check may override it)."""
    candidates = auto_candidates(hist)
    errors = methods.quantization_mse(hist.counts, hist.width, np.array(list(candidates.values())))
    best = list(candidates)[int(np.argmin(errors))]
    return _result(hist, candidates[best], f"auto:{best}", candidates=candidates,
                   candidate_mse=dict(zip(candidates, map(float, errors))),
                   reason=f"lowest own quantisation MSE ({float(errors.min()):.3g})")


CALIBRATORS: dict[str, Calibrator] = {
    "auto": auto, "entropy": entropy, "minmax": minmax, "percentile": percentile, "mse": mse,
}


def compute_amax(hist: Histogram, settings: AmaxSettings) -> AmaxResult:
    """The threshold for one tensor by `settings.method`; an all-zero tensor gets `EMPTY_AMAX`."""
    try:
        calibrator = CALIBRATORS[settings.method]
    except KeyError:
        raise GeneratorError(f"unknown calibration method {settings.method!r} (one of: {', '.join(CALIBRATORS)})") from None
    if hist.total == 0 or hist.amax == 0.0:
        return AmaxResult(amax=EMPTY_AMAX, method=settings.method, max=0.0, mse=0.0)
    return calibrator(hist, settings)
