"""Where the Q/DQ pairs go: TensorRT's explicit-quantization rules, as NVIDIA ModelOpt's ONNX quantizer applies them.

TensorRT (Q/DQ "explicit" INT8, strongly typed) runs a layer in INT8 when its inputs arrive through
a DequantizeLinear; every tensor without one runs in the graph's float type, with reformat layers
around INT8 islands. The rules, one function each below:

* **Compute ops** (`_compute`): Conv, ConvTranspose, Gemm, MatMul get a Q->DQ pair on every float
  activation input -- both operands of a MatMul between two activations (attention scores Q.K^T and
  context P.V), as ModelOpt does -- and a per-channel weight DequantizeLinear on the weight.
  TensorRT fuses the rest (bias, BatchNorm, ReLU, Clip) into the layer and propagates Q/DQ through
  ops that commute with it (Flatten, Reshape, Transpose...).
* **GEMV stays float** (`_is_gemv`): a MatMul/Gemm whose M or N is 1 cannot use tensor cores, so
  INT8 only adds the Q/DQ cost (ModelOpt's `find_nodes_from_matmul_to_exclude`).
* **Residual Adds** (`_residual`): a Q->DQ on the *skip branch* only. The other input comes straight
  from a Conv/Gemm/MatMul (optionally through BatchNormalization) whose output nothing else reads, so
  TensorRT fuses that op with the Add and reads the skip branch in INT8 ("Conv + Add"; ModelOpt's
  `build_non_residual_input_map`). Both fusible: the one produced *earlier* is the skip branch. Neither:
  both inputs get Q->DQ so the Add itself runs in INT8. Broadcast or constant operands: no residual.
* **Pooling** (`_pooling`): AveragePool and GlobalAveragePool read their input through a Q->DQ so
  they run in INT8 (ModelOpt quantizes them; otherwise TensorRT pools in float between two INT8
  layers). A MaxPool does too unless its output already reaches a quantized tensor through ops that
  commute with Q (then TensorRT moves that Q in front of the pool: Q(maxpool(x)) = maxpool(Q(x))).
* **Concat** (`_concat`): when a Concat's output is quantized, all its float inputs get a Q->DQ with
  the output's scale (one scale group), so TensorRT concatenates in INT8 with no requantization
  (ModelOpt's concat elimination, `group_qdq_tensors`).
* **Float by design**: LayerNormalization, Softmax, normalisations, GELU/Sigmoid/Erf and every other
  op get no pair of their own: they read float (their inputs are never quantized for them) so no
  format conversion is forced around a layer that cannot run INT8; a MatMul fed by a Softmax still
  quantizes the Softmax output for itself.
* **Non-float tensors are skipped** (int64 token ids, Gather indices, shapes): they are fed, never
  calibrated. A placed tensor whose every use is later kept float gets no pair at all (`qdq`), so no
  Q/DQ dangles.

Weights are initializer inputs at position 1 of a compute op (bias, input 2, stays float). Their
per-channel axis is the output-channel axis: Conv 0; ConvTranspose 1 (per-tensor when group > 1);
Gemm 0 with transB=1, 1 with transB=0; MatMul rank-1. Weights produced by Constant nodes stay float.

Only the main graph is examined (not If/Loop bodies). Order is deterministic: graph node order,
then input order, first appearance wins.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import onnx
from onnx import helper

COMPUTE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
POOL_OPS = ("MaxPool", "AveragePool", "GlobalAveragePool")
_COMMUTING = ("MaxPool", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Identity")  # Q commutes with them
_FUSE_THROUGH = ("BatchNormalization",)  # folded into the Conv by TensorRT before fusing the Add
_FLOAT_TYPES = {1, 10, 11, 16}  # TensorProto FLOAT, FLOAT16, DOUBLE, BFLOAT16

Reason = Literal["compute", "residual", "pooling", "concat"]
Shape = tuple[int | str | None, ...]


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
    reason: Reason


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
    # (anchor, members): the members take the anchor's scale (a Concat's inputs take its output's)
    scale_groups: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def uses(self) -> dict[str, tuple[Use, ...]]:
        """Tensor name -> the inputs that read its quantized form (activations and weights)."""
        out = {a.tensor: a.uses for a in self.activations}
        out.update((w.tensor, w.uses) for w in self.weights)
        return out

    def shared_amax(self, amax: Mapping[str, float]) -> dict[str, float]:
        """`amax` with every scale-group member set to its root anchor's value (where that has one).

        Groups chain (a Concat feeding a Concat): a member follows its anchor up to the last one.
        """
        parent = {m: anchor for anchor, members in self.scale_groups for m in members}
        out = dict(amax)
        for member in parent:
            root, seen = member, {member}
            while root in parent and parent[root] not in seen:
                root = parent[root]
                seen.add(root)
            if root in amax:
                out[member] = amax[root]
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


class _Graph:
    """Read-only indexes over the main graph that the rules share."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.nodes = list(model.graph.node)
        self.names = node_names(model)
        self.initializers = {init.name: init for init in model.graph.initializer}
        self.constants = set(self.initializers) | {
            o for n in self.nodes if n.op_type == "Constant" for o in n.output if o
        }
        self.producer: dict[str, int] = {}
        self.consumers: dict[str, list[int]] = defaultdict(list)
        for i, node in enumerate(self.nodes):
            self.producer.update((o, i) for o in node.output if o)
            for name in node.input:
                if name:
                    self.consumers[name].append(i)
        self.graph_outputs = {o.name for o in model.graph.output}

    @cached_property
    def _inferred(self) -> tuple[dict[str, Shape], dict[str, int]]:
        """Shapes (symbolic dims as names) and element types from ONNX shape inference; empty where unknown."""
        try:
            graph = onnx.shape_inference.infer_shapes(self.model).graph
        except Exception:  # shape inference is a hint here: placement must work without it
            graph = self.model.graph
        shapes: dict[str, Shape] = {}
        types: dict[str, int] = {}
        for info in (*graph.value_info, *graph.input, *graph.output):
            tensor_type = info.type.tensor_type
            if tensor_type.elem_type:
                types[info.name] = tensor_type.elem_type
            if tensor_type.HasField("shape"):
                shapes[info.name] = tuple(
                    d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor_type.shape.dim
                )
        return shapes, types

    def shape(self, name: str) -> Shape | None:
        return self._inferred[0].get(name)

    def is_activation(self, name: str) -> bool:
        """A float tensor computed at run time (unknown types count as float: onnxruntime checks later)."""
        if not name or name in self.constants:
            return False
        elem = self._inferred[1].get(name)
        return elem is None or elem in _FLOAT_TYPES


class _Builder:
    """Collects placements in deterministic order (first appearance wins)."""

    def __init__(self) -> None:
        self.activations: dict[str, list[Use]] = {}
        self.reasons: dict[str, Reason] = {}
        self.weights: dict[str, list[tuple[Use, int | None]]] = {}
        self.groups: dict[str, list[str]] = {}

    def activation(self, tensor: str, use: Use, reason: Reason) -> None:
        uses = self.activations.setdefault(tensor, [])
        if use not in uses:
            uses.append(use)
        self.reasons.setdefault(tensor, reason)

    def placement(self) -> Placement:
        weights = []
        for tensor, entries in self.weights.items():
            axes = {axis for _, axis in entries}
            if len(axes) == 1:  # one initializer read with two different channel axes stays float
                weights.append(WeightPlacement(tensor, axes.pop(), tuple(use for use, _ in entries)))
        groups = tuple((a, tuple(m)) for a, m in self.groups.items() if a in self.activations)
        return Placement(
            activations=tuple(ActivationPlacement(t, tuple(u), self.reasons[t]) for t, u in self.activations.items()),
            weights=tuple(weights),
            scale_groups=groups,
        )


def plan(model: onnx.ModelProto) -> Placement:
    """The full placement (activations, weights, shared scales) for the model's main graph."""
    g, out = _Graph(model), _Builder()
    for i, node in enumerate(g.nodes):
        if node.op_type in COMPUTE_OPS:
            _compute(g, out, i)
        elif node.op_type == "Add":
            _residual(g, out, i)
    # pooling and Concat depend on whether their outputs were quantized by the rules above;
    # walk backwards so a chain (Concat -> Concat -> Conv) resolves from the consumer end
    for i in reversed(range(len(g.nodes))):
        if g.nodes[i].op_type in POOL_OPS:
            _pooling(g, out, i)
        elif g.nodes[i].op_type == "Concat":
            _concat(g, out, i)
    return _ordered(g, out).placement()


def _compute(g: _Graph, out: _Builder, i: int) -> None:
    """Conv/ConvTranspose/Gemm/MatMul: every float activation input, and the weight per channel."""
    node, name = g.nodes[i], g.names[i]
    if node.op_type in ("Gemm", "MatMul") and _is_gemv(g, node):
        return
    for index, tensor in enumerate(node.input[:2]):
        if g.is_activation(tensor):
            out.activation(tensor, Use(name, index), "compute")
        elif index == 1 and tensor in g.initializers:
            axis = _weight_axis(node, len(g.initializers[tensor].dims))
            out.weights.setdefault(tensor, []).append((Use(name, index), axis))


def _is_gemv(g: _Graph, node: onnx.NodeProto) -> bool:
    """M or N is 1 by static shape: the activation's row count (rank >= 3) or the output's last dim."""
    a, y = g.shape(node.input[0]), g.shape(node.output[0])
    n_is_one = y is not None and len(y) >= 2 and y[-1] == 1
    m_is_one = a is not None and len(a) >= 3 and a[-2] == 1
    return n_is_one or m_is_one


def _residual(g: _Graph, out: _Builder, i: int) -> None:
    """An Add of two same-shape activations: the skip branch (see the module docstring)."""
    node = g.nodes[i]
    if len(node.input) != 2:
        return
    a, b = node.input
    if a == b or not (g.is_activation(a) and g.is_activation(b)) or not _same_shape(g.shape(a), g.shape(b)):
        return
    fa, fb = _fuses_into(g, a, i), _fuses_into(g, b, i)
    if fa and fb:  # fuse the later producer; the earlier one is the skip branch
        skip = [0] if g.producer[a] < g.producer[b] else [1]
    elif fa or fb:
        skip = [1] if fa else [0]
    else:
        skip = [0, 1]
    for index in skip:
        out.activation(node.input[index], Use(g.names[i], index), "residual")


def _fuses_into(g: _Graph, tensor: str, add_index: int) -> bool:
    """True when `tensor` comes from a compute op TensorRT can fuse with the Add at add_index."""
    reader = add_index
    while tensor in g.producer and tensor not in g.graph_outputs and g.consumers[tensor] == [reader]:
        node = g.nodes[g.producer[tensor]]
        if node.op_type in COMPUTE_OPS:
            return True
        if node.op_type not in _FUSE_THROUGH:
            return False
        reader, tensor = g.producer[tensor], node.input[0]
    return False


def _pooling(g: _Graph, out: _Builder, i: int) -> None:
    """A pool reads its input quantized, unless a quantized reader already makes it INT8.

    A MaxPool commutes with quantization, so when its output reaches a quantized tensor through
    commuting ops TensorRT moves that Q in front of it and pools in INT8 already: a second pair would
    be redundant (and make onnxruntime pool in a slow uint8 kernel). Average pools do not commute:
    their input always gets a pair, their output keeps its own scale.
    """
    node = g.nodes[i]
    source = node.input[0]
    if not g.is_activation(source):
        return
    if node.op_type == "MaxPool" and _reaches_quantized(g, out, node.output[0]):
        return
    out.activation(source, Use(g.names[i], 0), "pooling")


def _reaches_quantized(g: _Graph, out: _Builder, tensor: str) -> bool:
    """True when `tensor` is quantized, or feeds one reader that commutes with Q on the way to one."""
    while tensor not in out.activations:
        readers = g.consumers.get(tensor, [])
        if len(readers) != 1 or tensor in g.graph_outputs or g.nodes[readers[0]].op_type not in _COMMUTING:
            return False
        tensor = g.nodes[readers[0]].output[0]
    return True


def _concat(g: _Graph, out: _Builder, i: int) -> None:
    """A quantized Concat output: every float input quantized with the output's scale."""
    node = g.nodes[i]
    if node.output[0] not in out.activations:
        return
    inputs = [t for t in node.input if g.is_activation(t)]
    if len(inputs) != len(node.input):  # a constant operand would need its own scale: leave the Concat float
        return
    for index, tensor in enumerate(node.input):
        out.activation(tensor, Use(g.names[i], index), "concat")
    out.groups.setdefault(node.output[0], []).extend(t for t in inputs if t not in out.groups)


def _ordered(g: _Graph, out: _Builder) -> _Builder:
    """Activations in graph order (graph inputs first, then by producer), uses in node order."""
    position = {v.name: -1 for v in g.model.graph.input}
    position.update(g.producer)
    node_index = {name: i for i, name in enumerate(g.names)}
    ordered = _Builder()
    for tensor in sorted(out.activations, key=lambda t: (position.get(t, -1), list(out.activations).index(t))):
        for use in sorted(out.activations[tensor], key=lambda u: (node_index[u.node], u.index)):
            ordered.activation(tensor, use, out.reasons[tensor])
    ordered.weights, ordered.groups = out.weights, out.groups
    return ordered


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


def _same_shape(sa: Shape | None, sb: Shape | None) -> bool:
    """False only when inference proves the two shapes differ (a broadcast Add is no residual)."""
    if sa is None or sb is None:
        return True
    if len(sa) != len(sb):
        return False
    return all(x is None or y is None or x == y for x, y in zip(sa, sb))
