"""The spec's top level: models, their variants, and the whole file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from .base import ExistingPath, Name, SpecPath, StrictModel
from .stages import ORT_BUILD_FIELDS, Benchmark, BuildSettings, Calibration, Evaluation
from .triton import TritonSettings, merge_triton

Precision = Literal["fp32", "fp16", "int8"]
Target = Literal["tensorrt", "onnxruntime", "python-onnxruntime"]
DType = Literal["fp32", "fp16", "bf16", "int8", "uint8", "int16", "int32", "int64", "bool", "string"]

CPU_TARGETS: tuple[Target, ...] = ("python-onnxruntime", "onnxruntime")  # served by onnxruntime
_TARGET_INFIX = {"python-onnxruntime": "", "onnxruntime": "ort_", "tensorrt": "trt_"}


class TensorOverride(StrictModel):
    """Overrides what is read from the ONNX model for one input or output."""

    name: str
    dtype: DType | None = None
    dims: list[int] | None = Field(default=None, description="without the batch dimension; -1 = dynamic")


class ShapeRange(StrictModel):
    """One input's shapes in an optimisation profile, full shapes including the batch dimension."""

    min: list[PositiveInt]
    opt: list[PositiveInt]
    max: list[PositiveInt]

    @model_validator(mode="after")
    def _ordered(self) -> "ShapeRange":
        if not (len(self.min) == len(self.opt) == len(self.max)):
            raise ValueError("min, opt and max must have the same rank")
        if any(not (a <= b <= c) for a, b, c in zip(self.min, self.opt, self.max)):
            raise ValueError("each dimension needs min <= opt <= max")
        return self


class Variant(StrictModel):
    """One deployable form of a model: a precision on a target."""

    name: Name | None = Field(default=None, description="default: <model>_<precision>, <model>_trt_<precision>, ...")
    precision: Precision
    target: Target = "python-onnxruntime"
    calibration: Calibration | None = None
    build: BuildSettings | None = None
    triton: TritonSettings | None = None
    version: PositiveInt = 1

    @model_validator(mode="after")
    def _consistent(self) -> "Variant":
        if self.precision == "int8" and self.calibration is None:
            raise ValueError("int8 variants need a 'calibration' block (method, data, ...)")
        if self.precision != "int8" and self.calibration is not None:
            raise ValueError(f"'calibration' only applies to int8 variants, not {self.precision}")
        if self.build is not None:
            written = self.build.model_fields_set
            misplaced = written - ORT_BUILD_FIELDS if self.target != "tensorrt" else written & {"ort_int8"}
            if misplaced:
                raise ValueError(f"build.{sorted(misplaced)[0]} does not apply to target: {self.target}")
        return self


class ModelSpec(StrictModel):
    """One FP32 ONNX model and the variants to deploy."""

    name: Name
    onnx: ExistingPath
    labels: ExistingPath | None = None
    max_batch_size: NonNegativeInt = 0
    inputs: list[TensorOverride] = Field(default_factory=list)
    outputs: list[TensorOverride] = Field(default_factory=list)
    profiles: list[dict[str, ShapeRange]] = Field(
        default_factory=list, description="TensorRT optimisation profiles: input name -> min/opt/max"
    )
    variants: list[Variant] = Field(min_length=1)
    triton: TritonSettings | None = None
    evaluation: Evaluation | None = None
    benchmark: Benchmark | None = None

    def variant_name(self, variant: Variant) -> str:
        """The predictable folder name of a variant in the model repository."""
        return variant.name or f"{self.name}_{_TARGET_INFIX[variant.target]}{variant.precision}"


class Spec(StrictModel):
    """A whole spec file. Relative paths resolve against the file's folder."""

    version: Literal[1] = 1
    trust_code: bool = Field(
        default=False, description="let `callable` data sources import and run their code (as --trust-code)"
    )
    workdir: SpecPath = Field(default=Path("build"), validate_default=True, description="calibration results, engines, reports")
    repository: SpecPath = Field(
        default=Path("model_repository"), validate_default=True, description="the rendered Triton repository"
    )
    triton: TritonSettings | None = None
    benchmark: Benchmark = Benchmark()
    models: list[ModelSpec] = Field(min_length=1)

    def resolved(self) -> list["ResolvedVariant"]:
        """Every variant with its repository name and its merged Triton settings, in spec order."""
        out = []
        for model in self.models:
            for variant in model.variants:
                out.append(
                    ResolvedVariant(
                        model=model,
                        variant=variant,
                        name=model.variant_name(variant),
                        triton=merge_triton(self.triton, model.triton, variant.triton),
                        benchmark=model.benchmark or self.benchmark,
                        workdir=self.workdir / model.variant_name(variant),
                    )
                )
        return out

    def model(self, name: str) -> ModelSpec:
        for model in self.models:
            if model.name == name:
                return model
        raise KeyError(name)


@dataclass(frozen=True)
class ResolvedVariant:
    """What later stages need about one variant, with every layer of settings applied."""

    model: ModelSpec
    variant: Variant
    name: str
    triton: TritonSettings
    benchmark: Benchmark
    workdir: Path

    @property
    def precision(self) -> str:
        return self.variant.precision

    @property
    def target(self) -> str:
        return self.variant.target

    @property
    def build(self) -> BuildSettings:
        """The variant's build settings (the defaults when the spec has no build block)."""
        return self.variant.build or BuildSettings()
