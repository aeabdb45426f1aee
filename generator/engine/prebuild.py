"""Checks on the parsed network that must pass before TensorRT starts an implicit-INT8 build.

Both protect against TensorRT carrying on quietly:
- calibration batches whose names, types or shapes do not fit the network would make `get_batch`
  fail inside TensorRT (which swallows the error) or feed it garbage, so the first batch is checked
  against the network's inputs and the calibration profile's OPT shape;
- a tensor that an INT8 layer reads or writes without a scale in the calibration cache makes TensorRT
  run that layer in FP32/FP16 with only a warning. Tensors named as in the ONNX model must all be in
  our cache (else the cache is stale or from another mode: recalibrate). Tensors the ONNX parser
  creates itself (an initializer read as a tensor becomes a Constant layer; Gemm's matrix product
  before its bias add is "(Unnamed Layer* N) [...]_output") cannot come from calibrating the ONNX
  graph; they are returned so the build manifest names them, and the engine's layer report shows
  which layers fell back because of them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import GeneratorError
from . import trt_api

log = logging.getLogger(__name__)

_FLOAT_TYPES = {"FLOAT", "HALF", "BF16"}
_UNNAMED = re.compile(r"^\(Unnamed Layer\* \d+\)")


@dataclass(frozen=True)
class NetworkTensor:
    name: str
    dtype: str  # TensorRT DataType member name
    shape: tuple[int, ...]


def network_inputs(network: trt_api.INetworkDefinition) -> list[NetworkTensor]:
    """The parsed network's inputs, in order."""
    inputs = []
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        inputs.append(NetworkTensor(tensor.name, _dtype(tensor), tuple(int(d) for d in tensor.shape)))
    return inputs


def check_calibration_batch(
    inputs: Sequence[NetworkTensor], batch: Mapping[str, np.ndarray] | None, opt_shapes: Mapping[str, Sequence[int]],
    *, where: str,
) -> None:
    """The first calibration batch (already regrouped to OPT) must fit every network input exactly."""
    if batch is None:
        raise GeneratorError("build.trt_calibrates: the calibration data gave no batch at the calibration "
                             "profile's OPT batch size: give more samples or lower the profile's opt batch", where=where)
    for tensor in inputs:
        if tensor.name not in batch:
            raise GeneratorError(
                f"the calibration data has no input {tensor.name!r} (it gives: {', '.join(batch) or 'nothing'})", where=where
            )
        if tensor.dtype != "FLOAT":
            raise GeneratorError(
                f"network input {tensor.name!r} is {tensor.dtype}: TensorRT's calibrator is fed float32 only; "
                "use trgen's calibration (build.trt_calibrates: false)", where=where,
            )
        array = np.asarray(batch[tensor.name])
        if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
            raise GeneratorError(f"calibration input {tensor.name!r} holds {array.dtype}, not numbers", where=where)
        wanted = tuple(opt_shapes.get(tensor.name, tensor.shape))
        if tuple(array.shape) != wanted:
            raise GeneratorError(
                f"calibration input {tensor.name!r} has shape {list(array.shape)} but TensorRT calibrates at "
                f"{list(wanted)} (the calibration profile's OPT shape)", where=where,
            )


def uncovered_tensors(network: trt_api.INetworkDefinition, scales: set[str]) -> tuple[list[str], list[str]]:
    """(ONNX-named, parser-made) float tensors read or written by a layer that have no scale in `scales`."""
    constants: set[str] = set()
    named: dict[str, None] = {}
    made: dict[str, None] = {}
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        is_constant = getattr(layer.type, "name", "") == "CONSTANT"
        for tensor in _layer_tensors(layer, outputs_only=False):
            if tensor.is_shape_tensor or _dtype(tensor) not in _FLOAT_TYPES or tensor.name in scales:
                continue
            if is_constant:
                constants.add(tensor.name)
            target = made if tensor.name in constants or _UNNAMED.match(tensor.name) else named
            target[tensor.name] = None
    # a constant seen as a consumer's input before its Constant layer: move it over
    for name in constants & set(named):
        del named[name]
        made[name] = None
    return list(named), list(made)


def check_cache_coverage(network: trt_api.INetworkDefinition, scales: set[str], *, where: str) -> list[str]:
    """Fail when ONNX-named tensors lack a scale; return (and log) the parser-made ones that do."""
    named, made = uncovered_tensors(network, scales)
    if named:
        shown = ", ".join(repr(n) for n in named[:8]) + (f" and {len(named) - 8} more" if len(named) > 8 else "")
        raise GeneratorError(
            f"the calibration cache has no scale for {len(named)} tensor(s) TensorRT's INT8 layers read or write "
            f"({shown}); TensorRT would run those layers in FP32/FP16 with only a warning: rerun "
            "`trgen calibrate --force` (implicit mode calibrates every float tensor) or use build.int8_mode: explicit",
            where=where,
        )
    if made:
        log.warning(
            "%s: %d tensor(s) made by TensorRT's ONNX parser have no scale in the calibration cache (%s): layers "
            "reading or writing them run in float; model.plan.layers.json shows which", where, len(made),
            ", ".join(made[:5]) + (" ..." if len(made) > 5 else ""),
        )
    return made


def _layer_tensors(layer: Any, *, outputs_only: bool) -> list[Any]:
    tensors = [] if outputs_only else [layer.get_input(i) for i in range(layer.num_inputs)]
    tensors += [layer.get_output(i) for i in range(layer.num_outputs)]
    return [t for t in tensors if t is not None]  # optional inputs are None


def _dtype(tensor: Any) -> str:
    return str(getattr(tensor.dtype, "name", tensor.dtype))

