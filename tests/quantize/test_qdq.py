"""The Q/DQ writer: structure TensorRT accepts, runs on onnxruntime CPU, close to FP32, keep_float."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from generator.errors import GeneratorError
from generator.quantize.placement import activation_tensors
from generator.quantize.qdq import MIN_SCALE, quantize_model, quantize_weight
from generator.quantize.rules import tensorrt_problems
from generator.quantize.runtime import minmax_amax, run, session


def _amax(model: onnx.ModelProto, inputs: list[dict[str, np.ndarray]]) -> dict[str, float]:
    return minmax_amax(model, activation_tensors(model), inputs)


def _ops(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {n.name: n for n in model.graph.node}


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_structure_follows_tensorrt_rules(zoo_model, zoo_inputs) -> None:
    result = quantize_model(zoo_model, _amax(zoo_model, zoo_inputs))
    model = result.model
    onnx.checker.check_model(model, full_check=True)
    assert tensorrt_problems(model) == []
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    dtypes = {i.name: i.data_type for i in model.graph.initializer}
    nodes = _ops(model)
    qs = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert sorted(q.input[0] for q in qs) == sorted(result.quantized) == sorted(activation_tensors(zoo_model))
    for q in qs:  # one shared pair per tensor, scalar positive scale, int8 zero point 0
        assert inits[q.input[1]].shape == () and inits[q.input[1]] > 0
        assert dtypes[q.input[2]] == TensorProto.INT8 and inits[q.input[2]] == 0
    expected_axis = {"conv1": 0, "conv2": 0, "deconv": 1, "gemm0": 1, "gemm1": 0, "matmul": 1}
    for name, axis in expected_axis.items():
        dq = next(n for n in model.graph.node if n.output[0] == nodes[name].input[1])
        assert dq.op_type == "DequantizeLinear"
        assert helper.get_attribute_value(dq.attribute[0]) == axis
        q, scale, zp = (inits[i] for i in dq.input)
        assert q.dtype == np.int8 and q.min() >= -127 and scale.shape == (q.shape[axis],)
        assert zp.dtype == np.int8 and not zp.any() and (scale > 0).all()
    for name in ("conv1", "conv2", "deconv", "gemm0", "gemm1"):  # bias stays the float initializer
        assert dtypes[nodes[name].input[2]] == TensorProto.FLOAT
    assert not any(d == TensorProto.INT32 for d in dtypes.values())


def test_runs_on_onnxruntime_close_to_fp32(zoo_model, zoo_inputs) -> None:
    result = quantize_model(zoo_model, _amax(zoo_model, zoo_inputs))
    x = {"x": np.random.default_rng(7).normal(0, 1, (64, 3, 8, 8)).astype(np.float32)}
    fp32 = run(session(zoo_model), x)[0]
    int8 = run(session(result.model), x)[0]
    assert _cosine(fp32, int8) > 0.99
    assert not np.array_equal(fp32, int8)  # it really quantized


def test_bad_scales_hurt(zoo_model, zoo_inputs) -> None:
    """Guards the closeness test: the same check fails when the scales are wrong."""
    amax = {k: v / 50 for k, v in _amax(zoo_model, zoo_inputs).items()}
    x = zoo_inputs[0]
    assert _cosine(run(session(zoo_model), x)[0], run(session(quantize_model(zoo_model, amax).model), x)[0]) < 0.99


def test_weight_quantization_per_channel_and_zero_channel() -> None:
    w = np.stack([np.linspace(-1, 1, 9), np.zeros(9), np.linspace(-0.01, 0.02, 9)]).reshape(3, 1, 3, 3).astype(np.float32)
    q, scale = quantize_weight(w, 0)
    assert scale.dtype == np.float32 and scale.shape == (3,)
    np.testing.assert_allclose(scale, [1 / 127, MIN_SCALE, 0.02 / 127], rtol=1e-6)
    assert q.dtype == np.int8 and q.max() == 127 and q.min() == -127 and not q[1].any()
    np.testing.assert_allclose(q * scale.reshape(3, 1, 1, 1), w, atol=float(scale.max()) / 2 + 1e-7)
    q_t, scale_t = quantize_weight(w, None)
    assert scale_t.shape == () and q_t.shape == w.shape


def test_keep_float_tensor_node_and_weight(zoo_model, zoo_inputs) -> None:
    amax = _amax(zoo_model, zoo_inputs)
    everything = quantize_model(zoo_model, amax)

    by_tensor = quantize_model(zoo_model, amax, keep_float=["r2"])
    assert by_tensor.kept_float == ("r2",)
    assert set(everything.quantized) - set(by_tensor.quantized) == {"r2"}
    assert _ops(by_tensor.model)["deconv"].input[:2] == ["r2", "wt"]  # float input, float weight
    assert "wt" not in by_tensor.weights and len(by_tensor.weights) == len(everything.weights) - 1

    by_node = quantize_model(zoo_model, amax, keep_float=["add"])  # r1 still quantized for conv2
    nodes = _ops(by_node.model)
    assert by_node.kept_float == () and by_node.float_nodes == ("add",)
    assert nodes["add"].input[0] == "r1" and nodes["conv2"].input[0] != "r1"

    by_weight = quantize_model(zoo_model, amax, keep_float=["wm"])
    assert by_weight.float_nodes == ("matmul",) and by_weight.kept_float == ("g1",)
    for result in (by_tensor, by_node, by_weight):
        assert tensorrt_problems(result.model) == []
        run(session(result.model), zoo_inputs[0])

    with pytest.raises(GeneratorError, match="keep_float: 'nope'"):
        quantize_model(zoo_model, amax, keep_float=["nope"])


def test_missing_or_bad_amax_is_a_user_error(zoo_model, zoo_inputs) -> None:
    amax = _amax(zoo_model, zoo_inputs)
    with pytest.raises(GeneratorError, match="no amax for tensor 'r1'"):
        quantize_model(zoo_model, {k: v for k, v in amax.items() if k != "r1"})
    with pytest.raises(GeneratorError, match="amax for tensor 'x' is nan"):
        quantize_model(zoo_model, {**amax, "x": float("nan")})
    # a kept-float tensor needs no amax
    quantize_model(zoo_model, {k: v for k, v in amax.items() if k != "r4"}, keep_float=["r4"])


def test_dead_activation_gets_positive_scale(zoo_model, zoo_inputs) -> None:
    amax = {**_amax(zoo_model, zoo_inputs), "r4": 0.0}
    model = quantize_model(zoo_model, amax).model
    assert tensorrt_problems(model) == []


def test_output_is_deterministic_and_input_untouched(zoo_model, zoo_inputs, make_zoo) -> None:
    before = zoo_model.SerializeToString()
    amax = _amax(zoo_model, zoo_inputs)
    a = quantize_model(zoo_model, amax).model.SerializeToString()
    b = quantize_model(make_zoo(), dict(reversed(list(amax.items())))).model.SerializeToString()
    assert a == b and zoo_model.SerializeToString() == before


def test_old_opset_is_converted_to_13(zoo_inputs, make_zoo) -> None:
    old = make_zoo(opset=11)
    result = quantize_model(old, _amax(old, zoo_inputs))
    assert next(o.version for o in result.model.opset_import if o.domain in ("", "ai.onnx")) >= 13
    fp32, int8 = run(session(old), zoo_inputs[0])[0], run(session(result.model), zoo_inputs[0])[0]
    assert _cosine(fp32, int8) > 0.99


def test_rule_checker_catches_violations(zoo_model, zoo_inputs) -> None:
    """What we never write is what the checker must reject: asymmetric zero points, int32 bias, ..."""
    model = quantize_model(zoo_model, _amax(zoo_model, zoo_inputs)).model
    bad = onnx.ModelProto()
    bad.CopyFrom(model)
    zp = next(i for i in bad.graph.initializer if i.name == "r1_zero_point")
    zp.CopyFrom(numpy_helper.from_array(np.array(3, np.int8), "r1_zero_point"))
    bad.graph.initializer.extend([
        numpy_helper.from_array(np.arange(8, dtype=np.int32), "b_i32"),
        numpy_helper.from_array(np.full(8, 0.01, np.float32), "b_i32_scale"),
        numpy_helper.from_array(np.zeros(8, np.int32), "b_i32_zp"),
    ])
    bad.graph.node.append(helper.make_node("DequantizeLinear", ["b_i32", "b_i32_scale", "b_i32_zp"], ["b_deq"], name="bias_dq"))
    problems = tensorrt_problems(bad)
    assert any("non-zero zero point" in p for p in problems)
    assert any("bias_dq" in p and "INT32" in p for p in problems)
