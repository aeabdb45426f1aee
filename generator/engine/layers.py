"""What TensorRT actually chose, layer by layer: the engine inspector's JSON, parsed and judged.

TensorRT may run a layer meant for INT8 in FP16/FP32 (a missing scale, no INT8 tactic, a Q/DQ pair
it could not fuse) and only say so in a log line. Built with `ProfilingVerbosity.DETAILED`, the
engine inspector lists every layer with the "Format/Datatype" of each input and output; with dynamic
shapes it prints "N/A due to dynamic shapes" unless given an execution context whose input shapes are
all set, so the profile's OPT shapes are set first. The layers that should run INT8:
- explicit (Q/DQ) builds: each Conv / ConvTranspose / Gemm / MatMul whose data input a DequantizeLinear feeds;
- implicit builds: every Conv / ConvTranspose / Gemm / MatMul.
A layer is found by its ONNX node name among the " + "-joined names TensorRT gives fused layers.
The report is written beside the plan as `model.plan.layers.json` and read by `trgen verify`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import GeneratorError
from ..fileio import atomic_write_text
from ..signature import Signature, load_onnx
from . import trt_api

COMPUTE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
_NOT_COMPUTE = ("Reformat", "NoOp", "Shuffle", "Constant")
_PRECISIONS = (  # "Format/Datatype" substring (lowercase) -> precision; first match wins
    ("int8", "INT8"), ("fp8", "FP8"), ("int4", "INT4"), ("bf16", "BF16"), ("fp16", "FP16"), ("half", "FP16"),
    ("fp32", "FP32"), ("float", "FP32"), ("int32", "INT32"), ("int64", "INT64"), ("bool", "BOOL"),
)


@dataclass(frozen=True)
class LayerInfo:
    name: str
    type: str
    precision: str  # INT8 when any input (or the weights) is Int8, else the data input's; 'unknown' if not printed
    inputs: tuple[str, ...]  # "Format/Datatype" of each input
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class PrecisionReport:
    """Per-layer precisions, and the layers meant to run INT8 that did not (or were not found)."""

    layers: tuple[LayerInfo, ...]
    expected_int8: tuple[str, ...]
    not_int8: tuple[tuple[str, str, str], ...] = ()  # (ONNX node, TensorRT layer, its precision)
    missing: tuple[str, ...] = ()  # expected ONNX nodes no layer name mentions
    unscaled: tuple[str, ...] = field(default=())  # implicit INT8: parser-made tensors without a scale
    unverified: tuple[str, ...] = ()  # inside a Myelin region: TensorRT does not print their precision

    @property
    def counts(self) -> dict[str, int]:
        """Layers per precision, Reformat/NoOp layers left out (they move data, compute nothing)."""
        return dict(Counter(layer.precision for layer in self.layers if layer.type not in _NOT_COMPUTE))

    @property
    def passed(self) -> bool:
        return not self.not_int8 and not self.missing

    def problems(self) -> list[str]:
        """One phrase per layer that should be INT8 and is not."""
        found = [f"{node} runs {precision} (layer {layer!r})" for node, layer, precision in self.not_int8]
        return found + [f"{node} is in no layer of the engine" for node in self.missing]

    def notes(self) -> list[str]:
        """What could not be judged (not a failure): nodes inside Myelin regions."""
        if not self.unverified:
            return []
        return [f"{len(self.unverified)} node(s) inside Myelin regions, whose precision TensorRT does not print: "
                + ", ".join(self.unverified[:5]) + (" ..." if len(self.unverified) > 5 else "")]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(counts=self.counts, passed=self.passed)
        return data


def precision_of(fmt: str) -> str:
    """'Thirty-two wide channel vectorized row major Int8 format' -> 'INT8'; 'N/A ...' -> 'unknown'."""
    lowered = fmt.lower()
    return next((precision for key, precision in _PRECISIONS if key in lowered), "unknown")


def engine_information(trt: Any, engine: trt_api.ICudaEngine, signature: Signature) -> dict[str, Any]:
    """The inspector's JSON for `engine`, with profile 0's OPT shapes set so formats are printed."""
    inspector = engine.create_engine_inspector()
    if signature.profiles:
        context = engine.create_execution_context()
        for name, (_, opt, _) in signature.profiles[0].items():
            context.set_input_shape(name, opt)
        inspector.execution_context = context
    text = inspector.get_engine_information(trt.LayerInformationFormat.JSON)
    try:
        info = json.loads(text)
    except ValueError as exc:
        raise GeneratorError(f"TensorRT's engine inspector printed no JSON ({exc}): {text[:120]!r}") from None
    return info if isinstance(info, dict) else {"Layers": info}


def parse_layers(info: dict[str, Any]) -> tuple[LayerInfo, ...]:
    """LayerInfo per layer; refused when the engine was not built with ProfilingVerbosity.DETAILED."""
    layers = []
    for raw in info.get("Layers", []):
        if isinstance(raw, str):
            raise GeneratorError(
                "the engine lists layer names only (built without ProfilingVerbosity.DETAILED): "
                "rebuild with `trgen build --force`"
            )
        inputs = tuple(str(t.get("Format/Datatype", "")) for t in raw.get("Inputs", []))
        outputs = tuple(str(t.get("Format/Datatype", "")) for t in raw.get("Outputs", []))
        layers.append(LayerInfo(str(raw.get("Name", "")), str(raw.get("LayerType", "")), _layer_precision(raw, inputs, outputs), inputs, outputs))
    return tuple(layers)


def _layer_precision(raw: dict[str, Any], inputs: tuple[str, ...], outputs: tuple[str, ...]) -> str:
    weights = raw.get("Weights")
    if any(precision_of(f) == "INT8" for f in inputs) or (isinstance(weights, dict) and precision_of(str(weights.get("Type", ""))) == "INT8"):
        return "INT8"
    known = [p for p in map(precision_of, inputs + outputs) if p != "unknown"]
    return known[0] if known else "unknown"


def expected_int8_nodes(onnx_path: Path, *, explicit: bool) -> tuple[str, ...]:
    """Layer names (as TensorRT's ONNX parser gives them) of the compute layers that must run INT8.

    The parser names a layer after its ONNX node, or 'node_of_<first output>' when the node has no name.
    """
    graph = load_onnx(onnx_path).graph
    dequantized = {out for node in graph.node if node.op_type == "DequantizeLinear" for out in node.output}
    return tuple(
        node.name or f"node_of_{node.output[0]}"
        for node in graph.node
        if node.op_type in COMPUTE_OPS and (not explicit or (node.input and node.input[0] in dequantized))
    )


def check_precisions(
    layers: tuple[LayerInfo, ...], expected: tuple[str, ...], unscaled: tuple[str, ...] = (), order: tuple[str, ...] = ()
) -> PrecisionReport:
    """Match each expected ONNX node to the layer whose fused name includes it, and judge its precision.

    `order`: every layer name of the ONNX graph in graph order, to place nodes inside a Myelin region
    "{ForeignNode[first...last]}" (TensorRT names only its ends and prints only its boundary formats,
    so those nodes are reported as unverified rather than judged).
    """
    parts = [(layer, [p.strip() for p in layer.name.split(" + ")]) for layer in layers if layer.type not in _NOT_COMPUTE]
    regions = set().union(*(_region(layer.name, order) for layer in layers)) if layers else set()
    not_int8, missing, unverified = [], [], []
    for node in expected:
        layer = next((layer for layer, names in parts if node in names), None)
        if layer is None and node in regions:
            unverified.append(node)
        elif layer is None:
            missing.append(node)
        elif layer.precision != "INT8":
            not_int8.append((node, layer.name, layer.precision))
    return PrecisionReport(layers, expected, tuple(not_int8), tuple(missing), tuple(unscaled), tuple(unverified))


def _region(name: str, order: tuple[str, ...]) -> set[str]:
    """The ONNX nodes a '{ForeignNode[first...last]}' layer covers (empty for other layers)."""
    match = re.search(r"\{ForeignNode\[(.+)\.\.\.(.+)\]\}", name)
    if match is None or match.group(1) not in order or match.group(2) not in order:
        return set()
    first, last = order.index(match.group(1)), order.index(match.group(2))
    return set(order[first:last + 1])


def onnx_layer_names(onnx_path: Path) -> tuple[str, ...]:
    """Every node's layer name as TensorRT's parser gives it, in graph order."""
    return tuple(node.name or f"node_of_{node.output[0]}" for node in load_onnx(onnx_path).graph.node)


def layers_path(plan_file: Path) -> Path:
    return plan_file.with_name(plan_file.name + ".layers.json")


def write_layer_report(plan_file: Path, report: PrecisionReport, info: dict[str, Any]) -> Path:
    """`<plan>.layers.json`: our summary and TensorRT's own engine information, as printed."""
    path = layers_path(plan_file)
    atomic_write_text(path, json.dumps({**report.to_dict(), "engine_information": info}, indent=1) + "\n")
    return path


def read_layer_report(plan_file: Path) -> PrecisionReport | None:
    """The report written at build time, or None when there is none."""
    path = layers_path(plan_file)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise GeneratorError(f"unreadable layer report ({exc}): rebuild with `trgen build --force`", where=path) from None
    layers = tuple(LayerInfo(l["name"], l["type"], l["precision"], tuple(l["inputs"]), tuple(l["outputs"])) for l in data["layers"])
    return PrecisionReport(
        layers, tuple(data["expected_int8"]), tuple(tuple(x) for x in data["not_int8"]),  # type: ignore[misc]
        tuple(data["missing"]), tuple(data.get("unscaled", ())), tuple(data.get("unverified", ())),
    )
