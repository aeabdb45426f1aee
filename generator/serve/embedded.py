"""The bundled tritonserver as a context manager: free ports, readiness, load failures, clean exit.

    with EmbeddedServer(repo, ["mnist_fp32", "mnist_int8"]) as server:   # -> ServerHandle
        client = server.grpc_client()

Models load explicitly (`--model-control-mode=explicit --load-model=NAME`), with `--exit-on-error
=false` so that one bad model does not hide the others' state: the repository index then says which
model failed and why, and we raise that as a one-line GeneratorError naming the model.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from ..errors import GeneratorError, RuntimeFailure
from . import lifecycle, logscan
from .handle import ServerHandle, http_get, http_post, repository_index
from .install import TritonInstall, locate_triton
from .ports import HOST, pick_ports

log = logging.getLogger("trgen.serve")

_START_ATTEMPTS = 3  # a free port can be taken by someone else before the server binds it
_POLL_S = 0.1


class _PortCollision(Exception):
    """The server lost a race for a port we picked; start again with new ones."""


def repository_models(repository: Path) -> list[str]:
    """Model folders (those with a config.pbtxt) in a repository, sorted."""
    return sorted(p.name for p in repository.iterdir() if p.is_dir() and (p / "config.pbtxt").is_file())


class EmbeddedServer:
    """Runs the bundled tritonserver on `repository`, loading `models` (default: every model).

    Ports of 0 are chosen free; the server binds 127.0.0.1 only. `timeout_s` bounds start-up
    (model loading included). The server log goes to `log_path` (default: a temporary file, removed
    after a clean stop, kept when anything went wrong).
    """

    def __init__(
        self,
        repository: Path,
        models: Sequence[str] | None = None,
        *,
        log_path: Path | None = None,
        timeout_s: float = 120,
        http_port: int = 0,
        grpc_port: int = 0,
        metrics_port: int = 0,
        stop_timeout_s: float = 20,
    ) -> None:
        self.repository = Path(repository)
        self.models = None if models is None else list(models)
        self.log_path = Path(log_path) if log_path is not None else None
        self.timeout_s = timeout_s
        self.ports = (http_port, grpc_port, metrics_port)
        self.stop_timeout_s = stop_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._temporary_log = False
        self.handle: ServerHandle | None = None

    def __enter__(self) -> ServerHandle:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # ---- start ---------------------------------------------------------------------------------

    def _resolve_models(self, repository: Path) -> list[str]:
        if not repository.is_dir():
            raise GeneratorError("model repository not found (render it first)", where=repository)
        available = repository_models(repository)
        if self.models is None:
            return available
        for name in self.models:
            if name not in available:
                have = ", ".join(available) or "none"
                raise GeneratorError(f"no model {name!r} (a folder with config.pbtxt) in the repository; it has: {have}", where=repository)
        return list(dict.fromkeys(self.models))

    def start(self) -> ServerHandle:
        if self._process is not None:
            raise GeneratorError("this EmbeddedServer is already running; use one instance per server")
        repository = self.repository.resolve()
        models = self._resolve_models(repository)
        install = locate_triton()
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="trgen-tritonserver-", suffix=".log")
            os.close(fd)
            self.log_path, self._temporary_log = Path(name), True
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        auto_ports = 0 in self.ports
        for attempt in range(1, _START_ATTEMPTS + 1):
            try:
                return self._launch(install, repository, models, pick_ports(self.ports))
            except _PortCollision as collision:
                self.stop()
                if not auto_ports or attempt == _START_ATTEMPTS:
                    self._temporary_log = False  # the error names the log: keep it
                    raise RuntimeFailure(f"Triton could not bind {collision}: the port is in use; pass other ports (0 = free); server log: {self.log_path}") from None
                log.debug("port collision (%s), retrying with new ports", collision)
            except BaseException:
                if self._process is not None:
                    self._temporary_log = False  # the server ran: the error may name its log, keep it
                self.stop()  # Ctrl-C or a failed start: never leave a half-started server
                raise
        raise AssertionError("unreachable")

    def _launch(self, install: TritonInstall, repository: Path, models: list[str], ports: tuple[int, ...]) -> ServerHandle:
        http_port, grpc_port, metrics_port = ports
        args = [
            str(install.binary),
            f"--model-repository={repository}",
            f"--backend-directory={install.backends}",
            f"--http-address={HOST}", f"--grpc-address={HOST}", f"--metrics-address={HOST}",
            f"--http-port={http_port}", f"--grpc-port={grpc_port}", f"--metrics-port={metrics_port}",
            "--model-control-mode=explicit", *(f"--load-model={name}" for name in models),
            "--exit-on-error=false", "--strict-readiness=true",
            f"--exit-timeout-secs={max(1, int(self.stop_timeout_s / 2))}",
        ]
        if install.caches is not None:
            args.append(f"--cache-directory={install.caches}")
        assert self.log_path is not None
        self._log_file = open(self.log_path, "wb")
        self._log_file.write(f"# {' '.join(args)}\n".encode())
        self._log_file.flush()
        self._process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=install.environment(),
            cwd=repository,
            start_new_session=True,  # its own process group: Ctrl-C reaches us, we stop it in order
            preexec_fn=lifecycle.child_setup(),
        )
        lifecycle.register(self)
        handle = ServerHandle(
            http_url=f"http://{HOST}:{http_port}",
            grpc_url=f"{HOST}:{grpc_port}",
            metrics_url=f"http://{HOST}:{metrics_port}/metrics",
            log_path=self.log_path,
            process=self._process,
        )
        self.handle = handle  # before waiting: a failed start still unloads what did load
        self._wait_ready(handle, models, repository)
        log.debug("tritonserver ready: http %s, grpc %s (pid %d)", handle.http_url, handle.grpc_url, self._process.pid)
        return handle

    def _wait_ready(self, handle: ServerHandle, models: list[str], repository: Path) -> None:
        deadline = time.monotonic() + self.timeout_s
        # the endpoints start once start-up model loading is over, whatever its outcome
        while (live := http_get(f"{handle.http_url}/v2/health/live", timeout_s=1.0)) == 0:
            self._check_running()
            if time.monotonic() > deadline:
                raise self._timeout_error()
            time.sleep(_POLL_S)
        failed: dict[str, str] = {}
        if live != 200:  # e.g. a config.pbtxt that does not parse: Triton stays up but not live
            log_text = logscan.read_log(self.log_path)
            failed = {name: reason for name in models if (reason := logscan.model_failure_from_log(log_text, name))}
            if not failed:
                reason = logscan.last_error(log_text) or "no reason in the log"
                raise RuntimeFailure(f"Triton started but is not live: {reason}; server log: {self.log_path}")
        pending = set(models) - set(failed)
        while pending:
            states = {entry.get("name"): entry for entry in repository_index(handle.http_url)}
            log_failures = self._log_failures(models)
            for name in sorted(pending):
                entry = states.get(name, {})
                state = entry.get("state")
                if state == "READY" and http_get(f"{handle.http_url}/v2/models/{name}/ready") == 200:
                    pending.discard(name)
                elif state == "UNAVAILABLE" or (not state and name in log_failures):  # no state: never got to load
                    failed[name] = self._failure_reason(name, str(entry.get("reason", "")))
                    pending.discard(name)
            if not pending:
                break
            self._check_running()
            if time.monotonic() > deadline:
                raise self._timeout_error()
            time.sleep(_POLL_S)
        if failed:
            names = sorted(failed)
            reasons = "; ".join(f"model {name!r}: {failed[name]}" for name in names)
            where = repository / names[0] if len(names) == 1 else repository
            raise RuntimeFailure(f"Triton failed to load {reasons}; server log: {self.log_path}", where=where)
        if models and http_get(f"{handle.http_url}/v2/health/ready") != 200:
            raise RuntimeFailure(f"Triton started but reports not ready; server log: {self.log_path}")

    def _log_failures(self, models: list[str]) -> set[str]:
        text = logscan.read_log(self.log_path)
        return {name for name in models if logscan.model_failure_from_log(text, name) is not None}

    def _failure_reason(self, name: str, index_reason: str) -> str:
        from_log = logscan.model_failure_from_log(logscan.read_log(self.log_path), name)
        reason = logscan.first_line(index_reason) if index_reason.strip() else ""
        if from_log and (not reason or (len(from_log) > len(reason) and reason in from_log)):
            reason = from_log  # e.g. the log adds a config parse error's line and column
        if "unable to find backend library" in reason:
            reason += " (the bundled server has the python backend only: serve this model with a full Triton and pass --url)"
        return reason or "no reason given (see the server log)"

    def _check_running(self) -> None:
        assert self._process is not None
        code = self._process.poll()
        if code is None:
            return
        text = logscan.read_log(self.log_path)
        collision = logscan.port_in_use(text)
        if collision:
            raise _PortCollision(collision)
        reason = logscan.last_error(text) or "no error in the log"
        raise RuntimeFailure(f"tritonserver exited with code {code} while starting: {reason}; server log: {self.log_path}")

    def _timeout_error(self) -> RuntimeFailure:
        reason = logscan.last_error(logscan.read_log(self.log_path))
        detail = f" (last error: {reason})" if reason else ""
        return RuntimeFailure(f"Triton was not ready after {self.timeout_s:g} s{detail}; raise the timeout or see the server log: {self.log_path}")

    # ---- run and stop --------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def wait(self) -> int:
        """Block until the server exits on its own (e.g. `trgen serve` until Ctrl-C); its exit code."""
        assert self._process is not None, "start() first"
        return self._process.wait()

    def stop(self) -> None:
        """Terminate, wait, then kill the whole process group; idempotent and safe at exit."""
        process, self._process = self._process, None
        lifecycle.unregister(self)
        exited_alone = False
        if process is not None:
            exited_alone = process.poll() is not None
            regions = lifecycle.shm_regions(process.pid)
            try:
                if not exited_alone:
                    self._unload_models()
                    process.send_signal(signal.SIGTERM)
                    try:
                        process.wait(timeout=self.stop_timeout_s)
                    except subprocess.TimeoutExpired:
                        lifecycle.kill_group(process.pid)
                        process.wait()
                # stubs outlive a server that died (or was killed): stop them, free their shared memory
                lifecycle.reap_group(process.pid, regions, grace_s=0.5 if exited_alone else 3.0)
            except BaseException:  # Ctrl-C while stopping: stop hard
                lifecycle.kill_group(process.pid)
                process.wait()
                lifecycle.reap_group(process.pid, regions, grace_s=0.5)
                raise
        self.handle = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        clean = process is None or (not exited_alone and process.returncode == 0)  # None: never started
        if self._temporary_log and clean and self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path, self._temporary_log = None, False

    def _unload_models(self) -> None:
        """Unload every model before SIGTERM: Triton's own shutdown re-checks only once a second.

        Best effort with short timeouts (SIGTERM follows regardless); saves 1-2 s per stop.
        """
        if self.handle is None:
            return
        url = self.handle.http_url
        busy = ("READY", "LOADING", "UNLOADING")
        for entry in repository_index(url, timeout_s=2.0):
            if entry.get("state") in ("READY", "LOADING"):
                http_post(f"{url}/v2/repository/models/{entry['name']}/unload", timeout_s=2.0)
        deadline = time.monotonic() + min(5.0, self.stop_timeout_s / 2)
        while time.monotonic() < deadline and any(e.get("state") in busy for e in repository_index(url, timeout_s=2.0)):
            time.sleep(0.05)
