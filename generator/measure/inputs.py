"""Request tensors for a benchmark: shapes from the server's metadata, random data, shared memory.

Inputs are built once and reused by every request (as perf_analyzer does), so the load generator
spends its time sending, not serialising new data. With shared memory the inputs live in one region
registered with the server, and each in-flight slot gets its own output region (concurrent requests
never write into the same bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import GeneratorError
from .client import AsyncTriton, ModelMeta, TensorMeta, describe_error, is_local

SHARED_MEMORY = ("none", "system", "cuda")
_MAX_OUTPUT_SHM_BYTES = 1 << 30  # refuse output regions that would need more than 1 GiB in total


def parse_shapes(items: list[str] | None) -> dict[str, tuple[int, ...]]:
    """['input:1,28,28', ...] -> {'input': (1, 28, 28)}: dims without the batch dimension."""
    shapes: dict[str, tuple[int, ...]] = {}
    for item in items or []:
        name, sep, dims = item.rpartition(":")
        try:
            shape = tuple(int(d) for d in dims.split(",") if d.strip())
        except ValueError:
            shape = ()
        if not sep or not name or not shape or any(d < 1 for d in shape):
            raise GeneratorError(f"--shape {item!r}: write NAME:D1,D2,... with positive dims (no batch dimension)")
        shapes[name] = shape
    return shapes


def resolve_shapes(
    meta: ModelMeta, batch_size: int, shapes: Mapping[str, tuple[int, ...]]
) -> dict[str, tuple[int, ...]]:
    """Full request shape of every input; dynamic dims must come from `shapes` (without batch)."""
    batching = meta.max_batch_size > 0
    if not batching and batch_size != 1:
        raise GeneratorError(
            f"model {meta.name!r} does not batch (max_batch_size 0): use batch size 1, not {batch_size}"
        )
    if batching and batch_size > meta.max_batch_size:
        raise GeneratorError(
            f"batch size {batch_size} exceeds the max_batch_size {meta.max_batch_size} of model {meta.name!r}"
        )
    unknown = set(shapes) - {t.name for t in meta.inputs}
    if unknown:
        known = ", ".join(t.name for t in meta.inputs)
        raise GeneratorError(f"--shape names unknown input(s) {', '.join(sorted(unknown))} (the model has: {known})")
    resolved = {}
    for tensor in meta.inputs:
        dims = tensor.shape[1:] if batching else tensor.shape
        given = shapes.get(tensor.name)
        if given is not None:
            if len(given) != len(dims) or any(d != -1 and d != g for d, g in zip(dims, given)):
                raise GeneratorError(
                    f"--shape {tensor.name}:{','.join(map(str, given))} does not fit the model's dims "
                    f"{list(dims)} (without batch; -1 = any)"
                )
            dims = given
        if any(d < 0 for d in dims):
            raise GeneratorError(
                f"input {tensor.name!r} has dynamic dims {list(dims)}: give them with "
                f"--shape {tensor.name}:{','.join('N' if d < 0 else str(d) for d in dims)} (without batch)"
            )
        resolved[tensor.name] = ((batch_size,) if batching else ()) + tuple(dims)
    return resolved


def random_array(datatype: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Random data of the right dtype: floats in [0, 1), small non-negative ints, short byte strings."""
    from tritonclient.utils import triton_to_np_dtype

    if datatype == "BYTES":
        flat = [bytes(rng.integers(97, 123, 8, dtype=np.uint8)) for _ in range(int(np.prod(shape)))]
        return np.array(flat, dtype=np.object_).reshape(shape)
    if datatype == "BOOL":
        return rng.integers(0, 2, shape).astype(bool)
    dtype = triton_to_np_dtype(datatype)
    if dtype is None:
        raise GeneratorError(f"cannot generate data for Triton datatype {datatype!r}")
    if np.issubdtype(np.dtype(dtype), np.integer):
        return rng.integers(0, 10, shape).astype(dtype)
    return rng.random(shape, dtype=np.float32).astype(dtype)


def raw_bytes(array: np.ndarray, datatype: str) -> np.ndarray:
    """The bytes Triton expects in shared memory for this tensor, as a uint8 array."""
    if datatype == "BYTES":
        from tritonclient.utils import serialize_byte_tensor

        return np.frombuffer(serialize_byte_tensor(array).item(), dtype=np.uint8)
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8)


@dataclass
class RequestPlan:
    """Everything a request sends: shared inputs, and per slot the outputs to ask for (None = all)."""

    inputs: list[Any]
    slot_outputs: list[list[Any] | None]
    data: dict[str, np.ndarray]


async def probe(client: AsyncTriton, model: str, data: Mapping[str, np.ndarray], meta: ModelMeta) -> dict[str, int]:
    """One plain request before any load: proves the inputs work and learns each output's byte size."""
    inputs = _plain_inputs(client, meta.inputs, data)
    try:
        response = await asyncio.wait_for(client.infer(model, inputs, None), client.request_timeout_s)
    except asyncio.TimeoutError:
        raise GeneratorError(f"a first request to {model!r} got no answer within {client.request_timeout_s:g} s") from None
    except Exception as exc:
        raise GeneratorError(f"a first request to {model!r} failed: {describe_error(exc)}") from None
    sizes = {}
    for tensor in meta.outputs:
        if tensor.datatype == "BYTES":
            continue  # variable size: stays in the response
        value = response.as_numpy(tensor.name)
        if value is not None:
            sizes[tensor.name] = int(value.nbytes)
    return sizes


def _plain_inputs(client: AsyncTriton, tensors: tuple[TensorMeta, ...], data: Mapping[str, np.ndarray]) -> list[Any]:
    inputs = []
    for tensor in tensors:
        array = data[tensor.name]
        infer_input = client.module.InferInput(tensor.name, list(array.shape), tensor.datatype)
        infer_input.set_data_from_numpy(array)
        inputs.append(infer_input)
    return inputs


@contextlib.asynccontextmanager
async def request_plan(
    client: AsyncTriton,
    meta: ModelMeta,
    *,
    batch_size: int,
    shapes: Mapping[str, tuple[int, ...]],
    shared_memory: str,
    slots: int,
    seed: int = 0,
) -> AsyncIterator[RequestPlan]:
    """Build (and afterwards free) the request tensors; shared-memory regions are unregistered on exit."""
    if shared_memory not in SHARED_MEMORY:
        raise GeneratorError(f"--shared-memory must be one of {', '.join(SHARED_MEMORY)}, not {shared_memory!r}")
    rng = np.random.default_rng(seed)
    full_shapes = resolve_shapes(meta, batch_size, shapes)
    data = {t.name: random_array(t.datatype, full_shapes[t.name], rng) for t in meta.inputs}
    output_sizes = await probe(client, meta.name, data, meta)
    if shared_memory == "none":
        yield RequestPlan(_plain_inputs(client, meta.inputs, data), [None] * slots, data)
        return
    if not is_local(client.url):
        raise GeneratorError(
            f"--shared-memory {shared_memory} needs the server on this machine (127.0.0.1/localhost), "
            f"not {client.url}: use --shared-memory none"
        )
    async with _SharedRegions(client, shared_memory) as regions:
        yield await regions.plan(meta, data, output_sizes, slots)


class _SharedRegions:
    """Creates, registers and always frees the system or CUDA shared-memory regions of one plan."""

    def __init__(self, client: AsyncTriton, kind: str) -> None:
        self.client = client
        self.kind = kind
        self.prefix = f"trgen_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self.handles: list[tuple[str, Any]] = []  # (triton region name, local handle)
        self.shm = _shm_module(kind)

    async def __aenter__(self) -> "_SharedRegions":
        return self

    async def __aexit__(self, *exc: object) -> None:
        for name, handle in reversed(self.handles):
            await self.client.unregister_shm(name, self.kind)
            with contextlib.suppress(Exception):
                self.shm.destroy_shared_memory_region(handle)
        self.handles.clear()

    async def region(self, suffix: str, arrays: list[np.ndarray], byte_size: int) -> str:
        name = f"{self.prefix}_{suffix}"
        try:
            if self.kind == "system":
                handle = self.shm.create_shared_memory_region(name, f"/{name}", byte_size)
                self.handles.append((name, handle))
                if arrays:
                    self.shm.set_shared_memory_region(handle, arrays)
                await self.client.register_system_shm(name, f"/{name}", byte_size)
            else:
                handle = self.shm.create_shared_memory_region(name, byte_size, 0)
                self.handles.append((name, handle))
                if arrays:
                    self.shm.set_shared_memory_region(handle, arrays)
                await self.client.register_cuda_shm(name, self.shm.get_raw_handle(handle), 0, byte_size)
        except GeneratorError:
            raise
        except Exception as exc:
            raise GeneratorError(f"could not set up {self.kind} shared memory: {describe_error(exc)}") from None
        return name

    async def plan(
        self, meta: ModelMeta, data: dict[str, np.ndarray], output_sizes: dict[str, int], slots: int
    ) -> RequestPlan:
        raws = [raw_bytes(data[t.name], t.datatype) for t in meta.inputs]
        in_region = await self.region("in", raws, max(1, sum(r.nbytes for r in raws)))
        inputs, offset = [], 0
        for tensor, raw in zip(meta.inputs, raws):
            infer_input = self.client.module.InferInput(tensor.name, list(data[tensor.name].shape), tensor.datatype)
            infer_input.set_shared_memory(in_region, raw.nbytes, offset)
            inputs.append(infer_input)
            offset += raw.nbytes
        out_bytes = sum(output_sizes.values())
        if out_bytes * slots > _MAX_OUTPUT_SHM_BYTES:
            raise GeneratorError(
                f"output shared memory would need {out_bytes * slots / 2**20:.0f} MiB for {slots} in-flight "
                "requests: lower the concurrency/--max-in-flight or use --shared-memory none"
            )
        slot_outputs: list[list[Any] | None] = []
        for slot in range(slots):
            if not output_sizes:
                slot_outputs.append(None)
                continue
            out_region = await self.region(f"out{slot}", [], out_bytes)
            outputs, offset = [], 0
            for tensor in meta.outputs:
                requested = self.client.module.InferRequestedOutput(tensor.name)
                if tensor.name in output_sizes:
                    requested.set_shared_memory(out_region, output_sizes[tensor.name], offset)
                    offset += output_sizes[tensor.name]
                outputs.append(requested)
            slot_outputs.append(outputs)
        return RequestPlan(inputs, slot_outputs, data)


def _shm_module(kind: str) -> Any:
    if kind == "system":
        import tritonclient.utils.shared_memory as shm

        return shm
    try:
        import tritonclient.utils.cuda_shared_memory as cudashm
    except Exception as exc:  # RuntimeError without cuda-python, ImportError without tritonclient[cuda]
        raise GeneratorError(
            "--shared-memory cuda needs an NVIDIA GPU and cuda-python (pip install 'tritonclient[cuda]'); "
            f"not available here ({describe_error(exc)}): use --shared-memory system or none"
        ) from None
    try:
        try:
            from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
        except ImportError:
            from cuda import cudart  # type: ignore[no-redef]
        error, count = cudart.cudaGetDeviceCount()
        visible = int(error) == 0 and count > 0
    except Exception:
        visible = False
    if not visible:
        raise GeneratorError(
            "--shared-memory cuda: no CUDA device is visible on this machine; use --shared-memory system or none"
        )
    return cudashm
