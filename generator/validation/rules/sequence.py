"""Sequence batching (core `GetBooleanSequenceControlProperties`, `GetTypedSequenceControlProperties`,
and the strategy checks of `ValidateModelConfig`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..problems import Finding
from ..schema import enum_name, pb2
from ..subject import ModelUnderCheck

_SB = "sequence_batching"
_LISTS = ("int32_false_true", "fp32_false_true", "bool_false_true")
_CORRID_TYPES = ("TYPE_UINT64", "TYPE_INT64", "TYPE_UINT32", "TYPE_INT32", "TYPE_STRING")


def control_names(m: ModelUnderCheck) -> Iterator[Finding]:
    """Every control tensor has a name, and a tensor controls one kind only (one control_input entry)."""
    seen: set[str] = set()
    for c, control_input in enumerate(m.config.sequence_batching.control_input):
        where = (_SB, "control_input", c)
        if not control_input.name:
            yield Finding(where, f"sequence batching control tensor must have a name for {m.name}")
        elif control_input.name in seen:
            yield Finding(where + ("name",), f"sequence batching control tensor '{control_input.name}' is specified "
                          f"for multiple control kinds for {m.name}")
        seen.add(control_input.name)


def controls(m: ModelUnderCheck) -> Iterator[Finding]:
    """START/END/READY: once each, exactly one two-entry *_false_true list; CORRID: no list, an id data type."""
    schema = pb2()
    kinds = schema.ModelSequenceBatching.Control.Kind
    corrid = kinds.Value("CONTROL_SEQUENCE_CORRID")
    seen: dict[int, int] = {}
    for c, control_input in enumerate(m.config.sequence_batching.control_input):
        for k, control in enumerate(control_input.control):
            where = (_SB, "control_input", c, "control", k)
            kind = enum_name(kinds, control.kind)
            if control.kind not in kinds.values():
                yield Finding(where + ("kind",), f"unknown sequence batching control kind '{kind}' for {m.name}")
                continue
            if control.kind in seen:
                yield Finding(where + ("kind",), f"sequence batching specifies multiple {kind} tensors for {m.name}")
            seen[control.kind] = c
            given = [name for name in _LISTS if len(getattr(control, name))]
            if control.kind == corrid:
                yield from _corrid(m, where, control, given, kind)
            else:
                yield from _boolean(m, where, control, given, kind)


def _boolean(m: ModelUnderCheck, where: tuple[Any, ...], control: Any, given: list[str], kind: str) -> Iterator[Finding]:
    if not given:
        yield Finding(where, "sequence batching must specify either 'int32_false_true', 'fp32_false_true' or "
                      f"'bool_false_true' for {kind} for {m.name}")
    elif len(given) > 1:
        yield Finding(where, "sequence batching specifies more than one from 'int32_false_true', 'fp32_false_true' "
                      f"and 'bool_false_true' for {kind} for {m.name}")
    elif len(getattr(control, given[0])) != 2:
        yield Finding(where + (given[0],), f"sequence batching control '{given[0]}' must have exactly 2 entries for "
                      f"{kind} for {m.name}")


def _corrid(m: ModelUnderCheck, where: tuple[Any, ...], control: Any, given: list[str], kind: str) -> Iterator[Finding]:
    if given:
        yield Finding(where + (given[0],), "sequence batching must not specify either 'int32_false_true', "
                      f"'fp32_false_true' or 'bool_false_true' for {kind} for {m.name}")
    type_name = enum_name(pb2().DataType, control.data_type)
    if type_name not in _CORRID_TYPES:
        yield Finding(where + ("data_type",), f"unexpected data type for control {kind} for {m.name}. Allowed data "
                      "types are TYPE_UINT64, TYPE_INT64, TYPE_UINT32, TYPE_INT32 and TYPE_STRING")


def strategy(m: ModelUnderCheck) -> Iterator[Finding]:
    """oldest: preferred batch sizes in (0, max_batch_size]; direct: minimum_slot_utilization in [0, 1]."""
    batcher = m.config.sequence_batching
    mbs = m.config.max_batch_size
    if batcher.HasField("oldest"):
        for k, size in enumerate(batcher.oldest.preferred_batch_size):
            where = (_SB, "oldest", "preferred_batch_size", k)
            if size <= 0:
                yield Finding(where, f"sequence batching preferred batch size must be positive for {m.name}")
            elif size > mbs:
                yield Finding(where, f"sequence batching preferred batch size must be <= max batch size for {m.name} "
                              f"({size} > max_batch_size {mbs})")
    if batcher.HasField("direct"):
        value = batcher.direct.minimum_slot_utilization
        if value < 0.0 or value > 1.0:
            yield Finding((_SB, "direct", "minimum_slot_utilization"), "sequence batching minimum slot utilization "
                          f"must be in range (0.0, 1.0] for {m.name} (got {value:g})")


RULES = {
    "sequence-control-names": control_names,
    "sequence-controls": controls,
    "sequence-strategy": strategy,
}
