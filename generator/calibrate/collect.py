"""Activation statistics: run the FP32 model with onnxruntime (CPU) and stream histograms.

The tensors to observe become extra graph outputs of an in-memory copy of the model; graph inputs
are observed straight from the batch. Each batch's outputs update the per-tensor histograms and are
dropped, so memory depends on the batch size, never on the number of samples (unlike onnxruntime's
own histogram calibrator, which keeps every intermediate output: onnxruntime #10503, #21979).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import GeneratorError
from ..data import Batch
from .histogram import Histogram, NonFiniteError

if TYPE_CHECKING:
    import onnx

_FLOAT_TYPES = {1, 10, 11, 16}  # TensorProto FLOAT, FLOAT16, DOUBLE, BFLOAT16


def float_tensors(model: "onnx.ModelProto") -> list[str]:
    """Float graph inputs and node outputs of the main graph (types from ONNX shape inference)."""
    known = _value_infos(model)
    weights = {init.name for init in model.graph.initializer}
    names = [v.name for v in model.graph.input if v.name not in weights]
    names += [o for node in model.graph.node if node.op_type != "Constant" for o in node.output if o]
    return [n for n in dict.fromkeys(names) if n in known and known[n].type.tensor_type.elem_type in _FLOAT_TYPES]


def _value_infos(model: "onnx.ModelProto") -> dict[str, "onnx.ValueInfoProto"]:
    import onnx

    graph = model.graph
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
        return {v.name: v for v in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output)}
    except Exception:  # shape inference is only a convenience here: onnxruntime infers types itself
        return {v.name: v for v in (*graph.value_info, *graph.input, *graph.output)}


def expose_tensors(model: "onnx.ModelProto", tensors: Sequence[str], *, where: str | Path) -> tuple["onnx.ModelProto", list[str]]:
    """A copy of `model` whose graph outputs include every tensor in `tensors` that a node produces.

    Returns (model copy, the names to fetch from it). Graph inputs are not fetched (the batch has
    them). Raises `GeneratorError` for a name the model does not have, a weight, or a non-float tensor.
    """
    import onnx

    graph = model.graph
    produced = {name for node in graph.node for name in node.output if name}
    weights = {init.name for init in graph.initializer}
    inputs = {v.name for v in graph.input} - weights
    outputs = {v.name for v in graph.output}
    known = _value_infos(model)
    fetch: list[str] = []
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    for name in tensors:
        if name in weights:
            raise GeneratorError(f"tensor {name!r} is a weight (initializer), not an activation", where=where)
        if name not in produced and name not in inputs:
            raise GeneratorError(f"the model has no tensor named {name!r} to calibrate", where=where)
        elem_type = known[name].type.tensor_type.elem_type if name in known else 0
        if elem_type and elem_type not in _FLOAT_TYPES:
            raise GeneratorError(f"tensor {name!r} is not a float tensor (ONNX type {elem_type}): it cannot be calibrated", where=where)
        if name in inputs:
            continue
        if name not in outputs:
            value = onnx.ValueInfoProto(name=name)
            if name in known:
                value.CopyFrom(known[name])
            exposed.graph.output.append(value)
        fetch.append(name)
    return exposed, fetch


def open_session(model: "onnx.ModelProto", *, where: str | Path) -> Any:
    """A CPU onnxruntime session over an in-memory model (lazy import: onnxruntime is heavy)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: the extra outputs make onnxruntime chatty
    # idle onnxruntime threads would otherwise spin and starve the histogram thread (2-core machines)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise GeneratorError(f"onnxruntime cannot load the model: {_first_line(exc)}", where=where) from None


def collect_histograms(
    model: "onnx.ModelProto", tensors: Sequence[str], batches: Iterable[Batch], *, where: str | Path
) -> tuple[dict[str, Histogram], int]:
    """Run every batch through the model, updating one histogram per tensor. Returns (histograms, samples).

    Batch b's histograms are updated on a worker thread while onnxruntime runs batch b+1 (both
    release the GIL), so at most two batches of activations are alive at any time.
    Raises `GeneratorError` naming the tensor and the batch when an activation holds NaN or Inf.
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    exposed, fetch = expose_tensors(model, tensors, where=where)
    session = open_session(exposed, where=where)
    from_batch = [name for name in tensors if name not in fetch]
    histograms = {name: Histogram() for name in tensors}
    samples = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="trgen-histogram") as worker:
        pending: Future[None] | None = None
        for index, batch in enumerate(batches):
            try:
                values = session.run(fetch, batch.inputs) if fetch else []
            except Exception as exc:
                raise GeneratorError(f"onnxruntime failed on calibration batch {index}: {_first_line(exc)}", where=where) from None
            observed = [*zip(fetch, values), *((name, batch.inputs[name]) for name in from_batch)]
            if pending is not None:
                pending.result()
            pending = worker.submit(_update, histograms, observed, index, (samples, samples + len(batch) - 1), where)
            samples += len(batch)
            del values, observed  # nothing of a batch outlives its histogram update
        if pending is not None:
            pending.result()
    return histograms, samples


def _update(
    histograms: dict[str, Histogram], observed: list[tuple[str, np.ndarray]], index: int, span: tuple[int, int], where: str | Path
) -> None:
    for name, value in observed:
        if value.dtype.kind != "f":
            raise GeneratorError(f"tensor {name!r} is {value.dtype}, not float: it cannot be calibrated", where=where)
        try:
            histograms[name].update(value)
        except NonFiniteError as exc:
            raise GeneratorError(
                f"activation {name!r} holds {exc.kind} in calibration batch {index} "
                f"(samples {span[0]}-{span[1]}): check the data and its preprocessing",
                where=where,
            ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0] if text else ''}"[:400]
