"""Write a TensorRT-compatible Q/DQ INT8 ONNX model from an FP32 model and calibrated amax values.

What TensorRT accepts (docs: shared/reference/tensorrt-int8.md, placement.py) and ONNX Runtime's CPU provider runs:

* Activations: one QuantizeLinear -> DequantizeLinear pair per placed tensor, shared by every
  quantized consumer; scalar float32 scale = amax / 127, scalar int8 zero point 0 (symmetric).
* Weights: stored as an int8 initializer (values in [-127, 127]) read through one DequantizeLinear
  with per-channel float32 scales on the output-channel axis and int8 zero points 0. This is the
  form ONNX Runtime's quantizer and NVIDIA ModelOpt export; TensorRT folds it into the layer's
  INT8 weights. It is also 4x smaller than float weights wrapped in Q/DQ.
* Bias stays float (TensorRT's DequantizeLinear accepts only 8/4-bit inputs, not int32 bias).
* A zero channel (or a dead activation, amax 0) gets the tiny positive scale `MIN_SCALE`, never 0.
* Opset >= 13 (per-axis DequantizeLinear); lower opsets are converted with onnx.version_converter.

"Keep float" is decided per *use*: a node kept float reads the original float tensor, while other
consumers of the same tensor still read its DQ output. Keeping an activation tensor float keeps every
node that reads it float (in TensorRT a layer with a float input runs in float, so quantizing its
weights would only add error), and a weight is quantized only if every node reading it is quantized.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import GeneratorError
from .placement import Placement, WeightPlacement, node_names, plan

MIN_OPSET = 13
QMAX = 127
MIN_SCALE = float(np.float32(2.0**-40))  # ~9e-13: positive, and 1/scale still fits float32


@dataclass(frozen=True)
class QdqResult:
    """The Q/DQ model and what it quantized (activation tensors, in placement order)."""

    model: onnx.ModelProto
    quantized: tuple[str, ...]
    kept_float: tuple[str, ...]
    float_nodes: tuple[str, ...]
    weights: tuple[str, ...]


def activation_scale(amax: float) -> np.float32:
    """amax / 127 as float32, floored at MIN_SCALE (TensorRT needs strictly positive scales)."""
    return np.float32(max(float(amax) / QMAX, MIN_SCALE))


def quantize_weight(weight: np.ndarray, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric max calibration: per-channel (or per-tensor) scales and int8 values in [-127, 127]."""
    w = np.asarray(weight, dtype=np.float32)
    if axis is None:
        amax = np.abs(w).max(initial=0.0).reshape(())
    else:
        amax = np.abs(np.moveaxis(w, axis, 0)).reshape(w.shape[axis], -1).max(axis=1, initial=0.0)
    scale = np.maximum(amax.astype(np.float32) / np.float32(QMAX), np.float32(MIN_SCALE)).astype(np.float32)
    shape = [1] * w.ndim
    if axis is not None:
        shape[axis] = w.shape[axis]
    q = np.clip(np.rint(w / scale.reshape(shape)), -QMAX, QMAX).astype(np.int8)
    return q, scale


def resolve_keep_float(placement: Placement, names: Iterable[str], all_nodes: Iterable[str]) -> set[str]:
    """The nodes that run in float, from node, activation-tensor or weight names.

    Raises GeneratorError naming the first unknown name (a typo must not silently quantize a layer).
    """
    known_nodes = set(all_nodes)
    uses_of = placement.uses()
    kept: set[str] = set()
    for name in names:
        if name in uses_of:
            kept.update(use.node for use in uses_of[name])
        elif name in known_nodes:
            kept.add(name)
        else:
            raise GeneratorError(
                f"keep_float: {name!r} is neither a node nor a quantized tensor of the model "
                "(list them with `trgen sensitivity`)",
            )
    return kept


QUANTIZED_OPS = ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger",
                 "DynamicQuantizeLinear", "QGemm", "QLinearAdd")


def refuse_quantized(model: onnx.ModelProto) -> None:
    """Raise GeneratorError when the input model already holds quantization ops: never quantize twice."""
    found = next((n for n in model.graph.node if n.op_type in QUANTIZED_OPS), None)
    if found is not None:
        raise GeneratorError(
            f"the model is already quantized (node {found.name or found.op_type!r} is {found.op_type}): "
            "give trgen the FP32 model, or serve this one as an fp32 variant",
        )


def quantize_model(
    model: onnx.ModelProto,
    amax: Mapping[str, float],
    *,
    keep_float: Iterable[str] = (),
    placement: Placement | None = None,
) -> QdqResult:
    """A new Q/DQ model (the input is not modified). `keep_float` holds node or tensor names."""
    refuse_quantized(model)
    out = _ensure_opset(model)
    if placement is None or out is not model:
        placement = plan(out)
    names = node_names(out)
    float_nodes = resolve_keep_float(placement, keep_float, names)
    act_uses, weights = _quantized_uses(placement, float_nodes)
    scales = _checked_amax(placement.shared_amax(amax), act_uses)
    if out is model:
        out = onnx.ModelProto()
        out.CopyFrom(model)
    fresh = _namer(out)
    weight_nodes, weight_inits, rewire = _weight_dequantizers(out, weights, fresh)
    qdq_after, act_inits = _activation_pairs(act_uses, scales, fresh, rewire)
    _rewrite_graph(out, names, weight_nodes, qdq_after, rewire, weight_inits + act_inits)
    placed = [a.tensor for a in placement.activations]
    return QdqResult(
        model=out,
        quantized=tuple(t for t in placed if t in act_uses),
        kept_float=tuple(t for t in placed if t not in act_uses),
        float_nodes=tuple(n for n in names if n in float_nodes),
        weights=tuple(w.tensor for w in weights),
    )


def _quantized_uses(placement: Placement, float_nodes: set[str]) -> tuple[dict[str, list[tuple[str, int]]], list[WeightPlacement]]:
    """Activation tensor -> its uses by nodes that stay quantized (none: no pair), and the weights to quantize."""
    act_uses: dict[str, list[tuple[str, int]]] = {}
    for act in placement.activations:
        uses = [(u.node, u.index) for u in act.uses if u.node not in float_nodes]
        if uses:
            act_uses[act.tensor] = uses
    weights = [w for w in placement.weights if all(u.node not in float_nodes for u in w.uses)]
    return act_uses, weights


def _checked_amax(amax: Mapping[str, float], act_uses: Mapping[str, object]) -> dict[str, float]:
    """The amax of every quantized tensor; GeneratorError naming a missing or invalid one."""
    for tensor in act_uses:
        value = amax.get(tensor)
        if value is None:
            raise GeneratorError(
                f"calibration has no amax for tensor {tensor!r}: re-run calibration with --force "
                "(the model changed since it was calibrated?)",
            )
        if not np.isfinite(value) or value < 0:
            raise GeneratorError(f"calibration amax for tensor {tensor!r} is {value}: re-run calibration")
    return {t: float(amax[t]) for t in act_uses}


def _namer(model: onnx.ModelProto) -> Callable[[str], str]:
    """A function giving names not yet used anywhere in the model (base, base_1, ...)."""
    taken = _taken_names(model)

    def fresh(base: str) -> str:
        name, i = base, 1
        while name in taken:
            name, i = f"{base}_{i}", i + 1
        taken.add(name)
        return name

    return fresh


def _weight_dequantizers(
    model: onnx.ModelProto, weights: list[WeightPlacement], fresh: Callable[[str], str]
) -> tuple[list[onnx.NodeProto], list[TensorProto], dict[tuple[str, int], str]]:
    """Per weight: int8 initializer + per-channel DequantizeLinear; the uses to rewire to its output."""
    inits = {init.name: init for init in model.graph.initializer}
    nodes: list[onnx.NodeProto] = []
    new_inits: list[TensorProto] = []
    rewire: dict[tuple[str, int], str] = {}
    for w in weights:
        q, scale = quantize_weight(numpy_helper.to_array(inits[w.tensor]), w.axis)
        q_name, s_name, z_name = fresh(f"{w.tensor}_quantized"), fresh(f"{w.tensor}_scale"), fresh(f"{w.tensor}_zero_point")
        new_inits += [
            numpy_helper.from_array(q, q_name),
            numpy_helper.from_array(scale, s_name),
            numpy_helper.from_array(np.zeros(scale.shape, dtype=np.int8), z_name),
        ]
        dq_out = fresh(f"{w.tensor}_DequantizeLinear_Output")
        dq = helper.make_node("DequantizeLinear", [q_name, s_name, z_name], [dq_out], name=fresh(f"{w.tensor}_DequantizeLinear"))
        if w.axis is not None:
            dq.attribute.append(helper.make_attribute("axis", w.axis))
        nodes.append(dq)
        for use in w.uses:
            rewire[(use.node, use.index)] = dq_out
    return nodes, new_inits, rewire


def _activation_pairs(
    act_uses: Mapping[str, list[tuple[str, int]]],
    amax: Mapping[str, float],
    fresh: Callable[[str], str],
    rewire: dict[tuple[str, int], str],
) -> tuple[dict[str, list[onnx.NodeProto]], list[TensorProto]]:
    """One shared Q -> DQ pair per quantized activation (scale amax/127, zero point 0); rewires its uses."""
    qdq_after: dict[str, list[onnx.NodeProto]] = {}
    new_inits: list[TensorProto] = []
    for tensor, uses in act_uses.items():
        s_name, z_name = fresh(f"{tensor}_scale"), fresh(f"{tensor}_zero_point")
        new_inits += [
            numpy_helper.from_array(np.array(activation_scale(amax[tensor]), dtype=np.float32), s_name),
            numpy_helper.from_array(np.array(0, dtype=np.int8), z_name),
        ]
        q_out, dq_out = fresh(f"{tensor}_QuantizeLinear_Output"), fresh(f"{tensor}_DequantizeLinear_Output")
        qdq_after[tensor] = [
            helper.make_node("QuantizeLinear", [tensor, s_name, z_name], [q_out], name=fresh(f"{tensor}_QuantizeLinear")),
            helper.make_node("DequantizeLinear", [q_out, s_name, z_name], [dq_out], name=fresh(f"{tensor}_DequantizeLinear")),
        ]
        for node_use in uses:
            rewire[node_use] = dq_out
    return qdq_after, new_inits


def _rewrite_graph(
    model: onnx.ModelProto,
    names: list[str],
    weight_nodes: list[onnx.NodeProto],
    qdq_after: dict[str, list[onnx.NodeProto]],
    rewire: Mapping[tuple[str, int], str],
    new_inits: list[TensorProto],
) -> None:
    """Weight DQs first, each pair right after its tensor's producer, rewired inputs; checked by onnx.checker."""
    graph = model.graph
    graph_inputs = [i.name for i in graph.input]
    nodes: list[onnx.NodeProto] = list(weight_nodes)
    for tensor in graph_inputs:
        nodes += qdq_after.pop(tensor, [])
    for name, node in zip(names, graph.node):
        new = onnx.NodeProto()
        new.CopyFrom(node)
        for index in range(len(new.input)):
            if (name, index) in rewire:
                new.input[index] = rewire[(name, index)]
        nodes.append(new)
        for output in node.output:
            nodes += qdq_after.pop(output, [])
    if qdq_after:  # a placed tensor with no producer in the main graph (e.g. an outer-scope value)
        raise GeneratorError(f"cannot place Q/DQ on {sorted(qdq_after)[0]!r}: it is not produced in the main graph")
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    kept_inits = [init for init in graph.initializer if init.name in used or init.name in graph_inputs]
    del graph.initializer[:]
    graph.initializer.extend(kept_inits + new_inits)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise GeneratorError(f"the Q/DQ model fails onnx.checker: {str(exc).splitlines()[0]}") from None


def _ensure_opset(model: onnx.ModelProto) -> onnx.ModelProto:
    """Per-axis DequantizeLinear needs opset 13: convert older models with onnx's version converter."""
    version = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if version is None or version >= MIN_OPSET:
        return model
    from onnx import version_converter

    try:
        converted = version_converter.convert_version(model, MIN_OPSET)
    except Exception as exc:  # the converter raises RuntimeError/ValueError for unsupported ops
        raise GeneratorError(
            f"the model uses opset {version}; per-channel INT8 needs opset {MIN_OPSET} and onnx's converter "
            f"failed ({exc.__class__.__name__}): re-export the model with opset >= {MIN_OPSET}",
        ) from None
    return converted


def _taken_names(model: onnx.ModelProto) -> set[str]:
    graph = model.graph
    taken = {i.name for i in graph.initializer} | {i.name for i in graph.input} | {o.name for o in graph.output}
    for node in graph.node:
        taken.add(node.name)
        taken.update(node.input)
        taken.update(node.output)
    return taken
