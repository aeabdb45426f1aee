"""The FP16 ONNX copy (CPU fp16 variants, TensorRT 11 fp16) runs in onnxruntime close to FP32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from generator.engine.fp16 import convert_to_fp16
from generator.errors import GeneratorError

FP16_EPS = float(np.finfo(np.float16).eps)


def run(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    dtype = np.float16 if session.get_inputs()[0].type == "tensor(float16)" else np.float32
    return np.asarray(session.run(None, {"input": x.astype(dtype)})[0])


@pytest.mark.parametrize("keep_io_types", [True, False])
def test_fp16_copy_matches_fp32_within_half_precision(tiny_onnx: Path, tmp_path: Path, keep_io_types: bool) -> None:
    dest = convert_to_fp16(tiny_onnx, tmp_path / "model_fp16.onnx", keep_io_types=keep_io_types)
    model = onnx.load(str(dest))
    assert {i.data_type for i in model.graph.initializer} == {onnx.TensorProto.FLOAT16}
    io_type = onnx.TensorProto.FLOAT if keep_io_types else onnx.TensorProto.FLOAT16
    assert model.graph.input[0].type.tensor_type.elem_type == io_type
    assert model.graph.output[0].type.tensor_type.elem_type == io_type

    x = np.random.default_rng(0).random((16, 1, 8, 8), dtype=np.float32)
    reference, half = run(tiny_onnx, x), run(dest, x)
    assert half.dtype == (np.float32 if keep_io_types else np.float16)
    error = np.abs(half.astype(np.float32) - reference).max()
    # a 2-layer net: a few rounding steps of size eps/2 relative to the values involved
    assert 0 < error <= 4 * FP16_EPS * np.abs(reference).max()
    assert np.array_equal(half.argmax(1), reference.argmax(1))


def test_unloadable_models_are_user_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not onnx")
    with pytest.raises(GeneratorError, match="not a loadable ONNX model"):
        convert_to_fp16(broken, tmp_path / "out.onnx", keep_io_types=True)
    assert not (tmp_path / "out.onnx").exists()
