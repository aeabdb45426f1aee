"""Short real benchmarks on the bundled tritonserver (trivial python model), gRPC and HTTP."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from generator.cli import main
from generator.errors import EXIT_OK, EXIT_RUNTIME_ERROR, EXIT_USER_ERROR, GeneratorError
from generator.measure.bench import BenchResult, BenchSettings, BenchTarget, bench_model, bench_variants, run_bench

pytestmark = pytest.mark.server

SHORT = dict(warmup_s=0.2, window_s=0.3, max_windows=3, stability_pct=50.0)


def url_of(server: Any, protocol: str) -> str:
    return server.grpc_url if protocol == "grpc" else server.http_url


def check_consistent(result: BenchResult) -> None:
    """Numbers that must agree with each other whatever the machine's speed."""
    assert result.complete and result.failed_total == 0 and result.errors == {}
    assert len(result.windows) == 3 and result.measured == (0, 1, 2)
    assert result.latency.count == sum(w.completed for w in result.windows) > 0
    assert result.latency.min_ms <= result.latency.p50_ms <= result.latency.p99_ms <= result.latency.max_ms
    assert result.infer_per_s == pytest.approx(result.requests_per_s * result.batch_size)
    assert result.requests_total >= result.latency.count
    server = result.server
    assert server is not None and server.failed == 0
    # the server counted the same requests, give or take those in flight at the window boundaries
    in_flight = result.level if result.mode == "concurrency" else 64
    assert abs(server.requests - result.latency.count) <= 4 * in_flight
    assert server.inferences == pytest.approx(server.requests * result.batch_size, abs=4 * in_flight * result.batch_size)
    assert server.compute_infer_us > 0 and server.queue_us > 0
    # time inside the server is part of what the client waited for
    assert server.total_us < result.latency.mean_ms * 1000


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_short_bench_concurrency_and_request_rate(trivial_server: Any, protocol: str) -> None:
    settings = BenchSettings(protocol=protocol, concurrency=(1, 4), request_rates=(200.0,), batch_size=4, **SHORT)
    results = bench_model(BenchTarget(url_of(trivial_server, protocol), "add"), settings, progress=False)
    assert [(r.mode, r.level, r.protocol) for r in results] == [
        ("concurrency", 1.0, protocol), ("concurrency", 4.0, protocol), ("request_rate", 200.0, protocol),
    ]
    for result in results:
        check_consistent(result)
    rated = results[2]
    assert rated.achieved_rate == pytest.approx(200.0, rel=0.2) and rated.dropped == 0
    assert sum(w.sent for w in rated.windows) >= rated.latency.count - 64
    json.dumps([r.to_dict() for r in results], allow_nan=False)


def test_system_shared_memory_carries_the_tensors(trivial_server: Any) -> None:
    import tritonclient.grpc as grpcclient
    import tritonclient.utils.shared_memory as shm

    from generator.measure.client import AsyncTriton
    from generator.measure.inputs import request_plan

    async def one_request() -> tuple[np.ndarray, np.ndarray, Any]:
        async with AsyncTriton(trivial_server.grpc_url, "grpc") as client:
            meta = await client.model_meta("add")
            async with request_plan(client, meta, batch_size=2, shapes={}, shared_memory="system", slots=2) as plan:
                response = await client.infer("add", plan.inputs, plan.slot_outputs[1])
                assert response.get_response().raw_output_contents == [b""]  # the output went to shared memory
                key = next(k for k in shm.mapped_shared_memory_regions() if k.endswith("_out1"))
                region = shm.create_shared_memory_region("reader", key, 2 * 16 * 4)
                written = shm.get_contents_as_numpy(region, np.float32, (2, 16)).copy()
                shm.destroy_shared_memory_region(region)
                return plan.data["INPUT0"], written, shm.mapped_shared_memory_regions()

    sent, received, mapped_during = asyncio.run(one_request())
    np.testing.assert_array_equal(received, sent + 1.0)  # the model computed on the shared input
    assert len(mapped_during) == 3  # one input region, one output region per slot
    assert shm.mapped_shared_memory_regions() == []  # freed locally ...
    client = grpcclient.InferenceServerClient(trivial_server.grpc_url)
    assert not client.get_system_shared_memory_status(as_json=True).get("regions")  # ... and on the server
    client.close()


def test_shared_memory_bench_has_no_failures(trivial_server: Any) -> None:
    settings = BenchSettings(protocol="http", concurrency=(4,), shared_memory="system", batch_size=2, **SHORT)
    (result,) = bench_model(BenchTarget(trivial_server.http_address, "add"), settings, progress=False)
    check_consistent(result)
    assert result.shared_memory == "system"


def test_dynamic_dims_need_a_shape(trivial_server: Any) -> None:
    settings = BenchSettings(concurrency=(2,), **SHORT)
    with pytest.raises(GeneratorError, match="--shape INPUT0:N"):
        bench_model(BenchTarget(trivial_server.grpc_url, "add_dyn"), settings, progress=False)
    (result,) = bench_model(BenchTarget(trivial_server.grpc_url, "add_dyn", shapes={"INPUT0": (5,)}), settings, progress=False)
    check_consistent(result)


def test_unknown_model_is_a_user_error(trivial_server: Any) -> None:
    with pytest.raises(GeneratorError, match="has no ready model 'nope'"):
        bench_model(BenchTarget(trivial_server.grpc_url, "nope"), BenchSettings(**SHORT), progress=False)


def test_cancellation_stops_cleanly_and_keeps_the_partial_level(trivial_server: Any) -> None:
    import tritonclient.utils.shared_memory as shm

    got: list[BenchResult] = []
    settings = BenchSettings(concurrency=(8,), shared_memory="system", warmup_s=0.1, window_s=0.3,
                             max_windows=100, stability_pct=0.001)

    async def cancel_midway() -> float:
        task = asyncio.create_task(run_bench(BenchTarget(trivial_server.grpc_url, "add"), settings,
                                             on_result=got.append, progress=False))
        await asyncio.sleep(1.5)
        task.cancel()
        started = time.perf_counter()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.perf_counter() - started

    assert asyncio.run(cancel_midway()) < 2.0
    (partial,) = got
    assert not partial.complete and partial.note == "interrupted" and len(partial.windows) >= 2
    assert partial.failed_total == 0
    assert shm.mapped_shared_memory_regions() == []
    # the server is unharmed: the next benchmark runs normally
    (after,) = bench_model(BenchTarget(trivial_server.grpc_url, "add"), BenchSettings(concurrency=(2,), **SHORT), progress=False)
    check_consistent(after)


def test_ctrl_c_exits_4_with_a_partial_report(trivial_server: Any, tmp_path: Path) -> None:
    out = tmp_path / "report"
    command = [sys.executable, "-m", "generator", "bench", "--url", trivial_server.grpc_url, "--model-name", "add",
               "--concurrency", "4", "--warmup", "0.1", "--window", "0.3", "--max-windows", "100",
               "--stability", "0.001", "--out", str(out), "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    time.sleep(3.0)  # imports, metadata, warm-up and a few windows
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
    assert process.returncode == EXIT_RUNTIME_ERROR, stderr  # interrupted: a run-time failure
    assert "interrupted (Ctrl-C)" in stderr and "Traceback" not in stderr
    assert "partial report" in stdout
    document = json.loads((out / "report.json").read_text())
    assert document["complete"] is False and document["bench"][0]["note"] == "interrupted"


SPEC = """\
version: 1
workdir: build
benchmark: {{protocol: http, concurrency: [2], batch_size: 2, warmup_s: 0.2, window_s: 0.4, max_windows: 3,
             stability_pct: 50}}
models:
  - name: tiny
    onnx: tiny.onnx
    max_batch_size: 8
    variants:
      - {{name: add, precision: fp32}}
      - {{name: {int8}, precision: int8, calibration: {{data: {{kind: arrays, path: data.npz}}}}}}
"""


def test_spec_variants_use_the_spec_settings(trivial_server: Any, tiny_spec: Path) -> None:
    from generator.spec import load_spec

    tiny_spec.write_text(SPEC.format(int8="add_dyn"))
    spec = load_spec(tiny_spec)
    results = bench_variants(trivial_server, spec.resolved()[:1], progress=False)
    (result,) = results
    assert (result.model, result.variant, result.precision, result.target) == ("tiny", "add", "fp32", "python-onnxruntime")
    assert (result.protocol, result.level, result.batch_size) == ("http", 2.0, 2)
    check_consistent(result)


def test_cli_spec_mode_on_a_url_writes_the_report(trivial_server: Any, tiny_spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tiny_spec.write_text(SPEC.format(int8="add_int8"))  # a variant the server does not have
    assert main(["bench", str(tiny_spec), "--url", trivial_server.grpc_url, "--model", "add_int8", "--no-progress"]) == EXIT_USER_ERROR
    assert "add_int8" in capsys.readouterr().err
    tiny_spec.write_text(SPEC.format(int8="add_dyn"))  # the same model with a dynamic dim: needs --shape
    code = main(["bench", str(tiny_spec), "--url", trivial_server.grpc_url, "--model", "tiny", "--protocol", "grpc",
                 "--concurrency", "2", "--shape", "INPUT0:16", "--no-progress"])
    assert code == EXIT_OK
    document = json.loads((tiny_spec.parent / "build" / "bench" / "report.json").read_text())
    assert [(r["variant"], r["precision"], r["protocol"], r["level"]) for r in document["bench"]] == [
        ("add", "fp32", "grpc", 2.0), ("add_dyn", "int8", "grpc", 2.0),
    ]
    assert [(r["baseline"], r["candidate"], r["level"]) for r in document["ratios"]] == [("add", "add_dyn", 2.0)]
    assert "report:" in capsys.readouterr().out


def test_killed_server_gives_one_line_error_and_partial_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import threading

    from generator.measure.trivial import write_trivial_repository
    from generator.serve import EmbeddedServer

    repository = write_trivial_repository(tmp_path / "repo", ("add",))
    out = tmp_path / "report"
    with EmbeddedServer(repository, ["add"], log_path=tmp_path / "server.log", timeout_s=90) as server:
        assert server.process is not None
        killer = threading.Timer(1.5, server.process.kill)
        killer.start()
        try:
            code = main(["bench", "--url", server.grpc_url, "--model-name", "add", "--concurrency", "4",
                         "--warmup", "0.1", "--window", "0.3", "--max-windows", "100", "--stability", "0.001",
                         "--out", str(out), "--no-progress"])
        finally:
            killer.cancel()
    captured = capsys.readouterr()
    assert code == EXIT_RUNTIME_ERROR  # a dead server is a run-time failure, not bad input (issue 9)
    assert captured.err.startswith("trgen: failed: load test cut short: the server at ") and "stopped answering" in captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    document = json.loads((out / "report.json").read_text())
    assert document["complete"] is False
    (partial,) = document["bench"]
    assert partial["note"].startswith("server stopped answering") and len(partial["windows"]) >= 2
    assert all(w["failed"] == 0 for w in partial["windows"])  # the windows measured before the kill are clean


@pytest.mark.slow
def test_ten_thousand_requests_at_concurrency_32_without_a_failure(trivial_server: Any) -> None:
    """The reliability bar: >= 10,000 requests at concurrency 32, zero failed."""
    settings = BenchSettings(concurrency=(32,), batch_size=1, warmup_s=0.5, window_s=1.0, max_windows=3, stability_pct=100.0)
    results: list[BenchResult] = []
    started = time.monotonic()
    while sum(r.requests_total for r in results) < 10_000 and time.monotonic() - started < 50:
        results += bench_model(BenchTarget(trivial_server.grpc_url, "add"), settings, progress=False)
    total = sum(r.requests_total for r in results)
    assert total >= 10_000
    assert sum(r.failed_total for r in results) == 0
    for result in results:
        assert result.complete and result.errors == {}
        assert result.server is not None and result.server.failed == 0


@pytest.mark.slow
def test_cli_spec_mode_prepares_serves_and_reports(tiny_spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The whole `trgen bench SPEC` path: prepare_repository, embedded server, every variant, report."""
    code = main(["bench", str(tiny_spec), "--concurrency", "2", "--batch-size", "4", "--warmup", "0.2",
                 "--window", "0.3", "--max-windows", "3", "--no-progress"])
    assert code == EXIT_OK, capsys.readouterr().err
    document = json.loads((tiny_spec.parent / "build" / "bench" / "report.json").read_text())
    assert [(r["variant"], r["precision"], r["failed_total"]) for r in document["bench"]] == [
        ("tiny_fp32", "fp32", 0), ("tiny_int8", "int8", 0),
    ]
    (ratio,) = document["ratios"]
    assert ratio["baseline"] == "tiny_fp32" and ratio["throughput_ratio"] > 0
