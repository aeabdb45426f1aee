"""Per-tensor sensitivity of the evaluation metric to INT8, and mixed-precision fallback.

Two measurements, both on the real Q/DQ model run by onnxruntime:

* ``loo`` (leave-one-out, the default): everything quantized except one tensor. The gain over the
  all-INT8 model is exactly what keeping that tensor in float would recover, which is the question
  the fallback asks; interactions with the other quantized layers are included.
* ``oat`` (one-at-a-time): only one tensor quantized. The drop against FP32 isolates the tensor's
  own error, but misses how errors compound.

A "tensor" is an activation tensor that gets a Q/DQ pair; keeping it float also keeps the layers
reading it (and their weights) in float, as TensorRT would run them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .evaluate import Evaluator, Score
from .placement import node_names
from .qdq import resolve_keep_float

log = logging.getLogger("trgen.quantize")

Mode = Literal["loo", "oat"]
_EPS = 1e-9  # metrics are percentages of counts: 99.25 - 99.15 must count as 0.1


@dataclass(frozen=True)
class Entry:
    """One tensor: the score when it is toggled, and its sensitivity (points; larger = worse)."""

    tensor: str
    score: Score
    delta: float
    error_delta: float


@dataclass(frozen=True)
class Ranking:
    mode: Mode
    metric: str
    samples: int
    fp32: Score
    int8: Score
    base_keep: tuple[str, ...]
    entries: tuple[Entry, ...]  # most sensitive first

    def top(self, k: int) -> list[str]:
        return [e.tensor for e in self.entries[:k]]


@dataclass(frozen=True)
class Step:
    """One fallback step: the tensor moved to float (None for the starting point) and the result."""

    kept: str | None
    score: Score
    drop: float


@dataclass(frozen=True)
class Fallback:
    target_drop: float
    steps: tuple[Step, ...]
    keep_float: tuple[str, ...]
    met: bool


def rank(
    evaluator: Evaluator,
    *,
    mode: Mode = "loo",
    keep_float: Sequence[str] = (),
    progress: bool = True,
    candidates: Sequence[str] | None = None,
) -> Ranking:
    """Measure every quantized tensor (beyond `keep_float`; or just `candidates`) and rank them, most sensitive first."""
    from tqdm import tqdm

    base_keep = tuple(keep_float)
    int8 = evaluator.score(base_keep)
    candidates = list(candidates) if candidates is not None else _quantized(evaluator, base_keep)
    entries = []
    for tensor in tqdm(candidates, desc=f"sensitivity ({mode})", unit="tensor", disable=not progress, leave=False):
        if mode == "loo":
            score = evaluator.score((*base_keep, tensor))
            delta, error_delta = score.metric - int8.metric, int8.error - score.error
        else:
            others = [t for t in candidates if t != tensor]
            score = evaluator.score((*base_keep, *others))
            delta, error_delta = evaluator.drop(score), score.error
        entries.append(Entry(tensor, score, delta, error_delta))
    order = {t: i for i, t in enumerate(candidates)}
    entries.sort(key=lambda e: (-e.delta, -e.error_delta, order[e.tensor]))
    return Ranking(
        mode=mode, metric=evaluator.metric_name, samples=len(evaluator.data), fp32=evaluator.fp32,
        int8=int8, base_keep=base_keep, entries=tuple(entries),
    )


def fallback(
    evaluator: Evaluator, ranking: Ranking, target_drop: float, *, keep_float: Sequence[str] = (), progress: bool = True
) -> Fallback:
    """Keep tensors in float, most sensitive first, until the drop vs FP32 is within `target_drop`."""
    from tqdm import tqdm

    keep = list(keep_float)
    score = evaluator.score(keep)
    steps = [Step(None, score, evaluator.drop(score))]
    log.info("fallback: all INT8%s: %s %.2f (drop %.2f, target %.2f)", _extra(keep), ranking.metric,
             score.metric, steps[-1].drop, target_drop)
    queue = [t for t in ranking.top(len(ranking.entries)) if t not in keep]
    with tqdm(total=len(queue), desc="fallback", unit="tensor", disable=not progress, leave=False) as bar:
        while steps[-1].drop > target_drop + _EPS and queue:
            tensor = queue.pop(0)
            keep.append(tensor)
            score = evaluator.score(keep)
            steps.append(Step(tensor, score, evaluator.drop(score)))
            log.info("fallback: + %s in float: %s %.2f (drop %.2f)", tensor, ranking.metric, score.metric, steps[-1].drop)
            bar.update()
    met = steps[-1].drop <= target_drop + _EPS
    if not met:
        log.warning("fallback: target drop %.2f not reached even with every ranked tensor in float", target_drop)
    return Fallback(target_drop=target_drop, steps=tuple(steps), keep_float=tuple(keep), met=met)


def _quantized(evaluator: Evaluator, keep: Sequence[str]) -> list[str]:
    """The activation tensors that still have a quantized use once `keep` is in float."""
    float_nodes = resolve_keep_float(evaluator.placement, keep, node_names(evaluator.model))
    return [a.tensor for a in evaluator.placement.activations if any(u.node not in float_nodes for u in a.uses)]


def _extra(keep: Sequence[str]) -> str:
    return f" but {len(keep)} kept float" if keep else ""
