"""The double's ONNX parser and layer selection: what TensorRT's network and engine inspector would show.

Plain data, no TensorRT: `parse_onnx` turns an ONNX file into network layers the way TensorRT 10's
ONNX parser does for the ops trgen's tests use (Conv weights become layer weights; an initializer
read as a tensor becomes a CONSTANT layer named after it; Gemm becomes a MATRIX_MULTIPLY plus an
ELEMENTWISE bias add joined by an unnamed tensor). `engine_layers` picks each layer's precision as
TensorRT does and writes the engine inspector's JSON layer list ("Layers", "Format/Datatype"):
- strongly typed networks run a Conv/MatMul in INT8 only when a DequantizeLinear feeds its data input;
- weakly typed networks with BuilderFlag.INT8 run a layer in INT8 only when every float tensor it reads
  or writes has a scale in the calibration cache; otherwise it falls back (FP16 with BuilderFlag.FP16,
  else FP32) and TensorRT only logs a warning (`missing_scales` returns those tensors);
- constants and Q/DQ layers are folded away and an activation following a Conv or an add is fused
  into it ("conv + relu"), as TensorRT's fusions do;
- engines with dynamic input shapes print "N/A due to dynamic shapes" as the format unless the
  inspector was given an execution context with every input shape set.
"""

from __future__ import annotations

from typing import Any

_ONNX_TO_TRT = {1: "FLOAT", 10: "HALF", 3: "INT8", 2: "UINT8", 6: "INT32", 7: "INT64", 9: "BOOL", 16: "BF16"}
_LAYER_TYPES = {
    "Conv": "CONVOLUTION", "ConvTranspose": "DECONVOLUTION", "MatMul": "MATRIX_MULTIPLY", "Relu": "ACTIVATION",
    "Clip": "ACTIVATION", "Sigmoid": "ACTIVATION", "MaxPool": "POOLING", "AveragePool": "POOLING",
    "GlobalAveragePool": "REDUCE", "Add": "ELEMENTWISE", "Mul": "ELEMENTWISE", "Flatten": "SHUFFLE",
    "Reshape": "SHUFFLE", "Log": "UNARY", "QuantizeLinear": "QUANTIZE", "DequantizeLinear": "DEQUANTIZE",
    "Softmax": "SOFTMAX", "Concat": "CONCATENATION", "Identity": "IDENTITY", "Cast": "CAST",
}
_WEIGHT_INPUTS = {"Conv": (1, 2), "ConvTranspose": (1, 2)}  # become layer weights, not tensors
INT8_CAPABLE = {"CONVOLUTION", "DECONVOLUTION", "MATRIX_MULTIPLY", "ACTIVATION", "POOLING", "ELEMENTWISE", "SHUFFLE"}
_FORMATS = {
    "INT8": "Thirty-two wide channel vectorized row major Int8 format",
    "FP16": "Channel major FP16 format where channel % 8 == 0",
    "FP32": "Row major linear FP32 format",
}
DYNAMIC = "N/A due to dynamic shapes"


def parse_onnx(path: str) -> dict[str, Any]:
    """{'inputs': [...], 'outputs': [...], 'layers': [...], 'tensors': {name: {dtype, shape}}} for `path`."""
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(path, load_external_data=False))
    graph = model.graph
    init = {i.name: i for i in graph.initializer}
    tensors: dict[str, dict[str, Any]] = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        kind = value.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else -1 for d in kind.shape.dim]
        tensors[value.name] = {"dtype": _ONNX_TO_TRT.get(kind.elem_type, "FLOAT"), "shape": shape}
    layers: list[dict[str, Any]] = []

    def layer(name: str, kind: str, inputs: list[str], outputs: list[str]) -> None:
        layers.append({"name": name, "type": kind, "inputs": inputs, "outputs": outputs})

    constants: set[str] = set()

    def tensor_input(name: str) -> str:
        if name in init and name not in constants:
            constants.add(name)
            tensors[name] = {"dtype": _ONNX_TO_TRT.get(init[name].data_type, "FLOAT"), "shape": list(init[name].dims)}
            layer(f"{name}_const", "CONSTANT", [], [name])
        return name

    for index, node in enumerate(graph.node):
        name = node.name or f"node_of_{node.output[0]}"
        weights = _WEIGHT_INPUTS.get(node.op_type, ())
        inputs = [tensor_input(t) for i, t in enumerate(node.input) if t and i not in weights]
        if node.op_type == "Gemm":
            unnamed = f"(Unnamed Layer* {len(layers)}) [Matrix Multiply]_output"
            tensors[unnamed] = dict(tensors.get(node.output[0], {"dtype": "FLOAT", "shape": []}))
            layer(name, "MATRIX_MULTIPLY", inputs[:2], [unnamed] if len(inputs) > 2 else list(node.output))
            if len(inputs) > 2:
                layer(f"{name}_bias", "ELEMENTWISE", [unnamed, inputs[2]], list(node.output))
            continue
        layer(name, _LAYER_TYPES.get(node.op_type, "PLUGIN_V3"), inputs, list(node.output))
    io = {
        "inputs": [dict(tensors[v.name], name=v.name) for v in graph.input if v.name not in init],
        "outputs": [dict(tensors[v.name], name=v.name) for v in graph.output],
    }
    return {**io, "layers": layers, "tensors": tensors}


def missing_scales(network: dict[str, Any], scales: set[str]) -> list[str]:
    """Float tensors of INT8-capable layers that have no scale: TensorRT runs those layers in float."""
    missing: dict[str, None] = {}
    for layer in network["layers"]:
        if layer["type"] in INT8_CAPABLE:
            for name in _float_tensors(network, layer):
                if name not in scales:
                    missing[name] = None
    return list(missing)


def engine_layers(
    network: dict[str, Any], *, strongly_typed: bool, flags: set[str], scales: set[str] | None
) -> list[dict[str, Any]]:
    """The engine inspector's 'Layers' list for `network` built with these settings (formats resolved)."""
    producers = {out: layer for layer in network["layers"] for out in layer["outputs"]}
    consumers: dict[str, list[dict[str, Any]]] = {}
    for layer in network["layers"]:
        for name in layer["inputs"]:
            consumers.setdefault(name, []).append(layer)
    result: list[dict[str, Any]] = []
    fused: set[int] = set()
    for layer in network["layers"]:
        if layer["type"] in {"CONSTANT", "QUANTIZE", "DEQUANTIZE"} or id(layer) in fused:
            continue
        outputs, names = layer["outputs"], [layer["name"]]
        follower = _fusable_activation(layer, consumers)
        if follower is not None:
            fused.add(id(follower))
            outputs, names = follower["outputs"], names + [follower["name"]]
        precision = _precision(network, layer, producers, strongly_typed=strongly_typed, flags=flags, scales=scales)
        if follower is not None and not strongly_typed:  # a fused pair runs INT8 only if both halves can
            other = _precision(network, follower, producers, strongly_typed=False, flags=flags, scales=scales)
            precision = other if precision == "INT8" else precision
        inputs = [t for t in layer["inputs"] if producers.get(t, {}).get("type") != "CONSTANT"]
        result.append({
            "Name": " + ".join(names),
            "LayerType": "CaskConvolution" if layer["type"] == "CONVOLUTION" else layer["type"].title().replace("_", ""),
            "Inputs": [_tensor(network, t, _FORMATS[precision]) for t in inputs],
            "Outputs": [_tensor(network, t, _out_format(network, t, precision, consumers, strongly_typed)) for t in outputs],
            "TacticValue": "0x0000000000000000",
        })
    return result


def _fusable_activation(layer: dict[str, Any], consumers: dict[str, list[dict[str, Any]]]) -> dict[str, Any] | None:
    if layer["type"] not in {"CONVOLUTION", "ELEMENTWISE"} or len(layer["outputs"]) != 1:
        return None
    users = consumers.get(layer["outputs"][0], [])
    return users[0] if len(users) == 1 and users[0]["type"] == "ACTIVATION" else None


def _float_tensors(network: dict[str, Any], layer: dict[str, Any]) -> list[str]:
    names = [*layer["inputs"], *layer["outputs"]]
    return [n for n in names if network["tensors"].get(n, {}).get("dtype") in {"FLOAT", "HALF"}]


def _precision(
    network: dict[str, Any], layer: dict[str, Any], producers: dict[str, dict[str, Any]], *,
    strongly_typed: bool, flags: set[str], scales: set[str] | None,
) -> str:
    if strongly_typed:
        data = layer["inputs"][0] if layer["inputs"] else None
        if layer["type"] in {"CONVOLUTION", "MATRIX_MULTIPLY"} and producers.get(data or "", {}).get("type") == "DEQUANTIZE":
            return "INT8"
        dtypes = {network["tensors"].get(t, {}).get("dtype") for t in layer["outputs"]}
        return "FP16" if "HALF" in dtypes else "FP32"
    if "INT8" in flags and scales is not None and layer["type"] in INT8_CAPABLE:
        if all(name in scales for name in _float_tensors(network, layer)):
            return "INT8"
    return "FP16" if "FP16" in flags else "FP32"


def _out_format(network: dict[str, Any], name: str, precision: str, consumers: Any, strongly_typed: bool) -> str:
    if precision == "INT8" and strongly_typed:  # INT8 out only when a Q follows (fused); else dequantized
        quantized = any(c["type"] == "QUANTIZE" for c in consumers.get(name, []))
        return _FORMATS["INT8" if quantized else "FP32"]
    return _FORMATS[precision]


def _tensor(network: dict[str, Any], name: str, fmt: str) -> dict[str, Any]:
    shape = network["tensors"].get(name, {}).get("shape", [])
    return {"Name": name, "Location": "Device", "Dimensions": shape, "Format/Datatype": fmt}


def resolve_formats(layers: list[dict[str, Any]], dynamic: bool, context_shapes_set: bool) -> list[dict[str, Any]]:
    """What get_engine_information prints: formats hidden for dynamic engines without a shaped context."""
    if not dynamic or context_shapes_set:
        return layers
    hidden = []
    for layer in layers:
        copy = dict(layer)
        for side in ("Inputs", "Outputs"):
            copy[side] = [dict(t, **{"Format/Datatype": DYNAMIC}) for t in layer[side]]
        hidden.append(copy)
    return hidden
