"""Fixtures shared by the calibration tests (helpers live in calib_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.calibrate.calib_helpers import make_tiny_model, write_pixels


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    return make_tiny_model(tmp_path / "tiny.onnx")


@pytest.fixture
def pixels(tmp_path: Path) -> Path:
    return write_pixels(tmp_path / "calib.npz", 40)
