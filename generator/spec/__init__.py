"""Stage 0: the YAML spec, validated into typed objects (`load_spec` -> `Spec`)."""

from .data import ArraysSource, CallableSource, DataSource, ImagesSource, Preprocessing
from .loader import load_spec
from .model import ModelSpec, Precision, ResolvedVariant, ShapeRange, Spec, Target, TensorOverride, Variant
from .stages import Benchmark, BuildSettings, Calibration, Evaluation, Tolerances
from .triton import DynamicBatching, InstanceGroup, TritonSettings, merge_triton


def json_schema() -> dict:
    """The JSON Schema of a spec file, for editors (`trgen schema`)."""
    schema = Spec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "trgen spec"
    return schema


__all__ = [
    "ArraysSource", "Benchmark", "BuildSettings", "Calibration", "CallableSource", "DataSource",
    "DynamicBatching", "Evaluation", "ImagesSource", "InstanceGroup", "ModelSpec", "Precision",
    "Preprocessing", "ResolvedVariant", "ShapeRange", "Spec", "Target", "TensorOverride", "Tolerances",
    "TritonSettings", "Variant", "json_schema", "load_spec", "merge_triton",
]
