"""TensorRT 10's implicit-INT8 calibrator: hands TensorRT our cache, or feeds it calibration batches.

With our cache, `read_calibration_cache` returns its bytes and TensorRT never calls `get_batch`. When
the user asks TensorRT to calibrate itself (`build.trt_calibrates`), `get_batch` copies float32
batches at the calibration profile's OPT shape into device buffers and returns one pointer per input.
The base class must be the one the cache header names (TensorRT refuses a cache written for another
calibrator), and the class is made at run time because the bases exist only in TensorRT <= 10.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GeneratorError
from ..fileio import atomic_write_bytes
from .cuda_mem import DeviceMemory, device_memory

Batch = Mapping[str, np.ndarray]
BASES = {  # cache header algorithm -> TensorRT calibrator class
    "EntropyCalibration2": "IInt8EntropyCalibrator2",
    "EntropyCalibration": "IInt8EntropyCalibrator",
    "MinMaxCalibration": "IInt8MinMaxCalibrator",
}


def make_calibrator(
    trt: Any,
    *,
    algorithm: str = "EntropyCalibration2",
    cache: bytes | None = None,
    batches: Iterable[Batch] | None = None,
    opt_shapes: Mapping[str, Sequence[int]] | None = None,
    write_cache: Path | None = None,
    device: DeviceMemory | None = None,
) -> Any:
    """A calibrator of the class `algorithm` (a cache header's algorithm) names.

    `cache`: our calibration cache bytes (TensorRT then skips calibration). Otherwise `batches` are
    regrouped to the OPT shapes and fed through device buffers; TensorRT's resulting cache is written
    to `write_cache`.
    """
    if algorithm not in BASES:
        raise GeneratorError(f"no TensorRT calibrator reads {algorithm!r} caches (known: {', '.join(BASES)})")
    base = getattr(trt, BASES[algorithm])
    if not cache and batches is None:
        raise GeneratorError("the INT8 calibrator needs a calibration cache or calibration data")

    class Calibrator(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)  # pybind11 trampoline: without the explicit base __init__ TensorRT crashes
            self.cache = bytes(cache) if cache else None
            self.written: bytes | None = None
            self.batches_fed = 0
            self._batches: Iterator[dict[str, np.ndarray]] = (
                iter(rebatch(batches, opt_shapes or {})) if batches is not None else iter(())
            )
            self._device = device
            self._pointers: dict[str, int] = {}

        def get_batch_size(self) -> int:
            return 1  # explicit-batch networks: the batch is part of each input's shape

        def get_batch(self, names: list[str]) -> list[int] | None:
            batch = next(self._batches, None)
            if batch is None:
                self.free()
                return None
            if self._device is None:
                self._device = device_memory()
            pointers = []
            for name in names:
                if name not in batch:
                    raise GeneratorError(f"calibration data has no input {name!r} (it has: {', '.join(batch)})")
                array = np.ascontiguousarray(batch[name], dtype=np.float32)
                if name not in self._pointers:
                    self._pointers[name] = self._device.alloc(array.nbytes)
                self._device.to_device(self._pointers[name], array)
                pointers.append(self._pointers[name])
            self.batches_fed += 1
            return pointers

        def read_calibration_cache(self) -> bytes | None:
            return self.cache

        def write_calibration_cache(self, cache: Any) -> None:
            self.written = bytes(cache)
            if write_cache is not None:
                atomic_write_bytes(write_cache, self.written)

        def free(self) -> None:
            for pointer in self._pointers.values():
                if self._device is not None:
                    self._device.free(pointer)
            self._pointers.clear()

    return Calibrator()


def rebatch(batches: Iterable[Batch], opt_shapes: Mapping[str, Sequence[int]]) -> Iterator[dict[str, np.ndarray]]:
    """Regroup batches of any size into batches of exactly the OPT shape (TensorRT calibrates at OPT).

    Inputs without an OPT shape (static models) pass through unchanged; a short tail is dropped.
    """
    pending: dict[str, list[np.ndarray]] = {}
    count = 0
    for batch in batches:
        if not opt_shapes:
            yield {k: np.asarray(v, dtype=np.float32) for k, v in batch.items()}
            continue
        for name, shape in opt_shapes.items():
            if name not in batch:
                raise GeneratorError(f"calibration data has no input {name!r} (it has: {', '.join(batch)})")
            array = np.asarray(batch[name], dtype=np.float32)
            if tuple(array.shape[1:]) != tuple(shape[1:]):
                raise GeneratorError(
                    f"calibration input {name!r} has shape {list(array.shape)}; the calibration profile's "
                    f"OPT shape is {list(shape)}: the non-batch dimensions must match"
                )
            pending.setdefault(name, []).append(array)
        count += len(np.asarray(batch[next(iter(opt_shapes))]))
        size = next(iter(opt_shapes.values()))[0]
        while count >= size:
            out = {}
            for name in opt_shapes:
                joined = np.concatenate(pending[name])
                out[name], rest = joined[:size], joined[size:]
                pending[name] = [rest]
            count -= size
            yield out
