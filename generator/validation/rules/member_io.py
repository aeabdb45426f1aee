"""An ensemble member's inputs and outputs as Triton sees them once the member is loaded: its config's,
or, for an onnxruntime member that declares none (auto-complete on), the ONNX file's."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model_io import Tensor, UnreadableModel, read_onnx
from ..schema import pb2
from ..subject import ModelUnderCheck


@dataclass(frozen=True)
class Port:
    name: str
    data_type: int  # DataType enum value
    dims: list[int]  # without the batch dimension when the member batches
    optional: bool = False


@dataclass
class MemberIO:
    inputs: dict[str, Port] = field(default_factory=dict)
    outputs: dict[str, Port] = field(default_factory=dict)
    batching: bool = False


def member_io(member: ModelUnderCheck) -> MemberIO | None:
    """The member's ports, or None when they cannot be known offline (completed by a backend trgen
    does not read, or from an unreadable model file)."""
    c = member.config
    if c.input or c.output:
        return MemberIO(
            {io.name: Port(io.name, io.data_type, list(io.dims), io.optional) for io in c.input},
            {io.name: Port(io.name, io.data_type, list(io.dims)) for io in c.output},
            member.batching,
        )
    if member.strict or member.kind != "onnxruntime" or not member.loaded_versions():
        return None
    path = member.dir / str(member.loaded_versions()[-1]) / (member.model_filename or "model.onnx")
    if path.is_dir():
        path = path / "model.onnx"
    try:
        sig = read_onnx(path) if path.is_file() else None
    except UnreadableModel:
        sig = None  # reported on the member itself
    if sig is None:
        return None
    tensors = sig.inputs + sig.outputs
    batching = member.batching or (bool(tensors) and all(t.shape and t.shape[0] == -1 for t in tensors))
    types = pb2().DataType

    known = set(types.keys())

    def port(t: Tensor) -> Port:
        value = types.Value(t.data_type) if t.data_type in known else 0
        return Port(t.name, value, list(t.shape[1:] if batching else t.shape))

    return MemberIO({t.name: port(t) for t in sig.inputs}, {t.name: port(t) for t in sig.outputs}, batching)
