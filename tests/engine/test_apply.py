"""apply_plan against the recording TensorRT double: spec settings become exactly the right calls."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from generator.engine.apply import apply_plan
from generator.engine.plan import BuildPlan, builder_plan
from generator.errors import GeneratorError
from generator.signature import read_onnx_signature
from tests.spec_factory import CALIBRATION, SpecFactory, only
from tests.engine.trt_double import call_names, calls_named, make_trt

TRT10, TRT11 = "10.13.0.35", "11.0.0.9"
TINY_TENSORS = ("input", "conv", "relu", "flat", "logits")  # every float activation of the tiny model


def cache_bytes(header: str = "TRT-101300-EntropyCalibration2", tensors: tuple[str, ...] = TINY_TENSORS) -> bytes:
    """A calibration cache giving each of `tensors` amax 1.0."""
    return "\n".join([header, *(f"{name}: 3c010204" for name in tensors)]).encode() + b"\n"


def plan_of(make_spec: SpecFactory, variant: str, version: str, **kwargs: object) -> BuildPlan:
    rv = only(make_spec(variant, **kwargs))
    return builder_plan(rv, version, source=rv.model.onnx, onnx_signature=read_onnx_signature(rv.model.onnx))


def test_fp16_on_10_builds_weakly_typed_with_the_fp16_flag(make_spec: SpecFactory) -> None:
    variant = "{precision: fp16, target: tensorrt, build: {workspace_mib: 64, optimization_level: 4}}"
    plan = plan_of(make_spec, variant, TRT10)
    trt = make_trt(TRT10)
    engine = apply_plan(trt, plan, plan.network_onnx)
    assert engine  # the double's serialized description
    assert calls_named(trt, "Builder.create_network") == [(0,)]
    assert calls_named(trt, "OnnxParser.parse_from_file") == [(str(plan.network_onnx),)]
    assert calls_named(trt, "IBuilderConfig.set_flag") == [("FP16",)]
    assert calls_named(trt, "IBuilderConfig.set_memory_pool_limit") == [("WORKSPACE", 64 << 20)]
    assert calls_named(trt, "IBuilderConfig.builder_optimization_level") == [(4,)]
    assert calls_named(trt, "IOptimizationProfile.set_shape") == [("input", (1, 1, 8, 8), (8, 1, 8, 8), (8, 1, 8, 8))]
    assert "IBuilderConfig.int8_calibrator" not in call_names(trt)
    names = call_names(trt)  # configuration happens before the build, the build once
    assert names.index("IBuilderConfig.set_timing_cache") < names.index("Builder.build_serialized_network")
    assert names.count("Builder.build_serialized_network") == 1


def test_explicit_int8_on_10_creates_a_strongly_typed_network_without_precision_flags(
    make_spec: SpecFactory, tiny_onnx: Path
) -> None:
    variant = "{precision: int8, target: tensorrt, " + CALIBRATION + "}"
    plan = plan_of(make_spec, variant, TRT10)
    trt = make_trt(TRT10)
    apply_plan(trt, plan, tiny_onnx)
    strongly_typed = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert calls_named(trt, "Builder.create_network") == [(strongly_typed,)]
    assert calls_named(trt, "IBuilderConfig.set_flag") == []


@pytest.mark.parametrize("variant", [
    "{precision: fp16, target: tensorrt}",
    "{precision: int8, target: tensorrt, " + CALIBRATION + "}",
])
def test_tensorrt_11_builds_use_no_removed_api(make_spec: SpecFactory, variant: str) -> None:
    plan = plan_of(make_spec, variant, TRT11)
    trt = make_trt(TRT11)  # has no FP16/INT8 flags and no int8_calibrator: any use would raise
    network_onnx = plan.network_onnx if plan.fp16_from is None else plan.fp16_from
    assert apply_plan(trt, plan, network_onnx)
    assert calls_named(trt, "Builder.create_network") == [(0,)]
    assert calls_named(trt, "IBuilderConfig.set_flag") == []


def test_hardware_and_version_compatibility(make_spec: SpecFactory) -> None:
    variant = "{precision: fp32, target: tensorrt, build: {hardware_compatibility: ampere_plus, version_compatible: true}}"
    plan = plan_of(make_spec, variant, TRT10)
    trt = make_trt(TRT10)
    apply_plan(trt, plan, plan.network_onnx)
    assert calls_named(trt, "IBuilderConfig.set_flag") == [("VERSION_COMPATIBLE",)]
    [(level,)] = calls_named(trt, "IBuilderConfig.hardware_compatibility_level")
    assert level is trt.HardwareCompatibilityLevel.AMPERE_PLUS


def test_every_spec_profile_becomes_one_optimization_profile(make_spec: SpecFactory) -> None:
    profiles = (
        "[{input: {min: [1, 1, 8, 8], opt: [2, 1, 8, 8], max: [4, 1, 8, 8]}}, "
        "{input: {min: [4, 1, 8, 8], opt: [16, 1, 8, 8], max: [32, 1, 8, 8]}}]"
    )
    plan = plan_of(make_spec, "{precision: fp32, target: tensorrt}", TRT10, max_batch_size=4, profiles=profiles)
    trt = make_trt(TRT10)
    apply_plan(trt, plan, plan.network_onnx)
    assert calls_named(trt, "IBuilderConfig.add_optimization_profile") == [
        ({"input": ((1, 1, 8, 8), (2, 1, 8, 8), (4, 1, 8, 8))},),
        ({"input": ((4, 1, 8, 8), (16, 1, 8, 8), (32, 1, 8, 8))},),
    ]


def test_timing_cache_is_reused_across_builds(make_spec: SpecFactory) -> None:
    fp32 = plan_of(make_spec, "{precision: fp32, target: tensorrt}", TRT10)
    first, second = make_trt(TRT10), make_trt(TRT10)
    assert not fp32.timing_cache.exists()
    apply_plan(first, fp32, fp32.network_onnx)
    assert calls_named(first, "IBuilderConfig.create_timing_cache") == [(b"",)]  # nothing cached yet
    saved = fp32.timing_cache.read_bytes()
    assert saved == b"+timings"  # what the first build's cache serialized to
    fp16 = plan_of(make_spec, "{precision: fp16, target: tensorrt}", TRT10)
    assert fp16.timing_cache == fp32.timing_cache  # one cache for all variants of the spec
    apply_plan(second, fp16, fp16.network_onnx)
    assert calls_named(second, "IBuilderConfig.create_timing_cache") == [(saved,)]
    assert calls_named(second, "IBuilderConfig.set_timing_cache") == [(saved, False)]
    assert fp16.timing_cache.read_bytes() == saved + b"+timings"


def test_implicit_int8_hands_tensorrt_our_cache_and_no_batches(make_spec: SpecFactory, tmp_path: Path) -> None:
    cache = tmp_path / "calibration.cache"
    cache.write_bytes(cache_bytes())
    variant = "{precision: int8, target: tensorrt, build: {int8_mode: implicit}, " + CALIBRATION + "}"
    rv = only(make_spec(variant))
    plan = builder_plan(rv, TRT10, source=rv.model.onnx, onnx_signature=read_onnx_signature(rv.model.onnx), calibration_cache=cache)
    trt = make_trt(TRT10)
    apply_plan(trt, plan, plan.network_onnx)
    assert calls_named(trt, "IBuilderConfig.set_flag") == [("INT8",)]
    assert calls_named(trt, "calibrator.read_calibration_cache") == [(cache.read_bytes(),)]
    assert calls_named(trt, "calibrator.get_batch") == []  # TensorRT never asks for data when the cache is given
    assert calls_named(trt, "calibrator.get_batch_size") == [(1,)]
    assert calls_named(trt, "IBuilderConfig.set_calibration_profile") == [({"input": ((1, 1, 8, 8), (8, 1, 8, 8), (8, 1, 8, 8))},)]


def test_implicit_int8_with_a_missing_cache_is_a_user_error(make_spec: SpecFactory, tmp_path: Path) -> None:
    variant = "{precision: int8, target: tensorrt, build: {int8_mode: implicit}, " + CALIBRATION + "}"
    rv = only(make_spec(variant))
    plan = builder_plan(
        rv, TRT10, source=rv.model.onnx, onnx_signature=read_onnx_signature(rv.model.onnx),
        calibration_cache=tmp_path / "nowhere.cache",
    )
    with pytest.raises(GeneratorError, match="run `trgen calibrate` first"):
        apply_plan(make_trt(TRT10), plan, plan.network_onnx)


class HostMemory:
    """Device memory stand-in for the calibrator: pointers are indices, copies land in host arrays."""

    def __init__(self) -> None:
        self.buffers: list[np.ndarray | None] = []
        self.freed: list[int] = []

    def alloc(self, nbytes: int) -> int:
        self.buffers.append(None)
        return len(self.buffers) - 1

    def free(self, pointer: int) -> None:
        self.freed.append(pointer)

    def to_device(self, pointer: int, array: np.ndarray) -> None:
        self.buffers[pointer] = array.copy()


def test_when_tensorrt_calibrates_it_gets_opt_shaped_batches(make_spec: SpecFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    variant = "{precision: int8, target: tensorrt, build: {int8_mode: implicit, trt_calibrates: true}, " + CALIBRATION + "}"
    plan = plan_of(make_spec, variant, TRT10)
    memory = HostMemory()
    monkeypatch.setattr("generator.engine.calibrator.device_memory", lambda: memory)
    batches = [{"input": np.full((5, 1, 8, 8), i, np.float32)} for i in range(4)]  # 20 samples, OPT batch 8
    trt = make_trt(TRT10)
    apply_plan(trt, plan, plan.network_onnx, calibration_batches=batches)
    assert calls_named(trt, "calibrator.get_batch") == [(("input",),), (("input",),)]  # 2 full batches of 8
    last = memory.buffers[0]
    assert last is not None and last.shape == (8, 1, 8, 8) and last.dtype == np.float32
    assert np.array_equal(np.unique(last), [1.0, 2.0, 3.0])  # samples 8..15: from batches 1, 2 and 3
    assert memory.freed == [0]
    assert plan.calibration_cache is not None
    assert plan.calibration_cache.read_bytes() == b"TRT-100300-EntropyCalibration2\n"  # what TensorRT wrote


def test_parser_errors_name_the_node_and_the_message(make_spec: SpecFactory) -> None:
    plan = plan_of(make_spec, "{precision: fp32, target: tensorrt}", TRT10)
    trt = make_trt(TRT10, parser_errors=[(3, "fc", "Gemm", "Assertion failed: inputs.at(1).is_weights()")])
    with pytest.raises(GeneratorError) as info:
        apply_plan(trt, plan, plan.network_onnx)
    message = str(info.value)
    assert "node 3 (fc: Gemm): Assertion failed: inputs.at(1).is_weights()" in message
    assert message.startswith(str(plan.network_onnx)) and "\n" not in message
    assert "Builder.build_serialized_network" not in call_names(trt)


def test_a_failed_build_is_a_user_error_and_leaves_the_timing_cache_alone(make_spec: SpecFactory) -> None:
    plan = plan_of(make_spec, "{precision: fp16, target: tensorrt}", TRT10)
    # the double refuses precision flags on strongly typed networks, as TensorRT does
    broken = BuildPlan(**{**plan.__dict__, "network_flags": ("STRONGLY_TYPED",)})
    with pytest.raises(GeneratorError, match="could not build the engine"):
        apply_plan(make_trt(TRT10), broken, broken.network_onnx)
    assert not plan.timing_cache.exists()


def _implicit_plan(make_spec: SpecFactory, cache: Path) -> BuildPlan:
    variant = "{precision: int8, target: tensorrt, build: {int8_mode: implicit}, " + CALIBRATION + "}"
    rv = only(make_spec(variant))
    return builder_plan(rv, TRT10, source=rv.model.onnx, onnx_signature=read_onnx_signature(rv.model.onnx), calibration_cache=cache)


def test_the_cache_header_picks_the_calibrator_class(make_spec: SpecFactory, tmp_path: Path) -> None:
    cache = tmp_path / "calibration.cache"
    cache.write_bytes(cache_bytes("TRT-101300-MinMaxCalibration"))
    trt = make_trt(TRT10)
    apply_plan(trt, _implicit_plan(make_spec, cache), tiny_path(make_spec))
    [(calibrator,)] = calls_named(trt, "IBuilderConfig.int8_calibrator")
    assert isinstance(calibrator, trt.IInt8MinMaxCalibrator) and not isinstance(calibrator, trt.IInt8EntropyCalibrator2)


def test_a_cache_for_another_tensorrt_version_is_refused(make_spec: SpecFactory, tmp_path: Path) -> None:
    cache = tmp_path / "calibration.cache"
    cache.write_bytes(b"TRT-100300-EntropyCalibration2\ninput: 3c010204\n")  # written for 10.3.0
    with pytest.raises(GeneratorError, match=r"for TensorRT 100300 but 10.13.0.35 \(101300\).*trgen calibrate --force"):
        apply_plan(make_trt(TRT10), _implicit_plan(make_spec, cache), tiny_path(make_spec))


def tiny_path(make_spec: SpecFactory) -> Path:
    return only(make_spec("{precision: fp32}")).model.onnx


def test_a_setting_this_tensorrt_lacks_is_a_user_error(make_spec: SpecFactory) -> None:
    plan = plan_of(make_spec, "{precision: fp32, target: tensorrt, build: {hardware_compatibility: same_compute_capability}}", TRT10)
    trt = make_trt("10.8.0.43")
    del trt.HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY  # added in TensorRT 10.9
    with pytest.raises(GeneratorError, match="TensorRT 10.8.0.43 has no HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY"):
        apply_plan(trt, plan, plan.network_onnx)
