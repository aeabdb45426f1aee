"""Real TensorRT builds on a GPU (marker `tensorrt`): FP32/FP16/INT8 engines, run, compared with onnxruntime.

Skipped with the reason ("TensorRT is not installed" / "no CUDA GPU") where either is missing (CI).
"""

from __future__ import annotations

import importlib
import shutil
import subprocess

import numpy as np
import pytest

from generator.engine import build_variant
from generator.engine.layers import read_layer_report
from generator.engine.runner import EngineRunner, OnnxRunner
from generator.measure.verify import verify_variant
from generator.pipeline import source_model
from generator.spec import load_spec
from tests.spec_factory import CALIBRATION, SpecFactory, only
from tests.conftest import EXAMPLE_DIR


def _tensorrt_skip_reason() -> str | None:
    try:
        trt = importlib.import_module("tensorrt")
    except (ImportError, OSError):
        return "TensorRT is not installed"
    if not hasattr(trt, "Builder"):
        return "TensorRT is not installed (only a 'tensorrt' namespace package, e.g. type stubs)"
    smi = shutil.which("nvidia-smi")
    if smi is None or subprocess.run([smi, "-L"], capture_output=True, check=False).returncode != 0:
        return "no CUDA GPU"
    return None


_REASON = _tensorrt_skip_reason()
pytestmark = [pytest.mark.tensorrt, pytest.mark.skipif(_REASON is not None, reason=_REASON or "")]


# -- with TensorRT and a GPU ---------------------------------------------------------------------
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_tiny_engines_match_onnxruntime(make_spec: SpecFactory, precision: str) -> None:
    variant = f"{{precision: {precision}, target: tensorrt" + (", " + CALIBRATION if precision == "int8" else "") + "}"
    rv = only(make_spec(variant))
    artifact = build_variant(rv, source_model(rv, progress=False))
    assert artifact.kind == "plan" and artifact.model_file.stat().st_size > 0
    assert artifact.signature.profiles[0]["input"][2] == (8, 1, 8, 8)
    x = np.random.default_rng(5).random((13, 1, 8, 8), dtype=np.float32)  # 13: two chunks of the max batch 8
    reference = OnnxRunner(rv.model.onnx)({"input": x})["logits"]
    engine = EngineRunner(importlib.import_module("tensorrt"), artifact.model_file, artifact.signature)({"input": x})["logits"]
    scale = np.abs(reference).max()
    # fp32: TF32 kernels may be used; fp16: half rounding; int8: 8-bit steps of the calibrated ranges
    limit = {"fp32": 1e-2, "fp16": 1e-2, "int8": 0.15}[precision] * scale
    assert np.abs(engine - reference).max() <= limit
    report = read_layer_report(artifact.model_file)  # what TensorRT chose, from its engine inspector
    assert report is not None and report.layers, "no per-layer report beside the plan"
    assert {"fp32": "FP32", "fp16": "FP16", "int8": "INT8"}[precision] in report.counts, report.counts
    if precision == "int8":  # the Q/DQ Conv and Gemm must really run INT8, not just come out close
        assert report.expected_int8 and report.passed, report.problems()
    again = build_variant(rv, source_model(rv, progress=False))  # unchanged: reused, not rebuilt
    assert again.model_file.stat().st_mtime_ns == artifact.model_file.stat().st_mtime_ns


def test_implicit_int8_with_our_cache_on_tensorrt_10(make_spec: SpecFactory) -> None:
    trt = importlib.import_module("tensorrt")
    if int(trt.__version__.split(".")[0]) >= 11:
        pytest.skip("implicit INT8 was removed in TensorRT 11")
    rv = only(make_spec("{precision: int8, target: tensorrt, build: {int8_mode: implicit}, " + CALIBRATION + "}"))
    artifact = build_variant(rv, source_model(rv, progress=False))
    assert artifact.kind == "plan"
    result = verify_variant(rv, artifact)
    layers = next(check for check in result.checks if check.name == "int8_layers")
    # the Conv must run INT8 with our cache; the Gemm too unless the parser-made tensors lacked scales
    report = read_layer_report(artifact.model_file)
    assert report is not None and "conv" not in {node for node, _, _ in report.not_int8}, report.problems()
    assert layers.passed or report.unscaled, layers.detail
    assert result.top1_agreement is not None and result.top1_agreement >= 0.9


def test_example_engines_pass_verify() -> None:
    spec = load_spec(EXAMPLE_DIR / "spec.gpu.yaml")
    for rv in spec.resolved():
        artifact = build_variant(rv, source_model(rv, progress=False))
        result = verify_variant(rv, artifact)
        assert result.passed, f"{rv.name}: {[c.detail for c in result.failures]}"  # int8: its layer check too
