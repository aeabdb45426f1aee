"""TensorRT 10's implicit-INT8 calibrator: hands TensorRT our cache, or feeds it calibration batches.

With our cache, `read_calibration_cache` returns its bytes and TensorRT never calls `get_batch`. When
the user asks TensorRT to calibrate itself (`build.trt_calibrates`), `get_batch` copies float32
batches at the calibration profile's OPT shape into device buffers and returns one pointer per input.
The base class must be the one the cache header names (TensorRT refuses a cache written for another
calibrator), and the class is made at run time because the bases exist only in TensorRT <= 10.

TensorRT's Python binding catches every exception a callback raises, prints it and carries on as if
the data had run out (or there were no cache): a bad batch would give an engine calibrated on part of
the data, or none at all with a generic message. So each callback records its exception and returns
None, every later call returns None too, and `raise_if_failed()` re-raises it after the build.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GeneratorError, RuntimeFailure
from ..fileio import atomic_write_bytes
from .cuda_mem import DeviceMemory, device_memory

Batch = Mapping[str, np.ndarray]
BASES = {  # cache header algorithm -> TensorRT calibrator class
    "EntropyCalibration2": "IInt8EntropyCalibrator2",
    "EntropyCalibration": "IInt8EntropyCalibrator",
    "MinMaxCalibration": "IInt8MinMaxCalibrator",
}


class DeviceFeeder:
    """Batches -> device pointers for `get_batch`; buffers are allocated once per input and reused."""

    def __init__(self, batches: Iterator[dict[str, np.ndarray]], device: DeviceMemory | None) -> None:
        self._batches = batches
        self._device = device
        self._pointers: dict[str, int] = {}
        self._first: dict[str, np.ndarray] | None = None
        self.fed = 0

    def peek(self) -> dict[str, np.ndarray] | None:
        """The first batch, still to be fed: checked against the network before the build starts."""
        if self._first is None and self.fed == 0:
            self._first = next(self._batches, None)
        return self._first

    def next_pointers(self, names: Sequence[str]) -> list[int] | None:
        batch, self._first = (self._first, None) if self._first is not None else (next(self._batches, None), None)
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
        self.fed += 1
        return pointers

    def free(self) -> None:
        for pointer in self._pointers.values():
            if self._device is not None:
                self._device.free(pointer)
        self._pointers.clear()


def calibrator_base(trt: Any, algorithm: str) -> type:
    """The TensorRT calibrator class whose cache header is `algorithm`."""
    if algorithm not in BASES:
        raise GeneratorError(f"no TensorRT calibrator reads {algorithm!r} caches (known: {', '.join(BASES)})")
    base: type = getattr(trt, BASES[algorithm])
    return base


def calibrator_class(base: type) -> type:
    """A subclass of `base` whose callbacks never raise into TensorRT (see the module docstring)."""

    class Calibrator(base):  # type: ignore[misc, valid-type]
        def __init__(self, cache: bytes | None, feeder: DeviceFeeder | None, write_cache: Path | None) -> None:
            base.__init__(self)  # type: ignore[misc]  # pybind11 trampoline: without the explicit base __init__ TensorRT crashes
            self.cache = cache
            self.written: bytes | None = None
            self.error: tuple[str, Exception] | None = None
            self._feeder = feeder
            self._write_cache = write_cache

        @property
        def feeder(self) -> DeviceFeeder | None:
            return self._feeder

        @property
        def batches_fed(self) -> int:
            return self._feeder.fed if self._feeder is not None else 0

        def get_batch_size(self) -> int:
            return 1  # explicit-batch networks: the batch is part of each input's shape

        def get_batch(self, names: list[str]) -> list[int] | None:
            feeder = self._feeder
            return self._guard("get_batch", lambda: feeder.next_pointers(names) if feeder is not None else None)

        def read_calibration_cache(self) -> bytes | None:
            return self._guard("read_calibration_cache", lambda: self.cache)

        def write_calibration_cache(self, cache: Any) -> None:
            self._guard("write_calibration_cache", lambda: self._write(cache))

        def _write(self, cache: Any) -> None:
            self.written = bytes(cache)
            if self._write_cache is not None:
                atomic_write_bytes(self._write_cache, self.written)

        def _guard(self, callback: str, call: Callable[[], Any]) -> Any:
            if self.error is not None:  # after a failure TensorRT only ever hears "no more data"
                return None
            try:
                return call()
            except Exception as exc:  # TensorRT would swallow it: keep it for raise_if_failed
                self.error = (callback, exc)
                self.free()
                return None

        def free(self) -> None:
            if self._feeder is not None:
                self._feeder.free()

        def raise_if_failed(self) -> None:
            """Re-raise what a callback raised during the build, naming the callback."""
            if self.error is None:
                return
            callback, exc = self.error
            after = f" after {self.batches_fed} batch(es)" if callback == "get_batch" else ""
            if isinstance(exc, GeneratorError):  # our own check or a missing package: keep its exit code
                kind = RuntimeFailure if isinstance(exc, RuntimeFailure) else GeneratorError
                raise kind(f"TensorRT's INT8 calibrator failed in {callback}{after}: {exc}") from None
            raise RuntimeFailure(
                f"TensorRT's INT8 calibrator failed in {callback}{after} ({exc.__class__.__name__}: {exc}); "
                "TensorRT hides such errors, so trgen stopped rather than keep an engine calibrated on part of the data"
            ) from exc

    return Calibrator


def cache_calibrator(trt: Any, algorithm: str, cache: bytes) -> Any:
    """A calibrator that hands TensorRT `cache` (our calibration cache); TensorRT then never asks for data."""
    if not cache:
        raise GeneratorError("the INT8 calibrator needs a calibration cache or calibration data")
    return calibrator_class(calibrator_base(trt, algorithm))(bytes(cache), None, None)


def data_calibrator(
    trt: Any, algorithm: str, batches: Iterable[Batch], *, opt_shapes: Mapping[str, Sequence[int]] | None = None,
    write_cache: Path | None = None, device: DeviceMemory | None = None,
) -> Any:
    """A calibrator feeding `batches`, regrouped to the OPT shapes; TensorRT's cache goes to `write_cache`."""
    feeder = DeviceFeeder(iter(rebatch(batches, opt_shapes or {})), device)
    return calibrator_class(calibrator_base(trt, algorithm))(None, feeder, write_cache)


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
    """`cache_calibrator` when given our cache bytes, else `data_calibrator` over `batches`."""
    if cache:
        return cache_calibrator(trt, algorithm, cache)
    if batches is None:
        raise GeneratorError("the INT8 calibrator needs a calibration cache or calibration data")
    return data_calibrator(trt, algorithm, batches, opt_shapes=opt_shapes, write_cache=write_cache, device=device)


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
