"""The accuracy budget, closed loop: keep the fewest, most sensitive tensors out of INT8 until the drop fits.

The budget is `calibration.target_drop`, else the model's `evaluation.tolerances.max_top1_drop`
(points of the task metric). The loop measures on a **held-out split that is not the data INT8 is
finally judged on**: the calibration data source (labels when it has them, else agreement with
FP32 by the task rule, a stricter measure), never the evaluation data, so the final report is not
scored on the data that picked the fallback.

1. Score all-INT8 (one pass). Within budget: done, nothing falls back.
2. Greedy rounds: each round scores every still-quantized tensor kept out (leave-one-out, given the
   fallbacks so far) and keeps the one that helps most. Re-ranking each round matters: a tensor
   whose damage is masked by a worse one shows no gain until that one is out (a single ranking
   then falls back far more than needed).
3. When the next round would exceed `max_passes` or half of `max_seconds`: prefixes of the last
   ranking, their length doubling (1, 2, 4, ...) until the budget holds, then bisected to the
   shortest -- O(log n) more passes. The loop stops at the limits either way and says which.

Fallback precision: FP16 islands in the graph for TensorRT targets (`fp16.py`, strongly typed), FP32
elsewhere (onnxruntime's CPU provider has no fast FP16 kernels). Every pass is memoised by the
Evaluator, so no configuration runs twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from .evaluate import Evaluator, Score
from .sensitivity import _EPS, _quantized

log = logging.getLogger("trgen.quantize")

MAX_PASSES = 64
MAX_SECONDS = 600.0


@dataclass(frozen=True)
class Limits:
    max_passes: int = MAX_PASSES
    max_seconds: float = MAX_SECONDS


@dataclass(frozen=True)
class Trial:
    """One measured configuration: how many ranked tensors fell back, and the result."""

    fallbacks: int
    score: Score
    drop: float
    kept: tuple[str, ...] = ()  # the fallbacks themselves


@dataclass(frozen=True)
class Budget:
    target_drop: float
    metric: str
    samples: int
    data: str  # where the loop measured (said in the report)
    fp32: Score
    int8: Score
    ranked: tuple[str, ...]  # the fallbacks, in the order the loop chose them
    trials: tuple[Trial, ...]
    keep_float: tuple[str, ...]
    met: bool
    passes: int
    seconds: float
    stopped: str  # "met", "passes", "time" or "exhausted"
    precision: str = "fp32"
    extra: dict[str, object] = field(default_factory=dict)


def meet_budget(
    evaluator: Evaluator,
    target_drop: float,
    *,
    keep_float: Sequence[str] = (),
    data: str,
    limits: Limits = Limits(),
    precision: str = "fp32",
    progress: bool = True,
) -> Budget:
    """Fall back the fewest tensors that bring the drop within `target_drop` (see the module docstring)."""
    start = time.monotonic()
    base = tuple(keep_float)
    state = _State(evaluator, base, limits, start)
    trials = [state.measure([])]
    if trials[0].drop <= target_drop + _EPS:
        return state.result(target_drop, data, precision, trials, trials[0], [], "met")
    kept: list[str] = []
    order: list[str] = []
    while True:  # greedy rounds: the single fallback that helps most, given those already kept
        candidates = [t for t in _quantized(evaluator, (*base, *kept))]
        if not candidates:
            return state.result(target_drop, data, precision, trials, None, kept, "exhausted")
        if not state.room_for(len(candidates)):
            order = order or candidates
            break
        scored = sorted(candidates, key=lambda t: _key(state.measure([*kept, t]).score, candidates.index(t)))
        kept.append(scored[0])
        trials.append(state.measure(kept))  # memoised: no extra pass
        state.passes -= 1
        if trials[-1].drop <= target_drop + _EPS:
            return state.result(target_drop, data, precision, trials, trials[-1], kept, "met")
        order = scored[1:]
    return _prefix_search(state, target_drop, data, precision, trials, kept, [t for t in order if t not in kept])


def _key(score: Score, position: int) -> tuple[float, float, int]:
    return (-score.metric, score.error, position)


def _prefix_search(
    state: "_State", target_drop: float, data: str, precision: str, trials: list[Trial], kept: list[str], order: list[str]
) -> Budget:
    """Out of passes for greedy rounds: prefixes of the last ranking, doubling then bisecting."""
    best: Trial | None = None
    fails, k = 0, 1
    while k <= len(order):
        trial = state.measure([*kept, *order[:k]])
        trials.append(trial)
        if trial.drop <= target_drop + _EPS:
            best = trial
            break
        fails = k
        stop = state.stopped()
        if stop or k == len(order):
            return state.result(target_drop, data, precision, trials, None, [*kept, *order], stop or "exhausted")
        k = min(2 * k, len(order))
    if best is None:
        return state.result(target_drop, data, precision, trials, None, kept, "exhausted")
    lo, hi = fails, k
    while hi - lo > 1 and state.stopped() is None:
        mid = (lo + hi) // 2
        trial = state.measure([*kept, *order[:mid]])
        trials.append(trial)
        if trial.drop <= target_drop + _EPS:
            hi, best = mid, trial
        else:
            lo = mid
    return state.result(target_drop, data, precision, trials, best, [*kept, *order[:hi]], "met")


class _State:
    """Pass and time accounting shared by the search steps."""

    def __init__(self, evaluator: Evaluator, base: tuple[str, ...], limits: Limits, start: float) -> None:
        self.evaluator, self.base, self.limits, self.start = evaluator, base, limits, start
        self.passes = 0

    def measure(self, extra: Sequence[str]) -> Trial:
        self.passes += 1
        score = self.evaluator.score((*self.base, *extra))
        return Trial(len(extra), score, self.evaluator.drop(score), tuple(extra))

    def room_for(self, passes: int) -> bool:
        return self.passes + passes <= self.limits.max_passes and time.monotonic() - self.start < self.limits.max_seconds / 2

    def stopped(self) -> str | None:
        if self.passes >= self.limits.max_passes:
            return "passes"
        if time.monotonic() - self.start >= self.limits.max_seconds:
            return "time"
        return None

    def result(self, target_drop: float, data: str, precision: str, trials: list[Trial], best: Trial | None,
               kept: Sequence[str], stopped: str) -> Budget:
        if best is not None:
            log.info("budget: %d tensor(s) kept in %s to meet a drop of %.2f (%d passes, %.1f s)",
                     len(kept), precision, target_drop, self.passes, time.monotonic() - self.start)
        else:  # not met: the best configuration tried (smallest drop, then fewest fallbacks), not the last
            kept = min(trials, key=lambda t: (t.drop, t.fallbacks)).kept
        return Budget(
            target_drop=target_drop, metric=self.evaluator.metric_name, samples=len(self.evaluator.data), data=data,
            fp32=self.evaluator.fp32, int8=trials[0].score, ranked=tuple(kept), trials=tuple(trials),
            keep_float=(*self.base, *kept), met=best is not None, passes=self.passes,
            seconds=time.monotonic() - self.start, stopped=stopped, precision=precision,
        )
