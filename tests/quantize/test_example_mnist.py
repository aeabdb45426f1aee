"""The bundled MNIST example: INT8 top-1 within 0.5 points of FP32 on its evaluation set."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import pytest

from generator.quantize.placement import activation_tensors
from generator.quantize.qdq import quantize_model
from generator.quantize.rules import tensorrt_problems
from generator.quantize.runtime import minmax_amax, run, session

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mnist"
MODEL, CALIB, EVAL = EXAMPLE / "model.onnx", EXAMPLE / "data" / "calibration.npz", EXAMPLE / "data" / "evaluation.npz"
pytestmark = pytest.mark.skipif(
    not (MODEL.exists() and CALIB.exists() and EVAL.exists()), reason="examples/mnist model or data not generated"
)


def _top1(model: onnx.ModelProto, x: np.ndarray, labels: np.ndarray) -> float:
    return 100.0 * float(np.mean(run(session(model), {"input": x})[0].argmax(1) == labels))


def test_minmax_qdq_keeps_top1_within_half_a_point() -> None:
    model = onnx.load(str(MODEL))
    calib = np.load(CALIB)["input"].astype(np.float32) / 255
    evaluation = np.load(EVAL)
    x, labels = evaluation["input"].astype(np.float32) / 255, evaluation["labels"]
    amax = minmax_amax(model, activation_tensors(model), [{"input": calib[i : i + 64]} for i in range(0, len(calib), 64)])
    qdq = quantize_model(model, amax).model
    assert tensorrt_problems(qdq) == []
    fp32, int8 = _top1(model, x, labels), _top1(qdq, x, labels)
    assert fp32 > 95.0
    assert abs(fp32 - int8) <= 0.5


def test_end_to_end_with_the_calibrate_package(tmp_path: Path) -> None:
    from generator import pipeline
    from generator.quantize import QDQ_FILENAME, quantize_variant
    from generator.spec import load_spec

    rv = next(r for r in load_spec(EXAMPLE / "spec.yaml").resolved() if r.precision == "int8")
    rv = dataclasses.replace(rv, workdir=tmp_path / rv.name)
    calibration = pipeline.calibrate(rv, progress=False)
    assert set(activation_tensors(onnx.load(str(MODEL)))) <= set(calibration.amax)
    result = quantize_variant(rv, calibration, progress=False)
    assert result.path == rv.workdir / QDQ_FILENAME and result.kept_float == ()
    first = result.path.read_bytes()
    assert quantize_variant(rv, calibration, progress=False).path.read_bytes() == first  # deterministic
    qdq = onnx.load(str(result.path))
    assert tensorrt_problems(qdq) == []
    evaluation = np.load(EVAL)
    x, labels = evaluation["input"].astype(np.float32) / 255, evaluation["labels"]
    assert abs(_top1(onnx.load(str(MODEL)), x, labels) - _top1(qdq, x, labels)) <= 0.5
