"""One asyncio Triton client for both protocols (tritonclient.grpc.aio / tritonclient.http.aio).

The load generator runs every request of a benchmark through one of these in one event loop. The two
tritonclient flavours differ in details (protobuf JSON with string int64s vs plain JSON, URL schemes,
connection errors); this module hides those so the rest of `measure` is protocol-blind.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from ..errors import GeneratorError
from .stats import StatsSnapshot, snapshot_from_json

PROTOCOLS = ("grpc", "http")
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def host_port(url: str) -> str:
    """'http://127.0.0.1:8000/' or 'grpc://h:1' or 'h:1' -> 'h:1' (tritonclient wants no scheme)."""
    text = url.strip()
    if "://" in text:
        parts = urlsplit(text)
        text = parts.netloc
    text = text.rstrip("/")
    if not text or ":" not in text:
        raise GeneratorError(f"Triton URL {url!r} needs host:port (e.g. 127.0.0.1:8001 for gRPC, :8000 for HTTP)")
    return text


def is_local(url: str) -> bool:
    """Shared memory only works when the server runs on this machine."""
    return host_port(url).rsplit(":", 1)[0] in _LOCAL_HOSTS


@dataclass(frozen=True)
class TensorMeta:
    """One model input/output as the server reports it: full shape, -1 where dynamic."""

    name: str
    datatype: str  # Triton wire name: FP32, INT64, BYTES, ...
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ModelMeta:
    name: str
    max_batch_size: int
    inputs: tuple[TensorMeta, ...]
    outputs: tuple[TensorMeta, ...]


def _tensors(entries: Sequence[dict[str, Any]]) -> tuple[TensorMeta, ...]:
    return tuple(TensorMeta(e["name"], e["datatype"], tuple(int(d) for d in e.get("shape", []))) for e in entries)


class AsyncTriton:
    """A protocol-blind asyncio client; use as `async with AsyncTriton(url, "grpc") as client`."""

    def __init__(self, url: str, protocol: str, *, connections: int = 100, request_timeout_s: float = 60.0) -> None:
        if protocol not in PROTOCOLS:
            raise GeneratorError(f"protocol must be one of {', '.join(PROTOCOLS)}, not {protocol!r}")
        self.url = host_port(url)
        self.protocol = protocol
        self.request_timeout_s = request_timeout_s
        self.module: ModuleType  # tritonclient.grpc or tritonclient.http (InferInput, InferRequestedOutput)
        try:
            if protocol == "grpc":
                import tritonclient.grpc as module
                import tritonclient.grpc.aio as aio

                self._client: Any = aio.InferenceServerClient(self.url)
            else:
                import tritonclient.http as module  # type: ignore[no-redef]
                import tritonclient.http.aio as aio  # type: ignore[no-redef]

                self._client = aio.InferenceServerClient(
                    self.url, conn_limit=max(100, connections), conn_timeout=request_timeout_s
                )
        except ImportError as exc:
            raise GeneratorError(
                f"the {protocol} client needs tritonclient[{protocol}] ({exc}); pip install 'tritonclient[all]'"
            ) from None
        self.module = module

    async def __aenter__(self) -> "AsyncTriton":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        try:
            await self._client.close()
        except Exception:  # closing a client of a dead server must not hide the real error
            pass

    async def infer(self, model: str, inputs: list[Any], outputs: list[Any] | None) -> Any:
        return await self._client.infer(model, inputs, outputs=outputs)

    def sender(self, model: str, inputs: list[Any], outputs: list[Any] | None) -> Callable[[], Awaitable[Any]]:
        """A zero-argument coroutine function sending this exact request: the load loop's hot path.

        No per-request deadline: a stuck request is cancelled when its load level ends (the HTTP
        session has its own total timeout).
        """
        return functools.partial(self._client.infer, model, inputs, outputs=outputs)

    async def is_live(self, timeout_s: float = 2.0) -> bool:
        try:
            return bool(await asyncio.wait_for(self._client.is_server_live(), timeout_s))
        except Exception:
            return False

    async def model_meta(self, model: str) -> ModelMeta:
        """Inputs/outputs and max_batch_size of a loaded model, or a GeneratorError that says why not."""
        try:
            if self.protocol == "grpc":
                meta, config = await asyncio.wait_for(asyncio.gather(
                    self._client.get_model_metadata(model, as_json=True),
                    self._client.get_model_config(model, as_json=True),
                ), self.request_timeout_s)
                config = config.get("config", {})
            else:
                meta, config = await asyncio.wait_for(asyncio.gather(
                    self._client.get_model_metadata(model), self._client.get_model_config(model)
                ), self.request_timeout_s)
        except Exception as exc:
            reason = describe_error(exc)
            if is_connection_error(exc):
                raise GeneratorError(f"cannot reach Triton at {self.url} over {self.protocol}: {reason}") from None
            raise GeneratorError(
                f"Triton at {self.url} has no ready model {model!r} ({reason}); check the name and the server log"
            ) from None
        return ModelMeta(
            name=model,
            max_batch_size=int(config.get("max_batch_size", 0)),
            inputs=_tensors(meta.get("inputs", [])),
            outputs=_tensors(meta.get("outputs", [])),
        )

    async def stats(self, model: str) -> StatsSnapshot:
        if self.protocol == "grpc":
            raw = await self._client.get_inference_statistics(model, as_json=True)
        else:
            raw = await self._client.get_inference_statistics(model)
        return snapshot_from_json(raw, model)

    async def register_system_shm(self, name: str, key: str, byte_size: int) -> None:
        await self._client.register_system_shared_memory(name, key, byte_size)

    async def register_cuda_shm(self, name: str, raw_handle: bytes, device_id: int, byte_size: int) -> None:
        await self._client.register_cuda_shared_memory(name, raw_handle, device_id, byte_size)

    async def unregister_shm(self, name: str, kind: str) -> None:
        try:
            if kind == "cuda":
                await asyncio.wait_for(self._client.unregister_cuda_shared_memory(name), 5.0)
            else:
                await asyncio.wait_for(self._client.unregister_system_shared_memory(name), 5.0)
        except Exception:  # the server may be gone; the local region is still freed by the caller
            pass


def describe_error(exc: BaseException) -> str:
    """A short one-line reason for a failed request (used as the key of error counts)."""
    message = exc.message() if hasattr(exc, "message") and callable(exc.message) else str(exc)
    status = exc.status() if hasattr(exc, "status") and callable(exc.status) else None
    text = " ".join(str(message or exc.__class__.__name__).split())
    if status:
        text = f"{status}: {text}"
    return text[:200]


def is_connection_error(exc: BaseException) -> bool:
    """True for errors that mean 'the server is not answering' rather than 'this request failed'."""
    status = exc.status() if hasattr(exc, "status") and callable(exc.status) else None
    if status is not None:
        return str(status) in ("StatusCode.UNAVAILABLE", "StatusCode.CANCELLED")
    if isinstance(exc, (ConnectionError, OSError, asyncio.TimeoutError)):
        return True
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - aiohttp comes with tritonclient[http]
        return False
    return isinstance(exc, (aiohttp.ClientConnectionError, aiohttp.ServerDisconnectedError))
