"""Score Q/DQ configurations of one model on one evaluation set with onnxruntime (CPU).

A configuration is the set of names kept in float; everything else placed is quantized. The FP32
predictions are computed once and every score is memoised per configuration, so sensitivity
analysis and the fallback search never evaluate the same model twice.

The metric is the task metric `metric` (top1, exact_match_ctc, detection_hit: task_metrics.py) in
percent, against the labels when the data has them, else as agreement with FP32 (so FP32 scores
100). `error` is the relative squared error of all float outputs against FP32
(sum((q - f)^2) / sum(f^2)): a continuous tie-breaker where a few hundred samples make the metric
too coarse to rank layers.

Q/DQ models run with onnxruntime's graph optimisations off (`runtime.session(exact=True)`): the
TensorRT form is judged by fake-quantised float math, TensorRT's numerics, not by whatever integer
kernels onnxruntime would fuse it into.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import onnx

from ..errors import GeneratorError
from .placement import Placement, node_names, plan
from .qdq import quantize_model
from .runtime import run, session
from .task_metrics import agreement, score


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

    def __init__(
        self, model: onnx.ModelProto, amax: Mapping[str, float], data: EvalSet, *, metric: str = "top1", fallback: str = "fp32"
    ) -> None:
        self.model = model
        self.amax = dict(amax)
        self.data = data
        self.metric = metric
        self.fallback = fallback  # precision of kept nodes: fp32, or fp16 islands (TensorRT targets)
        self.placement: Placement = plan(model)
        self._first_output = {name: node.output[0] for name, node in zip(node_names(model), model.graph.node) if node.output}
        self._scores: dict[frozenset[str], Score] = {}
        self._fp32 = self._outputs(model, exact=False)
        self.fp32 = Score(metric=self._metric(self._fp32), agreement=100.0, error=0.0)

    @property
    def metric_name(self) -> str:
        if self.data.labels is not None:
            return self.metric
        return "agreement" if self.metric == "top1" else f"{self.metric} agreement"

    def score(self, keep_float: Iterable[str] = ()) -> Score:
        """Quantize everything placed except `keep_float`, run it, score it (memoised)."""
        key = frozenset(keep_float)
        if key not in self._scores:
            self._scores[key] = self.score_outputs(self._outputs(self.build(key), exact=True))
        return self._scores[key]

    def build(self, keep_float: Iterable[str] = ()) -> onnx.ModelProto:
        """The Q/DQ model with `keep_float` out of INT8, kept compute nodes in `self.fallback` precision."""
        qdq = quantize_model(self.model, self.amax, keep_float=sorted(keep_float), placement=self.placement)
        if self.fallback != "fp16" or not qdq.float_nodes:
            return qdq.model
        from .fp16 import fp16_islands

        return fp16_islands(qdq.model, [self._first_output[n] for n in qdq.float_nodes if n in self._first_output])

    def score_model(self, model: onnx.ModelProto, *, exact: bool = True) -> Score:
        """Score any model with the FP32 model's inputs and outputs (an FP16-fallback form, the onnxruntime form)."""
        return self.score_outputs(self._outputs(model, exact=exact))

    def score_outputs(self, out: list[np.ndarray]) -> Score:
        return Score(metric=self._metric(out), agreement=100.0 * agreement(self.metric, self._fp32, out), error=_error(self._fp32, out))

    def drop(self, score: Score) -> float:
        """Points lost against FP32 (negative when INT8 happens to score higher)."""
        return self.fp32.metric - score.metric

    def _outputs(self, model: onnx.ModelProto, *, exact: bool) -> list[np.ndarray]:
        sess = session(model, exact=exact)
        names = [o.name for o in sess.get_outputs()]
        per_batch = [run(sess, batch, names) for batch in self.data.batches()]
        return [np.concatenate([b[i] for b in per_batch]) for i in range(len(names))]

    def _metric(self, outputs: list[np.ndarray]) -> float:
        reference = self._fp32 if hasattr(self, "_fp32") else outputs
        return 100.0 * score(self.metric, outputs, self.data.labels, reference)


def _error(reference: list[np.ndarray], out: list[np.ndarray]) -> float:
    """Relative squared error of every float output against FP32."""
    num = den = 0.0
    for ref, got in zip(reference, out):
        if not np.issubdtype(ref.dtype, np.floating):
            continue
        r = ref.astype(np.float64)
        num += float(np.sum((np.asarray(got, dtype=np.float64) - r) ** 2))
        den += float(np.sum(r**2))
    return num / (den or 1.0)
