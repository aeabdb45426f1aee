"""The implicit-INT8 calibrator: built against the double's bases, and its errors not lost inside TensorRT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from generator.engine.apply import apply_plan
from generator.engine.calibrator import make_calibrator, rebatch
from generator.engine.cuda_mem import NO_CUDA
from generator.engine.plan import BuildPlan, builder_plan
from generator.engine.prebuild import NetworkTensor, check_calibration_batch
from generator.errors import GeneratorError, RuntimeFailure
from generator.signature import read_onnx_signature
from tests.engine.trt_double import call_names, calls_named, make_trt
from tests.spec_factory import CALIBRATION, SpecFactory, only

CACHE = b"TRT-101300-EntropyCalibration2\ninput: 3c010204\nrelu: 3d418306\n"


def test_calibrator_hands_tensorrt_our_cache_bytes() -> None:
    trt = make_trt("10.13.0.35")
    calibrator = make_calibrator(trt, cache=CACHE)
    assert isinstance(calibrator, trt.IInt8EntropyCalibrator2)
    assert calibrator._base_initialised  # the base __init__ ran (real TensorRT crashes otherwise)
    assert calibrator.read_calibration_cache() == CACHE
    assert calibrator.get_batch_size() == 1
    assert calibrator.get_batch(["input"]) is None  # no data: TensorRT must rely on the cache


def test_calibrator_keeps_what_tensorrt_writes(tmp_path) -> None:
    target = tmp_path / "trt.cache"
    calibrator = make_calibrator(make_trt(), batches=[], write_cache=target)
    assert calibrator.read_calibration_cache() is None  # no cache: TensorRT calibrates from batches
    calibrator.write_calibration_cache(memoryview(CACHE))
    assert calibrator.written == CACHE and target.read_bytes() == CACHE


def test_calibrator_needs_a_cache_or_data() -> None:
    with pytest.raises(GeneratorError, match="cache or calibration data"):
        make_calibrator(make_trt())


def test_rebatch_regroups_to_the_opt_batch_and_drops_the_tail() -> None:
    batches = [{"input": np.arange(n * 4, dtype=np.float64).reshape(n, 1, 2, 2) + 100 * i} for i, n in enumerate((3, 6, 4))]
    out = list(rebatch(batches, {"input": (4, 1, 2, 2)}))
    assert [b["input"].shape for b in out] == [(4, 1, 2, 2)] * 3  # 13 samples -> 3 batches of 4
    assert all(b["input"].dtype == np.float32 for b in out)
    joined = np.concatenate([b["input"] for b in batches])[:12].astype(np.float32)
    assert np.array_equal(np.concatenate([b["input"] for b in out]), joined)


def test_rebatch_refuses_data_that_does_not_fit_the_profile() -> None:
    with pytest.raises(GeneratorError, match="OPT shape is \\[4, 1, 8, 8\\]"):
        list(rebatch([{"input": np.zeros((4, 1, 6, 6))}], {"input": (4, 1, 8, 8)}))
    with pytest.raises(GeneratorError, match="no input 'input'"):
        list(rebatch([{"image": np.zeros((4, 1, 8, 8))}], {"input": (4, 1, 8, 8)}))


# -- exceptions inside callbacks: TensorRT swallows them, trgen must not ----------------------------
TRT_CALIBRATES = "{precision: int8, target: tensorrt, build: {int8_mode: implicit, trt_calibrates: true}, " + CALIBRATION + "}"


def _plan(make_spec: SpecFactory) -> BuildPlan:
    rv = only(make_spec(TRT_CALIBRATES))
    return builder_plan(rv, "10.13.0.35", source=rv.model.onnx, onnx_signature=read_onnx_signature(rv.model.onnx))


class Device:
    """Device memory stand-in that fails on the copy number `fail_at` (counting from 1), like a CUDA error."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at, self.copies, self.freed = fail_at, 0, 0

    def alloc(self, nbytes: int) -> int:
        return 1

    def free(self, pointer: int) -> None:
        self.freed += 1

    def to_device(self, pointer: int, array: np.ndarray) -> None:
        self.copies += 1
        if self.copies == self.fail_at:
            raise RuntimeError("cudaMemcpy failed: an illegal memory access was encountered")


def _batches(count: int) -> list[dict[str, np.ndarray]]:
    return [{"input": np.full((8, 1, 8, 8), i, np.float32)} for i in range(count)]


def test_the_double_swallows_callback_exceptions_like_tensorrt(capfd: pytest.CaptureFixture[str]) -> None:
    """The binding's behaviour trgen has to live with: a raising get_batch reads as 'no more data'."""
    trt = make_trt("10.13.0.35")

    class Raising(trt.IInt8EntropyCalibrator2):  # type: ignore[misc, name-defined]
        def get_batch(self, names: list[str]) -> None:
            raise KeyError("input")

    calibrator = Raising()
    builder = trt.Builder(trt.Logger())
    network = builder.create_network(0)
    network._io = {"inputs": [{"name": "input"}], "outputs": [], "layers": [], "tensors": {}}
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.INT8)
    config.int8_calibrator = calibrator
    assert builder.build_serialized_network(network, config) is None  # no exception reaches the caller
    err = capfd.readouterr().err
    assert "Exception caught in get_batch(): KeyError" in err and "no scaling factors" in err


def test_a_failing_first_batch_is_raised_after_the_build_naming_the_callback(
    make_spec: SpecFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_cuda() -> None:
        raise GeneratorError(NO_CUDA)

    monkeypatch.setattr("generator.engine.calibrator.device_memory", no_cuda)
    trt = make_trt("10.13.0.35")
    with pytest.raises(GeneratorError) as info:
        apply_plan(trt, _plan(make_spec), _plan(make_spec).network_onnx, calibration_batches=_batches(2))
    message = str(info.value)
    assert type(info.value) is GeneratorError  # a missing package stays the user's to fix (exit 2)
    assert "calibrator failed in get_batch after 0 batch(es)" in message and "install cuda-python" in message
    assert "Builder.build_serialized_network" in call_names(trt)  # raised after TensorRT returned


def test_a_failure_after_some_batches_discards_the_partly_calibrated_engine(
    make_spec: SpecFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = _plan(make_spec)
    device = Device(fail_at=2)
    monkeypatch.setattr("generator.engine.calibrator.device_memory", lambda: device)
    trt = make_trt("10.13.0.35")
    built: list[object] = []
    original = trt.Builder.build_serialized_network
    monkeypatch.setattr(trt.Builder, "build_serialized_network", lambda *a: built.append(original(*a)) or built[-1])
    with pytest.raises(RuntimeFailure, match=r"failed in get_batch after 1 batch\(es\) \(RuntimeError: cudaMemcpy failed"):
        apply_plan(trt, plan, plan.network_onnx, calibration_batches=_batches(3))
    assert built and built[0] is not None  # TensorRT, like the double, built an engine on the one batch it got
    assert calls_named(trt, "calibrator.get_batch") == [(("input",),)]
    assert not plan.timing_cache.exists()  # nothing of the discarded build kept
    assert device.freed == 1  # the buffer is freed when the callback fails


def test_a_failing_cache_write_is_raised(make_spec: SpecFactory, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    calibrator = make_calibrator(make_trt(), batches=[], write_cache=blocker / "cache")  # parent is a file
    calibrator.write_calibration_cache(memoryview(b"TRT-101300-EntropyCalibration2\n"))  # returns, as TensorRT needs
    with pytest.raises(GeneratorError, match="failed in write_calibration_cache"):
        calibrator.raise_if_failed()
    assert calibrator.get_batch(["input"]) is None  # after a failure TensorRT only hears "no more data"


def test_batches_are_checked_against_the_network_before_the_build(make_spec: SpecFactory) -> None:
    plan = _plan(make_spec)
    trt = make_trt("10.13.0.35")
    with pytest.raises(GeneratorError, match="calibration data has no input 'input' \\(it has: image\\)"):
        apply_plan(trt, plan, plan.network_onnx, calibration_batches=[{"image": np.zeros((8, 1, 8, 8))}])
    with pytest.raises(GeneratorError, match="OPT shape is \\[8, 1, 8, 8\\]"):
        apply_plan(trt, plan, plan.network_onnx, calibration_batches=[{"input": np.zeros((8, 1, 4, 4))}])
    with pytest.raises(GeneratorError, match="gave no batch at the calibration profile's OPT batch size"):
        apply_plan(trt, plan, plan.network_onnx, calibration_batches=[{"input": np.zeros((3, 1, 8, 8))}])
    assert "Builder.build_serialized_network" not in call_names(trt)


def test_network_input_types_and_exact_shapes_are_checked() -> None:
    inputs = [NetworkTensor("input", "FLOAT", (-1, 1, 8, 8)), NetworkTensor("ids", "INT64", (-1, 4))]
    batch = {"input": np.zeros((8, 1, 8, 8), np.float32), "ids": np.zeros((8, 4), np.int64)}
    with pytest.raises(GeneratorError, match="'ids' is INT64: TensorRT's calibrator is fed float32 only"):
        check_calibration_batch(inputs, batch, {"input": (8, 1, 8, 8)}, where="v")
    static = [NetworkTensor("input", "FLOAT", (2, 1, 8, 8))]
    with pytest.raises(GeneratorError, match="has shape \\[8, 1, 8, 8\\] but TensorRT calibrates at \\[2, 1, 8, 8\\]"):
        check_calibration_batch(static, batch, {}, where="v")
    check_calibration_batch(static, {"input": np.zeros((2, 1, 8, 8))}, {}, where="v")
