"""Graph preparation before calibration (issue 12): BatchNorm folded, written-out activations fused,
the prepared copy reused while unchanged, and INT8 built from the graph that was calibrated."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from generator.calibrate.activations import fuse_activations
from generator.calibrate.prepare import prepare_model
from tests.quantize.ort_nets import se_hardswish_cnn


def _run(model: onnx.ModelProto | Path, x: np.ndarray) -> np.ndarray:
    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


@pytest.fixture
def se_onnx(tmp_path: Path) -> Path:
    path = tmp_path / "se.onnx"
    onnx.save(se_hardswish_cnn(), str(path))
    return path


def test_prepared_graph_folds_batchnorm_and_fuses_activations(se_onnx: Path, tmp_path: Path) -> None:
    dest = prepare_model(se_onnx, tmp_path / "work" / "model_prepared.onnx", variant="se_int8")
    model = onnx.load(str(dest))
    ops = collections.Counter(n.op_type for n in model.graph.node)
    assert ops["BatchNormalization"] == 0 and ops["Div"] == 0 and ops["Clip"] == 0
    assert ops["HardSwish"] == 1 and ops["HardSigmoid"] == 1
    x = np.random.default_rng(0).random((4, 1, 12, 12), dtype=np.float32)
    np.testing.assert_allclose(_run(dest, x), _run(se_onnx, x), rtol=1e-4, atol=1e-5)


def test_prepared_copy_is_reused_while_the_source_is_unchanged(se_onnx: Path, tmp_path: Path) -> None:
    dest = tmp_path / "model_prepared.onnx"
    prepare_model(se_onnx, dest, variant="v")
    first, data = dest.stat().st_mtime_ns, dest.read_bytes()
    prepare_model(se_onnx, dest, variant="v")
    assert dest.stat().st_mtime_ns == first
    prepare_model(se_onnx, dest, variant="v", force=True)
    assert dest.read_bytes() == data  # same bytes when redone (deterministic serialization)


def test_hard_swish_with_a_shared_intermediate_is_left_alone() -> None:
    model = se_hardswish_cnn()
    graph = model.graph
    graph.output.append(onnx.helper.make_tensor_value_info("hs_clip", onnx.TensorProto.FLOAT, None))  # read outside
    formed = fuse_activations(model)
    assert "HardSwish" not in formed and formed.get("HardSigmoid") == 1


def test_old_opset_gets_no_hardswish() -> None:
    model = se_hardswish_cnn()
    model.opset_import[0].version = 13
    assert "HardSwish" not in fuse_activations(model)


def test_int8_is_built_from_the_prepared_graph(tmp_path: Path, se_onnx: Path) -> None:
    from generator.pipeline import calibrate, source_model
    from generator.spec import load_spec

    rng = np.random.default_rng(2)
    np.savez(tmp_path / "data.npz", input=rng.random((32, 1, 12, 12), dtype=np.float32))
    (tmp_path / "spec.yaml").write_text(
        "version: 1\nmodels:\n  - name: se\n    onnx: se.onnx\n    max_batch_size: 8\n    variants:\n"
        "      - {precision: int8, target: python-onnxruntime, calibration: {samples: 32, batch_size: 8, "
        "data: {kind: arrays, path: data.npz}}}\n"
    )
    (rv,) = load_spec(tmp_path / "spec.yaml").resolved()
    result = calibrate(rv, progress=False)
    assert result.model_path == rv.workdir / "model_prepared.onnx"
    prepared = {o for n in onnx.load(str(result.model_path)).graph.node for o in n.output} | {"input"}
    assert set(result.amax) <= prepared  # every calibrated tensor exists in the graph INT8 is built from
    qdq = onnx.load(str(source_model(rv).path))
    assert not any(n.op_type == "BatchNormalization" for n in qdq.graph.node)
    assert any(n.op_type == "HardSwish" for n in qdq.graph.node)
