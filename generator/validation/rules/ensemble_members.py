"""An ensemble against the models it runs (core `ensemble_utils.cc` `ValidateEnsembleConfig` and the
repository manager's dependency checks): members exist with the version asked for, no circular
dependency, batch sizes fit, maps name real member tensors, every required member input is fed,
producers and consumers agree on data type and shape, and no step mixes decoupled branches.

A member whose config declares no inputs/outputs (Triton completes them from its model file) is
checked for what it declares only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..backends import ENSEMBLE
from ..problems import Finding
from ..schema import enum_name, pb2
from ..subject import ModelUnderCheck
from .ensemble import step_path
from .member_io import MemberIO, Port, member_io


@dataclass
class _Node:
    """An ensemble tensor: data type and dims of whoever first declared it (Triton's TensorNode)."""

    model: str
    data_type: int
    dims: list[int]
    batching: bool

    @property
    def full(self) -> list[int]:
        return ([-1] if self.batching else []) + self.dims


def _steps(m: ModelUnderCheck) -> list[Any]:
    if m.kind != ENSEMBLE:
        return []
    return list(m.config.ensemble_scheduling.step)


def members(m: ModelUnderCheck) -> Iterator[Finding]:
    """Every step's model is in the repository, with the version the step asks for."""
    for s, step in enumerate(_steps(m)):
        if not step.model_name:
            continue
        where = step_path(s, "model_name")
        if step.model_name not in m.repo:
            yield Finding(where, f"ensemble {m.name} contains models that are not available: {step.model_name} "
                          "(no such folder in the repository)")
            continue
        member = m.member(step.model_name)
        if member is None:
            continue
        loaded, version = member.loaded_versions(), step.model_version
        if not loaded:
            yield Finding(where, f"ensemble '{m.name}' depends on '{step.model_name}' which has no loaded version")
        elif version != -1 and version not in loaded:
            hint = " (model_version is not set: write -1 for the latest version)" if version == 0 else ""
            yield Finding(step_path(s, "model_version") if version else where, f"ensemble '{m.name}' depends on "
                          f"'{step.model_name}' whose required version {version} is not loaded (loaded: "
                          f"{', '.join(map(str, loaded))}){hint}")


def cycles(m: ModelUnderCheck) -> Iterator[Finding]:
    """No ensemble reaches itself through its members (nested ensembles included)."""
    for s, step in enumerate(_steps(m)):
        path = _cycle(m, step.model_name, [m.folder])
        if path:
            yield Finding(step_path(s, "model_name"), f"circular dependency between ensembles: {m.folder} -> ... -> "
                          f"{path[-1]} -> {m.folder} (via {' -> '.join(path + [m.folder])})")


def _cycle(m: ModelUnderCheck, name: str, chain: list[str]) -> list[str]:
    member = m.member(name)
    if member is None or member.kind != ENSEMBLE:
        return []
    if name == chain[0]:
        return chain
    if name in chain:
        return []  # a cycle not through `m`: reported on its own ensembles
    for step in _steps(member):
        found = _cycle(m, step.model_name, chain + [name])
        if found:
            return found
    return []


def batch_sizes(m: ModelUnderCheck) -> Iterator[Finding]:
    """A batching member allows at least the ensemble's max_batch_size."""
    for s, step in enumerate(_steps(m)):
        member = m.member(step.model_name)
        if member is None:
            continue
        mbs, own = member.config.max_batch_size, m.config.max_batch_size
        if mbs != 0 and mbs < own:
            yield Finding(step_path(s, "model_name"), f"ensemble {m.name} allows maximum batch size {own}, but it "
                          f"contains model {step.model_name} which only allows maximum batch size to be {mbs}")


def mapping(m: ModelUnderCheck) -> Iterator[Finding]:
    """input_map/output_map keys are member inputs/outputs, every required member input is mapped, and each
    ensemble tensor has one data type and a compatible shape across producer and consumers."""
    if not _steps(m):
        return
    tensors: dict[str, _Node] = {}
    for io in list(m.config.input) + list(m.config.output):
        dims = list(io.reshape.shape) if io.HasField("reshape") else list(io.dims)
        tensors.setdefault(io.name, _Node(m.name, io.data_type, dims, m.batching))
    for s, step in enumerate(_steps(m)):
        member = m.member(step.model_name)
        ports = member_io(member) if member is not None else None
        if member is None or ports is None:
            continue  # absent (reported above), or completed by a backend from a file trgen cannot read
        yield from _step(m, s, step, member, ports, tensors)


def _step(
    m: ModelUnderCheck, s: int, step: Any, member: ModelUnderCheck, ports: MemberIO, tensors: dict[str, _Node]
) -> Iterator[Finding]:
    prefix, model = f"in ensemble {m.name}, ", step.model_name
    inputs, outputs = ports.inputs, ports.outputs
    for key in sorted(step.input_map):
        if key not in inputs:
            yield Finding(step_path(s, "input_map", key), f"{prefix}ensemble tensor {step.input_map[key]} is mapping "
                          f"to non-existing input {key} in model {model} (it has: {', '.join(inputs) or 'none'})")
    for name, io in inputs.items():
        if name not in step.input_map:
            if not io.optional:
                yield Finding(step_path(s, "model_name"), f"{prefix}input {name} in model {model} is not mapped to "
                              "any ensemble tensors")
            continue
        yield from _consistent(m, s, "input_map", name, step.input_map[name], member, io, tensors, ports.batching)
    for key in sorted(step.output_map):
        if key not in outputs:
            yield Finding(step_path(s, "output_map", key), f"{prefix}ensemble tensor {step.output_map[key]} is mapped "
                          f"from non-existing output {key} in model {model} (it has: {', '.join(outputs) or 'none'})")
            continue
        yield from _consistent(m, s, "output_map", key, step.output_map[key], member, outputs[key], tensors,
                               ports.batching)


def _consistent(m: ModelUnderCheck, s: int, field: str, key: str, tensor: str, member: ModelUnderCheck, io: Port,
                tensors: dict[str, _Node], batching: bool) -> Iterator[Finding]:
    node = _Node(member.folder, io.data_type, list(io.dims), batching)
    seen = tensors.setdefault(tensor, node)
    if seen is node:
        return
    prefix = f"in ensemble {m.name}, ensemble tensor {tensor}: "
    if seen.data_type != node.data_type:
        types = pb2().DataType
        yield Finding(step_path(s, field, key), f"{prefix}inconsistent data type: {enum_name(types, seen.data_type)} is "
                      f"inferred from model {seen.model} while {enum_name(types, node.data_type)} is inferred from "
                      f"model {node.model}")
    elif not _same(seen.dims, node.dims) and not _same(seen.full, node.full):
        yield Finding(step_path(s, field, key), f"{prefix}inconsistent shape: {_text(seen.full)} is inferred from model "
                      f"{seen.model} while {_text(node.full)} is inferred from model {node.model}")


def _same(a: list[int], b: list[int]) -> bool:
    """core CompareDimsWithWildcard: same rank, and each dim equal or -1 on either side."""
    return len(a) == len(b) and all(x == y or -1 in (x, y) for x, y in zip(a, b))


def _text(dims: list[int]) -> str:
    return "[" + ",".join(str(d) for d in dims) + "]"


def decoupled(m: ModelUnderCheck) -> Iterator[Finding]:
    """A step's inputs all come from the same decoupled branch (responses of one decoupled model)."""
    steps = _steps(m)
    if not any((mm := m.member(st.model_name)) is not None and mm.config.model_transaction_policy.decoupled
               for st in steps):
        return
    label: dict[str, int] = {io.name: 0 for io in m.config.input}
    branches, done, changed = 0, set(), True
    while changed:
        changed = False
        for s, step in enumerate(steps):
            sources = list(step.input_map.values())
            if s in done or not all(t in label for t in sources):
                continue
            done.add(s)
            changed = True
            seen = {label[t] for t in sources}
            if len(seen) > 1:
                yield Finding(step_path(s, "model_name"), f"in ensemble {m.name}, step of model '{step.model_name}' "
                              "receives inputs originated from different decoupled models")
            member = m.member(step.model_name)
            if member is not None and member.config.model_transaction_policy.decoupled:
                branches += 1
                own = branches
            else:
                own = min(seen) if seen else 0
            for t in step.output_map.values():
                label.setdefault(t, own)


RULES = {
    "ensemble-members": members,
    "ensemble-cycles": cycles,
    "ensemble-batch-size": batch_sizes,
    "ensemble-mapping": mapping,
    "ensemble-decoupled": decoupled,
}
