"""Against the real bundled tritonserver: failed loads, ports, and no server left behind, ever."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tests.serve.serve_helpers import CLASSES, FEATURES, REPO_ROOT, make_linear, pid_alive, processes_using, stub_pids, write_linear_pair, write_model

import generator.serve.embedded as embedded
from generator.serve import lifecycle
from generator.errors import GeneratorError, RuntimeFailure
from generator.measure.compare import compare_pair
from generator.serve import EmbeddedServer
from generator.spec import Tolerances

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lifecycle")
    repo, work = root / "repo", root / "work"
    write_linear_pair(repo, work, "lin")
    linear = make_linear(work / "plain.onnx")
    # the config names an input the ONNX file does not have: model.py's initialize refuses it
    write_model(repo, "badnames", linear, inputs=[("z", [FEATURES])], outputs=[("logits", [CLASSES])])
    # not even valid config.pbtxt: only the server log says why (line and column)
    folder = write_model(repo, "badconfig", linear, inputs=[("x", [FEATURES])], outputs=[("logits", [CLASSES])])
    text = (folder / "config.pbtxt").read_text().replace("max_queue_delay_microseconds", "max_queue_delay_us")
    (folder / "config.pbtxt").write_text(text)
    return repo


def _wait_gone(repo: Path, timeout_s: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while (left := processes_using(repo)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def test_failed_load_names_the_model_and_triton_reason(repo: Path, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with pytest.raises(GeneratorError) as caught:
        EmbeddedServer(repo, ["badnames", "badconfig"], log_path=log, timeout_s=60).start()
    message = str(caught.value)
    assert "\n" not in message
    assert "model 'badnames': config.pbtxt names tensors that model.onnx does not have: z" in message
    assert "model 'badconfig'" in message and 'no field named "max_queue_delay_us"' in message
    assert str(log) in message and log.is_file()
    assert _wait_gone(repo) == []


def test_unknown_model_is_refused_before_starting(repo: Path) -> None:
    with pytest.raises(GeneratorError, match="no model 'nope'.*it has: badconfig, badnames, lin_fp32, lin_int8"):
        EmbeddedServer(repo, ["nope"]).start()


def test_busy_fixed_port_is_refused(repo: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(GeneratorError, match=f"port {port} .*already in use"):
            EmbeddedServer(repo, [], grpc_port=port).start()


def test_port_taken_after_picking_is_retried(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Someone binds our gRPC port between picking and starting: the server retries on new ports."""
    real_pick = embedded.pick_ports
    with socket.socket() as thief:
        thief.bind(("127.0.0.1", 0))
        thief.listen()
        stolen = thief.getsockname()[1]
        calls: list[tuple[int, ...]] = []

        def pick(requested: tuple[int, ...]) -> tuple[int, ...]:
            ports = real_pick(requested)
            if not calls:
                ports = (ports[0], stolen, ports[2])
            calls.append(ports)
            return ports

        monkeypatch.setattr(embedded, "pick_ports", pick)
        server = EmbeddedServer(repo, [], timeout_s=60)
        with server as handle:
            assert len(calls) == 2 and handle.grpc_url == f"127.0.0.1:{calls[1][1]}"
            handle.check_ready()
            pid = server.pid
            assert pid is not None
    assert not pid_alive(pid)


def test_server_killed_mid_run_is_a_clean_error(repo: Path, tmp_path: Path) -> None:
    x = np.random.default_rng(0).random((32, FEATURES), dtype=np.float32)
    with EmbeddedServer(repo, ["lin_fp32", "lin_int8"], log_path=tmp_path / "server.log", timeout_s=60) as handle:
        assert handle.process is not None
        regions = lifecycle.shm_regions(handle.process.pid)
        assert len(regions) == 2, "expected one shared-memory region per python-backend stub"

        def batches() -> Iterator[object]:
            from dataclasses import make_dataclass

            batch = make_dataclass("Batch", ["inputs", "labels"])
            yield batch({"x": x[:16]}, None)
            handle.process.kill()  # type: ignore[union-attr]
            handle.process.wait()  # type: ignore[union-attr]
            yield batch({"x": x[16:]}, None)

        with pytest.raises(RuntimeFailure, match=r"the Triton server was killed by signal 9 while running 'lin_fp32' on evaluation batch 1"):
            compare_pair(handle, "lin_fp32", "lin_int8", batches(), tolerances=Tolerances())  # type: ignore[arg-type]
    assert _wait_gone(repo) == []
    assert [name for name in regions if Path("/dev/shm", name).exists()] == [], "a killed server's shared memory was left"


def _start_trgen_serve(repo: Path, log: Path) -> tuple[subprocess.Popen[str], int]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    process = subprocess.Popen(
        [sys.executable, "-m", "generator", "serve", str(repo), "--models", "lin_fp32", "--log", str(log)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "Ctrl-C" in line:
            break
    else:
        raise AssertionError("trgen serve did not come up:\n" + "".join(lines))
    server_pid = int(next(line.split()[1] for line in lines if line.startswith("pid")))
    return process, server_pid


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 128 + signal.SIGTERM)])
def test_trgen_serve_signal_leaves_no_server(repo: Path, tmp_path: Path, signum: int, code: int) -> None:
    process, server_pid = _start_trgen_serve(repo, tmp_path / "server.log")
    stubs = stub_pids(server_pid)
    assert stubs and processes_using(repo)
    process.send_signal(signum)
    assert process.wait(timeout=30) == code
    assert not pid_alive(server_pid) and not any(pid_alive(stub) for stub in stubs)
    assert processes_using(repo) == []


def test_server_follows_when_trgen_is_killed(repo: Path, tmp_path: Path) -> None:
    """SIGKILL gives us no chance to clean up: the kernel's parent-death signal stops the server."""
    process, server_pid = _start_trgen_serve(repo, tmp_path / "server.log")
    process.kill()
    process.wait(timeout=10)
    assert _wait_gone(repo) == [], "tritonserver outlived the trgen process that started it"
    assert not pid_alive(server_pid)
