"""Score Q/DQ configurations of one model on one evaluation set with onnxruntime (CPU).

A configuration is the set of names kept in float; everything else placed is quantized. The FP32
predictions are computed once and every score is memoised per configuration, so sensitivity
analysis and the fallback search never evaluate the same model twice.

The metric is top-1 accuracy in percent when the data has labels, else top-1 agreement with FP32
(in percent, so FP32 scores 100). `error` is the relative squared error of the first output against
FP32 (sum((q - f)^2) / sum(f^2)): a continuous tie-breaker where a few hundred samples make top-1
too coarse to rank layers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import onnx

from ..errors import GeneratorError
from .placement import Placement, plan
from .qdq import quantize_model
from .runtime import run, session


@dataclass(frozen=True)
class EvalSet:
    """Preprocessed evaluation inputs (whole arrays, batch first) and optional integer labels."""

    inputs: Mapping[str, np.ndarray]
    labels: np.ndarray | None
    batch_size: int = 64

    def __post_init__(self) -> None:
        sizes = {len(v) for v in self.inputs.values()} | ({len(self.labels)} if self.labels is not None else set())
        if len(sizes) != 1 or 0 in sizes:
            raise GeneratorError(f"evaluation data: inputs and labels need the same non-zero length, got {sorted(sizes)}")

    def __len__(self) -> int:
        return len(next(iter(self.inputs.values())))

    def batches(self) -> Iterator[dict[str, np.ndarray]]:
        for start in range(0, len(self), self.batch_size):
            yield {k: v[start : start + self.batch_size] for k, v in self.inputs.items()}


@dataclass(frozen=True)
class Score:
    """One configuration's result: metric (percent), agreement with FP32 (percent), output error."""

    metric: float
    agreement: float
    error: float


class Evaluator:
    """Builds, runs and scores Q/DQ variants of `model` with fixed amax; FP32 reference cached."""

    def __init__(self, model: onnx.ModelProto, amax: Mapping[str, float], data: EvalSet) -> None:
        self.model = model
        self.amax = dict(amax)
        self.data = data
        self.placement: Placement = plan(model)
        self._scores: dict[frozenset[str], Score] = {}
        self._fp32 = self._outputs(model)
        self.fp32 = Score(metric=self._metric(self._fp32), agreement=100.0, error=0.0)

    @property
    def metric_name(self) -> str:
        return "top1" if self.data.labels is not None else "agreement"

    def score(self, keep_float: Iterable[str] = ()) -> Score:
        """Quantize everything placed except `keep_float`, run it, score it (memoised)."""
        key = frozenset(keep_float)
        if key not in self._scores:
            qdq = quantize_model(self.model, self.amax, keep_float=sorted(key), placement=self.placement)
            out = self._outputs(qdq.model)
            ref = self._fp32.astype(np.float64)
            denom = float(np.sum(ref**2)) or 1.0
            self._scores[key] = Score(
                metric=self._metric(out),
                agreement=100.0 * float(np.mean(out.argmax(-1) == self._fp32.argmax(-1))),
                error=float(np.sum((out.astype(np.float64) - ref) ** 2)) / denom,
            )
        return self._scores[key]

    def drop(self, score: Score) -> float:
        """Points lost against FP32 (negative when INT8 happens to score higher)."""
        return self.fp32.metric - score.metric

    def _outputs(self, model: onnx.ModelProto) -> np.ndarray:
        sess = session(model)
        first = sess.get_outputs()[0].name
        return np.concatenate([run(sess, batch, [first])[0] for batch in self.data.batches()])

    def _metric(self, outputs: np.ndarray) -> float:
        pred = outputs.argmax(-1)
        if self.data.labels is None:
            return 100.0 * float(np.mean(pred == self._fp32.argmax(-1)))
        labels = np.asarray(self.data.labels).reshape(pred.shape)
        return 100.0 * float(np.mean(pred == labels))
