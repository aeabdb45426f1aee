"""What TensorRT chose per layer: the inspector's JSON parsed, and INT8 layers that are not INT8 caught."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from generator.engine.builder import plan_artifact
from generator.engine.inspection import deserialize, engine_signature
from generator.engine.apply import apply_plan
from generator.engine.layers import (
    check_precisions, engine_information, expected_int8_nodes, parse_layers, precision_of, read_layer_report,
)
from generator.engine.plan import builder_plan
from generator.engine.tensorrt_env import GpuInfo
from generator.errors import GeneratorError
from generator.quantize.placement import activation_tensors
from generator.quantize.qdq import quantize_model
from generator.signature import read_onnx_signature
from tests.engine.trt_double import make_trt
from tests.spec_factory import CALIBRATION, SpecFactory, only

GPU = GpuInfo("Test GPU", "9.0")
# As TensorRT 10 prints it (DETAILED), trimmed: a fused INT8 conv, a reformat, an FP32 gemm, names only elsewhere
REAL = {
    "Layers": [
        {"Name": "input_QuantizeLinear + conv + relu", "LayerType": "CaskConvolution",
         "Inputs": [{"Name": "input", "Location": "Device", "Dimensions": [8, 1, 8, 8],
                     "Format/Datatype": "Thirty-two wide channel vectorized row major Int8 format"}],
         "Outputs": [{"Name": "relu", "Dimensions": [8, 4, 8, 8], "Format/Datatype": "Row major linear FP32 format"}],
         "ParameterType": "Convolution", "Weights": {"Type": "Int8", "Count": 36}, "TacticValue": "0x1"},
        {"Name": "Reformatting CopyNode for Input Tensor 0 to fc", "LayerType": "Reformat",
         "Inputs": [{"Name": "relu", "Format/Datatype": "Row major linear FP32 format"}],
         "Outputs": [{"Name": "relu_r", "Format/Datatype": "Channel major FP16 format where channel % 8 == 0"}]},
        {"Name": "fc", "LayerType": "CaskGemmMatrixMultiply",
         "Inputs": [{"Name": "flat", "Format/Datatype": "Float"}], "Outputs": [{"Name": "logits", "Format/Datatype": "Float"}]},
    ],
    "Bindings": ["input", "logits"],
}


def test_precision_of_real_format_strings() -> None:
    assert precision_of("Thirty-two wide channel vectorized row major Int8 format") == "INT8"
    assert precision_of("Channel major FP16 format where channel % 8 == 0") == "FP16"
    assert precision_of("Row major linear FP32 format") == precision_of("Float") == "FP32"
    assert precision_of("Half") == "FP16" and precision_of("N/A due to dynamic shapes") == "unknown"


def test_real_engine_information_is_judged_by_fused_layer_names() -> None:
    layers = parse_layers(REAL)
    assert [(l.name, l.precision) for l in layers] == [
        ("input_QuantizeLinear + conv + relu", "INT8"), ("Reformatting CopyNode for Input Tensor 0 to fc", "FP32"), ("fc", "FP32"),
    ]
    report = check_precisions(layers, ("conv", "fc", "proj"))
    assert not report.passed and report.counts == {"INT8": 1, "FP32": 1}  # the Reformat is not counted
    assert report.problems() == ["fc runs FP32 (layer 'fc')", "proj is in no layer of the engine"]
    assert check_precisions(layers, ("conv",)).passed


def test_an_engine_built_without_detailed_verbosity_is_refused() -> None:
    with pytest.raises(GeneratorError, match="without ProfilingVerbosity.DETAILED"):
        parse_layers({"Layers": ["conv + relu", "fc"], "Bindings": []})


def _qdq(make_spec: SpecFactory, tmp_path: Path, variant: str) -> tuple[object, Path]:
    rv = only(make_spec(variant))
    model = onnx.load(str(rv.model.onnx))
    path = tmp_path / "qdq.onnx"
    path.write_bytes(quantize_model(model, dict.fromkeys(activation_tensors(model), 1.0)).model.SerializeToString())
    return rv, path


@pytest.mark.parametrize("version", ["10.13.0.35", "11.0.0.9"])
def test_an_explicit_int8_engine_runs_its_qdq_layers_in_int8(make_spec: SpecFactory, tmp_path: Path, version: str) -> None:
    rv, qdq = _qdq(make_spec, tmp_path, "{precision: int8, target: tensorrt, " + CALIBRATION + "}")
    assert expected_int8_nodes(qdq, explicit=True) == ("conv", "fc")
    artifact = plan_artifact(make_trt(version), rv, qdq, gpu=GPU)
    report = read_layer_report(artifact.model_file)
    assert report is not None and report.passed and report.expected_int8 == ("conv", "fc")
    assert report.counts["INT8"] == 2
    manifest = json.loads(artifact.model_file.with_name("model.plan.manifest.json").read_text())
    assert manifest["outcome"]["layer_precisions"] == report.counts and manifest["plan"]["profiling_verbosity"] == "DETAILED"


def test_dynamic_engines_need_a_shaped_context_for_formats(make_spec: SpecFactory) -> None:
    """Like TensorRT: without input shapes the inspector prints 'N/A due to dynamic shapes'."""
    rv = only(make_spec("{precision: fp32, target: tensorrt}"))
    plan = builder_plan(rv, "10.13.0.35", source=rv.model.onnx, onnx_signature=read_onnx_signature(rv.model.onnx))
    trt = make_trt()
    engine = deserialize(trt, apply_plan(trt, plan, plan.network_onnx), where="model.plan")
    bare = json.loads(engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON))
    assert {t["Format/Datatype"] for layer in bare["Layers"] for t in layer["Inputs"]} == {"N/A due to dynamic shapes"}
    info = engine_information(trt, engine, engine_signature(trt, engine))  # sets profile 0's OPT shapes first
    assert {l.precision for l in parse_layers(info)} == {"FP32"}


def test_fp16_layers_are_reported_as_fp16(make_spec: SpecFactory) -> None:
    rv = only(make_spec("{precision: fp16, target: tensorrt}"))
    report = read_layer_report(plan_artifact(make_trt("10.13.0.35"), rv, rv.model.onnx, gpu=GPU).model_file)
    assert report is not None and report.counts == {"FP16": 3} and report.expected_int8 == ()


def test_verify_fails_an_int8_plan_whose_layers_fell_back(make_spec: SpecFactory, tmp_path: Path) -> None:
    """`trgen verify`'s layer check: implicit INT8 on the double runs the Gemm in FP32 (its tensors lack scales)."""
    from generator.measure.verify import int8_layer_check
    from tests.engine.test_apply import cache_bytes

    cache = tmp_path / "calibration.cache"
    cache.write_bytes(cache_bytes())
    rv = only(make_spec("{precision: int8, target: tensorrt, build: {int8_mode: implicit}, " + CALIBRATION + "}"))
    artifact = plan_artifact(make_trt(), rv, rv.model.onnx, gpu=GPU, calibration_cache=cache)
    check = int8_layer_check(rv, artifact)
    assert check is not None and not check.passed and check.name == "int8_layers"
    assert check.detail == "1 of 2 layers meant to run INT8 do; not: fc runs FP32 (layer 'fc') (see model.plan.layers.json)"
    (rv.workdir / "model.plan.layers.json").unlink()
    missing = int8_layer_check(rv, artifact)
    assert missing is not None and not missing.passed and "trgen build --force" in missing.detail


def test_verify_passes_an_explicit_int8_plan_and_ignores_other_artifacts(make_spec: SpecFactory, tmp_path: Path) -> None:
    from generator.measure.verify import int8_layer_check

    rv, qdq = _qdq(make_spec, tmp_path, "{precision: int8, target: tensorrt, " + CALIBRATION + "}")
    check = int8_layer_check(rv, plan_artifact(make_trt(), rv, qdq, gpu=GPU))
    assert check is not None and check.passed and check.detail == "2 of 2 layers meant to run INT8 do"
    fp32 = only(make_spec("{precision: fp32, target: tensorrt}"))
    assert int8_layer_check(fp32, plan_artifact(make_trt(), fp32, fp32.model.onnx, gpu=GPU)) is None


def test_nodes_inside_a_myelin_region_are_reported_unverified_not_passed_or_failed() -> None:
    layers = parse_layers({"Layers": [
        {"Name": "conv", "LayerType": "CaskConvolution", "Inputs": [{"Format/Datatype": "Int8"}], "Outputs": []},
        {"Name": "{ForeignNode[fc...attn_out]}", "LayerType": "Myelin",
         "Inputs": [{"Format/Datatype": "Row major linear FP32 format"}], "Outputs": [{"Format/Datatype": "Float"}]},
    ]})
    order = ("conv", "relu", "fc", "attn_qk", "attn_out", "head")
    report = check_precisions(layers, ("conv", "fc", "attn_qk", "head"), order=order)
    assert report.unverified == ("fc", "attn_qk") and report.missing == ("head",) and report.not_int8 == ()
    assert report.notes() == ["2 node(s) inside Myelin regions, whose precision TensorRT does not print: fc, attn_qk"]
