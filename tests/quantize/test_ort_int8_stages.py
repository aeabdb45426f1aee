"""The onnxruntime INT8 model across the stages: what calibration observes for it, what quantize and
build make of that, and what build.ort_int8 (unsigned | exact | off) serves.

Runs the real calibrate -> quantize -> build chain on ort_nets.residual_cnn, whose residual Conv
output "b" is the tensor no Q/DQ scale reaches.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest

from generator.engine import build_variant
from generator.manifest import manifest_path
from generator.quantize.ort_form import ORT_INT8_ONNX
from generator.quantize.ort_rewrite import ort_extra_tensors
from generator.calibrate import format_cache, read_cache
from generator.pipeline import calibrate as calibrate_variant
from generator.pipeline import source_model
from generator.quantize import QuantizedModel, quantize_variant
from generator.quantize.placement import activation_tensors
from generator.quantize.qdq import quantize_model
from generator.spec import ResolvedVariant, load_spec
from tests.quantize.ort_nets import optimized_ops, residual_cnn

CAL = "calibration: {method: entropy, samples: 32, batch_size: 8, data: {kind: arrays, path: data.npz}}"
PLACEMENT = activation_tensors(residual_cnn())

NetSpec = Callable[[str], list[ResolvedVariant]]


@pytest.fixture
def net_spec(tmp_path: Path) -> NetSpec:
    """net_spec(variants_yaml) -> the resolved variants of a spec around residual_cnn (random data)."""
    onnx.save(residual_cnn(), str(tmp_path / "net.onnx"))
    np.savez(tmp_path / "data.npz", input=np.random.default_rng(5).random((32, 1, 12, 12), dtype=np.float32))

    def make(variants: str) -> list[ResolvedVariant]:
        lines = ["version: 1", "workdir: build", "models:", "  - name: net", "    onnx: net.onnx",
                 "    max_batch_size: 8", "    variants:", *(f"      - {v}" for v in variants.strip().splitlines())]
        (tmp_path / "spec.yaml").write_text("\n".join(lines) + "\n")
        return load_spec(tmp_path / "spec.yaml").resolved()

    return make


def test_the_extra_tensor_is_the_residual_conv_output() -> None:
    assert PLACEMENT == ["input", "pool", "a6", "res_relu", "flat"]
    assert ort_extra_tensors(residual_cnn()) == ["b"]


def test_extra_tensors_are_calibrated_only_for_variants_serving_an_ort_int8_model(net_spec: NetSpec) -> None:
    variants = {rv.name: rv for rv in net_spec(
        f"{{name: ort, precision: int8, {CAL}}}\n"
        f"{{name: ort_exact, precision: int8, target: onnxruntime, build: {{ort_int8: exact}}, {CAL}}}\n"
        f"{{name: ort_off, precision: int8, build: {{ort_int8: 'off'}}, {CAL}}}\n"
        f"{{name: trt, precision: int8, target: tensorrt, {CAL}}}"
    )}
    expected = {"ort": PLACEMENT + ["b"], "ort_exact": PLACEMENT + ["b"], "ort_off": PLACEMENT, "trt": PLACEMENT}
    amax = {}
    for name, tensors in expected.items():
        result = calibrate_variant(variants[name], progress=False)
        assert list(result.amax) == tensors, name
        assert list(read_cache(result.cache_path).amax) == tensors, name  # the TensorRT cache: only what it quantizes
        assert list(json.loads(result.manifest_path.read_text())["tensors"]) == tensors, name
        amax[name] = result.amax
    assert amax["ort"] == amax["ort_exact"]
    # observing one more tensor changes nothing for the others
    assert {t: amax["ort"][t] for t in PLACEMENT} == amax["trt"] == amax["ort_off"]


def test_changing_the_observed_tensors_recalibrates(net_spec: NetSpec) -> None:
    def calibrate(build: str) -> tuple[bool, list[str]]:
        (rv,) = net_spec(f"{{precision: int8, build: {build}, {CAL}}}")
        result = calibrate_variant(rv, progress=False)
        return result.skipped, list(result.amax)

    assert calibrate("{ort_int8: 'off'}") == (False, PLACEMENT)
    assert calibrate("{ort_int8: 'off'}") == (True, PLACEMENT)
    assert calibrate("{ort_int8: unsigned}") == (False, PLACEMENT + ["b"])  # the old manifest is not reused
    assert calibrate("{ort_int8: exact}") == (True, PLACEMENT + ["b"])  # same tensors: nothing to redo
    assert calibrate("{ort_int8: 'off'}") == (False, PLACEMENT)


def test_the_qdq_model_ignores_the_extra_amax(net_spec: NetSpec) -> None:
    variants = net_spec(
        f"{{name: ort, precision: int8, {CAL}}}\n{{name: qdq_only, precision: int8, build: {{ort_int8: 'off'}}, {CAL}}}"
    )
    with_extra, without = (quantize_variant(rv, calibrate_variant(rv, progress=False), progress=False) for rv in variants)
    assert with_extra.quantized == without.quantized == tuple(PLACEMENT)
    assert with_extra.path.read_bytes() == without.path.read_bytes()
    model = residual_cnn()
    amax = {t: 1.0 + i for i, t in enumerate(PLACEMENT)}
    assert quantize_model(model, {**amax, "b": 3.0}).model == quantize_model(model, amax).model


@pytest.mark.parametrize("mode", ["unsigned", "exact", "off"])
def test_ort_int8_modes_serve_the_expected_model(net_spec: NetSpec, mode: str, tmp_path: Path) -> None:
    (rv,) = net_spec(f"{{precision: int8, build: {{ort_int8: '{mode}'}}, {CAL}}}")
    source = source_model(rv, progress=False)  # calibrate + quantize: model_int8_qdq.onnx
    artifact = build_variant(rv, source)
    if mode == "off":
        assert (artifact.kind, artifact.model_file) == ("onnx", source.path)
        assert not (rv.workdir / ORT_INT8_ONNX).exists()
        assert optimized_ops(source.path, tmp_path).count("QLinearConv") == 0  # the old behaviour: float kernels
        return
    assert (artifact.kind, artifact.model_file) == ("onnx", rv.workdir / ORT_INT8_ONNX)
    manifest = json.loads(manifest_path(artifact.model_file).read_text())
    assert manifest["encoding"] == mode and manifest["extra_amax"] == {"b": source.amax["b"]}  # as calibrated, not via the cache
    ops = optimized_ops(artifact.model_file, tmp_path)
    assert ops.count("QLinearConv") == 3  # conv_a, conv_c and, with its calibrated output, the residual conv_b
    assert ("Clip" in ops) == (mode == "exact")  # unsigned: a zero-point-0 pair absorbs Clip(0, 6)
    assert ops.count("QLinearAdd") == (mode == "unsigned")  # exact keeps the Relu after the Add


def test_the_ort_copy_is_rewritten_when_the_encoding_or_the_extra_amax_change(net_spec: NetSpec) -> None:
    (rv,) = net_spec(f"{{precision: int8, {CAL}}}")
    source = source_model(rv, progress=False)
    dest = build_variant(rv, source).model_file

    def rewritten(variant: ResolvedVariant, quantized: QuantizedModel = source) -> bool:
        past = dest.stat().st_mtime_ns - 10**9
        os.utime(dest, ns=(past, past))
        build_variant(variant, quantized)
        return dest.stat().st_mtime_ns != past

    assert not rewritten(rv)
    (exact,) = net_spec(f"{{precision: int8, build: {{ort_int8: exact}}, {CAL}}}")
    assert rewritten(exact) and json.loads(manifest_path(dest).read_text())["encoding"] == "exact"
    doubled = dataclasses.replace(source, amax={**source.amax, "b": 2 * source.amax["b"]})  # the amax travel with it
    assert rewritten(exact, doubled)
    assert json.loads(manifest_path(dest).read_text())["extra_amax"]["b"] == pytest.approx(doubled.amax["b"], rel=1e-6)
    assert not rewritten(exact, doubled)
