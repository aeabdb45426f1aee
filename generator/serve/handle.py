"""Where a live Triton server listens, and the readiness checks every measurement starts with.

A `ServerHandle` is the same object for the embedded server and for an external one (`--url`, e.g.
an NGC Triton with TensorRT on a GPU host), so compare and bench never care which it is.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import GeneratorError, RuntimeFailure
from . import logscan


def http_get(url: str, timeout_s: float = 2.0) -> int:
    """HTTP status of GET `url`; 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError, ValueError):
        return 0


def http_post(url: str, timeout_s: float = 5.0) -> Any:
    """POST an empty JSON body; the decoded JSON answer, None when it fails or is not JSON."""
    request = urllib.request.Request(url, data=b"{}", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = response.read().decode("utf-8")
        return json.loads(body) if body else {}
    except (urllib.error.URLError, OSError, ValueError):
        return None


def repository_index(http_url: str, timeout_s: float = 5.0) -> list[dict[str, Any]]:
    """`POST /v2/repository/index`: name, version, state and reason of every model Triton knows."""
    entries = http_post(f"{http_url}/v2/repository/index", timeout_s)
    return entries if isinstance(entries, list) else []


def _host_port(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise GeneratorError(f"{what} {text!r} must look like host:port, http://host:port or grpc://host:port")
    return host, int(port)


def parse_url(url: str) -> tuple[str | None, str | None]:
    """'--url' text -> (http_url with scheme, grpc host:port); either may be None when not given.

    Accepted: 'host:port' or 'grpc://host:port' (gRPC), 'http://host:port' (HTTP), or both joined by
    a comma. The protocol not given follows Triton's default layout (gRPC = HTTP port + 1).
    """
    http_url: str | None = None
    grpc_url: str | None = None
    for part in (p.strip() for p in url.split(",") if p.strip()):
        if part.startswith("https://"):
            raise GeneratorError(f"--url {part!r}: https is not supported; use http://host:port or host:port (gRPC)")
        if part.startswith("http://"):
            host, port = _host_port(part[len("http://"):].rstrip("/"), "--url")
            http_url = f"http://{host}:{port}"
        else:
            host, port = _host_port(part.removeprefix("grpc://").rstrip("/"), "--url")
            grpc_url = f"{host}:{port}"
    if http_url is None and grpc_url is None:
        raise GeneratorError("--url is empty; give host:port (gRPC) or http://host:port")
    return http_url, grpc_url


@dataclass(frozen=True)
class ServerHandle:
    """A live server. `http_url` has a scheme (http://127.0.0.1:8000); `grpc_url` is host:port, as
    tritonclient.grpc takes it; `http_address` is host:port, as tritonclient.http takes it."""

    http_url: str
    grpc_url: str
    metrics_url: str | None = None
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def http_address(self) -> str:
        return self.http_url.split("://", 1)[-1]

    @property
    def embedded(self) -> bool:
        return self.process is not None

    def alive(self) -> bool:
        """False once the embedded server process has exited (external servers: always True)."""
        return self.process is None or self.process.poll() is None

    def grpc_client(self) -> Any:
        """A tritonclient gRPC client for this server (tritonclient imported on first use)."""
        import tritonclient.grpc as grpcclient

        return grpcclient.InferenceServerClient(url=self.grpc_url)

    def failure(self, what: str, exc: BaseException) -> RuntimeFailure:
        """A one-line error for a failed call: says whether the server died and where its log is."""
        if not self.alive():
            assert self.process is not None
            code = self.process.returncode
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            log = logscan.read_log(self.log_path)
            detail = logscan.last_error(log)
            tail = f" (last error: {detail})" if detail else ""
            return RuntimeFailure(f"the Triton server {how} while {what}{tail}; server log: {self.log_path}")
        message = getattr(exc, "message", None)
        text = message() if callable(message) else str(exc)
        text = logscan.first_line(str(text)) or exc.__class__.__name__
        log_hint = f"; server log: {self.log_path}" if self.log_path else ""
        return RuntimeFailure(f"{what} failed on {self.grpc_url}: {text}{log_hint}")

    @classmethod
    def external(cls, url: str, models: Sequence[str] | None = None, *, timeout_s: float = 10.0) -> "ServerHandle":
        """A server someone else runs; checked for readiness (and each model's) before use."""
        http_url, grpc_url = parse_url(url)
        if http_url is None:
            assert grpc_url is not None
            host, port = _host_port(grpc_url, "--url")
            http_url = f"http://{host}:{port - 1}"
        derived_grpc = grpc_url is None
        if grpc_url is None:
            host, port = _host_port(http_url.split("://", 1)[1], "--url")
            grpc_url = f"{host}:{port + 1}"
        handle = cls(http_url=http_url, grpc_url=grpc_url)
        try:
            handle.check_ready(models, timeout_s=timeout_s)
        except GeneratorError as exc:
            if derived_grpc and "no Triton server answers" in exc.message:
                raise RuntimeFailure(
                    f"{exc.message} (gRPC port assumed to be the HTTP port + 1; give both: --url {http_url},grpc://HOST:PORT)"
                ) from None
            raise
        return handle

    def check_ready(self, models: Sequence[str] | None = None, *, timeout_s: float = 10.0) -> None:
        """Server and each model ready over gRPC, else a GeneratorError naming what is not."""
        client = self.grpc_client()
        try:
            self._check_ready(client, models or (), timeout_s)
        finally:
            client.close()

    def _check_ready(self, client: Any, models: Sequence[str], timeout_s: float) -> None:
        from tritonclient.utils import InferenceServerException

        try:
            ready = client.is_server_ready(client_timeout=timeout_s)
        except InferenceServerException as exc:
            raise RuntimeFailure(f"no Triton server answers at {self.grpc_url} (gRPC): {logscan.first_line(str(exc.message()))}") from None
        if not ready:
            raise RuntimeFailure(f"the Triton server at {self.grpc_url} is not ready (GET {self.http_url}/v2/health/ready)")
        for model in models:
            try:
                model_ready = client.is_model_ready(model, client_timeout=timeout_s)
            except InferenceServerException as exc:
                raise self.failure(f"checking model {model!r}", exc) from None
            if not model_ready:
                raise GeneratorError(f"model {model!r} is not loaded or not ready on the Triton server at {self.grpc_url}")
