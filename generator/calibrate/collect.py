"""Activation statistics: run the FP32 model with onnxruntime (CPU) and stream histograms.

The tensors to observe become extra graph outputs of an in-memory copy of the model; graph inputs
are observed straight from the batch. Each slice's outputs update the per-tensor histograms and are
dropped, so memory is bounded by `ACTIVATION_BUDGET` (plus onnxruntime's own working memory and one
input batch), whatever the number of samples or the batch size (unlike onnxruntime's own histogram
calibrator, which keeps every intermediate output: onnxruntime #10503, #21979).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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


ACTIVATION_BUDGET = 64 << 20
"""Bytes of observed activations alive at once (two slices of at most half of it each, see below)."""


def collect_histograms(
    model: "onnx.ModelProto", tensors: Sequence[str], batches: Iterable[Batch], *, where: str | Path,
    budget: int = ACTIVATION_BUDGET, fixed_batch: bool = False,
) -> tuple[dict[str, Histogram], int]:
    """Run every batch through the model, updating one histogram per tensor. Returns (histograms, samples).

    Memory is bounded by `budget`, not by the batch size: a batch whose observed activations
    exceed half the budget runs through onnxruntime in slices of fewer samples (histograms do not
    care how samples are grouped), unless `fixed_batch` (the model only takes whole batches).
    Slice k's histograms are updated on a worker thread while onnxruntime runs slice k+1 (both
    release the GIL), so at most two slices of activations are alive at any time; the outputs stay
    in onnxruntime's buffers (OrtValue views, no copy). Raises `GeneratorError` naming the tensor
    and the batch when an activation holds NaN or Inf.
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    exposed, fetch = expose_tensors(model, tensors, where=where)
    session = open_session(exposed, where=where)
    from_batch = [name for name in tensors if name not in fetch]
    histograms = {name: Histogram() for name in tensors}
    per_sample: float | None = None
    samples = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="trgen-histogram") as worker:
        pending: Future[None] | None = None
        for index, batch in enumerate(batches):
            n = len(batch)
            if per_sample is None and fetch and not fixed_batch and n > 1:
                per_sample = _bytes_per_sample(session, fetch, batch, where=where, index=index)
            step = n if fixed_batch or not per_sample else max(1, min(n, int(budget // 2 // per_sample)))
            for lo in range(0, n, step):
                feeds = {k: v[lo : lo + step] for k, v in batch.inputs.items()} if step < n else batch.inputs
                values = _run(session, fetch, feeds, where=where, index=index)
                observed = [*zip(fetch, values), *((name, feeds[name]) for name in from_batch)]
                if pending is not None:
                    pending.result()
                span = (samples + lo, samples + min(n, lo + step) - 1)
                pending = worker.submit(_update, histograms, observed, index, span, where)
                del values, observed, feeds  # nothing of a slice outlives its histogram update
            samples += n
        if pending is not None:
            pending.result()
    return histograms, samples


def _run(session: Any, fetch: list[str], feeds: Mapping[str, np.ndarray], *, where: str | Path, index: int) -> list[np.ndarray]:
    """The fetched tensors as numpy views of onnxruntime's own output buffers (no copy)."""
    if not fetch:
        return []
    from onnxruntime import OrtValue

    try:
        inputs = {k: OrtValue.ortvalue_from_numpy(np.ascontiguousarray(v)) for k, v in feeds.items()}
        return [value.numpy() for value in session.run_with_ort_values(fetch, inputs)]
    except Exception as exc:
        raise GeneratorError(f"onnxruntime failed on calibration batch {index}: {_first_line(exc)}", where=where) from None


def _bytes_per_sample(session: Any, fetch: list[str], batch: Batch, *, where: str | Path, index: int) -> float:
    """Observed activation bytes per sample, from one sample of the first batch (dynamic shapes included)."""
    one = {k: v[:1] for k, v in batch.inputs.items()}
    values = _run(session, fetch, one, where=where, index=index)
    return float(sum(v.nbytes for v in values)) or 1.0


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
