"""The Q/DQ placement rules one by one, each on the smallest graph that shows it (placement.py docstring)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from generator.errors import GeneratorError
from generator.quantize.placement import activation_tensors, plan
from generator.quantize.qdq import quantize_model
from generator.quantize.runtime import session


def _reasons(model: onnx.ModelProto) -> dict[str, str]:
    return {a.tensor: a.reason for a in plan(model).activations}


def _attention(build):  # type: ignore[no-untyped-def]
    """x [B,T,D] -> q, k, v projections -> softmax(q k^T) v -> LayerNorm -> projection."""
    rng = np.random.default_rng(0)
    d = 8
    w = {n: rng.normal(0, 0.3, (d, d)) for n in ("wq", "wk", "wv", "wo")}
    w.update(scale=np.ones(d), bias=np.zeros(d))
    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["q"], name="q_proj"),
        helper.make_node("MatMul", ["x", "wk"], ["k"], name="k_proj"),
        helper.make_node("MatMul", ["x", "wv"], ["v"], name="v_proj"),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1], name="kt"),
        helper.make_node("MatMul", ["q", "kt"], ["scores"], name="scores"),
        helper.make_node("Softmax", ["scores"], ["probs"], axis=-1, name="softmax"),
        helper.make_node("MatMul", ["probs", "v"], ["ctx"], name="context"),
        helper.make_node("LayerNormalization", ["ctx", "scale", "bias"], ["ln"], axis=-1, name="ln"),
        helper.make_node("MatMul", ["ln", "wo"], ["y"], name="out_proj"),
    ]
    return build(nodes, {"x": ["B", 5, d]}, {"y": ["B", 5, d]}, w)


def test_attention_quantizes_both_operands_of_both_batched_matmuls(build) -> None:
    model = _attention(build)
    uses = {a.tensor: [(u.node, u.index) for u in a.uses] for a in plan(model).activations}
    assert uses["q"] == [("scores", 0)] and uses["kt"] == [("scores", 1)]
    assert uses["probs"] == [("context", 0)] and uses["v"] == [("context", 1)]


def test_layernorm_and_softmax_stay_float(build) -> None:
    model = _attention(build)
    readers = {u.node for a in plan(model).activations for u in a.uses}
    assert not readers & {"softmax", "ln", "kt"}  # no pair feeds a float-only op: no forced conversions
    assert "scores" not in activation_tensors(model) and "ctx" not in activation_tensors(model)
    assert activation_tensors(model).count("ln") == 1  # LayerNorm's output feeds a MatMul: quantized for it


def test_gemv_matmul_stays_float(build) -> None:
    rng = np.random.default_rng(1)
    n_is_one = build([helper.make_node("MatMul", ["a", "w"], ["y"])], {"a": ["B", 4, 6]}, {"y": ["B", 4, 1]},
                     {"w": rng.normal(size=(6, 1))})
    m_is_one = build([helper.make_node("MatMul", ["a", "w"], ["y"])], {"a": ["B", 1, 6]}, {"y": ["B", 1, 3]},
                     {"w": rng.normal(size=(6, 3))})
    gemm = build([helper.make_node("MatMul", ["a", "w"], ["y"])], {"a": ["B", 4, 6]}, {"y": ["B", 4, 3]},
                 {"w": rng.normal(size=(6, 3))})
    assert plan(n_is_one).activations == () and plan(n_is_one).weights == ()
    assert plan(m_is_one).activations == ()
    assert activation_tensors(gemm) == ["a"]


def test_average_pooling_reads_its_input_quantized(build) -> None:
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("GlobalAveragePool", ["r"], ["y"], name="gap")]
    model = build(nodes, {"x": [1, 2, 4, 4]}, {"y": [1, 2, 1, 1]}, {})
    assert _reasons(model) == {"r": "pooling"}


def test_maxpool_before_a_quantized_reader_gets_no_second_pair(build) -> None:
    w = {"w": np.ones((2, 2, 1, 1))}
    to_conv = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2]),
               helper.make_node("Flatten", ["p"], ["f"]), helper.make_node("Reshape", ["f", "shape"], ["p2"]),
               helper.make_node("Conv", ["p2", "w"], ["y"])]
    model = build(to_conv, {"x": [1, 2, 4, 4]}, {"y": [1, 2, 3, 3]}, {**w, "shape": np.array([1, 2, 3, 3])})
    assert _reasons(model) == {"p2": "compute"}  # TensorRT moves p2's Q in front of the MaxPool itself
    alone = build([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], name="pool")],
                  {"x": [1, 2, 4, 4]}, {"y": [1, 2, 3, 3]}, {})
    assert _reasons(alone) == {"x": "pooling"}


def test_concat_inputs_share_the_output_scale(build) -> None:
    w = {"w": np.ones((4, 4, 1, 1))}
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Sigmoid", ["x"], ["b"]),
             helper.make_node("Concat", ["a", "b"], ["c"], axis=1, name="cat"),
             helper.make_node("Conv", ["c", "w"], ["y"], name="conv")]
    model = build(nodes, {"x": [1, 2, 4, 4]}, {"y": [1, 4, 4, 4]}, w)
    placement = plan(model)
    assert _reasons(model) == {"a": "concat", "b": "concat", "c": "compute"}
    assert placement.scale_groups == (("c", ("a", "b")),)
    qdq = quantize_model(model, {"a": 1.0, "b": 0.5, "c": 2.0}).model
    scales = {i.name: float(numpy_helper.to_array(i)) for i in qdq.graph.initializer if i.name in ("a_scale", "b_scale", "c_scale")}
    assert scales["a_scale"] == scales["b_scale"] == scales["c_scale"] == pytest.approx(2.0 / 127)


def test_non_float_tensors_are_never_placed(build) -> None:
    """int64 token ids go through Gather (fed, not calibrated); the gathered embeddings are float."""
    table = numpy_helper.from_array(np.random.default_rng(2).normal(size=(10, 4)).astype(np.float32), "table")
    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["emb"]), helper.make_node("MatMul", ["emb", "w"], ["y"]),
         helper.make_node("Cast", ["ids"], ["idsf"], to=TensorProto.FLOAT), helper.make_node("MatMul", ["ids64", "ids64"], ["z"])],
        "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["B", 5]),
              helper.make_tensor_value_info("ids64", TensorProto.INT64, [3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 5, 3]), helper.make_tensor_value_info("z", TensorProto.INT64, [3, 3])],
        initializer=[table, w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert activation_tensors(model) == ["emb"]


def test_no_dangling_pairs_when_every_reader_is_kept_float(build) -> None:
    model = _attention(build)
    qdq = quantize_model(model, dict.fromkeys(activation_tensors(model), 1.0), keep_float=["context"])
    readers = {name for node in qdq.model.graph.node for name in node.input}
    for node in qdq.model.graph.node:
        if node.op_type == "QuantizeLinear":
            assert node.input[0] not in ("probs", "v")
        if node.op_type == "DequantizeLinear":
            assert node.output[0] in readers  # every DQ output is read
    session(qdq.model)  # still loads in onnxruntime


def test_an_already_quantized_model_is_refused(build) -> None:
    model = _attention(build)
    once = quantize_model(model, dict.fromkeys(activation_tensors(model), 1.0)).model
    with pytest.raises(GeneratorError, match="already quantized"):
        quantize_model(once, {})


def test_placement_leaves_no_dangling_pairs_and_forces_no_conversions(build, zoo_model: onnx.ModelProto) -> None:
    from generator.quantize.rules import placement_problems

    for model in (_attention(build), zoo_model):
        qdq = quantize_model(model, dict.fromkeys(activation_tensors(model), 1.0)).model
        assert placement_problems(qdq) == []
    # the check itself: a DQ read by a Softmax is a forced conversion, an unread DQ dangles
    model = _attention(build)
    qdq = quantize_model(model, dict.fromkeys(activation_tensors(model), 1.0)).model
    dq = next(n for n in qdq.graph.node if n.op_type == "DequantizeLinear" and n.input[0].endswith("QuantizeLinear_Output"))
    softmax = next(n for n in qdq.graph.node if n.op_type == "Softmax")
    softmax.input[0] = dq.output[0]
    assert any("Softmax, which cannot run INT8" in p for p in placement_problems(qdq))
    qdq.graph.node.append(helper.make_node("DequantizeLinear", [dq.input[0], dq.input[1], dq.input[2]], ["unread"]))
    assert any("dangling" in p for p in placement_problems(qdq))


def test_the_zoo_attention_model_quantizes_both_operands_of_every_attention_matmul() -> None:
    from tests.conftest import REPO_ROOT

    path = REPO_ROOT / "benchmarks" / "zoo" / "vit_tiny" / "model.onnx"
    if not path.is_file():
        pytest.skip("the zoo's vit_tiny model is not in this checkout")
    model = onnx.load(str(path))
    weights = {i.name for i in model.graph.initializer}
    attention = [n for n in model.graph.node if n.op_type == "MatMul" and not weights & set(n.input)]
    uses = {(u.node, u.index) for a in plan(model).activations for u in a.uses}
    assert len(attention) >= 2
    for node in attention:
        assert {(node.name, 0), (node.name, 1)} <= uses, node.name
    qdq = quantize_model(model, dict.fromkeys(activation_tensors(model), 1.0)).model
    producers = {o: n.op_type for n in qdq.graph.node for o in n.output}
    for node in (n for n in qdq.graph.node if n.name in {a.name for a in attention}):
        assert [producers.get(i) for i in node.input] == ["DequantizeLinear", "DequantizeLinear"]
