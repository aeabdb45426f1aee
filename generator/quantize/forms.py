"""Where the two INT8 forms part: per-tensor SQNR of each against FP32, and what each quantizes.

The TensorRT-form Q/DQ model (model_int8_qdq.onnx) and the onnxruntime form derived from it
(model_int8_ort.onnx) should compute the same function up to integer rounding. When their task
metrics differ, `compare_forms` says where: for every tensor of the FP32 graph that both forms still
compute under its name, the SQNR of each form against FP32 on one batch (the Q/DQ form run with
graph optimisations off, i.e. fake-quantised float math, TensorRT's numerics), and the tensors that
go through a QuantizeLinear in one form and not the other (a scale one form applies and the other
does not, e.g. a pair added on a Conv output or a saturation at 255 * s instead of amax). Rows are
sorted by the gap, largest first: the first row is where to look.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx

from .runtime import run, session, with_outputs


@dataclass(frozen=True)
class TensorGap:
    tensor: str
    sqnr_qdq: float  # dB against FP32 (inf: identical)
    sqnr_ort: float
    quantized_in: str  # "both", "qdq", "ort" or "neither"

    @property
    def gap(self) -> float:
        a, b = _finite(self.sqnr_qdq), _finite(self.sqnr_ort)
        return abs(a - b)


def compare_forms(
    fp32: onnx.ModelProto, qdq: onnx.ModelProto, ort: onnx.ModelProto, batch: Mapping[str, np.ndarray]
) -> list[TensorGap]:
    """Per shared float tensor: each form's SQNR against FP32 on `batch`, largest gap first."""
    names = _shared_float_tensors(fp32, qdq, ort)
    ref = dict(zip(names, run(session(with_outputs(fp32, names)), batch, names)))
    got_qdq = dict(zip(names, run(session(with_outputs(qdq, names), exact=True), batch, names)))
    got_ort = dict(zip(names, run(session(with_outputs(ort, names)), batch, names)))
    in_qdq, in_ort = _quantized_inputs(qdq), _quantized_inputs(ort)
    rows = []
    for name in names:
        if not (ref[name].shape == got_qdq[name].shape == got_ort[name].shape):
            continue  # the name now holds another tensor (the rewrite swapped Relu and MaxPool)
        where = {(True, True): "both", (True, False): "qdq", (False, True): "ort", (False, False): "neither"}
        rows.append(TensorGap(name, sqnr_db(ref[name], got_qdq[name]), sqnr_db(ref[name], got_ort[name]),
                              where[(name in in_qdq, name in in_ort)]))
    rows.sort(key=lambda r: (-r.gap, r.tensor))
    return rows


def sqnr_db(reference: np.ndarray, other: np.ndarray) -> float:
    r = np.asarray(reference, dtype=np.float64)
    noise = float(np.sum((r - np.asarray(other, dtype=np.float64)) ** 2))
    return math.inf if noise == 0.0 else 10.0 * math.log10(max(float(np.sum(r**2)), 1e-30) / noise)


def _shared_float_tensors(*models: onnx.ModelProto) -> list[str]:
    """Node outputs of the first model that every model computes under the same name (graph order)."""
    produced = [{o for n in m.graph.node for o in n.output if o} for m in models]
    first = models[0]
    try:
        inferred = onnx.shape_inference.infer_shapes(first).graph
        types = {v.name: v.type.tensor_type.elem_type for v in (*inferred.value_info, *inferred.output)}
    except Exception:  # types are a filter only; unknown ones are tried
        types = {}
    names = [o for n in first.graph.node if n.op_type != "Constant" for o in n.output if o]
    return [t for t in dict.fromkeys(names) if all(t in p for p in produced[1:]) and types.get(t, 1) in (1, 10, 11)]


def _quantized_inputs(model: onnx.ModelProto) -> set[str]:
    return {n.input[0] for n in model.graph.node if n.op_type == "QuantizeLinear"}


def _finite(db: float) -> float:
    return 200.0 if math.isinf(db) else db


def format_gaps(rows: list[TensorGap], limit: int = 15) -> str:
    """A short table of the largest gaps."""
    width = max([6, *(len(r.tensor) for r in rows[:limit])])
    lines = [f"{'tensor':<{width}}  {'qdq dB':>7}  {'ort dB':>7}  {'gap':>6}  quantized in"]
    for r in rows[:limit]:
        lines.append(f"{r.tensor:<{width}}  {_finite(r.sqnr_qdq):>7.1f}  {_finite(r.sqnr_ort):>7.1f}  {r.gap:>6.1f}  {r.quantized_in}")
    return "\n".join(lines)
