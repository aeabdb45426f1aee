"""Check a Q/DQ model against the rules TensorRT enforces, so a violation fails here, not at build time.

TensorRT's explicit quantization accepts only symmetric INT8: zero points 0, strictly positive float
scales, scalar scales on activations, 8-bit inputs to DequantizeLinear (no int32 bias), and weights
in [-127, 127]. Used by the tests and available to later stages before a TensorRT build.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper


def tensorrt_problems(model: onnx.ModelProto) -> list[str]:
    """One line per violation (empty when the model is acceptable)."""
    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    problems: list[str] = []
    for node in graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        where = f"{node.op_type} {node.name or node.output[0]!r}"
        if len(node.input) < 3 or node.input[2] not in inits:
            problems.append(f"{where}: zero point must be an explicit int8 initializer")
        else:
            zp = inits[node.input[2]]
            if zp.data_type != TensorProto.INT8:
                problems.append(f"{where}: zero point is {TensorProto.DataType.Name(zp.data_type)}, not INT8")
            elif np.any(numpy_helper.to_array(zp) != 0):
                problems.append(f"{where}: non-zero zero point (TensorRT is symmetric only)")
        scale = inits.get(node.input[1]) if len(node.input) > 1 else None
        if scale is None:
            problems.append(f"{where}: scale must be a constant initializer")
            continue
        values = numpy_helper.to_array(scale)
        if scale.data_type != TensorProto.FLOAT:
            problems.append(f"{where}: scale is {TensorProto.DataType.Name(scale.data_type)}, not FLOAT")
        if not np.all(np.isfinite(values)) or np.any(values <= 0):
            problems.append(f"{where}: scales must be finite and strictly positive")
        data = inits.get(node.input[0])
        if node.op_type == "DequantizeLinear" and data is not None:  # a stored (weight) tensor
            if data.data_type != TensorProto.INT8:
                problems.append(f"{where}: input is {TensorProto.DataType.Name(data.data_type)}; TensorRT dequantizes INT8 only")
            elif np.any(numpy_helper.to_array(data) == -128):
                problems.append(f"{where}: weights must lie in [-127, 127]")
        elif values.size != 1:
            problems.append(f"{where}: activation scales must be scalars (per-tensor)")
    return problems


# ops a DequantizeLinear may feed in a TensorRT-style model: the INT8 layers and those TensorRT runs
# in INT8 around them (placement.py); a DQ feeding anything else forces a conversion to float there
_INT8_READERS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "MaxPool", "AveragePool", "GlobalAveragePool",
                           "Concat"})


def placement_problems(model: onnx.ModelProto) -> list[str]:
    """Placement hygiene, one line per problem: a Q without its DQ, a DQ nobody reads (dangling), or an
    activation DQ whose readers cannot run INT8 (a forced format conversion around a float layer)."""
    graph = model.graph
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    inits = {init.name for init in graph.initializer}
    outputs = {o.name for o in graph.output}
    problems: list[str] = []
    for node in graph.node:
        where = f"{node.op_type} {node.name or node.output[0]!r}"
        after = readers.get(node.output[0], []) if node.output else []
        if node.op_type == "QuantizeLinear" and not any(r.op_type == "DequantizeLinear" for r in after):
            problems.append(f"{where}: no DequantizeLinear reads it")
        if node.op_type != "DequantizeLinear":
            continue
        if not after and node.output[0] not in outputs:
            problems.append(f"{where}: dangling (nobody reads its output)")
        elif node.input[0] not in inits and any(r.op_type not in _INT8_READERS for r in after):
            odd = sorted({r.op_type for r in after if r.op_type not in _INT8_READERS})
            problems.append(f"{where}: read by {', '.join(odd)}, which cannot run INT8 (a forced conversion)")
    return problems
