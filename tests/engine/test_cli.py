"""`trgen build` / `trgen verify` on CPU variants (the CI path), and the TensorRT-missing error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from generator.cli import main
from tests.spec_factory import CALIBRATION, SpecFactory


def test_build_writes_every_cpu_variant(make_spec: SpecFactory, capsys: pytest.CaptureFixture[str]) -> None:
    spec = make_spec("{precision: fp32}\n{precision: fp16, target: onnxruntime}")
    assert main(["build", str(spec.models[0].onnx.parent / "spec.yaml")]) == 0
    out = capsys.readouterr().out
    assert f"tiny_fp32: {spec.models[0].onnx} (onnx)" in out
    fp16 = spec.workdir / "tiny_ort_fp16" / "model_fp16.onnx"
    assert f"tiny_ort_fp16: {fp16} (onnx)" in out and fp16.is_file()


def test_verify_compares_cpu_variants_with_fp32(make_spec: SpecFactory, capsys: pytest.CaptureFixture[str]) -> None:
    spec = make_spec("{precision: fp16, target: onnxruntime}\n{precision: int8, " + CALIBRATION + "}")
    assert main(["verify", str(spec.models[0].onnx.parent / "spec.yaml")]) == 0
    out = capsys.readouterr().out
    assert "tiny_ort_fp16 vs tiny fp32 (onnxruntime)" in out and "tiny_int8 vs tiny fp32 (onnxruntime)" in out
    assert "logits: max |err|" in out and "FAIL" not in out
    assert (spec.workdir / "tiny_int8" / "model_int8_qdq.onnx").is_file()  # built (calibrated) on the way


def test_verify_fails_when_a_tolerance_is_missed(make_spec: SpecFactory, capsys: pytest.CaptureFixture[str]) -> None:
    spec = make_spec("{precision: fp16, target: onnxruntime}")
    path = spec.models[0].onnx.parent / "spec.yaml"
    # FP16 rounding keeps the SQNR far below 200 dB: the check must fail and say so
    path.write_text(path.read_text().replace("batch_size: 16}", "batch_size: 16, tolerances: {min_sqnr_db: 200}}"))
    assert main(["verify", str(path)]) == 1
    assert "FAILED min_sqnr_db: logits: SQNR" in capsys.readouterr().out


def test_build_of_a_tensorrt_variant_without_tensorrt_is_one_line(
    make_spec: SpecFactory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(__import__("sys").modules, "tensorrt", None)  # import tensorrt -> ImportError
    spec = make_spec("{precision: fp32}\n{precision: fp16, target: tensorrt}")
    assert main(["build", str(spec.models[0].onnx.parent / "spec.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("trgen: error: TensorRT is not installed") and 'pip install "trgen[tensorrt]"' in err
    assert "\n" not in err
    assert not spec.workdir.exists()  # failed before doing any work


def test_verify_on_the_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The CPU example end to end: calibrate, quantize, build and check every variant against FP32."""
    import shutil

    from tests.conftest import EXAMPLE_DIR

    example = tmp_path / "mnist"
    shutil.copytree(EXAMPLE_DIR, example, ignore=shutil.ignore_patterns("build", "*.py"))
    spec = example / "spec.yaml"
    spec.write_text(spec.read_text().replace("repository: ../../model_repository", "repository: repo"))
    assert main(["verify", str(spec)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"mnist_int8 vs mnist fp32 \(onnxruntime\) \(python-onnxruntime\), \d+ samples: PASS", out)


def test_a_tensorrt_crash_during_build_exits_4_with_one_line(
    make_spec: SpecFactory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build runs in a child process: TensorRT dying of SIGSEGV is a run-time failure, not trgen's death."""
    from tests.engine.trt_double import make_trt

    monkeypatch.setitem(__import__("sys").modules, "tensorrt", make_trt(crash="segfault"))
    spec = make_spec("{precision: fp32, target: tensorrt}")
    assert main(["build", str(spec.models[0].onnx.parent / "spec.yaml")]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("trgen: failed: variant tiny_trt_fp32: TensorRT crashed while building the engine")
    assert "died of SIGSEGV" in err[-1] and "Error Code 2" in err[-1]
