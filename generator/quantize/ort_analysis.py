"""Read-only analysis of a TensorRT-style Q/DQ model for the ORT rewrite (`ort_qdq`, whose docstring explains it).

It finds the activation Q -> DQ pairs and, per compute op, whether onnxruntime can fuse it and where
its output scale would come from (`FusionPlan`). Nothing here edits the model, so `needs_scale` and
`ort_extra_tensors` can ask the same questions as the rewrite without paying for it.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MIN_REDUCTION = 16

FUSABLE = ("Conv", "Gemm", "MatMul")  # ops with a QDQ fusion in ORT's CPU provider
_NEEDS_OUTPUT_Q = ("Conv",)  # QGemm / MatMulIntegerToFloat also run with a float output
# single-input ops that commute with a monotone quantizer: Q(f(Q(x))) == Q(f(x))
_COMMUTING = ("Relu", "Clip", "MaxPool", "Flatten", "Reshape", "Identity", "Squeeze", "Unsqueeze", "Transpose")
_KEEPS_NONNEG = ("MaxPool", "Flatten", "Reshape", "Identity", "Squeeze", "Unsqueeze", "Transpose",
                 "GlobalMaxPool", "AveragePool", "GlobalAveragePool")


class Encoding(str, enum.Enum):
    """How int8 activation pairs become uint8 ones (see `ort_qdq`)."""

    EXACT = "exact"
    UNSIGNED = "unsigned"
    UNSIGNED_FULL_RANGE = "unsigned-full-range"


@dataclass
class Pair:
    """An activation Q -> DQ(s) pair of the source model and its uint8 parameters."""

    tensor: str
    q: onnx.NodeProto
    dqs: list[onnx.NodeProto]
    scale: float
    zero_point: int
    new_scale: float = 0.0
    new_zero_point: int = 0


@dataclass
class FusionPlan:
    """How one compute op becomes fusable: its input pair, weight DQ and where its output scale comes from."""

    node: onnx.NodeProto
    x_pair: Pair
    w_dq: onnx.NodeProto
    path: list[onnx.NodeProto]  # commuting ops from the output to `out`
    out: Pair | None
    extra_amax: float | None = None

    @property
    def unscaled(self) -> bool:
        """True when the op cannot fuse for want of an output scale."""
        return self.out is None and self.extra_amax is None and self.node.op_type in _NEEDS_OUTPUT_Q


def needs_scale(model: onnx.ModelProto, *, min_reduction: int = MIN_REDUCTION) -> list[str]:
    """Outputs of compute ops of a Q/DQ model that stay float only because no scale reaches them (calibrate these)."""
    graph = Analysis(model, min_reduction)
    pairs = graph.find_pairs()
    plans = [graph.plan(node, pairs) for node in model.graph.node]
    return [
        p.node.output[0] for p in plans if p is not None and p.unscaled and p.node.output[0] not in graph.graph_outputs
    ]


def ort_extra_tensors(model: onnx.ModelProto) -> list[str]:
    """Tensors of the FP32 `model` that calibration observes for the ORT INT8 model, beyond the placement's.

    `needs_scale` of the model's TensorRT-style Q/DQ form (amax do not matter for it, so 1.0 stands in).
    """
    from ..quantize.placement import plan
    from ..quantize.qdq import quantize_model

    placement = plan(model)
    placeholder = dict.fromkeys((a.tensor for a in placement.activations), 1.0)
    return needs_scale(quantize_model(model, placeholder, placement=placement).model)


class Analysis:
    """A graph index (producers, readers, initializers) and the questions the rewrite asks of it."""

    def __init__(self, model: onnx.ModelProto, min_reduction: int, extra: Mapping[str, float] | None = None) -> None:
        self.model, self.graph = model, model.graph
        self.min_reduction, self.extra = min_reduction, dict(extra or {})
        self.inits = {i.name: i for i in self.graph.initializer}
        self.producer: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for node in self.graph.node:
            for name in node.output:
                self.producer[name] = node
            for name in node.input:
                if name:
                    self.consumers[name].append(node)
        self.graph_outputs = {o.name for o in self.graph.output}

    def const(self, name: str) -> np.ndarray | None:
        return numpy_helper.to_array(self.inits[name]) if name in self.inits else None

    def sole_reader(self, tensor: str) -> onnx.NodeProto | None:
        readers = self.consumers[tensor]
        return readers[0] if len(readers) == 1 and tensor not in self.graph_outputs else None

    def find_pairs(self) -> dict[str, Pair]:
        """Activation pairs by tensor: Q(float tensor, scalar scale, scalar int8 zp) read only by equal DQs."""
        found: dict[str, Pair] = {}
        twice: set[str] = set()
        for node in self.graph.node:
            if node.op_type != "QuantizeLinear" or len(node.input) < 3 or node.input[0] in self.inits:
                continue
            scale, zp = self.const(node.input[1]), self.const(node.input[2])
            if scale is None or zp is None or scale.shape != () or zp.shape != () or zp.dtype != np.int8:
                continue
            readers = self.consumers[node.output[0]]
            if node.output[0] in self.graph_outputs or not readers or any(
                r.op_type != "DequantizeLinear" or tuple(r.input[1:]) != tuple(node.input[1:3]) for r in readers
            ):
                continue
            if node.input[0] in found:
                twice.add(node.input[0])  # two Q nodes on one tensor: leave both alone
            found[node.input[0]] = Pair(node.input[0], node, list(readers), float(scale), int(zp))
        return {t: p for t, p in found.items() if t not in twice}

    def weight_dq(self, tensor: str) -> onnx.NodeProto | None:
        """The DequantizeLinear of an int8 initializer that produces `tensor`, if any."""
        node = self.producer.get(tensor)
        if node is None or node.op_type != "DequantizeLinear" or node.input[0] not in self.inits:
            return None
        return node if self.inits[node.input[0]].data_type == TensorProto.INT8 else None

    def plan(self, node: onnx.NodeProto, pairs: dict[str, Pair]) -> FusionPlan | None:
        """How `node` can be made fusable, or None when it must stay float."""
        if node.op_type not in FUSABLE or len(node.input) < 2:
            return None
        x_dq, w_dq = self.producer.get(node.input[0]), self.weight_dq(node.input[1])
        x_pair = next((p for p in pairs.values() if any(d is x_dq for d in p.dqs)), None)
        if x_pair is None or w_dq is None or (node.op_type == "Conv" and self.shallow(node, w_dq)):
            return None
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Gemm" and (float(attrs.get("beta", 1.0)) != 1.0 or int(attrs.get("transA", 0))):
            return None
        if len(node.input) > 2 and node.input[2] and self.bias_scale_shape(node, w_dq) is None:
            return None  # the bias must become an int32 initializer
        found = self.chain_to_pair(node.output[0], pairs)
        if found is not None:
            return FusionPlan(node, x_pair, w_dq, found[0], found[1])
        extra = None if node.output[0] in self.graph_outputs else self.extra.get(node.output[0])
        return FusionPlan(node, x_pair, w_dq, [], None, extra)

    def shallow(self, node: onnx.NodeProto, w_dq: onnx.NodeProto) -> bool:
        """A dense Conv with a tiny reduction (e.g. a 3x3 stem on 1 channel): ORT's float kernel wins."""
        dims = list(self.inits[w_dq.input[0]].dims)
        group = next((int(a.i) for a in node.attribute if a.name == "group"), 1)
        depthwise = group > 1 and len(dims) > 2 and dims[1] == 1  # MLAS has a uint8 depthwise kernel
        return not depthwise and int(np.prod(dims[1:])) < self.min_reduction

    def chain_to_pair(self, tensor: str, pairs: dict[str, Pair]) -> tuple[list[onnx.NodeProto], Pair] | None:
        """The commuting ops from `tensor` to a quantized tensor, each the only reader of its input."""
        path: list[onnx.NodeProto] = []
        while (node := self.sole_reader(tensor)) is not None:
            if tensor in pairs and node is pairs[tensor].q:
                return path, pairs[tensor]
            if node.op_type not in _COMMUTING or node.input[0] != tensor or len([o for o in node.output if o]) != 1:
                return None
            if not all(not name or name in self.inits for name in node.input[1:]):
                return None  # Clip bounds / Reshape shape must be constants
            path.append(node)
            tensor = node.output[0]
        return None

    def nonnegative(self, tensor: str) -> bool:
        """True when the graph guarantees `tensor` >= 0 (Relu, Clip(min >= 0), pooling/reshapes of those)."""
        for _ in range(64):
            node = self.producer.get(tensor)
            if node is None:
                return False
            if node.op_type == "Relu":
                return True
            if node.op_type == "Clip":
                low = self.const(node.input[1]) if len(node.input) > 1 and node.input[1] else None
                return low is not None and float(low) >= 0.0
            if node.op_type not in _KEEPS_NONNEG:
                return False
            tensor = node.input[0]
        return False

    def absorbs(self, node: onnx.NodeProto, scale: float) -> bool:
        """ORT's rule (IsClipMadeRedundantByQ) for a uint8 zero-point-0 Q after this Relu/Clip."""
        if node.op_type == "Relu":
            return True
        if node.op_type != "Clip":
            return False
        low, high = (self.const(node.input[i]) if len(node.input) > i and node.input[i] else None for i in (1, 2))
        q_low = -np.inf if low is None else np.rint(np.float32(low) / np.float32(scale))
        q_high = np.inf if high is None else np.rint(np.float32(high) / np.float32(scale))
        return bool(q_low <= 0 and q_high >= 255)

    def bias_scale_shape(self, node: onnx.NodeProto, w_dq: onnx.NodeProto) -> tuple[int, ...] | None:
        """Shape of the int32 bias scale ((C,) per channel, () per tensor); None if it cannot be quantized."""
        bias, w_scale = self.const(node.input[2]), self.const(w_dq.input[1])
        if bias is None or w_scale is None or bias.ndim != 1 or w_scale.size not in (1, bias.size):
            return None
        return (bias.size,) if w_scale.size == bias.size and bias.size > 1 else ()
