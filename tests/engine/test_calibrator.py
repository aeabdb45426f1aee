"""The implicit-INT8 calibrator subclass, built against the double's IInt8EntropyCalibrator2 base."""

from __future__ import annotations

import numpy as np
import pytest

from generator.engine.calibrator import make_calibrator, rebatch
from generator.errors import GeneratorError
from tests.engine.trt_double import make_trt

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
