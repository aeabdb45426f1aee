"""Helpers for the calibration tests: tiny ONNX models built with onnx.helper, and data files.

(A uniquely named module rather than conftest.py, so test modules can import it unambiguously.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from generator.spec.data import ArraysSource, Preprocessing
from generator.spec.stages import Calibration

# the tensors of `tiny_model` that the Q/DQ placement observes (explicit, so these tests do not
# depend on the placement rules, which the quantize tests cover)
TINY_TENSORS = ["input", "relu", "flat"]


def make_tiny_model(path: Path, *, log_first: bool = False, fixed_batch: int | None = None) -> Path:
    """input [N,1,8,8] -> (Log) -> Conv(4, 3x3, pad 1) -> Relu -> Flatten -> Gemm(256 -> 10) -> logits.

    With `log_first`, the Conv reads Log(input) (named "logged"): zero pixels give -inf there.
    """
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.normal(0, 0.5, (4, 1, 3, 3)).astype(np.float32), "conv_w"),
        numpy_helper.from_array(rng.normal(0, 0.1, (4,)).astype(np.float32), "conv_b"),
        numpy_helper.from_array(rng.normal(0, 0.1, (10, 256)).astype(np.float32), "fc_w"),
        numpy_helper.from_array(np.zeros(10, np.float32), "fc_b"),
    ]
    conv_in = "logged" if log_first else "input"
    nodes = [helper.make_node("Log", ["input"], ["logged"])] if log_first else []
    nodes += [
        helper.make_node("Conv", [conv_in, "conv_w", "conv_b"], ["conv"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["conv"], ["relu"], name="relu"),
        helper.make_node("Flatten", ["relu"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1, name="fc"),
    ]
    batch: int | str = fixed_batch if fixed_batch is not None else "N"
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 10])],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_pixels(path: Path, samples: int, *, seed: int = 1, shape: tuple[int, ...] = (1, 8, 8)) -> Path:
    """uint8 pixels [samples, *shape] under key 'input', labels under 'labels'."""
    rng = np.random.default_rng(seed)
    np.savez(path, input=rng.integers(0, 256, (samples, *shape), dtype=np.uint8), labels=rng.integers(0, 10, samples))
    return path


def calibration(data: Path, **overrides: object) -> Calibration:
    """A Calibration block over an arrays file scaled to [0, 1] (overrides replace fields)."""
    source = ArraysSource(kind="arrays", path=data, preprocessing=Preprocessing(scale=1 / 255))
    fields: dict[str, object] = {"data": source, "samples": 32, "batch_size": 8}
    fields.update(overrides)
    return Calibration(**fields)  # type: ignore[arg-type]
