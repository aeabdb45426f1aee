"""Does a config's input/output list match the model file's signature (names, dtypes, ranks, dims)?

Shared by the ONNX, python-backend and TensorRT-engine rules; how strict each is follows the backend:
the onnxruntime backend compares output dims literally (-1 positions included), the others only
require fixed model dims to be matched.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .model_io import FileSignature, Tensor
from .problems import Finding
from .schema import enum_name, pb2


def match_signature(
    config: Any, sig: FileSignature, source: str, *, exact_outputs: bool, batching: bool | None = None
) -> Iterator[Finding]:
    """Findings where `config` (a ModelConfig) disagrees with `sig`, read from the file `source`.

    `batching` defaults to max_batch_size > 0; the caller passes True where the backend's auto-complete
    sets max_batch_size itself.
    """
    data_type = pb2().DataType
    batching = config.max_batch_size > 0 if batching is None else batching
    for field, declared, actual in (("input", config.input, sig.inputs), ("output", config.output, sig.outputs)):
        by_name = {t.name: t for t in actual}
        for i, io in enumerate(declared):
            tensor = by_name.get(io.name)
            if tensor is None:
                known = ", ".join(t.name for t in actual)
                yield Finding((field, i, "name"), f"{field} {io.name!r} is not in {source} (it has: {known})")
                continue
            declared_type = enum_name(data_type, io.data_type)
            if io.data_type and declared_type != tensor.data_type:
                yield Finding(
                    (field, i, "data_type"),
                    f"{field} {io.name!r} is {declared_type} but {source} has {tensor.data_type}",
                )
            dims = list(io.reshape.shape) if io.HasField("reshape") else list(io.dims)
            yield from _dims(field, i, io.name, dims, tensor, source, batching, exact_outputs and field == "output")
    if config.input:
        declared_names = {io.name for io in config.input}
        missing = [t.name for t in sig.inputs if t.name not in declared_names]
        if missing:
            yield Finding(("input",), f"{source} needs inputs the config does not declare: {', '.join(missing)}")


def _dims(
    field: str, i: int, name: str, dims: list[int], tensor: Tensor, source: str, batching: bool, exact: bool
) -> Iterator[Finding]:
    shape = list(tensor.shape)
    if batching and (not shape or shape[0] != -1):
        yield Finding(
            ("max_batch_size",),
            f"max_batch_size > 0 needs a dynamic first dimension, but {field} {name!r} in {source} has shape {shape}",
        )
        return
    model_dims = shape[1:] if batching else shape
    if len(dims) != len(model_dims):
        with_batch = batching and len(dims) == len(shape)
        hint = " (dims must exclude the batch dimension when max_batch_size > 0)" if with_batch else ""
        yield Finding(
            (field, i, "dims"), f"{field} {name!r} has rank {len(dims)} but {source} has {model_dims}{hint}"
        )
        return
    if exact and dims != model_dims:
        yield Finding(
            (field, i, "dims"),
            f"output {name!r} dims {dims} must equal the ONNX output shape {model_dims} exactly (-1 included)",
        )
        return
    for d, (want, have) in enumerate(zip(dims, model_dims)):
        if have != -1 and want != have:
            yield Finding((field, i, "dims", d), f"{field} {name!r} dim {d} is {want} but {source} fixes it to {have}")
