"""builder_plan: spec settings + TensorRT version -> the TensorRT build, decided without TensorRT."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.engine.plan import BuildPlan, InputShapes, builder_plan
from generator.engine.reproduce import trtexec_command
from generator.errors import GeneratorError
from generator.signature import Signature, TensorSig, read_onnx_signature
from generator.spec import load_spec
from tests.spec_factory import CALIBRATION, SpecFactory, only
from tests.conftest import EXAMPLE_DIR

TRT10, TRT11 = "10.13.0.35", "11.0.0.9"


def plan_for(make_spec: SpecFactory, variant: str, version: str = TRT10, **kwargs: object) -> BuildPlan:
    spec_kwargs = {k: kwargs.pop(k) for k in ("max_batch_size", "profiles") if k in kwargs}
    rv = only(make_spec(variant, **spec_kwargs))
    signature = kwargs.pop("signature", None) or read_onnx_signature(rv.model.onnx)
    return builder_plan(rv, version, source=rv.model.onnx, onnx_signature=signature, **kwargs)  # type: ignore[arg-type]


def test_fp32_plan_derives_the_batch_profile_from_max_batch_size(make_spec: SpecFactory) -> None:
    plan = plan_for(make_spec, "{precision: fp32, target: tensorrt}", max_batch_size=16)
    assert plan.builder_flags == () and plan.network_flags == ()
    assert plan.profiles == ((InputShapes("input", (1, 1, 8, 8), (16, 1, 8, 8), (16, 1, 8, 8)),),)
    assert plan.network_onnx.name == "tiny.onnx" and plan.fp16_from is None
    assert plan.plan_file.name == "model.plan" and plan.plan_file.parent.name == "tiny_trt_fp32"
    # shared by the spec's variants; unknown GPU here (see test_timing_caches_are_per_gpu_and_tensorrt)
    assert plan.timing_cache == plan.plan_file.parent.parent / "timing-unknown-gpu-smunknown-trt10.13.0.cache"


def test_fp16_on_10_sets_the_flag_and_on_11_builds_from_an_fp16_onnx(make_spec: SpecFactory) -> None:
    ten = plan_for(make_spec, "{precision: fp16, target: tensorrt}")
    assert ten.builder_flags == ("FP16",) and ten.network_onnx.name == "tiny.onnx"
    eleven = plan_for(make_spec, "{precision: fp16, target: tensorrt}", TRT11)
    assert eleven.builder_flags == () and eleven.network_flags == ()
    assert eleven.network_onnx.name == "model_fp16.onnx" and eleven.fp16_from is not None
    assert eleven.fp16_from.name == "tiny.onnx" and eleven.keep_io_types


def test_fp16_without_keep_io_types_on_10_parses_the_fp16_copy(make_spec: SpecFactory) -> None:
    plan = plan_for(make_spec, "{precision: fp16, target: tensorrt, build: {keep_io_types: false}}")
    assert plan.builder_flags == ("FP16",) and plan.network_onnx.name == "model_fp16.onnx" and not plan.keep_io_types


def test_explicit_int8_is_strongly_typed_qdq_on_both_versions(make_spec: SpecFactory, tmp_path: Path) -> None:
    qdq = tmp_path / "qdq.onnx"
    variant = "{precision: int8, target: tensorrt, " + CALIBRATION + "}"
    rv = only(make_spec(variant))
    signature = read_onnx_signature(rv.model.onnx)
    ten = builder_plan(rv, TRT10, source=qdq, onnx_signature=signature)
    eleven = builder_plan(rv, TRT11, source=qdq, onnx_signature=signature)
    assert ten.network_flags == ("STRONGLY_TYPED",) and ten.builder_flags == () and ten.network_onnx == qdq
    assert eleven.network_flags == () and eleven.builder_flags == () and eleven.network_onnx == qdq
    assert ten.calibrator == eleven.calibrator == "none"


def test_implicit_int8_on_10_hands_tensorrt_our_cache(make_spec: SpecFactory, tmp_path: Path) -> None:
    variant = "{precision: int8, target: tensorrt, build: {int8_mode: implicit}, " + CALIBRATION + "}"
    plan = plan_for(make_spec, variant, calibration_cache=tmp_path / "calibration.cache")
    assert plan.builder_flags == ("INT8",) and plan.network_flags == ()
    assert plan.calibrator == "cache" and plan.calibration_cache == tmp_path / "calibration.cache"
    assert plan.network_onnx.name == "tiny.onnx"  # the FP32 model: TensorRT inserts the quantization


def test_implicit_int8_where_tensorrt_calibrates_itself(make_spec: SpecFactory) -> None:
    variant = "{precision: int8, target: tensorrt, build: {int8_mode: implicit, trt_calibrates: true}, " + CALIBRATION + "}"
    plan = plan_for(make_spec, variant)
    assert plan.calibrator == "tensorrt" and plan.calibration_cache is not None
    assert plan.calibration_cache.name == "tensorrt_calibration.cache"


def test_implicit_int8_on_11_names_the_alternative(make_spec: SpecFactory, tmp_path: Path) -> None:
    variant = "{precision: int8, target: tensorrt, build: {int8_mode: implicit}, " + CALIBRATION + "}"
    with pytest.raises(GeneratorError, match=r"removed in TensorRT 11.*int8_mode: explicit"):
        plan_for(make_spec, variant, TRT11, calibration_cache=tmp_path / "c.cache")


def test_implicit_int8_without_a_cache_says_to_calibrate(make_spec: SpecFactory) -> None:
    variant = "{precision: int8, target: tensorrt, build: {int8_mode: implicit}, " + CALIBRATION + "}"
    with pytest.raises(GeneratorError, match="trgen calibrate"):
        plan_for(make_spec, variant)


def test_trt_calibrates_outside_implicit_int8_is_refused(make_spec: SpecFactory) -> None:
    with pytest.raises(GeneratorError, match="int8_mode: implicit"):
        plan_for(make_spec, "{precision: fp16, target: tensorrt, build: {trt_calibrates: true}}")


def test_builder_settings_become_plan_entries(make_spec: SpecFactory, tmp_path: Path) -> None:
    variant = (
        "{precision: fp32, target: tensorrt, build: {workspace_mib: 512, optimization_level: 5, "
        f"timing_cache: {tmp_path / 'shared.cache'}, hardware_compatibility: ampere_plus, version_compatible: true}}}}"
    )
    plan = plan_for(make_spec, variant)
    assert plan.memory_pools == (("WORKSPACE", 512 * 1024 * 1024),)
    assert plan.optimization_level == 5 and plan.hardware_compatibility == "AMPERE_PLUS"
    assert plan.builder_flags == ("VERSION_COMPATIBLE",) and plan.timing_cache == tmp_path / "shared.cache"


def test_spec_profiles_are_used_in_order(make_spec: SpecFactory) -> None:
    profiles = (
        "[{input: {min: [1, 1, 8, 8], opt: [4, 1, 8, 8], max: [8, 1, 8, 8]}}, "
        "{input: {min: [8, 1, 8, 8], opt: [32, 1, 8, 8], max: [64, 1, 8, 8]}}]"
    )
    plan = plan_for(make_spec, "{precision: fp32, target: tensorrt}", max_batch_size=8, profiles=profiles)
    assert plan.profiles == (
        (InputShapes("input", (1, 1, 8, 8), (4, 1, 8, 8), (8, 1, 8, 8)),),
        (InputShapes("input", (8, 1, 8, 8), (32, 1, 8, 8), (64, 1, 8, 8)),),
    )


@pytest.mark.parametrize(
    ("profiles", "message"),
    [
        ("[{images: {min: [1, 1, 8, 8], opt: [1, 1, 8, 8], max: [8, 1, 8, 8]}}]", "'images' is not a model input"),
        ("[{input: {min: [1, 8, 8], opt: [1, 8, 8], max: [8, 8, 8]}}]", "rank 3"),
        ("[{input: {min: [1, 1, 4, 8], opt: [1, 1, 8, 8], max: [8, 1, 8, 8]}}]", "dimension 2 is fixed at 8"),
    ],
)
def test_profiles_that_do_not_fit_the_model_are_refused(make_spec: SpecFactory, profiles: str, message: str) -> None:
    with pytest.raises(GeneratorError, match=message):
        plan_for(make_spec, "{precision: fp32, target: tensorrt}", profiles=profiles)


def test_dynamic_batch_without_max_batch_size_or_profiles_is_refused(make_spec: SpecFactory) -> None:
    with pytest.raises(GeneratorError, match="set max_batch_size or 'profiles'"):
        plan_for(make_spec, "{precision: fp32, target: tensorrt}", max_batch_size=0)


def test_other_dynamic_dimensions_need_profiles(make_spec: SpecFactory) -> None:
    signature = Signature(inputs=(TensorSig("input", "fp32", (-1, 1, -1, -1)),), outputs=())
    with pytest.raises(GeneratorError, match="besides the batch"):
        plan_for(make_spec, "{precision: fp32, target: tensorrt}", signature=signature)


def test_static_models_need_no_profile(make_spec: SpecFactory) -> None:
    signature = Signature(inputs=(TensorSig("input", "fp32", (1, 1, 8, 8)),), outputs=())
    assert plan_for(make_spec, "{precision: fp32, target: tensorrt}", signature=signature).profiles == ()


def test_compute_capabilities_name_one_plan_per_gpu(make_spec: SpecFactory) -> None:
    variant = "{precision: fp32, target: tensorrt, build: {compute_capabilities: ['8.0', '9.0']}}"
    assert plan_for(make_spec, variant, compute_capability="9.0").plan_file.name == "model_sm90.plan"
    with pytest.raises(GeneratorError, match="compute capability 8.6"):
        plan_for(make_spec, variant, compute_capability="8.6")


def test_plan_is_json_ready(make_spec: SpecFactory) -> None:
    data = plan_for(make_spec, "{precision: fp16, target: tensorrt}", TRT11).to_dict()
    assert data["network_onnx"].endswith("model_fp16.onnx")
    assert data["profiles"] == [[{"name": "input", "min": [1, 1, 8, 8], "opt": [8, 1, 8, 8], "max": [8, 1, 8, 8]}]]


def test_trtexec_command_says_what_the_plan_says(make_spec: SpecFactory, tmp_path: Path) -> None:
    variant = (
        "{precision: int8, target: tensorrt, build: {int8_mode: implicit, workspace_mib: 256, "
        "optimization_level: 2, hardware_compatibility: same_compute_capability}, " + CALIBRATION + "}"
    )
    plan = plan_for(make_spec, variant, calibration_cache=tmp_path / "calibration.cache")
    cmd = trtexec_command(plan)
    assert cmd[0] == "trtexec" and f"--onnx={plan.network_onnx}" in cmd and f"--saveEngine={plan.plan_file}" in cmd
    for arg in (
        "--int8", f"--calib={tmp_path / 'calibration.cache'}", "--memPoolSize=workspace:256M",
        "--builderOptimizationLevel=2", "--hardwareCompatibilityLevel=sameComputeCapability",
        "--minShapes=input:1x1x8x8", "--optShapes=input:8x1x8x8", "--maxShapes=input:8x1x8x8",
        f"--timingCacheFile={plan.timing_cache}", "--profilingVerbosity=detailed",
    ):
        assert arg in cmd
    assert "--stronglyTyped" not in cmd and "--fp16" not in cmd


@pytest.mark.parametrize("version", ["10.13.0.35", "11.0.0.9"])
def test_gpu_example_spec_plans(version: str) -> None:
    spec = load_spec(EXAMPLE_DIR / "spec.gpu.yaml")  # the GPU example of docs/gpu.md
    plans = {}
    for rv in spec.resolved():
        source = rv.model.onnx if rv.precision != "int8" else rv.workdir / "model_int8_qdq.onnx"
        plans[rv.name] = builder_plan(rv, version, source=source, onnx_signature=read_onnx_signature(rv.model.onnx))
    assert sorted(plans) == ["mnist_trt_fp16", "mnist_trt_fp32", "mnist_trt_int8"]
    assert all(p.profiles[0][0].max == (64, 1, 28, 28) for p in plans.values())
    int8 = plans["mnist_trt_int8"]
    assert int8.network_onnx.name == "model_int8_qdq.onnx" and int8.memory_pools == (("WORKSPACE", 1 << 30),)
    if version.startswith("10"):
        assert plans["mnist_trt_fp16"].builder_flags == ("FP16",) and int8.network_flags == ("STRONGLY_TYPED",)
    else:
        assert plans["mnist_trt_fp16"].network_onnx.name == "model_fp16.onnx" and int8.network_flags == ()


def test_timing_caches_are_per_gpu_and_tensorrt(make_spec: SpecFactory, tmp_path: Path) -> None:
    """Timings only hold for the GPU and TensorRT that measured them: one file each, never one shared."""
    rv = only(make_spec("{precision: fp32, target: tensorrt}"))
    signature = read_onnx_signature(rv.model.onnx)

    def cache(version: str = TRT10, gpu: str | None = "NVIDIA H100 80GB HBM3", cc: str | None = "9.0") -> Path:
        return builder_plan(rv, version, source=rv.model.onnx, onnx_signature=signature, gpu_name=gpu, compute_capability=cc).timing_cache

    assert cache() == rv.workdir.parent / "timing-nvidia-h100-80gb-hbm3-sm90-trt10.13.0.cache"
    assert len({cache(), cache(gpu="NVIDIA A100-SXM4-40GB", cc="8.0"), cache(version="10.14.1.48"), cache(cc="8.9")}) == 4
    folder = tmp_path / "timings"
    folder.mkdir()
    in_folder = only(make_spec(f"{{precision: fp32, target: tensorrt, build: {{timing_cache: {folder}}}}}"))
    plan = builder_plan(in_folder, TRT10, source=rv.model.onnx, onnx_signature=signature, gpu_name="A10", compute_capability="8.6")
    assert plan.timing_cache == folder / "timing-a10-sm86-trt10.13.0.cache"  # a folder holds the per-GPU files
