"""Rewrite a TensorRT-style Q/DQ model so that onnxruntime's CPU provider runs it with integer kernels.

The quantize stage puts Q/DQ pairs where TensorRT wants them: on the *inputs* of Conv/Gemm/MatMul and
residual skip branches, int8, zero point 0. onnxruntime's CPU provider replaces DQ -> Conv -> Q by
QLinearConv (DQ -> Gemm [-> Q] by QGemm) only when every input, the bias included (int32), comes
from a DequantizeLinear and, for Conv, the output goes to a QuantizeLinear, possibly through a
Relu/Clip that the Q makes redundant (uint8 zero point 0). Otherwise it dequantizes and runs the
float kernel, and INT8 is slower than FP32. Its x86 kernels also want uint8 activations. So, from the
Q/DQ model (plus, optionally, the amax of a few more tensors), `optimize_for_ort` writes:

* uint8 activations: an int8 pair (scale s, zero point z) becomes uint8 (s, z + 128): same grid, same
  clamp, bit-exact (`Encoding.EXACT`). `Encoding.UNSIGNED` (default) gives a provably non-negative
  tensor (after Relu, Clip(min >= 0), pooling/reshapes of those) zero point 0 so that ORT drops the
  Relu/Clip and pools in uint8: with scale s when that still absorbs the Relu/Clip before it (values
  up to amax unchanged; saturation at 255*s instead of amax), else with amax/255 (TensorRT's clamp,
  finer steps). `Encoding.UNSIGNED_FULL_RANGE` uses amax/255 for every non-negative tensor.
* output pairs: a compute op whose output reaches a quantized tensor only through ops that commute
  with quantization (Relu, Clip, MaxPool, Flatten, Reshape, ...; one reader each) gets a pair with
  that tensor's parameters on its output, or after the Relu/Clip the pair absorbs. In exact arithmetic
  Q(f(Q(x))) = Q(f(x)) for these ops, so this adds no error beyond ORT's integer requantization.
  Where no scale propagates (e.g. a Conv feeding a residual Add) the op stays float unless
  `extra_amax` gives its output's amax (`needs_scale` lists those outputs; `ort_extra_tensors` lists
  them from the FP32 model, for the calibrate stage): then it gets a new pair, a quantization point
  TensorRT does not have.
* int32 bias round(b / (s_x * s_w)) for the ops made fusable. A dense Conv with a tiny reduction
  (C_in/group * kh * kw < `min_reduction`, e.g. a 3x3 stem on one channel) stays float, ORT's float
  kernel is faster there; a Relu -> MaxPool after it becomes MaxPool -> Relu (bit-exact) so that
  ORT's Q propagation does not pull the pooling into a slow uint8 NCHW kernel. Ops left float read
  their weights as float initializers (the weight DQ folded: bit-exact, no per-run dequantization).

`ort_analysis` finds the pairs and decides what each compute op can become (read-only); this module
edits a copy of the model accordingly: pairs re-encoded, output pairs and int32 biases for the fusable
ops, folded float weights for the others, new nodes placed right after the tensor they read, then
`rebuild` drops what nobody reads any more and sorts the graph.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import GeneratorError
from ..quantize.qdq import activation_scale
from .ort_analysis import FUSABLE, MIN_REDUCTION, Analysis, Encoding, FusionPlan, Pair, needs_scale, ort_extra_tensors

__all__ = [
    "MIN_REDUCTION", "TRANSFORM_REVISION", "Encoding", "OrtInt8Result", "needs_scale", "optimize_for_ort",
    "ort_extra_tensors",
]

TRANSFORM_REVISION = 1  # bump when `optimize_for_ort` writes something else, so built copies are redone
_FULL_RANGE = np.float32(127) / np.float32(255)


@dataclass(frozen=True)
class OrtInt8Result:
    """The ORT model; compute nodes made fusable, those left float, tensors given zero point 0."""

    model: onnx.ModelProto
    fused: tuple[str, ...]
    kept_float: tuple[str, ...]
    unsigned: tuple[str, ...]


def optimize_for_ort(
    model: onnx.ModelProto,
    *,
    encoding: Encoding = Encoding.UNSIGNED,
    fuse: bool = True,
    min_reduction: int = MIN_REDUCTION,
    extra_amax: Mapping[str, float] | None = None,
) -> OrtInt8Result:
    """A new model (the input is not modified). `fuse=False` only re-encodes the pairs (option a).

    `extra_amax`: calibrated amax of compute-op outputs no pair's scale reaches (`needs_scale`);
    other names in it are ignored.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return _Rewriter(out, encoding, min_reduction, extra_amax).run(fuse)


class _Rewriter(Analysis):
    def __init__(
        self, model: onnx.ModelProto, encoding: Encoding, min_reduction: int, extra: Mapping[str, float] | None
    ) -> None:
        super().__init__(model, min_reduction, extra)
        self.encoding = encoding
        self.taken = set(self.inits) | {i.name for i in self.graph.input} | self.graph_outputs
        for node in self.graph.node:
            self.taken.update((node.name, *node.input, *node.output))
        self.new_inits: list[TensorProto] = []
        self.insert_after: dict[str, list[onnx.NodeProto]] = defaultdict(list)  # "" = before all nodes
        self.retyped: set[str] = set()

    def fresh(self, base: str) -> str:
        name, i = base, 1
        while name in self.taken:
            name, i = f"{base}_{i}", i + 1
        self.taken.add(name)
        return name

    def add_init(self, array: np.ndarray, base: str) -> str:
        name = self.fresh(base)
        self.new_inits.append(numpy_helper.from_array(array, name))
        return name

    def run(self, fuse: bool) -> OrtInt8Result:
        pairs = self.find_pairs()
        plans = [p for node in list(self.graph.node) if fuse and (p := self.plan(node, pairs)) and not p.unscaled]
        absorber = {p.out.tensor: p.path[0] for p in plans if p.out is not None and p.path}
        unsigned = [pair.tensor for pair in pairs.values() if self.encode(pair, absorber.get(pair.tensor))]
        for pair in pairs.values():
            self.reencode(pair)
        planned = {id(p.node) for p in plans}
        fused, kept = [], []
        for i, node in enumerate(list(self.graph.node)):
            name = node.name or f"{node.op_type}_{i}"
            if id(node) in planned:
                fused.append(name)
            elif fuse and node.op_type in (*FUSABLE, "ConvTranspose"):
                kept.append(name)
                self.fold_weight(node)
                self.pool_before_relu(node)
        for plan in plans:
            self.apply(plan)
        self.rebuild()
        try:
            onnx.checker.check_model(self.model)
        except onnx.checker.ValidationError as exc:
            raise GeneratorError(f"the onnxruntime INT8 model fails onnx.checker: {str(exc).splitlines()[0]}") from None
        return OrtInt8Result(self.model, tuple(fused), tuple(kept), tuple(unsigned))

    def encode(self, pair: Pair, absorber: onnx.NodeProto | None) -> bool:
        """Choose the pair's uint8 parameters; True when it gets zero point 0."""
        pair.new_scale, pair.new_zero_point = pair.scale, pair.zero_point + 128
        if self.encoding is Encoding.EXACT or pair.zero_point != 0 or not self.nonnegative(pair.tensor):
            return False
        full_range = float(np.float32(pair.scale) * _FULL_RANGE)
        pair.new_zero_point = 0
        if self.encoding is Encoding.UNSIGNED_FULL_RANGE:
            pair.new_scale = full_range
        elif absorber is not None and not self.absorbs(absorber, pair.scale) and self.absorbs(absorber, full_range):
            pair.new_scale = full_range
        return True

    def reencode(self, pair: Pair) -> None:
        """Point the pair's Q and DQs at new uint8 parameters."""
        scale = pair.q.input[1]
        if pair.new_scale != pair.scale:
            scale = self.add_init(np.array(pair.new_scale, dtype=np.float32), f"{pair.tensor}_scale_u8")
        zp = self.add_init(np.array(pair.new_zero_point, dtype=np.uint8), f"{pair.tensor}_zero_point_u8")
        for node in (pair.q, *pair.dqs):
            node.input[1], node.input[2] = scale, zp
        self.retyped.add(pair.q.output[0])

    def apply(self, plan: FusionPlan) -> None:
        """Give the compute op its output pair (when it needs one) and an int32 bias."""
        node, out = plan.node, plan.out
        if out is not None and plan.path:
            first = plan.path[0]
            if out.new_zero_point == 0 and first.op_type in ("Relu", "Clip") and self.absorbs(first, out.new_scale):
                if first.output[0] != out.tensor:
                    self.add_pair(first.output[0], out.new_scale, out.new_zero_point)
            else:  # the raw output is signed: quantize it on the pair's original grid and range
                self.add_pair(node.output[0], out.scale, out.zero_point + 128)
        elif plan.extra_amax is not None:
            self.add_pair(node.output[0], float(activation_scale(plan.extra_amax)), 128)
        if len(node.input) > 2 and node.input[2]:
            self.quantize_bias(node, plan.x_pair, plan.w_dq)

    def add_pair(self, tensor: str, scale: float, zero_point: int) -> None:
        """Q -> DQ on `tensor`, read by its (single) reader."""
        s = self.add_init(np.array(scale, dtype=np.float32), f"{tensor}_scale")
        z = self.add_init(np.array(zero_point, dtype=np.uint8), f"{tensor}_zero_point")
        q_out, dq_out = self.fresh(f"{tensor}_QuantizeLinear_Output"), self.fresh(f"{tensor}_DequantizeLinear_Output")
        for reader in self.consumers[tensor]:
            for i, name in enumerate(reader.input):
                if name == tensor:
                    reader.input[i] = dq_out
        self.insert_after[tensor] += [
            helper.make_node("QuantizeLinear", [tensor, s, z], [q_out], name=self.fresh(f"{tensor}_QuantizeLinear")),
            helper.make_node("DequantizeLinear", [q_out, s, z], [dq_out], name=self.fresh(f"{tensor}_DequantizeLinear")),
        ]

    def quantize_bias(self, node: onnx.NodeProto, x_pair: Pair, w_dq: onnx.NodeProto) -> None:
        """bias -> int32 with scale s_x * s_w (per output channel), as QLinearConv/QGemm read it."""
        bias, w_scale, shape = self.const(node.input[2]), self.const(w_dq.input[1]), self.bias_scale_shape(node, w_dq)
        assert bias is not None and w_scale is not None and shape is not None  # checked by `plan`
        scale = (np.float32(x_pair.new_scale) * w_scale.astype(np.float32).reshape(shape)).astype(np.float32)
        per_channel = shape != ()
        info = np.iinfo(np.int32)
        q = np.clip(np.rint(bias.astype(np.float32) / scale), info.min, info.max).astype(np.int32)
        base = node.input[2]
        q_name = self.add_init(q, f"{base}_int32")
        s_name = self.add_init(scale, f"{base}_scale")
        z_name = self.add_init(np.zeros(scale.shape, dtype=np.int32), f"{base}_zero_point")
        dq_out = self.fresh(f"{base}_DequantizeLinear_Output")
        dq = helper.make_node("DequantizeLinear", [q_name, s_name, z_name], [dq_out], name=self.fresh(f"{base}_DequantizeLinear"))
        if per_channel:
            dq.attribute.append(helper.make_attribute("axis", 0))
        self.insert_after[""].append(dq)
        node.input[2] = dq_out

    def fold_weight(self, node: onnx.NodeProto) -> None:
        """A compute op left float reads its dequantized weight as a float initializer (bit-exact)."""
        w_dq = self.weight_dq(node.input[1]) if len(node.input) > 1 else None
        if w_dq is None:
            return
        q, scale = self.const(w_dq.input[0]), self.const(w_dq.input[1])
        zp = self.const(w_dq.input[2]) if len(w_dq.input) > 2 and w_dq.input[2] else np.zeros((), np.int8)
        assert q is not None and scale is not None and zp is not None
        axis = next((int(a.i) for a in w_dq.attribute if a.name == "axis"), 1) % max(q.ndim, 1)
        shape = [1] * q.ndim
        shape[axis] = -1
        scale = scale.astype(np.float32).reshape(shape if scale.ndim else ())
        zp = zp.astype(np.float32).reshape(shape if zp.ndim else ())
        node.input[1] = self.add_init(((q.astype(np.float32) - zp) * scale).astype(np.float32), f"{w_dq.input[0]}_dequantized")

    def pool_before_relu(self, node: onnx.NodeProto) -> None:
        """float op -> Relu -> MaxPool becomes op -> MaxPool -> Relu (max commutes with Relu: bit-exact)."""
        relu = self.sole_reader(node.output[0])
        pool = self.sole_reader(relu.output[0]) if relu is not None and relu.op_type == "Relu" else None
        if relu is None or pool is None or pool.op_type != "MaxPool" or len([o for o in pool.output if o]) != 1:
            return
        a, b, c = node.output[0], relu.output[0], pool.output[0]
        pool.input[0], pool.output[0], relu.input[0], relu.output[0] = a, b, b, c  # `rebuild` reorders them
        self.retyped.update((b, c))  # their shapes changed places

    def rebuild(self) -> None:
        """New nodes in, unread nodes and initializers out, stale value_info dropped, nodes sorted."""
        nodes: list[onnx.NodeProto] = list(self.insert_after.pop("", []))
        for tensor in [i.name for i in self.graph.input]:
            nodes += self.insert_after.pop(tensor, [])
        for node in self.graph.node:
            nodes.append(node)
            for name in node.output:
                nodes += self.insert_after.pop(name, [])
        needed = {o.name for o in self.graph.output}
        kept: list[onnx.NodeProto] = []
        for node in reversed(_topological(nodes)):  # drop nodes nobody reads any more (folded weight DQs)
            if any(o in needed for o in node.output):
                kept.append(node)
                needed.update(n for n in node.input if n)
        kept.reverse()
        del self.graph.node[:]
        self.graph.node.extend(kept)
        inits = [i for i in (*self.graph.initializer, *self.new_inits) if i.name in needed]
        del self.graph.initializer[:]
        self.graph.initializer.extend(inits)
        infos = [v for v in self.graph.value_info if v.name in needed and v.name not in self.retyped]
        del self.graph.value_info[:]
        self.graph.value_info.extend(infos)


def _topological(nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
    """Kahn's algorithm, always taking the earliest ready node: the given order where it is valid."""
    producer = {name: i for i, node in enumerate(nodes) for name in node.output if name}
    waiting = [{producer[n] for n in node.input if n in producer} for node in nodes]
    readers: dict[int, list[int]] = defaultdict(list)
    for i, deps in enumerate(waiting):
        for d in deps:
            readers[d].append(i)
    ready = [i for i, deps in enumerate(waiting) if not deps]
    heapq.heapify(ready)
    order: list[onnx.NodeProto] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(nodes[i])
        for r in readers[i]:
            waiting[r].discard(i)
            if not waiting[r]:
                heapq.heappush(ready, r)
    if len(order) != len(nodes):
        raise GeneratorError("the onnxruntime INT8 model has a cycle (a bug in trgen's ORT transform)")
    return order
