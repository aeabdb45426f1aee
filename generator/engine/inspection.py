"""Read a built engine's I/O signature and profiles (TensorRT 10/11 name-based API) -> `Signature`.

The renderer writes config.pbtxt from this, so max_batch_size, dims and profile entries match what
the engine really accepts rather than what the spec hoped for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import GeneratorError
from ..signature import Signature, TensorSig
from . import trt_api

# TensorRT DataType member name -> trgen dtype short name (generator.signature.DTYPES)
_DTYPES = {
    "FLOAT": "fp32", "HALF": "fp16", "BF16": "bf16", "INT8": "int8", "UINT8": "uint8",
    "INT32": "int32", "INT64": "int64", "BOOL": "bool",
}


def engine_signature(trt: Any, engine: trt_api.ICudaEngine) -> Signature:
    """Inputs/outputs in engine order, shapes with -1 where dynamic, and every profile's min/opt/max."""
    inputs: list[TensorSig] = []
    outputs: list[TensorSig] = []
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        dtype = engine.get_tensor_dtype(name)
        short = _DTYPES.get(getattr(dtype, "name", str(dtype)))
        if short is None:
            raise GeneratorError(f"engine tensor {name!r} has type {dtype}, which Triton cannot carry")
        tensor = TensorSig(name, short, tuple(int(d) for d in engine.get_tensor_shape(name)))
        (inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs).append(tensor)

    profiles = []
    dynamic = [t.name for t in inputs if -1 in t.shape]
    for profile in range(engine.num_optimization_profiles if dynamic else 0):
        entry: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = {}
        for name in dynamic:
            lo, opt, hi = (tuple(int(d) for d in shape) for shape in engine.get_tensor_profile_shape(name, profile))
            entry[name] = (lo, opt, hi)
        profiles.append(entry)
    return Signature(inputs=tuple(inputs), outputs=tuple(outputs), profiles=tuple(profiles))


def deserialize(trt: Any, plan: bytes, *, where: str | Path, version_compatible: bool = False) -> trt_api.ICudaEngine:
    """A live engine from plan bytes (needs the GPU the plan was built for).

    Version-compatible plans embed the lean runtime as host code, which TensorRT runs only when
    `engine_host_code_allowed` is set; trgen sets it just for the plans it built that way.
    """
    runtime: trt_api.Runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    if version_compatible:
        runtime.engine_host_code_allowed = True
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise GeneratorError(
            "TensorRT could not load this plan: it was built by another TensorRT version or for another GPU; "
            "rebuild it with `trgen build --force`",
            where=where,
        )
    return engine


def plan_signature(trt: Any, path: Path) -> Signature:
    """The signature of a plan file on disk."""
    return engine_signature(trt, deserialize(trt, Path(path).read_bytes(), where=path))
