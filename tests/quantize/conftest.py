"""Small real ONNX graphs (built with onnx.helper) covering every op the Q/DQ placement handles."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

Builder = Callable[..., onnx.ModelProto]


def make_model(nodes: list[onnx.NodeProto], inputs: dict[str, list], outputs: dict[str, list],
               weights: dict[str, np.ndarray], *, opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs.items()],
        initializer=[numpy_helper.from_array(v.astype(np.float32), n) for n, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@pytest.fixture
def build() -> Builder:
    return make_model


def zoo(seed: int = 0, *, opset: int = 17) -> onnx.ModelProto:
    """Conv, BatchNorm + residual Add, ConvTranspose, MaxPool, Gemm (transB 0 and 1), MatMul."""
    rng = np.random.default_rng(seed)

    def w(*shape: int, s: float = 0.3) -> np.ndarray:
        return rng.normal(0, s, shape)

    weights = {
        "w1": w(8, 3, 3, 3), "b1": w(8, s=0.1), "w2": w(8, 8, 3, 3, s=0.15), "b2": w(8, s=0.1),
        "bn_scale": 1 + w(8, s=0.1), "bn_bias": w(8, s=0.1), "bn_mean": w(8, s=0.1), "bn_var": 1 + np.abs(w(8, s=0.1)),
        "wt": w(8, 4, 2, 2), "bt": w(4, s=0.1), "wg0": w(64, 16, s=0.2), "bg0": w(16, s=0.1),
        "wg1": w(16, 16), "bg1": w(16, s=0.1), "wm": w(16, 5),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
        helper.make_node("BatchNormalization", ["c2", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["bn"], name="bn"),
        helper.make_node("Add", ["r1", "bn"], ["add"], name="add"),
        helper.make_node("Relu", ["add"], ["r2"], name="relu2"),
        helper.make_node("ConvTranspose", ["r2", "wt", "bt"], ["ct"], strides=[2, 2], name="deconv"),
        helper.make_node("Relu", ["ct"], ["r3"], name="relu3"),
        helper.make_node("MaxPool", ["r3"], ["pool"], kernel_shape=[4, 4], strides=[4, 4], name="pool"),
        helper.make_node("Flatten", ["pool"], ["flat"], axis=1, name="flatten"),
        helper.make_node("Gemm", ["flat", "wg0", "bg0"], ["g0"], transB=0, name="gemm0"),
        helper.make_node("Relu", ["g0"], ["r4"], name="relu4"),
        helper.make_node("Gemm", ["r4", "wg1", "bg1"], ["g1"], transB=1, name="gemm1"),
        helper.make_node("MatMul", ["g1", "wm"], ["logits"], name="matmul"),
    ]
    return make_model(nodes, {"x": ["N", 3, 8, 8]}, {"logits": ["N", 5]}, weights, opset=opset)


@pytest.fixture
def zoo_model() -> onnx.ModelProto:
    return zoo()


@pytest.fixture
def make_zoo() -> Callable[..., onnx.ModelProto]:
    return zoo


@pytest.fixture
def zoo_inputs() -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(42)
    return [{"x": rng.normal(0, 1, (16, 3, 8, 8)).astype(np.float32)} for _ in range(4)]
