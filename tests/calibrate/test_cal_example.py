"""The bundled MNIST example calibrated end to end (512 samples), into a temporary workdir."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from generator.calibrate import check_cache_matches, read_cache
from generator.pipeline import calibrate as calibrate_variant

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mnist" / "spec.yaml"

pytestmark = pytest.mark.skipif(
    not (EXAMPLE.parent / "model.onnx").is_file() or not (EXAMPLE.parent / "data" / "calibration.npz").is_file(),
    reason="the example model or its data is not there (examples/mnist/train.py makes them)",
)


def test_example_calibrates(tmp_path: Path) -> None:
    import onnx

    from generator.quantize.ort_rewrite import ort_extra_tensors
    from generator.quantize.placement import activation_tensors
    from generator.spec import load_spec

    (rv,) = [r for r in load_spec(EXAMPLE).resolved() if r.precision == "int8"]
    rv = dataclasses.replace(rv, workdir=tmp_path / rv.name)
    result = calibrate_variant(rv, progress=False)
    model = onnx.load(str(rv.model.onnx))
    # python-onnxruntime: the placement's tensors, then the residual Conv output the ORT INT8 model quantizes too
    extra = ort_extra_tensors(model)
    assert extra == ["/block/conv2/conv2.0/Conv_output_0"]
    tensors = activation_tensors(model) + extra
    assert list(result.amax) == tensors
    check_cache_matches(read_cache(result.cache_path), tensors)
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["samples"] == 512 and manifest["method"] == "entropy"
    assert 0.9 < result.amax["input"] <= 1.0  # pixels / 255
    for name, entry in manifest["tensors"].items():
        assert 0 < entry["amax"] <= entry["max"]
        if entry["guarded"]:  # the guard only steps in where entropy clipped far below the max
            assert entry["rejected_amax"] < 0.25 * entry["max"] and entry["amax"] > 0.5 * entry["max"]
    assert calibrate_variant(rv, progress=False).skipped
