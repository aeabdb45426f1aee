"""build_variant: CPU artifacts for real, TensorRT plans through the recording double."""

from __future__ import annotations

import json
import os
from pathlib import Path

import onnx
import pytest

from generator.engine import build_variant
from generator.engine.builder import plan_artifact
from generator.manifest import manifest_path
from generator.engine.tensorrt_env import GpuInfo, load_tensorrt
from generator.errors import GeneratorError
from generator.quantize.placement import activation_tensors
from generator.quantize.qdq import quantize_model
from generator.signature import engine_signature_from_json
from generator.signature import TensorSig, read_onnx_signature
from tests.spec_factory import CALIBRATION, SpecFactory, only
from tests.conftest import make_tiny_cnn
from tests.engine.trt_double import call_names, make_trt

GPU = GpuInfo("Test GPU", "9.0")


# -- CPU targets -----------------------------------------------------------------------------------
def test_cpu_fp32_serves_its_source_and_int8_the_ort_copy_unless_off(make_spec: SpecFactory, tmp_path: Path) -> None:
    spec = make_spec(
        "{precision: fp32}\n{precision: int8, " + CALIBRATION + "}\n"
        "{name: tiny_int8_qdq, precision: int8, build: {ort_int8: 'off'}, " + CALIBRATION + "}"
    )
    fp32, int8, int8_off = spec.resolved()
    artifact = build_variant(fp32, fp32.model.onnx)
    assert (artifact.kind, artifact.model_file, artifact.variant) == ("onnx", fp32.model.onnx, "tiny_fp32")
    assert artifact.signature == read_onnx_signature(fp32.model.onnx)
    qdq = tmp_path / "qdq.onnx"  # stands in for the quantize stage's output file
    model = onnx.load(str(fp32.model.onnx))
    qdq.write_bytes(quantize_model(model, dict.fromkeys(activation_tensors(model), 1.0)).model.SerializeToString())
    artifact = build_variant(int8, qdq)
    assert (artifact.kind, artifact.model_file) == ("onnx", int8.workdir / "model_int8_ort.onnx")
    assert artifact.signature == read_onnx_signature(qdq)
    assert build_variant(int8_off, qdq).model_file == qdq  # build.ort_int8: off serves the Q/DQ model as is


def test_cpu_fp16_converts_once_and_reuses_the_copy(make_spec: SpecFactory) -> None:
    rv = only(make_spec("{precision: fp16, target: onnxruntime}"))
    artifact = build_variant(rv, rv.model.onnx)
    assert artifact.model_file == rv.workdir / "model_fp16.onnx" and artifact.kind == "onnx"
    assert artifact.signature.inputs == (TensorSig("input", "fp32", (-1, 1, 8, 8)),)  # I/O kept float32
    manifest = json.loads(manifest_path(artifact.model_file).read_text())
    assert manifest["inputs"]["onnx"]["path"] == str(rv.model.onnx) and manifest["keep_io_types"] is True
    mtime = artifact.model_file.stat().st_mtime_ns
    os.utime(artifact.model_file, ns=(mtime - 10**9, mtime - 10**9))
    build_variant(rv, rv.model.onnx)
    assert artifact.model_file.stat().st_mtime_ns == mtime - 10**9  # unchanged input: not rewritten
    build_variant(rv, rv.model.onnx, force=True)
    assert artifact.model_file.stat().st_mtime_ns != mtime - 10**9


def test_missing_source_is_a_user_error(make_spec: SpecFactory, tmp_path: Path) -> None:
    rv = only(make_spec("{precision: fp32}"))
    with pytest.raises(GeneratorError, match="model file not found"):
        build_variant(rv, tmp_path / "nothing.onnx")


# -- TensorRT missing ------------------------------------------------------------------------------
def test_tensorrt_missing_names_the_extra_and_the_container(
    make_spec: SpecFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "stubs" / "tensorrt").mkdir(parents=True)  # what tensorrt-stubs leaves importable
    monkeypatch.syspath_prepend(str(tmp_path / "stubs"))
    monkeypatch.setitem(__import__("sys").modules, "tensorrt", None)  # recorded: undone (removed) after the test
    monkeypatch.delitem(__import__("sys").modules, "tensorrt")
    rv = only(make_spec("{precision: fp32, target: tensorrt}"))
    with pytest.raises(GeneratorError) as info:
        build_variant(rv, rv.model.onnx)
    message = str(info.value)
    assert 'pip install "trgen[tensorrt]"' in message and "nvcr.io/nvidia/tensorrt:" in message
    assert "no Builder" in message and "\n" not in message


def test_tensorrt_too_old_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "tensorrt", make_trt("8.6.1"))
    with pytest.raises(GeneratorError, match="TensorRT 8.6.1 is too old"):
        load_tensorrt()


# -- TensorRT plans through the double ------------------------------------------------------------
def test_plan_build_writes_plan_signature_script_and_manifest(make_spec: SpecFactory) -> None:
    rv = only(make_spec("{precision: fp32, target: tensorrt, build: {workspace_mib: 32}}"))
    trt = make_trt("10.13.0.35")
    artifact = plan_artifact(trt, rv, rv.model.onnx, gpu=GPU)
    plan = rv.workdir / "model.plan"
    assert (artifact.kind, artifact.model_file, artifact.cc_model_files) == ("plan", plan, ())
    assert artifact.signature.inputs == (TensorSig("input", "fp32", (-1, 1, 8, 8)),)
    assert artifact.signature.profiles == ({"input": ((1, 1, 8, 8), (8, 1, 8, 8), (8, 1, 8, 8))},)
    assert engine_signature_from_json(rv.workdir / "model.plan.json") == artifact.signature
    script = rv.workdir / "reproduce.sh"
    assert os.access(script, os.X_OK) and "trtexec" in script.read_text() and "--memPoolSize=workspace:32M" in script.read_text()
    manifest = json.loads(manifest_path(plan).read_text())
    assert manifest["tensorrt"] == "10.13.0.35" and manifest["gpu"] == {"name": "Test GPU", "compute_capability": "9.0"}
    assert manifest["plan"]["memory_pools"] == [["WORKSPACE", 32 << 20]]
    assert len(manifest["inputs"]["onnx"]["sha256"]) == 64 and manifest["build_seconds"] >= 0


def test_plans_are_rebuilt_only_when_something_changed(make_spec: SpecFactory) -> None:
    rv = only(make_spec("{precision: fp32, target: tensorrt}"))
    plan_artifact(make_trt(), rv, rv.model.onnx, gpu=GPU)

    def builds(trt: object, gpu: GpuInfo = GPU, **kwargs: object) -> bool:
        plan_artifact(trt, rv, rv.model.onnx, gpu=gpu, isolate=False, **kwargs)  # type: ignore[arg-type]
        return "Builder.build_serialized_network" in call_names(trt)

    assert not builds(make_trt())  # same inputs, same TensorRT, same GPU
    assert builds(make_trt(), force=True)
    assert builds(make_trt("10.14.1.48"))  # another TensorRT
    assert builds(make_trt("10.14.1.48"), GpuInfo("Other GPU", "8.0"))  # another GPU
    assert not builds(make_trt("10.14.1.48"), GpuInfo("Other GPU", "8.0"))
    make_tiny_cnn(rv.model.onnx, seed=7)  # retrained model, same path
    assert builds(make_trt("10.14.1.48"), GpuInfo("Other GPU", "8.0"))
    (rv.workdir / "model.plan.json").unlink()  # a missing companion file also rebuilds
    assert builds(make_trt("10.14.1.48"), GpuInfo("Other GPU", "8.0"))
    (rv.workdir / "model.plan.layers.json").unlink()
    assert builds(make_trt("10.14.1.48"), GpuInfo("Other GPU", "8.0"))


def test_changed_build_settings_rebuild(make_spec: SpecFactory) -> None:
    rv = only(make_spec("{precision: fp32, target: tensorrt}"))
    plan_artifact(make_trt(), rv, rv.model.onnx, gpu=GPU)
    changed = only(make_spec("{precision: fp32, target: tensorrt, build: {optimization_level: 1}}"))
    trt = make_trt()
    plan_artifact(trt, changed, changed.model.onnx, gpu=GPU, isolate=False)
    assert "Builder.build_serialized_network" in call_names(trt)


def test_fp16_on_tensorrt_11_builds_from_the_fp16_copy(make_spec: SpecFactory) -> None:
    rv = only(make_spec("{precision: fp16, target: tensorrt, build: {keep_io_types: false}}"))
    artifact = plan_artifact(make_trt("11.0.0.9"), rv, rv.model.onnx, gpu=GPU)
    assert (rv.workdir / "model_fp16.onnx").is_file()
    assert artifact.signature.inputs[0].dtype == "fp16" and artifact.signature.outputs[0].dtype == "fp16"


def test_failed_builds_leave_no_plan_behind(make_spec: SpecFactory) -> None:
    rv = only(make_spec("{precision: fp32, target: tensorrt}"))
    trt = make_trt(parser_errors=[(0, "conv", "Conv", "unsupported")])
    with pytest.raises(GeneratorError, match="node 0 \\(conv: Conv\\): unsupported"):
        plan_artifact(trt, rv, rv.model.onnx, gpu=GPU)
    assert not (rv.workdir / "model.plan").exists() and not manifest_path(rv.workdir / "model.plan").exists()
    assert (rv.workdir / "reproduce.sh").is_file()  # there to try by hand


def test_compute_capability_plans_are_collected(make_spec: SpecFactory) -> None:
    rv = only(make_spec("{precision: fp32, target: tensorrt, build: {compute_capabilities: ['8.0', '9.0']}}"))
    first = plan_artifact(make_trt(), rv, rv.model.onnx, gpu=GPU)
    assert first.model_file.name == "model_sm90.plan" and first.cc_model_files == (("9.0", rv.workdir / "model_sm90.plan"),)
    second = plan_artifact(make_trt(), rv, rv.model.onnx, gpu=GpuInfo("A100", "8.0"))  # e.g. built on another machine
    assert second.cc_model_files == (("8.0", rv.workdir / "model_sm80.plan"), ("9.0", rv.workdir / "model_sm90.plan"))


def test_version_compatible_plans_are_read_back_with_host_code_allowed(make_spec: SpecFactory) -> None:
    rv = only(make_spec("{precision: fp32, target: tensorrt, build: {version_compatible: true}}"))
    artifact = plan_artifact(make_trt(), rv, rv.model.onnx, gpu=GPU)  # the double refuses it otherwise
    assert artifact.signature.inputs[0].name == "input"


def test_written_files_are_readable_by_others(make_spec: SpecFactory) -> None:
    rv = only(make_spec("{precision: fp32, target: tensorrt}"))
    plan_artifact(make_trt(), rv, rv.model.onnx, gpu=GPU)
    for name in ("model.plan", "model.plan.manifest.json"):
        assert (rv.workdir / name).stat().st_mode & 0o044 == 0o044  # Triton may run as another user
