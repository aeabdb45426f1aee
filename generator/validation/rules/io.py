"""Inputs, outputs, batch inputs and batch outputs (core `ValidateIOShape`, `ValidateModelInput/Output`,
`ValidateNonLinearFormatIO`, `ValidateBatchIO`)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from ..problems import Finding
from ..schema import enum_name, pb2
from ..subject import ModelUnderCheck


def _io(config: Any) -> Iterator[tuple[str, int, Any]]:
    for field in ("input", "output"):
        for i, io in enumerate(getattr(config, field)):
            yield field, i, io


def _prefix(field: str, io: Any) -> str:
    return f"model {field} '{io.name}'"


def io_fields(m: ModelUnderCheck) -> Iterator[Finding]:
    """Each input/output has a name, a data_type and dims; names are unique per direction."""
    seen: set[tuple[str, str]] = set()
    for field, i, io in _io(m.config):
        if not io.name:
            yield Finding((field, i), f"model {field} {i} must specify 'name'")
        if io.data_type == 0:
            yield Finding((field, i), f"{_prefix(field, io)} must specify 'data_type'")
        if not io.dims:
            yield Finding((field, i), f"{_prefix(field, io)} must specify 'dims'")
        if io.name and (field, io.name) in seen:
            yield Finding((field, i, "name"), f"{field} name {io.name!r} is used twice")
        seen.add((field, io.name))


def dims(m: ModelUnderCheck) -> Iterator[Finding]:
    """Every dim and reshape dim is >= 1 or -1."""
    for field, i, io in _io(m.config):
        for path, values, what in (((field, i, "dims"), io.dims, "dimension"),
                                   ((field, i, "reshape", "shape"), io.reshape.shape, "reshape dimensions")):
            for d, value in enumerate(values):
                if value < 1 and value != -1:
                    yield Finding(path + (d,), f"{_prefix(field, io)} {what} must be integer >= 1, or -1 to "
                                  f"indicate a variable-size dimension (dim {d} is {value})")


def reshape(m: ModelUnderCheck) -> Iterator[Finding]:
    """`reshape` keeps the element count, chunk by chunk between -1 dims."""
    for field, i, io in _io(m.config):
        if not io.HasField("reshape"):
            continue
        shape, dims_ = list(io.reshape.shape), list(io.dims)
        where, prefix = (field, i, "reshape"), _prefix(field, io)
        if not shape and not m.batching:
            yield Finding(where, f"{prefix} cannot have empty reshape for non-batching model as scalar tensors are "
                          "not supported")
        elif not shape:
            if _count(dims_) != 1:
                yield Finding(where, f"{prefix} has different size for dims and reshape (an empty reshape needs dims "
                              f"with one element, not {dims_})")
        elif _count(shape) != _count(dims_) or (-1 not in dims_ and _chunks(shape) != _chunks(dims_)):
            yield Finding(where, f"{prefix} has different size for dims and reshape ({dims_} vs {shape})")
        elif len(_chunks(shape)) != len(_chunks(dims_)):
            yield Finding(where, f"{prefix} has different number of variable-size dimensions for dims and reshape")
        elif _chunks(shape) != _chunks(dims_):
            yield Finding(where, f"{prefix} has different size for dims and reshape ({dims_} vs {shape})")


def _count(values: list[int]) -> int:
    return -1 if -1 in values else math.prod(values)


def _chunks(values: list[int]) -> list[int]:
    """Element counts of the runs between -1 dims: [2, 4, -1, 6] -> [8, 6]."""
    out, current = [], 1
    for v in values:
        if v == -1:
            out.append(current)
            current = 1
        else:
            current *= v
    return out + [current]


def formats(m: ModelUnderCheck) -> Iterator[Finding]:
    """NHWC/NCHW inputs have 3 dims; shape tensors and non-linear IO are TensorRT-only (3 dims for the latter)."""
    fmt = pb2().ModelInput.Format
    for field, i, io in _io(m.config):
        if field == "input" and io.format in (fmt.Value("FORMAT_NHWC"), fmt.Value("FORMAT_NCHW")) and len(io.dims) != 3:
            yield Finding((field, i, "format"), f"model input NHWC/NCHW require 3 dims ({io.name!r} has {len(io.dims)})")
        if io.is_shape_tensor and not m.is_tensorrt:
            yield Finding((field, i, "is_shape_tensor"),
                          f"shape tensors are only supported for TensorRT platform ({field} {io.name!r})")
        if io.is_non_linear_format_io:
            if not m.is_tensorrt:
                yield Finding((field, i, "is_non_linear_format_io"),
                              f"Non-linear IO format is only supported for the TensorRT platform ({field} {io.name!r})")
            elif len(io.dims) != 3:
                yield Finding((field, i, "dims"), f"Non-linear IO format {field} requires 3 dims ({io.name!r})")


def batch_io(m: ModelUnderCheck) -> Iterator[Finding]:
    """batch_input / batch_output: known kinds, one source input, INT32/FP32, real sources and targets."""
    schema = pb2()
    inputs = {io.name for io in m.config.input}
    outputs = {io.name for io in m.config.output}
    allowed_types = {schema.DataType.Value("TYPE_INT32"), schema.DataType.Value("TYPE_FP32")}
    for b, batch in enumerate(m.config.batch_input):
        where = ("batch_input", b)
        kind = enum_name(schema.BatchInput.Kind, batch.kind)
        if batch.kind not in schema.BatchInput.Kind.values():
            yield Finding(where + ("kind",), f"unknown batch input kind '{kind}'")
        elif len(batch.source_input) != 1:
            yield Finding(where, f"batch input kind '{kind}' expects 1 source input, got {len(batch.source_input)}")
        if batch.data_type not in allowed_types:
            yield Finding(where + ("data_type",), "batch input data type must be TYPE_INT32 or TYPE_FP32")
        yield from _sources(where, batch.source_input, inputs)
    for b, batch in enumerate(m.config.batch_output):
        where = ("batch_output", b)
        kind = enum_name(schema.BatchOutput.Kind, batch.kind)
        if batch.kind not in schema.BatchOutput.Kind.values():
            yield Finding(where + ("kind",), f"unknown batch output kind '{kind}'")
        elif len(batch.source_input) != 1:
            yield Finding(where, f"batch output kind '{kind}' expects 1 source input, got {len(batch.source_input)}")
        yield from _sources(where, batch.source_input, inputs)
        targets: set[str] = set()
        for t, target in enumerate(batch.target_name):
            if target not in outputs:
                yield Finding(where + ("target_name", t), f"unknown target output name '{target}'")
            if target in targets:
                yield Finding(where + ("target_name", t), f"target output name '{target}' can only be specified once")
            targets.add(target)


def _sources(where: tuple[Any, ...], sources: Any, inputs: set[str]) -> Iterator[Finding]:
    for s, source in enumerate(sources):
        if source not in inputs:
            yield Finding(where + ("source_input", s), f"unknown source input name '{source}'")


RULES = {
    "io-fields": io_fields,
    "dims": dims,
    "reshape": reshape,
    "io-formats": formats,
    "batch-io": batch_io,
}
