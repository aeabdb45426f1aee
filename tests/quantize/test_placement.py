"""Q/DQ placement follows TensorRT's rules: compute-op inputs, residual skip branches, weight axes."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from generator.quantize.placement import activation_tensors, plan, weight_tensors


def _axes(model: onnx.ModelProto) -> dict[str, int | None]:
    return {w.tensor: w.axis for w in weight_tensors(model)}


def test_zoo_placement_and_weight_axes(zoo_model: onnx.ModelProto) -> None:
    # r1 feeds conv2 (compute) and is the Add's skip branch (bn comes from conv2 through BatchNorm)
    assert activation_tensors(zoo_model) == ["x", "r1", "r2", "flat", "r4", "g1"]
    assert _axes(zoo_model) == {"w1": 0, "w2": 0, "wt": 1, "wg0": 1, "wg1": 0, "wm": 1}
    uses = {a.tensor: [(u.node, u.index) for u in a.uses] for a in plan(zoo_model).activations}
    assert uses["r1"] == [("conv2", 0), ("add", 0)]


def test_bias_and_batchnorm_params_are_never_weights(zoo_model: onnx.ModelProto) -> None:
    weights = set(_axes(zoo_model))
    assert not weights & {"b1", "b2", "bt", "bg0", "bg1", "bn_scale", "bn_bias", "bn_mean", "bn_var"}


def test_gemm_transb_picks_output_channel_axis(build) -> None:
    for trans_b, shape, axis in ((0, (6, 3), 1), (1, (3, 6), 0)):
        model = build(
            [helper.make_node("Gemm", ["a", "w"], ["y"], transB=trans_b)],
            {"a": ["N", 6]}, {"y": ["N", 3]}, {"w": np.ones(shape)},
        )
        assert _axes(model) == {"w": axis}
        assert activation_tensors(model) == ["a"]


def test_matmul_of_two_activations_quantizes_both(build) -> None:
    model = build([helper.make_node("MatMul", ["a", "b"], ["y"])], {"a": [2, 4], "b": [4, 3]}, {"y": [2, 3]}, {})
    assert activation_tensors(model) == ["a", "b"]
    assert weight_tensors(model) == []


def test_grouped_conv_transpose_falls_back_to_per_tensor(build) -> None:
    model = build(
        [helper.make_node("ConvTranspose", ["x", "w"], ["y"], group=2)],
        {"x": [1, 4, 3, 3]}, {"y": [1, 4, 3, 3]}, {"w": np.ones((4, 2, 1, 1))},
    )
    assert _axes(model) == {"w": None}


def test_residual_branch_choice(build) -> None:
    """Skip branch gets Q/DQ; the fusible Conv side does not; with two Convs the earlier is the skip."""
    w = {"w": np.ones((2, 2, 1, 1)), "v": np.ones((2, 2, 1, 1))}
    relu_x = helper.make_node("Relu", ["x"], ["r"], name="relu")
    conv = helper.make_node("Conv", ["r", "w"], ["c"], name="conv")
    io = ({"x": [1, 2, 4, 4]}, {"y": [1, 2, 4, 4]})
    one_conv = build([relu_x, conv, helper.make_node("Add", ["c", "r"], ["y"], name="add")], *io, w)
    assert [(a.tensor, a.reason) for a in plan(one_conv).activations] == [("r", "compute")]
    assert [u.node for u in plan(one_conv).activations[0].uses] == ["conv", "add"]

    conv2 = helper.make_node("Conv", ["r", "v"], ["d"], name="conv2")
    two_convs = build([relu_x, conv, conv2, helper.make_node("Add", ["d", "c"], ["y"], name="add")], *io, w)
    residual = [(a.tensor, [(u.node, u.index) for u in a.uses]) for a in plan(two_convs).activations if a.reason == "residual"]
    assert residual == [("c", [("add", 1)])]  # c is produced first: skip branch; d (later) fuses

    no_conv = build(
        [relu_x, helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Add", ["r", "s"], ["y"], name="add")], *io, {}
    )
    assert activation_tensors(no_conv) == ["r", "s"]  # neither fuses: both inputs, so the Add runs in INT8


def test_conv_output_read_twice_cannot_fuse(build) -> None:
    """A Conv output that also feeds another node cannot fuse into the Add: both sides get Q/DQ."""
    w = {"w": np.ones((2, 2, 1, 1))}
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Conv", ["r", "w"], ["c"], name="conv"),
        helper.make_node("Add", ["c", "r"], ["a"], name="add"),
        helper.make_node("Mul", ["a", "c"], ["y"]),
    ]
    model = build(nodes, {"x": [1, 2, 4, 4]}, {"y": [1, 2, 4, 4]}, w)
    assert activation_tensors(model) == ["r", "c"]


def test_broadcast_and_constant_adds_are_not_residual(build) -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Add", ["r", "bias"], ["b"]),  # constant operand
        helper.make_node("Add", ["b", "m"], ["y"]),  # broadcast [1,4] + [4]
    ]
    model = build(nodes, {"x": [1, 4], "m": [4]}, {"y": [1, 4]}, {"bias": np.ones(4)})
    assert activation_tensors(model) == []


def test_constant_node_weights_stay_float(build) -> None:
    const = helper.make_node("Constant", [], ["w"], value=onnx.numpy_helper.from_array(np.ones((3, 2), np.float32)))
    model = build([const, helper.make_node("MatMul", ["a", "w"], ["y"])], {"a": [1, 3]}, {"y": [1, 2]}, {})
    assert activation_tensors(model) == ["a"]
    assert weight_tensors(model) == []


def test_placement_is_deterministic(zoo_model: onnx.ModelProto) -> None:
    copy = onnx.ModelProto()
    copy.CopyFrom(zoo_model)
    assert plan(copy) == plan(zoo_model)
