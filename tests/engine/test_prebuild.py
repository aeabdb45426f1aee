"""Implicit INT8: the calibration cache must cover every tensor TensorRT's INT8 layers read or write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generator.engine.apply import run_build
from generator.engine.builder import plan_artifact
from generator.engine.plan import BuildPlan, builder_plan
from generator.engine.prebuild import uncovered_tensors
from generator.engine.tensorrt_env import GpuInfo
from generator.errors import GeneratorError
from generator.manifest import manifest_path
from generator.signature import read_onnx_signature
from tests.engine.test_apply import TINY_TENSORS, cache_bytes
from tests.engine.trt_double import call_names, make_trt
from tests.spec_factory import CALIBRATION, SpecFactory, only

IMPLICIT = "{precision: int8, target: tensorrt, build: {int8_mode: implicit}, " + CALIBRATION + "}"
PARSER_MADE = ["fc_w", "fc_b", "(Unnamed Layer* 5) [Matrix Multiply]_output"]  # Gemm -> MatMul + bias add


def _plan(make_spec: SpecFactory, cache: Path) -> BuildPlan:
    rv = only(make_spec(IMPLICIT))
    return builder_plan(rv, "10.13.0.35", source=rv.model.onnx, onnx_signature=read_onnx_signature(rv.model.onnx), calibration_cache=cache)


def test_the_double_network_has_layers_and_tensors_like_tensorrts(make_spec: SpecFactory) -> None:
    trt = make_trt()
    rv = only(make_spec("{precision: fp32}"))
    network = trt.Builder(trt.Logger()).create_network(0)
    trt.OnnxParser(network, trt.Logger()).parse_from_file(str(rv.model.onnx))
    layers = [network.get_layer(i) for i in range(network.num_layers)]
    assert [(l.name, l.type.name) for l in layers] == [
        ("conv", "CONVOLUTION"), ("relu", "ACTIVATION"), ("flatten", "SHUFFLE"), ("fc_w_const", "CONSTANT"),
        ("fc_b_const", "CONSTANT"), ("fc", "MATRIX_MULTIPLY"), ("fc_bias", "ELEMENTWISE"),
    ]
    conv = layers[0]
    assert conv.num_inputs == 1 and conv.get_input(0).name == "input"  # Conv weights are layer weights, not tensors
    assert network.get_input(0).dtype is trt.DataType.FLOAT and network.get_input(0).is_network_input


def test_a_cache_covering_every_activation_passes_and_parser_tensors_are_named(
    make_spec: SpecFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "calibration.cache"
    cache.write_bytes(cache_bytes())
    plan = _plan(make_spec, cache)
    result = run_build(make_trt(), plan, plan.network_onnx)
    assert list(result.unscaled) == PARSER_MADE
    assert "3 tensor(s) made by TensorRT's ONNX parser have no scale" in caplog.text


@pytest.mark.parametrize("missing", ["relu", "input"])
def test_an_activation_without_a_scale_fails_before_the_build(make_spec: SpecFactory, tmp_path: Path, missing: str) -> None:
    cache = tmp_path / "calibration.cache"
    cache.write_bytes(cache_bytes(tensors=tuple(t for t in TINY_TENSORS if t != missing)))
    trt = make_trt()
    with pytest.raises(GeneratorError) as info:
        run_build(trt, _plan(make_spec, cache), _plan(make_spec, cache).network_onnx)
    message = str(info.value)
    assert f"no scale for 1 tensor(s) TensorRT's INT8 layers read or write ('{missing}')" in message
    assert "trgen calibrate --force" in message and str(cache) in message
    assert "Builder.build_serialized_network" not in call_names(trt)


def test_without_the_check_tensorrt_would_only_warn_and_fall_back(make_spec: SpecFactory, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """What the check protects against, shown on the double: an engine, a warning, a float layer."""
    cache = tmp_path / "calibration.cache"
    cache.write_bytes(cache_bytes(tensors=("input", "conv", "flat", "logits")))  # no 'relu'
    plan = _plan(make_spec, cache)
    trt = make_trt()
    import generator.engine.apply as apply_module

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(apply_module, "check_cache_coverage", lambda *a, **k: [])
        engine = run_build(trt, plan, plan.network_onnx).engine
    layers = {layer["Name"]: layer for layer in json.loads(engine)["layers"]}
    assert "Int8" not in layers["conv + relu"]["Inputs"][0]["Format/Datatype"]  # fell back
    assert "Missing scale and zero-point for tensor relu" in capfd.readouterr().err


def test_the_build_manifest_names_the_unscaled_tensors_and_the_layers_that_fell_back(make_spec: SpecFactory, tmp_path: Path) -> None:
    cache = tmp_path / "calibration.cache"
    cache.write_bytes(cache_bytes())
    rv = only(make_spec(IMPLICIT))
    plan_artifact(make_trt(), rv, rv.model.onnx, gpu=GpuInfo("Test GPU", "9.0"), calibration_cache=cache)
    outcome = json.loads(manifest_path(rv.workdir / "model.plan").read_text())["outcome"]
    assert outcome["unscaled_tensors"] == PARSER_MADE
    assert outcome["layer_precisions"] == {"INT8": 1, "FP32": 2}  # conv + relu in INT8; fc and its bias add not
    assert outcome["int8_problems"] == ["fc runs FP32 (layer 'fc')"]


def test_uncovered_tensors_splits_onnx_names_from_parser_made_ones(make_spec: SpecFactory) -> None:
    trt = make_trt()
    rv = only(make_spec("{precision: fp32}"))
    network = trt.Builder(trt.Logger()).create_network(0)
    trt.OnnxParser(network, trt.Logger()).parse_from_file(str(rv.model.onnx))
    assert uncovered_tensors(network, set()) == (list(TINY_TENSORS), PARSER_MADE)
    assert uncovered_tensors(network, set(TINY_TENSORS) | set(PARSER_MADE)) == ([], [])
