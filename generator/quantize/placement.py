"""Where the Q/DQ pairs go, following TensorRT's explicit-quantization placement rules.

TensorRT (Q/DQ "explicit" INT8) runs a layer in INT8 when its inputs arrive through a
DequantizeLinear. NVIDIA's placement recommendation, which we follow, is:

* **Compute ops** (Conv, ConvTranspose, Gemm, MatMul): a Q->DQ pair on every activation input and a
  per-channel weight DequantizeLinear on the weight. TensorRT fuses the rest (bias, BatchNorm, ReLU,
  Clip/ReLU6) into the layer, and propagates Q/DQ through commuting ops (MaxPool, Flatten, Reshape...).
* **Residual Adds** (both inputs are activations of the same shape): a Q->DQ on the *skip branch*
  only. The other input comes straight from a Conv/Gemm/MatMul (optionally through BatchNormalization)
  whose output nothing else reads, so TensorRT fuses that Conv with the Add and reads the skip branch
  in INT8 ("Conv + Add" fusion). When both inputs come from such ops, the one produced *earlier* in
  the graph is the skip branch (the later one fuses). When neither does, both inputs get Q->DQ so
  the Add itself runs in INT8.
* Nothing else: pooling, activations, Concat and reshapes inherit INT8 from the Q/DQ pairs around
  them; adding pairs there only adds re-quantisation points (and calibration work).

Weights are initializer inputs at position 1 of a compute op (bias, input 2, stays float). Their
per-channel axis is the output-channel axis: Conv 0; ConvTranspose 1 (per-tensor when group > 1, since
axis 1 then holds only C_out/group channels); Gemm 0 with transB=1, 1 with transB=0; MatMul rank-1
(axis 1 of a 2-D weight). Weights produced by Constant nodes or at other input positions stay float.

Only the main graph is examined (not If/Loop bodies). Order is deterministic: graph node order,
then input order, first appearance wins.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

import onnx
from onnx import helper

COMPUTE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
_FUSE_THROUGH = ("BatchNormalization",)  # folded into the Conv by TensorRT before fusing the Add


@dataclass(frozen=True)
class Use:
    """One consumer input that reads a quantized tensor: node name and input index."""

    node: str
    index: int


@dataclass(frozen=True)
class ActivationPlacement:
    """An activation tensor that gets one shared Q->DQ pair, and the inputs that read the DQ output."""

    tensor: str
    uses: tuple[Use, ...]
    reason: Literal["compute", "residual"]


@dataclass(frozen=True)
class WeightPlacement:
    """A weight initializer quantized per channel (axis None = per tensor) for the given uses."""

    tensor: str
    axis: int | None
    uses: tuple[Use, ...]


@dataclass(frozen=True)
class Placement:
    activations: tuple[ActivationPlacement, ...]
    weights: tuple[WeightPlacement, ...]

    def uses(self) -> dict[str, tuple[Use, ...]]:
        """Tensor name -> the inputs that read its quantized form (activations and weights)."""
        out = {a.tensor: a.uses for a in self.activations}
        out.update((w.tensor, w.uses) for w in self.weights)
        return out


def node_names(model: onnx.ModelProto) -> list[str]:
    """Every node's name; unnamed nodes get `<op_type>_<index>` so placements can refer to them."""
    return [node.name or f"{node.op_type}_{i}" for i, node in enumerate(model.graph.node)]


def activation_tensors(model: onnx.ModelProto) -> list[str]:
    """The activation tensors that get a Q->DQ pair: what calibration must observe."""
    return [item.tensor for item in plan(model).activations]


def weight_tensors(model: onnx.ModelProto) -> list[WeightPlacement]:
    """The weight initializers quantized per channel, with their output-channel axis."""
    return list(plan(model).weights)


def plan(model: onnx.ModelProto) -> Placement:
    """The full placement (activations and weights) for the model's main graph."""
    graph = model.graph
    names = node_names(model)
    initializers = {init.name: init for init in graph.initializer}
    constants = set(initializers)
    for node in graph.node:
        if node.op_type == "Constant":
            constants.update(o for o in node.output if o)
    producer: dict[str, int] = {}
    consumers: dict[str, list[int]] = defaultdict(list)
    for i, node in enumerate(graph.node):
        for out in node.output:
            if out:
                producer[out] = i
        for name in node.input:
            if name:
                consumers[name].append(i)
    graph_outputs = {out.name for out in graph.output}
    shapes = _static_shapes(model)

    activations: dict[str, list[Use]] = {}
    reasons: dict[str, Literal["compute", "residual"]] = {}
    weights: dict[str, list[tuple[Use, int | None]]] = {}

    def add_activation(tensor: str, use: Use, reason: Literal["compute", "residual"]) -> None:
        activations.setdefault(tensor, []).append(use)
        reasons.setdefault(tensor, reason)

    def fuses_into(tensor: str, add_index: int) -> bool:
        """True when `tensor` comes from a compute op TensorRT can fuse with the Add at add_index."""
        reader = add_index
        while tensor in producer and tensor not in graph_outputs and consumers[tensor] == [reader]:
            node = graph.node[producer[tensor]]
            if node.op_type in COMPUTE_OPS:
                return True
            if node.op_type not in _FUSE_THROUGH:
                return False
            reader, tensor = producer[tensor], node.input[0]
        return False

    for i, node in enumerate(graph.node):
        name = names[i]
        if node.op_type in COMPUTE_OPS:
            for index, tensor in enumerate(node.input[:2]):
                if not tensor:
                    continue
                if tensor not in constants:
                    add_activation(tensor, Use(name, index), "compute")
                elif index == 1 and tensor in initializers:
                    axis = _weight_axis(node, len(initializers[tensor].dims))
                    weights.setdefault(tensor, []).append((Use(name, index), axis))
        elif node.op_type == "Add" and len(node.input) == 2:
            a, b = node.input
            if a in constants or b in constants or a == b or not _same_shape(shapes, a, b):
                continue
            fa, fb = fuses_into(a, i), fuses_into(b, i)
            if fa and fb:  # fuse the later producer; the earlier one is the skip branch
                skip = [0] if producer[a] < producer[b] else [1]
            elif fa or fb:
                skip = [1] if fa else [0]
            else:
                skip = [0, 1]
            for index in skip:
                add_activation(node.input[index], Use(name, index), "residual")

    weight_items = []
    for tensor, entries in weights.items():
        axes = {axis for _, axis in entries}
        if len(axes) != 1:
            continue  # one initializer read with two different channel axes: keep it float
        weight_items.append(WeightPlacement(tensor, axes.pop(), tuple(use for use, _ in entries)))
    return Placement(
        activations=tuple(ActivationPlacement(t, tuple(u), reasons[t]) for t, u in activations.items()),
        weights=tuple(weight_items),
    )


def _weight_axis(node: onnx.NodeProto, rank: int) -> int | None:
    """Output-channel axis of a compute op's weight (input 1), or None for per-tensor."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if rank < 2:
        return None
    if node.op_type == "Conv":
        return 0
    if node.op_type == "ConvTranspose":
        return 1 if int(attrs.get("group", 1)) == 1 else None
    if node.op_type == "Gemm":
        return 0 if int(attrs.get("transB", 0)) else 1
    return rank - 1  # MatMul: [..., K, N] -> N


def _static_shapes(model: onnx.ModelProto) -> dict[str, tuple[int | str | None, ...]]:
    """Shapes from ONNX shape inference (symbolic dims as their names); empty where unknown."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # shape inference is a hint here: placement must work without it
        return {}
    shapes: dict[str, tuple[int | str | None, ...]] = {}
    graph = inferred.graph
    for info in (*graph.value_info, *graph.input, *graph.output):
        tensor_type = info.type.tensor_type
        if not tensor_type.HasField("shape"):
            continue
        shapes[info.name] = tuple(
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor_type.shape.dim
        )
    return shapes


def _same_shape(shapes: dict[str, tuple[int | str | None, ...]], a: str, b: str) -> bool:
    """False only when inference proves the two shapes differ (a broadcast Add is no residual)."""
    sa, sb = shapes.get(a), shapes.get(b)
    if sa is None or sb is None:
        return True
    if len(sa) != len(sb):
        return False
    return all(x is None or y is None or x == y for x, y in zip(sa, sb))
