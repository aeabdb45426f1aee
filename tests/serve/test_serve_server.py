"""Against the real bundled tritonserver: the model template, dynamic batching, and compare.

One server for the whole module (start-up and shutdown take a few seconds each).
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.serve.serve_helpers import FEATURES, make_rowsum, pid_alive, processes_using, run_onnx, stub_pids, write_linear_pair, write_model

from generator.cli import main
from generator.errors import EXIT_CHECK_FAILED, GeneratorError
from generator.measure.compare import compare_pair
from generator.serve import EmbeddedServer, ServerHandle
from generator.spec import Tolerances

pytestmark = pytest.mark.server

DELAY_US = 20_000  # the linear models: a short queue delay
BATCH_DELAY_US = 200_000  # rowsum: long enough for a burst of requests to meet even on a busy CI machine


@dataclass
class Served:
    handle: ServerHandle
    work: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("served")
    repo, work = root / "repo", root / "work"
    write_linear_pair(repo, work, "lin", delay_us=DELAY_US)
    write_model(repo, "rowsum", make_rowsum(work / "rowsum.onnx"), inputs=[("x", [-1])], outputs=[("s", [1]), ("n", [1])], delay_us=BATCH_DELAY_US)
    # no batching, and dims loose enough for Triton to pass requests onnxruntime must refuse
    write_model(repo, "loose", work / "lin_fp32.onnx", inputs=[("x", [-1, -1])], outputs=[("logits", [-1, -1])], max_batch_size=0)
    server = EmbeddedServer(repo, ["lin_fp32", "lin_int8", "rowsum", "loose"], log_path=root / "server.log", timeout_s=60)
    with server as handle:
        assert server.pid is not None
        pid, stubs = server.pid, stub_pids(server.pid)
        assert len(stubs) == 4, "one python-backend stub per model instance"
        yield Served(handle, work)
    # a clean stop leaves nothing behind: no server, no stub
    assert not pid_alive(pid) and not any(pid_alive(stub) for stub in stubs)
    assert processes_using(repo) == []


def _infer(handle: ServerHandle, model: str, x: np.ndarray, output: str) -> np.ndarray:
    import tritonclient.grpc as grpcclient

    client = handle.grpc_client()
    try:
        request = grpcclient.InferInput("x", list(x.shape), "FP32")
        request.set_data_from_numpy(x)
        return client.infer(model, [request]).as_numpy(output)
    finally:
        client.close()


def _concurrent(handle: ServerHandle, model: str, arrays: list[np.ndarray], outputs: tuple[str, ...]) -> list[Any]:
    """Send every array as its own request at once (async gRPC); each result is a tuple of arrays or an error."""
    import tritonclient.grpc as grpcclient

    client = handle.grpc_client()
    results: list[Any] = [None] * len(arrays)
    done = threading.Semaphore(0)

    def callback(index: int, result: Any, error: Any) -> None:
        results[index] = error if error is not None else tuple(result.as_numpy(name) for name in outputs)
        done.release()

    try:
        requests = []
        for x in arrays:
            requests.append(grpcclient.InferInput("x", list(x.shape), "FP32"))
            requests[-1].set_data_from_numpy(x)
        for index, request in enumerate(requests):  # all prepared first: they leave in a burst
            client.async_infer(model, [request], callback=lambda result, error, i=index: callback(i, result, error))
        for _ in arrays:
            assert done.acquire(timeout=10), "a request got no answer"
    finally:
        client.close()
    return results


def _counts(handle: ServerHandle, model: str) -> tuple[int, int]:
    client = handle.grpc_client()
    try:
        stats = client.get_inference_statistics(model, as_json=True)["model_stats"][0]
    finally:
        client.close()
    return int(stats.get("inference_count", 0)), int(stats.get("execution_count", 0))


def test_fp32_and_int8_outputs_match_onnxruntime(served: Served) -> None:
    x = np.random.default_rng(3).random((5, FEATURES), dtype=np.float32)
    for precision in ("fp32", "int8"):
        got = _infer(served.handle, f"lin_{precision}", x, "logits")
        np.testing.assert_allclose(got, run_onnx(served.work / f"lin_{precision}.onnx", x), rtol=1e-6, atol=1e-6)
    assert not np.allclose(_infer(served.handle, "lin_fp32", x, "logits"), _infer(served.handle, "lin_int8", x, "logits"), atol=1e-7)


def test_dynamic_batching_concurrent_requests(served: Served) -> None:
    """Triton gathers the requests, and the model runs them as one onnxruntime call (n > 1)."""
    arrays = [np.random.default_rng(i).random((1, 4), dtype=np.float32) for i in range(16)]
    inferences_before, executions_before = _counts(served.handle, "rowsum")
    results = _concurrent(served.handle, "rowsum", arrays, ("s", "n"))
    inferences, executions = (a - b for a, b in zip(_counts(served.handle, "rowsum"), (inferences_before, executions_before)))
    seen = []
    for x, (total, rows) in zip(arrays, results):
        np.testing.assert_allclose(total, x.sum(axis=1, keepdims=True), rtol=1e-6)  # split back to the right request
        seen.append(int(rows[0, 0]))
    assert inferences == 16
    assert executions < inferences, f"16 concurrent requests ran in {executions} executions: nothing was batched"
    assert max(seen) > 1, "every request ran alone in onnxruntime: the model did not concatenate the batch"
    assert max(seen) <= 8  # max_batch_size


def test_requests_of_different_shapes_in_one_batch(served: Served) -> None:
    rng = np.random.default_rng(7)
    arrays = [rng.random((1 + i % 2, 3 if i % 3 else 5), dtype=np.float32) for i in range(12)]
    results = _concurrent(served.handle, "rowsum", arrays, ("s", "n"))
    for x, (total, rows) in zip(arrays, results):
        np.testing.assert_allclose(total, x.sum(axis=1, keepdims=True), rtol=1e-6)
        assert rows[0, 0] >= len(x)


def test_bad_request_gets_a_clear_error_and_others_still_run(served: Served) -> None:
    from tritonclient.utils import InferenceServerException

    good = np.ones((2, FEATURES), dtype=np.float32)
    results = _concurrent(served.handle, "loose", [good, np.ones((2, 5), dtype=np.float32), good], ("logits",))
    for index in (0, 2):
        np.testing.assert_allclose(results[index][0], run_onnx(served.work / "lin_fp32.onnx", good), rtol=1e-6)
    assert isinstance(results[1], InferenceServerException)
    assert "loose: onnxruntime failed" in results[1].message()


def test_metrics_endpoint(served: Served) -> None:
    assert served.handle.metrics_url is not None
    with urllib.request.urlopen(served.handle.metrics_url, timeout=5) as response:
        assert "nv_inference_count" in response.read().decode()


def test_external_handle_checks_readiness(served: Served) -> None:
    handle = ServerHandle.external(f"{served.handle.http_url},{served.handle.grpc_url}", ["lin_fp32"])
    assert handle.grpc_url == served.handle.grpc_url and not handle.embedded
    with pytest.raises(GeneratorError, match="'nope' is not loaded"):
        ServerHandle.external(served.handle.grpc_url, ["nope"])


# ---- compare ------------------------------------------------------------------------------------


@dataclass
class _Batch:
    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None


def _labelled_set(work: Path, n: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Labels that make FP32 exactly 75 % right: its own top-1 for 3/4 of the samples, wrong for the rest."""
    x = np.random.default_rng(11).random((n, FEATURES), dtype=np.float32)
    top1 = run_onnx(work / "lin_fp32.onnx", x).argmax(axis=1)
    labels = top1.copy()
    labels[3 * n // 4:] = (top1[3 * n // 4:] + 1) % 6
    return x, labels.astype(np.int64)


def test_compare_pair_gives_the_expected_metrics(served: Served) -> None:
    x, labels = _labelled_set(served.work)
    ref, cand = run_onnx(served.work / "lin_fp32.onnx", x), run_onnx(served.work / "lin_int8.onnx", x)
    batches = [_Batch({"x": x[i:i + 16]}, labels[i:i + 16]) for i in range(0, len(x), 16)]  # 16 > max_batch_size 8
    tolerances = Tolerances(max_top1_drop=50.0, min_top1_agreement=0.5, min_cosine=0.9, min_sqnr_db=10.0)
    result = compare_pair(served.handle, "lin_fp32", "lin_int8", batches, tolerances=tolerances)

    assert result.samples == 48 and result.labelled == 48 and result.classification_output == "logits"
    assert result.reference_top1 == pytest.approx(0.75)
    assert result.candidate_top1 == pytest.approx(np.mean(cand.argmax(1) == labels))
    assert result.top1_drop_points == pytest.approx(100 * (0.75 - np.mean(cand.argmax(1) == labels)))
    assert result.top1_agreement == pytest.approx(np.mean(cand.argmax(1) == ref.argmax(1)))
    top5 = np.argsort(-cand, axis=1)[:, :5]
    assert result.candidate_top5 == pytest.approx(np.mean((top5 == labels[:, None]).any(1)))
    (out,) = result.outputs
    diff = cand.astype(np.float64) - ref
    assert out.max_abs_error == pytest.approx(np.abs(diff).max(), rel=1e-5)
    assert out.mean_abs_error == pytest.approx(np.abs(diff).mean(), rel=1e-5)
    assert out.sqnr_db == pytest.approx(10 * np.log10((ref.astype(np.float64) ** 2).sum() / (diff**2).sum()), rel=1e-4)
    assert result and result.passed and {c.name for c in result.checks} == {"max_top1_drop", "min_top1_agreement", "min_cosine", "min_sqnr_db"}

    strict = compare_pair(served.handle, "lin_fp32", "lin_int8", batches, tolerances=Tolerances(min_sqnr_db=out.sqnr_db + 1))
    assert not strict
    assert [c.name for c in strict.failures] == ["min_sqnr_db"]


SPEC = """\
version: 1
models:
  - name: lin
    onnx: lin_fp32.onnx
    max_batch_size: 8
    evaluation:
      data: {{kind: arrays, path: eval.npz, labels: labels}}
      batch_size: 16
      tolerances: {{max_top1_drop: 50, min_top1_agreement: 0.5{extra}}}
    variants:
      - precision: fp32
      - precision: int8
        calibration: {{data: {{kind: arrays, path: eval.npz}}}}
"""


def test_trgen_compare_cli_against_a_url(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    x, labels = _labelled_set(served.work)
    np.savez(served.work / "eval.npz", x=x, labels=labels)
    spec = served.work / "spec.yaml"
    spec.write_text(SPEC.format(extra=""))
    report_path = served.work / "compare.json"
    url = f"{served.handle.http_url},{served.handle.grpc_url}"

    assert main(["compare", str(spec), "--url", url, "--json", str(report_path), "--no-progress"]) == 0
    report = json.loads(report_path.read_text())
    assert report["passed"] is True
    (pair,) = report["comparisons"]
    assert (pair["reference"], pair["candidate"], pair["samples"]) == ("lin_fp32", "lin_int8", 48)
    assert pair["reference_top1"] == pytest.approx(0.75)

    spec.write_text(SPEC.format(extra=", min_sqnr_db: 200"))
    assert main(["compare", str(spec), "--url", url, "--no-progress"]) == EXIT_CHECK_FAILED
    assert "min_sqnr_db" in capsys.readouterr().out
