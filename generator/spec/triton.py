"""Triton settings: defaults at the top of the spec, overridable per model and per variant.

Every field is optional (None means "not set at this layer"); `merge_triton` applies the layers
top-level -> model -> variant field by field, and the renderer fills what is still unset with
target-dependent defaults (KIND_CPU for python-onnxruntime, KIND_GPU for TensorRT, ...).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from .base import Name, StrictModel

InstanceKind = Literal["KIND_CPU", "KIND_GPU", "KIND_AUTO"]


class InstanceGroup(StrictModel):
    """One `instance_group` entry. `profiles` (TensorRT only) selects optimisation profiles by index."""

    kind: InstanceKind = "KIND_AUTO"
    count: PositiveInt = 1
    gpus: list[NonNegativeInt] = Field(default_factory=list)
    profiles: list[str] = Field(default_factory=list)


class QueuePolicy(StrictModel):
    """Triton's `default_queue_policy` for the dynamic batcher."""

    timeout_action: Literal["REJECT", "DELAY"] = "REJECT"
    default_timeout_us: NonNegativeInt = 0
    allow_timeout_override: bool = False
    max_queue_size: NonNegativeInt = 0


class DynamicBatching(StrictModel):
    """Dynamic batcher; `enabled: false` renders no scheduler block."""

    enabled: bool = True
    preferred_batch_sizes: list[PositiveInt] = Field(default_factory=list)
    max_queue_delay_us: NonNegativeInt = 0
    preserve_ordering: bool = False
    queue_policy: QueuePolicy | None = None


class WarmupSample(StrictModel):
    """A `model_warmup` entry: every input filled with zeros or random data at `batch_size`."""

    name: Name = "warmup"
    batch_size: PositiveInt = 1
    data: Literal["zero", "random"] = "zero"
    count: PositiveInt = 1


class VersionPolicy(StrictModel):
    """Exactly one of latest / all / specific, as in Triton's `version_policy`."""

    latest: PositiveInt | None = None
    all: bool | None = None
    specific: list[PositiveInt] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "VersionPolicy":
        chosen = [k for k in ("latest", "all", "specific") if getattr(self, k) not in (None, False)]
        if len(chosen) != 1:
            raise ValueError("set exactly one of 'latest', 'all: true' or 'specific'")
        return self


class Optimization(StrictModel):
    """`optimization` block; `cuda_graphs` applies to TensorRT models only."""

    cuda_graphs: bool = False
    input_pinned_memory: bool | None = None
    output_pinned_memory: bool | None = None


class TritonSettings(StrictModel):
    """Serving settings. Unset (None) fields inherit from the layer above or the target's default."""

    instance_groups: list[InstanceGroup] | None = None
    dynamic_batching: DynamicBatching | None = None
    warmup: list[WarmupSample] | None = None
    version_policy: VersionPolicy | None = None
    optimization: Optimization | None = None
    parameters: dict[str, str | int | float | bool] | None = None
    response_cache: bool | None = None


def merge_triton(*layers: TritonSettings | None) -> TritonSettings:
    """Later layers override earlier ones, field by field (a set field replaces the whole field)."""
    merged: dict[str, object] = {}
    for layer in layers:
        if layer is None:
            continue
        for name in layer.model_fields_set:
            value = getattr(layer, name)
            if value is not None:
                merged[name] = value
    return TritonSettings(**merged)  # type: ignore[arg-type]
