"""Builds in a child process: the double is re-created there, and a crashing TensorRT cannot kill trgen."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from generator.engine.builder import plan_artifact
from generator.engine.child import build_isolated, trt_reference
from generator.engine.plan import builder_plan
from generator.engine.tensorrt_env import GpuInfo
from generator.errors import GeneratorError, RuntimeFailure
from generator.manifest import manifest_path
from generator.signature import read_onnx_signature
from tests.engine.trt_double import FACTORY, call_names, make_trt
from tests.spec_factory import CALIBRATION, SpecFactory, only

GPU = GpuInfo("Test GPU", "9.0")


def test_the_child_builds_what_the_parent_would(make_spec: SpecFactory) -> None:
    rv = only(make_spec("{precision: fp32, target: tensorrt}"))
    trt = make_trt("10.13.0.35")
    artifact = plan_artifact(trt, rv, rv.model.onnx, gpu=GPU)
    assert "Builder.build_serialized_network" not in call_names(trt)  # not built in this process
    assert artifact.signature.inputs[0].name == "input" and artifact.model_file.is_file()
    layers = json.loads((rv.workdir / "model.plan.layers.json").read_text())
    assert layers["counts"] == {"FP32": 3} and layers["passed"]  # conv + relu, fc, its bias add (Shuffles move data)
    assert trt_reference(trt) == (FACTORY, {"version": "10.13.0.35", "parser_errors": None, "crash": None})


def test_a_user_error_in_the_child_is_raised_in_the_parent_unchanged(make_spec: SpecFactory) -> None:
    rv = only(make_spec("{precision: fp32, target: tensorrt}"))
    trt = make_trt(parser_errors=[(0, "conv", "Conv", "unsupported")])
    with pytest.raises(GeneratorError) as info:
        plan_artifact(trt, rv, rv.model.onnx, gpu=GPU)
    assert type(info.value) is GeneratorError and "node 0 (conv: Conv): unsupported" in str(info.value)
    assert str(info.value).startswith(str(rv.model.onnx))


@pytest.mark.parametrize(("crash", "what"), [("segfault", "died of SIGSEGV"), ("abort", "died of SIGABRT"), ("exit", "exited with status 1")])
def test_a_crashing_tensorrt_is_a_one_line_runtime_failure(
    make_spec: SpecFactory, crash: str, what: str, capfd: pytest.CaptureFixture[str]
) -> None:
    rv = only(make_spec("{precision: fp32, target: tensorrt}"))
    with pytest.raises(RuntimeFailure) as info:
        plan_artifact(make_trt(crash=crash), rv, rv.model.onnx, gpu=GPU)
    message = str(info.value)
    assert what in message and "\n" not in message and message.startswith("variant tiny_trt_fp32: ")
    assert "Error Code 2: Internal Error (Assertion failed)" in message  # the child's last lines are quoted
    assert "Error Code 2" in capfd.readouterr().err  # and its log went to our stderr as it came
    assert not (rv.workdir / "model.plan").exists() and not manifest_path(rv.workdir / "model.plan").exists()
    assert (rv.workdir / "reproduce.sh").is_file()


def test_a_bug_in_the_child_is_a_bug_in_the_parent(make_spec: SpecFactory, tmp_path: Path) -> None:
    rv = only(make_spec("{precision: fp32, target: tensorrt}"))
    plan = builder_plan(rv, "10.13.0.35", source=rv.model.onnx, onnx_signature=read_onnx_signature(rv.model.onnx))
    broken = make_trt()
    broken.__trgen_factory__ = ("tests.engine.trt_double:no_such_factory", {})
    with pytest.raises(RuntimeError, match="a trgen bug") as info:
        build_isolated(broken, plan)
    assert "AttributeError" in str(info.value) and not isinstance(info.value, GeneratorError)


@pytest.mark.skipif(
    importlib.util.find_spec("cuda") is not None or importlib.util.find_spec("pycuda") is not None,
    reason="a CUDA binding is installed: the double's device buffers would be real",
)
def test_calibration_data_reaches_the_child(make_spec: SpecFactory) -> None:
    """trt_calibrates in the child: the data is loaded there; no cuda-python there either, and that is said."""
    variant = "{precision: int8, target: tensorrt, build: {int8_mode: implicit, trt_calibrates: true}, " + CALIBRATION + "}"
    rv = only(make_spec(variant))
    with pytest.raises(GeneratorError, match="calibrator failed in get_batch after 0 batch\\(es\\).*cuda-python"):
        plan_artifact(make_trt(), rv, rv.model.onnx, gpu=GPU)


def test_the_real_tensorrt_is_re_imported_by_name_in_the_child(make_spec: SpecFactory) -> None:
    """A real module travels by name; the child imports it through load_tensorrt (here: not installed)."""
    import types

    rv = only(make_spec("{precision: fp32, target: tensorrt}"))
    plan = builder_plan(rv, "10.13.0.35", source=rv.model.onnx, onnx_signature=read_onnx_signature(rv.model.onnx))
    real = types.ModuleType("tensorrt")
    assert trt_reference(real) == ("tensorrt", None)
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("a tensorrt package is installed here")
    with pytest.raises(GeneratorError, match="TensorRT is not installed") as info:
        build_isolated(real, plan)
    assert "\n" not in str(info.value)
