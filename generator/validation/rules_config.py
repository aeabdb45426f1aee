"""Rules Triton enforces on config.pbtxt itself (model_config_utils.cc) that the schema parser does not.

Each rule takes a `ModelUnderCheck` and yields `Finding`s; none of them reads other files.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from .locator import Key
from .problems import Finding
from .schema import pb2
from .subject import ModelUnderCheck

_CONSISTENT = {("onnxruntime_onnx", "onnxruntime"), ("tensorrt_plan", "tensorrt"), ("pytorch_libtorch", "pytorch")}


def _io(config: Any) -> Iterator[tuple[str, int, Any]]:
    for field in ("input", "output"):
        for i, io in enumerate(getattr(config, field)):
            yield field, i, io


def platform(m: ModelUnderCheck) -> Iterator[Finding]:
    """platform or backend set (or inferable), and the two consistent when both are set."""
    c = m.config
    if not m.kind:
        yield Finding(("name",), "set 'platform' or 'backend' (no model file Triton could auto-complete from)")
    if c.platform and c.backend and (c.platform, c.backend) not in _CONSISTENT:
        yield Finding(("backend",), f"backend {c.backend!r} does not match platform {c.platform!r}")


def name(m: ModelUnderCheck) -> Iterator[Finding]:
    """A `name`, when given, equals the model's folder name."""
    if m.config.name and m.config.name != m.folder:
        yield Finding(("name",), f"name {m.config.name!r} must equal the folder name {m.folder!r}")


def max_batch_size(m: ModelUnderCheck) -> Iterator[Finding]:
    """max_batch_size >= 0."""
    if m.config.max_batch_size < 0:
        yield Finding(("max_batch_size",), f"max_batch_size {m.config.max_batch_size} must be >= 0")


def io_fields(m: ModelUnderCheck) -> Iterator[Finding]:
    """Each input/output has a name, a data_type and dims; names are unique per direction."""
    seen: set[tuple[str, str]] = set()
    for field, i, io in _io(m.config):
        if not io.name:
            yield Finding((field, i), f"{field} {i} must specify 'name'")
        if io.data_type == 0:
            yield Finding((field, i), f"{field} {io.name!r} must specify 'data_type'")
        if not io.dims:
            yield Finding((field, i), f"{field} {io.name!r} must specify 'dims'")
        if (field, io.name) in seen:
            yield Finding((field, i, "name"), f"{field} name {io.name!r} is used twice")
        seen.add((field, io.name))


def dims(m: ModelUnderCheck) -> Iterator[Finding]:
    """Every dim (and reshape dim) is >= 1 or -1 (batch-dim exclusion is checked against the model file)."""
    for field, i, io in _io(m.config):
        for path, values in (((field, i, "dims"), io.dims), ((field, i, "reshape", "shape"), io.reshape.shape)):
            for d, value in enumerate(values):
                if value < 1 and value != -1:
                    yield Finding(path + (d,), f"{field} {io.name!r} dim {d} is {value}: dims must be >= 1 or -1")


def reshape(m: ModelUnderCheck) -> Iterator[Finding]:
    """`reshape` keeps the element count, chunk by chunk between -1 dims (Triton's ValidateIOShape)."""
    for field, i, io in _io(m.config):
        if not io.HasField("reshape"):
            continue
        shape, dims_ = list(io.reshape.shape), list(io.dims)
        where = (field, i, "reshape")
        if not shape and not m.batching:
            yield Finding(where, f"{field} {io.name!r}: an empty reshape needs max_batch_size > 0")
        elif not shape:
            if _count(dims_) != 1:
                yield Finding(where, f"{field} {io.name!r}: an empty reshape needs dims with one element, not {dims_}")
        elif _chunks(shape) != _chunks(dims_):
            yield Finding(
                where, f"{field} {io.name!r}: reshape {shape} does not keep the element count of dims {dims_}"
            )


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


def dynamic_batching(m: ModelUnderCheck) -> Iterator[Finding]:
    """Preferred batch sizes > 0 and <= max_batch_size; preserve_ordering excludes a DELAY policy."""
    model_config_pb2 = pb2()
    batching = m.config.dynamic_batching
    mbs = m.config.max_batch_size
    for k, size in enumerate(batching.preferred_batch_size):
        if size <= 0 or size > mbs:
            yield Finding(
                ("dynamic_batching", "preferred_batch_size", k),
                f"preferred batch size {size} must be > 0 and <= max_batch_size ({mbs})",
            )
    policy = batching.default_queue_policy
    if batching.preserve_ordering and policy.default_timeout_microseconds and (
        policy.timeout_action == model_config_pb2.ModelQueuePolicy.DELAY
    ):
        yield Finding(
            ("dynamic_batching", "default_queue_policy", "timeout_action"),
            "timeout_action DELAY cannot be used with preserve_ordering: true",
        )


def scheduler(m: ModelUnderCheck) -> Iterator[Finding]:
    """ensemble_scheduling goes with platform 'ensemble' and only with it."""
    has = m.config.HasField("ensemble_scheduling")
    if m.kind == "ensemble" and not has:
        yield Finding(("platform",), "an ensemble needs an 'ensemble_scheduling' block")
    if has and m.kind != "ensemble":
        yield Finding(("ensemble_scheduling",), "'ensemble_scheduling' needs platform: \"ensemble\"")


def tensorrt_only(m: ModelUnderCheck) -> Iterator[Finding]:
    """is_shape_tensor, instance-group profile and optimization.cuda are TensorRT-backend features."""
    if m.kind == "tensorrt":
        return
    for field, i, io in _io(m.config):
        if io.is_shape_tensor:
            message = f"is_shape_tensor is only for tensorrt_plan models ({io.name!r})"
            yield Finding((field, i, "is_shape_tensor"), message)
    for g, group in enumerate(m.config.instance_group):
        if group.profile:
            yield Finding(("instance_group", g, "profile"), "instance group 'profile' is only for tensorrt_plan models")
    if m.config.optimization.HasField("cuda"):
        yield Finding(("optimization", "cuda"), "optimization.cuda (cuda graphs) is only for tensorrt_plan models")


def instance_groups(m: ModelUnderCheck) -> Iterator[Finding]:
    """KIND_CPU / KIND_MODEL groups list no gpus; profiles are non-negative integers."""
    model_config_pb2 = pb2()
    group_kind = model_config_pb2.ModelInstanceGroup.Kind
    for g, group in enumerate(m.config.instance_group):
        if group.kind in (group_kind.Value("KIND_CPU"), group_kind.Value("KIND_MODEL")) and group.gpus:
            message = f"a {group_kind.Name(group.kind)} instance group cannot list 'gpus'"
            yield Finding(("instance_group", g, "gpus"), message)
        for p, profile in enumerate(group.profile):
            if not profile.isdigit():
                message = f"profile {profile!r} must be a non-negative integer"
                yield Finding(("instance_group", g, "profile", p), message)


def warmup(m: ModelUnderCheck) -> Iterator[Finding]:
    """Warmup batch_size >= 1 (exactly 1 without batching); warmup dims fully specified."""
    for w, sample in enumerate(m.config.model_warmup):
        if sample.batch_size < 1 or (not m.batching and sample.batch_size != 1):
            limit = ">= 1" if m.batching else "1 (max_batch_size is 0)"
            yield Finding(("model_warmup", w, "batch_size"), f"warmup {sample.name!r} batch_size must be {limit}")
        for key in sorted(sample.inputs):
            dims_ = list(sample.inputs[key].dims)
            if any(d < 1 for d in dims_):
                yield Finding(
                    ("model_warmup", w, "inputs", Key(key), "value", "dims"),
                    f"warmup {sample.name!r} input {key!r} needs concrete dims >= 1, got {dims_}",
                )


def ensemble(m: ModelUnderCheck) -> Iterator[Finding]:
    """Ensembles: no instance_group/optimization/model_warmup; complete steps; a data flow in which
    every input is used, every output is written, and no tensor is written twice or left unused."""
    if m.kind != "ensemble":
        return
    c = m.config
    for field, present in (
        ("instance_group", bool(c.instance_group)),
        ("optimization", c.HasField("optimization")),
        ("model_warmup", bool(c.model_warmup)),
    ):
        if present:
            yield Finding((field,), f"an ensemble takes no '{field}'")
    steps = list(c.ensemble_scheduling.step)
    if not steps:
        yield Finding(("ensemble_scheduling",), "an ensemble needs at least one 'step'")
    writers: dict[str, int] = {}
    for s, step in enumerate(steps):
        for field in ("model_name", "input_map", "output_map"):
            if not getattr(step, field):
                yield Finding(("ensemble_scheduling", "step", s), f"step {s} must specify '{field}'")
        for key in sorted(step.output_map):
            tensor = step.output_map[key]
            if tensor in writers:
                yield Finding(_step_path(s, "output_map", key), f"ensemble tensor {tensor!r} is written by two steps")
            writers[tensor] = s
    yield from _ensemble_flow(c, steps)


def _ensemble_flow(c: Any, steps: list[Any]) -> Iterator[Finding]:
    inputs = [io.name for io in c.input]
    ready = set(inputs)
    changed = True
    while changed:  # a step runs once all its inputs are ready; its outputs then are
        changed = False
        for step in steps:
            if set(step.input_map.values()) <= ready and not set(step.output_map.values()) <= ready:
                ready |= set(step.output_map.values())
                changed = True
    consumed = {t for step in steps for t in step.input_map.values()}
    outputs = {io.name for io in c.output}
    for i, name_ in enumerate(inputs):
        if name_ not in consumed:
            yield Finding(("input", i, "name"), f"ensemble input {name_!r} is not used by any step")
    for i, io in enumerate(c.output):
        if io.name not in ready:
            message = f"ensemble output {io.name!r} is never written (no step produces it from the inputs)"
            yield Finding(("output", i, "name"), message)
    for s, step in enumerate(steps):
        for key in sorted(step.input_map):
            if step.input_map[key] not in ready:
                message = f"step {s} reads {step.input_map[key]!r}, which nothing writes"
                yield Finding(_step_path(s, "input_map", key), message)
        for key in sorted(step.output_map):
            tensor = step.output_map[key]
            if tensor not in consumed and tensor not in outputs:
                yield Finding(_step_path(s, "output_map", key), f"ensemble tensor {tensor!r} is unused")


def _step_path(s: int, field: str, key: str) -> tuple[Any, ...]:
    return ("ensemble_scheduling", "step", s, field, Key(key))


RULES = {
    "platform": platform,
    "name": name,
    "max-batch-size": max_batch_size,
    "io-fields": io_fields,
    "dims": dims,
    "reshape": reshape,
    "dynamic-batching": dynamic_batching,
    "scheduler": scheduler,
    "tensorrt-only": tensorrt_only,
    "instance-groups": instance_groups,
    "warmup": warmup,
    "ensemble": ensemble,
}
