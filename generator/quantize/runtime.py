"""Small onnxruntime helpers shared by the Q/DQ checks and sensitivity analysis (CPU provider)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

if TYPE_CHECKING:  # onnxruntime is imported lazily at run time
    import onnxruntime


def session(model: onnx.ModelProto, *, threads: int = 0, exact: bool = False) -> "onnxruntime.InferenceSession":
    """A CPU session straight from the in-memory model (no temporary file).

    exact: graph optimisations off (ORT_DISABLE_ALL), so a Q/DQ model runs as written -- fake-quantised
    float math, TensorRT's numerics -- instead of the integer kernels onnxruntime would fuse it into.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if exact:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def with_outputs(model: onnx.ModelProto, tensors: Sequence[str]) -> onnx.ModelProto:
    """A copy of the model that also returns the given intermediate tensors as graph outputs."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    present = {o.name for o in out.graph.output}
    for name in tensors:
        if name not in present:
            out.graph.output.append(onnx.ValueInfoProto(name=name))
            present.add(name)
    return out


def run(sess: "onnxruntime.InferenceSession", inputs: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> list[Any]:
    """Feed only the inputs the session declares (extra keys such as labels are ignored)."""
    wanted = {i.name for i in sess.get_inputs()}
    return sess.run(list(outputs) if outputs else None, {k: v for k, v in inputs.items() if k in wanted})


def minmax_amax(model: onnx.ModelProto, tensors: Sequence[str], batches: Iterable[Mapping[str, np.ndarray]]) -> dict[str, float]:
    """max |x| of each tensor over the batches: a plain reference calibration (no histograms)."""
    sess = session(with_outputs(model, tensors))
    amax = dict.fromkeys(tensors, 0.0)
    for batch in batches:
        for name, value in zip(tensors, run(sess, batch, tensors)):
            amax[name] = max(amax[name], float(np.abs(value).max(initial=0.0)))
    return amax
