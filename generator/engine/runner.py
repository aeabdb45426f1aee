"""Run a built artifact on host arrays: ONNX with onnxruntime (CPU), TensorRT plans on the GPU.

Used by `trgen verify` to check each artifact locally against onnxruntime FP32 before anything is
served. Inputs are cast to each model's own input types (an FP16 model without kept I/O types takes
float16), so one evaluation batch feeds every variant.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GeneratorError
from ..signature import Signature, numpy_dtype
from . import trt_api
from .cuda_mem import DeviceMemory, device_memory
from .inspection import deserialize

_ORT_TYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(int32)": np.int32, "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}


class OnnxRunner:
    """onnxruntime CPU session over an ONNX file; call it with input name -> array."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise GeneratorError(f"onnxruntime cannot load the model ({exc.__class__.__name__}: {exc})", where=path) from None
        self._inputs = {i.name: _ORT_TYPES.get(i.type, np.float32) for i in self._session.get_inputs()}
        self.outputs = [o.name for o in self._session.get_outputs()]

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {name: np.asarray(_input(inputs, name), dtype=dtype) for name, dtype in self._inputs.items()}
        return dict(zip(self.outputs, (np.asarray(v) for v in self._session.run(self.outputs, feed))))


class EngineRunner:
    """A TensorRT plan on the GPU (profile 0), fed in chunks of at most its max batch."""

    def __init__(
        self, trt: Any, plan: Path, signature: Signature, *, memory: DeviceMemory | None = None,
        version_compatible: bool = False,
    ) -> None:
        self._engine = deserialize(trt, Path(plan).read_bytes(), where=plan, version_compatible=version_compatible)
        self._context: trt_api.IExecutionContext = self._engine.create_execution_context()
        self._memory = memory or device_memory()
        self._signature = signature
        self.outputs = [t.name for t in signature.outputs]
        first = signature.inputs[0]
        dynamic = signature.profiles[0].get(first.name) if signature.profiles else None
        self._max_batch = dynamic[2][0] if dynamic else max(first.shape[0], 1)

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        count = len(_input(inputs, self._signature.inputs[0].name))
        parts: dict[str, list[np.ndarray]] = {name: [] for name in self.outputs}
        for start in range(0, count, self._max_batch):
            chunk = {name: np.asarray(array)[start:start + self._max_batch] for name, array in inputs.items()}
            for name, value in self._run(chunk).items():
                parts[name].append(value)
        return {name: np.concatenate(values) for name, values in parts.items()}

    def _run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        pointers: list[int] = []
        results: dict[str, tuple[np.ndarray, int]] = {}
        try:
            for tensor in self._signature.inputs:
                array = np.ascontiguousarray(_input(inputs, tensor.name), dtype=numpy_dtype(tensor.dtype))
                self._context.set_input_shape(tensor.name, array.shape)
                pointers.append(self._memory.alloc(array.nbytes))
                self._memory.to_device(pointers[-1], array)
                self._context.set_tensor_address(tensor.name, pointers[-1])
            for tensor in self._signature.outputs:
                host = np.empty(tuple(self._context.get_tensor_shape(tensor.name)), dtype=numpy_dtype(tensor.dtype))
                pointers.append(self._memory.alloc(host.nbytes))
                self._context.set_tensor_address(tensor.name, pointers[-1])
                results[tensor.name] = (host, pointers[-1])
            if not self._context.execute_async_v3(self._memory.stream()):
                raise GeneratorError("TensorRT failed to run the engine: see the TensorRT messages above")
            self._memory.synchronize()
            for host, pointer in results.values():
                self._memory.to_host(host, pointer)
        finally:
            for pointer in pointers:
                self._memory.free(pointer)
        return {name: host for name, (host, _) in results.items()}


def _input(inputs: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    if name not in inputs:
        raise GeneratorError(f"the evaluation data has no input {name!r} (it gives: {', '.join(inputs)})")
    return inputs[name]
