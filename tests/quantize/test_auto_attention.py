"""`method: auto` on an attention block with an outlier channel: better than every single method.

The block (q/k/v projections, Q.K^T, Softmax, P.V, residual, LayerNorm, MLP, mean pool, classifier)
reads activations with one channel 20x the others and one token 4x, the shape real transformer
activations have. No single rule suits every tensor there; auto's per-tensor choice must beat the
best of them on the model's output error (and on agreement with FP32), judged on other data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from generator.calibrate.run import calibrate_model
from generator.quantize.evaluate import EvalSet, Evaluator
from generator.quantize.placement import activation_tensors
from generator.spec.data import ArraysSource
from generator.spec.stages import Calibration

D, T, C = 32, 16, 10


def _model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)

    def w(*shape: int) -> np.ndarray:
        return rng.normal(0, 1 / np.sqrt(shape[0]), shape).astype(np.float32)

    weights = {"wq": w(D, D), "wk": w(D, D), "wv": w(D, D), "wo": w(D, D), "w1": w(D, 4 * D), "w2": w(4 * D, D),
               "wc": w(D, C), "g": np.ones(D, np.float32), "b": np.zeros(D, np.float32),
               "scale": np.array(1 / np.sqrt(D), np.float32)}
    n = helper.make_node
    nodes = [
        n("MatMul", ["x", "wq"], ["q"]), n("MatMul", ["x", "wk"], ["k"]), n("MatMul", ["x", "wv"], ["v"]),
        n("Transpose", ["k"], ["kt"], perm=[0, 2, 1]), n("MatMul", ["q", "kt"], ["s0"]), n("Mul", ["s0", "scale"], ["s"]),
        n("Softmax", ["s"], ["p"], axis=-1), n("MatMul", ["p", "v"], ["ctx"]), n("MatMul", ["ctx", "wo"], ["o"]),
        n("Add", ["x", "o"], ["h"]), n("LayerNormalization", ["h", "g", "b"], ["ln"], axis=-1),
        n("MatMul", ["ln", "w1"], ["f1"]), n("Relu", ["f1"], ["f1r"]), n("MatMul", ["f1r", "w2"], ["f2"]),
        n("Add", ["ln", "f2"], ["h2"]), n("ReduceMean", ["h2"], ["pool"], axes=[1], keepdims=0),
        n("MatMul", ["pool", "wc"], ["logits"]),
    ]
    graph = helper.make_graph(nodes, "attention", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", T, D])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", C])],
                              [numpy_helper.from_array(v, k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _data(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(0, 1, (n, T, D)).astype(np.float32)
    x[:, :, 3] *= 20  # an outlier channel
    x[:, 0, :] *= 4  # a large-norm first token
    return x


@pytest.mark.slow
def test_auto_beats_every_single_method_on_attention(tmp_path: Path) -> None:
    model = _model()
    model_path = tmp_path / "attention.onnx"
    onnx.save(model, str(model_path))
    np.savez(tmp_path / "calibration.npz", x=_data(544, 1))  # 512 calibrate + 32 held out for auto's check
    source = ArraysSource(kind="arrays", path=tmp_path / "calibration.npz", inputs={"x": "x"})
    judged = EvalSet({"x": _data(600, 2)}, None, batch_size=100)  # other data than calibration
    tensors = activation_tensors(model)
    scores = {}
    for method in ("auto", "entropy", "mse", "percentile", "minmax"):
        calibration = Calibration(method=method, data=source, samples=512, batch_size=64)  # type: ignore[arg-type]
        result = calibrate_model(model_path, calibration, tmp_path / method, variant=method, tensors=tensors,
                                 model=model, progress=False)
        scores[method] = Evaluator(model, result.amax, judged).score()
    best_error = min(s.error for m, s in scores.items() if m != "auto")
    best_agreement = max(s.agreement for m, s in scores.items() if m != "auto")
    assert scores["auto"].error < best_error, {m: s.error for m, s in scores.items()}
    assert scores["auto"].agreement >= best_agreement, {m: s.agreement for m, s in scores.items()}
