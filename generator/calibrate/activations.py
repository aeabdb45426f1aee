"""Recognise activations written out op by op and replace them with the one ONNX op that means the same.

PyTorch exports `x * relu6(x + 3) / 6` as Add -> Clip -> Mul -> Div (and `relu6(x + 3) / 6` as
Add -> Clip -> Div): three or four float ops, each a Q/DQ round trip between integer islands. ONNX has
HardSigmoid (opset 6) and HardSwish (opset 14) for exactly these, which onnxruntime runs as one
kernel and TensorRT fuses into the convolution before it. onnxruntime's basic optimizer (run first,
see prepare.py) has no such fusion, and no well-kept library ships one for the standard ops, hence
this small pass. GELU (`Gelu`, opset 20) and SiLU (no ONNX op) are left written out: onnxruntime's
own Gelu is a contrib op TensorRT cannot read.

Matching is exact: constants must be 3, 0, 6 and 6 (or 1/6) up to float32 rounding, and every
intermediate tensor must have no other reader and not be a graph output.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx


def fuse_activations(model: "onnx.ModelProto") -> dict[str, int]:
    """Rewrite `model` in place; returns how many of each op were formed ({'HardSwish': 12, ...})."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    formed: Counter[str] = Counter()
    if opset >= 6:
        graph = _Graph(model)
        formed["HardSigmoid"] = graph.hard_sigmoids()
        graph.commit()
    if opset >= 14:
        graph = _Graph(model)
        formed["HardSwish"] = graph.hard_swishes()
        graph.commit()
    return {op: n for op, n in formed.items() if n}


class _Graph:
    def __init__(self, model: "onnx.ModelProto") -> None:
        from onnx import numpy_helper

        self.graph = model.graph
        self.consts = {i.name: numpy_helper.to_array(i) for i in self.graph.initializer}
        for node in self.graph.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self.consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        self.producer = {o: n for n in self.graph.node for o in n.output}
        self.readers: dict[str, list["onnx.NodeProto"]] = defaultdict(list)
        for node in self.graph.node:
            for name in node.input:
                self.readers[name].append(node)
        self.outputs = {o.name for o in self.graph.output}
        self.pending: dict[str, "onnx.NodeProto"] = {}
        self.dead: set[str] = set()

    def is_const(self, name: str, value: float) -> bool:
        array = self.consts.get(name)
        return array is not None and array.size == 1 and bool(np.isclose(float(array.reshape(-1)[0]), value, rtol=1e-6, atol=1e-7))

    def private(self, name: str) -> bool:
        """Only one node reads `name` and it is no graph output (safe to fold away)."""
        return len(self.readers[name]) == 1 and name not in self.outputs

    def made_by(self, name: str, op: str) -> "onnx.NodeProto | None":
        node = self.producer.get(name)
        return node if node is not None and node.op_type == op else None

    def other(self, node: "onnx.NodeProto", name: str) -> str | None:
        """The other input of a two-input node, given one."""
        ins = list(node.input)
        if len(ins) != 2 or name not in ins:
            return None
        return ins[1] if ins[0] == name else ins[0]

    def relu6_of_x_plus_3(self, name: str) -> str | None:
        """x when `name` = Clip(Add(x, 3), 0, 6) with private intermediates, else None."""
        clip = self.made_by(name, "Clip")
        if clip is None or len(clip.input) != 3 or not (self.is_const(clip.input[1], 0.0) and self.is_const(clip.input[2], 6.0)):
            return None
        add = self.made_by(clip.input[0], "Add")
        if add is None or not self.private(clip.input[0]):
            return None
        x = next((a for a, b in (add.input, add.input[::-1]) if self.is_const(b, 3.0) and a not in self.consts), None)
        return x

    def over_6(self, node: "onnx.NodeProto") -> str | None:
        """The dividend when `node` is Div(a, 6) or Mul(a, 1/6), else None."""
        if node.op_type == "Div" and len(node.input) == 2 and self.is_const(node.input[1], 6.0):
            return node.input[0]
        if node.op_type == "Mul" and len(node.input) == 2:
            for a, b in (node.input, node.input[::-1]):
                if self.is_const(b, 1.0 / 6.0):
                    return a
        return None

    def hard_sigmoids(self) -> int:
        """relu6(x + 3) / 6 -> HardSigmoid(x, alpha=1/6, beta=0.5)."""
        from onnx import helper

        count = 0
        for node in list(self.graph.node):
            a = self.over_6(node)
            if a is None or not self.private(a) or (x := self.relu6_of_x_plus_3(a)) is None:
                continue
            self.replace(node, helper.make_node("HardSigmoid", [x], [node.output[0]], name=_name(node, "hardsigmoid"),
                                                alpha=1.0 / 6.0, beta=0.5), [self.producer[a], self.producer[self.producer[a].input[0]]])
            count += 1
        return count

    def hard_swishes(self) -> int:
        """x * HardSigmoid(x) and (x * relu6(x + 3)) / 6 -> HardSwish(x)."""
        from onnx import helper

        count = 0
        for node in list(self.graph.node):
            if node.op_type == "Mul" and len(node.input) == 2:  # x * HardSigmoid(x), alpha 1/6, beta 0.5
                for x, gate in (node.input, node.input[::-1]):
                    hs = self.made_by(gate, "HardSigmoid")
                    if hs is not None and hs.input[0] == x and self.private(gate) and _is_hard_swish_gate(hs):
                        self.replace(node, helper.make_node("HardSwish", [x], [node.output[0]], name=_name(node, "hardswish")), [hs])
                        count += 1
                        break
                continue
            a = self.over_6(node)
            mul = self.made_by(a, "Mul") if a is not None and self.private(a) else None
            if mul is None:
                continue
            for x, r in (mul.input, mul.input[::-1]):
                if self.private(r) and self.relu6_of_x_plus_3(r) == x:
                    clip = self.producer[r]
                    dead = [mul, clip, self.producer[clip.input[0]]]
                    self.replace(node, helper.make_node("HardSwish", [x], [node.output[0]], name=_name(node, "hardswish")), dead)
                    count += 1
                    break
        return count

    def replace(self, last: "onnx.NodeProto", new: "onnx.NodeProto", dead: list["onnx.NodeProto"]) -> None:
        """Queue: `new` takes the place of `last` (it writes the same output); `dead` (the chain before it) goes."""
        self.pending[last.output[0]] = new
        self.dead.update(n.output[0] for n in dead)
        for node in (*dead, last):
            for name in node.input:
                self.readers[name] = [r for r in self.readers[name] if r.output[0] != node.output[0]]
        for name in new.input:
            self.readers[name].append(new)
        for node in dead:
            self.producer.pop(node.output[0], None)
        self.producer[new.output[0]] = new

    def commit(self) -> None:
        """Apply the queued replacements in one pass (nodes are identified by their first output)."""
        nodes = [self.pending.get(n.output[0], n) for n in self.graph.node if n.output[0] not in self.dead]
        del self.graph.node[:]
        self.graph.node.extend(nodes)
        read = {name for node in nodes for name in node.input}
        unused = [i for i in self.graph.initializer if i.name not in read and i.name not in self.outputs]
        for init in unused:  # the folded constants (3, 0, 6) nobody reads any more
            self.graph.initializer.remove(init)
        self.pending.clear()
        self.dead.clear()


def _is_hard_swish_gate(node: "onnx.NodeProto") -> bool:
    values = {a.name: a.f for a in node.attribute}
    return bool(np.isclose(values.get("alpha", 0.2), 1.0 / 6.0) and np.isclose(values.get("beta", 0.5), 0.5))


def _name(node: "onnx.NodeProto", op: str) -> str:
    """A unique node name: optimizers leave names empty, output names are unique by ONNX's rules."""
    return f"{node.name or node.output[0]}_{op}"
