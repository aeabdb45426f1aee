"""Model-file signatures for validation, read without the `onnx` package (or numpy).

`import onnx` costs about 0.15 s; validation needs only the graph's input and output value infos,
so `read_onnx` walks the protobuf wire format of ModelProto -> GraphProto -> ValueInfoProto itself
and skips everything else (weights included) by length. TensorRT engines are read through trgen's
`model.plan.json` sidecar (`read_engine_sidecar`), converted to the same light `FileSignature`.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

# ONNX TensorProto.DataType -> Triton data type
ONNX_TYPES = {
    1: "TYPE_FP32", 2: "TYPE_UINT8", 3: "TYPE_INT8", 4: "TYPE_UINT16", 5: "TYPE_INT16", 6: "TYPE_INT32",
    7: "TYPE_INT64", 8: "TYPE_STRING", 9: "TYPE_BOOL", 10: "TYPE_FP16", 11: "TYPE_FP64", 12: "TYPE_UINT32",
    13: "TYPE_UINT64", 16: "TYPE_BF16",
}
Profile = dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]


class UnreadableModel(Exception):
    """The model file exists but is not what its backend loads (message says why, one line)."""


@dataclass(frozen=True)
class Tensor:
    """One model tensor: Triton data type name, full shape (batch included), -1 where dynamic."""

    name: str
    data_type: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class FileSignature:
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    profiles: tuple[Profile, ...] = field(default=())

    def max_profile_batch(self) -> int | None:
        """The largest batch every optimisation profile accepts (smallest profile max of dim 0)."""
        maxima = [hi[0] for profile in self.profiles for (_, _, hi) in profile.values() if hi]
        return min(maxima) if maxima else None


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise UnreadableModel("truncated protobuf")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise UnreadableModel("malformed varint")


def _fields(buf: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """(field number, value) of one message: ints for varints, memoryviews for length-delimited."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, value
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > end:
                raise UnreadableModel("truncated protobuf")
            yield number, buf[pos:pos + length]
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise UnreadableModel(f"unexpected protobuf wire type {wire}")
    if pos != end:
        raise UnreadableModel("truncated protobuf")


def _sub(value: int | memoryview) -> memoryview:
    if not isinstance(value, memoryview):
        raise UnreadableModel("malformed ONNX message")
    return value


def _value_info(buf: memoryview) -> Tensor:
    name, elem_type, dims = "", 0, []
    for number, value in _fields(buf):
        if number == 1:
            name = bytes(_sub(value)).decode("utf-8", "replace")
        elif number == 2:  # TypeProto
            for t_number, t_value in _fields(_sub(value)):
                if t_number != 1:  # tensor_type only
                    continue
                for n, v in _fields(_sub(t_value)):
                    if n == 1 and isinstance(v, int):
                        elem_type = v
                    elif n == 2:  # TensorShapeProto
                        dims = [_dim(_sub(d)) for dn, d in _fields(_sub(v)) if dn == 1]
    return Tensor(name, ONNX_TYPES.get(elem_type, f"ONNX type {elem_type}"), tuple(dims))


def _dim(buf: memoryview) -> int:
    for number, value in _fields(buf):
        if number == 1 and isinstance(value, int):
            value = value - (1 << 64) if value >= 1 << 63 else value
            return value if value > 0 else -1
    return -1  # dim_param or unknown


def _initializer_name(buf: memoryview) -> str:
    for number, value in _fields(buf):
        if number == 8:
            return bytes(_sub(value)).decode("utf-8", "replace")
    return ""


def read_onnx(path: Path) -> FileSignature:
    """Graph inputs (initializers excluded) and outputs of an ONNX file; UnreadableModel if broken."""
    try:
        with open(path, "rb") as handle:
            size = Path(path).stat().st_size
            if size == 0:
                raise UnreadableModel("the file is empty (0 bytes)")
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                view = memoryview(data)
                try:
                    return _model(view)
                finally:
                    view.release()
    except OSError as exc:
        raise UnreadableModel(f"cannot read it ({exc.__class__.__name__})") from None


def _model(view: memoryview) -> FileSignature:
    graph = None
    for number, value in _fields(view):
        if number == 7:
            graph = _sub(value)
    if graph is None:
        raise UnreadableModel("not an ONNX model (no graph)")
    inputs: list[Tensor] = []
    outputs: list[Tensor] = []
    initializers: set[str] = set()
    for number, value in _fields(graph):
        if number == 11:
            inputs.append(_value_info(_sub(value)))
        elif number == 12:
            outputs.append(_value_info(_sub(value)))
        elif number == 5:
            initializers.add(_initializer_name(_sub(value)))
    if not outputs:
        raise UnreadableModel("not an ONNX model (its graph has no outputs)")
    return FileSignature(tuple(t for t in inputs if t.name not in initializers), tuple(outputs))


def read_engine_sidecar(path: Path) -> FileSignature:
    """A TensorRT engine's signature from trgen's `model.plan.json`; UnreadableModel if it is not one."""
    from ..errors import GeneratorError
    from ..signature import (  # numpy: only for TensorRT models
        engine_signature_from_json,
        triton_type,
    )

    try:
        sig = engine_signature_from_json(path)
    except GeneratorError as exc:
        raise UnreadableModel(exc.message) from None

    def light(tensors: tuple) -> tuple[Tensor, ...]:  # type: ignore[type-arg]
        return tuple(Tensor(t.name, triton_type(t.dtype), tuple(t.shape)) for t in tensors)

    return FileSignature(light(sig.inputs), light(sig.outputs), tuple(sig.profiles))
