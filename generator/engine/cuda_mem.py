"""Device buffers for the few places trgen hands TensorRT raw GPU pointers (calibration, `trgen verify`).

cuda-python (`cuda.bindings.runtime`, what NVIDIA's TensorRT samples use) is preferred; pycuda works
too. Both are optional and imported only when a buffer is needed.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from ..errors import GeneratorError

NO_CUDA = (
    "TensorRT needs device buffers here: install cuda-python (`pip install \"trgen[gpu]\"`) or pycuda, "
    "or use the NGC TensorRT container (see docs/gpu.md)"
)


class DeviceMemory(Protocol):
    """What trgen needs from a CUDA binding: allocate, copy both ways, one stream."""

    def alloc(self, nbytes: int) -> int: ...
    def free(self, pointer: int) -> None: ...
    def to_device(self, pointer: int, array: np.ndarray) -> None: ...
    def to_host(self, array: np.ndarray, pointer: int) -> None: ...
    def stream(self) -> int: ...
    def synchronize(self) -> None: ...


def device_memory() -> DeviceMemory:
    """cuda-python if importable, else pycuda, else a GeneratorError naming both."""
    try:
        return _CudaPython()
    except ImportError:
        pass
    try:
        return _PyCuda()
    except ImportError:
        raise GeneratorError(NO_CUDA) from None


class _CudaPython:
    def __init__(self) -> None:
        try:
            from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
        except ImportError:
            from cuda import cudart  # older cuda-python (raises ImportError when absent)
        self._rt: Any = cudart
        self._stream: Any = None

    def _check(self, result: Any) -> Any:
        err, *rest = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            raise GeneratorError(f"CUDA error {err}: is a GPU visible (nvidia-smi) and the driver recent enough?")
        return rest[0] if len(rest) == 1 else rest

    def alloc(self, nbytes: int) -> int:
        return int(self._check(self._rt.cudaMalloc(max(nbytes, 1))))

    def free(self, pointer: int) -> None:
        self._check(self._rt.cudaFree(pointer))

    def to_device(self, pointer: int, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array)
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(self._rt.cudaMemcpy(pointer, array.ctypes.data, array.nbytes, kind))

    def to_host(self, array: np.ndarray, pointer: int) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(self._rt.cudaMemcpy(array.ctypes.data, pointer, array.nbytes, kind))

    def stream(self) -> int:
        if self._stream is None:
            self._stream = self._check(self._rt.cudaStreamCreate())
        return int(self._stream)

    def synchronize(self) -> None:
        if self._stream is not None:
            self._check(self._rt.cudaStreamSynchronize(self._stream))


class _PyCuda:
    def __init__(self) -> None:
        import pycuda.autoinit  # noqa: F401  (creates the context)
        import pycuda.driver as driver

        self._drv: Any = driver
        self._buffers: dict[int, Any] = {}
        self._stream: Any = None

    def alloc(self, nbytes: int) -> int:
        buffer = self._drv.mem_alloc(max(nbytes, 1))
        self._buffers[int(buffer)] = buffer
        return int(buffer)

    def free(self, pointer: int) -> None:
        self._buffers.pop(pointer).free()

    def to_device(self, pointer: int, array: np.ndarray) -> None:
        self._drv.memcpy_htod(pointer, np.ascontiguousarray(array))

    def to_host(self, array: np.ndarray, pointer: int) -> None:
        self._drv.memcpy_dtoh(array, pointer)

    def stream(self) -> int:
        if self._stream is None:
            self._stream = self._drv.Stream()
        return int(self._stream.handle)

    def synchronize(self) -> None:
        if self._stream is not None:
            self._stream.synchronize()
