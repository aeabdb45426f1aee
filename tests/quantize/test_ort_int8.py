"""The onnxruntime INT8 artifact: the TensorRT Q/DQ model rewritten so that ORT's CPU provider fuses it.

A small real CNN (ort_nets.residual_cnn) covers each case: a 1-channel stem (kept float), Conv ->
Clip(0, 6) (absorbed by a uint8 pair), a residual Conv -> Add (no scale reaches it), Conv -> Relu ->
Flatten -> pair, a Gemm head (QGemm with a float output).
The Q/DQ model comes from the quantize stage's writer with min/max amax from a real ORT run.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from generator.engine import build_variant
from generator.manifest import manifest_path
from generator.quantize.ort_form import ORT_INT8_ONNX, write_ort_int8
from generator.quantize.ort_rewrite import Encoding, needs_scale, optimize_for_ort, ort_extra_tensors
from generator.errors import GeneratorError
from generator.quantize.placement import activation_tensors
from generator.quantize.qdq import quantize_model
from tests.spec_factory import CALIBRATION, SpecFactory, only
from tests.quantize.ort_nets import optimized_ops, residual_cnn

RNG = np.random.default_rng(7)
X = RNG.random((16, 1, 12, 12), dtype=np.float32)


def _run(model: onnx.ModelProto, x: np.ndarray = X, *, fusion: bool = True, outputs: list[str] | None = None) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    if not fusion:  # dequantize + float kernels everywhere: the Q/DQ arithmetic exactly as written
        options.add_session_config_entry("session.disable_quant_qdq", "1")
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(outputs, {"input": x})  # type: ignore[no-any-return]


def _probe(model: onnx.ModelProto, tensors: list[str], *, fusion: bool = True) -> dict[str, np.ndarray]:
    """Intermediate tensors of `model` on X."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(helper.make_tensor_value_info(t, TensorProto.FLOAT, None) for t in tensors)
    return dict(zip(tensors, _run(probe, outputs=tensors, fusion=fusion)))


@pytest.fixture(scope="module")
def qdq() -> onnx.ModelProto:
    """The TensorRT-style Q/DQ model of residual_cnn() with min/max amax measured on X."""
    model = residual_cnn()
    values = _probe(model, activation_tensors(model))
    return quantize_model(model, {t: float(np.abs(v).max()) for t, v in values.items()}).model


def _activation_zero_points(model: onnx.ModelProto) -> set[int]:
    inits = {i.name: i for i in model.graph.initializer}
    return {inits[n.input[2]].data_type for n in model.graph.node if n.op_type == "QuantizeLinear"}


# -- option a: re-encoding alone -------------------------------------------------------------------
def test_uint8_reencoding_alone_is_bit_exact(qdq: onnx.ModelProto) -> None:
    result = optimize_for_ort(qdq, encoding=Encoding.EXACT, fuse=False)
    assert _activation_zero_points(qdq) == {TensorProto.INT8}
    assert _activation_zero_points(result.model) == {TensorProto.UINT8}
    assert result.fused == () and result.unsigned == ()
    (expected,), (got,) = _run(qdq, fusion=False), _run(result.model, fusion=False)
    np.testing.assert_array_equal(got, expected)


# -- option b: what ORT fuses, and how close it stays ----------------------------------------------
def test_fusable_ops_and_what_stays_float(qdq: onnx.ModelProto) -> None:
    result = optimize_for_ort(qdq)
    assert result.fused == ("conv_a", "conv_c", "fc")
    assert result.kept_float == ("stem_conv", "conv_b")  # shallow stem; residual Conv has no output scale
    assert set(result.unsigned) == {"pool", "a6", "res_relu", "flat"}  # after Relu/Clip; the input stays signed
    assert needs_scale(qdq) == ["b"] == ort_extra_tensors(residual_cnn())  # the latter from the FP32 model


@pytest.mark.parametrize("encoding", list(Encoding))
def test_onnxruntime_fuses_and_stays_close_to_the_tensorrt_model(
    qdq: onnx.ModelProto, encoding: Encoding, tmp_path: Path
) -> None:
    model = optimize_for_ort(qdq, encoding=encoding).model
    onnx.checker.check_model(model, full_check=True)
    ops = optimized_ops(model, tmp_path)
    assert ops.count("QLinearConv") == 2 and ops.count("QGemm") == 1
    assert ("Clip" in ops) == (encoding is Encoding.EXACT)  # else absorbed by a zero-point-0 pair
    assert optimized_ops(qdq, tmp_path).count("QLinearConv") == 0  # the TensorRT placement alone fuses nothing
    (fp32,), (expected,), (got,) = _run(residual_cnn()), _run(qdq), _run(model)
    # the rewrite moves the logits less than INT8 itself moved them away from FP32
    assert np.abs(got - expected).max() < np.abs(expected - fp32).max()
    assert np.mean(got.argmax(1) == expected.argmax(1)) >= 0.9


def test_exact_output_pairs_move_no_activation_by_more_than_a_rounding_step(qdq: onnx.ModelProto) -> None:
    # Q(f(Q(x))) == Q(f(x)) on the commuting chains; what is left is the int32 bias rounding (and
    # float summation order), which now and then pushes a value across a rounding boundary
    model = optimize_for_ort(qdq, encoding=Encoding.EXACT, min_reduction=0).model
    inits = {i.name: numpy_helper.to_array(i) for i in qdq.graph.initializer}
    pairs = {n.output[0]: float(inits[n.input[1]]) for n in qdq.graph.node
             if n.op_type == "DequantizeLinear" and inits[n.input[1]].ndim == 0 and n.input[0] not in inits}
    assert len(pairs) == 5
    expected, got = (_probe(m, list(pairs), fusion=False) for m in (qdq, model))
    for tensor, scale in pairs.items():
        diff = np.abs(got[tensor] - expected[tensor])
        assert np.mean(diff == 0) >= 0.98 and diff.max() <= 1.001 * scale, tensor


def test_extra_amax_makes_the_residual_conv_and_add_fuse(qdq: onnx.ModelProto, tmp_path: Path) -> None:
    result = optimize_for_ort(qdq, extra_amax={"b": float(np.abs(_probe(residual_cnn(), ["b"])["b"]).max())})
    assert "conv_b" in result.fused and needs_scale(result.model) == []
    ops = optimized_ops(result.model, tmp_path)
    assert ops.count("QLinearConv") == 3 and ops.count("QLinearAdd") == 1


def test_float_stem_pools_before_its_relu_bit_exactly(qdq: onnx.ModelProto) -> None:
    model = optimize_for_ort(qdq).model
    order = [n.op_type for n in model.graph.node if n.op_type in ("Relu", "MaxPool")]
    assert order[:2] == ["MaxPool", "Relu"]
    fp32 = residual_cnn()
    swapped = optimize_for_ort(quantize_model(fp32, {}, keep_float=activation_tensors(fp32)).model).model
    np.testing.assert_array_equal(_run(swapped)[0], _run(fp32)[0])


# -- the file and the build stage --------------------------------------------------------------
def test_written_model_is_deterministic_and_leaves_the_source_alone(qdq: onnx.ModelProto, tmp_path: Path) -> None:
    source = tmp_path / "model_int8_qdq.onnx"
    source.write_bytes(qdq.SerializeToString())
    before = source.read_bytes()
    write_ort_int8(source, tmp_path / "one.onnx")
    write_ort_int8(source, tmp_path / "two.onnx")
    assert (tmp_path / "one.onnx").read_bytes() == (tmp_path / "two.onnx").read_bytes()
    assert source.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_int8_qdq.onnx", "one.onnx", "two.onnx"]  # no temp files


def test_unreadable_source_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(GeneratorError, match="not a loadable ONNX model"):
        write_ort_int8(tmp_path / "bad.onnx", tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()


@pytest.mark.parametrize("target", ["python-onnxruntime", "onnxruntime"])
def test_build_variant_serves_the_ort_copy_and_reuses_it(make_spec: SpecFactory, tmp_path: Path, target: str) -> None:
    rv = only(make_spec(f"{{precision: int8, target: {target}, " + CALIBRATION + "}"))
    source = tmp_path / "qdq.onnx"
    fp32 = onnx.load(str(rv.model.onnx))
    source.write_bytes(quantize_model(fp32, {t: 1.0 for t in activation_tensors(fp32)}).model.SerializeToString())
    artifact = build_variant(rv, source)
    assert (artifact.kind, artifact.model_file) == ("onnx", rv.workdir / ORT_INT8_ONNX)
    assert manifest_path(artifact.model_file).is_file()
    assert [i.name for i in artifact.signature.inputs] == ["input"]
    mtime = artifact.model_file.stat().st_mtime_ns - 10**9
    os.utime(artifact.model_file, ns=(mtime, mtime))
    build_variant(rv, source)
    assert artifact.model_file.stat().st_mtime_ns == mtime  # unchanged source: not rewritten
    source.write_bytes(quantize_model(fp32, {t: 2.0 for t in activation_tensors(fp32)}).model.SerializeToString())
    build_variant(rv, source)
    assert artifact.model_file.stat().st_mtime_ns != mtime  # new scales: rewritten
