"""One TensorRT build, start to finish, in whatever process runs it: `build_engine(trt, plan) -> BuildOutput`.

Everything that touches TensorRT or the GPU for a build is here (parse, configure, build, read the
engine back, inspect its layers), so `child.build_isolated` can run it in a child process where a
TensorRT crash cannot take trgen down; the parent only writes the files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..signature import Signature
from .apply import run_build
from .inspection import deserialize, engine_signature
from .layers import (
    PrecisionReport, check_precisions, engine_information, expected_int8_nodes, onnx_layer_names, parse_layers,
)
from .plan import BuildPlan


@dataclass(frozen=True)
class BuildOutput:
    """The plan bytes, its signature read back from the engine, and what each layer runs in."""

    engine: bytes
    signature: Signature
    report: PrecisionReport
    information: dict[str, Any]  # the engine inspector's JSON, as TensorRT printed it


def build_engine(
    trt: Any, plan: BuildPlan, *, calibration_batches: Iterable[Mapping[str, np.ndarray]] | None = None
) -> BuildOutput:
    """Build `plan` with `trt`, load the engine back and judge its layer precisions."""
    result = run_build(trt, plan, plan.network_onnx, calibration_batches=calibration_batches)
    version_compatible = "VERSION_COMPATIBLE" in plan.builder_flags
    engine = deserialize(trt, result.engine, where=plan.plan_file, version_compatible=version_compatible)
    signature = engine_signature(trt, engine)
    information = engine_information(trt, engine, signature)
    expected = expected_int8_nodes(plan.network_onnx, explicit=plan.calibrator == "none") if plan.precision == "int8" else ()
    report = check_precisions(parse_layers(information), expected, result.unscaled, onnx_layer_names(plan.network_onnx))
    return BuildOutput(result.engine, signature, report, information)
