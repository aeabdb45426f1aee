"""Helpers for the calibration tests: tiny ONNX models built with onnx.helper, and data files.

(A uniquely named module rather than conftest.py, so test modules can import it unambiguously.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from generator.spec.data import ArraysSource, Preprocessing
from generator.spec.stages import Calibration
from tests.conftest import make_tiny_cnn

# the tensors of `tiny_model` that the Q/DQ placement observes (explicit, so these tests do not
# depend on the placement rules, which the quantize tests cover)
TINY_TENSORS = ["input", "relu", "flat"]


def make_tiny_model(path: Path, *, log_first: bool = False, fixed_batch: int | None = None) -> Path:
    """The shared tiny CNN with 10 classes (see tests.conftest.make_tiny_cnn)."""
    return make_tiny_cnn(path, classes=10, log_first=log_first, fixed_batch=fixed_batch)


def write_pixels(path: Path, samples: int, *, seed: int = 1, shape: tuple[int, ...] = (1, 8, 8)) -> Path:
    """uint8 pixels [samples, *shape] under key 'input', labels under 'labels'."""
    rng = np.random.default_rng(seed)
    np.savez(path, input=rng.integers(0, 256, (samples, *shape), dtype=np.uint8), labels=rng.integers(0, 10, samples))
    return path


def calibration(data: Path, **overrides: object) -> Calibration:
    """A Calibration block over an arrays file scaled to [0, 1] (overrides replace fields)."""
    source = ArraysSource(kind="arrays", path=data, preprocessing=Preprocessing(scale=1 / 255))
    # method: entropy pinned (the spec default became auto, issue 8): these tests check entropy's outputs
    fields: dict[str, object] = {"data": source, "samples": 32, "batch_size": 8, "method": "entropy"}
    fields.update(overrides)
    return Calibration(**fields)  # type: ignore[arg-type]
