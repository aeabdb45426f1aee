"""FP16 fallback expressed in the graph, for TensorRT targets.

TensorRT 11 networks are always strongly typed (10.x's are, with STRONGLY_TYPED): a layer runs in
the type its ONNX tensors have, and builder precision flags no longer exist. A layer the accuracy
budget keeps out of INT8 would therefore run in FP32 -- several times slower than FP16 on tensor
cores -- unless the graph itself says FP16. So each kept compute node (Conv, ConvTranspose, Gemm,
MatMul) becomes an FP16 island: its float weights and bias are stored as float16 initializers, its
activation inputs go through Cast(to=FLOAT16), and its output is cast back to float32 for the rest
of the graph. (ModelOpt's `high_precision_dtype=fp16` converts the whole graph instead; islands keep
the change local to what the budget decided.) onnxruntime's CPU provider runs the same graph, so the
budget loop measures FP16 numerics, not FP32 ones.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .placement import COMPUTE_OPS

SUFFIX = "_fp16"


def fp16_islands(model: onnx.ModelProto, outputs: Iterable[str]) -> onnx.ModelProto:
    """A copy where every compute node whose first output is in `outputs` runs in float16."""
    wanted = set(outputs)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    if not wanted:
        return out
    inits = {i.name: i for i in graph.initializer}
    converted: dict[str, str] = {}
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type not in COMPUTE_OPS or not node.output or node.output[0] not in wanted:
            nodes.append(node)
            continue
        new = onnx.NodeProto()
        new.CopyFrom(node)
        for i, name in enumerate(node.input):
            if not name:
                continue
            if name in inits:
                if name not in converted:
                    half = numpy_helper.from_array(numpy_helper.to_array(inits[name]).astype(np.float16), name + SUFFIX)
                    graph.initializer.append(half)
                    converted[name] = half.name
                new.input[i] = converted[name]
            else:
                cast_out = f"{name}{SUFFIX}_for_{node.output[0]}"
                nodes.append(helper.make_node("Cast", [name], [cast_out], to=TensorProto.FLOAT16, name=cast_out))
                new.input[i] = cast_out
        result = node.output[0]
        new.output[0] = result + SUFFIX
        nodes += [new, helper.make_node("Cast", [new.output[0]], [result], to=TensorProto.FLOAT, name=result + "_to_fp32")]
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return out
