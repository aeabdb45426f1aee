"""Per-stage settings: calibration, TensorRT build, evaluation and benchmark blocks."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, model_validator

from .base import SpecPath, StrictModel
from .data import DataSource

CalibrationMethod = Literal["auto", "entropy", "minmax", "percentile", "mse"]
Metric = Literal["top1", "top5", "agreement", "error"]
METRICS: tuple[Metric, ...] = ("top1", "top5", "agreement", "error")


class Calibration(StrictModel):
    """How INT8 scales are chosen (int8 variants only)."""

    method: CalibrationMethod = Field(
        default="auto",
        description="auto: per tensor, the candidate threshold (entropy, mse, percentiles, minmax) that "
        "causes the least error at the model outputs; or one method for every tensor",
    )
    percentile: float = Field(default=99.99, gt=0.0, le=100.0, description="for method: percentile")
    guard: bool = Field(
        default=True,
        description="check each entropy threshold against the tensor's quantisation MSE and fall back "
        "to the MSE-optimal threshold when KL clipped a dominant spike (see docs)",
    )
    data: DataSource
    samples: PositiveInt = 512
    batch_size: PositiveInt = 32
    cache: SpecPath | None = Field(default=None, description="TensorRT calibration cache path (default: in workdir)")
    plots: bool = Field(  # issue 12: drawing the PNGs cost more than the calibration itself
        default=False,
        description="also draw the per-tensor histogram figures and overview.png into the calibration report "
        "(the markdown table and the manifest are always written)",
    )
    keep_float: list[str] = Field(default_factory=list, description="node or tensor names kept in float")
    keep_float_top_k: NonNegativeInt = Field(default=0, description="keep the k most sensitive tensors in float")
    target_drop: NonNegativeFloat | None = Field(
        default=None,
        description="accuracy budget (points of evaluation.metric); default: evaluation.tolerances.max_top1_drop. "
        "The most sensitive tensors fall back (FP16 on TensorRT) until the drop on the calibration data fits",
    )
    budget_passes: PositiveInt = Field(default=64, description="at most this many model passes for the accuracy budget")
    budget_seconds: PositiveFloat = Field(default=600.0, description="and at most this long (seconds)")


class BuildSettings(StrictModel):
    """How a variant's model file is built: TensorRT builder settings, or the onnxruntime INT8 form."""

    workspace_mib: PositiveInt | None = None
    optimization_level: int | None = Field(default=None, ge=0, le=5)
    timing_cache: SpecPath | None = None
    hardware_compatibility: Literal["none", "ampere_plus", "same_compute_capability"] = "none"
    version_compatible: bool = False
    int8_mode: Literal["explicit", "implicit"] = Field(
        default="explicit",
        description="explicit: build from the Q/DQ ONNX (TensorRT 10 and 11); implicit: TensorRT 10 "
        "only, BuilderFlag.INT8 with our calibration cache",
    )
    trt_calibrates: bool = Field(default=False, description="implicit mode: let TensorRT run its own calibrator")
    keep_io_types: bool = Field(default=True, description="fp16: keep float32 inputs/outputs")
    compute_capabilities: list[str] = Field(default_factory=list, description="e.g. ['8.0', '9.0']")
    ort_int8: Literal["unsigned", "exact", "off"] = Field(
        default="unsigned",
        description="int8 on onnxruntime targets: rewrite the TensorRT-style Q/DQ model so onnxruntime runs "
        "integer kernels. unsigned: fastest (uint8 zero point 0 after Relu/Clip; values above amax saturate "
        "later than TensorRT's clip); exact: TensorRT's numerics up to rounding; off: serve the Q/DQ model as is",
    )
    allow_slower_int8: bool = Field(  # issue 12: the build's speed check (generator/measure/speed.py)
        default=False,
        description="int8 on onnxruntime targets: pass the build's speed check even when INT8 runs slower "
        "than its FP32 sibling on this machine (the check still reports it and where the time goes)",
    )


ORT_BUILD_FIELDS = frozenset({"ort_int8", "keep_io_types", "allow_slower_int8"})
"""BuildSettings fields that apply to the onnxruntime targets; the others are TensorRT's."""


class Tolerances(StrictModel):
    """Pass/fail limits for INT8 against its FP32 reference."""

    max_top1_drop: NonNegativeFloat = Field(default=1.0, description="percentage points")
    min_top1_agreement: float = Field(default=0.98, ge=0.0, le=1.0)
    min_cosine: float | None = Field(default=None, ge=-1.0, le=1.0)
    min_sqnr_db: float | None = None


class Evaluation(StrictModel):
    """The data INT8 is judged on; labels come from the data source."""

    data: DataSource
    samples: PositiveInt | None = None
    batch_size: PositiveInt = 64
    metrics: list[Metric] = Field(default_factory=lambda: list(METRICS))
    tolerances: Tolerances = Tolerances()
    metric: Literal["top1", "exact_match_ctc", "detection_hit"] = Field(
        default="top1",
        description="the task metric the INT8 accuracy budget is measured in (top1: argmax of the first output; "
        "exact_match_ctc: greedy CTC decoding, blank 0, labels padded with -1; detection_hit: detection F1)",
    )


class Benchmark(StrictModel):
    """Load test settings, perf_analyzer style: stable measurement windows."""

    protocol: Literal["grpc", "http"] = "grpc"
    concurrency: list[PositiveInt] = Field(default_factory=lambda: [1, 4, 16])
    request_rates: list[PositiveFloat] = Field(default_factory=list)
    batch_size: PositiveInt = 1
    warmup_s: NonNegativeFloat = 1.0
    window_s: PositiveFloat = 2.0
    max_windows: PositiveInt = 8
    stability_pct: PositiveFloat = 10.0
    shared_memory: Literal["none", "system", "cuda"] = "none"

    @model_validator(mode="after")
    def _windows(self) -> "Benchmark":
        if self.max_windows < 3:
            raise ValueError("max_windows must be at least 3 (the stability rule compares the last three)")
        return self
