"""Fixtures shared by every test package: tiny real ONNX models and spec files written to tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest_plugins = ["tests.spec_factory"]  # the make_spec fixture, for stage tests in any folder

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_DIR = REPO_ROOT / "examples" / "mnist"


def make_tiny_cnn(
    path: Path, *, seed: int = 0, classes: int = 4, log_first: bool = False, fixed_batch: int | None = None
) -> Path:
    """A real input [N,1,8,8] -> (Log) -> Conv -> Relu -> Flatten -> Gemm -> logits [N, classes] CNN.

    The batch dimension is dynamic unless `fixed_batch` is given. With `log_first`, the Conv reads
    Log(input) (named "logged"), so zero pixels give -inf there (for the NaN/Inf checks).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = [
        numpy_helper.from_array(rng.normal(0, 0.5, (4, 1, 3, 3)).astype(np.float32), "conv_w"),
        numpy_helper.from_array(rng.normal(0, 0.1, (4,)).astype(np.float32), "conv_b"),
        numpy_helper.from_array(rng.normal(0, 0.2, (classes, 4 * 8 * 8)).astype(np.float32), "fc_w"),
        numpy_helper.from_array(rng.normal(0, 0.1, (classes,)).astype(np.float32), "fc_b"),
    ]
    nodes = [helper.make_node("Log", ["input"], ["logged"], name="log")] if log_first else []
    nodes += [
        helper.make_node("Conv", ["logged" if log_first else "input", "conv_w", "conv_b"], ["conv"],
                         pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["conv"], ["relu"], name="relu"),
        helper.make_node("Flatten", ["relu"], ["flat"], axis=1, name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1, name="fc"),
    ]
    batch: int | str = fixed_batch if fixed_batch is not None else "batch"
    graph = helper.make_graph(
        nodes,
        "tiny_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def tiny_onnx(tmp_path: Path) -> Path:
    return make_tiny_cnn(tmp_path / "tiny.onnx")


TINY_SPEC = """\
version: 1
workdir: build
repository: repo
triton:
  dynamic_batching:
    preferred_batch_sizes: [4, 8]
models:
  - name: tiny
    onnx: tiny.onnx
    max_batch_size: 8
    evaluation:
      data: {kind: arrays, path: data.npz, labels: labels}
    variants:
      - precision: fp32
      - precision: int8
        calibration:
          method: entropy
          samples: 32
          batch_size: 8
          data: {kind: arrays, path: data.npz}
"""


@pytest.fixture
def tiny_spec(tmp_path: Path, tiny_onnx: Path) -> Path:
    """A valid spec around the tiny CNN, with 64 random calibration/evaluation samples."""
    rng = np.random.default_rng(1)
    np.savez(
        tmp_path / "data.npz",
        input=rng.random((64, 1, 8, 8), dtype=np.float32),
        labels=rng.integers(0, 4, 64).astype(np.int64),
    )
    path = tmp_path / "spec.yaml"
    path.write_text(TINY_SPEC)
    return path
