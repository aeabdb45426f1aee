"""A small real CNN with every case the onnxruntime INT8 rewrite handles, and a look at what ORT runs.

(A uniquely named module rather than conftest.py, so test modules can import it unambiguously.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def residual_cnn() -> onnx.ModelProto:
    """input [batch,1,12,12]: stem Conv(1->8)+Relu+MaxPool, Conv+Clip(0,6), residual Conv "b" + Add + Relu,
    Conv+Relu, Flatten, Gemm(->5) "logits". The residual Conv's output "b" is the one no Q/DQ scale reaches."""
    rng = np.random.default_rng(0)

    def init(name: str, *shape: int, std: float = 0.3) -> TensorProto:
        return numpy_helper.from_array(rng.normal(0, std, shape).astype(np.float32), name)

    inits = [
        init("stem_w", 8, 1, 3, 3), init("stem_b", 8, std=0.1), init("a_w", 8, 8, 3, 3, std=0.2), init("a_b", 8, std=0.1),
        init("b_w", 8, 8, 3, 3, std=0.2), init("b_b", 8, std=0.1), init("c_w", 8, 8, 3, 3, std=0.2), init("c_b", 8, std=0.1),
        init("fc_w", 5, 8 * 6 * 6, std=0.1), init("fc_b", 5),
        numpy_helper.from_array(np.array(0.0, np.float32), "lo"), numpy_helper.from_array(np.array(6.0, np.float32), "hi"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "stem_w", "stem_b"], ["stem"], pads=[1, 1, 1, 1], name="stem_conv"),
        helper.make_node("Relu", ["stem"], ["stem_relu"], name="stem_relu"),
        helper.make_node("MaxPool", ["stem_relu"], ["pool"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
        helper.make_node("Conv", ["pool", "a_w", "a_b"], ["a"], pads=[1, 1, 1, 1], name="conv_a"),
        helper.make_node("Clip", ["a", "lo", "hi"], ["a6"], name="clip_a"),
        helper.make_node("Conv", ["a6", "b_w", "b_b"], ["b"], pads=[1, 1, 1, 1], name="conv_b"),
        helper.make_node("Add", ["pool", "b"], ["res"], name="add"),
        helper.make_node("Relu", ["res"], ["res_relu"], name="res_relu"),
        helper.make_node("Conv", ["res_relu", "c_w", "c_b"], ["c"], pads=[1, 1, 1, 1], name="conv_c"),
        helper.make_node("Relu", ["c"], ["c_relu"], name="c_relu"),
        helper.make_node("Flatten", ["c_relu"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1, name="fc"),
    ]
    graph = helper.make_graph(
        nodes, "net", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 12, 12])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 5])], initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def optimized_ops(model: onnx.ModelProto | Path, tmp_path: Path) -> list[str]:
    """The op types onnxruntime actually runs (its optimized graph) for a model or model file."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    options.log_severity_level = 3
    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    return [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]


def se_hardswish_cnn() -> onnx.ModelProto:
    """input [batch,1,12,12], MobileNetV3-style as PyTorch exports it: Conv -> BatchNormalization ->
    hard-swish written out (Add 3, Clip 0..6, Mul, Div 6) -> depthwise Conv -> BN -> Relu ->
    squeeze-excitation (GlobalAveragePool, Conv, Relu, Conv, written-out hard-sigmoid, Mul) -> Conv
    -> BN, residual Add, GlobalAveragePool, Flatten, Gemm(->5) "logits"."""
    rng = np.random.default_rng(1)

    def init(name: str, *shape: int, std: float = 0.3, mean: float = 0.0) -> TensorProto:
        return numpy_helper.from_array(rng.normal(mean, std, shape).astype(np.float32), name)

    def bn(prefix: str, c: int) -> list[TensorProto]:
        var = numpy_helper.from_array(rng.uniform(0.5, 1.5, c).astype(np.float32), f"{prefix}_var")
        return [init(f"{prefix}_g", c, mean=1.0, std=0.1), init(f"{prefix}_b", c, std=0.1), init(f"{prefix}_m", c, std=0.1), var]

    def const(name: str, value: float) -> TensorProto:
        return numpy_helper.from_array(np.array(value, np.float32), name)

    inits = [
        init("stem_w", 8, 1, 3, 3), *bn("bn0", 8), init("dw_w", 8, 1, 3, 3), *bn("bn1", 8),
        init("se1_w", 4, 8, 1, 1), init("se1_b", 4, std=0.1), init("se2_w", 8, 4, 1, 1), init("se2_b", 8, std=0.1),
        init("pw_w", 8, 8, 1, 1), *bn("bn2", 8), init("fc_w", 5, 8, std=0.2), init("fc_b", 5),
        const("three", 3.0), const("zero", 0.0), const("six", 6.0),
    ]

    def batchnorm(x: str, prefix: str, y: str) -> onnx.NodeProto:
        return helper.make_node("BatchNormalization", [x, f"{prefix}_g", f"{prefix}_b", f"{prefix}_m", f"{prefix}_var"], [y], name=y)

    nodes = [
        helper.make_node("Conv", ["input", "stem_w"], ["stem"], pads=[1, 1, 1, 1], name="stem_conv"),
        batchnorm("stem", "bn0", "stem_bn"),
        helper.make_node("Add", ["stem_bn", "three"], ["hs_add"], name="hs_add"),
        helper.make_node("Clip", ["hs_add", "zero", "six"], ["hs_clip"], name="hs_clip"),
        helper.make_node("Mul", ["stem_bn", "hs_clip"], ["hs_mul"], name="hs_mul"),
        helper.make_node("Div", ["hs_mul", "six"], ["hs"], name="hs_div"),
        helper.make_node("Conv", ["hs", "dw_w"], ["dw"], pads=[1, 1, 1, 1], group=8, name="dw_conv"),
        batchnorm("dw", "bn1", "dw_bn"),
        helper.make_node("Relu", ["dw_bn"], ["dw_relu"], name="dw_relu"),
        helper.make_node("GlobalAveragePool", ["dw_relu"], ["se_pool"], name="se_pool"),
        helper.make_node("Conv", ["se_pool", "se1_w", "se1_b"], ["se1"], name="se1_conv"),
        helper.make_node("Relu", ["se1"], ["se1_relu"], name="se1_relu"),
        helper.make_node("Conv", ["se1_relu", "se2_w", "se2_b"], ["se2"], name="se2_conv"),
        helper.make_node("Add", ["se2", "three"], ["hsig_add"], name="hsig_add"),
        helper.make_node("Clip", ["hsig_add", "zero", "six"], ["hsig_clip"], name="hsig_clip"),
        helper.make_node("Div", ["hsig_clip", "six"], ["gate"], name="hsig_div"),
        helper.make_node("Mul", ["dw_relu", "gate"], ["se"], name="se_mul"),
        helper.make_node("Conv", ["se", "pw_w"], ["pw"], name="pw_conv"),
        batchnorm("pw", "bn2", "pw_bn"),
        helper.make_node("Add", ["hs", "pw_bn"], ["res"], name="res_add"),
        helper.make_node("GlobalAveragePool", ["res"], ["pool"], name="pool"),
        helper.make_node("Flatten", ["pool"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1, name="fc"),
    ]
    graph = helper.make_graph(
        nodes, "se_net", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 12, 12])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 5])], initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model
