"""`trgen compare` end to end on the embedded server: spec -> calibrate -> build -> render -> serve -> compare."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.serve.serve_helpers import run_onnx

from generator.pipeline import compare as run_compare
from generator.spec import load_spec

pytestmark = pytest.mark.server


def test_run_compare_embedded(tiny_spec: Path, tiny_onnx: Path) -> None:
    report = run_compare(load_spec(tiny_spec), progress=False)
    (pair,) = report.comparisons
    assert report.embedded and (pair.reference, pair.candidate) == ("tiny_fp32", "tiny_int8")
    data = np.load(tiny_spec.parent / "data.npz")
    assert pair.samples == pair.labelled == len(data["labels"])
    expected_top1 = np.mean(run_onnx(tiny_onnx, data["input"]).argmax(1) == data["labels"])
    assert pair.reference_top1 == pytest.approx(expected_top1)
    assert 0.0 < pair.top1_agreement <= 1.0  # type: ignore[operator]
    assert bool(report) == all(check.passed for check in pair.checks)
    assert {c.name for c in pair.checks} == {"max_top1_drop", "min_top1_agreement"}
    assert (tiny_spec.parent / "repo" / "tiny_int8" / "1" / "model.py").is_file()
