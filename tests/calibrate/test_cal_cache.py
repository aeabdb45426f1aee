"""TensorRT calibration cache: worked values, round trip, and refusals."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from generator.calibrate.cache import (
    CalibrationCache,
    check_cache_matches,
    format_cache,
    parse_cache,
    read_cache,
    scale_hex,
)
from generator.errors import GeneratorError


def test_worked_values() -> None:
    assert scale_hex(1.0) == "3c010204"
    assert scale_hex(6.0) == "3d418306"


def test_hex_is_big_endian_float32_of_scale_zero_padded() -> None:
    for amax in (1e-30, 0.5, 3.25, 1000.0):
        text = scale_hex(amax)
        assert len(text) == 8 and text == text.lower()
        assert struct.unpack(">f", bytes.fromhex(text))[0] == pytest.approx(amax / 127, rel=1e-7)
    tiny = scale_hex(1e-36)  # a denormal scale: its leading zero digits must be kept
    assert len(tiny) == 8 and tiny.startswith("00")
    with pytest.raises(ValueError):
        scale_hex(0.0)


def test_format_and_read_back(tmp_path: Path) -> None:
    amax = {"input": 1.0, "/block/Relu_output_0": 6.0, "onnx::Conv_12": 0.125}
    text = format_cache(amax, version=100300)
    assert text.splitlines() == [
        "TRT-100300-EntropyCalibration2", "input: 3c010204", "/block/Relu_output_0: 3d418306",
        f"onnx::Conv_12: {scale_hex(0.125)}",
    ]
    (tmp_path / "c.cache").write_text(text)
    cache = read_cache(tmp_path / "c.cache")
    assert cache.version == 100300 and cache.algorithm == "EntropyCalibration2"
    assert list(cache.amax) == list(amax)
    for name, value in amax.items():
        assert cache.amax[name] == pytest.approx(value, rel=1e-6)
    assert format_cache(amax, algorithm="MinMaxCalibration", version=8601).startswith("TRT-8601-MinMaxCalibration\n")


def test_reads_a_tensorrt_style_cache() -> None:
    # as TensorRT 8.6 writes it: no trailing newline, unpadded-looking names with colons and spaces around
    text = "TRT-8601-EntropyCalibration2\ninput: 3c010204\n(Unnamed Layer* 3) [Activation]_output: 3d418306"
    cache = parse_cache(text)
    assert cache.amax["(Unnamed Layer* 3) [Activation]_output"] == pytest.approx(6.0, rel=1e-6)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty file"),
        ("TRT-abc-EntropyCalibration2\nx: 3c010204\n", "not a TensorRT calibration cache"),
        ("TRT-100300-KLCalibration\nx: 3c010204\n", "not a TensorRT calibration cache"),
        ("x: 3c010204\n", "not a TensorRT calibration cache"),
        ("TRT-100300-EntropyCalibration2\nx 3c010204\n", "line 2"),
        ("TRT-100300-EntropyCalibration2\nx: 3c01020z\n", "line 2"),
        ("TRT-100300-EntropyCalibration2\nx: 3c010204\nx: 3c010204\n", "appears twice"),
    ],
)
def test_malformed_caches_are_refused(text: str, message: str) -> None:
    with pytest.raises(GeneratorError, match=message) as info:
        parse_cache(text, where="c.cache")
    assert str(info.value).startswith("c.cache: ") and "\n" not in str(info.value)


def test_check_cache_matches() -> None:
    cache = CalibrationCache(100300, "EntropyCalibration2", {"input": 1.0, "relu": 2.0, "other": 3.0})
    check_cache_matches(cache, ["input", "relu"])  # extra names are normal: TensorRT lists every tensor
    with pytest.raises(GeneratorError, match=r"no scale for 1 tensor\(s\) of the model \('flat'\)"):
        check_cache_matches(cache, ["input", "relu", "flat"])
    with pytest.raises(GeneratorError, match="does not have"):
        check_cache_matches(cache, ["input"], model_tensors=["input", "relu", "conv"])
    check_cache_matches({"input": 1.0}, ["input"], model_tensors=["input", "relu"])
