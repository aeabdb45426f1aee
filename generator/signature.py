"""A model's I/O signature (names, dtypes, shapes), read from ONNX or a TensorRT engine.

The renderer derives `config.pbtxt` inputs/outputs from it, the validator checks configs against it,
and the client harness builds requests from it, so all three agree by construction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import GeneratorError
from .fileio import atomic_write_text

if TYPE_CHECKING:
    import onnx

# dtype short name (spec) -> (Triton TYPE_*, numpy dtype, ONNX TensorProto enum value)
DTYPES: dict[str, tuple[str, str, int]] = {
    "fp32": ("TYPE_FP32", "float32", 1),
    "uint8": ("TYPE_UINT8", "uint8", 2),
    "int8": ("TYPE_INT8", "int8", 3),
    "uint16": ("TYPE_UINT16", "uint16", 4),
    "int16": ("TYPE_INT16", "int16", 5),
    "int32": ("TYPE_INT32", "int32", 6),
    "int64": ("TYPE_INT64", "int64", 7),
    "string": ("TYPE_STRING", "object", 8),
    "bool": ("TYPE_BOOL", "bool", 9),
    "fp16": ("TYPE_FP16", "float16", 10),
    "fp64": ("TYPE_FP64", "float64", 11),
    "uint32": ("TYPE_UINT32", "uint32", 12),
    "uint64": ("TYPE_UINT64", "uint64", 13),
    "bf16": ("TYPE_BF16", "float32", 16),
}
_BY_ONNX = {onnx_type: short for short, (_, _, onnx_type) in DTYPES.items()}
_BY_NUMPY = {np_name: short for short, (_, np_name, _) in DTYPES.items() if short != "bf16"}


def triton_type(dtype: str) -> str:
    """'fp32' -> 'TYPE_FP32'."""
    return DTYPES[dtype][0]


def numpy_dtype(dtype: str) -> np.dtype:
    """'fp16' -> np.float16."""
    return np.dtype(DTYPES[dtype][1])


def dtype_from_numpy(value: np.dtype | type) -> str:
    """np.float32 -> 'fp32'."""
    return _BY_NUMPY[np.dtype(value).name]


def dtype_from_onnx(elem_type: int, *, where: str) -> str:
    """ONNX TensorProto element type -> short name."""
    try:
        return _BY_ONNX[elem_type]
    except KeyError:
        raise GeneratorError(f"unsupported ONNX element type {elem_type}", where=where) from None


@dataclass(frozen=True)
class TensorSig:
    """One tensor: full shape including any batch dimension; -1 marks a dynamic dimension."""

    name: str
    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Signature:
    inputs: tuple[TensorSig, ...]
    outputs: tuple[TensorSig, ...]
    # TensorRT engines: per profile, input name -> (min, opt, max) full shapes
    profiles: tuple[dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]], ...] = field(default=())


def load_onnx(path: str | Path, *, hint: str | None = "re-export it", external_data: bool = True) -> "onnx.ModelProto":
    """Load an ONNX model; a broken or missing file is a one-line GeneratorError ending with `hint`."""
    import onnx

    try:
        return onnx.load(str(path), load_external_data=external_data)
    except Exception as exc:  # onnx raises DecodeError, OSError, ValueError, ... for bad files
        why = f"not a loadable ONNX model ({exc.__class__.__name__})"
        raise GeneratorError(f"{why}: {hint}" if hint else why, where=Path(path)) from None


def read_onnx_signature(path: str | Path) -> Signature:
    """The signature of the ONNX file at `path` (read without its external weights)."""
    return onnx_signature(load_onnx(path, hint=None, external_data=False), where=path)


def onnx_signature(model: "onnx.ModelProto", *, where: str | Path) -> Signature:
    """Graph inputs (excluding initializers) and outputs; symbolic or unknown dims become -1."""
    initializers = {init.name for init in model.graph.initializer}

    def sig(value: "onnx.ValueInfoProto") -> TensorSig:
        tensor_type = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in tensor_type.shape.dim)
        return TensorSig(value.name, dtype_from_onnx(tensor_type.elem_type, where=f"{where}: {value.name}"), dims)

    inputs = tuple(sig(v) for v in model.graph.input if v.name not in initializers)
    outputs = tuple(sig(v) for v in model.graph.output)
    return Signature(inputs=inputs, outputs=outputs)

# ---- the engine-signature sidecar (`model.plan.json`) ---------------------------------------------------
# `model.plan.json`: a TensorRT engine's signature, readable without TensorRT.
#
# The build stage writes it beside each plan (it has TensorRT open anyway), the renderer copies it next
# to `model.plan` in the repository, and `trgen validate` checks config.pbtxt against it on machines
# without TensorRT. Format (JSON, UTF-8, keys sorted)::
#
#     {
#       "format": "trgen-engine-signature",
#       "version": 1,
#       "inputs":  [{"name": "input",  "dtype": "fp32", "shape": [-1, 1, 28, 28]}],
#       "outputs": [{"name": "logits", "dtype": "fp32", "shape": [-1, 10]}],
#       "profiles": [{"input": {"min": [1, 1, 28, 28], "opt": [32, 1, 28, 28], "max": [64, 1, 28, 28]}}]
#     }
#
# `dtype` is the short name of `generator.signature.DTYPES` ('fp32', 'fp16', 'int8', ...); shapes are
# full engine shapes including the batch dimension, -1 where dynamic; `profiles` has one object per
# optimisation profile, input name -> min/opt/max shapes (empty list for static engines).

FORMAT = "trgen-engine-signature"
VERSION = 1
SUFFIX = ".json"  # model.plan -> model.plan.json


def sidecar_path(plan: Path) -> Path:
    """Where the signature of `plan` lives: `<plan>.json`."""
    return plan.with_name(plan.name + SUFFIX)


def engine_signature_json(signature: Signature) -> str:
    """The sidecar text for `signature` (deterministic: sorted keys, trailing newline)."""
    data = {
        "format": FORMAT,
        "version": VERSION,
        "inputs": [_tensor(t) for t in signature.inputs],
        "outputs": [_tensor(t) for t in signature.outputs],
        "profiles": [
            {name: {"min": list(lo), "opt": list(opt), "max": list(hi)} for name, (lo, opt, hi) in p.items()}
            for p in signature.profiles
        ],
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def write_engine_signature(path: Path, signature: Signature) -> None:
    """Write the sidecar atomically (temp file beside it, then os.replace)."""
    atomic_write_text(path, engine_signature_json(signature))


def engine_signature_from_json(path: Path) -> Signature:
    """Read a sidecar written by `write_engine_signature`; GeneratorError if it is not one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ValueError(f"not a {FORMAT} v{VERSION} file")
        return Signature(
            inputs=tuple(_sig(t) for t in data["inputs"]),
            outputs=tuple(_sig(t) for t in data["outputs"]),
            profiles=tuple(
                {name: (_shape(r["min"]), _shape(r["opt"]), _shape(r["max"])) for name, r in p.items()}
                for p in data.get("profiles", [])
            ),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise GeneratorError(
            f"unreadable engine signature ({exc.__class__.__name__}: {exc}): rebuild the engine with `trgen build`",
            where=path,
        ) from None


def _tensor(t: TensorSig) -> dict[str, Any]:
    return {"name": t.name, "dtype": t.dtype, "shape": list(t.shape)}


def _sig(data: dict[str, Any]) -> TensorSig:
    if data["dtype"] not in DTYPES:
        raise ValueError(f"unknown dtype {data['dtype']!r}")
    return TensorSig(str(data["name"]), str(data["dtype"]), _shape(data["shape"]))


def _shape(values: list[Any]) -> tuple[int, ...]:
    if not all(isinstance(v, int) and not isinstance(v, bool) and (v >= 1 or v == -1) for v in values):
        raise ValueError(f"bad shape {values!r}")
    return tuple(values)
